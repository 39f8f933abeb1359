"""MongoDB-backed state the WeChat channel shares between gateway processes.

- `MongoNonceCache`: the replay cache (`wechat_nonces`, a TTL collection keyed by `_id`).
- `MongoTokenStore`: one `channel_state` document per app id holding the access token and the
  refresh lease.
- `CustomerServiceWindow`: per follower, when the customer-service window opened and how many
  messages it still allows.
- `MongoDeliveryLog`: TEMPLATESENDJOBFINISH results written onto the outbox record.

Hot paths use inserts and `update_one` by `_id` with a guard (DESIGN.md section 5: the embedded
database makes `find_one_and_update` slow as a collection grows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from channels.wechat.api_client import AccessToken
from channels.wechat.inbound import WINDOW_EVENTS
from ticket_core.errors import StorageUnavailable

log = logging.getLogger(__name__)

Db = AsyncDatabase[dict[str, Any]]
Clock = Callable[[], float]
T = TypeVar("T")
DUPLICATE_KEY = 11000

#: After a user's message: 5 customer-service messages within 48 hours.
MESSAGE_WINDOW_SECONDS = 48 * 3600.0
MESSAGE_WINDOW_QUOTA = 5
#: After a menu click, a follow or a QR scan: 3 messages within one minute.
EVENT_WINDOW_SECONDS = 60.0
EVENT_WINDOW_QUOTA = 3


class GroupCommit(Generic[T]):
    """Batches concurrent writes: whoever holds the lock writes everything queued so far in one call,
    later holders find their result already set. The embedded database does ~350 single writes per
    second but several times that in batches, and these writes are on every callback's path."""

    def __init__(self, flush: Callable[[list[T]], Awaitable[list[BaseException | None]]]) -> None:
        self._flush = flush
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._lock = asyncio.Lock()

    async def submit(self, item: T) -> None:
        """Returns when `item` is written; raises what the flush reported for it."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        async with self._lock:
            if not fut.done():
                batch, self._pending = self._pending, []
                await self._run(batch)
        await fut

    async def _run(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        try:
            outcomes = await self._flush([item for item, _ in batch])
        except BaseException as exc:  # including cancellation: nobody may wait forever
            error = exc if isinstance(exc, Exception) else StorageUnavailable("write cancelled")
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(error)
            raise
        for (_, fut), outcome in zip(batch, outcomes, strict=True):
            if outcome is None:
                fut.set_result(None)
            else:
                fut.set_exception(outcome)


class MongoNonceCache:
    """`NonceCache` over a TTL collection. Concurrent callbacks are batched into one
    `insert_many(ordered=False)` (group commit): a nonce insert is on every callback's path, and the
    embedded database does ~350 single inserts per second but several times that in batches."""

    def __init__(self, db: Db, *, collection: str = "wechat_nonces", clock: Clock = time.time) -> None:
        self._coll = db[collection]
        # The wall clock, not the gateway's (possibly shifted) one: the TTL monitor uses real time.
        self._clock = clock
        self._writes: GroupCommit[dict[str, Any]] = GroupCommit(self._insert)

    async def add_if_absent(self, key: str, *, ttl_seconds: float) -> bool:
        now = self._clock()
        expires_at = datetime.fromtimestamp(now + ttl_seconds, UTC)
        try:
            await self._writes.submit({"_id": key, "expires_at": expires_at})
        except DuplicateKeyError:
            return await self._reclaim_expired(key, expires_at, now)
        return True

    async def forget(self, key: str) -> None:
        try:
            await self._coll.delete_one({"_id": key})
        except PyMongoError as exc:  # the database that refused the message may refuse this too
            log.warning("nonce cache: could not forget %s: %s", key, exc)

    async def _insert(self, docs: list[dict[str, Any]]) -> list[BaseException | None]:
        try:
            await self._coll.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            return _outcomes(len(docs), exc)
        except PyMongoError as exc:
            return [StorageUnavailable(f"nonce cache unavailable: {exc}")] * len(docs)
        return [None] * len(docs)

    async def _reclaim_expired(self, key: str, expires_at: datetime, now: float) -> bool:
        """The TTL monitor runs about once a minute: an expired entry may still be there."""
        try:
            result = await self._coll.update_one(
                {"_id": key, "expires_at": {"$lt": datetime.fromtimestamp(now, UTC)}},
                {"$set": {"expires_at": expires_at}},
            )
        except PyMongoError as exc:
            raise StorageUnavailable(f"nonce cache unavailable: {exc}") from exc
        return result.modified_count == 1


class MongoTokenStore:
    """`TokenStore` in `channel_state`: `_id` and `key` are `wechat_token:<app_id>`."""

    def __init__(self, db: Db, *, clock: Clock = time.time) -> None:
        self._coll = db["channel_state"]
        self._clock = clock

    @staticmethod
    def _key(app_id: str) -> str:
        return f"wechat_token:{app_id}"

    async def get(self, app_id: str) -> AccessToken | None:
        doc = await self._coll.find_one({"_id": self._key(app_id)}, {"token": 1, "expires_at": 1})
        if not doc or not doc.get("token"):
            return None
        return AccessToken(value=str(doc["token"]), expires_at=float(doc["expires_at"]))

    async def put(self, app_id: str, token: AccessToken) -> None:
        key = self._key(app_id)
        await self._coll.update_one(
            {"_id": key},
            {"$set": {"key": key, "token": token.value, "expires_at": token.expires_at}},
            upsert=True,
        )

    async def acquire_lease(self, app_id: str, owner: str, ttl_seconds: float) -> bool:
        key = self._key(app_id)
        now = self._clock()
        lease = {"lease_owner": owner, "lease_until": now + ttl_seconds}
        result = await self._coll.update_one(
            {
                "_id": key,
                "$or": [
                    {"lease_owner": None},
                    {"lease_owner": owner},
                    {"lease_until": {"$lt": now}},
                ],
            },
            {"$set": lease},
        )
        if result.matched_count == 1:
            return True
        try:  # no document yet, or someone else holds the lease: an insert tells which
            await self._coll.insert_one({"_id": key, "key": key, **lease})
        except DuplicateKeyError:
            return False
        return True

    async def release_lease(self, app_id: str, owner: str) -> None:
        await self._coll.update_one(
            {"_id": self._key(app_id), "lease_owner": owner},
            {"$set": {"lease_owner": None, "lease_until": 0.0}},
        )


class CustomerServiceWindow:
    """Per follower: which customer-service windows are open and how much quota each has left.

    The platform is the authority (45015/45047 close a window we thought open); this record lets the
    sender choose a template message without first burning a failed call, and keeps several
    processes in agreement. Quota is taken before a send by a guarded `$inc`.

    Windows are opened when a send asks, from the follower's last message and last click, follow or
    scan as stored in `inbox` anyway, rather than by a write on every callback: WeChat's 5-second path
    then costs one database write (the inbox record) instead of two.
    """

    def __init__(self, db: Db, account: str, *, clock: Clock = time.time) -> None:
        self._db = db
        self._coll = db["channel_state"]
        self._account = account
        self._clock = clock

    def _key(self, openid: str) -> str:
        return f"wechat_window:{self._account}:{openid}"

    async def _last(self, openid: str, query: dict[str, Any]) -> float | None:
        doc = await self._db["inbox"].find_one(
            {"conversation_key": f"wechat:{self._account}:{openid}", **query},
            {"message.meta.create_time": 1, "received_at": 1},
            sort=[("_id", -1)],
        )
        if doc is None:
            return None
        created = ((doc.get("message") or {}).get("meta") or {}).get("create_time")
        at = float(created) if isinstance(created, int | float) and created > 0 else None
        received = doc.get("received_at")
        if at is None and isinstance(received, datetime):
            at = (received if received.tzinfo else received.replace(tzinfo=UTC)).timestamp()
        return None if at is None else min(at, self._clock())

    async def _open(self, openid: str, at: float, *, kind: str, quota: int) -> None:
        key = self._key(openid)
        stamp, left = f"{kind}_at", f"{kind}_left"
        other = "evt" if kind == "msg" else "msg"
        # Only a newer interaction resets the quota: WeChat's retries of one message must not. When
        # the record holds a newer one, the upsert's insert collides on _id: nothing to do.
        with contextlib.suppress(DuplicateKeyError):
            await self._coll.update_one(
                {"_id": key, stamp: {"$lt": at}},
                {
                    "$set": {stamp: at, left: quota},
                    "$setOnInsert": {"key": key, f"{other}_at": 0.0, f"{other}_left": 0},
                },
                upsert=True,
            )

    async def refresh(self, openid: str) -> None:
        """Open the windows the follower's latest message and interaction give them."""
        wrote = await self._last(openid, {"message.kind": {"$nin": ["event", "action"]}})
        if wrote is not None:
            await self._open(openid, wrote, kind="msg", quota=MESSAGE_WINDOW_QUOTA)
        interacted = await self._last(openid, {"message.fields.event": {"$in": sorted(WINDOW_EVENTS)}})
        if interacted is not None:
            await self._open(openid, interacted, kind="evt", quota=EVENT_WINDOW_QUOTA)

    async def reserve(self, openid: str) -> bool:
        """Take one message of quota; False when no window is open (send a template instead)."""
        await self.refresh(openid)
        now = self._clock()
        for kind, length in (("msg", MESSAGE_WINDOW_SECONDS), ("evt", EVENT_WINDOW_SECONDS)):
            result = await self._coll.update_one(
                {"_id": self._key(openid), f"{kind}_at": {"$gt": now - length}, f"{kind}_left": {"$gt": 0}},
                {"$inc": {f"{kind}_left": -1}},
            )
            if result.modified_count == 1:
                return True
        return False

    async def refund(self, openid: str) -> None:
        """A send that failed for another reason used no quota at the platform."""
        now = self._clock()
        await self._coll.update_one(
            {"_id": self._key(openid), "msg_at": {"$gt": now - MESSAGE_WINDOW_SECONDS}},
            {"$inc": {"msg_left": 1}},
        )

    async def close(self, openid: str) -> None:
        """The platform said the window is closed or used up (45015/45047)."""
        await self._coll.update_one({"_id": self._key(openid)}, {"$set": {"msg_left": 0, "evt_left": 0}})

    async def state(self, openid: str) -> dict[str, Any] | None:
        return await self._coll.find_one({"_id": self._key(openid)})


class MongoDeliveryLog:
    """Writes a template message's final delivery status (TEMPLATESENDJOBFINISH) on its outbox record."""

    def __init__(self, db: Db, *, clock: Clock = time.time) -> None:
        self._coll = db["outbox"]
        self._clock = clock

    async def record(self, platform_id: str, status: str) -> bool:
        at = datetime.fromtimestamp(self._clock(), UTC)
        result = await self._coll.update_one(
            {"platform_id": platform_id, "channel": "wechat"},
            {
                "$set": {"delivery": {"status": status, "at": at}},
                "$push": {"history": {"at": at, "outcome": "delivery", "status": status}},
            },
        )
        return result.matched_count == 1


def _outcomes(count: int, exc: BulkWriteError) -> list[BaseException | None]:
    """Per-operation results of an unordered bulk write: None, DuplicateKeyError or StorageUnavailable."""
    out: list[BaseException | None] = [None] * count
    for err in exc.details.get("writeErrors", []):
        code = err.get("code", 0)
        out[err["index"]] = (
            DuplicateKeyError(str(err.get("errmsg", "")), code)
            if code == DUPLICATE_KEY
            else StorageUnavailable(f"write failed (code {code})")
        )
    return out
