"""SIGKILL the gateway while web-form submissions are in flight: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from gateway.database import free_port, running_embedded_uri

ROOT = Path(__file__).resolve().parents[2]


def _start(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    config = tmp / "omnigate.toml"
    config.write_text(
        f'[server]\nport = {port}\nform_wait_seconds = 2.0\n[storage]\npath = "{tmp / "var"}"\n'
        "[bus]\nlease_seconds = 2.0\nsweep_interval_seconds = 0.5\n",
        encoding="utf-8",
    )
    env = {**os.environ, "OMNIGATE_LOG_LEVEL": "WARNING"}
    log = open(tmp / f"gateway-{port}.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(config), "serve"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


async def _wait_healthy(port: int, proc: subprocess.Popen[bytes], limit: float = 60) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(int(limit * 10)):
            assert proc.poll() is None, "gateway exited during start-up"
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as res:
                    if res.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("gateway did not become healthy")


@pytest.mark.slow
async def test_sigkill_during_submissions_loses_no_acknowledged_submission(tmp_path: Path) -> None:
    port = free_port()
    proc = _start(tmp_path, port)
    acked: dict[str, int] = {}
    try:
        await _wait_healthy(port, proc)

        async def submitter(http: aiohttp.ClientSession, worker: int) -> None:
            for i in range(10_000):
                key = f"w{worker}-{i}-{uuid.uuid4().hex[:6]}"
                body = {
                    "subject": f"crash test {key}",
                    "description": "in flight",
                    "email": f"{worker}@example.com",
                }
                try:
                    async with http.post(
                        f"http://127.0.0.1:{port}/forms/support", json=body, headers={"Idempotency-Key": key}
                    ) as res:
                        if 200 <= res.status < 300:
                            acked[key] = res.status
                except (TimeoutError, aiohttp.ClientError):
                    return  # the gateway is gone: this submission was never acknowledged

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            workers = [asyncio.create_task(submitter(http, w)) for w in range(16)]
            while len(acked) < 60:
                await asyncio.sleep(0.05)
                assert proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            await asyncio.gather(*workers)
        assert len(acked) >= 60
        # the embedded database follows its parent down (PR_SET_PDEATHSIG); wait until it has gone
        for _ in range(300):
            if running_embedded_uri(tmp_path / "var" / "db.uri") is None:
                break
            await asyncio.sleep(0.1)

        proc = _start(tmp_path, port)
        await _wait_healthy(port, proc)
        uri = running_embedded_uri(tmp_path / "var" / "db.uri")
        assert uri is not None
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        db = client.omnigate
        try:
            for _ in range(600):  # records of the killed process are taken over once their lease expires
                if await db.inbox.count_documents({"state": {"$ne": "done"}}) == 0:
                    break
                await asyncio.sleep(0.1)
            assert await db.inbox.count_documents({"state": {"$ne": "done"}}) == 0
            for key in acked:
                count = await db.tickets.count_documents({"conversation_key": f"webform:support:{key}"})
                assert count == 1, (key, count)
            # every stored submission has exactly one ticket, acknowledged or not
            assert await db.tickets.count_documents({}) == await db.inbox.count_documents({})
            numbers = await db.tickets.distinct("number")
            assert len(numbers) == await db.tickets.count_documents({})
        finally:
            await client.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert proc.returncode == 0, (tmp_path / f"gateway-{port}.log").read_text()[-2000:]
