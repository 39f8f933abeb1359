"""The Telegram channel against the fake Bot API and the embedded database: webhook intake (secret,
dedup, ignored updates, bad input, storage down), media, buttons, sending limits, and polling under a
leader lease with two gateway instances on one database."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pymongo import AsyncMongoClient

from channels.base import Accepted
from channels.telegram.channel import TelegramChannel
from gateway.appkeys import CHANNELS, OUTBOX
from gateway.http_errors import error_middleware
from tests.conftest import CORPORA
from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.telegram_app import BOT, SECRET, bot_settings, buttons, post_update
from tests.helpers import eventually, running_app
from ticket_core.errors import StorageUnavailable
from ticket_core.messages import InboundMessage, OutboundMessage

UPDATES = sorted((CORPORA / "telegram" / "updates").glob("*.json"))
CUSTOMER = 218485655


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramApi]:
    async with FakeTelegramApi() as fake:
        yield fake


def _channel(client: TestClient[Any, Any]) -> TelegramChannel:
    channel = client.app[CHANNELS].get("telegram", BOT)
    assert isinstance(channel, TelegramChannel)
    return channel


# -- webhook intake ----------------------------------------------------------------------------------


async def test_every_corpus_update_is_stored_or_ignored_with_a_reason(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    assert len(UPDATES) >= 10
    settings = make_settings(telegram_bots=(bot_settings(tg),), seed_demo=False)
    async with running_app(settings) as client:
        seen: dict[int, Any] = {}
        for path in UPDATES:
            update = json.loads(path.read_text(encoding="utf-8"))
            status, body = await post_update(client, update)
            assert status == 200, (path.name, body)
            record = await mongo.inbox.find_one({"dedup_key": f"telegram:{BOT}:{update['update_id']}"})
            assert record is not None and str(record["_id"]) == body["record"], path.name
            if update["update_id"] in seen:  # the corpus repeats an update_id: a repeat is one record
                assert body["duplicate"] is True, path.name
                continue
            seen[update["update_id"]] = body
            if "ignored" in body:
                assert record["state"] == "ignored" and record["ignore_reason"] == body["ignored"]
                assert body["ignored"].strip(), path.name
            else:
                assert record["message"]["channel"] == "telegram", path.name
        stored = [b for b in seen.values() if "ignored" not in b]
        assert len(stored) >= 2  # the private-chat texts
        reasons = {b["ignored"] for b in seen.values() if "ignored" in b}
        assert any("supergroup chats other than the staff group" in r for r in reasons)
        assert any("unsupported content (dice)" in r for r in reasons)
        assert any("unknown update kind" in r for r in reasons)
        assert await mongo.inbox.count_documents({}) == len(seen)


async def test_wrong_or_missing_secret_is_refused_and_nothing_is_stored(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    settings = make_settings(telegram_bots=(bot_settings(tg),), seed_demo=False)
    update = json.loads(UPDATES[0].read_text(encoding="utf-8"))
    async with running_app(settings) as client:
        status, body = await post_update(client, update, secret=None)
        assert status == 401 and body["error"]["code"] == "unauthorized"
        status, body = await post_update(client, update, secret=SECRET + "x")
        assert status == 403 and body["error"]["code"] == "forbidden"
        status, _ = await post_update(client, update, secret="")
        assert status == 403
        # Even an unparseable body is refused on the secret first.
        res = await client.post(f"/channels/telegram/{BOT}", data=b"{not json", headers={})
        assert res.status == 401
        assert await mongo.inbox.count_documents({}) == 0


async def test_the_same_update_twice_makes_one_record(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    settings = make_settings(telegram_bots=(bot_settings(tg),), seed_demo=False)
    update = tg.push_message(CUSTOMER, "my router has no internet")
    async with running_app(settings) as client:
        first = await post_update(client, update)
        second = await post_update(client, update)
        both = await asyncio.gather(post_update(client, update), post_update(client, update))
        assert first[0] == 200 and first[1]["duplicate"] is False
        assert all(s == 200 and b["duplicate"] is True for s, b in [second, *both])
        assert {b["record"] for _, b in [first, second, *both]} == {first[1]["record"]}
        assert await mongo.inbox.count_documents({}) == 1


async def test_bad_input_gets_a_400_json_error_and_nothing_is_stored(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    settings = make_settings(telegram_bots=(bot_settings(tg),), seed_demo=False)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with running_app(settings) as client:
        for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"message": {}}', b'{"update_id": "7"}'):
            res = await client.post(f"/channels/telegram/{BOT}", data=body, headers=headers)
            answer = await res.json()
            assert res.status == 400, body
            assert answer["error"]["code"] in ("invalid_json", "invalid_update"), answer
        assert await mongo.inbox.count_documents({}) == 0


class _DownIntake:
    async def publish(self, msg: InboundMessage) -> Accepted:
        raise StorageUnavailable("database is down")

    async def wait_result(self, record_id: str, timeout: float) -> dict[str, Any] | None:
        return None


async def test_database_down_answers_503_so_telegram_retries(tg: FakeTelegramApi) -> None:
    # A driver pointed at a closed loopback port stands for a database that went away.
    dead: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:9/?directConnection=true", serverSelectionTimeoutMS=300
    )
    channel = TelegramChannel(bot_settings(tg), _DownIntake(), _NoAttachments(), dead["x"])
    app = web.Application(middlewares=[error_middleware])
    channel.register(app)
    async with TestClient(TestServer(app)) as client:
        useful = tg.push_message(CUSTOMER, "hello")
        status, body = await post_update(client, useful)
        assert status == 503 and body["error"]["code"] == "storage_unavailable"
        ignored = json.loads(UPDATES[5].read_text(encoding="utf-8"))  # a dice: recorded as ignored
        status, body = await post_update(client, ignored)
        assert status == 503
    await dead.close()
    await channel.shutdown()


class _NoAttachments:
    async def save(self, data: bytes, *, filename: str, content_type: str, meta: dict[str, Any]) -> Any:
        raise AssertionError("not expected")

    async def load(self, file_id: str) -> tuple[bytes, dict[str, Any]]:
        raise AssertionError("not expected")


# -- mapping, media, buttons -------------------------------------------------------------------------


async def test_photo_and_document_are_fetched_within_the_size_limit(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    settings = make_settings(
        telegram_bots=(bot_settings(tg),), seed_demo=False, storage={"max_attachment_bytes": 1000}
    )
    photo = tg.add_file(b"\xff\xd8\xff" + b"\x00" * 200, kind="photos")
    big = tg.add_file(b"x" * 2000, file_name="log.txt", mime_type="text/plain")
    photo_update = tg.push_message(
        CUSTOMER,
        extra={"photo": [{"file_id": photo, "file_unique_id": "u1", "width": 800, "height": 600}]},
    )
    photo_update["message"]["caption"] = "the router lights are red"
    doc_update = tg.push_message(
        CUSTOMER,
        extra={
            "document": {"file_id": big, "file_unique_id": "u2", "file_name": "log.txt", "file_size": 2000},
            "caption": "and here is the log",
        },
    )
    async with running_app(settings) as client:
        for update in (photo_update, doc_update):
            status, body = await post_update(client, update)
            assert status == 200 and "ignored" not in body
        await eventually(lambda: _done(mongo, 2))
        files = await mongo["attachments.files"].find({}).to_list()
        assert len(files) == 1
        assert files[0]["metadata"]["channel"] == "telegram"
        assert files[0]["filename"].endswith(".jpg") and files[0]["length"] == 203
        ticket = await mongo.tickets.find_one({})
        assert ticket is not None
        assert [a["filename"] for a in ticket["attachments"]] == [files[0]["filename"]]
        events = await mongo.ticket_events.find({"type": "customer_comment"}).to_list()
        assert any("not attached" in e["data"]["text"] for e in events), events


async def _done(mongo: Any, count: int) -> bool:
    return await mongo.inbox.count_documents({"state": "done"}) >= count


async def test_commands_buttons_locations_and_edits_become_actions(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    settings = make_settings(telegram_bots=(bot_settings(tg),), seed_demo=True)
    async with running_app(settings) as client:
        await post_update(client, tg.push_message(CUSTOMER, "/start"))
        welcome = await eventually(lambda: _sent(tg, CUSTOMER, 1))
        assert any(d.startswith("top:") for d in buttons(welcome[0])), welcome[0]
        await post_update(client, tg.push_message(CUSTOMER, "/status"))
        await post_update(client, tg.push_callback(CUSTOMER, welcome[0]["message_id"], "human"))
        location = tg.push_message(CUSTOMER, extra={"location": {"latitude": 31.23, "longitude": 121.47}})
        await post_update(client, location)
        edited = tg.push_message(CUSTOMER, "typo")
        edited["edited_message"] = {**edited.pop("message"), "text": "fixed", "edit_date": 1}
        await post_update(client, edited)
        await eventually(lambda: _done(mongo, 5))
        records = await mongo.inbox.find({}).sort("_id", 1).to_list()
        kinds = [(r["message"]["kind"], r["message"]["fields"].get("action")) for r in records]
        assert kinds == [
            ("action", "welcome"),
            ("action", "check_status"),
            ("action", "human"),
            ("location", None),
            ("edit", None),
        ]
        assert records[3]["message"]["fields"]["latitude"] == "31.23"
        # Every button tap is answered, so the client stops its spinner.
        await eventually(lambda: _answered(tg, 1))


async def _sent(tg: FakeTelegramApi, chat: int, count: int) -> list[dict[str, Any]] | None:
    sent = tg.sent_messages(chat)
    return sent if len(sent) >= count else None


async def _answered(tg: FakeTelegramApi, count: int) -> bool:
    return len(tg.callback_answers) >= count


# -- sending ------------------------------------------------------------------------------------------


async def test_long_text_is_split_and_buttons_become_an_inline_keyboard(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    settings = make_settings(telegram_bots=(bot_settings(tg),), seed_demo=False)
    async with running_app(settings) as client:
        channel = _channel(client)
        text = ("word " * 1000).strip() + "\n\n" + "tail " * 10
        result = await channel.send(
            OutboundMessage(
                "telegram", BOT, str(CUSTOMER), text, buttons=(("Yes", "solved:yes"), ("No", "solved:no"))
            )
        )
        sent = tg.sent_messages(CUSTOMER)
        assert len(sent) == 2 and len(result.detail["message_ids"]) == 2
        assert all(len(m["text"]) <= 4096 for m in sent)
        assert " ".join(m["text"] for m in sent).split() == text.split()
        assert buttons(sent[0]) == [] and buttons(sent[1]) == ["solved:yes", "solved:no"]


async def test_a_429_is_honoured_and_the_outbox_delivers_later(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    settings = make_settings(telegram_bots=(bot_settings(tg),), seed_demo=False)
    tg.rate_limit_next(CUSTOMER, count=1, retry_after=2)
    async with running_app(settings) as client:
        await client.app[OUTBOX].enqueue(
            OutboundMessage("telegram", BOT, str(CUSTOMER), "your ticket is solved"), idempotency_key="n1"
        )
        await eventually(lambda: _sent(tg, CUSTOMER, 1), timeout=15)
        calls = [r for r in tg.calls("sendMessage") if r.chat_id == CUSTOMER]
        assert [c.status for c in calls] == [429, 200]
        assert calls[1].at - calls[0].at >= 2 - 0.05
        # The fake answers before the outbox records the result: wait for the record to settle.
        record = await eventually(lambda: mongo.outbox.find_one({"idempotency_key": "n1", "state": "sent"}))
        assert record["rate_limited"] == 1
        assert _channel(client).stats["rate_limited"] == 1


@pytest.mark.slow
async def test_a_burst_of_300_to_50_chats_keeps_every_limit_and_loses_nothing(
    make_settings: Any, mongo: Any
) -> None:
    chats = [7_000_000 + i for i in range(50)]
    async with FakeTelegramApi(enforce_limits=True) as tg:
        for chat in chats[:5]:
            tg.rate_limit_next(chat, count=1, retry_after=1)
        settings = make_settings(telegram_bots=(bot_settings(tg),), seed_demo=False)
        async with running_app(settings) as client:
            outbox = client.app[OUTBOX]
            started = time.monotonic()
            for n in range(300):
                chat = chats[n % 50]
                await outbox.enqueue(
                    OutboundMessage("telegram", BOT, str(chat), f"notice {n} for {chat}"),
                    idempotency_key=f"burst-{n}",
                )

            async def all_sent() -> bool:
                return await mongo.outbox.count_documents({"state": "sent"}) == 300

            await eventually(all_sent, timeout=90, interval=0.5)
            elapsed = time.monotonic() - started
        texts = [m["text"] for m in tg.sent_messages()]
        assert len(texts) == 300 and len(set(texts)) == 300  # nothing lost, nothing twice
        for chat in chats:
            times = tg.send_times(chat)
            assert len(times) == 6
            assert all(b - a >= 1 - tg.limit_tolerance for a, b in itertools.pairwise(times))
        limited = [r for r in tg.requests if r.status == 429]
        assert len(limited) >= 5
        for r in limited:  # after a 429, the chat hears nothing until retry_after has passed
            retry_after = r.response["parameters"]["retry_after"]
            later = [t for t in tg.send_times(r.chat_id) if t > r.at]
            assert later and later[0] - r.at >= retry_after - tg.limit_tolerance
        # Only the injected 429s: our own pacing never tripped the platform's flood control.
        assert len(limited) == 5
        assert elapsed < 60


# -- polling ------------------------------------------------------------------------------------------


async def test_polling_two_instances_one_leader_takeover_and_no_update_twice(
    make_settings: Any, mongo: Any, tg: FakeTelegramApi
) -> None:
    bot = bot_settings(tg, mode="polling", poll_lease_seconds=2.0, poll_timeout=1)
    settings = make_settings(telegram_bots=(bot,), seed_demo=False)
    # A leader that died a moment ago: its lease must lapse before anyone polls.
    await mongo.leases.insert_one(
        {
            "_id": f"telegram-poll:{BOT}",
            "owner": "crashed-process",
            "expires_at": datetime.now(UTC) + timedelta(seconds=1.5),
        }
    )
    started = time.monotonic()
    contexts = [running_app(settings), running_app(settings)]
    clients: list[TestClient[Any, Any] | None] = []
    try:
        for ctx in contexts:
            clients.append(await ctx.__aenter__())
        pollers = [_channel(c).poller for c in clients if c is not None]
        assert len(pollers) == 2 and all(p is not None for p in pollers)

        async def one_leader() -> bool:
            return sum(bool(p and p.is_leader) for p in pollers) == 1

        await eventually(one_leader, timeout=6)
        assert time.monotonic() - started >= 1.4  # nobody polled while the dead lease was live
        for n in range(5):
            tg.push_message(CUSTOMER + n, f"first wave {n}")
        await eventually(lambda: _records(mongo, 5))
        for _ in range(20):  # exactly one leader all along
            assert await one_leader()
            await asyncio.sleep(0.05)
        leader = 0 if pollers[0] and pollers[0].is_leader else 1
        survivor = pollers[1 - leader]
        await contexts[leader].__aexit__(None, None, None)
        clients[leader] = None
        stopped = time.monotonic()
        for n in range(5):
            tg.push_message(CUSTOMER + n, f"second wave {n}")

        async def taken_over() -> bool:
            return bool(survivor and survivor.is_leader)

        await eventually(taken_over, timeout=bot.poll_lease_seconds + 2)
        assert time.monotonic() - stopped <= bot.poll_lease_seconds + 1
        await eventually(lambda: _records(mongo, 10))
        await eventually(lambda: _done(mongo, 10))
        await asyncio.sleep(1.5)  # a late or repeated poll would show up now
        records = await mongo.inbox.find({}).to_list()
        assert len(records) == 10
        assert len({r["dedup_key"] for r in records}) == 10
        assert all(r["state"] == "done" and r["attempts"] == 1 for r in records)
        # Two concurrent getUpdates would have been refused by the platform with 409.
        assert not [r for r in tg.calls("getUpdates") if r.status == 409]
        offset = await mongo.channel_state.find_one({"key": f"telegram:{BOT}:offset"})
        assert offset["offset"] == max(r["message"]["meta"]["update_id"] for r in records) + 1
    finally:
        for ctx, client in zip(contexts, clients, strict=False):
            if client is not None:
                await ctx.__aexit__(None, None, None)


async def _records(mongo: Any, count: int) -> bool:
    return await mongo.inbox.count_documents({}) >= count
