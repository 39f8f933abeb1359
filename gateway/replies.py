"""The dialog's replies become outbox records on the customer's own channel.

A channel that can answer inside the webhook's HTTP response (WeChat's passive reply) says so with a
`passive_hold_seconds` attribute: its replies are held that long so the webhook can claim them first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from channels.base import ChannelRegistry
from gateway.outbox import Outbox
from ticket_core.errors import UnknownChannel
from ticket_core.messages import InboundMessage, OutboundMessage


class OutboxReplier:
    def __init__(self, outbox: Outbox, registry: ChannelRegistry) -> None:
        self._outbox = outbox
        self._registry = registry

    async def reply(
        self,
        to: InboundMessage,
        text: str,
        *,
        key: str,
        locale: str,
        buttons: Sequence[tuple[str, str]] = (),
        articles: Sequence[Mapping[str, Any]] = (),
    ) -> str | None:
        try:
            channel = self._registry.sender(to.channel, to.account)
        except UnknownChannel:
            return None  # a web form is answered on its page, not by message
        meta: dict[str, Any] = {
            "conversation_key": to.conversation_key,
            "articles": [dict(a) for a in articles],
        }
        for name in ("message_id", "thread_id", "references"):
            if name in to.meta:
                meta[name] = to.meta[name]
        message = OutboundMessage(
            channel=to.channel,
            account=to.account,
            recipient=str(to.meta.get("reply_to") or to.identity.external_id),
            text=text,
            locale=locale,
            buttons=tuple((str(a), str(b)) for a, b in buttons),
            automatic=True,
            kind="articles" if articles else "text",
            meta=meta,
        )
        hold = float(getattr(channel, "passive_hold_seconds", 0.0))
        return await self._outbox.enqueue(message, idempotency_key=f"reply:{key}", hold_seconds=hold)
