"""Turn raw RFC 5322 bytes into a `ParsedEmail`: headers, the visible reply, sanitised HTML, attachments.

Real mail is often broken, and Chinese mail in particular is mislabelled: ``gb2312`` text that uses
GBK characters, ``big5`` with HKSCS characters, 8-bit headers with no charset at all. Python's email
package replaces what it cannot decode without telling anyone, so every byte-to-text step goes
through `_decode` here, which applies the label fixes and records each correction in
``charset_notes``. Nothing raises on broken input except `InvalidInput` for bytes that are not a
message at all; what cannot be read is listed in ``defects``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import logging
import mimetypes
import quopri
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.errors import MessageError
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

import filetype
import nh3

from channels.email.auto_detect import AutoVerdict, classify_automatic
from channels.email.reply_extract import extract_reply
from ticket_core.errors import InvalidInput

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MAX_ATTACHMENT_BYTES", "ParsedAttachment", "ParsedEmail", "parse_email"]

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ParsedAttachment:
    """One attachment or inline part. ``skipped`` says why ``content`` is empty (over the size cap)."""

    filename: str
    content_type: str  # sniffed when the declared type was generic
    size: int
    content: bytes
    inline: bool = False
    content_id: str | None = None
    declared_type: str = "application/octet-stream"
    skipped: str | None = None


@dataclass(frozen=True)
class ParsedEmail:
    subject: str
    from_addr: str | None
    from_name: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    date: datetime | None
    text: str  # the visible reply, without quoted history and signature
    full_text: str  # the whole text body (HTML-only mail: converted from HTML)
    html: str | None  # sanitised with nh3
    charset_notes: tuple[str, ...]
    attachments: tuple[ParsedAttachment, ...]
    auto_submitted: AutoVerdict
    auto_submitted_raw: str | None = None
    x_omnigate_token: str | None = None  # our X-Omnigate-Token header, when a mail of ours comes back
    plus_tokens: tuple[str, ...] = ()  # "support+<token>@" tags from the recipient headers
    defects: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready form (attachment bytes left out) for `omnigate email parse` and quarantine records."""
        doc = asdict(self)
        doc["date"] = self.date.isoformat() if self.date else None
        doc["attachments"] = [
            {k: v for k, v in asdict(a).items() if k != "content"} for a in self.attachments
        ]
        return doc


def parse_email(raw: bytes, *, max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES) -> ParsedEmail:
    """Parse one raw message. Raises `InvalidInput` only when ``raw`` is not a message at all."""
    _check_is_message(raw)
    try:
        message = BytesParser(policy=_RAW_HEADERS).parsebytes(bytes(raw))
        return _Reader(message, max_attachment_bytes).read()
    except Exception as exc:  # a parser bug must not lose the mail: degrade, say so, log it
        logger.exception("email parser failed; returning a degraded parse")
        return _degraded(bytes(raw), exc)


def _degraded(raw: bytes, exc: Exception) -> ParsedEmail:
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    text = body.decode("utf-8", "replace").strip()
    subject = re.search(rb"^Subject:[ \t]*(.*)$", head, re.IGNORECASE | re.MULTILINE)
    return ParsedEmail(
        subject=subject.group(1).decode("utf-8", "replace").strip() if subject else "",
        from_addr=None,
        from_name=None,
        to=(),
        cc=(),
        reply_to=(),
        message_id=None,
        in_reply_to=None,
        references=(),
        date=None,
        text=text,
        full_text=text,
        html=None,
        charset_notes=(),
        attachments=(),
        auto_submitted=AutoVerdict(),
        defects=(f"parser error, raw body shown: {type(exc).__name__}: {exc}"[:300],),
    )


# -- charsets --------------------------------------------------------------------------------------

# Labels that are subsets of a wider charset clients really use: decode with the wider one.
_SUPERSETS: dict[str, tuple[str, ...]] = {
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "gb_2312-80": ("gb18030",),
    "gb_2312": ("gb18030",),
    "gb-2312": ("gb18030",),
    "csgb2312": ("gb18030",),
    "euc-cn": ("gb18030",),
    "x-euc-cn": ("gb18030",),
    "x-gbk": ("gb18030",),
    "cp936": ("gb18030",),
    "ms936": ("gb18030",),
    "windows-936": ("gb18030",),
    "big5": ("big5hkscs", "cp950"),
    "big-5": ("big5hkscs", "cp950"),
    "x-big5": ("big5hkscs", "cp950"),
    "cn-big5": ("big5hkscs", "cp950"),
    "csbig5": ("big5hkscs", "cp950"),
    "ks_c_5601-1987": ("cp949",),
    "ks_c_5601": ("cp949",),
    "euc-kr": ("cp949",),
    "windows-874": ("cp874",),
    "tis-620": ("cp874",),
}
# Tried strictly first; the wider codec only when the strict decode fails (their mappings differ).
_FALLBACKS: dict[str, tuple[str, ...]] = {
    "shift_jis": ("cp932",),
    "iso2022_jp": ("iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3"),
    "euc_jp": ("cp932", "euc_jis_2004"),
    "latin_1": ("cp1252",),
    "ascii": ("utf-8", "gb18030", "cp1252"),
    "utf-8": ("gb18030", "cp1252"),
    "iso8859_15": ("cp1252",),
}
_UNDECLARED_CHAIN = ("utf-8", "gb18030", "latin-1")
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")


def _codec_name(label: str) -> str | None:
    if not label.isascii():  # 8-bit garbage in a charset parameter
        return None
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):
        return None


def _plausible(data: bytes, codec: str) -> bool:
    """Guard the guesses for undeclared bytes: GB18030 decodes almost any byte pair, so Latin-1
    text ("Verão") would come out as Chinese. Real GBK text has its high bytes in even-length runs."""
    if codec != "gb18030":
        return True
    return all(len(run) % 2 == 0 for run in _HIGH_RUN.findall(data))


class _Notes:
    """Collects charset notes and defects, each once, in order."""

    def __init__(self) -> None:
        self.charset: list[str] = []
        self.defects: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.charset:
            self.charset.append(text)

    def defect(self, text: str) -> None:
        if text not in self.defects:
            self.defects.append(text)


def _decode(data: bytes, label: str | None, where: str, notes: _Notes, *, hint: str | None = None) -> str:
    """Bytes to text with the label fixes; ``hint`` is tried first for undeclared 8-bit bytes."""
    if not data:
        return ""
    clean_label = (label or "").strip().strip("\"'").lower()
    if clean_label:
        supersets = _SUPERSETS.get(clean_label)
        if supersets:
            for codec in supersets:
                try:
                    text = data.decode(codec)
                except UnicodeDecodeError:
                    continue
                notes.note(f"{clean_label} decoded as {codec}")
                return text
        codec_name = _codec_name(clean_label)
        if codec_name is None:
            notes.note(f"unknown charset {clean_label!r} in {where}")
        else:
            if codec_name == "ascii" and not _HIGH_RUN.search(data):
                return data.decode("ascii")
            try:
                return data.decode(codec_name)
            except UnicodeDecodeError:
                pass
            for codec in _FALLBACKS.get(codec_name, ()):
                try:
                    text = data.decode(codec)
                except UnicodeDecodeError:
                    continue
                if codec_name != "ascii" and not _plausible(data, codec):
                    continue
                notes.note(f"{clean_label} in {where} decoded as {codec}")
                return text
            repaired = _undo_double_encoding(data, (*(supersets or ()), codec_name))
            if repaired is not None:
                notes.note(f"{clean_label} in {where} was double-encoded as utf-8; repaired")
                return repaired
            if codec_name in ("utf-8", "ascii"):
                notes.defect(f"undecodable bytes in {where} ({clean_label}) replaced")
                return data.decode("utf-8", "replace")
            notes.defect(f"invalid {clean_label} bytes in {where} replaced")
            return data.decode(supersets[0] if supersets else codec_name, "replace")
    # Undeclared: ASCII if it is, else the usual suspects with a note.
    if not _HIGH_RUN.search(data):
        return data.decode("ascii")
    if hint and hint != "utf-8":
        repaired = _undo_double_encoding(data, (hint,))
        if repaired is not None:
            notes.note(f"undeclared 8-bit {where} was {hint} double-encoded as utf-8; repaired")
            return repaired
    # UTF-8 first: it validates itself, so a hit is almost never a false one.
    chain = tuple(dict.fromkeys(c for c in ("utf-8", hint, *_UNDECLARED_CHAIN) if c))
    for codec in chain:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        if not _plausible(data, codec):
            continue
        if codec != "utf-8":  # UTF-8 in headers is standard (RFC 6532), not a correction
            notes.note(f"undeclared 8-bit {where} decoded as {codec}")
        return text
    return data.decode("latin-1")  # unreachable: latin-1 decodes everything


def _undo_double_encoding(data: bytes, codecs_to_try: tuple[str, ...]) -> str | None:
    """Text in a legacy charset that some relay read as Latin-1 and re-encoded as UTF-8: seen with
    Big5 and GBK mail ("¤j®a" for "大家"). Undo it when the result decodes cleanly."""
    try:
        once = data.decode("utf-8")
        original = once.encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None
    if original == data:
        return None
    for codec in codecs_to_try:
        try:
            return original.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def _label_codec(label: str | None) -> str | None:
    """The codec that `_decode` would use first for a label, as a hint for undeclared bytes."""
    if not label:
        return None
    clean = label.strip().strip("\"'").lower()
    if clean in _SUPERSETS:
        return _SUPERSETS[clean][0]
    name = _codec_name(clean)
    return None if name in (None, "ascii") else name


# -- headers ---------------------------------------------------------------------------------------


class _RawHeaderPolicy(Compat32):
    """Hand header values back exactly as received (8-bit bytes as surrogates) so we decode them."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_RAW_HEADERS = _RawHeaderPolicy()

_ENCODED_WORD = re.compile(r"=\?([^?\s]+?)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"^[ \t\r\n]+$")
_MSG_ID = re.compile(r"<[^<>]*>")
_PYTHON_CTES = {"base64", "quoted-printable", "x-uuencode", "uuencode", "uue", "x-uue"}
_FIELD_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")


def _raw_bytes(value: str) -> bytes:
    """The received bytes behind a compat32 string (8-bit bytes arrive as surrogates)."""
    try:
        return value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # real text, not from bytes
        return value.encode("utf-8")


def _b_decode(payload: str) -> bytes:
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
    if len(cleaned) % 4 == 1:  # a lone trailing character carries no whole byte
        cleaned = cleaned[:-1]
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))


def _q_decode(payload: str) -> bytes:
    return quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"), header=False)


def _decode_header(value: str | None, name: str, notes: _Notes, hint: str | None) -> str:
    """RFC 2047 words (label fixes applied, adjacent words of one charset joined before decoding so
    a character split across words survives) and undeclared 8-bit bytes."""
    if value is None:
        return ""
    text = value
    if not text.isascii():
        try:
            text = _decode(text.encode("ascii", "surrogateescape"), None, f"{name} header", notes, hint=hint)
        except UnicodeEncodeError:  # already text (not from bytes): keep it
            pass
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            out.append(_decode(b"".join(pending), pending_charset, f"{name} header", notes, hint=hint))
        pending, pending_charset = [], None

    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        if gap and not (pending and _BETWEEN_WORDS.match(gap)):
            flush()
            out.append(gap)
        charset, kind, payload = match.group(1).lower(), match.group(2).lower(), match.group(3)
        data = _b_decode(payload) if kind == "b" else _q_decode(payload)
        if pending and charset != pending_charset:
            flush()
        pending.append(data)
        pending_charset = charset
        pos = match.end()
    flush()
    out.append(text[pos:])
    joined = "".join(out)
    return re.sub(r"\s*[\r\n]+\s*", " ", joined).strip()


def _message_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    ids = [m.group(0) for m in _MSG_ID.finditer(value) if "@" in m.group(0) or len(m.group(0)) > 2]
    if not ids and value.strip():
        ids = [token for token in value.split() if token]
    return tuple(dict.fromkeys(ids))


# -- HTML ------------------------------------------------------------------------------------------

_SANITISE = nh3.Cleaner(url_schemes=set(nh3.ALLOWED_URL_SCHEMES) | {"cid", "data"})
_BLOCK_TAGS = {
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
    "pre", "hr", "section", "article", "header", "footer", "address", "dl", "dt", "dd", "center",
}  # fmt: skip
_SKIP_TAGS = {"script", "style", "head", "title", "template", "noscript"}
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)


class _HtmlToText(HTMLParser):
    """Readable text from HTML mail: block elements become line breaks, blockquotes become ">"
    lines so that reply extraction treats them as quoted history."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip = 0
        self.quote = 0
        self.pre = 0

    def _break(self) -> None:
        text = "".join(self.current)
        if not self.pre:
            text = re.sub(r"[ \t\r\n\f\u200b]+", " ", text).strip()
        prefix = "> " * self.quote
        for line in text.split("\n") if self.pre else [text]:
            self.lines.append(prefix + line if line else prefix.rstrip())
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "blockquote":
            self._break()
            self.quote += 1
        elif tag in _BLOCK_TAGS:
            if tag == "br":
                self._break()
            elif "".join(self.current).strip():
                self._break()
            if tag == "pre":
                self.pre += 1
            if tag == "li":
                self.current.append("- ")
            if tag == "hr":
                self.lines.append("-" * 20)
        elif tag in ("td", "th"):
            self.current.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._break()
        elif tag == "hr":
            self._break()
            self.lines.append("-" * 20)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag == "blockquote":
            self._break()
            self.quote = max(0, self.quote - 1)
        elif tag in _BLOCK_TAGS and tag != "br":
            self._break()
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"):
                self.lines.append("> " * self.quote if self.quote else "")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.current.append(data.replace("\xa0", " "))

    def text(self) -> str:
        self._break()
        lines = [line.rstrip() for line in self.lines]
        out: list[str] = []
        for line in lines:
            if not line.strip("> ") and out and not out[-1].strip("> "):
                continue  # one blank line between blocks is enough
            out.append(line)
        return "\n".join(out).strip("\n")


def html_to_text(html: str) -> str:
    """Plain text from HTML, line breaks kept (for HTML-only mail)."""
    parser = _HtmlToText()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # html.parser gives up on some garbage; keep what it read
        pass
    return parser.text()


# -- attachments -----------------------------------------------------------------------------------

_GENERIC_TYPES = {
    "application/octet-stream",
    "application/x-download",
    "application/force-download",
    "application/download",
    "application/binary",
    "application/unknown",
    "binary/octet-stream",
    "application/x-unknown",
    "application/x-msdownload",
}
_UNSAFE_FILENAME_CHARS = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]")
_MAX_FILENAME = 180


def sanitise_filename(name: str, fallback: str) -> str:
    """A name safe to store and show: no directories, no control or reserved characters."""
    base = re.split(r"[\\/]", name.strip())[-1] if name else ""
    base = _UNSAFE_FILENAME_CHARS.sub("_", base).strip().lstrip(".").strip()
    if not base or set(base) <= {"_", " ", "."}:
        return fallback
    if len(base) > _MAX_FILENAME:
        stem, dot, ext = base.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            base = stem[: _MAX_FILENAME - len(ext) - 1] + "." + ext
        else:
            base = base[:_MAX_FILENAME]
    return base


def _sniff(content: bytes, declared: str, filename: str) -> str:
    if declared not in _GENERIC_TYPES and "/" in declared:
        return declared
    kind = filetype.guess(content[:8192]) if content else None
    if kind is not None:
        return str(kind.mime)
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or declared or "application/octet-stream"


# -- the reader ------------------------------------------------------------------------------------


def _check_is_message(raw: bytes) -> None:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise InvalidInput("an email must be given as bytes", code="not_email")
    data = bytes(raw).lstrip(b"\r\n\t ")
    if not data:
        raise InvalidInput("empty input is not an email", code="not_email")
    if data.startswith(b"From "):  # mbox separator line
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    header_block = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    first = header_block.split(b"\n", 1)[0]
    if not _FIELD_LINE.match(first) or b"\x00" in header_block:
        raise InvalidInput("input does not start with a mail header", code="not_email")


class _Reader:
    def __init__(self, message: Message, max_attachment_bytes: int) -> None:
        self.message = message
        self.cap = max_attachment_bytes
        self.notes = _Notes()
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        # Undeclared 8-bit headers are most often in the charset the body declares.
        self.hint = self._body_charset_hint()

    def read(self) -> ParsedEmail:
        msg = self.message
        subject = self._header("Subject")
        from_name, from_addr = self._first_address("From")
        if from_addr is None:
            self.notes.defect("no readable From address")
        date = self._date()
        message_ids = _message_ids(self._header("Message-ID"))
        if not message_ids:
            self.notes.defect("no Message-ID")
        in_reply_to = _message_ids(self._header("In-Reply-To"))
        self._walk(msg, depth=0)
        full_text = "\n\n".join(t.strip("\n") for t in self.plain if t.strip())
        html = "\n".join(self.html) if self.html else None
        if not full_text and html:
            full_text = html_to_text(html)
        sanitised = _SANITISE.clean(html) if html else None
        for defect in msg.defects:
            self.notes.defect(type(defect).__name__)
        verdict = classify_automatic(msg)
        auto_raw = msg.get("Auto-Submitted")
        return ParsedEmail(
            subject=subject,
            from_addr=from_addr,
            from_name=from_name,
            to=self._addresses("To"),
            cc=self._addresses("Cc"),
            reply_to=self._addresses("Reply-To"),
            message_id=message_ids[0] if message_ids else None,
            in_reply_to=in_reply_to[0] if in_reply_to else None,
            references=_message_ids(self._header("References")),
            date=date,
            text=extract_reply(full_text),
            full_text=full_text,
            html=sanitised,
            charset_notes=tuple(self.notes.charset),
            attachments=tuple(self.attachments),
            auto_submitted=verdict,
            auto_submitted_raw=self._header("Auto-Submitted") if auto_raw is not None else None,
            x_omnigate_token=self._header("X-Omnigate-Token") or None,
            plus_tokens=self._plus_tokens(),
            defects=tuple(self.notes.defects),
        )

    # headers

    def _header(self, name: str) -> str:
        values = self.message.get_all(name)
        if not values:
            return ""
        if len(values) > 1 and name.lower() in ("subject", "from", "message-id", "date"):
            self.notes.defect(f"{len(values)} {name} headers, the first one used")
        return _decode_header(str(values[0]), name, self.notes, self.hint)

    def _raw_header_values(self, name: str) -> list[str]:
        return [str(v) for v in self.message.get_all(name) or []]

    def _address_pairs(self, name: str) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        for raw in self._raw_header_values(name):
            # Undeclared 8-bit first, encoded words after splitting: a decoded display name may
            # hold commas ("=?utf-8?B?...?=" -> "Doe, John") that would split one address in two.
            text = _decode_header_8bit(raw, name, self.notes, self.hint)
            try:
                parsed = getaddresses([text.replace("\r", " ").replace("\n", " ")])
            except (ValueError, IndexError, TypeError):
                self.notes.defect(f"unparseable {name} header")
                continue
            for display, address in parsed:
                address = address.strip()
                if not address:
                    continue
                pairs.append((_decode_header(display, name, self.notes, self.hint), address))
        return pairs

    def _first_address(self, name: str) -> tuple[str | None, str | None]:
        pairs = self._address_pairs(name)
        if not pairs:
            return None, None
        display, address = pairs[0]
        return display or None, address

    def _addresses(self, name: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(address for _, address in self._address_pairs(name)))

    def _date(self) -> datetime | None:
        value = self._header("Date")
        if not value:
            return None
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            self.notes.defect(f"unparseable Date header: {value[:60]!r}")
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def _plus_tokens(self) -> tuple[str, ...]:
        tokens: list[str] = []
        for name in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
            for _, address in self._address_pairs(name):
                local = address.rsplit("@", 1)[0]
                if "+" in local:
                    tokens.append(local.split("+", 1)[1])
        return tuple(dict.fromkeys(t for t in tokens if t))

    def _body_charset_hint(self) -> str | None:
        for part in self.message.walk():
            if part.get_content_maintype() == "text":
                hint = _label_codec(part.get_param("charset"))  # type: ignore[arg-type]
                if hint:
                    return hint
        return None

    # body

    def _walk(self, part: Message, depth: int) -> None:
        if depth > 50:  # a hostile nesting depth; what is below is not read
            self.notes.defect("MIME nesting too deep")
            return
        try:
            self._read_part(part, depth)
        finally:  # decoding the payload adds defects (bad base64 padding) to the part
            for defect in part.defects if part is not self.message else ():
                self.notes.defect(type(defect).__name__)

    def _read_part(self, part: Message, depth: int) -> None:
        ctype = part.get_content_type()
        if part.is_multipart() and ctype != "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list):
                for child in payload:
                    if isinstance(child, Message):
                        self._walk(child, depth + 1)
            return
        if part.get_content_maintype() == "multipart":
            # Boundary never found: what is there is most likely the text itself.
            if self._payload(part).strip():
                self.notes.defect(f"{ctype} without parts; body read as text")
                self.plain.append(self._text(part))
            return
        disposition = (part.get_content_disposition() or "").lower()
        filename = self._filename(part)
        is_attachment = disposition == "attachment" or (filename is not None and disposition != "inline")
        if ctype in ("text/plain", "text/html") and not is_attachment and filename is None:
            text = self._text(part)
            if ctype == "text/plain":
                self.plain.append(_unflow(text, part))
            else:
                self.html.append(text)
            return
        if (
            ctype.startswith("text/")
            and not is_attachment
            and ctype != "text/rfc822-headers"
            and not filename
        ):
            # Other inline text (text/enriched, text/x-...) still carries what the customer wrote.
            self.plain.append(self._text(part))
            return
        self._attachment(part, ctype, disposition, filename)

    def _payload(self, part: Message) -> bytes:
        if part.get_content_type() == "message/rfc822" or part.is_multipart():
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                try:
                    return inner[0].as_bytes()
                except (MessageError, UnicodeError, LookupError, ValueError, TypeError, AttributeError):
                    self.notes.defect("attached message could not be re-serialised")
                    return b""
            if isinstance(inner, str):
                return _raw_bytes(inner)
            return b""
        # decode=True is the only way to the received bytes: decode=False "helpfully" decodes them
        # with the declared charset and replaces what does not fit. It only knows exact CTE names.
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            return b""
        declared = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        if declared in _PYTHON_CTES:
            return data
        cte = re.split(r"[;\s]", declared, maxsplit=1)[0] if declared else ""
        if cte == "base64":
            return self._lenient_base64(data)
        if cte == "quoted-printable":
            return quopri.decodestring(data)
        if cte and cte not in ("7bit", "8bit", "binary"):
            self.notes.defect(f"unknown Content-Transfer-Encoding {cte!r}, body taken as is")
        return data

    def _lenient_base64(self, data: bytes) -> bytes:
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        if len(cleaned) % 4 == 1:  # a lone trailing character carries no whole byte
            cleaned = cleaned[:-1]
        try:
            return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))
        except (binascii.Error, ValueError):
            self.notes.defect("undecodable base64 body kept as is")
            return data

    def _text(self, part: Message) -> str:
        data = self._payload(part)
        label = part.get_param("charset")
        charset = str(label) if isinstance(label, str) else None
        if charset is None and part.get_content_type() == "text/html":
            meta = _META_CHARSET.search(data[:4096])
            charset = meta.group(1).decode("ascii") if meta else None
        where = f"{part.get_content_type()} body"
        text = _decode(data, charset, where, self.notes, hint=self.hint)
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def _filename(self, part: Message) -> str | None:
        for header, param in (("content-disposition", "filename"), ("content-type", "name")):
            value = part.get_param(param, header=header)
            if value is None:
                continue
            if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded latin-1 text)
                charset, _, text = value
                name = _decode(
                    str(text).encode("latin-1", "replace"), charset or None, "filename", self.notes
                )
            else:
                name = _decode_header(str(value), "filename", self.notes, self.hint)
            name = name.strip().strip('"')
            if name:
                return name
        return None

    def _attachment(self, part: Message, ctype: str, disposition: str, filename: str | None) -> None:
        content = self._payload(part)
        index = len(self.attachments) + 1
        if filename is None and ctype == "message/rfc822":
            inner = part.get_payload()
            subject = ""
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                subject = _decode_header(inner[0].get("Subject"), "Subject", self.notes, self.hint)
            filename = (subject or f"message-{index}")[:100] + ".eml"
        sniffed = _sniff(content, ctype, filename or "")
        extension = mimetypes.guess_extension(sniffed) or ".bin"
        safe_name = sanitise_filename(filename or "", f"attachment-{index}{extension}")
        content_id = part.get("Content-ID")
        cid = str(content_id).strip().strip("<>").strip() if content_id else None
        inline = disposition == "inline" or (disposition == "" and cid is not None)
        size = len(content)
        skipped = None
        if size > self.cap:
            skipped = f"over the size cap: {size} bytes > {self.cap} bytes"
            content = b""
            self.notes.defect(f"attachment {safe_name!r} skipped: {skipped}")
        self.attachments.append(
            ParsedAttachment(
                filename=safe_name,
                content_type=sniffed,
                size=size,
                content=content,
                inline=inline,
                content_id=cid or None,
                declared_type=ctype,
                skipped=skipped,
            )
        )


def _decode_header_8bit(value: str, name: str, notes: _Notes, hint: str | None) -> str:
    if value.isascii():
        return value
    try:
        return _decode(value.encode("ascii", "surrogateescape"), None, f"{name} header", notes, hint=hint)
    except UnicodeEncodeError:
        return value


def _unflow(text: str, part: Message) -> str:
    """RFC 3676 format=flowed: join soft-broken lines so the reply reads as written."""
    if str(part.get_param("format") or "").lower() != "flowed":
        return text
    delsp = str(part.get_param("delsp") or "").lower() == "yes"
    out: list[str] = []
    buffer = ""
    for line in text.split("\n"):
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if line.endswith(" ") and line != "-- ":
            buffer += line[:-1] if delsp else line
            continue
        out.append(buffer + line)
        buffer = ""
    if buffer:
        out.append(buffer)
    return "\n".join(out)
