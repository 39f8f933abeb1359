"""Small helpers shared by tests: running the app, polling for a condition, a real SMTP server."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller

from channels.base import Channel
from gateway.app import create_app
from gateway.appkeys import BUS, TOKENS
from gateway.config import Settings
from gateway.database import free_port
from ticket_core.messages import CustomerIdentity, InboundMessage

# Headless Chromium for the browser tests: quiet, offline, no sandbox (CI runs as root).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@asynccontextmanager
async def running_app(
    settings: Settings, channels: Sequence[Channel] = ()
) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(settings, channels=channels)
    watchdog = asyncio.get_running_loop().create_task(_dump_tasks_after(240))
    try:
        async with TestClient(TestServer(app)) as client:
            yield client
    finally:
        watchdog.cancel()


async def _dump_tasks_after(seconds: float) -> None:
    """A test stuck this long prints where every task waits (pytest-timeout then fails it)."""
    await asyncio.sleep(seconds)
    print(f"\n--- asyncio tasks still waiting after {seconds:.0f} s ---", file=sys.stderr)
    for task in asyncio.all_tasks():
        task.print_stack(limit=8, file=sys.stderr)


async def token(client: TestClient[Any, Any], role: str = "admin") -> dict[str, str]:
    value = await client.app[TOKENS].create(name=f"test-{role}", role=role)
    return {"Authorization": f"Bearer {value}"}


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Poll until `check` returns something truthy; fail with the last value otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


class _Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


@asynccontextmanager
async def smtp_server(handler: Any = None) -> AsyncIterator[tuple[int, Any]]:
    """A real SMTP server (aiosmtpd) on loopback; by default it keeps every message it receives."""
    handler = handler if handler is not None else _Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        yield port, handler
    finally:
        await asyncio.to_thread(controller.stop)


async def ticket_from_fake(
    client: TestClient[Any, Any], user: str, text: str = "人工", *, category: str | None = None
) -> str:
    """A fake-channel customer asks for a person: the dialog makes a ticket at once; its number."""
    msg = InboundMessage(
        channel="fake",
        account="main",
        external_id="1",
        dedup_key=f"fake:{user}:1",
        identity=CustomerIdentity("fake", "main", user),
        conversation_key=f"fake:main:{user}",
        text=text,
        locale="zh-CN",
        meta={"reply_to": user},
        fields={"category": category} if category else {},
    )
    accepted = await client.app[BUS].publish(msg)
    result = await client.app[BUS].wait_result(accepted.record_id, 10)
    assert result is not None and "ticket_number" in result, result
    return str(result["ticket_number"])
