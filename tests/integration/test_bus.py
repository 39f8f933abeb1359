from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from gateway.bus import MessageBus
from gateway.config import BusSettings
from ticket_core.messages import CustomerIdentity, InboundMessage


def _msg(n: int, conv: str = "c1", key: str | None = None) -> InboundMessage:
    return InboundMessage(
        channel="fake",
        account="main",
        external_id=str(n),
        dedup_key=key or f"fake:{n}",
        identity=CustomerIdentity("fake", "main", "u1"),
        conversation_key=conv,
        text=f"m{n}",
    )


FAST = BusSettings(lease_seconds=5, retry_base_seconds=0.02, sweep_interval_seconds=0.2, max_attempts=3)


async def test_duplicates_make_one_record_and_group_commit_batches(mongo: Any) -> None:
    seen: list[str] = []

    async def handler(msg: InboundMessage, record_id: str) -> dict[str, Any]:
        seen.append(msg.text)
        return {"ok": True}

    async with MessageBus(mongo, FAST, handler) as bus:
        results = await asyncio.gather(*[bus.publish(_msg(i % 50, conv=f"c{i % 50}")) for i in range(200)])
        await bus.idle()
    assert await mongo.inbox.count_documents({}) == 50
    assert sum(not r.duplicate for r in results) == 50
    ids = {r.record_id for r in results}
    assert len(ids) == 50  # every duplicate answered with the first record's id
    assert sorted(seen) == sorted(f"m{i}" for i in range(50))
    assert bus.stats["batches"] < 50  # concurrent publishes shared inserts
    assert await mongo.inbox.count_documents({"state": "done"}) == 50


async def test_order_within_a_conversation_is_kept(mongo: Any) -> None:
    order: dict[str, list[int]] = {"a": [], "b": []}

    async def handler(msg: InboundMessage, record_id: str) -> None:
        await asyncio.sleep(0.001 * (int(msg.external_id) % 3))
        order[msg.conversation_key].append(int(msg.external_id))

    async with MessageBus(mongo, FAST, handler) as bus:
        pending = []
        for i in range(60):
            await asyncio.sleep(0)
            pending.append(asyncio.ensure_future(bus.publish(_msg(i, conv="a" if i % 2 else "b"))))
        await asyncio.gather(*pending)
        await bus.idle()
    assert order["a"] == sorted(order["a"]) and len(order["a"]) == 30
    assert order["b"] == sorted(order["b"]) and len(order["b"]) == 30


class _InboxInserts(monitoring.CommandListener):
    """Which conversations each `insert` into the inbox carried, and which inserts overlapped in time."""

    def __init__(self) -> None:
        self.in_flight: dict[int, set[str]] = {}
        self.overlapping: list[tuple[set[str], set[str]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "insert" and event.command.get("insert") == "inbox":
            keys = {doc["conversation_key"] for doc in event.command["documents"]}
            self.overlapping += [(keys, other) for other in self.in_flight.values()]
            self.in_flight[event.request_id] = keys

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.in_flight.pop(event.request_id, None)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.in_flight.pop(event.request_id, None)


async def test_inserts_run_two_at_once_and_never_split_a_conversation(mongo: Any, mongo_uri: str) -> None:
    listener = _InboxInserts()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, event_listeners=[listener])
    order: dict[str, list[int]] = {}

    async def handler(msg: InboundMessage, record_id: str) -> None:
        order.setdefault(msg.conversation_key, []).append(int(msg.external_id))

    try:
        async with MessageBus(client[mongo.name], FAST, handler) as bus:
            for wave in range(10):  # bursts of 60 over 12 conversations, as concurrent webhooks come
                await asyncio.gather(
                    *[bus.publish(_msg(n, conv=f"c{n % 12}")) for n in range(wave * 60, wave * 60 + 60)]
                )
            await bus.idle()
    finally:
        await client.close()
    assert listener.overlapping, "the inserts never overlapped: one flusher did all the work"
    assert all(not a & b for a, b in listener.overlapping), listener.overlapping
    assert sum(len(v) for v in order.values()) == 600
    assert all(v == sorted(v) for v in order.values())


async def test_failing_handler_is_retried_then_quarantined(mongo: Any) -> None:
    calls: dict[str, int] = {}

    async def handler(msg: InboundMessage, record_id: str) -> dict[str, Any]:
        calls[msg.text] = calls.get(msg.text, 0) + 1
        if msg.text == "m1" or calls[msg.text] < 2:
            raise RuntimeError(f"boom {msg.text}")
        return {"handled": msg.text}

    async with MessageBus(mongo, FAST, handler) as bus:
        flaky = await bus.publish(_msg(0))
        broken = await bus.publish(_msg(1, conv="c2"))
        assert await bus.wait_result(flaky.record_id, 10) == {"handled": "m0"}
        result = await bus.wait_result(broken.record_id, 10)
    assert result is not None and result["quarantined"] is True
    assert calls == {"m0": 2, "m1": 3}
    q = await mongo.quarantine.find_one({"ref": broken.record_id})
    assert "boom m1" in q["reason"] and q["payload"]["text"] == "m1"
    assert (await mongo.inbox.find_one({"dedup_key": "fake:1"}))["state"] == "quarantined"


async def test_sweep_takes_over_records_of_a_crashed_process(mongo: Any) -> None:
    handled: list[str] = []

    async def handler(msg: InboundMessage, record_id: str) -> None:
        handled.append(msg.text)

    # A process that stored a record and died before handling it: dispatch off, lease short.
    crashed = BusSettings(lease_seconds=0.3, dispatch=False)
    async with MessageBus(mongo, crashed, handler, dispatch=False) as dead_bus:
        await dead_bus.publish(_msg(7))
    await mongo.inbox.update_one({}, {"$set": {"state": "processing", "owner": "gone"}})  # never released
    async with MessageBus(mongo, FAST, handler) as bus:
        await asyncio.sleep(0.4)
        assert await bus.sweep_once() in (0, 1)  # the loop may have taken it already
        for _ in range(100):
            if handled:
                break
            await asyncio.sleep(0.05)
    assert handled == ["m7"]
    assert (await mongo.inbox.find_one({}))["state"] == "done"


async def test_a_backlog_longer_than_the_lease_is_not_taken_over_or_run_twice(mongo: Any) -> None:
    """One worker, 40 conversations queued, 1 s lease: the queue outlasts the lease many times over.
    The process renews its leases, so neither its own sweep nor a second process's takes them."""
    handled: list[str] = []
    settings = BusSettings(lease_seconds=1.0, sweep_interval_seconds=0.1, workers=1)

    async def slow(msg: InboundMessage, record_id: str) -> None:
        await asyncio.sleep(0.08)
        handled.append(msg.text)

    async def other(msg: InboundMessage, record_id: str) -> None:
        handled.append("elsewhere " + msg.text)

    async with MessageBus(mongo, settings, slow) as bus, MessageBus(mongo, settings, other):
        await asyncio.gather(*[bus.publish(_msg(i, conv=f"c{i}")) for i in range(40)])
        await bus.idle(timeout=30)
    assert sorted(handled) == sorted(f"m{i}" for i in range(40))  # each once, all by their owner
    assert await mongo.inbox.count_documents({"state": "done"}) == 40
