"""Which ticket an incoming mail answers: by signed plus-address token, then by the Message-IDs of our
own mail it references (kept as `platform_id` on outbox records), then by `[T-000123]` in the subject.

The subject route is the weakest (anyone can type a number), so it only attaches mail from the
address the ticket answers to.
"""

from __future__ import annotations

import re
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from channels.email.inbound import ThreadMatch
from channels.email.mime_parse import ParsedEmail
from channels.email.reply_token import ReplyTokens
from ticket_core.errors import NotFound
from ticket_core.repository import TicketRepository

_SUBJECT_NUMBER = re.compile(r"\[\s*([A-Za-z]{1,10}-?\d{3,12})\s*\]")
MAX_REFERENCES = 30  # long threads: the newest references are the ones that can be ours


class ReplyThreader:
    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], tokens: ReplyTokens, tickets: TicketRepository
    ) -> None:
        self._db = db
        self._tokens = tokens
        self._tickets = tickets

    async def resolve(self, parsed: ParsedEmail) -> ThreadMatch | None:
        for token in parsed.plus_tokens:
            number = self._tokens.verify(token)
            if number:
                return ThreadMatch(number, "token")
        refs = [r for r in (*parsed.references, parsed.in_reply_to) if r][-MAX_REFERENCES:]
        if refs:
            doc = await self._db.outbox.find_one(
                {"platform_id": {"$in": refs}, "channel": "email"}, {"message.ticket_number": 1}
            )
            number = ((doc or {}).get("message") or {}).get("ticket_number")
            if number:
                return ThreadMatch(str(number), "references")
        sender = (parsed.from_addr or "").lower()
        for match in _SUBJECT_NUMBER.finditer(parsed.subject or ""):
            try:
                ticket = await self._tickets.get_by_number(match.group(1))
            except NotFound:
                continue
            if sender and ticket.reply_to.lower() == sender:
                return ThreadMatch(ticket.number, "subject")
        return None
