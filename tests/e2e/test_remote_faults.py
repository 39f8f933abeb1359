"""Remote APIs misbehave: the fake WeChat API answers 5xx, the fake Bot API answers 5xx and 429 with
retry_after, the SMTP server answers 451, and one WeChat account's API never answers at all. The outbox
retries, waits out retry_after, ends a record dead after its limit with the platform's error, and a
stuck WeChat API delays neither Telegram nor email deliveries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

from channels.settings import EmailMailbox, TelegramBot, WeChatAccount
from gateway.appkeys import OUTBOX
from gateway.database import free_port
from tests.conftest import SettingsFactory
from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.wechat_api import FakeWeChatApi
from tests.helpers import eventually, running_app
from ticket_core.messages import OutboundMessage
from ticket_core.secret import Secret

CHAT = 5550001


class FlakySmtp:
    """Answers 451 (try again later) to the first `failures` messages, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[Any] = []
        self.refused = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refused < self.failures:
            self.refused += 1
            return "451 4.3.0 try again later"
        self.received.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@asynccontextmanager
async def flaky_smtp(failures: int) -> AsyncIterator[tuple[int, FlakySmtp]]:
    handler = FlakySmtp(failures)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        yield port, handler
    finally:
        await asyncio.to_thread(controller.stop)


@asynccontextmanager
async def stuck_api() -> AsyncIterator[str]:
    """An HTTP server that accepts requests and never answers (a hung upstream)."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=504)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        release.set()
        await runner.cleanup()


def _wechat(name: str, api: str, app_id: str, secret: str) -> WeChatAccount:
    return WeChatAccount(
        name=name,
        app_id=app_id,
        app_secret=Secret(secret),
        token=Secret("faults-token"),
        encoding_aes_key=Secret("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
        mode="safe",
        api_base_url=api,
    )


async def _record(mongo: Any, record_id: str) -> dict[str, Any]:
    from bson import ObjectId

    doc = await mongo.outbox.find_one({"_id": ObjectId(record_id)})
    assert doc is not None
    return dict(doc)


async def _final(mongo: Any, record_id: str, timeout: float = 60.0) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        doc = await _record(mongo, record_id)
        return doc if doc["state"] in ("sent", "dead") else None

    result: dict[str, Any] = await eventually(done, timeout=timeout, interval=0.1)
    return result


async def test_retries_retry_after_dead_letters_and_no_head_of_line_blocking(
    make_settings: SettingsFactory, mongo: Any
) -> None:
    async with (
        FakeWeChatApi() as wx,
        FakeTelegramApi(token="444444:FAULTS") as tg,
        flaky_smtp(failures=2) as (smtp_port, smtp),
        stuck_api() as stuck_url,
    ):
        for i in range(12):
            wx.user_wrote(f"o_fault_{i}")
        settings = make_settings(
            wechat_accounts=(
                _wechat("main", wx.base_url, wx.app_id, wx.app_secret),
                _wechat("stuck", stuck_url, "wxstuck000000001", "stuck-secret"),
            ),
            telegram_bots=(TelegramBot(name="support", token=Secret(tg.token), base_url=tg.base_url),),
            email_mailboxes=(
                EmailMailbox(
                    name="support",
                    address="support@example.com",
                    smtp_host="127.0.0.1",
                    smtp_port=smtp_port,
                    smtp_security="none",
                    timeout_seconds=10.0,
                ),
            ),
            outbox={"max_attempts": 4, "retry_base_seconds": 0.1, "retry_max_seconds": 0.5},
        )
        async with running_app(settings) as client:
            outbox = client.app[OUTBOX]

            async def enqueue(channel: str, account: str, to: str, text: str, key: str) -> str:
                return await outbox.enqueue(OutboundMessage(channel, account, to, text), idempotency_key=key)

            # 1. A hung WeChat API: ten recipients, each delivery waiting on a server that never answers.
            stuck = [
                await enqueue("wechat", "stuck", f"o_stuck_{i}", "hello", f"stuck-{i}") for i in range(10)
            ]
            await asyncio.sleep(0.5)  # the worker has taken them and is waiting
            # 2. Telegram: two 5xx answers, then a 429 with retry_after=2, then success.
            tg.fail_next("sendMessage", 2, status=502)
            started = time.monotonic()
            tg_5xx = await enqueue("telegram", "support", str(CHAT), "after 5xx", "tg-5xx")
            # 3. Email: the SMTP server answers 451 twice, then accepts.
            mail = await enqueue("email", "support", "customer@example.com", "after 451", "mail-451")
            sent_tg = await _final(mongo, tg_5xx)
            sent_mail = await _final(mongo, mail)
            other_channels = time.monotonic() - started
            assert sent_tg["state"] == "sent", sent_tg
            assert [h["outcome"] for h in sent_tg["history"]] == ["retry", "retry", "sent"]
            assert sent_mail["state"] == "sent", sent_mail
            assert smtp.refused == 2 and len(smtp.received) == 1
            # Neither waited for the hung WeChat API (its requests time out after 10 s each).
            assert other_channels < 8.0, other_channels
            states = [(await _record(mongo, r))["state"] for r in stuck]
            assert set(states) <= {"sending", "pending"}, states

            # 4. 429 with retry_after: the next attempt comes no sooner than the platform asked.
            tg.rate_limit_next(CHAT, 1, retry_after=2)
            limited = await enqueue("telegram", "support", str(CHAT), "after 429", "tg-429")
            done = await _final(mongo, limited)
            assert done["state"] == "sent", done
            [refusal] = [r for r in tg.requests if r.status == 429]
            [delivery] = [r for r in tg.calls("sendMessage") if r.ok and r.params.get("text") == "after 429"]
            assert delivery.at - refusal.at >= 2.0 - tg.limit_tolerance
            assert done["attempts"] == 1 and done["rate_limited"] == 1  # pacing is not a failure

            # 5. WeChat 5xx on every try: dead after max_attempts, with the platform's error kept.
            wx.fail_next(100, http_status=500, path="/cgi-bin/message/custom/send")
            failing = await enqueue("wechat", "main", "o_fault_1", "never arrives", "wx-5xx")
            dead = await _final(mongo, failing)
            assert dead["state"] == "dead", dead
            assert dead["attempts"] == 4
            assert "500" in dead["last_error"], dead["last_error"]
            assert [h["outcome"] for h in dead["history"]] == ["retry", "retry", "retry", "dead"]
            wx._failures.clear()

            # 6. Meanwhile the hung account's records time out and are retried, never delivered twice.
            for record_id in stuck:
                doc = await _record(mongo, record_id)
                assert doc["state"] in ("sending", "pending", "dead"), doc
