"""Mail that is no conversation: a bounce is recorded on the outbox record of the mail it bounces (found
by our Message-ID, the record's `platform_id`); our own mail coming back is only noted. The inbox
record stays as the trace; the dialog never sees these (`kind = "mail_event"`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ticket_core.messages import InboundMessage


class MailEventHandler:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db

    async def __call__(self, msg: InboundMessage, record_id: str) -> dict[str, Any]:
        event = msg.fields.get("event", "")
        if event != "bounce":
            return {"action": "ignored", "event": event}
        bounced = msg.meta.get("bounced_message_id")
        if not bounced:
            return {"action": "bounce_unmatched", "reason": "the report names no Message-ID"}
        bounce = {
            "at": datetime.now(UTC),
            "inbox_id": record_id,
            "from": msg.identity.external_id,
            "subject": msg.subject,
            "reasons": list(msg.meta.get("automatic_reasons") or []),
            "detail": (msg.text or "")[:2000],
        }
        # Idempotent: a handler run again after a crash finds the same inbox id already recorded.
        result = await self._db.outbox.update_one(
            {"platform_id": bounced, "channel": "email", "bounce.inbox_id": {"$ne": record_id}},
            {"$set": {"bounce": bounce, "bounced_at": bounce["at"]},
             "$push": {"history": {"at": bounce["at"], "outcome": "bounced", "inbox_id": record_id}}},
        )  # fmt: skip
        if result.matched_count == 0:
            found = await self._db.outbox.find_one({"platform_id": bounced}, {"_id": 1})
            if found is None:
                return {"action": "bounce_unmatched", "bounced_message_id": bounced}
            return {"action": "bounce_recorded", "outbox_id": str(found["_id"])}
        return {"action": "bounce_recorded", "bounced_message_id": bounced}
