"""The agent relay in the staff supergroup, against the fake Bot API, the embedded database and a
real SMTP server: topics per ticket, cross-channel posts, agents' replies, notes, commands, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.settings import EmailMailbox
from gateway.appkeys import BUS, TICKET_SERVICE, TICKETS
from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.telegram_app import STAFF, bot_settings, buttons, post_update, texts, topics
from tests.helpers import eventually, running_app, smtp_server
from ticket_core.events import TicketCreated
from ticket_core.model import Actor

AGENT_ID = 5550001
STRANGER_ID = 5550999
FORM = {
    "subject": "Router keeps rebooting",
    "description": "Since yesterday the router reboots every ten minutes.",
    "email": "li@example.com",
    "name": "Li Lei",
}


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramApi]:
    async with FakeTelegramApi() as fake:
        yield fake


async def _agents(mongo: Any) -> None:
    await mongo.agents.insert_many(
        [
            {"name": "alice", "role": "agent", "telegram_user_id": AGENT_ID, "username": "alice_support"},
            {"name": "bob", "role": "agent", "telegram_user_id": 5550002, "username": "bob_support"},
            {"name": "victor", "role": "viewer", "telegram_user_id": 5550003},
        ]
    )


async def _topic(tg: FakeTelegramApi, count: int = 1) -> dict[int, dict[str, Any]] | None:
    found = topics(tg)
    return found if len(found) >= count else None


async def _posts(tg: FakeTelegramApi, thread: int, count: int) -> list[str] | None:
    found = texts(tg, STAFF, thread)
    return found if len(found) >= count else None


def _mailbox(port: int) -> EmailMailbox:
    return EmailMailbox(
        name="support",
        address="support@example.com",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
    )


async def _events(mongo: Any, kind: str) -> list[dict[str, Any]]:
    return list(await mongo.ticket_events.find({"type": kind}).to_list())


async def test_web_form_ticket_gets_a_topic_and_the_agents_reply_reaches_the_customer_by_email(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    async with smtp_server() as (port, smtp):
        settings = make_settings(telegram_bots=(bot_settings(tg),), email_mailboxes=(_mailbox(port),))
        await _agents(mongo)
        async with running_app(settings) as client:
            res = await client.post("/forms/support", json=FORM)
            number = (await res.json())["ticket"]["number"]
            [(thread, topic)] = (await eventually(lambda: _topic(tg))).items()
            assert topic["name"] == f"{number} {FORM['subject']}"
            [post] = await eventually(lambda: _posts(tg, thread, 1))
            assert FORM["description"] in post and "Li Lei" in post and "web form" in post

            # An agent answers in the topic: a public reply, mailed to the customer through the outbox.
            answer = tg.push_message(
                STAFF, "Please update the firmware to 2.1.", user_id=AGENT_ID, message_thread_id=thread
            )
            assert (await post_update(client, answer))[0] == 200

            async def mailed() -> list[Any]:
                return [m for m in smtp.messages if "firmware" in m.get_body(("plain",)).get_content()]

            [mail] = await eventually(mailed)
            assert mail["To"] == "li@example.com" and number in mail["Subject"]
            [reply] = await _events(mongo, "public_reply")
            assert reply["actor"]["name"] == "alice" and reply["actor"]["kind"] == "agent"

            # "!" is an internal note: recorded, never sent.
            note = tg.push_message(
                STAFF, "!customer sounds upset", user_id=AGENT_ID, message_thread_id=thread
            )
            await post_update(client, note)
            await eventually(lambda: _events(mongo, "internal_note"))
            slash_note = tg.push_message(
                STAFF, "/note check the RMA", user_id=AGENT_ID, message_thread_id=thread
            )
            await post_update(client, slash_note)
            await eventually(lambda: _count(mongo, "internal_note", 2))
            mails = len(smtp.messages)
            await _settle(client)
            assert len(smtp.messages) == mails
            assert not any("upset" in m.get_body(("plain",)).get_content() for m in smtp.messages)

            # The customer's follow-up by email would be relayed too; here: a comment from any channel.
            assert await tg_topic_count(tg) == 1


async def _posts_with(tg: FakeTelegramApi, thread: int, marker: str) -> bool:
    return any(marker in p for p in texts(tg, STAFF, thread))


async def _count(mongo: Any, kind: str, n: int) -> bool:
    return len(await _events(mongo, kind)) >= n


async def _settle(client: Any) -> None:
    await client.app[BUS].idle()
    await asyncio.sleep(0.6)


async def tg_topic_count(tg: FakeTelegramApi) -> int:
    return len(topics(tg))


async def test_only_agents_may_act_and_others_get_a_polite_refusal(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    settings = make_settings(telegram_bots=(bot_settings(tg),))
    await _agents(mongo)
    async with running_app(settings) as client:
        await client.post("/forms/support", json=FORM)
        [thread] = (await eventually(lambda: _topic(tg))).keys()
        await eventually(lambda: _posts(tg, thread, 1))
        for user in (STRANGER_ID, 5550003):  # unknown user, and a viewer
            await post_update(
                client, tg.push_message(STAFF, "Hi, try X", user_id=user, message_thread_id=thread)
            )
            await post_update(
                client, tg.push_message(STAFF, "/status solved", user_id=user, message_thread_id=thread)
            )
        posts = await eventually(lambda: _posts(tg, thread, 5))
        refusals = [p for p in posts if p.startswith("Sorry")]
        assert len(refusals) == 4 and f"--telegram-id {STRANGER_ID}" in refusals[0]
        assert await _events(mongo, "public_reply") == []
        assert await _events(mongo, "status_changed") == []
        ticket = await mongo.tickets.find_one({})
        assert ticket["status"] == "new"


async def test_agent_commands_change_the_ticket(make_settings: Any, mongo: Any, tg: FakeTelegramApi) -> None:
    settings = make_settings(telegram_bots=(bot_settings(tg),), seed_demo=True)
    await _agents(mongo)
    await mongo.macros.insert_one(
        {"name": "firmware", "text": "Please install the latest firmware.", "tags": ["firmware"]}
    )
    async with running_app(settings) as client:
        await client.post("/forms/support", json=FORM)
        [thread] = (await eventually(lambda: _topic(tg))).keys()
        # The fake has the topic before the gateway maps it to the ticket: commands need the mapping.
        await eventually(
            lambda: mongo.channel_state.find_one({"ticket_id": {"$exists": True}, "thread_id": thread})
        )

        async def say(text: str) -> None:
            status, _ = await post_update(
                client, tg.push_message(STAFF, text, user_id=AGENT_ID, message_thread_id=thread)
            )
            assert status == 200

        for command in (
            "/claim",
            "/assign @bob_support",
            "/priority high",
            "/tag wifi hardware",
            "/tag -hardware",
            "/status pending",
            "/macro firmware",
            "/kb wifi connected but no internet",
            "/status bogus",
        ):
            await say(command)
        # The group hears at most one message a second: wait for the answer to the last command.
        posts = await eventually(lambda: _posts(tg, thread, 10), timeout=30)
        await eventually(lambda: _posts_with(tg, thread, "⚠️"), timeout=30)
        posts = texts(tg, STAFF, thread)
        ticket = await mongo.tickets.find_one({})
        assert ticket["assignee"] == "bob" and ticket["priority"] == "high"
        assert ticket["tags"] == ["firmware", "wifi"] and ticket["status"] == "pending"
        assert any("assigned to alice" in p for p in posts) and any("assigned to bob" in p for p in posts)
        assert any(p.startswith("⚠️") and "/status" in p for p in posts)
        [macro_reply] = await _events(mongo, "public_reply")
        assert macro_reply["data"]["text"] == "Please install the latest firmware."
        kb_post = next(m for m in tg.sent_messages(STAFF) if "Articles for" in str(m.get("text")))
        data = buttons(kb_post)
        assert data and all(d.startswith("kb:") for d in data)
        # A tap on a suggested article sends it to the customer as a public reply.
        await post_update(client, tg.push_callback(STAFF, kb_post["message_id"], data[0], user_id=AGENT_ID))
        await eventually(lambda: _count(mongo, "public_reply", 2))
        assert tg.callback_answers


async def test_topic_is_created_once_even_when_telegram_fails_at_first(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    tg.fail_next("createForumTopic", 2, status=502)
    settings = make_settings(telegram_bots=(bot_settings(tg),))
    async with running_app(settings) as client:
        res = await client.post("/forms/support", json=FORM)
        number = (await res.json())["ticket"]["number"]
        # A retried intake publishes TicketCreated again (same event id): still one post, one topic.
        ticket = await client.app[TICKETS].get_by_number(number)
        again = TicketCreated(f"{ticket.id}:created", ticket.id, number, ticket.created_at, Actor.system())
        await client.app[TICKET_SERVICE].events.publish(again)
        [thread] = (await eventually(lambda: _topic(tg), timeout=15)).keys()
        await eventually(lambda: _posts(tg, thread, 1))
        await _settle(client)
        assert len(texts(tg, STAFF, thread)) == 1
        assert len(topics(tg)) == 1
        assert [r.status for r in tg.calls("createForumTopic")] == [502, 502, 200]
        state = await mongo.channel_state.find_one({"ticket_id": {"$exists": True}, "thread_id": thread})
        assert state is not None


async def test_without_topics_agents_answer_by_replying_to_the_tickets_message(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    tg.add_chat(STAFF, "supergroup", title="Agents")  # not a forum
    async with smtp_server() as (port, smtp):
        settings = make_settings(
            telegram_bots=(bot_settings(tg, staff_topics=False),), email_mailboxes=(_mailbox(port),)
        )
        await _agents(mongo)
        async with running_app(settings) as client:
            await client.post("/forms/support", json=FORM)
            [root] = await eventually(lambda: _staff_sent(tg, 1))
            assert FORM["description"] in root["text"] and "message_thread_id" not in root
            # The fake has the post before the gateway remembers it as the ticket's root message (the
            # record is marked sent only after that): a reply to it needs the mapping.
            await eventually(lambda: mongo.outbox.find_one({"event": "relay_created", "state": "sent"}))
            answer = tg.push_message(
                STAFF, "We will send a replacement.", user_id=AGENT_ID, reply_to_message_id=root["message_id"]
            )
            await post_update(client, answer)
            chatter = tg.push_message(STAFF, "lunch anyone?", user_id=AGENT_ID)
            await post_update(client, chatter)

            async def mailed() -> list[Any]:
                return [m for m in smtp.messages if "replacement" in m.get_body(("plain",)).get_content()]

            await eventually(mailed)
            await _settle(client)
            assert len(await _events(mongo, "public_reply")) == 1  # the chatter was not relayed
            assert topics(tg) == {}


async def _staff_sent(tg: FakeTelegramApi, count: int) -> list[dict[str, Any]] | None:
    sent = tg.sent_messages(STAFF)
    return sent if len(sent) >= count else None


async def test_user_add_maps_a_telegram_user_to_an_agent_and_doctor_names_the_mode(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi, capsys: Any
) -> None:
    import argparse

    from gateway.install_telegram import telegram_modes
    from gateway.user_cli import run as user_add

    settings = make_settings(telegram_bots=(bot_settings(tg),))
    args = argparse.Namespace(
        name="carol", role="agent", telegram_id=777, username="@carol_s", email="C@x.io"
    )
    assert await user_add(args, settings) == 0
    args.role = "admin"
    assert await user_add(args, settings) == 0
    [agent] = await mongo.agents.find({}).to_list()
    assert (agent["name"], agent["role"], agent["telegram_user_id"], agent["username"], agent["email"]) == (
        "carol",
        "admin",
        777,
        "carol_s",
        "c@x.io",
    )
    assert "updated admin 'carol'" in capsys.readouterr().out
    modes = telegram_modes(
        make_settings(telegram_bots=(bot_settings(tg), bot_settings(tg, name="p", mode="polling")))
    )
    assert any("support: webhook mode at" in line for line, _ in modes)
    assert any("p: polling mode" in line and ok for line, ok in modes)
    assert any("HTTPS" in line and not ok for line, ok in modes)  # the test server's URL is plain HTTP
