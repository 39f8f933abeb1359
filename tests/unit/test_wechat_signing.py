import json

import pytest

from channels.wechat.errors import NonceReused, ReplayRejected, SignatureInvalid, StaleTimestamp
from channels.wechat.signing import (
    CallbackVerifier,
    InMemoryNonceCache,
    check_timestamp,
    msg_signature,
    plain_signature,
    verify_msg_signature,
    verify_signature,
)
from tests.conftest import CORPORA
from ticket_core.errors import InvalidInput

CAPTURE = json.loads((CORPORA / "wechat/safe_mode_capture/safe_mode_request.json").read_text())
TOKEN = "dczmnau31ea9nzcn13i91uedjdal"  # the capture's own token (SOURCES.md)
CAPTURE_TS = float(CAPTURE["query"]["timestamp"])


def _encrypt_of(body: str) -> str:
    start = body.index("<Encrypt><![CDATA[") + len("<Encrypt><![CDATA[")
    return body[start : body.index("]]></Encrypt>")]


def _verifier(now: float = CAPTURE_TS, cache: InMemoryNonceCache | None = None) -> CallbackVerifier:
    return CallbackVerifier(
        token=TOKEN,
        account="main",
        nonce_cache=cache or InMemoryNonceCache(now=lambda: now),
        now=lambda: now,
    )


def test_signature_is_sha1_of_sorted_parts() -> None:
    # Tencent's documented example order-independence: sorting happens before hashing.
    assert plain_signature("a", "b", "c") == plain_signature("c", "a", "b")
    assert len(plain_signature("token", "1", "2")) == 40


def test_real_capture_signatures_verify() -> None:
    q = CAPTURE["query"]
    verify_signature(TOKEN, q["timestamp"], q["nonce"], q["signature"])
    verify_msg_signature(TOKEN, q["timestamp"], q["nonce"], _encrypt_of(CAPTURE["body"]), q["msg_signature"])
    assert (
        msg_signature(TOKEN, q["timestamp"], q["nonce"], _encrypt_of(CAPTURE["body"])) == q["msg_signature"]
    )


@pytest.mark.parametrize("bad", ["0" * 40, "", "35c35a17908ebfaf8540ee11f7590764a88df32f", "签名"])
def test_wrong_signature_is_refused(bad: str) -> None:
    q = CAPTURE["query"]
    with pytest.raises(SignatureInvalid):
        verify_signature(TOKEN, q["timestamp"], q["nonce"], bad)


def test_msg_signature_covers_the_ciphertext() -> None:
    q = CAPTURE["query"]
    tampered = _encrypt_of(CAPTURE["body"]).replace("q", "Q", 1)
    with pytest.raises(SignatureInvalid):
        verify_msg_signature(TOKEN, q["timestamp"], q["nonce"], tampered, q["msg_signature"])


def test_timestamp_window() -> None:
    assert check_timestamp("1000", now=lambda: 1100.0, window=300) == 1000
    assert check_timestamp("1400", now=lambda: 1100.0, window=300) == 1400
    for ts in ("699", "1501", "abc", ""):
        with pytest.raises(StaleTimestamp):
            check_timestamp(ts, now=lambda: 1000.0, window=300)


async def test_capture_verifies_with_the_clock_set_to_its_timestamp() -> None:
    await _verifier().verify(CAPTURE["query"], encrypt=_encrypt_of(CAPTURE["body"]))
    await _verifier().verify(CAPTURE["query"])  # plaintext signature is present too


async def test_old_timestamp_is_refused_even_when_correctly_signed() -> None:
    import time

    with pytest.raises(StaleTimestamp) as info:
        await _verifier(now=time.time()).verify(CAPTURE["query"])
    assert isinstance(info.value, ReplayRejected) and isinstance(info.value, InvalidInput)


async def test_reused_nonce_is_refused() -> None:
    verifier = _verifier()
    await verifier.verify(CAPTURE["query"])
    with pytest.raises(NonceReused):
        await verifier.verify(CAPTURE["query"])


async def test_forged_requests_do_not_consume_nonces() -> None:
    verifier = _verifier()
    forged = dict(CAPTURE["query"], signature="0" * 40)
    with pytest.raises(SignatureInvalid):
        await verifier.verify(forged)
    await verifier.verify(CAPTURE["query"])  # the real one still passes


async def test_missing_parameters_are_refused() -> None:
    for name in ("signature", "timestamp", "nonce"):
        query = {k: v for k, v in CAPTURE["query"].items() if k != name}
        with pytest.raises(SignatureInvalid):
            await _verifier().verify(query)


async def test_echo_verification_returns_echostr() -> None:
    ts, nonce = "1700000000", "42"
    query = {"timestamp": ts, "nonce": nonce, "signature": plain_signature(TOKEN, ts, nonce), "echostr": "e1"}
    assert await _verifier(now=1700000000.0).verify_echo(query) == "e1"


async def test_nonce_cache_expires() -> None:
    clock = [0.0]
    cache = InMemoryNonceCache(now=lambda: clock[0])
    assert await cache.add_if_absent("k", ttl_seconds=10)
    assert not await cache.add_if_absent("k", ttl_seconds=10)
    clock[0] = 11.0
    assert await cache.add_if_absent("k", ttl_seconds=10)


def test_repr_hides_the_token() -> None:
    assert TOKEN not in repr(_verifier())
