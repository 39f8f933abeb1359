"""Text normalisation and analysis shared by the knowledge index and its queries.

Articles and queries must go through exactly the same steps, otherwise a term indexed one way is
looked up another way and silently never matches. The steps are:

1. ``normalize``: NFKC (full-width letters, digits and punctuation become half-width), traditional
   Chinese to simplified (zhconv), case folding, and every punctuation or symbol character becomes a
   space. Apostrophes are dropped first so that "don't" and "card's" stay one word.
2. ``analyze``: Chinese runs are segmented with jieba (precise mode, no HMM so that a typo does not
   invent a new "word"), Latin runs are split on non-alphanumerics and stemmed, stop words are removed,
   and Chinese runs also yield character bigrams so that typos and words jieba does not know still
   share most of their terms with the indexed text.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import jieba
import zhconv

# A bigram term carries this prefix so it never collides with a jieba word of the same two characters:
# the two are different evidence and are weighted separately.
BIGRAM_PREFIX = "~"

_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
)

_APOSTROPHES = str.maketrans({"'": None, "\u2019": None, "\u2018": None, "`": None})
# Hyphens and dots inside words ("wi-fi", "e-mail", "u.s.") are folded so both spellings meet.
_INNER_JOINERS = re.compile(r"(?<=[0-9a-z])[-.](?=[0-9a-z])")
_LATIN_WORD = re.compile(r"[0-9a-z]+")

# Deliberately short: in short support questions "what", "my", "can", "not" carry the intent
# ("what is your name" vs "change my name"), and IDF already discounts frequent words.
ENGLISH_STOP_WORDS: frozenset[str] = frozenset(
    "a an the of to is are am be been please hi hello hey thanks thank dear".split()
)

CHINESE_STOP_WORDS: frozenset[str] = frozenset(
    """
    的 了 吗 呢 吧 啊 呀 哦 噢 嘛 啦 哈 嗯 么 着 过 得 地 之 和 与 及 或 是 在 有 就 都 也 还 又 很 太 更
    我 你 您 他 她 它 我们 你们 他们 咱们 自己 这 那 这个 那个 这些 那些 这样 那样 这里 那里 一下 一个
    请问 请 麻烦 谢谢 你好 您好 哈喽 怎么 怎么办 怎么样 怎样 如何 什么 为什么 为啥 咋 咋办 啥 哪 哪里
    哪儿 能 能不能 可以 可不可以 要 想 会 应该 一直 总是 突然 现在 今天 刚才 已经 还是 但是 可是 就是
    因为 所以 然后 如果 老是 下 个 把 被 让 给 对 从 到 吗 呐 啦 嘞 咯 哎 诶 唉
    """.split()
)

DEFAULT_STOP_WORDS: frozenset[str] = ENGLISH_STOP_WORDS | CHINESE_STOP_WORDS


_CJK_CLASS = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJK_RANGES)
_CJK_RUN = re.compile(f"([{_CJK_CLASS}]+)")
# Punctuation, symbols and controls carry no meaning for matching; "_" is \w but is punctuation here.
_NOT_WORD = re.compile(r"[^\w\s]|_")


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """Width, script, case and punctuation folding; whitespace collapsed to single spaces."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    if _CJK_RUN.search(text):
        text = zhconv.convert(text, "zh-cn")
    text = text.casefold()
    text = _INNER_JOINERS.sub("", text)
    return " ".join(_NOT_WORD.sub(" ", text).split())


_VOWELS = frozenset("aeiouy")


def _ends_double_consonant(word: str) -> bool:
    return len(word) >= 2 and word[-1] == word[-2] and word[-1] not in _VOWELS and word[-1] not in "lsz"


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper: enough to make plurals, tenses and -ly/-ation forms meet.

    Full Porter would be more thorough; this one is deliberately conservative (short words are left
    alone) because an over-eager stemmer merges unrelated words, which costs more than it gains on
    short customer queries.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    w = word
    if w.endswith("ication") and len(w) > 8:
        w = w[:-6]  # verification -> verifi, meeting verify -> verifi
    elif w.endswith("ation") and len(w) > 7:
        w = w[:-5] + "ate"  # activation -> activate -> activat below
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        w = w[:-1]
    if w.endswith("ing") and len(w) > 5:
        w = w[:-3]
        if _ends_double_consonant(w):
            w = w[:-1]
    elif w.endswith("ied") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("ed") and len(w) > 4 and not w.endswith("eed"):
        w = w[:-2]
        if _ends_double_consonant(w):
            w = w[:-1]
    elif w.endswith("ly") and len(w) > 5:
        w = w[:-2]
    elif w.endswith("al") and len(w) > 6:
        w = w[:-2]  # withdrawal -> withdraw, arrival -> arriv(e)
    if w.endswith("y") and len(w) > 3 and w[-2] not in _VOWELS:
        w = w[:-1] + "i"
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


class _Segmenter:
    """One private jieba tokenizer, loaded once on first use.

    A private instance keeps our dictionary independent of anyone else's ``jieba.add_word`` calls,
    which would otherwise change how already indexed articles would segment.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokenizer: jieba.Tokenizer | None = None

    def tokenizer(self) -> jieba.Tokenizer:
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    jieba.setLogLevel(logging.WARNING)
                    tokenizer = jieba.Tokenizer()
                    tokenizer.initialize()
                    self._tokenizer = tokenizer
        return self._tokenizer

    def cut(self, text: str) -> list[str]:
        return [w for w in self.tokenizer().lcut(text, HMM=False) if not w.isspace()]


_SEGMENTER = _Segmenter()


def warm_up() -> None:
    """Load jieba's dictionary now (about a second) rather than inside the first customer query."""
    _SEGMENTER.tokenizer()
    analyze("预热 warm up")


def _runs(text: str) -> Iterable[tuple[bool, str]]:
    """Split normalised text into maximal CJK and non-CJK runs."""
    # re.split with a capturing group alternates: non-CJK, CJK, non-CJK, ...
    for i, run in enumerate(_CJK_RUN.split(text)):
        if run:
            yield i % 2 == 1, run


@dataclass(frozen=True, slots=True)
class Analysis:
    """What one text becomes: index terms, and a readable form for fuzzy scoring."""

    terms: tuple[str, ...]
    # Segmented surface words joined by spaces: rapidfuzz's token scorers need Chinese segmented
    # first, otherwise a whole sentence is one token.
    fuzzy_text: str

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(t for t in self.terms if not t.startswith(BIGRAM_PREFIX))

    @property
    def bigrams(self) -> tuple[str, ...]:
        return tuple(t for t in self.terms if t.startswith(BIGRAM_PREFIX))


def _bigrams(chars: str) -> list[str]:
    if len(chars) == 1:
        return [BIGRAM_PREFIX + chars]
    return [BIGRAM_PREFIX + chars[i : i + 2] for i in range(len(chars) - 1)]


@lru_cache(maxsize=8192)
def _analyze_cached(text: str, stop_words: frozenset[str]) -> Analysis:
    norm = normalize(text)
    terms: list[str] = []
    grams: list[str] = []
    surface: list[str] = []
    for cjk, run in _runs(norm):
        if cjk:
            # Bigrams are taken over the run with stop words cut out, so "打印机的墨" gives 打印,
            # 印机, 机墨 rather than the noise bigrams around "的".
            kept = ""
            for word in _SEGMENTER.cut(run):
                surface.append(word)
                if word in stop_words:
                    if kept:
                        grams.extend(_bigrams(kept))
                    kept = ""
                    continue
                terms.append(word)
                kept += word
            if kept:
                grams.extend(_bigrams(kept))
        else:
            for word in _LATIN_WORD.findall(run):
                surface.append(word)
                if word in stop_words:
                    continue
                terms.append(stem(word))
    return Analysis(terms=tuple(terms + grams), fuzzy_text=" ".join(surface))


def analyze(text: str, stop_words: frozenset[str] = DEFAULT_STOP_WORDS) -> Analysis:
    """Normalise, segment, stem and drop stop words; Chinese runs also give character bigrams."""
    return _analyze_cached(text, stop_words)


def analyze_terms(texts: Sequence[str], stop_words: frozenset[str] = DEFAULT_STOP_WORDS) -> list[str]:
    """All terms of several texts, in order (duplicates kept: they are term frequencies)."""
    out: list[str] = []
    for text in texts:
        out.extend(analyze(text, stop_words).terms)
    return out


def normalize_stop_words(words: Iterable[str]) -> frozenset[str]:
    """Stop words as an admin types them, folded the same way as text (case, width, script)."""
    return frozenset(w for w in (normalize(x) for x in words) if w)
