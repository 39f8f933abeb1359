from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ticket_core.errors import InvalidTransition
from ticket_core.events import EventDispatcher, StatusChanged, TicketCreated
from ticket_core.messages import CustomerIdentity
from ticket_core.model import Actor
from ticket_core.repository import MongoCustomerRepository, MongoTicketRepository
from ticket_core.service import NewTicket, TicketService

AGENT = Actor("agent", "a1", "Wang")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def _setup(mongo: Any) -> tuple[TicketService, MongoCustomerRepository, Clock, list[Any]]:
    events = EventDispatcher()
    seen: list[Any] = []

    async def record(event: Any) -> None:
        seen.append(event)

    events.register(TicketCreated, record)
    events.register(StatusChanged, record)
    clock = Clock()
    service = TicketService(
        MongoTicketRepository(mongo), events, reopen_window=timedelta(days=7), clock=clock
    )
    return service, MongoCustomerRepository(mongo), clock, seen


async def test_numbers_are_sequential_and_creation_is_idempotent(mongo: Any) -> None:
    service, customers, _, seen = await _setup(mongo)
    customer = await customers.resolve(CustomerIdentity("webform", "support", "a@b.cn", email="a@b.cn"))
    made = []
    for i in range(3):
        new = NewTicket(
            subject=f"s{i}",
            description="d",
            channel="webform",
            account="support",
            customer=customer,
            conversation_key=f"c{i}",
            reply_to="a@b.cn",
            source_key=f"src{i}",
        )
        made.append(await service.create(new, Actor("customer", customer.id)))
    assert [t.number for t, _ in made] == ["T-000001", "T-000002", "T-000003"]
    again, created = await service.create(
        NewTicket(
            subject="s0",
            description="d",
            channel="webform",
            account="support",
            customer=customer,
            conversation_key="c0",
            reply_to="a@b.cn",
            source_key="src0",
        ),
        Actor("customer", customer.id),
    )
    assert not created and again.number == "T-000001"
    assert await mongo.tickets.count_documents({}) == 3
    # the retry re-publishes with the same event id, so the notifier's outbox key dedupes it
    assert [e.event_id for e in seen].count(f"{again.id}:created") == 2
    assert await mongo.ticket_events.count_documents({"type": "created"}) == 3


async def test_status_machine_and_reopen_window(mongo: Any) -> None:
    service, customers, clock, _ = await _setup(mongo)
    customer = await customers.resolve(CustomerIdentity("fake", "main", "u1"))
    ticket, _ = await service.create(
        NewTicket("printer", "jam", "fake", "main", customer, "conv", "u1"), AGENT
    )
    with pytest.raises(InvalidTransition):
        await service.change_status(ticket, "closed", AGENT)
    ticket = await service.change_status(ticket, "pending", AGENT)
    customer_actor = Actor("customer", customer.id)
    ticket = await service.add_customer_comment(
        ticket, "more info", customer_actor, channel="fake", event_id="e1"
    )
    assert ticket is not None and ticket.status == "open"  # a reply to a pending ticket opens it
    ticket = await service.change_status(ticket, "solved", AGENT)
    clock.now += timedelta(days=3)
    reopened = await service.add_customer_comment(
        ticket, "broken again", customer_actor, channel="fake", event_id="e2"
    )
    assert reopened is not None and reopened.status == "open"
    ticket = await service.change_status(reopened, "solved", AGENT)
    clock.now += timedelta(days=8)
    assert (
        await service.add_customer_comment(ticket, "late", customer_actor, channel="fake", event_id="e3")
        is None
    )
    # a retried intake of the same message is not appended twice
    await service.add_customer_comment(
        reopened, "broken again", customer_actor, channel="fake", event_id="e2"
    )
    kinds = [
        e["type"] for e in await mongo.ticket_events.find({"ticket_id": ticket.id}).sort("at", 1).to_list()
    ]
    assert kinds.count("customer_comment") == 2
    assert kinds.count("status_changed") == 5
    events = await mongo.ticket_events.find({"type": "status_changed"}).to_list()
    assert any(e["data"]["reopened"] for e in events)
    assert all(e["actor"]["kind"] in ("agent", "customer") and e["at"] for e in events)


async def test_one_customer_many_identities_by_email(mongo: Any) -> None:
    _, customers, _, _ = await _setup(mongo)
    web = await customers.resolve(
        CustomerIdentity("webform", "support", "zhang@qq.com", email="Zhang@QQ.com")
    )
    mail = await customers.resolve(CustomerIdentity("email", "support", "zhang@qq.com", email="zhang@qq.com"))
    again = await customers.resolve(
        CustomerIdentity("email", "support", "zhang@qq.com", email="zhang@qq.com")
    )
    assert web.id == mail.id == again.id
    doc = await mongo.customers.find_one({})
    assert len(doc["identities"]) == 2
