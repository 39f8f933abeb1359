"""Whether an automatic mail (a confirmation, a status notice) may go to a recipient at all.

Agents' replies (`OutboundMessage.automatic` false) always go. An automatic one is suppressed when the
recipient is one of our own mailboxes, when the last mail we got from them was itself automatic (an
out-of-office, a bounce, a list: answering it starts a robot conversation), or, for answers to their
mail (confirmations, dialog replies), when the recipient already got `auto_reply_limit` of them in the
current window; notices of agents' actions on a ticket are not capped. The cap is a list of message
fingerprints per recipient and fixed window in `channel_state`, taken with one guarded upsert: when
the list is full the filter no longer matches and the upsert collides on the unique key.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from channels.settings import EmailMailbox
from ticket_core.messages import OutboundMessage


class AutomaticMailGuard:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        box: EmailMailbox,
        own_addresses: frozenset[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._box = box
        self._own = own_addresses
        self._clock = clock

    async def refusal(self, message: OutboundMessage) -> str | None:
        """None when the mail may go; else why not (the outbox record ends dead with it)."""
        if not message.automatic:
            return None
        recipient = message.recipient.strip().lower()
        if recipient in self._own or _bare(recipient) in self._own:
            return "suppressed: the recipient is one of our own mailboxes"
        last = await self._db.inbox.find_one(
            {"conversation_key": f"email:{self._box.name}:{recipient}"},
            {"message.meta.automatic": 1, "message.meta.automatic_reasons": 1},
            sort=[("_id", DESCENDING)],
        )
        meta = ((last or {}).get("message") or {}).get("meta") or {}
        if meta.get("automatic"):
            reasons = ", ".join(meta.get("automatic_reasons") or []) or "automatic"
            return f"suppressed: the recipient's last mail was automatic ({reasons})"
        # A notice of what a person did on the ticket (status change, assignment) is not a robot's answer
        # to the customer's mail: only answers (confirmations, dialog replies) count against the cap, or
        # a busy ticket would stop telling its customer what happens.
        event = message.meta.get("event")
        if event not in (None, "ticket_created"):
            return None
        if not await self._take_slot(recipient, fingerprint(message)):
            return (
                f"suppressed: {self._box.auto_reply_limit} automatic mails to this recipient within "
                f"{self._box.auto_reply_window_seconds:.0f} s"
            )
        return None

    async def _take_slot(self, recipient: str, fingerprint: str) -> bool:
        """A slot in the recipient's window. Taken per message fingerprint, so a delivery retried after
        a 4xx does not use up a second slot."""
        limit = self._box.auto_reply_limit
        if limit <= 0:
            return False
        window = max(self._box.auto_reply_window_seconds, 1.0)
        bucket = math.floor(self._clock() / window)
        key = f"email:auto_cap:{self._box.name}:{recipient}:{bucket}"
        expires = datetime.fromtimestamp((bucket + 1) * window, UTC) + timedelta(seconds=60)
        # Two steps, not one `$or` filter (the embedded database scans the whole collection for one).
        try:
            await self._db.channel_state.update_one(
                {"key": key, f"sent.{limit - 1}": {"$exists": False}},
                {"$addToSet": {"sent": fingerprint}, "$setOnInsert": {"expires_at": expires}},
                upsert=True,
            )
        except DuplicateKeyError:
            # The window is full: only a message already counted in it (a retried send) may go.
            return (
                await self._db.channel_state.find_one({"key": key, "sent": fingerprint}, {"_id": 1})
                is not None
            )
        return True


def fingerprint(message: OutboundMessage) -> str:
    doc = message.to_doc()
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:32]


def _bare(address: str) -> str:
    """support+tag@example.com -> support@example.com."""
    local, at, domain = address.partition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if at else address
