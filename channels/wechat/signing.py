"""Callback authentication: signatures, the timestamp window and the nonce replay cache.

Plaintext mode's `signature` covers only token, timestamp and nonce, never the body, so a captured
request stays valid forever unless the timestamp is bounded and each nonce is accepted once. Safe
mode's `msg_signature` also covers the ciphertext.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from channels.wechat.errors import NonceReused, SignatureInvalid, StaleTimestamp

#: WeChat retries after 5 s, three times; five minutes leaves room for clock skew.
DEFAULT_WINDOW_SECONDS = 300.0


def sha1_signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the lexicographically sorted parts, concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def plain_signature(token: str, timestamp: str, nonce: str) -> str:
    return sha1_signature(token, timestamp, nonce)


def msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return sha1_signature(token, timestamp, nonce, encrypt)


def _require_equal(expected: str, given: str, what: str) -> None:
    # compare_digest on ASCII bytes: a str with non-ASCII would raise TypeError instead of refusing.
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace")):
        raise SignatureInvalid(f"{what} does not match")


def verify_signature(token: str, timestamp: str, nonce: str, signature: str) -> None:
    """Plaintext-mode check (also used for the GET `echostr` verification)."""
    _require_equal(plain_signature(token, timestamp, nonce), signature, "signature")


def verify_msg_signature(token: str, timestamp: str, nonce: str, encrypt: str, signature: str) -> None:
    """Safe/compatible-mode check over the ciphertext."""
    _require_equal(msg_signature(token, timestamp, nonce, encrypt), signature, "msg_signature")


def check_timestamp(
    timestamp: str, *, now: Callable[[], float], window: float = DEFAULT_WINDOW_SECONDS
) -> int:
    """Return the timestamp as an int if it is within `window` seconds of `now()` (either side)."""
    try:
        ts = int(timestamp)
    except ValueError:
        raise StaleTimestamp("timestamp is not an integer") from None
    if abs(now() - ts) > window:
        raise StaleTimestamp("timestamp outside the accepted window")
    return ts


class NonceCache(Protocol):
    """Remembers nonces for a while. The production implementation is a MongoDB TTL collection
    with a unique index on the key, shared by every gateway process."""

    async def add_if_absent(self, key: str, *, ttl_seconds: float) -> bool:
        """Store `key` for `ttl_seconds`; True if it was new, False if already present."""
        ...

    async def forget(self, key: str) -> None:
        """Drop `key` (best effort): the request it came with was not stored after all."""
        ...


class InMemoryNonceCache:
    """Single-process NonceCache for unit tests."""

    def __init__(self, *, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._expires: dict[str, float] = {}

    async def add_if_absent(self, key: str, *, ttl_seconds: float) -> bool:
        t = self._now()
        self._expires = {k: exp for k, exp in self._expires.items() if exp > t}
        if key in self._expires:
            return False
        self._expires[key] = t + ttl_seconds
        return True

    async def forget(self, key: str) -> None:
        self._expires.pop(key, None)


class CallbackVerifier:
    """Everything a callback must pass before its body is looked at, in the order that matters:
    signature first (stateless, so forged requests cannot fill the nonce cache), then the
    timestamp window, then the nonce (the only step with a side effect)."""

    def __init__(
        self,
        *,
        token: str,
        account: str,
        nonce_cache: NonceCache,
        now: Callable[[], float] = time.time,
        window: float = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        self._token = token
        self._account = account
        self._nonces = nonce_cache
        self._now = now
        self._window = window

    def __repr__(self) -> str:  # the token is a secret
        return f"CallbackVerifier(account={self._account!r})"

    def check_signature(self, query: Mapping[str, str], *, encrypt: str | None = None) -> None:
        """Stateless part only. With `encrypt`, checks `msg_signature` (safe/compatible mode)."""
        timestamp, nonce = _get(query, "timestamp"), _get(query, "nonce")
        if encrypt is None:
            verify_signature(self._token, timestamp, nonce, _get(query, "signature"))
        else:
            verify_msg_signature(self._token, timestamp, nonce, encrypt, _get(query, "msg_signature"))

    def check(self, query: Mapping[str, str], *, encrypt: str | None = None) -> str:
        """Signature and timestamp window (no side effect); returns the nonce key for `remember`."""
        self.check_signature(query, encrypt=encrypt)
        check_timestamp(_get(query, "timestamp"), now=self._now, window=self._window)
        return self.nonce_key(query)

    def nonce_key(self, query: Mapping[str, str]) -> str:
        """The key a request's nonce is remembered by (no check)."""
        return f"wechat:{self._account}:{int(_get(query, 'timestamp'))}:{_get(query, 'nonce')}"

    async def remember(self, nonce_key: str) -> None:
        """Record the nonce; NonceReused when it was seen. It must outlive the window on both sides,
        or a replay just inside it would pass."""
        if not await self._nonces.add_if_absent(nonce_key, ttl_seconds=2 * self._window + 60):
            raise NonceReused("nonce already used")

    async def forget(self, nonce_key: str) -> None:
        """Undo `remember` for a request that could not be stored, so its retry is taken."""
        await self._nonces.forget(nonce_key)

    async def verify(self, query: Mapping[str, str], *, encrypt: str | None = None) -> None:
        """Raise SignatureInvalid, StaleTimestamp or NonceReused; return normally if accepted."""
        await self.remember(self.check(query, encrypt=encrypt))

    async def verify_echo(self, query: Mapping[str, str]) -> str:
        """GET URL verification (always plaintext-signed, in every mode): the `echostr` to answer."""
        await self.verify(query)
        return _get(query, "echostr")


def _get(query: Mapping[str, str], name: str) -> str:
    value = query.get(name)
    if not value:
        raise SignatureInvalid(f"missing query parameter {name!r}")
    return value
