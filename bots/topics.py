"""Where each ticket lives in the staff group: its forum topic, or its root message without topics.

Kept in `channel_state` (unique `key`), both ways: ticket -> thread for posting, thread or message ->
ticket for agents' answers. Creating a topic is claimed first with a guarded upsert, so retries and
concurrent deliveries create it once; a claim that outlives `claim_seconds` (a crashed process) is
taken over.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from ticket_core.repository import Db


def _now() -> datetime:
    return datetime.now(UTC)


class TopicStore:
    def __init__(self, db: Db, bot: str, chat_id: int, *, claim_seconds: float = 30.0) -> None:
        self._db = db
        self._bot = bot
        self.chat_id = chat_id
        self._claim = timedelta(seconds=claim_seconds)

    def _ticket_key(self, ticket_id: str) -> str:
        return f"relay:{self._bot}:{self.chat_id}:ticket:{ticket_id}"

    def _thread_key(self, thread_id: int) -> str:
        return f"relay:{self._bot}:{self.chat_id}:thread:{thread_id}"

    def _message_key(self, message_id: int) -> str:
        return f"relay:{self._bot}:{self.chat_id}:message:{message_id}"

    async def for_ticket(self, ticket_id: str) -> dict[str, Any] | None:
        """`{"thread_id"}` (topics) or `{"root_message_id"}` (replies), once known."""
        return await self._db.channel_state.find_one({"key": self._ticket_key(ticket_id)})

    async def claim(self, ticket_id: str, owner: str) -> bool:
        """True when `owner` may create the ticket's topic now (nobody has, nobody else is)."""
        now = _now()
        key = self._ticket_key(ticket_id)
        claim = {"claim_owner": owner, "claim_until": now + self._claim, "ticket_id": ticket_id}
        # Read, decide, then compare-and-set on what was read: an `$or` filter would make the embedded
        # database scan all of channel_state, which grows with every ticket.
        doc = await self._db.channel_state.find_one({"key": key})
        if doc is None:
            try:
                await self._db.channel_state.insert_one({"key": key, **claim})
            except DuplicateKeyError:
                return False
            return True
        until = doc.get("claim_until")
        if "thread_id" in doc or not (doc.get("claim_owner") == owner or until is None or until < now):
            return False
        result = await self._db.channel_state.update_one(
            {
                "key": key,
                "thread_id": {"$exists": False},
                "claim_owner": doc.get("claim_owner"),
                "claim_until": until,
            },
            {"$set": claim},
        )
        return result.modified_count == 1

    async def release(self, ticket_id: str, owner: str) -> None:
        """Give up a claim after a failed attempt, so the retry need not wait for it to lapse."""
        await self._db.channel_state.update_one(
            {"key": self._ticket_key(ticket_id), "claim_owner": owner}, {"$unset": {"claim_until": ""}}
        )

    async def set_thread(self, ticket_id: str, thread_id: int) -> None:
        await self._db.channel_state.update_one(
            {"key": self._thread_key(thread_id)},
            {"$set": {"ticket_id": ticket_id, "chat_id": self.chat_id}},
            upsert=True,
        )
        await self._db.channel_state.update_one(
            {"key": self._ticket_key(ticket_id)},
            {"$set": {"thread_id": thread_id, "chat_id": self.chat_id}, "$unset": {"claim_until": ""}},
        )

    async def set_root(self, ticket_id: str, message_id: int) -> None:
        """Without topics: the ticket's first message in the group, which later posts reply to."""
        try:
            await self._db.channel_state.update_one(
                {"key": self._ticket_key(ticket_id), "root_message_id": {"$exists": False}},
                {"$set": {"root_message_id": message_id, "chat_id": self.chat_id, "ticket_id": ticket_id}},
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # the root is already known: the first post wins

    async def remember_messages(self, ticket_id: str, message_ids: list[int]) -> None:
        for message_id in message_ids:
            await self._db.channel_state.update_one(
                {"key": self._message_key(message_id)},
                {"$set": {"ticket_id": ticket_id, "chat_id": self.chat_id}},
                upsert=True,
            )

    async def ticket_for_thread(self, thread_id: int) -> str | None:
        doc = await self._db.channel_state.find_one({"key": self._thread_key(thread_id)})
        return str(doc["ticket_id"]) if doc else None

    async def ticket_for_message(self, message_id: int) -> str | None:
        doc = await self._db.channel_state.find_one({"key": self._message_key(message_id)})
        return str(doc["ticket_id"]) if doc else None
