"""MongoDB access: the embedded SecantusDB process or a configured server, one driver code path.

SecantusDB runs as a child process (never imported): its GPL-2.0 licence stays at arm's length and
its work stays off our event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from gateway.config import Settings
from gateway.lifecycle import Component
from ticket_core.errors import StorageUnavailable

log = logging.getLogger(__name__)

Document = dict[str, Any]
Db = AsyncDatabase[Document]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # The database must not outlive a SIGKILLed gateway: the next start reopens the same files.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def secantus_command(port: int, storage: Path) -> list[str]:
    """The SecantusDB server on a loopback port, its data under `storage` (the gateway's embedded
    database, and the tests' and benchmarks' servers)."""
    return [
        sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
        "--storage-path", str(storage), "--log-level", "WARNING",
    ]  # fmt: skip


class EmbeddedMongo(Component):
    """Starts `python -m secantus` on a free loopback port with its data under `path`."""

    def __init__(self, path: str | Path, *, port: int | None = None, log_path: str | Path | None = None):
        self.path = Path(path)
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else self.path.parent / "secantus.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def uri_file(self) -> Path:
        """Where a running server tells other commands (`omnigate token create`) how to reach it."""
        return self.path.parent / "db.uri"

    async def initialize(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as logfile:  # noqa: ASYNC230 - once, at start-up
            self._proc = subprocess.Popen(  # noqa: ASYNC220 - needs preexec_fn
                secantus_command(self.port, self.path),
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if os.name == "posix" else None,
            )
        await self._wait_ready()
        self.uri_file.write_text(self.uri + "\n", encoding="utf-8")

    async def _wait_ready(self, limit: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise StorageUnavailable(
                    f"embedded database exited with code {self._proc.returncode}; see {self.log_path}"
                )
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise StorageUnavailable(f"embedded database did not start within {limit:.0f} s")

    async def shutdown(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            self.uri_file.unlink()
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)


def running_embedded_uri(uri_file: Path) -> str | None:
    try:
        uri = uri_file.read_text(encoding="utf-8").strip()
        port = int(uri.rsplit(":", 1)[1].split("/", 1)[0])
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return uri
    except (OSError, ValueError, IndexError):
        return None


INDEXES: dict[str, list[IndexModel]] = {
    "inbox": [
        IndexModel([("dedup_key", ASCENDING)], unique=True),
        IndexModel([("state", ASCENDING), ("lease_until", ASCENDING)]),
        # a conversation's latest records: ordering across processes, email loop and WeChat window checks
        IndexModel([("conversation_key", ASCENDING), ("_id", DESCENDING)]),
    ],
    "outbox": [
        IndexModel([("idempotency_key", ASCENDING)], unique=True),
        IndexModel([("state", ASCENDING), ("next_attempt_at", ASCENDING)]),
        IndexModel([("ticket_id", ASCENDING)]),
        IndexModel([("platform_id", ASCENDING)], sparse=True),  # WeChat TEMPLATESENDJOBFINISH lookup
    ],
    "customers": [
        IndexModel([("identities.key", ASCENDING)], unique=True, sparse=True),
        IndexModel([("email", ASCENDING)], sparse=True),
    ],
    "conversations": [IndexModel([("key", ASCENDING)], unique=True)],
    "tickets": [
        IndexModel([("number", ASCENDING)], unique=True),
        IndexModel([("source_key", ASCENDING)], unique=True, sparse=True),
        IndexModel([("requester", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("updated_at", ASCENDING)]),
        # the ticket list: a status filter, newest first (without it a queue page scans every ticket)
        IndexModel([("status", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("created_at", ASCENDING)]),
        # ticket operations: the SLA sweep reads only due tickets, ratings by time, open work per agent
        IndexModel([("sla.next_check", ASCENDING)], sparse=True),
        IndexModel([("csat.at", ASCENDING)], sparse=True),
        IndexModel([("assignee", ASCENDING), ("status", ASCENDING)]),
    ],
    "report_rollups": [IndexModel([("kind", ASCENDING), ("dim", ASCENDING), ("day", ASCENDING)])],
    "deflections": [IndexModel([("at", ASCENDING)])],
    "tasks": [IndexModel([("state", ASCENDING), ("created_at", ASCENDING)])],
    "routing_rules": [IndexModel([("order", ASCENDING)])],
    "ticket_events": [
        IndexModel([("ticket_id", ASCENDING), ("at", ASCENDING)]),
        IndexModel([("event_id", ASCENDING)], unique=True, sparse=True),
    ],
    "tokens": [IndexModel([("token_hash", ASCENDING)], unique=True)],
    "quarantine": [IndexModel([("at", ASCENDING)])],
    "audit": [IndexModel([("at", ASCENDING)])],
    "channel_state": [
        IndexModel([("key", ASCENDING)], unique=True),
        # short-lived state (email auto-reply caps) carries `expires_at`; the rest has none and stays
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
    ],
    "forms": [IndexModel([("name", ASCENDING)], unique=True)],
    "templates": [
        IndexModel([("event", ASCENDING), ("channel", ASCENDING), ("locale", ASCENDING)], unique=True)
    ],
    "leases": [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=3600)],
    # The relay looks an agent up by Telegram user id on every staff message.
    "agents": [
        IndexModel([("name", ASCENDING)], unique=True),
        IndexModel([("telegram_user_id", ASCENDING)], sparse=True),
    ],
    "macros": [IndexModel([("name", ASCENDING)], unique=True)],
    "wechat_nonces": [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    # Console sessions, login throttling and one-time setup links expire by themselves.
    "sessions": [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
        IndexModel([("agent", ASCENDING)]),
    ],
    "login_attempts": [
        IndexModel([("key", ASCENDING), ("at", ASCENDING)]),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
    ],
    "setup_links": [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    # Customers' matched queries, for "what would this threshold have done": 30 days are plenty.
    "match_log": [IndexModel([("at", ASCENDING)], expireAfterSeconds=30 * 86400)],
    "views": [IndexModel([("owner", ASCENDING)])],
    "webhooks": [IndexModel([("active", ASCENDING)])],
}


async def ensure_indexes(db: Db) -> None:
    """Idempotent: creating an index that exists with the same options is a no-op."""
    for name, models in INDEXES.items():
        await db[name].create_indexes(models)


class Database(Component):
    """The process's database handle: embedded when no `mongodb.uri` is configured."""

    def __init__(self, settings: Settings, *, reuse_running: bool = False) -> None:
        """`reuse_running`: a command-line tool attaches to the embedded database of a running server
        (WiredTiger allows one process per data folder) and starts its own only when none runs."""
        self._settings = settings
        uri = settings.mongodb.uri.get()
        self.embedded: EmbeddedMongo | None = None
        if not uri and reuse_running:
            uri = running_embedded_uri(Path(settings.storage.path) / "db.uri") or ""
        if not uri:
            storage = Path(settings.storage.path)
            self.embedded = EmbeddedMongo(storage / "db", log_path=storage / "log" / "secantus.log")
            uri = self.embedded.uri
        # The driver connects lazily, so every repository can be built before the database is up.
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            uri, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, socketTimeoutMS=20000
        )

    @property
    def db(self) -> Db:
        return self.client[self._settings.mongodb.database]

    async def initialize(self) -> None:
        if self.embedded is not None:
            await self.embedded.initialize()
        try:
            await self.client.admin.command("ping")
        except PyMongoError as exc:
            raise StorageUnavailable(f"cannot reach MongoDB: {exc}") from exc
        await ensure_indexes(self.db)

    async def shutdown(self) -> None:
        await self.client.close()
        if self.embedded is not None:
            await self.embedded.shutdown()

    async def ping(self, limit: float = 2.0) -> bool:
        try:
            await asyncio.wait_for(self.db.command("ping"), limit)
            return True
        except (PyMongoError, TimeoutError):
            return False
