"""Never auto-answer machine mail: one case per header rule, plus real bounces from the corpus."""

from __future__ import annotations

import email
from email.message import Message
from pathlib import Path

import pytest

from channels.email.auto_detect import OMNIGATE_LOOP_HEADER, classify_automatic
from tests.conftest import CORPORA

CORPUS = CORPORA / "email" / "eml"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpora not mounted")

HUMAN = {"From": "Zhang San <zhangsan@example.cn>", "To": "support@example.com", "Subject": "订单问题"}


def _message(path: Path) -> Message:
    return email.message_from_bytes(path.read_bytes())


def test_human_mail_is_not_automatic() -> None:
    verdict = classify_automatic(HUMAN)
    assert not verdict.automatic
    assert not verdict.bounce
    assert verdict.reasons == ()


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "auto-submitted: auto-replied"),
        ({"Auto-Submitted": "auto-generated (warning-timeout)"}, "auto-submitted: auto-generated"),
        ({"Auto-Submitted": "auto-notified; owner-email=x@y"}, "auto-submitted"),
        ({"Precedence": "bulk"}, "precedence: bulk"),
        ({"Precedence": "List"}, "precedence: list"),
        ({"Precedence": "junk"}, "precedence: junk"),
        ({"X-Loop": "support@example.com"}, "x-loop"),
        ({"List-Id": "<users.lists.example.com>"}, "list-id"),
        ({"List-Unsubscribe": "<mailto:leave@example.com>"}, "list-unsubscribe"),
        ({"X-Auto-Response-Suppress": "All"}, "x-auto-response-suppress"),
        ({OMNIGATE_LOOP_HEADER: "gw-1"}, "x-omnigate-loop"),
        ({"Return-Path": "<>"}, "null return-path"),
        ({"From": "MAILER-DAEMON@mx.example.com"}, "sender: mailer-daemon"),
        ({"From": "Mail Administrator <Postmaster@example.com>"}, "sender: postmaster"),
        ({"From": "Shop <noreply@shop.example>"}, "sender: noreply"),
        ({"From": "Shop <no-reply@shop.example>"}, "sender: no-reply"),
        ({"From": "Shop <do-not-reply@shop.example>"}, "sender: do-not-reply"),
    ],
)
def test_each_rule_marks_mail_automatic(extra: dict[str, str], reason: str) -> None:
    verdict = classify_automatic({**HUMAN, **extra})
    assert verdict.automatic
    assert any(r.startswith(reason) for r in verdict.reasons), verdict.reasons


@pytest.mark.parametrize("value", ["no", "No", " no ", "no (manual)"])
def test_auto_submitted_no_is_a_human(value: str) -> None:
    assert not classify_automatic({**HUMAN, "Auto-Submitted": value}).automatic


def test_precedence_first_class_is_not_bulk() -> None:
    assert not classify_automatic({**HUMAN, "Precedence": "first-class"}).automatic


def test_header_names_are_case_insensitive_and_pairs_are_accepted() -> None:
    assert classify_automatic({"auto-submitted": "auto-replied"}).automatic
    assert classify_automatic([("From", "a@b.c"), ("PRECEDENCE", "bulk")]).automatic


def test_a_parsed_message_is_accepted() -> None:
    msg = email.message_from_string("From: a@example.com\nX-Loop: a@example.com\nSubject: hi\n\nbody\n")
    assert classify_automatic(msg).reasons == ("x-loop",)


@needs_corpus
@pytest.mark.parametrize(
    ("name", "original"),
    [
        ("multi_address_bounce1.eml", "<118707422.15521266992174819.JavaMail.root@lvmail01>"),
        ("multipart_report_multiple_status.eml", "<4c2a146147ac8_61ff157c4ec1652df@s.h.c.mail>"),
        ("report_530.eml", "<200712232303.lBNN3jDq002941@mail12.rrrr.com.au>"),  # rfc822-headers part
    ],
)
def test_bounces_name_the_message_they_return(name: str, original: str) -> None:
    verdict = classify_automatic(_message(CORPUS / "multipart_report_emails" / name))
    assert verdict.automatic
    assert verdict.bounce
    assert verdict.dsn_action == "failed"
    assert "delivery status notification" in verdict.reasons
    assert verdict.bounced_message_id == original


@needs_corpus
def test_a_delay_warning_is_automatic_but_not_a_bounce() -> None:
    verdict = classify_automatic(_message(CORPUS / "multipart_report_emails" / "report_422.eml"))
    assert verdict.automatic
    assert verdict.dsn_action == "delayed"
    assert not verdict.bounce
    assert verdict.bounced_message_id is None


def test_a_bounce_without_a_report_part_is_found_by_sender_and_subject() -> None:
    raw = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Content-Type: text/plain\n\n"
        "Your message could not be delivered.\n\n"
        "Message-ID: <out-42@omnigate.example.com>\n"
    )
    verdict = classify_automatic(email.message_from_string(raw))
    assert verdict.bounce
    assert verdict.bounced_message_id == "<out-42@omnigate.example.com>"


def test_x_failed_recipients_is_a_bounce() -> None:
    verdict = classify_automatic({"From": "a@example.com", "X-Failed-Recipients": "x@example.com"})
    assert verdict.automatic and verdict.bounce
