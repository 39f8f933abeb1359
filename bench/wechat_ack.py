"""WeChat callback acknowledgement latency and decrypt+parse cost.

WeChat retries a callback it has not seen answered within 5 s. The gateway answers only after the
message is durable in `inbox`, so the figure that matters is the time from request to answer under
concurrent callbacks: signature, timestamp and nonce checks (one nonce insert), decryption, parsing
and the durable insert (group commit). Target: p99 < 100 ms with the embedded database.

Scenarios (safe mode, reply budget 0 so the answer is the acknowledgement itself):
  1. closed loop at a stated concurrency: the maximum sustained rate, with p50/p99;
  2. open loop at half that rate: latency at a comfortable load;
  3. open loop at a low rate with the dialog engine handling every message in the same process.
Then the CPU cost of decrypting and parsing one message, without I/O.

The load generator runs in the gateway's own event loop, so the latencies include its overhead:
they are pessimistic. Runs in about a minute; writes bench/results/wechat_ack.json.

    .venv/bin/python bench/wechat_ack.py [--concurrency 16] [--seconds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _common import RESULTS, machine
from aiohttp import web

from channels.settings import WeChatAccount
from channels.wechat.crypto import WeChatMessageCrypto
from channels.wechat.signing import msg_signature, plain_signature
from channels.wechat.xml_parse import parse_callback_xml, parse_xml_fields
from gateway.app import create_app
from gateway.config import BusSettings, MongoSettings, Settings, StorageSettings
from gateway.database import EmbeddedMongo, free_port
from ticket_core.secret import Secret

TOKEN = "bench-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wxbench000000001"
_ids = itertools.count(1)


def signed_request(crypto: WeChatMessageCrypto, openid: str, text: str) -> tuple[dict[str, str], bytes]:
    """A safe-mode callback exactly as WeChat sends one (fresh nonce and MsgId each time)."""
    n = next(_ids)
    ts, nonce = str(int(time.time())), f"n{n:012d}"
    clear = (
        f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{10**15 + n}</MsgId></xml>"
    )
    encrypt = crypto.encrypt(clear)
    query = {
        "timestamp": ts,
        "nonce": nonce,
        "signature": plain_signature(TOKEN, ts, nonce),
        "encrypt_type": "aes",
        "msg_signature": msg_signature(TOKEN, ts, nonce, encrypt),
    }
    body = f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return query, body.encode()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "count": len(ordered),
        "p50_ms": round(pick(0.50), 2),
        "p90_ms": round(pick(0.90), 2),
        "p99_ms": round(pick(0.99), 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


class Gateway:
    """One gateway process's app on a loopback port, against the shared embedded database."""

    def __init__(self, uri: str, database: str, storage: Path, *, dispatch: bool) -> None:
        account = WeChatAccount(
            name="bench",
            app_id=APP_ID,
            app_secret=Secret("unused"),
            token=Secret(TOKEN),
            encoding_aes_key=Secret(AES_KEY),
            mode="safe",
            api_base_url="http://127.0.0.1:9",  # nothing is sent: replies stay in the outbox
            reply_budget_seconds=0.0,
        )
        self.settings = Settings(
            storage=StorageSettings(path=str(storage)),
            mongodb=MongoSettings(uri=Secret(uri), database=database),
            bus=BusSettings(dispatch=dispatch),
            wechat_accounts=(account,),
            seed_demo=dispatch,
        )
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/channels/wechat/bench"

    async def __aenter__(self) -> Gateway:
        app = create_app(self.settings, run_outbox=False)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _one(session: aiohttp.ClientSession, url: str, request: tuple[dict[str, str], bytes]) -> float:
    query, body = request
    started = time.perf_counter()
    async with session.post(url, params=query, data=body) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"callback answered {resp.status}")
    return time.perf_counter() - started


async def closed_loop(
    url: str, crypto: WeChatMessageCrypto, concurrency: int, seconds: float
) -> dict[str, Any]:
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(w: int) -> None:
            while time.perf_counter() < deadline:
                samples.append(
                    await _one(session, url, signed_request(crypto, f"o_bench_{w}", "打印机卡纸了"))
                )

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "mode": "closed loop",
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "rate_per_s": round(len(samples) / elapsed, 1),
        **percentiles(samples),
    }


async def open_loop(url: str, crypto: WeChatMessageCrypto, rate: float, seconds: float) -> dict[str, Any]:
    count = max(1, int(rate * seconds))
    requests = [signed_request(crypto, f"o_open_{i % 500}", "打印机卡纸了") for i in range(count)]
    samples: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for i, request in enumerate(requests):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(_one(session, url, request)))
        samples = list(await asyncio.gather(*tasks))
        elapsed = loop.time() - start
    return {
        "mode": "open loop",
        "target_rate_per_s": round(rate, 1),
        "achieved_rate_per_s": round(len(samples) / elapsed, 1),
        "seconds": round(elapsed, 2),
        **percentiles(samples),
    }


def decrypt_parse_cost(n: int = 5000) -> dict[str, Any]:
    crypto = WeChatMessageCrypto(AES_KEY, APP_ID)
    bodies = [signed_request(crypto, "o_cpu", "打印机卡纸了，型号 HP LaserJet 1020")[1] for _ in range(200)]
    started = time.perf_counter()
    for i in range(n):
        outer = parse_xml_fields(bodies[i % len(bodies)])
        parse_callback_xml(crypto.decrypt(outer["Encrypt"]))
    per_message = (time.perf_counter() - started) / n
    return {
        "messages": n,
        "us_per_message": round(per_message * 1e6, 1),
        "per_core_per_s": int(1 / per_message),
    }


async def main(concurrency: int, seconds: float) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    crypto = WeChatMessageCrypto(AES_KEY, APP_ID)
    with tempfile.TemporaryDirectory(prefix="wechat-ack-") as tmp:
        db = EmbeddedMongo(Path(tmp) / "db", log_path=Path(tmp) / "secantus.log")
        async with db:
            results: dict[str, Any] = {"machine": machine(), "target_p99_ms": 100}
            async with Gateway(db.uri, "bench_intake", Path(tmp) / "a", dispatch=False) as gw:
                await closed_loop(gw.url, crypto, 4, 2.0)  # warm-up: connections, indexes, token paths
                peak = await closed_loop(gw.url, crypto, concurrency, seconds)
                print(_line("intake, closed loop", peak))
                half = await open_loop(gw.url, crypto, peak["rate_per_s"] / 2, seconds)
                print(_line("intake, open loop at half the max rate", half))
            results["closed_loop"] = peak
            results["open_loop_half_rate"] = half
            rate = min(20.0, peak["rate_per_s"] / 4)
            async with Gateway(db.uri, "bench_dialog", Path(tmp) / "b", dispatch=True) as gw:
                await asyncio.sleep(1.0)  # the demo knowledge base is seeded and indexed at start
                with_dialog = await open_loop(gw.url, crypto, rate, seconds)
                print(_line(f"with the dialog handling each message, open loop {rate:.0f}/s", with_dialog))
            results["open_loop_with_dialog"] = with_dialog
    cost = decrypt_parse_cost()
    print(
        f"decrypt + parse: {cost['us_per_message']} µs per message ({cost['per_core_per_s']}/s on one core)"
    )
    results["decrypt_parse"] = cost
    return results


def _line(label: str, r: dict[str, Any]) -> str:
    rate = r.get("rate_per_s", r.get("achieved_rate_per_s"))
    extra = f" c={r['concurrency']}" if "concurrency" in r else ""
    return (
        f"{label}:{extra} {rate}/s, n={r['count']}, p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, "
        f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    figures = asyncio.run(main(args.concurrency, args.seconds))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "wechat_ack.json"
    out.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(RESULTS.parent.parent)}")
