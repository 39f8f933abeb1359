"""Extract the visible reply from a plain-text mail body: no quoted history, no signature.

Clients mark the start of quoted history in many ways and many languages; we look for the first
such marker and keep what is above it. Markers, in the order they are tried at each line:

- separator lines wrapping a phrase: ``-----Original Message-----``, QQ/Foxmail
  ``------------------ 原始邮件 ------------------``, ``-------- Message d'origine --------``
  (forwarded messages too: ``full_text`` keeps them for the agent);
- attribution lines, possibly wrapped over up to three lines: Gmail ``On ... wrote:``, NetEase
  ``在 2023-05-04 15:39:57，"Name" <x@163.com> 写道：``, Gmail-zh ``... 于2023年5月4日周四 15:39写道：``,
  and their German, French, Polish, ... forms, plus the ``<date> ... <addr>:`` form;
- Outlook header blocks (``From:/Sent:/To:/Subject:`` in many languages, ``发件人:/发送时间:``
  with ASCII or full-width colons): at least two header lines, one of them the sender;
- mobile signatures ("Sent from my iPhone", "发自我的iPhone", "Get Outlook for iOS") and the
  ``-- `` signature delimiter;
- lines quoted with ``>``.

Quoted lines are dropped (with the unquoted lines glued under them: a long quoted line re-wrapped),
but unquoted text after a quote is kept, so interleaved and bottom-posted answers survive, also
below an ``On ... wrote:`` line. Mail that is nothing but history (a bare forward) is returned whole
rather than as an empty reply.
"""

from __future__ import annotations

import re

__all__ = ["extract_reply"]

# Verbs that end an attribution line ("On <date>, <name> wrote:").
_WROTE_VERBS = (
    r"wrote|writes|escribió|escreveu|a\s+écrit|écrit|ha\s+scritto|scrisse|schrieb|schreef|"
    r"skrev|skrev\s+følgende|kirjoitti|napisał(?:\(a\))?|napisała|написал(?:\(а\)|а)?|"
    r"írta|yazdı|έγραψε|kirjutas|rašė|rakstīja|написа|napsal(?:\(a\))?|schreef\s+het\s+volgende|"
    r"写道|寫道|寫到|来信|書きました|작성"
)
_ATTRIBUTION_VERB_END = re.compile(
    rf"(?:^|[\s,，>)\]\"'])(?:{_WROTE_VERBS})\s*[:：]?\s*-*\s*$", re.IGNORECASE
)
# Chinese clients glue the verb to the time: "于2023年5月4日周四 15:39写道："
_ATTRIBUTION_ZH = re.compile(r"(?:写道|寫道)\s*[:：]?\s*$")
# "30.09.2017, 18.30, "John" <a@b.com>:" and "tir. 18. apr. 2017 kl. 13:09 skrev X <a@b.com>:"
_ATTRIBUTION_ADDR_END = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+\s*>?\s*\)?\s*[:：]\s*$")
_HAS_DIGIT = re.compile(r"\d")
_DATE_OR_TIME = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)|(?<!\d)\d{1,2}[:.：]\d{2}(?!\d)")
_SENTENCE_END = re.compile(r"[.!?。！？;；]\s*$")
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")

# "-----Original Message-----", "------------------ 原始邮件 ------------------", ...
_WRAPPED_SEPARATOR = re.compile(r"^\s*[-_=*]{2,}\s*([^-_=*\s][^\n]{0,60}?)\s*[-_=*]{2,}\s*$")
_SEPARATOR_PHRASE = re.compile(
    r"original(?:\s+message)?|原始邮件|原始郵件|原邮件|邮件原文|oprindelig\s+besked|message\s+d'origine|"
    r"ursprüngliche\s+nachricht|originalnachricht|messaggio\s+originale|mensagem\s+original|"
    r"mensaje\s+original|oorspronkelijk\s+bericht|alkuperäinen\s+viesti|ursprungligt\s+meddelande|"
    r"opprinnelig\s+melding|исходное\s+сообщение|元のメッセージ|원본\s*메시지|reply\s+above\s+this\s+line|"
    r"^on\s.+wrote|forwarded\s+message|转发邮件|轉寄郵件|weitergeleitete\s+nachricht|message\s+transféré",
    re.IGNORECASE,
)
# Lines that are nothing but rule characters (left over above an Outlook block).
_RULE_LINE = re.compile(r"^\s*(?:[-_=*~—–]\s*){3,}$")

# Outlook-style header blocks. Each line: optional bold marker, keyword, optional space, colon.
_FROM_KEYS = (
    r"from|de|van|da|von|fra|från|lähettäjä|от|od|kimden|feladó|remetente|afzender|"
    r"发件人|發件人|寄件者|寄件人|差出人|보낸\s*사람"
)
_OTHER_KEYS = (
    r"sent|date|envoyé\s+le|envoyé|verzonden|inviato|gesendet|datum|dato|sendt|skickat|lähetetty|"
    r"enviado|enviada|data|fecha|gönderildi|tarih|отправлено|дата|"
    r"to|à|a|aan|an|til|till|vastaanottaja|para|per|címzett|кому|"
    r"cc|copie\s+à|copie|kopie|kopi|kopio|копия|"
    r"subject|objet|sujet|onderwerp|oggetto|betreff|emne|ämne|aihe|assunto|asunto|konu|тема|"
    r"message\s+du|"
    r"发送时间|發送時間|时间|時間|日期|傳送時間|寄件日期|收件人|收件者|抄送|副本|主题|主題|主旨|"
    r"送信日時|日付|宛先|件名|날짜|받는\s*사람|제목|참조"
)
_HEADER_LINE_TMPL = r"^\s*[*\[]?\s*(?:{keys})\s*[*\]]?\s*[:：]"
_FROM_LINE = re.compile(_HEADER_LINE_TMPL.format(keys=_FROM_KEYS), re.IGNORECASE)
_OTHER_LINE = re.compile(_HEADER_LINE_TMPL.format(keys=_OTHER_KEYS), re.IGNORECASE)

# Mobile-client signatures: the whole line, short, without sentence punctuation.
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(?:"
    r"sent\s+from\s+my\s+[^,.!?;:]{1,50}|sent\s+from\s+(?:outlook|mail|yahoo\s+mail|gmail)[^,!?;]{0,40}|"
    r"sent\s+(?:via|with)\s+[^,.!?;]{1,40}|get\s+outlook\s+for\s+\w+.{0,60}|"
    r"envoyé\s+(?:de|depuis|à\s+partir\s+de)\s+[^,!?;]{1,60}|gesendet\s+(?:von|mit)\s+[^,!?;]{1,60}|"
    r"von\s+meinem\s+[^,.!?;]{1,40}\s+gesendet|enviado\s+(?:desde|do)\s+(?:meu|mi)\s+[^,.!?;]{1,40}|"
    r"inviato\s+da(?:l)?\s+(?:mio\s+)?[^,.!?;]{1,40}|"
    r"发自我的\s*[^，。！？,]{1,30}|来自我的\s*[^，。！？,]{1,30}|從我的\s*[^，。！？,]{1,30}傳送|"
    r"发自\s*(?:网易邮箱|QQ邮箱|Foxmail|WPS邮箱|华为|小米|荣耀)[^，。！？,]{0,30}|"
    r"(?:iPhone|iPad)\s*から送信"
    r")\s*$",
    re.IGNORECASE,
)
_SIGNATURE_DELIMITER = re.compile(r"^(?:--|-- |—|__)\s*$")
_QUOTED = re.compile(r"^\s*>")

_MAX_HEADER_SPAN = 3  # attribution lines are wrapped over at most this many lines
_MAX_ATTRIBUTION_CHARS = 400


def extract_reply(text: str) -> str:
    """The visible reply: the new text above the quoted history, without signature, trimmed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = _find_history_start(lines)
    if cut is None:
        return _finish(_drop_quoted(lines))
    above = lines[:cut]
    span = _attribution_span(lines, cut)
    if span and _quote_follows(lines, cut + span):
        # "On ... wrote:" over a ">" block: text below the block is an interleaved or
        # bottom-posted answer, so read on after the quote up to the next marker.
        below = _drop_quoted(lines[cut + span :])
        inner = _find_history_start(below)
        below = below if inner is None else below[:inner]
        return _finish(_drop_quoted([*above, "", *below]))
    if not _has_content(above):
        # Only history (a forward, or a header block at the top): better the whole text than nothing.
        return _finish(_drop_quoted(lines))
    return _finish(_drop_quoted(above))


# -- marker search ---------------------------------------------------------------------------------


def _find_history_start(lines: list[str]) -> int | None:
    """Index of the first line that starts quoted history or a signature, or None."""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if _SIGNATURE_DELIMITER.match(line) or _MOBILE_SIGNATURE.match(stripped):
            return i
        if _is_separator(stripped):
            return i
        if _attribution_span(lines, i):
            return i
        if _outlook_block_at(lines, i):
            return i
    return None


def _is_separator(stripped: str) -> bool:
    m = _WRAPPED_SEPARATOR.match(stripped)
    if not m:
        return False
    phrase = m.group(1)
    return bool(_SEPARATOR_PHRASE.search(phrase))


def _attribution_span(lines: list[str], i: int) -> int:
    """How many lines an attribution starting at line i spans (0: none starts here).

    A wrapped attribution must not start at i if it could start at a later line of the same span:
    otherwise the last line of the reply ("... nibh.") would be glued to the header below it.
    """
    # Quoted lines count too: "> Le 29 avr. 2025 à 11:11, Chris <c@x> a écrit :" opens history.
    if not lines[i].strip():
        return 0
    for span in range(1, _MAX_HEADER_SPAN + 1):
        if i + span > len(lines):
            break
        chunk = lines[i : i + span]
        if span > 1 and not chunk[-1].strip():
            break
        joined = " ".join(part.strip() for part in chunk)
        if len(joined) > _MAX_ATTRIBUTION_CHARS:
            break
        if not _looks_like_attribution(joined, lines, i + span):
            continue
        if span > 1 and (
            _SENTENCE_END.search(lines[i])
            or (
                not _HAS_DIGIT.search(_ADDRESS.sub("", lines[i]))
                and any(_starts_attribution(lines, j, i + span) for j in range(i + 1, i + span))
            )
        ):
            return 0  # it starts later
        return span
    return 0


def _looks_like_attribution(joined: str, lines: list[str], after: int) -> bool:
    candidate = joined.lstrip("> ").strip()
    if not candidate:
        return False
    if _ATTRIBUTION_VERB_END.search(candidate) or _ATTRIBUTION_ZH.search(candidate):
        # A date in it, or quoted lines right after, tells an attribution from a sentence.
        return bool(_HAS_DIGIT.search(candidate)) or "@" in candidate or _quote_follows(lines, after)
    # "<date> <name> <addr>:" needs a real date or time, not just any digit ("订单 12345").
    return bool(_ATTRIBUTION_ADDR_END.search(candidate) and _DATE_OR_TIME.search(_ADDRESS.sub("", candidate)))


def _starts_attribution(lines: list[str], j: int, end: int) -> bool:
    # Strict: the later start must carry its own date; "<long@address> wrote:" alone does not.
    first = _ADDRESS.sub("", lines[j])
    joined = " ".join(p.strip() for p in lines[j:end])
    return bool(_HAS_DIGIT.search(first)) and _looks_like_attribution(joined, lines, end)


def _quote_follows(lines: list[str], start: int) -> bool:
    for line in lines[start:]:
        if line.strip():
            return _QUOTED.match(line) is not None
    return False


def _outlook_block_at(lines: list[str], i: int) -> bool:
    """Two or more header lines from i on (one continuation line allowed), one naming the sender."""
    if not (_FROM_LINE.match(lines[i]) or _OTHER_LINE.match(lines[i])):
        return False
    seen_from = False
    header_lines = 0
    gap = 0
    for line in lines[i : i + 8]:
        if _FROM_LINE.match(line):
            seen_from = True
            header_lines += 1
            gap = 0
        elif _OTHER_LINE.match(line):
            header_lines += 1
            gap = 0
        elif line.strip() and gap == 0 and header_lines:
            gap += 1  # a wrapped address: "From: Human Resources" / "<long@address>"
        else:
            break
    return seen_from and header_lines >= 2


# -- cleanup ---------------------------------------------------------------------------------------


def _drop_quoted(lines: list[str]) -> list[str]:
    """Remove ">" lines and the unquoted lines glued under them (a long quoted line re-wrapped)."""
    kept: list[str] = []
    in_quote = False
    for line in lines:
        if _QUOTED.match(line):
            in_quote = True
        elif in_quote and line.strip():
            continue
        else:
            in_quote = False
            kept.append(line)
    return kept


def _has_content(lines: list[str]) -> bool:
    return any(line.strip() and not _RULE_LINE.match(line) for line in lines)


def _finish(lines: list[str]) -> str:
    end = len(lines)
    while end and (not lines[end - 1].strip() or _RULE_LINE.match(lines[end - 1])):
        end -= 1
    out = [line.rstrip() for line in lines[:end]]
    # Collapse the blank runs left where quoted blocks were removed.
    collapsed: list[str] = []
    for line in out:
        if not line and collapsed and not collapsed[-1]:
            continue
        collapsed.append(line)
    return "\n".join(collapsed).strip()
