"""Scale-out: 1, 2 and 3 gateway processes against one database, load on every channel.

For each process count a fresh SecantusDB server; every gateway has the
web form, a WeChat account (safe mode, against the fake WeChat API), a Telegram webhook bot and a
Telegram polling bot (against two fake Bot APIs, all in this process), an IMAP mailbox (on a
throwaway dovecot, when installed), with the dialog on. The same mixed load (web-form submissions,
signed WeChat callbacks, Telegram webhook updates; conversations of three messages each) is spread
round-robin over the processes, as a load balancer would, while mail arrives in the mailbox. Figures:
HTTP intake rate (acknowledged/s) and end-to-end rate (records handled/s until all, mail included, are
done); both as a ratio to the single process in the same run. Then the checks: no message handled
twice (see `duplicate_report`), every mail stored once, and, with 2 and 3 processes, the Telegram
polling and IMAP leader leases move when their holder (the first process, started alone) is SIGKILLed:
time until another process holds each, and an update and a mail sent after the kill are stored.

    python bench/scale_out.py [--per-channel 90] [--processes 1 2 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from _common import REPO, machine, write_results
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
from tests.imap_server import PASSWORD, DovecotServer, append, available, customer_mail, mail_relay

LEASE_SECONDS = 6.0
LEASES = ("telegram-poll:poller", "imap:support")
QUESTIONS = ["My router has no internet", "打印机卡纸了怎么办", "How do I reset my password?"]


def mixed_load(tag: int, per_channel: int, wx: FakeWeChatApi) -> list[list[Request]]:
    """Conversations (lists of requests sent in order); three messages per chat or openid."""
    signer = wechat_signer()
    conversations: list[list[Request]] = []
    for c in range(per_channel // 3):
        conversations.append([webform_request(f"scale{tag}-{c}-{m}") for m in range(3)])
        openid = f"o_scale{tag}_{c}"
        wx.user_wrote(openid)
        conversations.append(
            [wechat_request(signer, openid, QUESTIONS[m], tag * 10**9 + c * 10 + m) for m in range(3)]
        )
        chat = tag * 100_000 + c
        conversations.append(
            [telegram_request(tag * 10**7 + c * 10 + m, chat, QUESTIONS[m]) for m in range(3)]
        )
    return conversations


async def drive(gateways: list[GatewayProcess], conversations: list[list[Request]]) -> dict[str, Any]:
    """Each conversation's messages in order, one after the other; conversations concurrently, each
    message to the next gateway in turn (round-robin)."""
    statuses: dict[int, int] = {}
    turn = 0
    acked: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        sem = asyncio.Semaphore(48)

        async def conversation(requests: list[Request]) -> None:
            nonlocal turn
            async with sem:
                for request in requests:
                    gw = gateways[turn % len(gateways)]
                    turn += 1
                    for _ in range(5):  # a platform retries what was not acknowledged
                        status = await send(http, gw.url, request)
                        statuses[status] = statuses.get(status, 0) + 1
                        if 200 <= status < 300:
                            acked.append(request.dedup_key)
                            break
                        await asyncio.sleep(0.5)

        started = time.perf_counter()
        await asyncio.gather(*(conversation(c) for c in conversations))
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "acked": acked, "statuses": {str(k): v for k, v in statuses.items()}}


class Mail:
    """The throwaway dovecot and its SMTP relay: one mailbox per configuration."""

    def __init__(self, server: DovecotServer, smtp_port: int) -> None:
        self.server, self.smtp_port = server, smtp_port

    def mailbox(self) -> tuple[str, str]:
        """(address, the gateway's TOML for it)."""
        address = self.server.add_user()
        toml = mailbox_toml(
            self.server.host, self.server.port, address, PASSWORD, self.smtp_port, LEASE_SECONDS
        )
        return address, toml

    async def send(self, address: str, tag: str, count: int) -> list[str]:
        """Mails APPENDed to the mailbox; returns their subjects."""
        subjects = [f"scale mail {tag}-{i}" for i in range(count)]
        await append(
            self.server,
            address,
            [customer_mail(s, address, QUESTIONS[i % 3]) for i, s in enumerate(subjects)],
        )
        return subjects


@contextlib.asynccontextmanager
async def mail_server() -> AsyncIterator[Mail | None]:
    if not available():
        print("dovecot is not installed or we are not root: the runs take no mail", flush=True)
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="omnigate-scale-dovecot-"))
    server = DovecotServer(folder)
    server.start()
    try:
        async with mail_relay(server) as (port, _relay):
            yield Mail(server, port)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def one_config(
    n: int,
    tmp: Path,
    uri: str,
    tg: FakeTelegramApi,
    poll: FakeTelegramApi,
    wx: FakeWeChatApi,
    mails: Mail | None,
    per_channel: int,
) -> dict[str, Any]:
    database = f"scale_{n}"
    address, mailbox = mails.mailbox() if mails else ("", "")
    config = GatewayConfig(
        uri=uri,
        database=database,
        dispatch=True,
        telegram_api=tg.base_url,
        telegram_token=tg.token,
        wechat_api=wx.base_url,
        poll_api=poll.base_url,
        poll_token=poll.token,
        poll_lease_seconds=LEASE_SECONDS,
        lease_seconds=20.0,
        sweep_interval_seconds=2.0,
        extra=mailbox,
    )
    gateways = [GatewayProcess(tmp / f"n{n}", config, name=f"gw{i}") for i in range(n)]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    db = client[database]
    result: dict[str, Any] = {"processes": n}
    leases = LEASES if mails else LEASES[:1]
    try:
        # The first process starts alone and takes every leader lease: the SIGKILL moves them all.
        gateways[0].start()
        await gateways[0].wait_healthy()
        await held_by(db, leases, {gateways[0].pid}, 30)
        for gw in gateways[1:]:
            gw.start()
        for gw in gateways[1:]:
            await gw.wait_healthy()
        warm = mixed_load(900 + n, 3, wx)
        await drive(gateways, warm)
        await wait_all_handled(db, 9, 60)
        before = await db.inbox.count_documents({})
        conversations = mixed_load(n, per_channel, wx)
        total = sum(len(c) for c in conversations)
        started = time.perf_counter()
        if mails:
            load, subjects = await asyncio.gather(
                drive(gateways, conversations), mails.send(address, str(n), per_channel)
            )
        else:
            load, subjects = await drive(gateways, conversations), []
        total += len(subjects)
        finished = await wait_all_handled(db, before + total, 300)
        handled_seconds = time.perf_counter() - started
        result.update(
            {
                "messages": total,
                "mails": len(subjects),
                "acknowledged": len(load["acked"]),
                "statuses": load["statuses"],
                "intake_per_second": round(len(load["acked"]) / load["seconds"], 1),
                "handled": finished - before,
                "handled_seconds": round(handled_seconds, 1),
                "handled_per_second": round((finished - before) / handled_seconds, 1),
            }
        )
        problems = await duplicate_report(db)
        result["duplicates"] = problems
        missing = [k for k in load["acked"] if await db.inbox.count_documents({"dedup_key": k}) != 1]
        missing += [s for s in subjects if await db.inbox.count_documents({"message.subject": s}) != 1]
        result["acknowledged_but_not_stored_once"] = missing[:20]
        if n >= 2:
            result["lease"] = await lease_move(db, gateways, leases, poll, mails, address)
    finally:
        for gw in gateways:
            gw.stop()
        await client.close()
    return result


async def held_by(db: Any, leases: tuple[str, ...], pids: set[int], limit: float) -> dict[str, int | None]:
    """Wait until a process in `pids` holds each lease; the holders' pids (None: not in time)."""
    deadline = time.perf_counter() + limit
    holders: dict[str, int | None] = {}
    while time.perf_counter() < deadline:
        holders = {name: owner_pid(await lease_holder(db, name)) for name in leases}
        if all(pid in pids for pid in holders.values()):
            break
        await asyncio.sleep(0.1)
    return holders


async def lease_move(
    db: Any,
    gateways: list[GatewayProcess],
    leases: tuple[str, ...],
    poll: FakeTelegramApi,
    mails: Mail | None,
    address: str,
) -> dict[str, Any]:
    """SIGKILL the first process, which holds every lease; how long until the others hold them, and
    whether what arrives after the kill (a Telegram update, a mail) is stored."""
    leader, others = gateways[0], {g.pid for g in gateways[1:]}
    leader.kill()
    killed = time.perf_counter()
    moved_at: dict[str, float] = {}
    holders: dict[str, int | None] = {}
    while time.perf_counter() - killed < LEASE_SECONDS * 4 and len(moved_at) < len(leases):
        for name in leases:
            holders[name] = owner_pid(await lease_holder(db, name))
            if name not in moved_at and holders[name] in others:
                moved_at[name] = round(time.perf_counter() - killed, 2)
        await asyncio.sleep(0.1)
    update = poll.push_message(777_001, "still polling after the takeover?")
    keys = [f"telegram:poller:{update['update_id']}"]
    later = await mails.send(address, "after-kill", 1) if mails else []
    stored = False
    for _ in range(150):
        found = [await db.inbox.count_documents({"dedup_key": k}) for k in keys]
        found += [await db.inbox.count_documents({"message.subject": s}) for s in later]
        if all(found):
            stored = True
            break
        await asyncio.sleep(0.2)
    takeover = max(moved_at.values(), default=float("inf"))
    return {
        "leases": list(leases),
        "killed_pid": leader.pid,
        "new_pids": holders,
        "moved": len(moved_at) == len(leases),
        "takeover_seconds": moved_at,
        "lease_seconds": LEASE_SECONDS,
        "within_lease_time": takeover <= LEASE_SECONDS + 1.0,
        "arrivals_after_takeover_stored": stored,
    }


async def run(counts: list[int], per_channel: int) -> dict[str, Any]:
    results = []
    with tempfile.TemporaryDirectory(prefix="omnigate-scale-") as folder:
        tmp = Path(folder)
        async with (
            FakeTelegramApi(token="111111:SCALE-HOOK") as tg,
            FakeTelegramApi(token="222222:SCALE-POLL") as poll,
            FakeWeChatApi() as wx,
            mail_server() as mails,
        ):
            for n in counts:
                # A fresh database server each: one that served the earlier runs is slower, which
                # would count against the larger process counts, always run last.
                with database_server(tmp / f"db{n}") as uri:
                    r = await one_config(n, tmp, uri, tg, poll, wx, mails, per_channel)
                    results.append(r)
                    print(
                        f"{n} process(es): intake {r['intake_per_second']}/s, handled "
                        f"{r['handled_per_second']}/s ({r['handled']}/{r['messages']}), "
                        f"duplicates: {'none' if _clean(r) else r['duplicates']}",
                        flush=True,
                    )
                    if "lease" in r:
                        print(f"  lease: {r['lease']}", flush=True)
    base = results[0]
    for r in results:
        r["intake_ratio_to_1"] = round(r["intake_per_second"] / base["intake_per_second"], 2)
        r["handled_ratio_to_1"] = round(r["handled_per_second"] / base["handled_per_second"], 2)
        r["no_duplicates"] = _clean(r)
    return {"benchmark": "scale_out", "per_channel": per_channel, "runs": results, "machine": machine()}


def _clean(r: dict[str, Any]) -> bool:
    return not any(r["duplicates"].values()) and not r["acknowledged_but_not_stored_once"]


def table(result: dict[str, Any]) -> str:
    lines = [
        "| processes | messages | intake (ack/s) | vs 1 | handled end to end (/s) | vs 1 "
        "| duplicates | lease moved |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["runs"]:
        lease = r.get("lease")
        moved = (
            "-"
            if lease is None
            else (
                "yes, "
                + ", ".join(f"{name.split(':')[0]} {s} s" for name, s in lease["takeover_seconds"].items())
                + f" (lease {lease['lease_seconds']:g} s)"
                if lease["moved"]
                else "NO"
            )
        )
        lines.append(
            f"| {r['processes']} | {r['messages']} | {r['intake_per_second']} | {r['intake_ratio_to_1']} | "
            f"{r['handled_per_second']} | {r['handled_ratio_to_1']} | "
            f"{'none' if r['no_duplicates'] else 'FOUND'} | {moved} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-channel", type=int, default=90)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    result = asyncio.run(run(args.processes, args.per_channel))
    result["table"] = table(result)
    print()
    print(result["table"])
    path = write_results("scale_out", result)
    print(f"written {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
