"""An IMAP peer that stops answering must not hold up shutdown: close() is bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from channels.email.imap_session import ImapSession
from channels.settings import EmailMailbox
from ticket_core.secret import Secret


@asynccontextmanager
async def mute_on_logout() -> AsyncIterator[tuple[int, list[str]]]:
    """A minimal IMAP server (loopback) that logs in anyone and then never answers LOGOUT."""
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n")
        while line := await reader.readline():
            tag, _, rest = line.decode().strip().partition(" ")
            command = rest.split(" ", 1)[0].upper()
            seen.append(command)
            if command == "CAPABILITY":
                writer.write(f"* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n".encode())
            elif command == "LOGIN":
                writer.write(f"{tag} OK logged in\r\n".encode())
            # LOGOUT (and anything else): silence, as a wedged server or a dead NAT path gives
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()


def _box(port: int) -> EmailMailbox:
    return EmailMailbox(
        name="support", address="a@example.com", imap_host="127.0.0.1", imap_port=port,
        imap_security="none", password=Secret("x"), imap_id=False, timeout_seconds=30,
    )  # fmt: skip


async def test_close_returns_promptly_when_the_server_never_answers_logout() -> None:
    async with mute_on_logout() as (port, seen):
        session = ImapSession(_box(port))
        capabilities = await session.connect()
        assert "IDLE" in capabilities
        loop = asyncio.get_running_loop()
        begun = loop.time()
        await session.close()
        assert loop.time() - begun < 5
        assert seen[-1] == "LOGOUT"  # it did say goodbye first


async def test_close_is_bounded_even_while_the_closing_task_is_being_cancelled() -> None:
    async with mute_on_logout() as (port, _):
        session = ImapSession(_box(port))
        await session.connect()
        real_logout = session.client.logout
        released = asyncio.Event()
        stuck: list[asyncio.Task[object] | None] = []

        async def logout_ignoring_cancel() -> object:
            # What CI once saw: a LOGOUT whose cancellation never completed hung shutdown for good.
            stuck.append(asyncio.current_task())
            try:
                return await real_logout()
            except asyncio.CancelledError:
                await released.wait()
                raise

        session.client.logout = logout_ignoring_cancel

        async def run_then_close() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                await session.close()  # the intake loop's `finally`, reached by shutdown's cancel

        task = asyncio.get_running_loop().create_task(run_then_close())
        await asyncio.sleep(0.05)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done and task.cancelled()
        assert stuck and stuck[0] is not None and not stuck[0].done()  # close() really did not wait for it
        released.set()
        await asyncio.wait({stuck[0]}, timeout=5)
