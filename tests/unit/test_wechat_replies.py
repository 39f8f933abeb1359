import json
import unicodedata

import pytest
from wechatpy.crypto import WeChatCrypto

from channels.wechat.crypto import WeChatMessageCrypto
from channels.wechat.replies import (
    MAX_TEXT_BYTES,
    Article,
    encrypted_reply_xml,
    news_reply_xml,
    split_text,
    text_reply_xml,
)
from channels.wechat.signing import msg_signature
from channels.wechat.xml_parse import parse_callback_xml, parse_xml_fields
from tests.conftest import CORPORA
from ticket_core.errors import InvalidInput

VECTORS = json.loads((CORPORA / "wechat/crypto_vectors.json").read_text())


def test_text_reply_round_trips_through_our_parser() -> None:
    xml = text_reply_xml(to_user="o1", from_user="gh_x", content="您好 <b>&]]> ok", create_time=1700000000)
    p = parse_callback_xml(xml.encode())
    assert (p.to_user, p.from_user, p.create_time, p.msg_type, p.text) == (
        "o1",
        "gh_x",
        1700000000,
        "text",
        "您好 <b>&]]> ok",
    )


def test_text_reply_drops_characters_xml_forbids() -> None:
    xml = text_reply_xml(to_user="o1", from_user="gh", content="a\x00b\x1bc\td", create_time=1)
    assert parse_callback_xml(xml.encode()).text == "abc\td"


def test_text_reply_over_the_limit_is_refused() -> None:
    with pytest.raises(InvalidInput):
        text_reply_xml(to_user="o", from_user="g", content="字" * 700, create_time=1)


def test_news_reply() -> None:
    articles = [
        Article(f"标题{i}", "描述", f"https://kb.example.com/{i}", "https://img/1.png") for i in range(8)
    ]
    fields = parse_xml_fields(
        news_reply_xml(to_user="o", from_user="g", articles=articles, create_time=5).encode()
    )
    assert fields["MsgType"] == "news" and fields["ArticleCount"] == "8"
    items = fields["Articles"]["item"]
    assert [i["Title"] for i in items] == [f"标题{i}" for i in range(8)]
    assert items[3]["Url"] == "https://kb.example.com/3" and items[0]["PicUrl"] == "https://img/1.png"

    with pytest.raises(InvalidInput):
        news_reply_xml(to_user="o", from_user="g", articles=[*articles, articles[0]], create_time=5)
    with pytest.raises(InvalidInput):
        news_reply_xml(to_user="o", from_user="g", articles=[], create_time=5)
    with pytest.raises(InvalidInput):  # answering a user's message: WeChat shows one article only
        news_reply_xml(to_user="o", from_user="g", articles=articles[:2], create_time=5, max_articles=1)


def test_encrypted_envelope_opens_with_wechatpy_and_is_reproducible() -> None:
    crypto = WeChatMessageCrypto(VECTORS["encoding_aes_key"], VECTORS["app_id"])
    reply = text_reply_xml(to_user="o1", from_user="gh", content="回复", create_time=1409304348)
    prefix = VECTORS["random_prefix"].encode()
    envelope = encrypted_reply_xml(
        reply,
        crypto=crypto,
        token=VECTORS["token"],
        timestamp="1409304348",
        nonce="xxxxxx",
        random_prefix=prefix,
    )
    fields = parse_xml_fields(envelope.encode())
    assert set(fields) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert fields["Encrypt"] == crypto.encrypt(reply, random_prefix=prefix)
    assert fields["MsgSignature"] == msg_signature(
        VECTORS["token"], "1409304348", "xxxxxx", fields["Encrypt"]
    )
    theirs = WeChatCrypto(VECTORS["token"], VECTORS["encoding_aes_key"], VECTORS["app_id"])
    opened = theirs.decrypt_message(envelope, fields["MsgSignature"], "1409304348", "xxxxxx")
    assert opened == reply


# -- split_text -----------------------------------------------------------------------------------


def _check(chunks: list[str], limit: int) -> None:
    assert chunks and all(0 < len(c.encode()) <= limit for c in chunks)


def test_short_text_is_one_chunk() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("") == []


def test_chinese_splits_at_sentence_ends_within_the_byte_limit() -> None:
    text = "打印机卡纸了，请按说明书操作。" * 300
    chunks = split_text(text)
    _check(chunks, MAX_TEXT_BYTES)
    assert "".join(chunks) == text
    assert all(c.endswith("。") for c in chunks)


def test_english_splits_between_words() -> None:
    words = [f"word{i}" for i in range(1500)]
    chunks = split_text(" ".join(words), limit_bytes=500)
    _check(chunks, 500)
    assert " ".join(chunks).split() == words


def test_paragraphs_are_preferred() -> None:
    para = "x " * 150
    text = f"{para.strip()}\n\n{para.strip()}\n\n{para.strip()}"
    assert split_text(text, limit_bytes=700) == [f"{para.strip()}\n\n{para.strip()}", para.strip()]


def test_hard_cut_never_splits_a_character_or_a_combining_sequence() -> None:
    text = "e\u0301" * 3000  # e + combining acute: 3 bytes per visible character, no break points
    chunks = split_text(text, limit_bytes=100)
    _check(chunks, 100)
    assert all(not unicodedata.combining(c[0]) for c in chunks)
    assert "".join(chunks) == text
    emoji = "😀" * 1000  # 4-byte characters
    chunks = split_text(emoji, limit_bytes=2047)
    _check(chunks, 2047)
    assert "".join(chunks) == emoji


def test_lone_surrogates_do_not_crash() -> None:
    _check(split_text("a\ud800b" * 1000, limit_bytes=64), 64)
