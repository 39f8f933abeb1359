"""SIGKILL the gateway during mixed-channel load (web form, WeChat callbacks, Telegram webhook updates,
mail arriving in an IMAP mailbox; the fake platforms, dovecot and the SMTP relay run in this test),
restart it, let the platforms retry what was not acknowledged: every acknowledged message and every
mail in the mailbox is stored exactly once, every ticket exists once, every due notification
is sent at least once and no more than once per idempotency key (the fakes' recorded sends per
recipient against the outbox; the one allowance is a record the killed process was sending at the
moment it died, which no platform without idempotency keys can tell apart)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from tests.dbserver import database_server
from tests.e2e.gateway_process import (
    GatewayConfig,
    GatewayProcess,
    Request,
    duplicate_report,
    mailbox_toml,
    send,
    telegram_request,
    wait_all_handled,
    webform_request,
    wechat_request,
    wechat_signer,
)
from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.wechat_api import FakeWeChatApi
from tests.helpers import eventually
from tests.imap_server import PASSWORD, DovecotServer, append, customer_mail, dovecot, imap_client, mail_relay

__all__ = ["dovecot"]

CHATS = 12


@pytest.mark.slow
async def test_sigkill_during_mixed_load_then_restart(tmp_path: Path, dovecot: DovecotServer) -> None:
    address = dovecot.add_user()
    async with (
        FakeTelegramApi(token="333333:CRASH-HOOK") as tg,
        FakeWeChatApi() as wx,
        mail_relay(dovecot) as (smtp_port, relay),
    ):
        with database_server(tmp_path / "db") as uri:
            config = GatewayConfig(
                uri=uri,
                database="crash_mixed",
                telegram_api=tg.base_url,
                telegram_token=tg.token,
                wechat_api=wx.base_url,
                lease_seconds=2.0,
                sweep_interval_seconds=0.5,
                outbox_lease_seconds=3.0,
                outbox_poll=0.2,
                outbox_retry_base=0.1,
                extra=mailbox_toml(dovecot.host, dovecot.port, address, PASSWORD, smtp_port, 2.0),
            )
            signer = wechat_signer()
            for c in range(CHATS):
                wx.user_wrote(f"o_crash_{c}")
            seq = itertools.count(1)
            makers: dict[str, Callable[[], Request]] = {}  # dedup key -> how to (re)build the request

            def next_request(channel: str) -> Request:
                n = next(seq)
                c = n % CHATS
                if channel == "webform":
                    make = lambda: webform_request(f"crash-{n}")  # noqa: E731
                elif channel == "wechat":
                    make = lambda: wechat_request(signer, f"o_crash_{c}", f"问题 {n}", 7 * 10**9 + n)  # noqa: E731
                else:
                    make = lambda: telegram_request(n, 9000 + c, f"question {n}")  # noqa: E731
                request = make()
                makers[request.dedup_key] = make
                return request

            acked: set[str] = set()
            unacked: set[str] = set()
            mailed: list[str] = []  # subjects of the mails in the mailbox
            gw = GatewayProcess(tmp_path, config, name="gw")
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
            db = client.crash_mixed
            try:
                gw.start()
                await gw.wait_healthy()
                stop = asyncio.Event()
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

                    async def worker(channel: str) -> None:
                        while not stop.is_set():
                            request = next_request(channel)
                            status = await send(http, gw.url, request)
                            (acked if 200 <= status < 300 else unacked).add(request.dedup_key)
                            if status == 0:
                                return  # the gateway is gone

                    async def mailer() -> None:  # mail keeps arriving, whatever the gateway does
                        async with imap_client(dovecot, address) as imap:
                            while not stop.is_set():
                                subject = f"crash mail {len(mailed)}"
                                response = await imap.append(customer_mail(subject, address), mailbox="INBOX")
                                assert response.result == "OK", response
                                mailed.append(subject)
                                await asyncio.sleep(0.05)

                    workers = [
                        asyncio.ensure_future(worker(ch))
                        for ch in ("webform", "wechat", "telegram")
                        for _ in range(4)
                    ]
                    workers.append(asyncio.ensure_future(mailer()))
                    for _ in range(600):  # until there is plenty in flight, notifications and mail included
                        sent = len(tg.sent_messages()) + len(wx.delivered) + len(relay.messages)
                        mails = await db.inbox.count_documents({"channel": "email"})
                        if len(acked) >= 90 and sent >= 5 and mails >= 5:
                            break
                        await asyncio.sleep(0.1)
                    gw.kill()
                    stop.set()
                    await asyncio.gather(*workers)
                    assert len(acked) >= 90
                    # Mail that arrives while the gateway is down.
                    late = [f"crash mail {len(mailed) + i}" for i in range(3)]
                    await append(dovecot, address, [customer_mail(s, address) for s in late])
                    mailed += late
                    # What the dead process was sending: the one case a platform may get twice.
                    in_flight = Counter(
                        [
                            (d["channel"], d["recipient"])
                            async for d in db.outbox.find(
                                {"state": "sending"}, {"channel": 1, "recipient": 1}
                            )
                        ]
                    )

                    gw = GatewayProcess(tmp_path, config, name="gw", port=gw.port)
                    gw.start()
                    await gw.wait_healthy()
                    # The platforms retry what was not acknowledged, and WeChat repeats some that were.
                    retries = sorted(unacked - acked) + sorted(acked)[:15]
                    for key in retries:
                        status = await send(http, gw.url, makers[key]())
                        assert 200 <= status < 300, (key, status)
                        acked.add(key)

                async def every_mail_stored() -> bool:  # once the restart has the IMAP lease
                    return await db.inbox.count_documents({"channel": "email"}) >= len(mailed)

                await eventually(every_mail_stored, timeout=60, interval=0.1)
                total = await db.inbox.count_documents({})
                assert await wait_all_handled(db, total, 60) >= total
                # Every mail in the mailbox exactly once: read before the kill, during it, or after.
                subjects = [r["message"]["subject"] async for r in db.inbox.find({"channel": "email"})]
                assert sorted(subjects) == sorted(mailed)
                unfinished = {"state": {"$in": ["pending", "sending"]}}
                for _ in range(300):
                    if await db.outbox.count_documents(unfinished) == 0:
                        break
                    await asyncio.sleep(0.2)

                for key in acked:
                    assert await db.inbox.count_documents({"dedup_key": key}) == 1, key
                problems = await duplicate_report(db, crashed=True)
                assert not any(problems.values()), problems
                forms = [k for k in acked if k.startswith("webform:")]
                for key in forms:  # every acknowledged submission has its one ticket
                    conv = key  # web-form dedup and conversation keys are the same
                    assert await db.tickets.count_documents({"conversation_key": conv}) == 1, key

                # Every due notification was sent...
                assert await db.outbox.count_documents(unfinished) == 0
                states = Counter([d["state"] async for d in db.outbox.find({}, {"state": 1})])
                assert states.get("dead", 0) == 0, [
                    d async for d in db.outbox.find({"state": "dead"}, {"last_error": 1, "channel": 1})
                ]
                # ...at least once and at most once per record (per recipient, fakes against outbox).
                records = Counter(
                    [
                        (d["channel"], d["recipient"])
                        async for d in db.outbox.find(
                            {
                                "state": "sent",
                                "via": {"$ne": "passive"},
                                "channel": {"$in": ["telegram", "wechat", "email"]},
                            },
                            {"channel": 1, "recipient": 1},
                        )
                    ]
                )
                delivered = Counter(("telegram", str(m["chat"]["id"])) for m in tg.sent_messages())
                delivered += Counter(("wechat", str(b["touser"])) for b in wx.delivered)
                delivered += Counter(("email", rcpt) for _, rcpts in relay.envelopes for rcpt in rcpts)
                assert {channel for channel, _ in records} == {"telegram", "wechat", "email"}, records
                for target in set(records) | set(delivered):
                    assert records[target] <= delivered[target] <= records[target] + in_flight[target], (
                        target,
                        records[target],
                        delivered[target],
                        in_flight[target],
                    )
            finally:
                gw.stop()
                await client.close()
