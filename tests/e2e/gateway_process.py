"""Gateway processes for multi-process tests and benchmarks: one shared database server, gateways as
`python -m gateway serve` subprocesses with every channel configured, and the requests each platform
sends (web-form posts, signed WeChat callbacks, Telegram webhook updates)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gateway.database import free_port
from tests.fakes.wechat_api import WeChatCallbackSigner

ROOT = Path(__file__).resolve().parents[2]
WECHAT_TOKEN = "multi-callback-token"
WECHAT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WECHAT_APP_ID = "wxfake0000000001"
WECHAT_APP_SECRET = "fake-app-secret"  # FakeWeChatApi's default
TELEGRAM_SECRET = "multi-webhook-secret"
DEAD_URL = "http://127.0.0.1:9"  # nothing listens: sends fail fast and stay in the outbox


@dataclass
class GatewayConfig:
    """What one gateway process is configured with; rendered as its TOML file."""

    uri: str = ""  # empty: the process's own embedded database under storage/var
    database: str = "omnigate"
    dispatch: bool = True
    form_wait_seconds: float = 0.0
    seed_demo: bool = False
    wechat_api: str = DEAD_URL
    wechat_reply_budget: float = 0.0
    telegram_api: str | None = DEAD_URL + "/bot"  # None: no webhook bot
    telegram_token: str = "123456:TEST-TOKEN"
    poll_api: str | None = None  # a second bot in polling mode (its own fake Bot API)
    poll_token: str = "654321:POLL-TOKEN"
    poll_lease_seconds: float = 6.0
    lease_seconds: float = 30.0
    sweep_interval_seconds: float = 10.0
    outbox_retry_base: float = 0.2
    outbox_retry_max: float = 2.0
    outbox_poll: float = 0.5
    outbox_max_attempts: int = 8
    outbox_lease_seconds: float = 60.0
    extra: str = ""

    def toml(self, storage: Path, port: int) -> str:
        lines = [
            "[server]",
            f"port = {port}",
            f"form_wait_seconds = {self.form_wait_seconds}",
            "[storage]",
            f'path = "{storage}"',
            "[bus]",
            f"dispatch = {str(self.dispatch).lower()}",
            f"lease_seconds = {self.lease_seconds}",
            f"sweep_interval_seconds = {self.sweep_interval_seconds}",
            "[outbox]",
            f"retry_base_seconds = {self.outbox_retry_base}",
            f"retry_max_seconds = {self.outbox_retry_max}",
            f"poll_interval_seconds = {self.outbox_poll}",
            f"max_attempts = {self.outbox_max_attempts}",
            f"lease_seconds = {self.outbox_lease_seconds}",
        ]
        if self.uri:
            lines += ["[mongodb]", f'uri = "{self.uri}"', f'database = "{self.database}"']
        lines += [
            "[[wechat.accounts]]",
            'name = "main"',
            f'app_id = "{WECHAT_APP_ID}"',
            f'app_secret = "{WECHAT_APP_SECRET}"',
            f'token = "{WECHAT_TOKEN}"',
            f'encoding_aes_key = "{WECHAT_AES_KEY}"',
            'mode = "safe"',
            f'api_base_url = "{self.wechat_api}"',
            f"reply_budget_seconds = {self.wechat_reply_budget}",
        ]
        if self.telegram_api is not None:
            lines += [
                "[[telegram.bots]]",
                'name = "support"',
                f'token = "{self.telegram_token}"',
                f'secret_token = "{TELEGRAM_SECRET}"',
                'mode = "webhook"',
                f'base_url = "{self.telegram_api}"',
            ]
        if self.poll_api is not None:
            lines += [
                "[[telegram.bots]]",
                'name = "poller"',
                f'token = "{self.poll_token}"',
                'mode = "polling"',
                f'base_url = "{self.poll_api}"',
                "poll_timeout = 1",
                f"poll_lease_seconds = {self.poll_lease_seconds}",
            ]
        return "\n".join(lines) + "\n" + self.extra


@dataclass
class GatewayProcess:
    """`python -m gateway --config FILE serve` on a free loopback port."""

    folder: Path
    config: GatewayConfig
    name: str = "gw"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_level: str = "WARNING"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / f"{self.name}.toml"
        config.write_text(self.config.toml(self.folder / f"{self.name}-var", self.port), encoding="utf-8")
        env = {
            **os.environ,
            "OMNIGATE_LOG_LEVEL": self.log_level,
            "OMNIGATE_DEMO__SEED": "true" if self.config.seed_demo else "false",
        }
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(config), "serve"],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait_healthy(self, limit: float = 90.0) -> None:
        deadline = time.monotonic() + limit
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
                try:
                    async with http.get(f"{self.url}/healthz") as res:
                        if res.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become healthy: {self.log_tail()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def rss_bytes(self) -> int:
        """Resident set size of the gateway process itself (its database server not included)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


def mailbox_toml(host: str, port: int, address: str, password: str, smtp_port: int, lease: float) -> str:
    """An `[[email.mailboxes]]` entry named "support" (leader lease `imap:support`) for
    `GatewayConfig.extra`: a plain-IMAP mailbox on loopback, fast timings."""
    return (
        f'[[email.mailboxes]]\nname = "support"\naddress = "{address}"\nusername = "{address}"\n'
        f'password = "{password}"\nimap_host = "{host}"\nimap_port = {port}\nimap_security = "none"\n'
        f'smtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\nsmtp_security = "none"\n'
        f"idle_seconds = 5.0\npoll_seconds = 0.5\nlease_seconds = {lease}\nreconnect_max_seconds = 1.0\n"
    )


# -- what the platforms send -------------------------------------------------------------------------

_seq = itertools.count(1)


def _json(body: Any) -> bytes:
    """Encoded once when the request is built, so a load generator spends nothing on it per send."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def wechat_signer() -> WeChatCallbackSigner:
    return WeChatCallbackSigner(
        token=WECHAT_TOKEN, mode="safe", encoding_aes_key=WECHAT_AES_KEY, app_id=WECHAT_APP_ID
    )


@dataclass(frozen=True)
class Request:
    """One prepared platform request: what it is (its dedup key) and how to send it."""

    channel: str
    dedup_key: str
    path: str
    params: dict[str, str] | None = None
    json: Any = None
    data: bytes | None = None
    headers: dict[str, str] | None = None


def webform_request(key: str, *, email: str | None = None, text: str = "打印机卡纸了") -> Request:
    body = {
        "subject": f"form {key}",
        "description": f"{text} ({key})",
        "email": email or f"{key}@example.com",
        "name": "王小明",
    }
    return Request(
        "webform",
        f"webform:support:{key}",
        "/forms/support",
        data=_json(body),
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
    )


def wechat_request(signer: WeChatCallbackSigner, openid: str, text: str, msg_id: int) -> Request:
    query, body = signer.sign(signer.text(openid, text, msg_id=msg_id))
    return Request("wechat", f"wechat:main:{msg_id}", "/channels/wechat/main", params=query, data=body)


def telegram_update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Customer", "language_code": "en"},
            "chat": {"id": chat_id, "type": "private", "first_name": "Customer"},
            "date": int(time.time()),
            "text": text,
        },
    }


def telegram_request(update_id: int, chat_id: int, text: str, bot: str = "support") -> Request:
    return Request(
        "telegram",
        f"telegram:{bot}:{update_id}",
        f"/channels/telegram/{bot}",
        data=_json(telegram_update(update_id, chat_id, text)),
        headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"},
    )


async def send(http: aiohttp.ClientSession, base: str, request: Request) -> int:
    """POST one request; its HTTP status, or 0 when the connection failed."""
    try:
        async with http.post(
            base + request.path,
            params=request.params,
            json=request.json,
            data=request.data,
            headers=request.headers,
        ) as res:
            await res.read()
            return res.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


def next_id() -> int:
    return next(_seq)


# -- what must hold after a run ------------------------------------------------------------------------


async def wait_all_handled(db: Any, expected: int, limit: float) -> int:
    """Wait until `expected` inbox records are finished (done or ignored); returns how many are."""
    deadline = time.monotonic() + limit
    finished = 0
    while time.monotonic() < deadline:
        finished = await db.inbox.count_documents({"state": {"$in": ["done", "ignored"]}})
        if finished >= expected:
            return finished
        await asyncio.sleep(0.5)
    return finished


async def duplicate_report(db: Any, *, crashed: bool = False) -> dict[str, Any]:
    """Everything that would show a message handled twice (empty lists: none).

    - an inbox record not finished, or (without a crash) handled more than once (`attempts`);
    - a web-form record without exactly one ticket, two tickets with one number or one source;
    - a dialog conversation whose turn count differs from its finished inbox records;
    - an outbox idempotency key stored twice.
    """
    problems: dict[str, Any] = {}
    unfinished = await db.inbox.count_documents({"state": {"$nin": ["done", "ignored"]}})
    problems["unfinished_inbox"] = unfinished
    if not crashed:
        # a second run that no failure explains (a failed handler is retried and records last_error)
        rerun = await db.inbox.count_documents(
            {"state": "done", "attempts": {"$gt": 1}, "last_error": {"$exists": False}}
        )
        problems["inbox_handled_more_than_once"] = rerun
    tickets = [t async for t in db.tickets.find({}, {"number": 1, "source_key": 1, "conversation_key": 1})]
    numbers = [t["number"] for t in tickets]
    problems["duplicate_ticket_numbers"] = len(numbers) - len(set(numbers))
    sources = [t.get("source_key") for t in tickets if t.get("source_key")]
    problems["duplicate_ticket_sources"] = len(sources) - len(set(sources))
    per_form: dict[str, int] = {}
    for t in tickets:
        if str(t.get("conversation_key", "")).startswith("webform:"):
            per_form[t["conversation_key"]] = per_form.get(t["conversation_key"], 0) + 1
    forms = [
        r["conversation_key"] async for r in db.inbox.find({"channel": "webform"}, {"conversation_key": 1})
    ]
    problems["webform_records_without_one_ticket"] = [k for k in forms if per_form.get(k) != 1][:20]
    records: dict[str, int] = {}
    async for r in db.inbox.find(
        {"state": "done", "channel": {"$in": ["wechat", "telegram"]}}, {"conversation_key": 1}
    ):
        records[r["conversation_key"]] = records.get(r["conversation_key"], 0) + 1
    turns = {c["key"]: c.get("turns", 0) async for c in db.conversations.find({}, {"key": 1, "turns": 1})}
    problems["conversations_with_wrong_turn_count"] = [
        (k, n, turns.get(k)) for k, n in records.items() if k in turns and turns[k] != n
    ][:20]
    keys = await db.outbox.distinct("idempotency_key")
    problems["duplicate_outbox_keys"] = await db.outbox.count_documents({}) - len(keys)
    return problems


def clean(problems: dict[str, Any]) -> bool:
    return not any(problems.values())


async def lease_holder(db: Any, name: str) -> str | None:
    """The owner (`host:pid:...`) of a live leader lease, or None."""
    from datetime import UTC, datetime

    doc = await db.leases.find_one({"_id": name})
    if doc is None:
        return None
    expires = doc["expires_at"]
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return str(doc["owner"]) if expires > datetime.now(UTC) else None


def owner_pid(owner: str | None) -> int | None:
    if not owner:
        return None
    parts = owner.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
