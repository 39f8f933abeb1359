"""Outgoing mail over SMTP (aiosmtplib): multipart text+HTML, our Message-ID, loop markers.

Every automatic message is marked `Auto-Submitted: auto-generated` and asks other systems not to
auto-answer it (`X-Auto-Response-Suppress`), so two robots cannot answer each other forever.
"""

from __future__ import annotations

import email.utils
import ssl
from email.message import EmailMessage

import aiosmtplib
from aiohttp import web

from channels.base import SendResult
from channels.settings import EmailMailbox
from ticket_core.errors import ChannelUnavailable, InvalidInput, PermanentDeliveryError
from ticket_core.messages import OutboundMessage

LOOP_HEADER = "X-Omnigate-Loop"


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def build_message(mailbox: EmailMailbox, message: OutboundMessage) -> EmailMessage:
    if any(ch in message.recipient for ch in "\r\n") or "@" not in message.recipient:
        raise InvalidInput(f"not a deliverable address: {message.recipient!r}", code="invalid_recipient")
    mail = EmailMessage()
    subject = " ".join((message.subject or "").split())  # no header injection through a subject
    mail["Subject"] = subject or (f"[{message.ticket_number}]" if message.ticket_number else "")
    mail["From"] = mailbox.address
    mail["To"] = message.recipient
    mail["Date"] = email.utils.formatdate(localtime=False)
    mail["Message-ID"] = email.utils.make_msgid(domain=_domain(mailbox.address))
    in_reply_to = message.meta.get("in_reply_to")
    if isinstance(in_reply_to, str) and in_reply_to and not any(ch in in_reply_to for ch in "\r\n"):
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    if message.automatic:
        mail["Auto-Submitted"] = "auto-generated"
        mail["X-Auto-Response-Suppress"] = "All"
    mail[LOOP_HEADER] = mailbox.address
    if message.ticket_number:
        mail["X-Omnigate-Ticket"] = message.ticket_number
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail


class EmailChannel:
    """The mailbox as a sender. (Intake over IMAP lives beside it.)"""

    name = "email"

    def __init__(self, mailbox: EmailMailbox, *, timeout: float = 30.0) -> None:
        self.mailbox = mailbox
        self.account = mailbox.name
        self._timeout = timeout

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def register(self, app: web.Application) -> None:
        return None

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            mail = build_message(self.mailbox, message)
        except InvalidInput as exc:
            raise PermanentDeliveryError(str(exc)) from exc
        box = self.mailbox
        security = box.smtp_security
        try:
            await aiosmtplib.send(
                mail,
                hostname=box.smtp_host,
                port=box.smtp_port,
                username=box.username or None,
                password=box.password.get() or None,
                use_tls=security == "tls",
                start_tls=True if security == "starttls" else False,
                tls_context=ssl.create_default_context() if security in ("tls", "starttls") else None,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise PermanentDeliveryError(f"recipient refused: {exc.recipients}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            text = f"SMTP {exc.code}: {exc.message}"
            if 500 <= exc.code < 600:
                raise PermanentDeliveryError(text, platform_code=exc.code) from exc
            raise ChannelUnavailable(text, platform_code=exc.code) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ChannelUnavailable(f"SMTP server unreachable: {exc}") from exc
        return SendResult(platform_id=str(mail["Message-ID"]), detail={"to": message.recipient})

