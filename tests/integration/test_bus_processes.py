"""Two gateway processes (two buses, one database) get messages of one conversation: the turns run one
after the other, in the order received, never at the same time (a load balancer spreads one chat's
webhooks over instances)."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.bus import MessageBus
from gateway.config import BusSettings
from ticket_core.messages import CustomerIdentity, InboundMessage

FAST = BusSettings(lease_seconds=10, retry_base_seconds=0.02, sweep_interval_seconds=0.2, max_attempts=3)


def _msg(n: int) -> InboundMessage:
    return InboundMessage(
        channel="fake",
        account="main",
        external_id=str(n),
        dedup_key=f"fake:{n}",
        identity=CustomerIdentity("fake", "main", "u1"),
        conversation_key="fake:main:u1",
        text=f"m{n}",
    )


async def test_one_conversation_over_two_processes_runs_in_order_and_never_concurrently(mongo: Any) -> None:
    running = 0
    overlap = False
    order: list[int] = []

    async def handler(msg: InboundMessage, record_id: str) -> dict[str, Any]:
        nonlocal running, overlap
        running += 1
        overlap = overlap or running > 1
        await asyncio.sleep(0.3 if msg.external_id == "0" else 0.01)  # the first turn is slow
        order.append(int(msg.external_id))
        running -= 1
        return {}

    async with MessageBus(mongo, FAST, handler) as a, MessageBus(mongo, FAST, handler) as b:
        for n in range(6):  # the platform delivers one after another, alternating instances
            await (a if n % 2 == 0 else b).publish(_msg(n))
        for _ in range(200):
            if await mongo.inbox.count_documents({"state": "done"}) == 6:
                break
            await asyncio.sleep(0.05)
    assert order == [0, 1, 2, 3, 4, 5]
    assert not overlap
