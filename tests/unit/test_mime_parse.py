"""MIME parsing: every corpus message, CJK charsets without replacement characters, our charset fixes,
HTML-only mail, attachments (cap, sniffing, names) and the not-a-message case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from channels.email.mime_parse import ParsedEmail, html_to_text, parse_email, sanitise_filename
from tests.conftest import CORPORA
from ticket_core.errors import InvalidInput

CORPUS = CORPORA / "email" / "eml"
OWN = Path(__file__).resolve().parents[1] / "data" / "eml"
CORPUS_FILES = sorted(CORPUS.rglob("*.eml")) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not CORPUS_FILES, reason="shared corpora not mounted")

# Where the source bytes are valid in the corrected charset, nothing may decode to U+FFFD.
CJK_TEXT = {
    "multi_charset/japanese.eml": ("まみむめも", "かきくえこ"),
    "multi_charset/japanese_iso_2022.eml": ("まみむめも", "すみません。"),
    "multi_charset/japanese_shift_jis.eml": ("test", "このメールはテスト用のメールです。"),
    "multi_charset/japanese_attachment.eml": ("testing", "testing"),
    "multi_charset/japanese_attachment_long_name.eml": ("まみむめも" * 8, ""),
    "multi_charset/ks_c_5601-1987.eml": ("test", "스티해"),
    "plain_emails/raw_email.eml": ("NOTE: 한국말로 하는 것", "제 이름은 Jamis입니다."),
    "plain_emails/raw_email_with_partially_quoted_subject.eml": (
        'Re: Test: "漢字" mid "漢字" tail',
        "우리는",
    ),
    "rfc2822/example14.eml": ("Re: TEST テストテスト", "Hello"),
    "rfc6532/utf8_headers.eml": ("Säying Hello", "body"),
    # Big5 that a relay read as Latin-1 and re-encoded as UTF-8: repaired.
    "error_emails/content_transfer_encoding_empty.eml": ("大家說英語", ""),
}


def _all_text(parsed: ParsedEmail) -> str:
    parts = [parsed.subject, parsed.from_name or "", parsed.full_text, parsed.html or ""]
    parts += [a.filename for a in parsed.attachments]
    return "\n".join(parts)


@needs_corpus
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_every_corpus_message_parses(path: Path) -> None:
    try:
        parsed = parse_email(path.read_bytes())
    except InvalidInput:
        return  # the one error allowed: not a message at all
    assert isinstance(parsed, ParsedEmail)
    # Something a person can act on: a subject, or the reasons there is none.
    assert parsed.subject.strip() or parsed.defects or parsed.full_text.strip()
    assert parsed.text == parsed.text.strip()
    assert len(parsed.text) <= len(parsed.full_text)
    json.dumps(parsed.to_json_dict(), ensure_ascii=False)


@needs_corpus
def test_corpus_is_all_there_and_nearly_all_have_a_subject() -> None:
    parsed = [parse_email(p.read_bytes()) for p in CORPUS_FILES]
    assert len(parsed) >= 100
    with_subject = sum(1 for p in parsed if p.subject.strip())
    assert with_subject >= 0.85 * len(parsed)


@needs_corpus
@pytest.mark.parametrize(("name", "expected"), sorted(CJK_TEXT.items()))
def test_cjk_charsets_decode_without_replacement(name: str, expected: tuple[str, str]) -> None:
    parsed = parse_email((CORPUS / name).read_bytes())
    subject, body = expected
    assert parsed.subject == subject or subject in parsed.subject
    assert body in parsed.full_text
    assert "\ufffd" not in _all_text(parsed)


@needs_corpus
def test_corpus_headers_and_threading_fields() -> None:
    parsed = parse_email((CORPUS / "rfc2822" / "example06.eml").read_bytes())
    assert parsed.from_addr == "mary@example.net"
    assert parsed.in_reply_to == "<1234@local.machine.example>"
    assert parsed.message_id == "<3456@example.net>"
    assert parsed.subject == "Re: Saying Hello"
    assert parsed.date is not None and parsed.date.tzinfo is not None


@needs_corpus
def test_latin1_8bit_subject_is_not_read_as_chinese() -> None:
    parsed = parse_email((CORPUS / "error_emails" / "invalid_subject_characters.eml").read_bytes())
    assert parsed.subject.startswith("Formação FrenetikPolis")
    assert parsed.from_name == "Formação Frenetikpolis"  # RFC 2047 Windows-1252


@needs_corpus
def test_broken_encoded_word_charset_still_decodes() -> None:
    parsed = parse_email((CORPUS / "error_emails" / "bad_encoded_subject.eml").read_bytes())
    assert parsed.subject == "TEST"
    assert any("none" in note for note in parsed.charset_notes)


@needs_corpus
def test_bounce_verdict_is_part_of_the_parse() -> None:
    parsed = parse_email((CORPUS / "multipart_report_emails" / "report_530.eml").read_bytes())
    assert parsed.auto_submitted.automatic and parsed.auto_submitted.bounce
    assert parsed.auto_submitted.bounced_message_id == "<200712232303.lBNN3jDq002941@mail12.rrrr.com.au>"
    assert parsed.auto_submitted_raw == "auto-generated (failure)"


@needs_corpus
def test_inline_images_keep_their_content_id() -> None:
    parsed = parse_email((CORPUS / "attachment_inline1.eml").read_bytes())
    inline = [a for a in parsed.attachments if a.inline]
    assert inline and all(a.content_id for a in inline)
    assert all(a.content_type == "image/png" for a in inline)


# -- our own Chinese-charset messages ---------------------------------------------------------------


def _own(name: str, **kwargs: int) -> ParsedEmail:
    return parse_email((OWN / name).read_bytes(), **kwargs)


def test_gb2312_label_decodes_as_gb18030() -> None:
    parsed = _own("gb2312_body.eml")
    assert "朱镕基同志和王堃先生" in parsed.full_text  # 镕 and 堃 are GBK, not GB2312
    assert parsed.subject == "订单未发货"
    assert parsed.from_name == "张三"
    assert "gb2312 decoded as gb18030" in parsed.charset_notes
    assert "\ufffd" not in _all_text(parsed)


def test_gbk_encoded_words_split_inside_a_character() -> None:
    parsed = _own("gbk_subject.eml")
    assert parsed.subject == "关于镕金属配件的退货申请"
    assert parsed.from_name == "李四"  # Q-encoded GBK
    assert "gbk decoded as gb18030" in parsed.charset_notes
    assert "gb_2312-80 decoded as gb18030" in parsed.charset_notes
    assert parsed.text == "请看附件中的照片。"
    assert parsed.plus_tokens == ("t1.abc",)
    assert parsed.in_reply_to == "<out-1@omnigate.example.com>"
    assert parsed.references == ("<out-0@omnigate.example.com>", "<out-1@omnigate.example.com>")


def test_big5_label_decodes_as_big5hkscs() -> None:
    parsed = _own("big5_hkscs.eml")
    assert parsed.full_text == "你好，部電話嘅螢幕壞咗㗎，點算好？"
    assert parsed.subject == "部機壞咗"
    assert parsed.from_name == "陳大文"
    assert "big5 decoded as big5hkscs" in parsed.charset_notes


def test_undeclared_8bit_gbk_headers() -> None:
    parsed = _own("undeclared_8bit_gbk_header.eml")
    assert parsed.subject == "发票抬头错误，请重开"
    assert parsed.from_name == "王五"
    assert parsed.from_addr == "wangwu@example.cn"
    assert "undeclared 8-bit Subject header decoded as gb18030" in parsed.charset_notes
    assert parsed.full_text == "发票抬头应为“北京某某科技有限公司”。"


def test_html_only_mail_gives_text_reply_and_sanitised_html() -> None:
    parsed = _own("html_only_qq.eml")
    assert parsed.text == "您好，\n设备还是无法开机，序列号 SN123456。\n谢谢！"
    assert "------------------ 原始邮件 ------------------" in parsed.full_text
    assert "> 请长按电源键 10 秒后重试。" in parsed.full_text  # blockquote kept as quoted lines
    assert "alert" not in parsed.full_text and "color:red" not in parsed.full_text
    assert parsed.html is not None
    assert "<script" not in parsed.html and "javascript:" not in parsed.html and "onerror" not in parsed.html
    assert 'src="cid:logo@example.com"' in parsed.html  # inline images still resolve
    assert parsed.subject == "回复：设备无法开机"


def test_attachment_over_the_cap_is_recorded_as_skipped() -> None:
    parsed = _own("big_attachment.eml", max_attachment_bytes=4096)
    assert parsed.text == "日志在附件里，截图如下。"
    image, archive = parsed.attachments
    assert archive.filename == "设备日志.zip"  # "../../etc/" stripped
    assert archive.content_type == "application/zip"  # sniffed: declared application/octet-stream
    assert archive.declared_type == "application/octet-stream"
    assert archive.size > 4096 and archive.content == b""
    assert archive.skipped and "cap" in archive.skipped
    assert any("skipped" in d for d in parsed.defects)
    assert image.inline and image.content_id == "shot1@example.cn"
    assert image.content_type == "image/png" and image.content.startswith(b"\x89PNG")
    assert image.filename.endswith(".png") and image.skipped is None


def test_attachment_under_the_default_cap_is_kept() -> None:
    parsed = _own("big_attachment.eml")
    archive = parsed.attachments[1]
    assert archive.skipped is None
    assert archive.content.startswith(b"PK\x03\x04") and len(archive.content) == archive.size


# -- edges -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \r\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"hello, this is not a mail\n", b"%PDF-1.4\n"],
)
def test_input_that_is_not_a_message_is_invalid_input(raw: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_email(raw)


def test_headers_only_message_and_mbox_separator() -> None:
    parsed = parse_email(b"From sender@example.com Thu May  4 15:39:57 2023\nSubject: hi\nFrom: a@b.cn\n")
    assert parsed.subject == "hi" and parsed.from_addr == "a@b.cn" and parsed.text == ""


def test_encoded_display_name_with_a_comma_stays_one_address() -> None:
    raw = b"From: =?utf-8?B?5byg5LiJLCDplIDllK4=?= <z@example.cn>\nTo: a@x.cn, b@y.cn\nSubject: x\n\nhi\n"
    parsed = parse_email(raw)
    assert parsed.from_name == "张三, 销售" and parsed.from_addr == "z@example.cn"
    assert parsed.to == ("a@x.cn", "b@y.cn")


def test_format_flowed_is_unwrapped() -> None:
    raw = (
        b"From: a@b.cn\nSubject: x\nContent-Type: text/plain; charset=utf-8; format=flowed\n\n"
        b"This line was \nsoft-wrapped.\n\nOn Thu, May 4, 2023 at 3:39 PM B <b@c.cn> wrote:\n> q\n"
    )
    assert parse_email(raw).text == "This line was soft-wrapped."


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\报告.pdf", "报告.pdf"),
        ('a<b>:"c|?*.txt', "a_b___c___.txt"),
        ("...", "fallback.bin"),
        ("", "fallback.bin"),
        ("x" * 300 + ".zip", "x" * 176 + ".zip"),
    ],
)
def test_sanitise_filename(name: str, expected: str) -> None:
    assert sanitise_filename(name, "fallback.bin") == expected


def test_html_to_text_keeps_line_breaks() -> None:
    text = html_to_text("<p>第一行<br>第二行</p><ul><li>甲</li><li>乙</li></ul><script>x()</script>")
    assert text.splitlines() == ["第一行", "第二行", "", "- 甲", "- 乙"]


def test_fuzz_findings_do_not_raise() -> None:
    # 8-bit bytes in a charset label, and a B-encoded word one character past a multiple of 4.
    raw = (
        b"From: a@b.cn\nSubject: =?utf-8?B?5byg5?= ok\n"
        b"Content-Type: text/plain; charset=\xff\xfe\n\n\xe4\xbd\xa0\n"
    )
    parsed = parse_email(raw)
    assert parsed.subject.endswith("ok")
    assert parsed.full_text == "你"
    assert any("unknown charset" in note for note in parsed.charset_notes)
