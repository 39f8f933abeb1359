"""Customer satisfaction: signed rating links, recording a rating, and the follow-up on a low one.

A rating is kept on the ticket (`csat: {score, comment, at}`, the latest counts) and recorded as a
`csat` ticket event. A score of 2 or less opens one follow-up task for the team lead (`tasks`).
Ratings may also arrive through the Telegram buttons (`bots/csat.py` writes the same shapes); the
operations sweep picks those up by `csat.at`, so every rating gets the same follow-up.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from ticket_core.errors import InvalidInput, NotFound
from ticket_core.events import EventDispatcher
from ticket_core.model import Actor, Ticket
from ticket_core.ops_events import CsatRated
from ticket_core.repository import Db, TicketRepository, object_id

LOW_SCORE = 2
MAX_COMMENT = 2000
# "5", "4 quick and friendly", "3分", "2: slow" -- a bare rating as a reply on email or WeChat
REPLY_PATTERN = re.compile(r"^\s*([1-5])\s*(?:分|星|/\s*5)?\s*[-:：,，.。!！]?\s*(.*)$", re.S)


def _now() -> datetime:
    return datetime.now(UTC)


class CsatTokens:
    """`<ticket id>.<hmac>`: a customer's link to rate one ticket, unguessable and unforgeable."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @staticmethod
    async def load(db: Db) -> CsatTokens:
        """The secret lives in MongoDB so every process signs and verifies alike."""
        doc = await db.settings.find_one({"_id": "csat_secret"})
        if doc is None:
            try:
                await db.settings.insert_one({"_id": "csat_secret", "value": secrets.token_hex(32)})
            except DuplicateKeyError:
                pass
            doc = await db.settings.find_one({"_id": "csat_secret"})
        assert doc is not None
        return CsatTokens(str(doc["value"]).encode())

    def sign(self, ticket_id: str) -> str:
        mac = hmac.new(self._secret, f"csat:{ticket_id}".encode(), hashlib.sha256).digest()[:18]
        return f"{ticket_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def verify(self, token: str) -> str:
        ticket_id, _, _mac = token.partition(".")
        # compare bytes: compare_digest refuses non-ASCII str, and a link is whatever a browser sends
        if not ticket_id or not hmac.compare_digest(
            self.sign(ticket_id).encode(), token.encode("utf-8", "replace")
        ):
            raise NotFound("this rating link is not valid")
        return ticket_id


def parse_reply(text: str) -> tuple[int, str] | None:
    """A short reply that is a rating (and maybe a comment); None for anything else."""
    if len(text) > 500:
        return None
    match = REPLY_PATTERN.match(text)
    if not match:
        return None
    return int(match.group(1)), match.group(2).strip()


def validate(score: Any, comment: Any) -> tuple[int, str | None]:
    try:
        value = int(str(score))
    except ValueError:
        value = 0
    if not 1 <= value <= 5:
        raise InvalidInput("score must be 1-5", code="invalid_fields", fields={"score": "1-5"})
    if comment is not None and not isinstance(comment, str):
        raise InvalidInput("comment must be text", code="invalid_fields", fields={"comment": "text"})
    text = (comment or "").strip()[:MAX_COMMENT] or None
    return value, text


class CsatService:
    def __init__(
        self,
        db: Db,
        tickets: TicketRepository,
        events: EventDispatcher,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._db = db
        self._tickets = tickets
        self._events = events
        self._clock = clock

    async def rate(
        self, ticket: Ticket, score: int, comment: str | None, actor: Actor, *, event_id: str
    ) -> None:
        if ticket.status not in ("solved", "closed"):
            raise InvalidInput("only a solved ticket can be rated", code="not_solved")
        now = self._clock()
        await self._tickets.append_event(
            {
                "event_id": event_id,
                "ticket_id": ticket.id,
                "number": ticket.number,
                "type": "csat",
                "actor": dataclasses.asdict(actor),
                "at": now,
                "data": {"score": score, "comment": comment},
            }
        )
        await self._db.tickets.update_one(
            {"_id": object_id(ticket.id)}, {"$set": {"csat": {"score": score, "comment": comment, "at": now}}}
        )
        await self._events.publish(CsatRated(event_id, ticket.id, ticket.number, now, actor, score, comment))

    async def follow_up(self, ticket: Ticket, score: int, comment: str | None) -> dict[str, Any] | None:
        """One task per ticket for its team lead when the rating is low; None otherwise or if it exists."""
        if score > LOW_SCORE:
            return None
        team = await self._db.teams.find_one({"name": ticket.team}) if ticket.team else None
        task = {
            "_id": f"csat-low:{ticket.id}",
            "kind": "csat_follow_up",
            "ticket_id": ticket.id,
            "number": ticket.number,
            "team": ticket.team,
            "assignee": (team or {}).get("lead"),
            "agent": ticket.assignee,
            "score": score,
            "comment": comment,
            "state": "open",
            "created_at": self._clock(),
        }
        try:
            await self._db.tasks.insert_one(task)
        except DuplicateKeyError:
            return None
        return task
