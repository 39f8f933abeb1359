"""TelegramBotApi against the fake Bot API server on loopback: every method, and every error path."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from channels.telegram.bot_api import (
    ChatMigrated,
    InlineButton,
    InputFile,
    TelegramBotApi,
    fit_topic_name,
    keyboard_from_pairs,
    map_api_error,
)
from channels.telegram.limits import SendRateLimiter, split_text
from channels.telegram.updates import classify_update
from tests.conftest import CORPORA
from tests.fakes.telegram_api import FakeTelegramApi
from ticket_core.errors import (
    ChannelError,
    ChannelUnavailable,
    InvalidInput,
    PermanentDeliveryError,
    RateLimited,
)

SCHEMA_PATH = CORPORA / "telegram" / "bot_api_schema.json"
STAFF = -1001234567890
CUSTOMER = 218485655


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramApi]:
    async with FakeTelegramApi() as fake:
        yield fake


@pytest.fixture
async def api(tg: FakeTelegramApi) -> AsyncIterator[TelegramBotApi]:
    async with TelegramBotApi(tg.token, base_url=tg.base_url, timeout=5.0) as client:
        yield client


# -- methods -----------------------------------------------------------------------------------


async def test_get_me(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    me = await api.get_me()
    assert (me.id, me.username, me.can_join_groups) == (tg.bot_id, tg.username, True)


async def test_send_message_with_buttons(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    buttons = keyboard_from_pairs([("Solved", "kb:yes:1"), ("Not solved", "kb:no:1")], per_row=2)
    buttons.append([InlineButton("Help centre", url="https://support.example.com/kb")])
    sent = await api.send_message(CUSTOMER, "Did this answer your question?", buttons=buttons)
    assert sent.chat_id == CUSTOMER and sent.message_id == 1
    [message] = tg.sent_messages(CUSTOMER)
    assert message["text"] == "Did this answer your question?"
    assert message["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "Solved", "callback_data": "kb:yes:1"},
                {"text": "Not solved", "callback_data": "kb:no:1"},
            ],
            [{"text": "Help centre", "url": "https://support.example.com/kb"}],
        ]
    }


async def test_topic_and_reply(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    topic = await api.create_forum_topic(STAFF, "T-000123 打印机无法连接")
    assert topic.name == "T-000123 打印机无法连接" and topic.icon_color > 0
    first = await api.send_message(
        STAFF, "Customer (web form): it is offline", message_thread_id=topic.message_thread_id
    )
    assert first.message_thread_id == topic.message_thread_id
    second = await api.send_message(
        STAFF, "Follow-up", message_thread_id=topic.message_thread_id, reply_to_message_id=first.message_id
    )
    assert second.raw["reply_to_message"]["message_id"] == first.message_id
    request = tg.calls("sendMessage")[-1]
    assert request.params["reply_parameters"] == {
        "message_id": first.message_id,
        "allow_sending_without_reply": True,
    }
    # What the agents' bot receives back from such topic messages follows the forum rule.
    as_update = classify_update({"update_id": 1, "message": first.raw})
    assert as_update.is_topic_message and as_update.reply_to_message_id is None
    assert classify_update({"update_id": 2, "message": second.raw}).reply_to_message_id == first.message_id


async def test_reply_to_a_deleted_message_is_still_delivered(
    api: TelegramBotApi, tg: FakeTelegramApi
) -> None:
    sent = await api.send_message(CUSTOMER, "hello", reply_to_message_id=999)
    assert "reply_to_message" not in sent.raw


async def test_edit_forum_topic(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    topic = await api.create_forum_topic(STAFF, "T-000001 Printer")
    assert await api.edit_forum_topic(STAFF, topic.message_thread_id, name="[solved] T-000001 Printer")
    assert tg.chats[STAFF].topics[topic.message_thread_id]["name"] == "[solved] T-000001 Printer"
    with pytest.raises(PermanentDeliveryError, match="thread not found"):
        await api.edit_forum_topic(STAFF, 4242, name="x")


async def test_long_topic_names_are_shortened(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    topic = await api.create_forum_topic(STAFF, "T-000002 " + "很长的标题" * 40)
    assert len(topic.name) == 128 and topic.name.endswith("…")
    assert fit_topic_name("  a\n b  ") == "a b"
    assert fit_topic_name("😀" * 100).count("😀") == 63  # 126 code units and the ellipsis


async def test_photo_upload_and_download_roundtrip(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    sent = await api.send_photo(
        CUSTOMER, InputFile(png, "screen.png", "image/png"), caption="Your screenshot"
    )
    request = tg.calls("sendPhoto")[-1]
    assert request.files["photo"].data == png and request.files["photo"].filename == "screen.png"
    assert request.params["chat_id"] == CUSTOMER and request.params["caption"] == "Your screenshot"
    largest = sent.raw["photo"][-1]["file_id"]
    info, data = await api.download(largest)
    assert data == png and info.file_size == len(png) and info.file_path
    # A file_id Telegram already has is sent by reference, without an upload.
    again = await api.send_photo(STAFF, largest)
    assert again.raw["photo"][-1]["file_id"] == largest
    assert tg.calls("sendPhoto")[-1].files == {}


async def test_send_document_with_buttons(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    pdf = b"%PDF-1.7\n" + b"x" * 1000
    sent = await api.send_document(
        CUSTOMER,
        InputFile(pdf, "报价单.pdf", "application/pdf"),
        caption="Quotation",
        buttons=keyboard_from_pairs([("Thanks", "ack")]),
    )
    document = sent.raw["document"]
    assert (document["file_name"], document["mime_type"], document["file_size"]) == (
        "报价单.pdf",
        "application/pdf",
        len(pdf),
    )
    # Objects in a multipart request travel JSON-encoded.
    assert tg.calls("sendDocument")[-1].params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Thanks", "callback_data": "ack"}]]
    }
    info = await api.get_file(document["file_id"])
    assert await api.download_file(info.file_path or "") == pdf


async def test_customer_file_download_and_size_limits(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    file_id = tg.add_file(b"hello", file_name="note.txt", mime_type="text/plain")
    info, data = await api.download(file_id)
    assert data == b"hello" and info.file_path and info.file_path.endswith(".txt")
    with pytest.raises(PermanentDeliveryError, match="larger than 3 bytes"):
        await api.download(file_id, max_bytes=3)
    with pytest.raises(PermanentDeliveryError, match="larger than 3 bytes"):
        await api.download_file(info.file_path, max_bytes=3)
    huge = tg.add_file(b"x", claimed_size=25 * 1024 * 1024)
    with pytest.raises(PermanentDeliveryError, match="file is too big"):
        await api.get_file(huge)
    with pytest.raises(PermanentDeliveryError, match="invalid file_id"):
        await api.get_file("nope")
    with pytest.raises(PermanentDeliveryError):
        await api.download_file("documents/missing.bin")


async def test_answer_callback_query(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    sent = await api.send_message(CUSTOMER, "Rate us", buttons=keyboard_from_pairs([("5", "csat:5")]))
    update = tg.push_callback(CUSTOMER, sent.message_id, "csat:5")
    [raw] = await api.get_updates(timeout=1)
    tapped = classify_update(raw)
    assert (tapped.callback_data, tapped.message_id, tapped.chat_id) == ("csat:5", sent.message_id, CUSTOMER)
    assert tapped.callback_query_id == update["callback_query"]["id"]
    assert await api.answer_callback_query(tapped.callback_query_id or "", text="Thank you!")
    assert tg.callback_answers[-1]["callback_query_id"] == tapped.callback_query_id
    assert tg.callback_answers[-1]["text"] == "Thank you!"


async def test_webhook_set_and_delete(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    assert await api.set_webhook(
        "https://support.example.com/channels/telegram/support",
        secret_token="s3cret",
        allowed_updates=["message", "edited_message", "callback_query"],
    )
    assert tg.webhook is not None and tg.webhook["secret_token"] == "s3cret"
    assert tg.webhook["allowed_updates"] == ["message", "edited_message", "callback_query"]
    with pytest.raises(ChannelError) as info:
        await api.get_updates()
    assert info.value.platform_code == 409 and info.value.retryable
    assert not isinstance(info.value, PermanentDeliveryError)
    assert await api.delete_webhook(drop_pending_updates=True)
    assert tg.webhook is None
    assert await api.get_updates() == []


async def test_fake_delivers_to_a_webhook_with_the_secret(tg: FakeTelegramApi, api: TelegramBotApi) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/channels/telegram/support", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await api.set_webhook(f"http://127.0.0.1:{port}/channels/telegram/support", secret_token="s3cret")
        status = await tg.deliver_webhook({"update_id": 7, "message": {"message_id": 1}})
        assert status == 200
        assert received == [("s3cret", {"update_id": 7, "message": {"message_id": 1}})]
    finally:
        await runner.cleanup()


# -- getUpdates --------------------------------------------------------------------------------


async def test_get_updates_offset_confirms(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    first = tg.push_message(CUSTOMER, "hello")["update_id"]
    second = tg.push_message(CUSTOMER, "/status")["update_id"]
    batch = await api.get_updates()
    assert [u["update_id"] for u in batch] == [first, second]
    assert len(await api.get_updates()) == 2  # not confirmed yet: delivered again
    assert await api.get_updates(offset=second + 1) == []
    assert tg.pending_updates == []
    assert len(await api.get_updates(limit=1)) == 0


async def test_get_updates_limit_and_allowed_updates(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    for i in range(3):
        tg.push_message(CUSTOMER, f"m{i}")
    tg.push_update({"message_reaction": {"chat": {"id": 1, "type": "private"}, "message_id": 1, "date": 1}})
    assert len(await api.get_updates(limit=2)) == 2
    got = await api.get_updates(allowed_updates=["message_reaction"])
    assert [next(k for k in u if k != "update_id") for u in got] == ["message_reaction"]


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    api: TelegramBotApi, tg: FakeTelegramApi
) -> None:
    async def later() -> None:
        await asyncio.sleep(0.2)
        tg.push_message(CUSTOMER, "are you there?")

    started = time.monotonic()
    pusher = asyncio.ensure_future(later())
    batch = await api.get_updates(timeout=10)
    await pusher
    assert [u["message"]["text"] for u in batch] == ["are you there?"]
    assert time.monotonic() - started < 3


async def test_long_poll_times_out_empty(api: TelegramBotApi) -> None:
    started = time.monotonic()
    assert await api.get_updates(timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 3


async def test_a_second_poller_terminates_the_first(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    first = asyncio.ensure_future(api.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    second = asyncio.ensure_future(api.get_updates(timeout=1))
    with pytest.raises(ChannelError, match="terminated by other getUpdates") as info:
        await first
    assert info.value.platform_code == 409
    assert await second == []


async def test_corpus_updates_through_get_updates(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    files = sorted((CORPORA / "telegram" / "updates").glob("*.json"))
    originals = [json.loads(p.read_text(encoding="utf-8")) for p in files]
    for update in originals:
        tg.push_update(update)
    allowed = ["message", "edited_message", "callback_query", "message_reaction", "my_chat_member"]
    got = await api.get_updates(allowed_updates=allowed)
    assert got == [u for u in originals if any(k in u for k in allowed)]
    for raw in got:
        assert classify_update(raw, bot="support") == classify_update(
            next(o for o in originals if o == raw), bot="support"
        )


# -- errors ------------------------------------------------------------------------------------


async def test_429_maps_to_rate_limited_with_retry_after(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    tg.rate_limit_next(CUSTOMER, 2, retry_after=3)
    for _ in range(2):
        with pytest.raises(RateLimited) as info:
            await api.send_message(CUSTOMER, "hi")
        assert info.value.retry_after == 3.0 and info.value.platform_code == 429 and info.value.retryable
    await api.send_message(CUSTOMER, "hi")
    assert [r.status for r in tg.calls("sendMessage")] == [429, 429, 200]
    assert tg.calls("sendMessage")[0].response["parameters"] == {"retry_after": 3}


async def test_blocked_user_and_missing_chat_are_permanent(tg: FakeTelegramApi, api: TelegramBotApi) -> None:
    tg.block_chat(CUSTOMER)
    with pytest.raises(PermanentDeliveryError, match="bot was blocked by the user") as blocked:
        await api.send_message(CUSTOMER, "hi")
    assert blocked.value.platform_code == 403 and not blocked.value.retryable
    tg.strict_chats = True
    with pytest.raises(PermanentDeliveryError, match="chat not found") as missing:
        await api.send_message(777, "hi")
    assert missing.value.platform_code == 400


async def test_server_errors_are_retryable(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    tg.fail_next("sendMessage", status=500)
    with pytest.raises(ChannelUnavailable) as info:
        await api.send_message(CUSTOMER, "hi")
    assert info.value.retryable and info.value.platform_code == 500
    tg.fail_next("sendMessage", status=502, body="<html><body>Bad Gateway</body></html>")
    with pytest.raises(ChannelUnavailable, match="HTTP 502"):
        await api.send_message(CUSTOMER, "hi")
    assert (await api.send_message(CUSTOMER, "hi")).message_id == 1


async def test_bad_token_is_permanent_and_never_shown(
    tg: FakeTelegramApi, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "987654:WrongTokenValueThatMustNotLeak"
    caplog.set_level(logging.DEBUG)
    async with TelegramBotApi(wrong, base_url=tg.base_url) as bad:
        with pytest.raises(PermanentDeliveryError) as info:
            await bad.get_me()
        assert info.value.platform_code == 401
        assert wrong not in str(info.value) and wrong not in repr(bad)
    assert tg.requests[-1].token_ok is False
    assert wrong not in caplog.text


async def test_connection_errors_are_unavailable_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: nothing listens there
    token = "111:ConnectionRefusedToken"
    caplog.set_level(logging.DEBUG)
    async with TelegramBotApi(token, base_url=f"http://127.0.0.1:{port}/bot", timeout=2) as dead:
        with pytest.raises(ChannelUnavailable) as info:
            await dead.send_message(CUSTOMER, "hi")
        assert info.value.retryable and token not in str(info.value)
        with pytest.raises(ChannelUnavailable):
            await dead.download_file("photos/file_1.jpg")
    assert token not in caplog.text


async def test_timeouts_are_unavailable(tg: FakeTelegramApi) -> None:
    async with TelegramBotApi(tg.token, base_url=tg.base_url, timeout=0.3) as slow:
        with pytest.raises(ChannelUnavailable, match="TimeoutError"):
            await slow.call("getUpdates", {"timeout": 5}, timeout=0.3)


async def test_invalid_requests_fail_before_the_network(api: TelegramBotApi, tg: FakeTelegramApi) -> None:
    with pytest.raises(InvalidInput):
        await api.send_message(CUSTOMER, "   ")
    with pytest.raises(InvalidInput, match="split it first"):
        await api.send_message(CUSTOMER, "😀" * 2049)
    with pytest.raises(InvalidInput, match="callback_data"):
        await api.send_message(CUSTOMER, "x", buttons=[[InlineButton("x", callback_data="é" * 33)]])
    with pytest.raises(InvalidInput):
        await api.send_photo(CUSTOMER, "file", caption="x" * 1025)
    assert tg.requests == []


def err(code: int, description: str, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


@pytest.mark.parametrize(
    ("status", "payload", "error", "code"),
    [
        (429, err(429, "Too Many Requests: retry after 7", retry_after=7), RateLimited, 429),
        (429, err(429, "Too Many Requests"), RateLimited, 429),
        (400, err(400, "Bad Request: chat not found"), PermanentDeliveryError, 400),
        (403, err(403, "Forbidden: bot was blocked by the user"), PermanentDeliveryError, 403),
        (403, err(403, "Forbidden: user is deactivated"), PermanentDeliveryError, 403),
        (401, err(401, "Unauthorized"), PermanentDeliveryError, 401),
        (404, err(404, "Not Found"), PermanentDeliveryError, 404),
        (
            400,
            err(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=-1009876543210,
            ),
            ChatMigrated,
            400,
        ),
        (409, err(409, "Conflict: terminated by other getUpdates request"), ChannelError, 409),
        (500, err(500, "Internal Server Error"), ChannelUnavailable, 500),
        (502, None, ChannelUnavailable, 502),
        (200, {"ok": False}, ChannelUnavailable, 200),
        (200, "not json", ChannelUnavailable, 200),
    ],
)
def test_map_api_error(status: int, payload: Any, error: type[ChannelError], code: int) -> None:
    mapped = map_api_error(status, payload, method="sendMessage")
    assert type(mapped) is error
    assert mapped.platform_code == code
    assert str(mapped).startswith("Telegram sendMessage: ")
    if isinstance(mapped, RateLimited):
        assert mapped.retry_after == (7.0 if "parameters" in payload else 1.0)
    if isinstance(mapped, ChatMigrated):
        assert mapped.new_chat_id == -1009876543210 and not mapped.retryable


# -- the wire format against the published API ---------------------------------------------------


async def test_every_parameter_we_send_exists_in_the_bot_api(
    api: TelegramBotApi, tg: FakeTelegramApi
) -> None:
    topic = await api.create_forum_topic(STAFF, "T-1", icon_color=16766590)
    sent = await api.send_message(
        STAFF,
        "hi",
        message_thread_id=topic.message_thread_id,
        buttons=keyboard_from_pairs([("a", "b")]),
        parse_mode="HTML",
        disable_link_preview=True,
        disable_notification=True,
    )
    await api.send_message(STAFF, "re", reply_to_message_id=sent.message_id)
    await api.send_photo(CUSTOMER, InputFile(b"p", "p.jpg", "image/jpeg"), caption="c", reply_to_message_id=1)
    await api.send_document(CUSTOMER, InputFile(b"d", "d.txt"), caption="c", message_thread_id=None)
    await api.edit_forum_topic(
        STAFF, topic.message_thread_id, name="T-1 renamed", icon_custom_emoji_id="5312"
    )
    await api.answer_callback_query("1", text="ok", show_alert=True, url="https://t.me/x", cache_time=5)
    await api.set_webhook("https://x.example/h", secret_token="s", allowed_updates=["message"],
                          drop_pending_updates=True, max_connections=10)  # fmt: skip
    await api.delete_webhook(drop_pending_updates=True)
    await api.get_updates(offset=5, timeout=0, limit=10, allowed_updates=["message"])
    file_id = tg.add_file(b"f")
    await api.get_file(file_id)
    await api.get_me()

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    methods = {r.method for r in tg.requests}
    assert methods >= {
        "sendMessage", "sendPhoto", "sendDocument", "createForumTopic", "editForumTopic",
        "answerCallbackQuery", "setWebhook", "deleteWebhook", "getUpdates", "getFile", "getMe",
    }  # fmt: skip
    for request in tg.requests:
        assert request.ok, (request.method, request.response)
        spec = {f["name"]: f for f in schema["methods"][request.method].get("fields", [])}
        sent_names = set(request.params) | set(request.files)
        assert sent_names <= set(spec), (request.method, sent_names - set(spec))
        required = {name for name, f in spec.items() if f["required"]}
        assert required <= sent_names, (request.method, required - sent_names)
    reply = tg.calls("sendMessage")[1].params["reply_parameters"]
    reply_fields = {f["name"] for f in schema["types"]["ReplyParameters"]["fields"]}
    assert set(reply) <= reply_fields


# -- pacing against a server that enforces the platform's limits ---------------------------------


async def test_fake_enforces_the_per_chat_limit(tg: FakeTelegramApi, api: TelegramBotApi) -> None:
    tg.enforce_limits = True
    await api.send_message(CUSTOMER, "one")
    with pytest.raises(RateLimited) as info:
        await api.send_message(CUSTOMER, "two")
    assert info.value.retry_after == 1.0
    await api.send_message(CUSTOMER + 1, "another chat is fine")


async def test_limiter_and_penalties_deliver_everything_without_429(
    tg: FakeTelegramApi, api: TelegramBotApi
) -> None:
    tg.enforce_limits = True
    limiter = SendRateLimiter()
    tg.rate_limit_next(CUSTOMER, 1, retry_after=1)  # one 429 the limiter could not foresee
    long_text = ("A long answer from the knowledge base. " * 150).strip()  # about 5,800 characters

    async def deliver(chat_id: int, text: str) -> None:
        for chunk in split_text(text):
            while True:
                await limiter.acquire(chat_id)
                try:
                    await api.send_message(chat_id, chunk)
                    break
                except RateLimited as exc:
                    limiter.penalise(chat_id, exc.retry_after)

    await asyncio.gather(deliver(CUSTOMER, long_text), deliver(CUSTOMER + 1, "short"), deliver(STAFF, "note"))
    assert [m["text"] for m in tg.sent_messages(CUSTOMER)] == split_text(long_text)
    statuses = [r.status for r in tg.calls("sendMessage")]
    assert statuses.count(429) == 1  # only the injected one: our pacing never tripped the real limit
    rejected = next(r for r in tg.calls("sendMessage") if r.status == 429)
    retried = [t for t in tg.send_times(CUSTOMER) if t > rejected.at]
    assert retried and retried[0] - rejected.at >= 0.95  # retry_after honoured


# -- python-telegram-bot can use the same fake -------------------------------------------------


async def test_python_telegram_bot_speaks_to_the_fake(tg: FakeTelegramApi) -> None:
    from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

    bot = Bot(tg.token, base_url=tg.base_url, base_file_url=tg.file_base_url)
    async with bot:
        assert (await bot.get_me()).username == tg.username
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="y")]])
        message = await bot.send_message(CUSTOMER, "123", reply_markup=markup)
        assert message.text == "123"  # a numeric-looking text stays a string through form encoding
        tg.push_message(CUSTOMER, "hello")
        [update] = await bot.get_updates(timeout=1)
        assert update.message is not None and update.message.text == "hello"
    assert tg.calls("sendMessage")[0].params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Yes", "callback_data": "y"}]]
    }


@pytest.mark.parametrize(
    "body",
    [
        '{"ok": true, "result": {}}',
        '{"ok": true, "result": {"message_id": 1, "chat": {"id": "x"}}}',
        '{"ok": true}',
    ],
)
async def test_a_garbled_success_is_the_servers_fault(
    api: TelegramBotApi, tg: FakeTelegramApi, body: str
) -> None:
    tg.fail_next("sendMessage", status=200, body=body)
    with pytest.raises(ChannelUnavailable, match="result"):
        await api.send_message(CUSTOMER, "hi")
