"""The database stops answering for 10 s under load: webhooks say 503 (so platforms retry) instead of
acknowledging what they cannot store, and the gateway recovers by itself."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from gateway.database import free_port
from tests.dbserver import spawn, wait_port

ROOT = Path(__file__).resolve().parents[2]
FORM = {"subject": "断网测试", "description": "数据库暂停时提交", "email": "outage@example.com"}


async def _post(http: aiohttp.ClientSession, port: int, key: str) -> int:
    try:
        async with http.post(
            f"http://127.0.0.1:{port}/forms/support", json=FORM, headers={"Idempotency-Key": key}
        ) as res:
            await res.read()
            return res.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


@pytest.mark.slow
async def test_database_outage_gets_503_and_the_gateway_recovers(tmp_path: Path) -> None:
    db_port, port = free_port(), free_port()
    db = spawn(tmp_path / "db", db_port)
    gateway: subprocess.Popen[bytes] | None = None
    uri = f"mongodb://127.0.0.1:{db_port}/?directConnection=true"
    try:
        wait_port(db_port, db)
        config = tmp_path / "omnigate.toml"
        config.write_text(
            f'[server]\nport = {port}\nform_wait_seconds = 1.0\n[storage]\npath = "{tmp_path / "var"}"\n'
            f'[mongodb]\nuri = "{uri}"\ndatabase = "outage"\n[bus]\npublish_timeout_seconds = 3.0\n',
            encoding="utf-8",
        )
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(config), "serve"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "gateway.log", "wb"),
            env={**os.environ, "OMNIGATE_LOG_LEVEL": "WARNING"},
        )
        acked: set[str] = set()
        statuses: dict[str, list[int]] = {"before": [], "during": [], "after": []}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as res:
                        if res.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

            async def burst(phase: str, count: int) -> None:
                keys = [f"{phase}-{uuid.uuid4().hex[:8]}" for _ in range(count)]
                results = await asyncio.gather(*[_post(http, port, k) for k in keys])
                statuses[phase] += results
                acked.update(k for k, s in zip(keys, results, strict=True) if 200 <= s < 300)

            await burst("before", 10)
            db.send_signal(signal.SIGSTOP)  # unreachable: connections hang, nothing answers
            stopped_at = time.monotonic()
            while time.monotonic() - stopped_at < 10:
                await burst("during", 4)
            async with http.get(f"http://127.0.0.1:{port}/healthz") as res:
                health_during = res.status
            db.send_signal(signal.SIGCONT)
            recovered = None
            resumed_at = time.monotonic()
            while time.monotonic() - resumed_at < 30:
                await burst("after", 4)
                if statuses["after"][-4:] and all(200 <= s < 300 for s in statuses["after"][-4:]):
                    recovered = time.monotonic() - resumed_at
                    break
                await asyncio.sleep(0.2)
        assert all(200 <= s < 300 for s in statuses["before"]), statuses["before"]
        assert 503 in statuses["during"], statuses["during"]
        assert all(500 not in phase for phase in statuses.values()), statuses
        assert set(statuses["during"]) <= {503, 200, 201, 202}, statuses["during"]
        assert health_during == 503
        assert recovered is not None, statuses["after"]
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        try:
            store = client.outage
            for _ in range(300):
                if await store.inbox.count_documents({"state": {"$ne": "done"}}) == 0:
                    break
                await asyncio.sleep(0.1)
            for key in acked:  # every acknowledged submission is there, exactly once
                assert await store.inbox.count_documents({"dedup_key": f"webform:support:{key}"}) == 1
                assert (
                    await store.tickets.count_documents({"conversation_key": f"webform:support:{key}"}) == 1
                )
        finally:
            await client.close()
    finally:
        if db.poll() is None:
            db.send_signal(signal.SIGCONT)
        if gateway is not None and gateway.poll() is None:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(60)
        db.terminate()
        db.wait(30)
