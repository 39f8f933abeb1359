"""Delivering an outbox record to a follower: customer-service messages inside the window, template
messages outside it.

WeChat allows customer-service messages only within 48 hours of the follower's last message (5 of them),
or a minute after a menu click, follow or scan (3). Ticket notifications outside that window go as
template messages; dialog replies have no template form, so they are attempted and end `dead` with the
platform's reason if the window is closed. 43004 (not following) and 40037 (bad template) are permanent
(the outbox ends the record dead, no retry storm); 45009 and 5xx are retried with backoff by the outbox
because the API client raises RateLimited / ChannelUnavailable for them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from channels.base import SendResult
from channels.wechat.api_client import WeChatApiClient
from channels.wechat.errors import CustomerServiceWindowClosed
from channels.wechat.replies import Article, split_text
from ticket_core.messages import OutboundMessage

log = logging.getLogger(__name__)

#: The events the notifier sends (docs/architecture.md); `solved` is status_changed to solved.
NOTIFICATION_EVENTS = frozenset({"ticket_created", "status_changed", "public_reply", "solved"})
#: Suggested articles sent as news messages (one article each, WeChat's current limit) per reply.
MAX_NEWS_PER_REPLY = 3


@dataclass(frozen=True)
class TemplateMessage:
    template_id: str
    data: Mapping[str, str]
    url: str | None = None


class TemplateComposer(Protocol):
    """Builds the template message for a ticket notification (the gateway renders templates/wechat/)."""

    async def compose(self, message: OutboundMessage) -> TemplateMessage | None: ...


class Window(Protocol):
    async def reserve(self, openid: str) -> bool: ...

    async def refund(self, openid: str) -> None: ...

    async def close(self, openid: str) -> None: ...


class NoTemplates:
    async def compose(self, message: OutboundMessage) -> TemplateMessage | None:
        return None


@dataclass
class WeChatSender:
    api: WeChatApiClient
    window: Window
    composer: TemplateComposer = field(default_factory=NoTemplates)

    async def send(self, message: OutboundMessage) -> SendResult:
        openid = message.recipient
        if message.kind == "template" and message.template:
            return await self._send_template(openid, _explicit_template(message))
        if str(message.meta.get("event", "")) in NOTIFICATION_EVENTS:
            return await self._send_notification(openid, message)
        return await self._send_custom(openid, message)

    async def _send_notification(self, openid: str, message: OutboundMessage) -> SendResult:
        if await self.window.reserve(openid):
            try:
                return await self._send_custom(openid, message, reserved=True)
            except CustomerServiceWindowClosed as exc:
                log.info("wechat %s: window closed at the platform (%s), using a template", openid, exc)
                await self.window.close(openid)
        template = await self.composer.compose(message)
        if template is None:
            # No template configured for this event: the platform decides (45015 ends it dead).
            return await self._send_custom(openid, message)
        return await self._send_template(openid, template)

    async def _send_template(self, openid: str, template: TemplateMessage) -> SendResult:
        msgid = await self.api.send_template(openid, template.template_id, template.data, url=template.url)
        return SendResult(
            platform_id=str(msgid), detail={"via": "template", "template_id": template.template_id}
        )

    async def _send_custom(
        self, openid: str, message: OutboundMessage, *, reserved: bool = False
    ) -> SendResult:
        articles = _articles(message.meta.get("articles"))[:MAX_NEWS_PER_REPLY]
        chunks = split_text(message.text) if message.text.strip() else []
        sent = 0
        parts: list[str | list[Article]] = [*[[a] for a in articles], *chunks]
        for index, part in enumerate(parts):
            if index > 0 or not reserved:
                # Every message uses quota; a closed window is left to the platform to confirm.
                await self.window.reserve(openid)
            try:
                if isinstance(part, str):
                    await self.api.send_custom_text(openid, part)
                else:
                    await self.api.send_custom_news(openid, part)
            except CustomerServiceWindowClosed:
                raise
            except Exception:
                await self.window.refund(openid)
                raise
            sent += 1
        return SendResult(detail={"via": "custom", "messages": sent})


def _explicit_template(message: OutboundMessage) -> TemplateMessage:
    spec: Mapping[str, Any] = message.template
    data = spec.get("data") or {}
    return TemplateMessage(
        template_id=str(spec.get("template_id", "")),
        data={str(k): str(v) for k, v in dict(data).items()},
        url=str(spec["url"]) if spec.get("url") else None,
    )


def _articles(raw: Any) -> list[Article]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return []
    out = []
    for item in raw:
        if isinstance(item, Mapping) and item.get("title"):
            out.append(
                Article(
                    title=str(item["title"]),
                    description=str(item.get("summary") or ""),
                    url=str(item.get("url") or ""),
                    pic_url=str(item.get("pic_url") or ""),
                )
            )
    return out
