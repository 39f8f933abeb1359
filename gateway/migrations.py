"""Versioned schema migrations, run at start-up by exactly one process.

Each migration runs once per database, in order, recorded in `migrations`; a lease in `leases` keeps
two gateways starting together from running the same one twice (the other waits for it). A migration
must be safe to re-run after a crash halfway (it is recorded only when it finishes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.errors import DuplicateKeyError

from gateway.database import Db, ensure_indexes
from ticket_core.errors import StorageUnavailable

log = logging.getLogger(__name__)
LEASE_ID = "schema-migrations"
LEASE_SECONDS = 300


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Db], Awaitable[None]]


async def _lowercase_customer_emails(db: Db) -> None:
    """Customers are matched across channels by email; early records kept the address as typed."""
    async for doc in db.customers.find({"email": {"$type": "string"}}, {"email": 1}):
        if doc["email"] != doc["email"].lower():
            await db.customers.update_one({"_id": doc["_id"]}, {"$set": {"email": doc["email"].lower()}})


async def _tickets_have_sla_and_tags(db: Db) -> None:
    """Reports and SLA code read these fields on every ticket."""
    await db.tickets.update_many({"sla": {"$exists": False}}, {"$set": {"sla": {}}})
    await db.tickets.update_many({"tags": {"$exists": False}}, {"$set": {"tags": []}})


async def _drop_unused_inbox_index(db: Db) -> None:
    """(conversation_key, seq) was never used: nothing writes `seq`; (conversation_key, _id) replaced it."""
    if "conversation_key_1_seq_1" in await db.inbox.index_information():
        await db.inbox.drop_index("conversation_key_1_seq_1")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline indexes", ensure_indexes),
    Migration(2, "lower-case customer emails", _lowercase_customer_emails),
    Migration(3, "tickets carry sla and tags", _tickets_have_sla_and_tags),
    Migration(4, "drop the unused inbox (conversation_key, seq) index", _drop_unused_inbox_index),
)


async def _take_lease(db: Db, owner: str) -> bool:
    now = datetime.now(UTC)
    await db.leases.delete_one({"_id": LEASE_ID, "expires_at": {"$lt": now}})
    try:
        await db.leases.insert_one(
            {"_id": LEASE_ID, "owner": owner, "expires_at": now + timedelta(seconds=LEASE_SECONDS)}
        )
        return True
    except DuplicateKeyError:
        return False


async def migrate(
    db: Db, migrations: tuple[Migration, ...] = MIGRATIONS, *, wait_seconds: float = 600
) -> list[int]:
    """Apply what this database has not had yet; returns the versions applied by this call."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while not await _take_lease(db, owner):
        if loop.time() > deadline:
            raise StorageUnavailable("another process has been migrating the database for too long")
        await asyncio.sleep(0.5)
    applied: list[int] = []
    try:
        done = {doc["_id"] async for doc in db.migrations.find({}, {"_id": 1})}
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            log.info("applying schema migration %d: %s", migration.version, migration.name)
            await migration.apply(db)
            await db.migrations.insert_one(
                {
                    "_id": migration.version,
                    "name": migration.name,
                    "applied_at": datetime.now(UTC),
                    "by": owner,
                }
            )
            applied.append(migration.version)
    finally:
        await db.leases.delete_one({"_id": LEASE_ID, "owner": owner})
    return applied
