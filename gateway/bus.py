"""The durable message bus: every inbound message is one `inbox` record before anything acknowledges it.

Publishing batches concurrent inserts into `insert_many(ordered=False)` calls (group commit, two in
flight, one conversation's messages never in two at once). A record is
born leased to the process that stored it, which dispatches it at once from memory; messages of one
conversation are handled in order. A dispatching process keeps one heartbeat in `leases`; a periodic
sweep takes over records whose lease expired and whose owner's heartbeat stopped (a crashed process).
A failing handler is retried with backoff and, after the limit, the record is quarantined.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError, PyMongoError

from channels.base import Accepted
from gateway.config import BusSettings
from gateway.database import Db
from gateway.lifecycle import Component, TaskGroup
from gateway.logs import message_id
from gateway.quarantine import quarantine
from ticket_core.errors import StorageUnavailable
from ticket_core.messages import InboundMessage

log = logging.getLogger(__name__)

InboundHandler = Callable[[InboundMessage, str], Awaitable[dict[str, Any] | None]]
Pending = tuple[dict[str, Any], asyncio.Future[Accepted]]
DUPLICATE_KEY = 11000
#: Inserts in flight at once: the database stores one batch while this process answers another
#: (with one, each side waits for the other; two gave a third more intake on two cores).
FLUSHERS = 2


def _now() -> datetime:
    return datetime.now(UTC)


class MessageBus(Component):
    def __init__(
        self,
        db: Db,
        settings: BusSettings,
        handler: InboundHandler,
        *,
        dispatch: bool = True,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._db = db
        self._settings = settings
        self._handler = handler
        self._dispatch = dispatch
        self._clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{ObjectId()}"
        self._pending: list[Pending] = []
        self._wakeup = asyncio.Event()
        self._inserting: set[str] = set()  # conversation keys of the batches being inserted
        self._queues: dict[str, deque[dict[str, Any]]] = {}
        self._queued: set[ObjectId] = set()  # every record now in one of `_queues`
        self._results: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self._slots = asyncio.Semaphore(settings.workers)
        self._tasks = TaskGroup("bus")
        self._closing = False
        self.stats = {
            "published": 0,
            "duplicates": 0,
            "handled": 0,
            "failed": 0,
            "quarantined": 0,
            "batches": 0,
        }

    # -- lifecycle -------------------------------------------------------------------------------------

    async def initialize(self) -> None:
        for n in range(FLUSHERS):
            self._tasks.spawn(self._flush_loop(), name=f"bus-group-commit-{n}")
        if self._dispatch:
            with contextlib.suppress(PyMongoError):  # the loop keeps trying; the sweep needs no beat
                await self._beat()
            self._tasks.spawn(self._heartbeat_loop(), name="bus-heartbeat")
            self._tasks.spawn(self._sweep_loop(), name="bus-sweep")

    async def shutdown(self) -> None:
        self._closing = True
        self._wakeup.set()
        # Let what is already queued for insertion reach the database before stopping.
        for _ in range(100):
            if not self._pending:
                break
            await asyncio.sleep(0.01)
        await self._tasks.cancel_all()
        for _, fut in self._pending:
            if not fut.done():
                fut.set_exception(StorageUnavailable("gateway is shutting down"))
        self._pending.clear()
        await self._release_leases()
        with contextlib.suppress(PyMongoError):
            await self._db.leases.delete_one({"_id": self._heartbeat_id})

    async def _release_leases(self) -> None:
        """Hand our unfinished records back at once so a restart need not wait for the lease."""
        with contextlib.suppress(PyMongoError):
            await self._db.inbox.update_many(
                {"owner": self.owner, "state": "processing"},
                {"$set": {"state": "pending", "lease_until": self._clock()}},
            )

    # -- publishing ------------------------------------------------------------------------------------

    async def publish(self, msg: InboundMessage) -> Accepted:
        """Returns once the record is durable (or found to be a duplicate). Raises StorageUnavailable."""
        if self._closing:
            raise StorageUnavailable("gateway is shutting down")
        now = self._clock()
        doc = {
            "_id": ObjectId(),
            "dedup_key": msg.dedup_key,
            "conversation_key": msg.conversation_key,
            "channel": msg.channel,
            "account": msg.account,
            "message": msg.to_doc(),
            "state": "processing",
            "owner": self.owner,
            "lease_until": now + timedelta(seconds=self._settings.lease_seconds),
            "attempts": 0,
            "received_at": now,
        }
        fut: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._pending.append((doc, fut))
        self._wakeup.set()
        try:
            # A platform must hear "not stored" in time to retry (WeChat waits 5 s): past the limit we say
            # so, even though the insert may still land; the retry then finds it as a duplicate.
            return await asyncio.wait_for(asyncio.shield(fut), self._settings.publish_timeout_seconds)
        except TimeoutError:
            raise StorageUnavailable(
                f"the message could not be stored within {self._settings.publish_timeout_seconds:g} s"
            ) from None

    async def _flush_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if len(self._pending) < self._settings.max_batch and not self._closing:
                await asyncio.sleep(self._settings.group_commit_ms / 1000)
            while batch := self._take_batch():
                if self._pending:
                    self._wakeup.set()  # another flusher takes the rest meanwhile
                keys = {doc["conversation_key"] for doc, _ in batch}
                self._inserting |= keys
                try:
                    await self._insert_batch(batch)
                finally:
                    self._inserting -= keys

    def _take_batch(self) -> list[Pending]:
        """The next batch: half of what waits when no insert is in flight (so a second flusher can
        store the other half in parallel), else up to `max_batch`. A message whose conversation has an
        insert in flight waits for it, so one conversation's records are stored, and dispatched, in
        the order they arrived."""
        limit = self._settings.max_batch
        if not self._inserting:  # every batch holds at least one conversation
            limit = min(limit, (len(self._pending) + 1) // 2)
        batch: list[Pending] = []
        rest: list[Pending] = []
        for item in self._pending:
            if len(batch) < limit and item[0]["conversation_key"] not in self._inserting:
                batch.append(item)
            else:
                rest.append(item)
        self._pending = rest
        return batch

    async def _insert_batch(self, batch: list[Pending]) -> None:
        failed: dict[int, int] = {}
        try:
            await self._db.inbox.insert_many([doc for doc, _ in batch], ordered=False)
        except BulkWriteError as exc:
            failed = {err["index"]: err.get("code", 0) for err in exc.details.get("writeErrors", [])}
        except PyMongoError as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(StorageUnavailable(f"could not store the message: {exc}"))
            return
        self.stats["batches"] += 1
        for index, (doc, fut) in enumerate(batch):
            if fut.done():
                continue
            code = failed.get(index)
            if code is None:
                self.stats["published"] += 1
                fut.set_result(Accepted(str(doc["_id"]), duplicate=False))
                if self._dispatch:
                    self._enqueue(doc)
            elif code == DUPLICATE_KEY:
                self.stats["duplicates"] += 1
                self._tasks.spawn(self._resolve_duplicate(doc, fut), name="bus-duplicate")
            else:
                fut.set_exception(StorageUnavailable(f"could not store the message (code {code})"))

    async def _resolve_duplicate(self, doc: dict[str, Any], fut: asyncio.Future[Accepted]) -> None:
        try:
            existing = await self._db.inbox.find_one({"dedup_key": doc["dedup_key"]}, {"message.meta": 1})
        except PyMongoError as exc:
            fut.set_exception(StorageUnavailable(str(exc)))
            return
        if existing is None:  # cannot happen with a unique index, but never report a lost message as stored
            fut.set_exception(StorageUnavailable("duplicate record vanished"))
            return
        meta = existing.get("message", {}).get("meta") or {}
        fut.set_result(Accepted(str(existing["_id"]), duplicate=True, stored_meta=meta))

    # -- results ---------------------------------------------------------------------------------------

    async def wait_result(self, record_id: str, timeout: float) -> dict[str, Any] | None:
        """The handler's result for a record, or None if it is not done within `timeout` seconds."""
        if timeout <= 0:
            return None
        local = self._results.get(record_id)
        if local is not None:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(local), timeout)
            return None
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            doc = await self._db.inbox.find_one({"_id": ObjectId(record_id)}, {"state": 1, "result": 1})
            if doc is not None and doc.get("state") == "done":
                result: dict[str, Any] = doc.get("result") or {}
                return result
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(0.05)

    # -- dispatching -----------------------------------------------------------------------------------

    def _enqueue(self, doc: dict[str, Any]) -> None:
        if doc["_id"] in self._queued:
            return  # already waiting here (a retry can find a record that is queued again)
        self._queued.add(doc["_id"])
        key = str(doc["_id"])
        if key not in self._results:
            self._results[key] = asyncio.get_running_loop().create_future()
        conv = doc["conversation_key"]
        queue = self._queues.get(conv)
        if queue is not None:
            queue.append(doc)
            return
        self._queues[conv] = deque([doc])
        self._tasks.spawn(self._drain(conv), name=f"bus-conv-{conv[:40]}")

    async def _drain(self, conv: str) -> None:
        queue = self._queues[conv]
        try:
            while queue:
                doc = queue[0]
                await self._handle_in_order(doc)
                queue.popleft()
                self._queued.discard(doc["_id"])
        finally:
            if self._queues.get(conv) is queue and not queue:
                del self._queues[conv]

    async def _handle_in_order(self, doc: dict[str, Any]) -> None:
        """Handle `doc` once no other process holds an earlier message of its conversation.

        A load balancer spreads one chat's webhooks over instances; without this wait two processes ran
        turns of one conversation at once and one turn's dialog state overwrote the other's. In-process
        order comes from the conversation queue; this orders across processes by `received_at` (then
        `_id`), a total order, so two waits never wait for each other. The check runs under a worker
        slot, so a backlog of thousands of conversations makes at most `workers` look-ups at a time; the
        slot is given back while we wait. An earlier record whose owner crashed is taken over by a sweep
        and finished. Past a generous bound (a record stuck for another reason) we go on with a warning.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        pause = 0.05
        while True:
            async with self._slots:
                earlier = await self._earlier_elsewhere(doc)
                if earlier and loop.time() - started > 4 * self._settings.lease_seconds:
                    log.warning(
                        "an earlier message of %s is still unfinished; handling this one anyway", doc["_id"]
                    )
                    earlier = False
                if not earlier:
                    await self._handle(doc)
                    return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    async def _earlier_elsewhere(self, doc: dict[str, Any]) -> bool:
        received = doc.get("received_at")
        if received is None:
            return False
        # No `$or` for the tie on `received_at`: the embedded database then scans the whole inbox
        # (340 ms at 20,000 records instead of 1 ms); the few same-instant records are sorted out here.
        others = self._db.inbox.find(
            {
                "conversation_key": doc["conversation_key"],
                "state": {"$in": ["processing", "pending"]},
                "owner": {"$ne": self.owner},
                "received_at": {"$lte": received},
            },
            {"received_at": 1},
        ).limit(20)
        try:
            async for other in others:
                if other["received_at"] < received or other["_id"] < doc["_id"]:
                    return True
        except PyMongoError:
            return False  # the handler's own database calls will report the outage
        return False

    async def _handle(self, doc: dict[str, Any]) -> None:
        record_id = str(doc["_id"])
        message_id.set(record_id)  # each conversation drains in its own task: its logs carry the record
        attempts = int(doc.get("attempts", 0)) + 1
        try:
            msg = InboundMessage.from_doc(doc["message"])
            result = await self._handler(msg, record_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stats["failed"] += 1
            log.warning("handler failed for inbox record %s (attempt %d): %r", record_id, attempts, exc)
            await self._after_failure(doc, attempts, exc)
            return
        self.stats["handled"] += 1
        pause = 0.5
        while True:  # we stay its owner while alive, so no sweep would finish it for us
            try:
                await self._db.inbox.update_one(
                    {"_id": doc["_id"], "owner": self.owner},
                    {
                        "$set": {
                            "state": "done",
                            "result": result or {},
                            "done_at": self._clock(),
                            "attempts": attempts,
                        },
                        "$unset": {"lease_until": ""},
                    },
                )
                break
            except PyMongoError:
                if self._closing:
                    break  # shutdown hands the record back; the handler is idempotent, so a rerun is safe
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
        fut = self._results.pop(record_id, None)
        if fut is not None and not fut.done():
            fut.set_result(result or {})

    async def _after_failure(self, doc: dict[str, Any], attempts: int, exc: Exception) -> None:
        record_id = str(doc["_id"])
        reason = f"{type(exc).__name__}: {exc}"
        delay = self._settings.retry_base_seconds * 2 ** (attempts - 1) * (0.5 + random.random())
        try:
            if attempts >= self._settings.max_attempts:
                self.stats["quarantined"] += 1
                await quarantine(
                    self._db, source="inbox", reason=reason, payload=doc.get("message"), ref=record_id
                )
                await self._db.inbox.update_one(
                    {"_id": doc["_id"]},
                    {
                        "$set": {"state": "quarantined", "attempts": attempts, "last_error": reason},
                        "$unset": {"lease_until": ""},
                    },
                )
                fut = self._results.pop(record_id, None)
                if fut is not None and not fut.done():
                    fut.set_result({"quarantined": True, "error": reason})
                return
            retry_at = self._clock() + timedelta(seconds=delay)
            await self._db.inbox.update_one(
                {"_id": doc["_id"], "owner": self.owner},
                {
                    "$set": {
                        "state": "pending",
                        "attempts": attempts,
                        "last_error": reason,
                        "lease_until": retry_at,
                    }
                },
            )
        except PyMongoError:
            log.exception("could not record the failure of inbox record %s; retrying it here", record_id)
        self._tasks.spawn(self._retry_later(doc["_id"], delay), name="bus-retry")

    async def _retry_later(self, record_id: ObjectId, delay: float) -> None:
        """Make sure a record that is (or may have become) ours is handled here.

        While this process lives no sweep takes its records, so a claim that failed on a database error
        is tried again until the database answers: the error may even have come after the update was
        applied (a database frozen mid-request), leaving the record ours and queued nowhere.
        """
        await asyncio.sleep(delay)
        # Still ours (the failure may not have been recorded) and not taken by another process's sweep.
        guard = {"_id": record_id, "owner": self.owner, "state": {"$in": ["pending", "processing"]}}
        pause = 1.0
        while not self._closing:
            try:
                await self._claim(guard)
                return
            except PyMongoError:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)

    async def _claim(self, guard: dict[str, Any]) -> bool:
        """Take a record with a guarded update (`modified_count` tells who won) and queue it here."""
        lease = self._clock() + timedelta(seconds=self._settings.lease_seconds)
        result = await self._db.inbox.update_one(
            guard, {"$set": {"state": "processing", "owner": self.owner, "lease_until": lease}}
        )
        if result.modified_count != 1:
            return False
        doc = await self._db.inbox.find_one({"_id": guard["_id"]})
        if doc is None:
            return False
        self._enqueue(doc)
        return True

    async def _claim_and_enqueue(self, guard: dict[str, Any]) -> bool:
        try:
            return await self._claim(guard)
        except PyMongoError:
            self._tasks.spawn(self._retry_later(guard["_id"], 1.0), name="bus-retry")
            return False

    async def sweep_once(self) -> int:
        """Take over retries whose time has come, and the records of processes that stopped.

        A live process keeps its records however long they wait in its queues (a backlog of thousands
        behind `workers` slots outlasts any lease): a heartbeat per process, not a lease renewal per
        record, which on a backlog of 10,000 cost the database more than the work itself.
        """
        now = self._clock()
        live = await self._live_owners(now)
        taken = 0
        for query in (
            {"state": "pending", "lease_until": {"$lt": now}},
            {"state": "processing", "lease_until": {"$lt": now}, "owner": {"$nin": sorted(live)}},
        ):
            cursor = (
                self._db.inbox.find(query, {"_id": 1, "state": 1, "lease_until": 1}).sort("_id", 1).limit(500)
            )
            async for doc in cursor:
                if await self._claim_and_enqueue(
                    {"_id": doc["_id"], "state": doc["state"], "lease_until": doc["lease_until"]}
                ):
                    taken += 1
        return taken

    @property
    def _heartbeat_id(self) -> str:
        return f"bus-owner:{self.owner}"

    async def _beat(self) -> None:
        expires = self._clock() + timedelta(seconds=self._settings.lease_seconds)
        await self._db.leases.update_one(
            {"_id": self._heartbeat_id},
            {"$set": {"kind": "bus-owner", "owner": self.owner, "expires_at": expires}},
            upsert=True,
        )

    async def _live_owners(self, now: datetime) -> set[str]:
        beats = self._db.leases.find({"kind": "bus-owner", "expires_at": {"$gt": now}}, {"owner": 1})
        return {str(doc["owner"]) async for doc in beats}

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.lease_seconds / 4)
            try:
                await self._beat()
            except PyMongoError as exc:
                log.warning("could not record the bus heartbeat: %s", exc)

    async def _sweep_loop(self) -> None:
        while True:
            try:
                taken = await self.sweep_once()
                if taken:
                    log.info("sweep took over %d inbox record(s)", taken)
            except PyMongoError as exc:
                log.warning("inbox sweep failed: %s", exc)
            await asyncio.sleep(self._settings.sweep_interval_seconds)

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until nothing is queued for dispatch (tests and graceful shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._queues or self._pending) and loop.time() < deadline:
            await asyncio.sleep(0.01)
