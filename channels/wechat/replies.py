"""Passive replies (the XML answered in the callback's HTTP response) and text splitting.

A passive reply must come back within WeChat's 5-second deadline; in safe mode it is wrapped in an
encrypted envelope signed like an inbound message.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from channels.wechat.crypto import WeChatMessageCrypto
from channels.wechat.signing import msg_signature
from ticket_core.errors import InvalidInput

#: Text messages (passive and customer-service) are capped at 2048 bytes of UTF-8.
MAX_TEXT_BYTES = 2048
#: A news reply holds at most 8 articles; WeChat shows only 1 when answering a user's own message
#: (text, image, voice, video, link, location), so pass max_articles=1 there.
MAX_NEWS_ARTICLES = 8

# Characters XML 1.0 forbids even inside CDATA; a stray one would make WeChat drop the whole reply.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Article:
    title: str
    description: str = ""
    url: str = ""
    pic_url: str = ""


def _cdata(value: str) -> str:
    # "]]>" would end the section early: split it across two sections.
    clean = _XML_INVALID.sub("", value).replace("]]>", "]]]]><![CDATA[>")
    return f"<![CDATA[{clean}]]>"


def _header(to_user: str, from_user: str, create_time: int, msg_type: str) -> str:
    return (
        f"<ToUserName>{_cdata(to_user)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time)}</CreateTime>"
        f"<MsgType>{_cdata(msg_type)}</MsgType>"
    )


def text_reply_xml(*, to_user: str, from_user: str, content: str, create_time: int) -> str:
    """`to_user` is the follower's openid, `from_user` the account's original id (gh_...)."""
    if len(content.encode("utf-8", "replace")) > MAX_TEXT_BYTES:
        raise InvalidInput(f"text reply exceeds {MAX_TEXT_BYTES} bytes; use split_text", code="too_long")
    body = _header(to_user, from_user, create_time, "text") + f"<Content>{_cdata(content)}</Content>"
    return f"<xml>{body}</xml>"


def news_reply_xml(
    *,
    to_user: str,
    from_user: str,
    articles: Sequence[Article],
    create_time: int,
    max_articles: int = MAX_NEWS_ARTICLES,
) -> str:
    if not articles:
        raise InvalidInput("a news reply needs at least one article", code="empty")
    if len(articles) > min(max_articles, MAX_NEWS_ARTICLES):
        raise InvalidInput(f"a news reply holds at most {max_articles} articles", code="too_many")
    items = "".join(
        "<item>"
        f"<Title>{_cdata(a.title)}</Title>"
        f"<Description>{_cdata(a.description)}</Description>"
        f"<PicUrl>{_cdata(a.pic_url)}</PicUrl>"
        f"<Url>{_cdata(a.url)}</Url>"
        "</item>"
        for a in articles
    )
    body = (
        _header(to_user, from_user, create_time, "news")
        + f"<ArticleCount>{len(articles)}</ArticleCount><Articles>{items}</Articles>"
    )
    return f"<xml>{body}</xml>"


def encrypted_reply_xml(
    reply_xml: str,
    *,
    crypto: WeChatMessageCrypto,
    token: str,
    timestamp: str,
    nonce: str,
    random_prefix: bytes | None = None,
) -> str:
    """Safe-mode envelope around a passive reply; `msg_signature` covers the ciphertext."""
    encrypt = crypto.encrypt(reply_xml, random_prefix=random_prefix)
    signature = msg_signature(token, timestamp, nonce, encrypt)
    return (
        f"<xml><Encrypt>{_cdata(encrypt)}</Encrypt>"
        f"<MsgSignature>{_cdata(signature)}</MsgSignature>"
        f"<TimeStamp>{int(timestamp)}</TimeStamp>"
        f"<Nonce>{_cdata(nonce)}</Nonce></xml>"
    )


# -- splitting long texts --------------------------------------------------------------------------

# Break points, best first. CJK text has no spaces, so its punctuation stands in for word breaks.
_BREAKS = (
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    re.compile(r"(?<=[。！？!?；;])|(?<=[.!?])\s"),
    re.compile(r"(?<=[，、,：:])|\s"),
)
_GLUE = {"\u200d", "\u200c"}  # zero-width joiners belong to their neighbours


def split_text(text: str, *, limit_bytes: int = MAX_TEXT_BYTES) -> list[str]:
    """Split into chunks of at most `limit_bytes` UTF-8 bytes each.

    Never cuts inside a character; prefers paragraph, line, sentence, then word or CJK clause
    boundaries, in the second half of a chunk so chunks stay full; falls back to a character
    boundary that keeps combining marks with their base character.
    """
    if limit_bytes < 4:
        raise ValueError("limit_bytes must hold at least one character")
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates would not encode
    chunks: list[str] = []
    rest = text.strip()
    while len(rest.encode("utf-8")) > limit_bytes:
        # Longest prefix within the limit: a trailing partial character is dropped by "ignore".
        window = rest.encode("utf-8")[:limit_bytes].decode("utf-8", "ignore")
        cut = _break_point(window, rest)
        chunk, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if chunk:
            chunks.append(chunk)
    if rest:
        chunks.append(rest)
    return chunks


def _break_point(window: str, rest: str) -> int:
    """Where to cut `rest`, whose longest prefix within the byte limit is `window`."""
    floor = len(window) // 2
    for pattern in _BREAKS:
        ends = [m.start() if m.group().isspace() else m.end() for m in pattern.finditer(window)]
        good = [e for e in ends if e > floor]
        if good:
            return max(good)
    # rest is longer than window, so rest[cut] exists.
    cut = len(window)
    while cut > 1 and (rest[cut - 1] in _GLUE or rest[cut] in _GLUE or _is_mark(rest[cut])):
        cut -= 1
    return cut


def _is_mark(ch: str) -> bool:
    """Combining marks and variation selectors belong to the character before them."""
    return unicodedata.combining(ch) > 0 or 0xFE00 <= ord(ch) <= 0xFE0F
