"""SMTP sending through the outbox against a real aiosmtpd server: 4xx retried, 5xx dead with the
server's answer, one reused connection, header injection refused, our threading and loop headers,
and the automatic-mail cap per recipient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from channels.email.reply_token import ReplyTokens
from channels.email.sender import build_message
from channels.settings import EmailMailbox
from gateway.appkeys import OUTBOX
from tests.helpers import eventually, running_app, smtp_server
from ticket_core.errors import InvalidInput
from ticket_core.messages import OutboundMessage


class Server:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.rcpts: list[list[str]] = []
        self.answers: dict[str, list[str]] = {}
        self.sessions = 0

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        self.sessions += 1
        session.host_name = hostname
        return "250 hello"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: Any
    ) -> Any:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        queue = self.answers.get(address)
        answer = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else "250 OK"
        if not answer.startswith("250"):
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.rcpts.append(list(envelope.rcpt_tos))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 queued"


@asynccontextmanager
async def smtp() -> AsyncIterator[tuple[int, Server]]:
    async with smtp_server(Server()) as (port, handler):
        yield port, handler


def _box(port: int, **extra: Any) -> EmailMailbox:
    values: dict[str, Any] = {
        "name": "support",
        "address": "support@example.com",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_idle_seconds": 30.0,
    }
    values.update(extra)
    return EmailMailbox(**values)


def _msg(recipient: str = "li@example.net", **extra: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "channel": "email",
        "account": "support",
        "recipient": recipient,
        "text": "Hello",
        "subject": "About your request",
        "ticket_number": "T-000042",
        "automatic": False,
    }
    values.update(extra)
    return OutboundMessage(**values)


async def _state(mongo: Any, record_id: str, *states: str) -> Any:
    async def check() -> Any:
        doc = await mongo.outbox.find_one({"_id": __import__("bson").ObjectId(record_id)})
        return doc if doc and doc["state"] in states else None

    return await eventually(check, timeout=15)


async def test_4xx_is_retried_and_5xx_is_dead_with_the_answer(make_settings: Any, mongo: Any) -> None:
    async with smtp() as (port, server):
        server.answers["busy@example.net"] = [
            "451 4.3.0 try again later",
            "451 4.3.0 try again later",
            "250 OK",
        ]
        server.answers["gone@example.net"] = ["550 5.1.1 no such user here"]
        settings = make_settings(email_mailboxes=(_box(port),), seed_demo=False)
        async with running_app(settings) as client:
            outbox = client.app[OUTBOX]
            busy = await outbox.enqueue(_msg("busy@example.net"), idempotency_key="busy")
            gone = await outbox.enqueue(_msg("gone@example.net"), idempotency_key="gone")
            sent = await _state(mongo, busy, "sent")
            dead = await _state(mongo, gone, "dead")
    assert sent["attempts"] == 3 and [h["outcome"] for h in sent["history"]] == ["retry", "retry", "sent"]
    assert "451" in sent["history"][0]["error"]
    assert "550 5.1.1 no such user here" in dead["last_error"] and dead["attempts"] == 1
    assert dead["error_code"] == 550


async def test_one_connection_is_reused_and_headers_thread_and_mark(make_settings: Any, mongo: Any) -> None:
    async with smtp() as (port, server):
        settings = make_settings(email_mailboxes=(_box(port),), seed_demo=False)
        async with running_app(settings) as client:
            outbox = client.app[OUTBOX]
            ids = [
                await outbox.enqueue(
                    _msg(automatic=i == 0, meta={"event": "ticket_created"}), idempotency_key=f"k{i}"
                )
                for i in range(3)
            ]
            records = [await _state(mongo, i, "sent") for i in ids]
    assert server.sessions == 1  # one SMTP session carried all three mails
    first = server.messages[0]
    assert first["Auto-Submitted"] == "auto-replied" and first["X-Auto-Response-Suppress"] == "All"
    assert server.messages[1]["Auto-Submitted"] is None  # an agent's reply is no robot's
    assert all(m["X-Omnigate-Loop"] == "support@example.com" for m in server.messages)
    reply_to = str(first["Reply-To"])
    assert reply_to.startswith("support+") and reply_to.endswith("@example.com")
    assert records[0]["platform_id"] == str(first["Message-ID"])
    assert records[0]["platform_id"].endswith("@example.com>")
    assert records[0]["result"]["reply_token"] == reply_to.split("+", 1)[1].split("@")[0]
    assert first.get_body(("html",)) is None and "Hello" in first.get_content()


async def test_customer_text_cannot_inject_headers_or_recipients(make_settings: Any, mongo: Any) -> None:
    async with smtp() as (port, server):
        settings = make_settings(email_mailboxes=(_box(port),), seed_demo=False)
        async with running_app(settings) as client:
            outbox = client.app[OUTBOX]
            evil_subject = _msg(
                subject="Printer\r\nBcc: victim@evil.test\r\n\r\nspam", ticket_number="T-1\r\nX-A: b"
            )
            ok = await outbox.enqueue(evil_subject, idempotency_key="subject")
            bad_rcpt = await outbox.enqueue(
                _msg("li@example.net\r\nBcc: victim@evil.test"), idempotency_key="rcpt"
            )
            two = await outbox.enqueue(_msg("li@example.net, victim@evil.test"), idempotency_key="two")
            refs = await outbox.enqueue(
                _msg(meta={"in_reply_to": "<a@b>\r\nBcc: victim@evil.test"}), idempotency_key="refs"
            )
            await _state(mongo, ok, "sent")
            await _state(mongo, refs, "sent")
            for record in (bad_rcpt, two):
                dead = await _state(mongo, record, "dead")
                assert "not a deliverable address" in dead["last_error"]
    assert server.rcpts == [["li@example.net"], ["li@example.net"]]
    for sent in server.messages:
        assert sent["Bcc"] is None and sent["X-A"] is None
        assert sent["In-Reply-To"] in (None, "<a@b>")  # the valid id survives, the rest is dropped
    assert server.messages[0]["Subject"] == "Printer Bcc: victim@evil.test spam"


async def test_automatic_mail_is_capped_per_recipient_but_agent_replies_are_not(
    make_settings: Any, mongo: Any
) -> None:
    async with smtp() as (port, server):
        box = _box(port, auto_reply_limit=2, auto_reply_window_seconds=3600)
        settings = make_settings(email_mailboxes=(box,), seed_demo=False)
        async with running_app(settings) as client:
            outbox = client.app[OUTBOX]
            auto = [
                await outbox.enqueue(_msg(text=f"notice {i}", automatic=True), idempotency_key=f"a{i}")
                for i in range(4)
            ]
            agent = [
                await outbox.enqueue(_msg(text=f"agent {i}", automatic=False), idempotency_key=f"h{i}")
                for i in range(3)
            ]
            done = [await _state(mongo, r, "sent", "dead") for r in auto + agent]
    states = [d["state"] for d in done]
    assert states.count("sent") == 2 + 3
    capped = [d for d in done if d["state"] == "dead"]
    assert len(capped) == 2 and all("suppressed: 2 automatic mails" in d["last_error"] for d in capped)
    assert len(server.messages) == 5


def test_tokens_verify_and_forgeries_do_not() -> None:
    tokens = ReplyTokens(b"k" * 32)
    token = tokens.issue("T-000123")
    assert tokens.verify(token) == "T-000123"
    assert tokens.verify(token.upper()) == "T-000123"  # mail systems may change the case
    forged = ReplyTokens(b"x" * 32).issue("T-000123")
    assert tokens.verify(forged) is None
    _, _, mac = token.partition(".")
    other = ReplyTokens(b"k" * 32).issue("T-000124").partition(".")[0]
    assert tokens.verify(f"{other}.{mac}") is None
    assert tokens.verify("garbage") is None and tokens.verify("") is None


@pytest.mark.parametrize(
    "recipient", ["a@b.c\r\nBcc: x@y.z", "a@b.c, x@y.z", "Name <a@b.c>", "no-at-sign", "a@b.c\nBcc: x@y.z"]
)
def test_build_message_refuses_unsafe_recipients(recipient: str) -> None:
    with pytest.raises(InvalidInput):
        build_message(_box(1), _msg(recipient))
