"""`omnigate email parse FILE.eml`: the normalised inbound message as JSON, built by the same
function as IMAP intake (`channels.email.inbound.build_inbound`), so an admin sees why a mail landed
as it did: the visible reply, charset corrections, attachments, and the auto-submitted verdict."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from channels.email.inbound import build_inbound, dedup_key, describe
from channels.email.mime_parse import parse_email
from gateway.config import Settings
from ticket_core.errors import InvalidInput


def add_parser(sub: Any) -> None:
    email = sub.add_parser("email", help="email tools").add_subparsers(dest="email_command", required=True)
    parse = email.add_parser("parse", help="print a mail as the gateway would ingest it (JSON)")
    parse.add_argument("file", type=Path, metavar="FILE.eml")
    parse.add_argument("--mailbox", help="mailbox name (default: the first configured one)")


def parse_file(path: Path, settings: Settings, mailbox: str | None = None) -> dict[str, Any]:
    raw = path.read_bytes()
    boxes = settings.email_mailboxes
    name = mailbox or (boxes[0].name if boxes else "support")
    own = frozenset(b.address.lower() for b in boxes if b.address)
    parsed = parse_email(raw, max_attachment_bytes=settings.storage.max_attachment_bytes)
    inbound = build_inbound(parsed, mailbox=name, key=dedup_key(name, raw), own_addresses=own)
    return describe(parsed, inbound)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        result = parse_file(args.file, settings, args.mailbox)
    except OSError as exc:
        print(f"omnigate: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    except InvalidInput as exc:
        print(f"omnigate: {args.file} is not an email: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    return 0
