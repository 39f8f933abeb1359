"""A throwaway dovecot IMAP server on loopback, one per test session (DESIGN.md section 5).

It runs as root from its own config in a temporary folder, with no system service: passwd-file users
(added while it runs: dovecot re-reads the file when it changes) and maildirs owned by `mail`, because
dovecot's userdb may not hand out uid 0. Tests give each mailbox a fresh address so they never share
mail.
"""

from __future__ import annotations

import asyncio
import grp
import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aioimaplib
import pytest
from aiosmtpd.controller import Controller

from channels.settings import EmailMailbox
from gateway.database import free_port
from tests.conftest import require
from ticket_core.secret import Secret

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
info_log_path = {folder}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 8
mail_location = maildir:{folder}/mail/%u
mailbox_idle_check_interval = 1 secs
default_login_user = mail
default_internal_user = mail
default_internal_group = mail
mail_max_userip_connections = 200
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/users
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={folder}/mail/%u
}}
"""


def available() -> bool:
    return Path(DOVECOT).is_file() and os.geteuid() == 0


class DovecotServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.host = "127.0.0.1"
        self.conf = folder / "dovecot.conf"

    def start(self) -> None:
        for sub in ("run", "state", "mail"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        (self.folder / "users").write_text("", encoding="utf-8")
        # dovecot's auth and mail processes run as `mail` and must reach the config and the users
        os.chmod(self.folder, 0o755)
        os.chmod(self.folder / "users", 0o644)
        uid, gid = pwd.getpwnam("mail").pw_uid, grp.getgrnam("mail").gr_gid
        os.chown(self.folder / "mail", uid, gid)
        self.conf.write_text(_CONFIG.format(folder=self.folder, port=self.port), encoding="utf-8")
        subprocess.run(
            [DOVECOT, "-c", str(self.conf)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen on {self.port}; see {self.folder / 'dovecot.log'}")

    def stop(self) -> None:
        subprocess.run(
            [DOVECOT, "-c", str(self.conf), "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def add_user(self, local: str = "support", domain: str = "example.com", password: str = "secret") -> str:
        """A fresh mailbox; returns its address (also the login name)."""
        address = f"{local}-{uuid.uuid4().hex[:8]}@{domain}"
        with open(self.folder / "users", "a", encoding="utf-8") as users:
            users.write(f"{address}:{{PLAIN}}{password}\n")
        return address


# -- fixtures and helpers for the email tests ---------------------------------------------------------


PASSWORD = "secret"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    require(available(), "dovecot is not installed or we are not root (make test installs it as root)")
    folder = Path(tempfile.mkdtemp(prefix="omnigate-dovecot-"))
    server = DovecotServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def mailbox(
    server: DovecotServer, address: str, *, name: str = "support", smtp_port: int = 1, **overrides: Any
) -> EmailMailbox:
    """A mailbox on the test dovecot, fast timings, plain connections (loopback only)."""
    values: dict[str, Any] = {
        "name": name,
        "address": address,
        "imap_host": server.host,
        "imap_port": server.port,
        "imap_security": "none",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_security": "none",
        "username": address,
        "password": Secret(PASSWORD),
        "idle_seconds": 5.0,
        "poll_seconds": 0.5,
        "timeout_seconds": 10.0,
        "lease_seconds": 3.0,
        "reconnect_max_seconds": 1.0,
        "smtp_idle_seconds": 5.0,
    }
    values.update(overrides)
    return EmailMailbox(**values)


@asynccontextmanager
async def imap_client(server: DovecotServer, address: str) -> AsyncIterator[aioimaplib.IMAP4]:
    for _attempt in range(5):
        client = aioimaplib.IMAP4(host=server.host, port=server.port, timeout=20)
        await client.wait_hello_from_server()
        response = await client.login(address, PASSWORD)
        if response.result == "OK":
            break
        # dovecot re-reads the users file when another test adds a user: a login may fail meanwhile
        await asyncio.sleep(0.3)
    assert response.result == "OK", response
    try:
        yield client
    finally:
        await client.logout()


async def append(
    server: DovecotServer, address: str, messages: list[bytes], folder: str = "INBOX"
) -> list[int]:
    """APPEND raw mails; returns their UIDs (APPENDUID)."""
    uids: list[int] = []
    async with imap_client(server, address) as client:
        for raw in messages:
            response = await client.append(raw, mailbox=folder)
            assert response.result == "OK", response
            found = re.search(rb"APPENDUID \d+ (\d+)", b" ".join(bytes(x) for x in response.lines))
            uids.append(int(found.group(1)) if found else 0)
    return uids


def mail(
    subject: str,
    body: str,
    *,
    sender: str = "customer@example.net",
    to: str = "support@example.com",
    message_id: str | None = "auto",
    headers: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    if message_id == "auto":
        msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.net>"
    elif message_id:
        msg["Message-ID"] = message_id
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)


def customer_mail(subject: str, to: str, body: str = "打印机卡纸了，怎么办？") -> bytes:
    """A mail from a customer of its own (the sender is made from the subject): load for intake."""
    return mail(subject, body, sender=f"{re.sub(r'[^A-Za-z0-9-]+', '-', subject)}@example.net", to=to)


class MailRelay:
    """An SMTP server (aiosmtpd) that delivers into the recipients' dovecot mailboxes, like a local MTA,
    and keeps what it got. `refuse` maps a recipient to a reply code for the RCPT command."""

    def __init__(self, server: DovecotServer) -> None:
        self.server = server
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: dict[str, list[str]] = {}  # address -> answers to give, in order, then accept

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        answers = self.refuse.get(address.lower())
        if answers:
            return answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = bytes(envelope.content)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(content, policy=policy.default))  # type: ignore[arg-type]
        for rcpt in envelope.rcpt_tos:
            local, _, domain = rcpt.partition("@")
            await asyncio.to_thread(self._deliver, f"{local.split('+', 1)[0]}@{domain}", content)
        return "250 OK"

    def _deliver(self, address: str, content: bytes) -> None:
        with open(self.server.folder / "users", encoding="utf-8") as users:
            if not any(line.startswith(address + ":") for line in users):
                return  # not one of ours: the mail leaves the test world
        client = imaplib.IMAP4(self.server.host, self.server.port)
        try:
            client.login(address, PASSWORD)
            client.append("INBOX", "", imaplib.Time2Internaldate(time.time()), content)
        finally:
            client.logout()


@asynccontextmanager
async def mail_relay(server: DovecotServer) -> AsyncIterator[tuple[int, MailRelay]]:
    relay = MailRelay(server)
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        yield port, relay
    finally:
        await asyncio.to_thread(controller.stop)
