"""Outgoing mail over SMTP: multipart text+HTML, threading headers, a signed Reply-To, loop markers.

Every mail carries our Message-ID (kept as the outbox record's `platform_id`, which is how replies and
bounces find it again), In-Reply-To/References pointing at the customer's last mail in the
conversation, and a Reply-To `support+<token>@domain` whose HMAC token names the ticket. Automatic
mail is marked `Auto-Submitted` and `X-Auto-Response-Suppress` so other robots do not answer it, and
all our mail carries `X-Omnigate-Loop` so we recognise it if it comes back. Whether an automatic mail
may go at all is `AutomaticMailGuard`'s decision: a refused one ends dead with "suppressed: ...".

Header injection: every header value from a message (subject, recipient, references) is checked or
flattened here, and the envelope recipient is given explicitly, so nothing a customer writes can add
a header or a recipient.
"""

from __future__ import annotations

import email.utils
import html
import re
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from channels.base import SendResult
from channels.email.auto_detect import OMNIGATE_LOOP_HEADER
from channels.email.auto_guard import AutomaticMailGuard
from channels.email.reply_token import ReplyTokens, reply_address
from channels.email.smtp_connection import SmtpConnection
from channels.settings import EmailMailbox
from ticket_core.errors import InvalidInput, PermanentDeliveryError
from ticket_core.messages import OutboundMessage

LOOP_HEADER = OMNIGATE_LOOP_HEADER
MAX_SUBJECT = 250
MAX_REFERENCES = 10
_ADDRESS = re.compile(r"^[^\s@<>,;:\"()\[\]\\]{1,64}@[^\s@<>,;:\"()\[\]\\]{1,255}$")
_MSG_ID = re.compile(r"^<[^<>\s]{1,250}@[^<>\s]{1,250}>$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")
# Events that answer the customer's own mail (RFC 3834 "auto-replied"); other notices are generated.
REPLY_EVENTS = frozenset({"ticket_created"})


@dataclass(frozen=True)
class ThreadHeaders:
    in_reply_to: str
    references: tuple[str, ...]
    subject: str = ""  # the customer's subject: a dialog reply without one answers "Re: <it>"


def reply_subject(subject: str) -> str:
    return subject if re.match(r"^\s*(re|回复|答复)\s*[:：]", subject, re.IGNORECASE) else f"Re: {subject}"


def articles_html(text: str, articles: Any) -> str | None:
    """Suggested articles as links: the dialog's numbered text, then one link per article."""
    if not isinstance(articles, list) or not articles:
        return None
    body = html.escape(text).replace("\n", "<br>")
    links = [
        f'<li><a href="{html.escape(str(a.get("url") or ""), quote=True)}">'
        f"{html.escape(str(a.get('title') or ''))}</a></li>"
        for a in articles
        if isinstance(a, dict) and a.get("url")
    ]
    if not links:
        return None
    return (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<p>{body}</p><ul>{''.join(links)}</ul></body></html>"
    )


def articles_text(text: str, articles: Any) -> str:
    if not isinstance(articles, list):
        return text
    urls = [f"{a.get('title', '')}: {a['url']}" for a in articles if isinstance(a, dict) and a.get("url")]
    return text + (
        "\n\n" + "\n".join(urls) if urls and not any(a.split(": ")[-1] in text for a in urls) else ""
    )


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def checked_address(value: str) -> str:
    """One plain address or InvalidInput: no display names, lists, comments or line breaks."""
    address = value.strip()
    if not _ADDRESS.match(address) or _CONTROL.search(address):
        raise InvalidInput(f"not a deliverable address: {value!r}", code="invalid_recipient")
    return address


def header_text(value: str, limit: int = MAX_SUBJECT) -> str:
    """Customer-controlled text made safe for a header: one line, no control characters."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def checked_message_ids(values: Any) -> tuple[str, ...]:
    if isinstance(values, str):
        values = values.split()
    if not isinstance(values, list | tuple):
        return ()
    return tuple(v for v in values if isinstance(v, str) and _MSG_ID.match(v))


def build_message(
    mailbox: EmailMailbox,
    message: OutboundMessage,
    *,
    reply_token: str | None = None,
    thread: ThreadHeaders | None = None,
) -> EmailMessage:
    recipient = checked_address(message.recipient)
    sender = checked_address(mailbox.address)
    mail = EmailMessage()
    number = header_text(message.ticket_number or "", 40)
    subject = header_text(message.subject or "")
    if not subject and thread is not None and thread.subject:
        subject = header_text(reply_subject(thread.subject))
    mail["Subject"] = subject or (f"[{number}]" if number else "")
    mail["From"] = sender
    mail["To"] = recipient
    if reply_token:
        mail["Reply-To"] = reply_address(sender, reply_token)
    mail["Date"] = email.utils.formatdate(localtime=False)
    mail["Message-ID"] = f"<og.{uuid.uuid4().hex}@{_domain(sender)}>"
    if thread is None:
        legacy = checked_message_ids(message.meta.get("in_reply_to"))
        thread = ThreadHeaders(legacy[0], legacy) if legacy else None
    if thread is not None:
        mail["In-Reply-To"] = thread.in_reply_to
        mail["References"] = " ".join(thread.references[-MAX_REFERENCES:])
    if message.automatic:
        event = message.meta.get("event")
        mail["Auto-Submitted"] = "auto-replied" if event in REPLY_EVENTS else "auto-generated"
        mail["X-Auto-Response-Suppress"] = "All"
    mail[LOOP_HEADER] = sender
    if number:
        mail["X-Omnigate-Ticket"] = number
    articles = message.meta.get("articles")
    mail.set_content(articles_text(message.text, articles))
    rich = message.html or articles_html(message.text, articles)
    if rich:
        mail.add_alternative(rich, subtype="html")
    return mail


class EmailChannel:
    """The mailbox as a sender. (Intake over IMAP lives in `imap_intake`.)

    Built by the app factory from settings alone; the email installer then `bind`s what needs the
    database (reply tokens, the automatic-mail guard, the conversation lookup for threading)."""

    name = "email"

    def __init__(self, mailbox: EmailMailbox, *, timeout: float | None = None) -> None:
        self.mailbox = mailbox
        self.account = mailbox.name
        self.connection = SmtpConnection(mailbox, timeout=timeout or mailbox.timeout_seconds)
        self._db: AsyncDatabase[dict[str, Any]] | None = None
        self._tokens: ReplyTokens | None = None
        self._guard: AutomaticMailGuard | None = None

    def bind(
        self, *, db: AsyncDatabase[dict[str, Any]], tokens: ReplyTokens, guard: AutomaticMailGuard
    ) -> None:
        self._db = db
        self._tokens = tokens
        self._guard = guard

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        await self.connection.close()

    def register(self, app: web.Application) -> None:
        return None

    async def send(self, message: OutboundMessage) -> SendResult:
        token = None
        if self._tokens is not None and message.ticket_number and self._tokens.secret:
            token = self._tokens.issue(message.ticket_number)
        try:
            thread = await self._thread_headers(message)
            mail = build_message(self.mailbox, message, reply_token=token, thread=thread)
        except (InvalidInput, ValueError) as exc:
            raise PermanentDeliveryError(f"refused to build the mail: {exc}") from exc
        if self._guard is not None:
            refusal = await self._guard.refusal(message)
            if refusal:
                raise PermanentDeliveryError(refusal)
        response = await self.connection.send(mail, sender=self.mailbox.address, recipients=[mail["To"]])
        return SendResult(
            platform_id=str(mail["Message-ID"]),
            detail={
                "to": message.recipient,
                "message_id": str(mail["Message-ID"]),
                "reply_to": str(mail["Reply-To"] or ""),
                "reply_token": token,
                "in_reply_to": str(mail["In-Reply-To"] or "") or None,
                "smtp_response": response,
            },
        )

    async def _thread_headers(self, message: OutboundMessage) -> ThreadHeaders | None:
        """Answer the customer's last mail in the conversation (their client threads on it)."""
        if self._db is None:
            return None
        conversation = str(message.meta.get("conversation_key") or "")
        if not conversation.startswith(f"email:{self.account}:"):
            conversation = f"email:{self.account}:{message.recipient.strip().lower()}"
        last = await self._db.inbox.find_one(
            {"conversation_key": conversation, "channel": "email"},
            {"message.meta.message_id": 1, "message.meta.references": 1, "message.subject": 1},
            sort=[("_id", DESCENDING)],
        )
        stored = (last or {}).get("message") or {}
        meta = stored.get("meta") or {}
        parent = checked_message_ids([meta.get("message_id")])
        if not parent:
            return None
        refs = (*checked_message_ids(meta.get("references") or []), parent[0])
        return ThreadHeaders(parent[0], tuple(dict.fromkeys(refs)), str(stored.get("subject") or ""))
