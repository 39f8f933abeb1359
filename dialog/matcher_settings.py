"""Admin-tunable knowledge matching settings, stored as one MongoDB document.

The settings are a frozen value: the admin "try it" screen builds a proposed copy and passes it to one
``match`` call, and saving it simply replaces the current value. What the matcher derives from them
(analysed synonym rules, folded stop words) is computed once per settings object and cached on it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from dialog.textnorm import DEFAULT_STOP_WORDS, analyze, normalize, normalize_stop_words

FIELD_NAMES: tuple[str, ...] = ("title", "phrasings", "keywords", "synonyms", "body")

# Generic after-sales equivalences, both directions are applied. Inflections need no entry here: the
# stemmer already joins them; these are for different words (and languages) with one meaning.
DEFAULT_SYNONYMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "打印机": ("printer", "印表机"),
        "路由器": ("router", "路由"),
        "wifi": ("无线", "无线网", "wlan", "wireless"),
        "退款": ("refund", "退钱"),
        "退货": ("退回", "return"),
        "保修": ("warranty", "质保", "保固"),
        "发票": ("invoice", "收据"),
        "快递": ("物流", "配送"),
        "掉线": ("断网", "断线", "离线", "offline"),
        "卡纸": ("paper jam", "夹纸"),
        "墨盒": ("ink cartridge", "墨水盒"),
        "墨水": ("ink",),
        "硒鼓": ("toner", "粉盒"),
        "驱动": ("driver",),
        "密码": ("password", "口令"),
        "开机": ("power on", "启动"),
        "遥控器": ("remote control",),
        "冰箱": ("fridge", "refrigerator"),
        "洗衣机": ("washing machine", "washer"),
        "空调": ("air conditioner",),
        "耳机": ("earphones", "headphones", "earbuds"),
        "蓝牙": ("bluetooth",),
        "固件": ("firmware",),
        "手机": ("phone", "mobile"),
        "换货": ("exchange", "更换"),
        "维修": ("repair", "修理", "送修"),
        "faulty": ("broken", "defective"),
    }
)

# Field weights: a phrasing is a question a customer actually asked, so it is the strongest evidence;
# the body is long and mentions many things in passing, so it counts least.
DEFAULT_FIELD_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"title": 1.0, "phrasings": 1.0, "keywords": 0.8, "synonyms": 0.6, "body": 0.25}
)


@dataclass(frozen=True, slots=True)
class SynonymRule:
    """When every trigger term is in the query, the expansion terms are looked up as well."""

    trigger: frozenset[str]
    expansion: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CompiledSettings:
    stop_words: frozenset[str]
    rules_by_term: Mapping[str, tuple[SynonymRule, ...]]
    weights: tuple[float, ...]  # in FIELD_NAMES order
    category_boosts: Mapping[str, float]


@dataclass(frozen=True)
class MatchSettings:
    """What an admin tunes. ``threshold`` is on the 0-100 score scale of ``Match.score``."""

    threshold: float = 48.0
    max_suggestions: int = 3
    field_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FIELD_WEIGHTS))
    synonyms: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(DEFAULT_SYNONYMS))
    stop_words: frozenset[str] = DEFAULT_STOP_WORDS
    category_boosts: Mapping[str, float] = field(default_factory=dict)
    # Chinese queries score lower than English ones for the same quality of match (short messages,
    # bigram evidence): measured on tests/data/zh_queries.json, 35 suggests for 63 of 72 queries with
    # no wrong article, where 48 suggests for 41.
    locale_thresholds: Mapping[str, float] = field(default_factory=lambda: {"zh-CN": 35.0})
    _compiled: list[CompiledSettings] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for value in (self.threshold, *self.locale_thresholds.values()):
            if not 0.0 <= float(value) <= 100.0:
                raise ValueError(f"threshold must be within 0-100, got {value}")
        if self.max_suggestions < 1:
            raise ValueError("max_suggestions must be at least 1")
        unknown = set(self.field_weights) - set(FIELD_NAMES)
        if unknown:
            raise ValueError(f"unknown fields in field_weights: {sorted(unknown)}")
        if any(w < 0 for w in self.field_weights.values()) or any(
            b <= 0 for b in self.category_boosts.values()
        ):
            raise ValueError("field weights must be >= 0 and category boosts > 0")
        # Freeze the containers too, so a settings object shared between requests cannot drift.
        object.__setattr__(self, "field_weights", MappingProxyType(dict(self.field_weights)))
        object.__setattr__(
            self, "synonyms", MappingProxyType({k: tuple(v) for k, v in self.synonyms.items()})
        )
        object.__setattr__(self, "stop_words", frozenset(self.stop_words))
        object.__setattr__(self, "category_boosts", MappingProxyType(dict(self.category_boosts)))
        object.__setattr__(
            self,
            "locale_thresholds",
            MappingProxyType({k: float(v) for k, v in self.locale_thresholds.items()}),
        )

    def threshold_for(self, locale: str) -> float:
        """The suggestion threshold for articles of `locale` ("zh", "zh-CN" and "zh_cn" are one)."""
        key = "zh-CN" if locale.lower().startswith("zh") else locale
        return self.locale_thresholds.get(key, self.threshold)

    def weight(self, field_name: str) -> float:
        return self.field_weights.get(field_name, DEFAULT_FIELD_WEIGHTS[field_name])

    def with_changes(self, **changes: Any) -> MatchSettings:
        """A copy with some values replaced (the admin's proposed settings)."""
        return replace(self, **changes)

    def compiled(self) -> CompiledSettings:
        """Derived lookup structures; built on first use because analysing synonyms loads jieba."""
        if not self._compiled:
            with _COMPILE_LOCK:
                if not self._compiled:
                    self._compiled.append(self._compile())
        return self._compiled[0]

    def _compile(self) -> CompiledSettings:
        stop_words = normalize_stop_words(self.stop_words)
        rules: dict[str, list[SynonymRule]] = {}
        for head, equivalents in self.synonyms.items():
            group = [head, *equivalents]
            analysed = [analyze(p, stop_words).words for p in group]
            for i, trigger in enumerate(analysed):
                if not trigger:
                    continue
                for j, expansion in enumerate(analysed):
                    if i != j and expansion:
                        rule = SynonymRule(frozenset(trigger), tuple(expansion))
                        rules.setdefault(min(trigger), []).append(rule)
        boosts = {normalize(k): v for k, v in self.category_boosts.items()}
        return CompiledSettings(
            stop_words=stop_words,
            rules_by_term=MappingProxyType({k: tuple(v) for k, v in rules.items()}),
            weights=tuple(self.weight(name) for name in FIELD_NAMES),
            category_boosts=MappingProxyType(boosts),
        )

    def to_doc(self) -> dict[str, Any]:
        """A MongoDB document (plain dicts and lists; stop words sorted for stable diffs)."""
        return {
            "threshold": self.threshold,
            "max_suggestions": self.max_suggestions,
            "field_weights": dict(self.field_weights),
            "synonyms": {k: list(v) for k, v in self.synonyms.items()},
            "stop_words": sorted(self.stop_words),
            "category_boosts": dict(self.category_boosts),
            "locale_thresholds": dict(self.locale_thresholds),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> MatchSettings:
        """Inverse of ``to_doc``; missing keys take their defaults, unknown ones (``_id``) are ignored."""
        known = {f.name for f in fields(cls) if f.init}
        values = {k: v for k, v in doc.items() if k in known}
        if "stop_words" in values:
            values["stop_words"] = frozenset(values["stop_words"])
        if "threshold" in values:
            values["threshold"] = float(values["threshold"])
        if "max_suggestions" in values:
            values["max_suggestions"] = int(values["max_suggestions"])
        return cls(**values)


_COMPILE_LOCK = threading.Lock()
