"""End to end on Telegram: a customer writes the bot, gets suggestions as buttons, says "not solved",
a ticket and its forum topic appear in the staff group, an agent answers from the topic, an internal
note stays internal, `/status solved` tells the customer and asks for a rating, and the rating is
stored on the ticket. Fake Bot API and embedded database, all through the gateway's own routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.telegram_app import STAFF, bot_settings, buttons, post_update, texts, topics
from tests.helpers import eventually, running_app

CUSTOMER = 31337
AGENT = 4242


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramApi]:
    async with FakeTelegramApi() as fake:
        yield fake


async def test_customer_to_agent_and_back_with_csat(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    settings = make_settings(telegram_bots=(bot_settings(tg),), seed_demo=True)
    await mongo.agents.insert_one({"name": "alice", "role": "agent", "telegram_user_id": AGENT})
    async with running_app(settings) as client:

        async def customer_sees(count: int) -> list[dict[str, Any]] | None:
            sent = tg.sent_messages(CUSTOMER)
            return sent if len(sent) >= count else None

        async def customer(text: str) -> None:
            assert (await post_update(client, tg.push_message(CUSTOMER, text, first_name="Mei")))[0] == 200

        async def tap(message: dict[str, Any], data: str) -> None:
            update = tg.push_callback(CUSTOMER, message["message_id"], data)
            assert (await post_update(client, update))[0] == 200

        # 1. The dialog engine offers knowledge articles as buttons.
        await customer("My router is connected to Wi-Fi but there is no internet")
        # (The demo's out-of-hours rule may answer first, depending on the time of day.)
        suggestion = await eventually(lambda: _with_buttons(tg, "pick:"))
        picks = [d for d in buttons(suggestion) if d.startswith("pick:")]
        assert "human" in buttons(suggestion), suggestion

        # 2. The customer opens one; it does not help.
        await tap(suggestion, picks[0])
        question = await eventually(lambda: _with_buttons(tg, "solved:"))
        assert buttons(question) == ["solved:yes", "solved:no"], question
        await tap(question, "solved:no")

        # 3. A ticket, and its own topic in the staff group with what the customer said.
        ticket = await eventually(lambda: mongo.tickets.find_one({"channel": "telegram"}))
        [(thread, topic)] = (await eventually(lambda: _topics(tg))).items()
        assert topic["name"].startswith(ticket["number"])
        [created] = await eventually(lambda: _posts(tg, thread, 1))
        assert "no internet" in created and "Telegram" in created
        assert len(tg.callback_answers) >= 2  # every tap answered

        # 4. An agent answers in the topic; the customer gets it in the private chat.
        before = len(tg.sent_messages(CUSTOMER))
        await _agent(client, tg, thread, "Please restart the router and tell me if the light turns green.")
        after_reply = await eventually(lambda: customer_sees(before + 1))
        assert any("restart the router" in str(m.get("text")) for m in after_reply[before:])

        # 5. An internal note stays internal.
        await _agent(client, tg, thread, "!customer is on the old firmware")
        await eventually(lambda: _event(mongo, "internal_note"))

        # 6. The customer writes again: the follow-up lands in the topic.
        await customer("It is still red")
        await eventually(lambda: _posts_with(tg, thread, "It is still red"))

        # 7. Solved: the customer hears it and is asked for a rating.
        await _agent(client, tg, thread, "/status solved")
        ask = await eventually(lambda: _with_buttons(tg, "csat:"))
        assert buttons(ask) == [f"csat:{n}:{ticket['number']}" for n in range(1, 6)]
        customer_texts = texts(tg, CUSTOMER)
        assert any("solved" in t for t in customer_texts), customer_texts
        assert not any("old firmware" in t for t in customer_texts)

        # 8. The rating is stored on the ticket and recorded as an event.
        await tap(ask, f"csat:5:{ticket['number']}")

        async def rated() -> dict[str, Any] | None:
            doc = await mongo.tickets.find_one({"_id": ticket["_id"], "csat.score": 5})
            return doc if doc else None

        rated_ticket = await eventually(rated)
        assert rated_ticket["status"] == "solved" and rated_ticket["csat"]["at"] is not None
        [event] = await mongo.ticket_events.find({"type": "csat"}).to_list()
        assert event["data"]["score"] == 5 and event["actor"]["kind"] == "customer"
        await eventually(lambda: _posts_with(tg, thread, "5/5"), timeout=15)

        async def thanked() -> bool:
            return any("Thank you" in t for t in texts(tg, CUSTOMER))

        await eventually(thanked)


async def _agent(client: Any, tg: FakeTelegramApi, thread: int, text: str) -> None:
    update = tg.push_message(STAFF, text, user_id=AGENT, first_name="Alice", message_thread_id=thread)
    assert (await post_update(client, update))[0] == 200


async def _topics(tg: FakeTelegramApi) -> dict[int, dict[str, Any]] | None:
    return topics(tg) or None


async def _posts(tg: FakeTelegramApi, thread: int, count: int) -> list[str] | None:
    found = texts(tg, STAFF, thread)
    return found if len(found) >= count else None


async def _posts_with(tg: FakeTelegramApi, thread: int, marker: str) -> bool:
    return any(marker in p for p in texts(tg, STAFF, thread))


async def _event(mongo: Any, kind: str) -> bool:
    return await mongo.ticket_events.count_documents({"type": kind}) > 0


async def _with_buttons(tg: FakeTelegramApi, prefix: str) -> dict[str, Any] | None:
    for message in tg.sent_messages(CUSTOMER):
        if any(d.startswith(prefix) for d in buttons(message)):
            return message
    return None
