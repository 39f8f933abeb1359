"""The `Encrypt` payload of safe and compatible modes (Tencent's WXBizMsgCrypt scheme).

Layout before encryption: 16 random bytes | 4-byte big-endian length | message | app id, padded
PKCS#7-style to a multiple of 32 (not AES's 16), then AES-256-CBC with key = EncodingAESKey
decoded and IV = the key's first 16 bytes, then base64.

Written on `cryptography` directly rather than wechatpy's `WeChatCrypto` because we need a fixed
random prefix (to reproduce reference vectors byte for byte) and strict padding checks: wechatpy
trusts the last byte and slices, so a corrupted body yields garbage instead of an error. The
tests cross-check interoperability with wechatpy both ways.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Mapping
from typing import Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from channels.wechat.errors import AppIdMismatch, BadBase64, BadPadding, DecryptError, XmlRejected
from channels.wechat.signing import CallbackVerifier
from channels.wechat.xml_parse import DEFAULT_MAX_BYTES, parse_xml_fields

Mode = Literal["plaintext", "compatible", "safe"]

_BLOCK = 32  # WeChat pads to 32 bytes
_PREFIX = 16


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 43-character EncodingAESKey is base64 of a 32-byte key without its trailing '='."""
    if len(encoding_aes_key) != 43:
        raise ValueError("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("EncodingAESKey is not base64") from exc
    return key


def _pad(data: bytes) -> bytes:
    n = _BLOCK - len(data) % _BLOCK
    return data + bytes([n]) * n


def _unpad(data: bytes) -> bytes:
    if not data:
        raise BadPadding("empty plaintext")
    n = data[-1]
    if not 1 <= n <= _BLOCK or data[-n:] != bytes([n]) * n:
        raise BadPadding("bad padding")
    return data[:-n]


class WeChatMessageCrypto:
    """Encrypts and decrypts one account's payloads. Holds key material: keep it out of logs."""

    def __init__(self, encoding_aes_key: str, app_id: str) -> None:
        self._key = decode_aes_key(encoding_aes_key)
        self.app_id = app_id

    def __repr__(self) -> str:
        return f"WeChatMessageCrypto(app_id={self.app_id!r})"

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def encrypt(self, plaintext: str | bytes, *, random_prefix: bytes | None = None) -> str:
        """Base64 ciphertext. `random_prefix` (16 bytes) is for reproducing vectors only; leave it
        None in production so each envelope gets fresh randomness."""
        prefix = os.urandom(_PREFIX) if random_prefix is None else random_prefix
        if len(prefix) != _PREFIX:
            raise ValueError("random_prefix must be 16 bytes")
        body = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
        clear = prefix + struct.pack(">I", len(body)) + body + self.app_id.encode("utf-8")
        encryptor = self._cipher().encryptor()
        sealed = encryptor.update(_pad(clear)) + encryptor.finalize()
        return base64.b64encode(sealed).decode("ascii")

    def decrypt(self, ciphertext: str) -> bytes:
        """The message bytes (usually UTF-8 XML). Raises a DecryptError subclass, never anything else."""
        try:
            sealed = base64.b64decode(ciphertext, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadBase64("Encrypt is not valid base64") from exc
        if not sealed or len(sealed) % 16:
            raise BadBase64("ciphertext length is not a multiple of the AES block")
        decryptor = self._cipher().decryptor()
        clear = _unpad(decryptor.update(sealed) + decryptor.finalize())
        if len(clear) < _PREFIX + 4:
            raise DecryptError("plaintext too short")
        (length,) = struct.unpack(">I", clear[_PREFIX : _PREFIX + 4])
        body_end = _PREFIX + 4 + length
        if body_end > len(clear):
            raise DecryptError("declared length exceeds plaintext")
        if clear[body_end:] != self.app_id.encode("utf-8"):
            raise AppIdMismatch("payload is addressed to another app id")
        return clear[_PREFIX + 4 : body_end]


def open_encrypted_callback(
    body: bytes,
    query: Mapping[str, str],
    *,
    mode: Mode,
    verifier: CallbackVerifier,
    crypto: WeChatMessageCrypto | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[bytes, str] | None:
    """For a body whose content `msg_signature` covers (safe mode, or compatible mode with `Encrypt`):
    check signature and timestamp, decrypt, and return the clear XML with the nonce key, not yet
    recorded. None for a body only the plain signature covers: use `open_callback`, which records the
    nonce in the nonce cache before anything else.

    Why the nonce cache is not needed here: a forged body cannot carry a valid `msg_signature`, so a
    replay can only repeat a message already stored, which the inbox's dedup key absorbs. The caller
    keeps the nonce key on the inbox record and refuses a duplicate that carries the same one (403):
    one database write per callback instead of two on WeChat's 5-second path.
    """
    if mode == "plaintext":
        return None
    if crypto is None:
        raise ValueError(f"{mode} mode needs the EncodingAESKey")
    encrypt = parse_xml_fields(body, max_bytes=max_bytes).get("Encrypt")
    if encrypt is None and mode == "compatible":
        return None
    if not isinstance(encrypt, str) or not encrypt:
        raise XmlRejected("safe-mode body has no <Encrypt>", fields={"reason": "missing"})
    nonce_key = verifier.check(query, encrypt=encrypt)
    return crypto.decrypt(encrypt), nonce_key


async def open_callback(
    body: bytes,
    query: Mapping[str, str],
    *,
    mode: Mode,
    verifier: CallbackVerifier,
    crypto: WeChatMessageCrypto | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Authenticate a POST callback and return its clear XML body (for `parse_callback_xml`).

    Raises SignatureInvalid / ReplayRejected (answer 403), DecryptError or XmlRejected (answer 400).
    In compatible mode the clear fields beside `Encrypt` are not covered by any signature, so when
    `Encrypt` is present only the decrypted copy is trusted.
    """
    if mode == "plaintext":
        await verifier.verify(query)
        return body
    if crypto is None:
        raise ValueError(f"{mode} mode needs the EncodingAESKey")
    encrypt = parse_xml_fields(body, max_bytes=max_bytes).get("Encrypt")
    if encrypt is None and mode == "compatible":
        await verifier.verify(query)
        return body
    if not isinstance(encrypt, str) or not encrypt:
        raise XmlRejected("safe-mode body has no <Encrypt>", fields={"reason": "missing"})
    await verifier.verify(query, encrypt=encrypt)
    return crypto.decrypt(encrypt)
