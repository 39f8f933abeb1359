import base64
import json
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.crypto import WeChatCrypto

from channels.wechat.crypto import WeChatMessageCrypto, decode_aes_key, open_callback
from channels.wechat.errors import (
    AppIdMismatch,
    BadBase64,
    BadPadding,
    DecryptError,
    NonceReused,
    SignatureInvalid,
    XmlRejected,
)
from channels.wechat.signing import CallbackVerifier, InMemoryNonceCache, msg_signature, plain_signature
from channels.wechat.xml_parse import parse_callback_xml, parse_xml_fields
from tests.conftest import CORPORA
from ticket_core.errors import InvalidInput

VECTORS = json.loads((CORPORA / "wechat/crypto_vectors.json").read_text())
CAPTURE = json.loads((CORPORA / "wechat/safe_mode_capture/safe_mode_request.json").read_text())
CAPTURE_TOKEN = "dczmnau31ea9nzcn13i91uedjdal"
CAPTURE_KEY = "pz2Zl2by0oZQ6AUV4EvnbF7A7VRUvrLN1vqnxsUjmTW"
CAPTURE_APP_ID = "wxefe41fdee1714229"


def _vector_crypto() -> WeChatMessageCrypto:
    return WeChatMessageCrypto(VECTORS["encoding_aes_key"], VECTORS["app_id"])


@pytest.mark.parametrize("case", VECTORS["cases"], ids=["short-chinese", "video-xml"])
def test_reference_vectors_are_reproduced_byte_for_byte(case: dict[str, str]) -> None:
    crypto = _vector_crypto()
    prefix = VECTORS["random_prefix"].encode("ascii")
    assert crypto.encrypt(case["plaintext"], random_prefix=prefix) == case["ciphertext"]
    assert crypto.decrypt(case["ciphertext"]).decode("utf-8") == case["plaintext"]


def test_fresh_prefix_by_default() -> None:
    crypto = _vector_crypto()
    assert crypto.encrypt("x") != crypto.encrypt("x")
    assert crypto.decrypt(crypto.encrypt("我是中文")) == "我是中文".encode()


def test_interoperates_with_wechatpy_both_ways() -> None:
    ours = _vector_crypto()
    theirs = WeChatCrypto(VECTORS["token"], VECTORS["encoding_aes_key"], VECTORS["app_id"])
    envelope = theirs.encrypt_message("<xml><Content>hi</Content></xml>", "nonce1", "1409304348")
    encrypt = parse_xml_fields(envelope.encode())["Encrypt"]
    assert ours.decrypt(encrypt) == b"<xml><Content>hi</Content></xml>"

    encrypt = ours.encrypt("<xml><Content>回复</Content></xml>")
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    signature = msg_signature(VECTORS["token"], "1409304348", "n", encrypt)
    assert theirs.decrypt_message(body, signature, "1409304348", "n") == "<xml><Content>回复</Content></xml>"


def test_capture_decrypts_to_its_clear_body() -> None:
    crypto = WeChatMessageCrypto(CAPTURE_KEY, CAPTURE_APP_ID)
    clear = crypto.decrypt(parse_xml_fields(CAPTURE["body"].encode())["Encrypt"])
    assert parse_xml_fields(clear) == parse_xml_fields(CAPTURE["clear_body"].encode())


def test_wrong_app_id() -> None:
    other = WeChatMessageCrypto(VECTORS["encoding_aes_key"], "wx0000000000000000")
    with pytest.raises(AppIdMismatch):
        other.decrypt(VECTORS["cases"][0]["ciphertext"])


@pytest.mark.parametrize("text", ["not base64!!", "QUJD", "", "QUJDRA=="])
def test_bad_base64(text: str) -> None:
    with pytest.raises(BadBase64):
        _vector_crypto().decrypt(text)


def test_bad_padding_and_wrong_key_are_typed() -> None:
    key = decode_aes_key(VECTORS["encoding_aes_key"])
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    bad = encryptor.update(b"\x00" * 63 + b"\x21") + encryptor.finalize()  # 33 > block of 32
    with pytest.raises(BadPadding):
        _vector_crypto().decrypt(base64.b64encode(bad).decode())

    wrong_key = WeChatMessageCrypto(CAPTURE_KEY, VECTORS["app_id"])
    with pytest.raises(DecryptError) as info:
        wrong_key.decrypt(VECTORS["cases"][1]["ciphertext"])
    assert isinstance(info.value, InvalidInput)


def test_declared_length_beyond_plaintext() -> None:
    key = decode_aes_key(VECTORS["encoding_aes_key"])
    clear = b"p" * 16 + struct.pack(">I", 1000) + b"short" + VECTORS["app_id"].encode()
    clear += bytes([32 - len(clear) % 32]) * (32 - len(clear) % 32)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    sealed = encryptor.update(clear) + encryptor.finalize()
    with pytest.raises(DecryptError):
        _vector_crypto().decrypt(base64.b64encode(sealed).decode())


def test_key_validation() -> None:
    with pytest.raises(ValueError):
        WeChatMessageCrypto("short", "wx")
    with pytest.raises(ValueError):
        WeChatMessageCrypto("!" * 43, "wx")
    assert "pz2Zl" not in repr(WeChatMessageCrypto(CAPTURE_KEY, CAPTURE_APP_ID))


# -- open_callback: verification + decryption per mode ---------------------------------------------


def _capture_verifier(now: float) -> CallbackVerifier:
    return CallbackVerifier(
        token=CAPTURE_TOKEN, account="main", nonce_cache=InMemoryNonceCache(now=lambda: now), now=lambda: now
    )


async def test_safe_mode_capture_is_accepted_and_matches_the_clear_body() -> None:
    verifier = _capture_verifier(float(CAPTURE["query"]["timestamp"]))
    crypto = WeChatMessageCrypto(CAPTURE_KEY, CAPTURE_APP_ID)
    clear = await open_callback(
        CAPTURE["body"].encode(), CAPTURE["query"], mode="safe", verifier=verifier, crypto=crypto
    )
    got, want = parse_callback_xml(clear), parse_callback_xml(CAPTURE["clear_body"].encode())
    assert got == want
    assert (got.kind, got.text, got.msg_id) == ("text", "测试", "22994982940022977")
    with pytest.raises(NonceReused):  # the same capture again is a replay
        await open_callback(
            CAPTURE["body"].encode(), CAPTURE["query"], mode="safe", verifier=verifier, crypto=crypto
        )


async def test_safe_mode_refuses_plaintext_bodies_and_bad_msg_signature() -> None:
    verifier = _capture_verifier(float(CAPTURE["query"]["timestamp"]))
    crypto = WeChatMessageCrypto(CAPTURE_KEY, CAPTURE_APP_ID)
    with pytest.raises(XmlRejected):
        await open_callback(
            CAPTURE["clear_body"].encode(), CAPTURE["query"], mode="safe", verifier=verifier, crypto=crypto
        )
    query = dict(CAPTURE["query"], msg_signature="0" * 40)
    with pytest.raises(SignatureInvalid):
        await open_callback(CAPTURE["body"].encode(), query, mode="safe", verifier=verifier, crypto=crypto)


async def test_compatible_mode_trusts_only_the_encrypted_copy() -> None:
    crypto = WeChatMessageCrypto(CAPTURE_KEY, CAPTURE_APP_ID)
    ts, nonce = "1700000000", "99"
    encrypt = crypto.encrypt(CAPTURE["clear_body"])
    # The clear copy beside <Encrypt> is unsigned; an attacker could have edited it.
    forged_clear = CAPTURE["clear_body"].replace("测试", "forged").replace("</xml>", "")
    body = f"{forged_clear}<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    query = {
        "timestamp": ts,
        "nonce": nonce,
        "signature": plain_signature(CAPTURE_TOKEN, ts, nonce),
        "encrypt_type": "aes",
        "msg_signature": msg_signature(CAPTURE_TOKEN, ts, nonce, encrypt),
    }
    verifier = _capture_verifier(1700000000.0)
    clear = await open_callback(body, query, mode="compatible", verifier=verifier, crypto=crypto)
    assert parse_callback_xml(clear).text == "测试"

    # Without <Encrypt>, compatible mode falls back to the plaintext signature.
    query2 = {"timestamp": ts, "nonce": "100", "signature": plain_signature(CAPTURE_TOKEN, ts, "100")}
    clear_only = CAPTURE["clear_body"].encode()
    assert await open_callback(clear_only, query2, mode="compatible", verifier=verifier, crypto=crypto) == (
        clear_only
    )


async def test_plaintext_mode() -> None:
    ts, nonce = "1700000000", "7"
    query = {"timestamp": ts, "nonce": nonce, "signature": plain_signature(CAPTURE_TOKEN, ts, nonce)}
    body = CAPTURE["clear_body"].encode()
    verifier = _capture_verifier(1700000000.0)
    assert await open_callback(body, query, mode="plaintext", verifier=verifier, crypto=None) == body
