"""Argon2id password hashes. Hashing costs tens of milliseconds of CPU, so it runs off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 takes any length; a cap keeps a megabyte "password" from costing memory
_HASHER = PasswordHasher()


def check_strength(password: str) -> str | None:
    """Why a password is refused, or None. Length is what matters (NIST SP 800-63B), not symbol rules."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    return None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    if not stored or len(password) > MAX_LENGTH:
        # Still spend the time of one verification so a missing account does not answer faster.
        await asyncio.to_thread(_dummy_verify, password[:MAX_LENGTH])
        return False
    try:
        return await asyncio.to_thread(_HASHER.verify, stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_DUMMY = _HASHER.hash("omnigate-timing-equaliser")


def _dummy_verify(password: str) -> None:
    try:
        _HASHER.verify(_DUMMY, password)
    except VerificationError:
        pass
