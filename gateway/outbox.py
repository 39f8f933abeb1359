"""Every outbound message is a record first; the worker delivers it through the channel's `send()`.

Retries use exponential backoff with jitter, honour a platform's `retry_after`, and end each record as
`sent` or `dead` with the platform's error. Claims are guarded updates, so several processes can run
workers against one database without sending a record twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError, PyMongoError

from channels.base import ChannelRegistry
from gateway.config import OutboxSettings
from gateway.database import Db
from gateway.lifecycle import Component, TaskGroup
from ticket_core.errors import ChannelError, RateLimited
from ticket_core.messages import OutboundMessage

log = logging.getLogger(__name__)

# Rate limits are the platform pacing us, not a failure: they get a larger allowance than errors.
RATE_LIMIT_ALLOWANCE = 20


def _now() -> datetime:
    return datetime.now(UTC)


class Outbox(Component):
    def __init__(
        self,
        db: Db,
        registry: ChannelRegistry,
        settings: OutboxSettings,
        *,
        run_worker: bool = True,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._db = db
        self._registry = registry
        self._settings = settings
        self._run_worker = run_worker
        self._clock = clock
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{ObjectId()}"
        self._wakeup = asyncio.Event()
        # Deliveries in flight per (channel, account), each up to `concurrency`: a hung platform API
        # fills only its own slots, never those of the other channels.
        self._active: dict[tuple[Any, Any], int] = {}
        self._tasks = TaskGroup("outbox")
        self._inflight: set[ObjectId] = set()
        self._busy: set[tuple[Any, Any, Any]] = set()
        self.stats = {"sent": 0, "retried": 0, "dead": 0}

    async def initialize(self) -> None:
        if self._run_worker:
            self._tasks.spawn(self._loop(), name="outbox-worker")

    async def shutdown(self) -> None:
        await self._tasks.cancel_all()
        try:
            await self._db.outbox.update_many(
                {"owner": self._owner, "state": "sending"},
                {"$set": {"state": "pending", "next_attempt_at": self._clock()}},
            )
        except PyMongoError:
            log.warning("could not release outbox leases; they expire by themselves")

    async def enqueue(
        self,
        message: OutboundMessage,
        *,
        idempotency_key: str,
        ticket_id: str | None = None,
        event: str | None = None,
        hold_seconds: float = 0.0,
    ) -> str:
        """Store the message for delivery; the same key twice stores it once (returns the first id).

        `hold_seconds` keeps the worker away for a while so the request that caused the message can
        still take it as a passive reply (`claim_for_reply`); otherwise the worker sends it after the hold.
        """
        now = self._clock()
        doc = {
            "_id": ObjectId(),
            "idempotency_key": idempotency_key,
            "channel": message.channel,
            "account": message.account,
            "recipient": message.recipient,
            "message": message.to_doc(),
            "ticket_id": ticket_id,
            "event": event,
            "state": "pending",
            "attempts": 0,
            "rate_limited": 0,
            "next_attempt_at": now + timedelta(seconds=hold_seconds),
            "created_at": now,
            "history": [],
        }
        try:
            await self._db.outbox.insert_one(doc)
        except DuplicateKeyError:
            existing = await self._db.outbox.find_one({"idempotency_key": idempotency_key}, {"_id": 1})
            return str(existing["_id"]) if existing else ""
        self._wakeup.set()
        return str(doc["_id"])

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except PyMongoError as exc:
                log.warning("outbox poll failed: %s", exc)
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._settings.poll_interval_seconds)
            except TimeoutError:
                pass
            self._wakeup.clear()

    async def run_once(self) -> int:
        """Claim and start delivering what is due; returns how many records were taken."""
        now = self._clock()
        await self._db.outbox.update_many(  # a crashed sender's records become due again
            {"state": "sending", "lease_until": {"$lt": now}}, {"$set": {"state": "pending"}}
        )
        cursor = (
            self._db.outbox.find(
                {"state": "pending", "next_attempt_at": {"$lte": now}},
                {"_id": 1, "next_attempt_at": 1, "channel": 1, "account": 1, "recipient": 1},
            )
            .sort([("next_attempt_at", 1), ("_id", 1)])
            .limit(100)
        )
        taken = 0
        async for doc in cursor:
            # One message at a time per recipient, oldest first, so a chat reads in the order written.
            recipient = (doc.get("channel"), doc.get("account"), doc.get("recipient"))
            if doc["_id"] in self._inflight or recipient in self._busy:
                continue
            account = recipient[:2]
            if self._active.get(account, 0) >= self._settings.concurrency:
                continue  # this account's slots are all busy; claim it when one frees up
            lease = now + timedelta(seconds=self._settings.lease_seconds)
            claim = await self._db.outbox.update_one(
                {"_id": doc["_id"], "state": "pending", "next_attempt_at": doc["next_attempt_at"]},
                {"$set": {"state": "sending", "owner": self._owner, "lease_until": lease}},
            )
            if claim.modified_count == 1:
                taken += 1
                self._inflight.add(doc["_id"])
                self._busy.add(recipient)
                self._active[account] = self._active.get(account, 0) + 1
                self._tasks.spawn(self._deliver(doc["_id"], recipient), name="outbox-send")
        return taken

    async def _deliver(self, record_id: ObjectId, recipient: tuple[Any, Any, Any]) -> None:
        try:
            doc = await self._db.outbox.find_one({"_id": record_id})
            if doc is not None:
                await self._attempt(doc)
        except PyMongoError as exc:
            log.warning("outbox record %s: database error, the lease will expire: %s", record_id, exc)
        finally:
            self._inflight.discard(record_id)
            self._busy.discard(recipient)
            account = recipient[:2]
            self._active[account] -= 1
            if not self._active[account]:
                del self._active[account]
            self._wakeup.set()  # the recipient's next message may be waiting

    async def _attempt(self, doc: dict[str, Any]) -> None:
        message = OutboundMessage.from_doc(doc["message"])
        attempts = int(doc.get("attempts", 0)) + 1
        now = self._clock()
        try:
            channel = self._registry.sender(message.channel, message.account)
            result = await channel.send(message)
        except RateLimited as exc:
            await self._reschedule(
                doc, attempts - 1, exc, delay=max(exc.retry_after, 0.05), rate_limited=True
            )
            return
        except ChannelError as exc:
            if not exc.retryable:
                await self._finish_dead(doc, attempts, exc)
            else:
                await self._reschedule(doc, attempts, exc, delay=self._backoff(attempts))
            return
        except Exception as exc:  # an adapter bug must not kill the worker; it is a retryable failure
            log.exception("channel %s/%s raised unexpectedly", message.channel, message.account)
            await self._reschedule(doc, attempts, exc, delay=self._backoff(attempts))
            return
        self.stats["sent"] += 1
        await self._db.outbox.update_one(
            {"_id": doc["_id"], "owner": self._owner},
            {
                "$set": {
                    "state": "sent",
                    "sent_at": now,
                    "attempts": attempts,
                    "platform_id": result.platform_id,
                    "result": result.detail,
                },
                "$unset": {"lease_until": ""},
                "$push": {"history": {"at": now, "outcome": "sent"}},
            },
        )

    def _backoff(self, attempts: int) -> float:
        base = self._settings.retry_base_seconds * 2 ** (attempts - 1)
        return min(self._settings.retry_max_seconds, base) * (0.5 + random.random() / 2)

    async def _reschedule(
        self, doc: dict[str, Any], attempts: int, exc: Exception, *, delay: float, rate_limited: bool = False
    ) -> None:
        limited = int(doc.get("rate_limited", 0)) + (1 if rate_limited else 0)
        if attempts >= self._settings.max_attempts or limited > RATE_LIMIT_ALLOWANCE:
            await self._finish_dead(doc, max(attempts, 1), exc)
            return
        self.stats["retried"] += 1
        now = self._clock()
        await self._db.outbox.update_one(
            {"_id": doc["_id"], "owner": self._owner},
            {
                "$set": {
                    "state": "pending",
                    "attempts": attempts,
                    "rate_limited": limited,
                    "next_attempt_at": now + timedelta(seconds=delay),
                    "last_error": _describe(exc),
                },
                "$unset": {"lease_until": ""},
                "$push": {
                    "history": {"at": now, "outcome": "retry", "error": _describe(exc), "delay": delay}
                },
            },
        )
        self._tasks.spawn(self._wake_after(delay), name="outbox-wake")

    async def _wake_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._wakeup.set()

    async def _finish_dead(self, doc: dict[str, Any], attempts: int, exc: Exception) -> None:
        self.stats["dead"] += 1
        now = self._clock()
        log.warning("outbox record %s is dead after %d attempt(s): %s", doc["_id"], attempts, _describe(exc))
        await self._db.outbox.update_one(
            {"_id": doc["_id"], "owner": self._owner},
            {
                "$set": {
                    "state": "dead",
                    "attempts": attempts,
                    "last_error": _describe(exc),
                    "dead_at": now,
                    "error_code": getattr(exc, "platform_code", None),
                },
                "$unset": {"lease_until": ""},
                "$push": {"history": {"at": now, "outcome": "dead", "error": _describe(exc)}},
            },
        )

    def wake(self) -> None:
        self._wakeup.set()

    async def claim_for_reply(self, record_id: str, *, via: str = "passive") -> OutboundMessage | None:
        """Take a still-pending record to answer it in the HTTP response itself (WeChat's passive reply).

        The guarded update makes this exactly-once against the worker: whoever moves it out of
        `pending` first delivers it. None when the worker was first (or the id is unknown).
        """
        now = self._clock()
        oid = ObjectId(record_id)
        # update_one + find_one: find_one_and_update slows down as the collection grows (embedded database)
        claimed = await self._db.outbox.update_one(
            {"_id": oid, "state": "pending"},
            {
                "$set": {"state": "sent", "sent_at": now, "via": via, "attempts": 1},
                "$push": {"history": {"at": now, "outcome": "sent", "via": via}},
            },
        )
        if claimed.modified_count != 1:
            return None
        doc = await self._db.outbox.find_one({"_id": oid}, {"message": 1})
        if doc is None:
            return None
        self.stats["sent"] += 1
        return OutboundMessage.from_doc(doc["message"])


def _describe(exc: Exception) -> str:
    code = getattr(exc, "platform_code", None)
    text = f"{type(exc).__name__}: {exc}"
    return f"{text} (platform code {code})" if code is not None else text
