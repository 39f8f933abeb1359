from __future__ import annotations

import asyncio
from typing import Any

from gateway.migrations import MIGRATIONS, Migration, migrate


async def test_migrations_run_once_in_order_even_when_two_processes_start_together(mongo: Any) -> None:
    await mongo.customers.insert_one({"email": "Li.Lei@QQ.com", "identities": []})
    await mongo.tickets.insert_one({"number": "T-000001", "subject": "old"})
    await mongo.inbox.create_index([("conversation_key", 1), ("seq", 1)])  # as older versions made it
    runs: list[int] = []

    async def slow_marker(db: Any) -> None:
        runs.append(4)  # the marker ran once
        await asyncio.sleep(0.3)

    migrations = (*MIGRATIONS, Migration(99, "marker", slow_marker))
    first, second = await asyncio.gather(migrate(mongo, migrations), migrate(mongo, migrations))
    assert sorted(first + second) == [1, 2, 3, 4, 99]  # each applied by exactly one of the two
    assert runs == [4]
    assert await migrate(mongo, migrations) == []  # nothing left on the next start
    assert (await mongo.customers.find_one({}))["email"] == "li.lei@qq.com"
    ticket = await mongo.tickets.find_one({})
    assert ticket["sla"] == {} and ticket["tags"] == []
    recorded = await mongo.migrations.find({}).sort("_id", 1).to_list()
    assert [d["_id"] for d in recorded] == [1, 2, 3, 4, 99]
    assert "conversation_key_1_seq_1" not in await mongo.inbox.index_information()
    assert await mongo.leases.count_documents({}) == 0
