"""Signed plus-address tokens: `support+<token>@example.com` names the ticket a reply belongs to.

The token carries the ticket number and an HMAC over it, so a sender cannot attach mail to a ticket by
guessing an address. Mail systems may change the case of a local part, so the token is lowercase
base32 and verified case-insensitively.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ticket_core.errors import StorageUnavailable

MAC_CHARS = 20  # 80 bits of hex: forging one takes 2^80 tries
SECRET_KEY = "email:reply_token_secret"


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    upper = text.upper()
    return base64.b32decode(upper + "=" * (-len(upper) % 8))


class ReplyTokens:
    """Issues and verifies tokens with one secret. `secret` may be set after construction (it is
    loaded from the database once it is up)."""

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret

    def _mac(self, number: str) -> str:
        if not self.secret:
            raise StorageUnavailable("the reply-token secret is not loaded yet")
        return hmac.new(self.secret, number.upper().encode("utf-8"), hashlib.sha256).hexdigest()[:MAC_CHARS]

    def issue(self, ticket_number: str) -> str:
        return f"{_b32(ticket_number.upper().encode('utf-8'))}.{self._mac(ticket_number)}"

    def verify(self, token: str) -> str | None:
        """The ticket number a genuine token names; None for anything forged or malformed."""
        encoded, dot, mac = token.strip().lower().partition(".")
        if not dot or not encoded or len(mac) != MAC_CHARS or not self.secret:
            return None
        try:
            number = _unb32(encoded).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        return number if hmac.compare_digest(mac, self._mac(number)) else None


def reply_address(address: str, token: str) -> str:
    local, at, domain = address.partition("@")
    return f"{local.split('+', 1)[0]}+{token}@{domain}" if at else address


async def load_or_create_secret(db: AsyncDatabase[dict[str, object]]) -> bytes:
    """The installation's secret: created once by whichever instance starts first, then shared."""
    doc = await db.channel_state.find_one({"key": SECRET_KEY})
    if doc is None:
        try:
            await db.channel_state.insert_one(
                {"key": SECRET_KEY, "value": secrets.token_hex(32), "created_at": datetime.now(UTC)}
            )
        except DuplicateKeyError:
            pass  # another instance was first: use its secret
        doc = await db.channel_state.find_one({"key": SECRET_KEY})
    if doc is None:
        raise StorageUnavailable("could not store the reply-token secret")
    return bytes.fromhex(str(doc["value"]))
