"""Visible-reply extraction against the crisp-oss fixtures and our own Chinese-client set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from channels.email.reply_extract import extract_reply
from tests.conftest import CORPORA

REPLY_FIXTURES = CORPORA / "email" / "reply_fixtures"
ZH_REPLIES = Path(__file__).resolve().parents[1] / "data" / "zh_replies"

needs_fixtures = pytest.mark.skipif(not REPLY_FIXTURES.is_dir(), reason="shared corpora not mounted")


@needs_fixtures
def test_reply_fixtures_score_at_least_40_of_43() -> None:
    spec = json.loads((REPLY_FIXTURES / "expected.json").read_text(encoding="utf-8"))
    expected = spec["expected_reply"].strip()
    failures: list[str] = []
    for name in spec["fixtures"]:
        got = extract_reply((REPLY_FIXTURES / name).read_text(encoding="utf-8")).strip()
        if got != expected:
            failures.append(f"{name}: {got[-120:]!r}")
    passed = len(spec["fixtures"]) - len(failures)
    print(f"reply fixtures: {passed}/{len(spec['fixtures'])}")
    for failure in failures:
        print("  FAIL", failure)
    assert len(spec["fixtures"]) == 43
    assert passed >= 40, failures


def _zh_cases() -> list[tuple[str, str]]:
    spec = json.loads((ZH_REPLIES / "expected.json").read_text(encoding="utf-8"))
    return [(name, case["expected"]) for name, case in spec["cases"].items()]


def test_zh_reply_set_has_at_least_20_cases_from_each_client_family() -> None:
    spec = json.loads((ZH_REPLIES / "expected.json").read_text(encoding="utf-8"))
    clients = " ".join(case["client"] for case in spec["cases"].values())
    assert len(spec["cases"]) >= 20
    for family in ("QQ Mail", "Foxmail", "163", "126", "Outlook", "Gmail", "Apple Mail"):
        assert family in clients, family


@pytest.mark.parametrize(("name", "expected"), _zh_cases())
def test_zh_reply(name: str, expected: str) -> None:
    text = (ZH_REPLIES / name).read_text(encoding="utf-8")
    assert extract_reply(text) == expected.strip()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Outlook in English with CRLF line ends and a rule line above the block.
        (
            "Please send the invoice.\r\n\r\n________________________________\r\nFrom: Support "
            "<s@example.com>\r\nSent: Thursday, May 4, 2023 3:39 PM\r\nTo: Me <me@example.com>\r\n"
            "Subject: RE: Invoice\r\n\r\nWhich invoice?\r\n",
            "Please send the invoice.",
        ),
        # Gmail attribution wrapped over two lines.
        (
            "Yes.\n\nOn Thu, May 4, 2023 at 3:39 PM Support Team <\nsupport@example.com> wrote:\n\n> Ok?\n",
            "Yes.",
        ),
        # Thunderbird without a date in the attribution, recognised because a quote follows.
        ("Thanks!\n\nJohn Smith wrote:\n> Did it work?\n", "Thanks!"),
        # Signature delimiter.
        ("See attached.\n\n-- \nJohn\n+1 555 0100\n", "See attached."),
        ("Works now.\n\nSent from my iPhone\n", "Works now."),
        ("可以了。\n\n发自我的iPhone\n", "可以了。"),
        # Bottom-posted answer below a quote.
        ("On Thu, May 4, 2023 at 3:39 PM A <a@b.c> wrote:\n> question?\n\nanswer.\n", "answer."),
        # Nothing to strip.
        ("Just a message.\n", "Just a message."),
        ("", ""),
    ],
)
def test_reply_shapes(text: str, expected: str) -> None:
    assert extract_reply(text) == expected


@needs_fixtures
@pytest.mark.parametrize(
    "name",
    [
        "email_tricky_1_on_false_positive.txt",
        "email_tricky_4_from_in_body.txt",
        "email_tricky_6_regards_in_sentence.txt",
        "email_tricky_8_sent_from_in_content.txt",
        "email_tricky_13_timestamp_variations.txt",
        "email_sent_from_my_not_signature.txt",
    ],
)
def test_text_that_only_looks_like_a_marker_is_kept(name: str) -> None:
    text = (REPLY_FIXTURES / name).read_text(encoding="utf-8")
    assert extract_reply(text) == text.strip()


def test_chinese_text_that_mentions_headers_is_kept() -> None:
    text = "发件人：张三（订单号 12345，邮箱 zhang3@example.cn）：\n他写道，包装破损。\n请换货。"
    assert extract_reply(text) == text
