"""Hostile input, generated: every parser answers with its result or a typed InvalidInput, and every
endpoint with a 4xx (or its platform's expected answer), never an unexpected exception or a 5xx."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email.mime_parse import parse_email
from channels.telegram.updates import TelegramUpdate, classify_update
from channels.webform.submission import safe_filename
from channels.wechat.xml_parse import WeChatPayload, parse_callback_xml
from tests.conftest import CORPORA
from tests.helpers import running_app
from ticket_core.errors import InvalidInput

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)
WECHAT_FIELDS = [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Content",
    "MsgId",
    "Event",
    "EventKey",
    "PicUrl",
    "MediaId",
    "Format",
    "Recognition",
    "Location_X",
    "Location_Y",
    "Scale",
    "Label",
    "Url",
    "Title",
    "Status",
    "Ticket",
    "Latitude",
    "Longitude",
]


def _xml(fields: dict[str, str]) -> bytes:
    def cdata(v: str) -> str:
        return "<![CDATA[" + v.replace("]]>", "]]]]><![CDATA[>") + "]]>"

    return ("<xml>" + "".join(f"<{k}>{cdata(v)}</{k}>" for k, v in fields.items()) + "</xml>").encode("utf-8")


@FUZZ
@given(st.binary(max_size=2000))
def test_wechat_xml_parser_on_random_bytes(body: bytes) -> None:
    try:
        assert isinstance(parse_callback_xml(body), WeChatPayload)
    except InvalidInput:
        pass


@FUZZ
@given(st.dictionaries(st.sampled_from(WECHAT_FIELDS), st.text(max_size=80), max_size=12))
def test_wechat_xml_parser_on_random_fields_and_types(fields: dict[str, str]) -> None:
    try:
        payload = parse_callback_xml(_xml(fields))
    except InvalidInput:
        return
    assert payload.dedup_key  # anything accepted can be deduplicated


@FUZZ
@given(st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=5000))
def test_wechat_xml_deep_nesting_and_huge_fields_are_refused_or_parsed(depth: int, size: int) -> None:
    nested = "<a>" * depth + "x" + "</a>" * depth
    body = f"<xml><ToUserName>{nested}</ToUserName><Content>{'字' * size}</Content></xml>".encode()
    try:
        parse_callback_xml(body)
    except InvalidInput:
        pass


@FUZZ
@given(json_values)
def test_telegram_classifier_on_random_json(value: Any) -> None:
    try:
        assert isinstance(classify_update(value, bot="b"), TelegramUpdate)
    except InvalidInput:
        pass


@FUZZ
@given(st.integers(min_value=1, max_value=2**40), json_values, json_values)
def test_telegram_classifier_on_updates_with_garbage_messages(
    update_id: int, message: Any, chat: Any
) -> None:
    update = {"update_id": update_id, "message": {"message_id": 1, "chat": chat, "text": message}}
    result = classify_update(update, bot="b")
    assert result.dedup_key == f"b:{update_id}"


def _eml_corpus() -> list[bytes]:
    return [p.read_bytes() for p in sorted((CORPORA / "email" / "eml").rglob("*.eml"))][:60]


EMLS = _eml_corpus()


@FUZZ
@given(st.data())
def test_mime_parser_on_mutated_real_messages(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from(EMLS)))
    for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
        op = data.draw(st.sampled_from(["flip", "cut", "dup", "boundary", "header"]))
        pos = data.draw(st.integers(min_value=0, max_value=max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[pos] = data.draw(st.integers(min_value=0, max_value=255))
        elif op == "cut":
            del raw[pos : pos + data.draw(st.integers(min_value=1, max_value=200))]
        elif op == "dup":
            raw[pos:pos] = raw[pos : pos + 300]
        elif op == "boundary":
            raw[pos:pos] = b"\r\n--" + data.draw(st.binary(min_size=1, max_size=20)) + b"\r\n"
        else:
            raw[pos:pos] = b"\r\nSubject: =?gb2312?B?" + data.draw(st.binary(max_size=40)) + b"?=\r\n"
    try:
        parsed = parse_email(bytes(raw))
    except InvalidInput:
        return
    assert isinstance(parsed.text, str) and isinstance(parsed.subject, str | None)


@FUZZ
@given(st.text(max_size=300))
def test_attachment_names_cannot_traverse_paths(name: str) -> None:
    clean = safe_filename(name)
    assert clean and len(clean) <= 200
    assert "/" not in clean and "\\" not in clean and not clean.startswith(".")
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in clean)


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**70, 1.5e308])
    if kind in (2, 3, 4):
        alphabet = string.printable + "打印机卡纸\u0000\u202e\ud7ff"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40 if kind < 4 else 20_000)))
    if kind == 5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = [
        "subject",
        "description",
        "email",
        "phone",
        "name",
        "category",
        "idempotency_key",
        "locale",
        "$where",
    ]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(7))}


async def test_web_form_endpoint_never_answers_5xx(settings: Any, mongo: Any) -> None:
    rng = random.Random(20261122)
    async with running_app(settings) as client:
        bodies: list[tuple[bytes, str]] = []
        for _ in range(150):
            value = _random_json(rng)
            bodies.append(
                (
                    json.dumps(value, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass"),
                    "application/json",
                )
            )
        for _ in range(50):
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(400)))
            bodies.append(
                (
                    raw,
                    rng.choice(
                        [
                            "application/json",
                            "application/x-www-form-urlencoded",
                            "multipart/form-data; boundary=x",
                            "text/plain",
                            "",
                        ]
                    ),
                )
            )
        statuses = []
        for body, ctype in bodies:
            headers = {"Content-Type": ctype} if ctype else {}
            res = await client.post("/forms/support", data=body, headers=headers)
            statuses.append(res.status)
            assert res.status < 500, (res.status, await res.text(), body[:200])
            if res.status >= 400:
                error = (await res.json())["error"]
                assert error["code"] and error["message"]
        assert any(s in (201, 202) for s in statuses) or statuses.count(422) > 0
        # nothing accepted was lost: every 2xx has its inbox record
        accepted = sum(1 for s in statuses if 200 <= s < 300)
        assert await mongo.inbox.count_documents({}) == accepted


def test_corpus_is_present() -> None:
    assert EMLS, f"no eml files under {Path(CORPORA)}"
