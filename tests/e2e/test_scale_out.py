"""Two gateway processes on one database under mixed load (web form, WeChat callbacks, Telegram webhook
updates, one chat's messages spread over both, mail arriving in an IMAP mailbox): no message is
handled twice; SIGKILL the process that holds the Telegram polling and IMAP leases and the other takes
both over: it polls the bot and reads the mailbox, and every mail is stored exactly once."""

from __future__ import annotations

import asyncio
import time
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
    lease_holder,
    mailbox_toml,
    owner_pid,
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
from tests.imap_server import PASSWORD, DovecotServer, append, customer_mail, dovecot, mail_relay

__all__ = ["dovecot"]

LEASE = "telegram-poll:poller"
MAIL_LEASE = "imap:support"
POLL_LEASE_SECONDS = 4.0


def _mails(tag: int, count: int, address: str) -> list[bytes]:
    return [customer_mail(f"scale {tag}-{n}", address) for n in range(count)]


async def _holds_both(db: Any, gw: GatewayProcess) -> bool:
    holders = owner_pid(await lease_holder(db, LEASE)), owner_pid(await lease_holder(db, MAIL_LEASE))
    return holders == (gw.pid, gw.pid)


def _load(tag: int, chats: int, wx: FakeWeChatApi) -> list[list[Request]]:
    signer = wechat_signer()
    conversations = []
    for c in range(chats):
        openid = f"o_so{tag}_{c}"
        wx.user_wrote(openid)
        conversations += [
            [webform_request(f"so{tag}-{c}")],
            [wechat_request(signer, openid, f"question {m}", tag * 10**6 + c * 10 + m) for m in range(3)],
            [telegram_request(tag * 10**6 + c * 10 + m, tag * 1000 + c, f"question {m}") for m in range(3)],
        ]
    return conversations


async def _drive(gateways: list[GatewayProcess], conversations: list[list[Request]]) -> list[str]:
    """Each conversation in order, its messages alternating between the gateways; returns what was
    acknowledged. A refused or failed request is retried, as the platforms do."""
    acked: list[str] = []
    turn = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def conversation(requests: list[Request]) -> None:
            nonlocal turn
            for request in requests:
                for _ in range(10):
                    turn += 1
                    status = await send(http, gateways[turn % len(gateways)].url, request)
                    if 200 <= status < 300:
                        acked.append(request.dedup_key)
                        break
                    await asyncio.sleep(0.5)

        await asyncio.gather(*(conversation(c) for c in conversations))
    return acked


@pytest.mark.slow
async def test_two_processes_no_duplicates_and_the_polling_and_imap_leases_move(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    address = dovecot.add_user()
    async with (
        FakeTelegramApi(token="111111:SCALE-HOOK") as tg,
        FakeTelegramApi(token="222222:SCALE-POLL") as poll,
        FakeWeChatApi() as wx,
        mail_relay(dovecot) as (smtp_port, _relay),
    ):
        with database_server(tmp_path / "db") as uri:
            config = GatewayConfig(
                uri=uri,
                database="scale_test",
                telegram_api=tg.base_url,
                telegram_token=tg.token,
                wechat_api=wx.base_url,
                poll_api=poll.base_url,
                poll_token=poll.token,
                poll_lease_seconds=POLL_LEASE_SECONDS,
                lease_seconds=3.0,
                sweep_interval_seconds=0.5,
                extra=mailbox_toml(
                    dovecot.host, dovecot.port, address, PASSWORD, smtp_port, POLL_LEASE_SECONDS
                ),
            )
            gateways = [GatewayProcess(tmp_path, config, name=f"gw{i}") for i in range(2)]
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
            db = client.scale_test
            try:
                # The first process alone takes both leases, so killing it must move both.
                leader, survivor = gateways
                leader.start()
                await leader.wait_healthy()
                await eventually(lambda: _holds_both(db, leader), timeout=30, interval=0.1)
                survivor.start()
                await survivor.wait_healthy()
                mails = _mails(1, 6, address)
                acked, _ = await asyncio.gather(
                    _drive(gateways, _load(1, 4, wx)), append(dovecot, address, mails)
                )
                assert len(acked) == 28
                assert await wait_all_handled(db, 28 + len(mails), 90) >= 28 + len(mails)

                # Kill the leader in the middle of more load, which then goes to the survivor only.
                more = asyncio.ensure_future(_drive([survivor], _load(2, 3, wx)))
                await asyncio.sleep(0.3)
                leader.kill()
                killed = time.monotonic()
                await eventually(lambda: _holds_both(db, survivor), timeout=60, interval=0.1)
                takeover = time.monotonic() - killed
                update = poll.push_message(424242, "anyone polling?")
                later = _mails(2, 4, address)
                await append(dovecot, address, later)
                mails += later
                acked += await more

                async def polled() -> bool:
                    key = f"telegram:poller:{update['update_id']}"
                    return bool(await db.inbox.count_documents({"dedup_key": key}))

                for _ in range(300):
                    if await polled():
                        break
                    await asyncio.sleep(0.1)
                assert await polled(), "the new leader did not poll"

                async def every_mail_stored() -> bool:
                    return await db.inbox.count_documents({"channel": "email"}) >= len(mails)

                await eventually(every_mail_stored, timeout=30, interval=0.1)
                # Each mail exactly once, the ones that came after the kill read by the new leader.
                subjects = [r["message"]["subject"] async for r in db.inbox.find({"channel": "email"})]
                assert sorted(subjects) == sorted(
                    f"scale {t}-{n}" for t, c in ((1, 6), (2, 4)) for n in range(c)
                )

                total = await db.inbox.count_documents({})
                assert await wait_all_handled(db, total, 90) >= total
                for key in acked:  # every acknowledged message stored exactly once
                    assert await db.inbox.count_documents({"dedup_key": key}) == 1, key
                problems = await duplicate_report(db, crashed=True)
                assert not any(problems.values()), problems
                # Nothing was sent twice: the fake platforms saw one send per sent outbox record (plus at
                # most the records the killed process was sending when it died).
                quiet = {
                    "state": {"$in": ["pending", "sending"]},
                    "owner": {"$not": {"$regex": f":{leader.pid}:"}},
                }
                for _ in range(300):  # until only the killed process's leased records are unfinished
                    if await db.outbox.count_documents(quiet) == 0:
                        break
                    await asyncio.sleep(0.2)
                for fake, bot in ((tg, "support"), (poll, "poller")):
                    query = {"channel": "telegram", "account": bot}
                    sent = await db.outbox.count_documents({**query, "state": "sent"})
                    sending = await db.outbox.count_documents({**query, "state": "sending"})
                    assert sent <= len(fake.sent_messages()) <= sent + sending, bot
                # The lease lapses after its time; generous bound for a busy machine.
                assert takeover < POLL_LEASE_SECONDS + 20, takeover
            finally:
                for gw in gateways:
                    gw.stop()
                await client.close()
