"""One mail as the bus sees it: the dedup key and the `InboundMessage`, built the same way for IMAP
intake and for `omnigate email parse` (so the tool shows exactly why a mail landed as it did)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from channels.email.mime_parse import ParsedEmail
from ticket_core.messages import AttachmentRef, CustomerIdentity, InboundMessage

# Kept on the inbox record beside the visible reply; the raw mail holds the rest.
MAX_FULL_TEXT = 64 * 1024
_MESSAGE_ID = re.compile(rb"<[^<>\s]{1,900}>")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class MailPosition:
    """Where intake found the mail: (mailbox, UIDVALIDITY, UID) is the exactly-once key on the server."""

    folder: str
    uidvalidity: int
    uid: int


@dataclass(frozen=True)
class ThreadMatch:
    """The ticket a reply belongs to, and which route found it (token, references, subject)."""

    ticket_number: str
    route: str


def dedup_key(mailbox: str, raw: bytes) -> str:
    """Stable across a UIDVALIDITY change, so re-reading a renumbered folder adds nothing: the
    Message-ID with a hash of the body when the mail has one (a copy delivered twice, with other
    Received or Delivered-To lines, is one message; a different mail reusing a Message-ID, as broken
    senders do, is not lost), else a hash of all the bytes (a server keeps them, line endings aside)."""
    parts = _HEADER_END.split(raw, maxsplit=1)
    head, body = parts[0], parts[1] if len(parts) > 1 else b""
    value = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n\r\n").get("Message-ID")
    found = _MESSAGE_ID.search(str(value).encode("utf-8", "surrogateescape")) if value else None
    if found:
        body_hash = hashlib.sha256(body.replace(b"\r\n", b"\n").rstrip()).hexdigest()[:12]
        return f"email:{mailbox}:mid:{hashlib.sha256(found.group(0)).hexdigest()[:32]}:{body_hash}"
    # Line endings normalised: servers store bare-LF mail with CRLF.
    normalised = raw.replace(b"\r\n", b"\n").rstrip()
    return f"email:{mailbox}:sha:{hashlib.sha256(normalised).hexdigest()[:40]}"


def guess_locale(*texts: str) -> str:
    return "zh-CN" if any(_CJK.search(t or "") for t in texts) else "en"


def message_kind(parsed: ParsedEmail, own_addresses: frozenset[str]) -> str:
    """`mail_event` for what is no conversation (bounces, our own mail coming back); else `text`."""
    verdict = parsed.auto_submitted
    if verdict.bounce:
        return "mail_event"
    if (parsed.from_addr or "").lower() in own_addresses and any(
        "x-omnigate-loop" in reason for reason in verdict.reasons
    ):
        return "mail_event"
    return "text"


def build_inbound(
    parsed: ParsedEmail,
    *,
    mailbox: str,
    key: str,
    own_addresses: frozenset[str] = frozenset(),
    position: MailPosition | None = None,
    raw_ref: str | None = None,
    attachments: tuple[AttachmentRef, ...] = (),
    thread: ThreadMatch | None = None,
) -> InboundMessage:
    sender = (parsed.from_addr or "").strip().lower()
    verdict = parsed.auto_submitted
    kind = message_kind(parsed, own_addresses)
    meta: dict[str, Any] = {
        # Notifications answer the sender, never a Reply-To a stranger could point at a third party.
        "reply_to": sender,
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": list(parsed.references),
        "to": list(parsed.to),
        "cc": list(parsed.cc),
        "automatic": verdict.automatic,
        "automatic_reasons": list(verdict.reasons),
        "bounce": verdict.bounce,
        "bounced_message_id": verdict.bounced_message_id,
        "charset_notes": list(parsed.charset_notes),
        "defects": list(parsed.defects),
        "attachments_skipped": [
            {"filename": a.filename, "size": a.size, "reason": a.skipped}
            for a in parsed.attachments
            if a.skipped
        ],
    }
    if parsed.full_text.strip() != parsed.text.strip():
        meta["full_text"] = parsed.full_text[:MAX_FULL_TEXT]
    if position is not None:
        meta["imap"] = {"folder": position.folder, "uidvalidity": position.uidvalidity, "uid": position.uid}
    if thread is not None:
        meta["ticket_number"] = thread.ticket_number
        meta["thread_route"] = thread.route
    fields = {"event": "bounce" if verdict.bounce else "own_mail_returned"} if kind == "mail_event" else {}
    return InboundMessage(
        channel="email",
        account=mailbox,
        external_id=parsed.message_id or key,
        dedup_key=key,
        identity=CustomerIdentity(
            channel="email",
            account=mailbox,
            external_id=sender or "unknown",
            display_name=parsed.from_name,
            email=sender or None,
        ),
        conversation_key=f"email:{mailbox}:{sender or 'unknown'}",
        kind=kind,
        text=parsed.text or parsed.full_text,
        subject=parsed.subject or None,
        attachments=attachments,
        fields=fields,
        locale=guess_locale(parsed.subject, parsed.text),
        raw_ref=raw_ref,
        meta=meta,
    )


def describe(parsed: ParsedEmail, inbound: InboundMessage) -> dict[str, Any]:
    """What `omnigate email parse` prints: the inbound message and the parse details behind it."""
    verdict = parsed.auto_submitted
    return {
        "subject": parsed.subject,
        "from": parsed.from_addr,
        "from_name": parsed.from_name,
        "to": list(parsed.to),
        "cc": list(parsed.cc),
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": list(parsed.references),
        "plus_tokens": list(parsed.plus_tokens),
        "date": parsed.date.isoformat() if parsed.date else None,
        "text": parsed.text,
        "full_text": parsed.full_text,
        "charset_notes": list(parsed.charset_notes),
        "defects": list(parsed.defects),
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "declared_type": a.declared_type,
                "size": a.size,
                "inline": a.inline,
                "content_id": a.content_id,
                "skipped": a.skipped,
            }
            for a in parsed.attachments
        ],
        "auto_submitted": {
            "automatic": verdict.automatic,
            "why": list(verdict.reasons),
            "bounce": verdict.bounce,
            "bounced_message_id": verdict.bounced_message_id,
            "dsn_action": verdict.dsn_action,
            "header": parsed.auto_submitted_raw,
        },
        "inbound": {
            "kind": inbound.kind,
            "dedup_key": inbound.dedup_key,
            "conversation_key": inbound.conversation_key,
            "locale": inbound.locale,
            "meta": {k: v for k, v in inbound.meta.items() if k != "full_text"},
        },
    }
