"""Web form definitions (fields, types, required flags, zh/en labels) and submission validation."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pymongo.asynchronous.database import AsyncDatabase

from ticket_core.errors import InvalidInput

FieldType = Literal["text", "textarea", "email", "phone", "select", "file"]
EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']+\.[^@\s<>\"']{2,}$")
PHONE_RE = re.compile(r"^\+?[0-9 ()\-]{5,20}$")


@dataclass(frozen=True)
class FormField:
    name: str
    type: FieldType
    label: Mapping[str, str]  # locale -> label
    required: bool = False
    max_length: int = 200
    options: tuple[tuple[str, Mapping[str, str]], ...] = ()  # (value, labels) for select
    help: Mapping[str, str] = field(default_factory=dict)

    def label_for(self, locale: str) -> str:
        return self.label.get(locale) or self.label.get("en") or self.name


@dataclass(frozen=True)
class FormDefinition:
    name: str
    title: Mapping[str, str]
    fields: tuple[FormField, ...]
    intro: Mapping[str, str] = field(default_factory=dict)
    # A submission must give at least one way to reach the customer.
    contact_one_of: tuple[str, ...] = ("email", "phone")
    max_files: int = 5

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["fields"] = [asdict(f) for f in self.fields]
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> FormDefinition:
        fields = tuple(
            FormField(**{**f, "options": tuple((v, labels) for v, labels in f.get("options", ()))})
            for f in doc["fields"]
        )
        return cls(
            name=doc["name"],
            title=doc["title"],
            fields=fields,
            intro=doc.get("intro", {}),
            contact_one_of=tuple(doc.get("contact_one_of", ("email", "phone"))),
            max_files=int(doc.get("max_files", 5)),
        )


def _l(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh-CN": zh}


SUPPORT_FORM = FormDefinition(
    name="support",
    title=_l("Contact support", "联系售后"),
    intro=_l(
        "Tell us what happened. We answer by email or phone.",
        "请描述您遇到的问题，我们会通过邮件或电话回复您。",
    ),
    fields=(
        FormField("name", "text", _l("Your name", "您的姓名"), max_length=100),
        FormField(
            "email",
            "email",
            _l("Email", "电子邮箱"),
            max_length=254,
            help=_l("Email or phone is required.", "邮箱和电话至少填写一项。"),
        ),
        FormField("phone", "phone", _l("Phone", "手机号码"), max_length=20),
        FormField("subject", "text", _l("Subject", "问题标题"), required=True, max_length=200),
        FormField(
            "description",
            "textarea",
            _l("Describe the problem", "问题描述"),
            required=True,
            max_length=10_000,
        ),
        FormField(
            "category",
            "select",
            _l("Category", "问题类型"),
            options=(
                ("", _l("Choose…", "请选择…")),
                ("printer", _l("Printer", "打印机")),
                ("router", _l("Router / network", "路由器 / 网络")),
                ("appliance", _l("Home appliance", "家电")),
                ("order", _l("Order / delivery", "订单 / 物流")),
                ("other", _l("Other", "其他")),
            ),
        ),
        FormField(
            "attachments",
            "file",
            _l("Attachments", "附件"),
            help=_l("Photos or documents, up to 10 MB each.", "图片或文档，每个不超过 10 MB。"),
        ),
    ),
)


def validate_submission(form: FormDefinition, data: Mapping[str, str]) -> dict[str, str]:
    """Clean values for the form's text fields, or InvalidInput with a message per field."""
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}
    known = {f.name for f in form.fields}
    for f in form.fields:
        if f.type == "file":
            continue
        value = str(data.get(f.name, "") or "").strip()
        if "\x00" in value:
            errors[f.name] = "contains a NUL character"
            continue
        if not value:
            if f.required:
                errors[f.name] = "is required"
            continue
        if len(value) > f.max_length:
            errors[f.name] = f"is longer than {f.max_length} characters"
        elif f.type == "email" and not EMAIL_RE.match(value):
            errors[f.name] = "is not a valid email address"
        elif f.type == "phone" and not PHONE_RE.match(value):
            errors[f.name] = "is not a valid phone number"
        elif f.type == "select" and value not in {v for v, _ in f.options}:
            errors[f.name] = "is not one of the offered choices"
        elif f.type in ("text", "email", "phone", "select") and ("\n" in value or "\r" in value):
            errors[f.name] = "must be a single line"
        clean[f.name] = value.lower() if f.type == "email" else value
    contact = [n for n in form.contact_one_of if n in known]
    if contact and not any(clean.get(n) for n in contact):
        for n in contact:
            errors.setdefault(n, "email or phone is required")
    if errors:
        raise InvalidInput("the submission has invalid fields", code="invalid_fields", fields=errors)
    return clean


class MongoFormStore:
    """Form definitions, cached for a few seconds: every submission needs one, and a database read per
    submission would cost intake a large share of the database's capacity."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, cache_seconds: float = 5.0) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, FormDefinition | None]] = {}

    async def get(self, name: str) -> FormDefinition | None:
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and now - hit[0] < self._cache_seconds:
            return hit[1]
        doc = await self._db.forms.find_one({"name": name})
        form = FormDefinition.from_doc(doc) if doc else None
        if len(self._cache) > 1000:  # unknown names must not grow it without bound
            self._cache.clear()
        self._cache[name] = (now, form)
        return form

    async def seed_default(self) -> bool:
        """Store the default `support` form when it is missing; True when it was added."""
        result = await self._db.forms.update_one(
            {"name": SUPPORT_FORM.name}, {"$setOnInsert": SUPPORT_FORM.to_doc()}, upsert=True
        )
        return result.upserted_id is not None
