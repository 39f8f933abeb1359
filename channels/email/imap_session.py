"""One IMAP connection (aioimaplib) with our own timeouts, reduced to what intake needs.

Every wire failure becomes `ChannelUnavailable` in `_translate`, the one place that knows
aioimaplib's errors; the intake loop reconnects with backoff on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Awaitable
from typing import Any, TypeVar

import aioimaplib

from channels.settings import EmailMailbox
from ticket_core.errors import ChannelUnavailable

T = TypeVar("T")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_UIDNEXT = re.compile(rb"UIDNEXT (\d+)")
_FETCH_UID = re.compile(rb"UID (\d+)")
CLIENT_ID = {"name": "omnigate", "version": "0.1", "vendor": "omnigate"}


def _translate(exc: BaseException, what: str) -> ChannelUnavailable:
    return ChannelUnavailable(f"IMAP {what}: {type(exc).__name__}: {exc}")


def quote_mailbox(name: str) -> str:
    if not name or any(ch in name for ch in "\r\n\x00"):
        raise ChannelUnavailable(f"not a usable IMAP folder name: {name!r}")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapSession:
    def __init__(self, box: EmailMailbox) -> None:
        self._box = box
        self._timeout = box.timeout_seconds
        self._client: aioimaplib.IMAP4 | None = None

    @property
    def client(self) -> aioimaplib.IMAP4:
        if self._client is None:
            raise ChannelUnavailable("IMAP session is not connected")
        return self._client

    async def _call(self, what: str, awaitable: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(awaitable, self._timeout)
        except (aioimaplib.Abort, aioimaplib.Error, aioimaplib.CommandTimeout, OSError, TimeoutError) as exc:
            raise _translate(exc, what) from exc

    async def _ok(self, what: str, awaitable: Awaitable[Any]) -> Any:
        response = await self._call(what, awaitable)
        if response.result != "OK":
            raise ChannelUnavailable(f"IMAP {what} refused: {_text(response.lines)}")
        return response

    async def connect(self) -> set[str]:
        """Connect, secure, log in and (for NetEase) identify; returns the server's capabilities."""
        box = self._box
        if box.imap_security == "tls":
            self._client = aioimaplib.IMAP4_SSL(
                host=box.imap_host, port=box.imap_port, timeout=self._timeout,
                ssl_context=ssl.create_default_context(),
            )  # fmt: skip
        else:
            self._client = aioimaplib.IMAP4(host=box.imap_host, port=box.imap_port, timeout=self._timeout)
        await self._call("connect", self.client.wait_hello_from_server())
        if box.imap_security == "starttls":
            await self._starttls()
        await self._ok("login", self.client.login(box.username or box.address, box.password.get()))
        if box.imap_id and self.client.has_capability("ID"):
            await self._call("ID", self.client.id(**CLIENT_ID))
        return set(self.client.protocol.capabilities)

    async def _starttls(self) -> None:
        # aioimaplib has no STARTTLS of its own: run the command, then upgrade the transport in place.
        protocol = self.client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ChannelUnavailable("IMAP server does not offer STARTTLS; refusing to log in in clear")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        await self._ok("STARTTLS", protocol.execute(command))
        loop = asyncio.get_running_loop()
        transport = await self._call(
            "TLS handshake",
            loop.start_tls(
                protocol.transport,
                protocol,
                ssl.create_default_context(),
                server_hostname=self._box.imap_host,
            ),
        )
        protocol.transport = transport
        await self._call("CAPABILITY", protocol.capability())

    async def select(self, folder: str) -> tuple[int, int]:
        """SELECT; returns (UIDVALIDITY, UIDNEXT)."""
        response = await self._ok(f"SELECT {folder}", self.client.select(quote_mailbox(folder)))
        joined = b"\n".join(bytes(line) for line in response.lines)
        validity = _UIDVALIDITY.search(joined)
        if validity is None:
            raise ChannelUnavailable(f"IMAP SELECT {folder}: no UIDVALIDITY in the answer")
        uidnext = _UIDNEXT.search(joined)
        return int(validity.group(1)), int(uidnext.group(1)) if uidnext else 0

    async def ensure_folder(self, folder: str) -> None:
        with contextlib.suppress(ChannelUnavailable):  # NO [ALREADYEXISTS] is fine
            await self._call(f"CREATE {folder}", self.client.create(quote_mailbox(folder)))

    async def uids_after(self, last_uid: int) -> list[int]:
        response = await self._ok("UID SEARCH", self.client.uid_search(f"UID {last_uid + 1}:*", charset=None))
        uids: list[int] = []
        for line in response.lines[:-1]:
            text = bytes(line).decode("ascii", "replace").replace("SEARCH", " ")
            uids += [int(t) for t in text.split() if t.isdigit()]
        # "n:*" also answers the highest UID when nothing is newer: keep only what is really new.
        return sorted(u for u in set(uids) if u > last_uid)

    async def fetch(self, uids: list[int]) -> list[tuple[int, bytes]]:
        """The raw bytes of each UID still present (a mail expunged meanwhile is simply absent)."""
        if not uids:
            return []
        response = await self._ok("UID FETCH", self.client.uid("fetch", _uid_set(uids), "(UID BODY.PEEK[])"))
        out: list[tuple[int, bytes]] = []
        current: int | None = None
        for line in response.lines:
            if isinstance(line, bytearray):
                if current is not None:
                    out.append((current, bytes(line)))
                    current = None
                continue
            if b"FETCH" in line:
                found = _FETCH_UID.search(line)
                current = int(found.group(1)) if found else None
        return out

    async def archive(self, uids: list[int], folder: str) -> None:
        if not uids:
            return
        uid_set, target = _uid_set(uids), quote_mailbox(folder)
        if self.client.has_capability("MOVE"):
            await self._ok("UID MOVE", self.client.uid("move", uid_set, target))
            return
        await self._ok("UID COPY", self.client.uid("copy", uid_set, target))
        await self._ok("UID STORE", self.client.uid("store", uid_set, "+FLAGS.SILENT", "(\\Deleted)"))
        if self.client.has_capability("UIDPLUS"):
            await self._ok("UID EXPUNGE", self.client.uid("expunge", uid_set))
        else:
            await self._ok("EXPUNGE", self.client.expunge())

    def can_idle(self) -> bool:
        return self.client.has_capability("IDLE")

    async def idle(self, seconds: float, heartbeat: float, beat: Any) -> bool:
        """IDLE for up to `seconds`, calling `beat()` every `heartbeat` seconds (lease renewal);
        returns True when the server pushed something (new mail, most likely)."""
        client = self.client
        try:
            task = await asyncio.wait_for(client.idle_start(timeout=seconds), self._timeout)
        except (aioimaplib.Abort, aioimaplib.Error, OSError, TimeoutError) as exc:
            raise _translate(exc, "IDLE") from exc
        pushed = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            while loop.time() < deadline and not pushed:
                try:
                    push = await client.wait_server_push(timeout=min(heartbeat, deadline - loop.time()))
                except TimeoutError:
                    if not await beat():
                        break
                    continue
                if push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                pushed = any(b"EXISTS" in bytes(line) or b"RECENT" in bytes(line) for line in push)
        finally:
            with contextlib.suppress(Exception):
                client.idle_done()
            try:
                await asyncio.wait_for(task, self._timeout)
            except (aioimaplib.Abort, aioimaplib.Error, OSError, TimeoutError) as exc:
                raise _translate(exc, "IDLE DONE") from exc
        return pushed

    async def noop(self) -> None:
        await self._ok("NOOP", self.client.noop())

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        # A polite LOGOUT, but bounded without waiting on its cancellation: aioimaplib's commands
        # can outlive a cancel (a lost IDLE, a dead peer), and close() runs on shutdown paths.
        logout = asyncio.ensure_future(client.logout())
        await asyncio.wait({logout}, timeout=2)
        logout.cancel()
        if logout.done() and not logout.cancelled():
            logout.exception()  # retrieved: a failed goodbye changes nothing
        with contextlib.suppress(Exception):
            transport = client.protocol.transport
            if transport is not None:
                transport.abort()  # fails any command still pending, so nothing waits on it


def _uid_set(uids: list[int]) -> str:
    """Compact ranges ("1:50,52") keep the command short for big batches."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def _text(lines: list[Any]) -> str:
    return " ".join(bytes(line).decode("utf-8", "replace") for line in lines)[:300]
