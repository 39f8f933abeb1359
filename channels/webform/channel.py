"""The web-form channel: an accessible zh/en form page, and submissions published to the bus.

A submission answers with the ticket number when the ticket exists within a short budget, else with a
reference (202); the same idempotency key always gets the first answer.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jinja2
from aiohttp import web

from channels.base import AttachmentStore, Intake
from channels.webform.forms import FormDefinition, validate_submission
from channels.webform.submission import Submission, read_submission
from ticket_core.errors import InvalidInput, NotFound
from ticket_core.messages import CustomerIdentity, InboundMessage

_PAGES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=True
)

TEXT: dict[str, dict[str, Any]] = {
    "en": {
        "submit": "Send",
        "sending": "Sending…",
        "received": "Thank you. Your ticket number is:",
        "queued": "Thank you. We received your request; your reference is:",
        "failed": "Something went wrong. Please try again.",
        "language": "Language",
        "fields": {},
        "codes": {},
    },
    "zh-CN": {
        "submit": "提交",
        "sending": "正在提交…",
        "received": "提交成功，您的工单号是：",
        "queued": "提交成功，我们已收到您的问题，受理编号：",
        "failed": "提交失败，请稍后重试。",
        "language": "语言",
        "fields": {
            "is required": "此项为必填",
            "is not a valid email address": "邮箱格式不正确",
            "is not a valid phone number": "电话号码格式不正确",
            "email or phone is required": "邮箱和电话至少填写一项",
            "file type not accepted": "不支持该文件类型",
        },
        "codes": {
            "invalid_fields": "请检查标出的内容。",
            "attachment_too_large": "附件过大。",
            "body_too_large": "提交的内容过大。",
        },
    },
}


class FormStore(Protocol):
    async def get(self, name: str) -> FormDefinition | None: ...


@dataclass(frozen=True)
class WebFormLimits:
    max_file_bytes: int = 10 * 1024 * 1024
    max_body_bytes: int = 60 * 1024 * 1024
    wait_for_ticket_seconds: float = 5.0


def pick_locale(request: web.Request, explicit: str | None = None) -> str:
    choice = explicit or request.query.get("lang") or request.headers.get("Accept-Language") or ""
    return "zh-CN" if choice.lower().startswith("zh") else "en"


def _wants_html(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and "application/json" not in accept


class WebFormChannel:
    name = "webform"

    def __init__(
        self,
        forms: FormStore,
        intake: Intake,
        attachments: AttachmentStore,
        limits: WebFormLimits = WebFormLimits(),
        account: str = "forms",
    ) -> None:
        self._forms = forms
        self._intake = intake
        self._attachments = attachments
        self._limits = limits
        self.account = account

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def register(self, app: web.Application) -> None:
        app.router.add_get("/forms/{form}", self.page)
        app.router.add_post("/forms/{form}", self.submit)

    async def _form(self, request: web.Request) -> FormDefinition:
        name = request.match_info["form"]
        form = await self._forms.get(name)
        if form is None:
            raise NotFound(f"no form named {name!r}")
        return form

    async def page(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        return self._render(form, pick_locale(request))

    def _render(
        self,
        form: FormDefinition,
        locale: str,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        form_error: str | None = None,
        ticket_number: str | None = None,
        status: int = 200,
    ) -> web.Response:
        values, errors = values or {}, errors or {}
        t = TEXT[locale]
        fields = [
            {
                "name": f.name,
                "type": f.type,
                "label": f.label_for(locale),
                "required": f.required,
                "max_length": f.max_length,
                "help": f.help.get(locale, f.help.get("en", "")),
                "options": [(v, labels.get(locale, labels.get("en", v))) for v, labels in f.options],
                "value": values.get(f.name, ""),
                "error": t["fields"].get(errors[f.name], errors[f.name]) if f.name in errors else "",
            }
            for f in form.fields
        ]
        html = _PAGES.get_template("form.html").render(
            locale=locale,
            title=form.title.get(locale, form.title.get("en", form.name)),
            intro=form.intro.get(locale, ""),
            fields=fields,
            t=t,
            t_json=json.dumps(t, ensure_ascii=False),
            idempotency_key=secrets.token_urlsafe(16),
            form_error=form_error,
            ticket_number=ticket_number,
        )
        return web.Response(text=html, content_type="text/html", status=status)

    async def submit(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        html = _wants_html(request)
        sub = Submission()
        try:
            sub = await read_submission(
                request,
                max_file_bytes=self._limits.max_file_bytes,
                max_files=form.max_files,
                max_body_bytes=self._limits.max_body_bytes,
            )
            values = validate_submission(form, sub.values)
        except InvalidInput as exc:
            if not html:
                raise
            locale = pick_locale(request, sub.values.get("locale"))
            return self._render(
                form,
                locale,
                values=sub.values,
                errors=exc.fields,
                form_error=str(exc),
                status=413 if exc.code in ("attachment_too_large", "body_too_large") else 422,
            )
        locale = pick_locale(request, sub.values.get("locale"))
        key = (request.headers.get("Idempotency-Key") or sub.values.get("idempotency_key") or "").strip()
        if len(key) > 200:
            raise InvalidInput(
                "the idempotency key is longer than 200 characters", code="invalid_idempotency_key"
            )
        key = key or secrets.token_urlsafe(18)
        contact = values.get("email") or values.get("phone") or key
        attachments = tuple(
            [
                await self._attachments.save(
                    u.data,
                    filename=u.filename,
                    content_type=u.content_type,
                    meta={"channel": self.name, "form": form.name, "submission": key},
                )
                for u in sub.uploads
            ]
        )
        msg = InboundMessage(
            channel=self.name,
            account=form.name,
            external_id=key,
            dedup_key=f"webform:{form.name}:{key}",
            identity=CustomerIdentity(
                self.name,
                form.name,
                contact,
                display_name=values.get("name") or None,
                email=values.get("email") or None,
                phone=values.get("phone") or None,
            ),
            conversation_key=f"webform:{form.name}:{key}",
            kind="form",
            text=values.get("description", ""),
            subject=values.get("subject"),
            attachments=attachments,
            fields=values,
            locale=locale,
            meta={"reply_to": values.get("email", ""), "remote": request.remote or ""},
        )
        accepted = await self._intake.publish(msg)
        result = await self._intake.wait_result(accepted.record_id, self._limits.wait_for_ticket_seconds)
        body: dict[str, Any] = {"reference": accepted.record_id}
        number = (result or {}).get("ticket_number")
        if number:
            body["ticket"] = {"number": number}
        status = (200 if accepted.duplicate else 201) if number else 202
        if html:
            return self._render(form, locale, ticket_number=number or accepted.record_id, status=status)
        headers = {"Idempotent-Replayed": "true"} if accepted.duplicate else {}
        return web.json_response(body, status=status, headers=headers)
