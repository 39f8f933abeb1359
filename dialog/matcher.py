"""Knowledge article matching: an in-memory index that ranks articles for a customer's message.

How a query is scored (all of it in-process and bounded, because rapidfuzz and this Python code hold
the GIL and run on the event loop's thread):

1. The query is analysed like the articles (``dialog.textnorm``), then expanded: synonyms from the
   settings, and typo corrections for Latin words the index does not know (rapidfuzz over the
   vocabulary words that share the first letter).
2. Candidates come from an inverted index with BM25F scoring (per-field term frequencies, weighted by
   the settings' field weights, saturated, IDF-weighted). Very common terms are only looked up for
   the candidates that rarer terms found, so a query's work stays bounded as the KB grows.
3. The best candidates get three more signals: how much of the query's IDF mass the article covers,
   how well the query overlaps its single best title/phrasing/keyword ("unit"), and a rapidfuzz score
   against the best units' text. The weighted blend is the 0-100 score; category boosts multiply it.

Not thread-safe by itself for writers racing readers: a lock serialises them, so calling ``match``
from a worker thread while the event loop upserts is fine.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from dialog.matcher_settings import FIELD_NAMES, CompiledSettings, MatchSettings
from dialog.textnorm import BIGRAM_PREFIX, Analysis, analyze, warm_up

__all__ = ["Article", "Explanation", "KnowledgeMatcher", "Match", "MatchSettings", "warm_up"]

_TITLE, _PHRASINGS, _KEYWORDS, _SYNONYMS, _BODY = range(len(FIELD_NAMES))

# BM25F constants: per-field length normalisation (phrasings of an intent can be hundreds of
# utterances, a keyword list is short and its length says nothing) and the usual k1.
_K1 = 1.2
_B = (0.5, 0.4, 0.2, 0.2, 0.75)

# A Chinese bigram is weaker evidence than a segmented word (it overlaps its neighbours).
_BIGRAM_WEIGHT = 0.5
_SYNONYM_WEIGHT = 0.8
_TYPO_WEIGHT = 0.85
_TYPO_MIN_LEN = 4
_TYPO_CUTOFF = 80.0

# Work bounds per query: postings walked in full before common terms switch to candidate lookups,
# candidates that get the detailed signals, and units per candidate that go to rapidfuzz.
_POSTING_BUDGET = 1200
_CANDIDATES = 24
_FUZZY_CANDIDATES = 12
_FUZZY_UNITS_PER_DOC = 6
# A query term this much rarer than the query's rarest matched term no longer adds new units.
_SEED_FRACTION = 0.3
# Keywords and synonyms are fragments: a query that merely contains one is weaker evidence than a
# query that closely restates a title or a customer phrasing.
_FRAGMENT_FACTOR = 0.8

# How the signals blend into the 0-100 score, chosen on StackFAQ/BANKING77/CLINC150 (bench/
# match_quality.py). Coverage ranks worse than the others and adds nothing on top of them, so it is
# kept for the explanation only.
_W_BM25 = 0.30
_W_COVERAGE = 0.0
_W_UNIT = 0.40
_W_FUZZY = 0.30


@dataclass(frozen=True)
class Article:
    """An article as the matcher sees it; the knowledge base owns versions, counters and storage."""

    id: str
    title: str
    body: str = ""
    locale: str = "zh-CN"
    category: str = ""
    tags: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()
    phrasings: tuple[str, ...] = ()
    published: bool = True

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Article:
        """From a stored or imported article (``id`` or ``slug`` or ``_id``; lists become tuples)."""
        ident = doc.get("id") or doc.get("slug") or doc.get("_id")
        if not ident:
            raise ValueError("article has no id or slug")
        return cls(
            id=str(ident),
            title=str(doc.get("title", "")),
            body=str(doc.get("body", "")),
            locale=str(doc.get("locale", "zh-CN")),
            category=str(doc.get("category", "")),
            tags=tuple(doc.get("tags", ())),
            keywords=tuple(doc.get("keywords", ())),
            synonyms=tuple(doc.get("synonyms", ())),
            phrasings=tuple(doc.get("phrasings", ())),
            published=bool(doc.get("published", True)),
        )


@dataclass(frozen=True)
class Explanation:
    """Why an article matched, for the admin "try it" screen and for debugging bad suggestions."""

    best_field: str  # field of the unit that overlapped the query most
    best_text: str  # that title, phrasing or keyword
    matched_terms: tuple[str, ...]  # query terms (after expansion) found anywhere in the article
    missing_terms: tuple[str, ...]  # query terms found nowhere in it
    fields: Mapping[str, tuple[str, ...]]  # field -> query terms found in that field
    expansions: Mapping[str, str]  # term used -> why ("synonym of X", "typo of X")
    components: Mapping[str, float]  # each signal in 0-1, plus the category boost

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_field": self.best_field,
            "best_text": self.best_text,
            "matched_terms": list(self.matched_terms),
            "missing_terms": list(self.missing_terms),
            "fields": {k: list(v) for k, v in self.fields.items()},
            "expansions": dict(self.expansions),
            "components": dict(self.components),
        }


@dataclass(frozen=True)
class Match:
    article_id: str
    title: str
    score: float  # 0-100
    locale: str
    category: str
    explanation: Explanation

    def to_dict(self) -> dict[str, Any]:
        return {
            "article_id": self.article_id,
            "title": self.title,
            "score": round(self.score, 2),
            "locale": self.locale,
            "category": self.category,
            "explanation": self.explanation.to_dict(),
        }


def _language(locale: str) -> str:
    """Articles and queries meet on the primary language: "zh-CN", "zh_cn" and "zh" are one index."""
    return locale.replace("_", "-").split("-", 1)[0].casefold() or "und"


@dataclass(slots=True)
class _Unit:
    """One short piece of an article compared with the whole query: its title, a phrasing, a keyword."""

    field_idx: int
    text: str
    fuzzy_text: str
    terms: frozenset[str]
    norm_epoch: int = -1
    idf_mass: float = 0.0


@dataclass(slots=True)
class _Doc:
    key: int
    article: Article
    category: str
    field_len: tuple[int, ...]
    term_fields: dict[str, tuple[int, ...]]  # term -> tf per field
    units: list[_Unit]
    unit_postings: dict[str, list[int]]  # term -> indexes into units
    norms: tuple[float, ...] = ()  # BM25 length normalisation per field, valid for norm_epoch
    norm_epoch: int = -1


@dataclass(slots=True)
class _QueryTerm:
    term: str
    weight: float
    origin: str  # the analysed query term this one stands for
    reason: str = ""  # empty for the query's own terms


@dataclass(slots=True)
class _Query:
    analysis: Analysis
    terms: dict[str, _QueryTerm]
    origins: dict[str, float]  # origin term -> its weight in the query


@dataclass(slots=True)
class _LanguageIndex:
    """One language's articles. IDF is per language: Chinese and English vocabularies never meet."""

    docs: dict[int, _Doc] = field(default_factory=dict)
    postings: dict[str, dict[int, tuple[int, ...]]] = field(default_factory=dict)
    # Latin vocabulary by first letter, the typo-correction search space.
    vocab_by_initial: dict[str, set[str]] = field(default_factory=dict)
    vocab_lists: dict[str, list[str]] = field(default_factory=dict)
    field_len_sum: list[int] = field(default_factory=lambda: [0] * len(FIELD_NAMES))
    # Cached IDF masses of units are recomputed when the collection size moved enough to matter.
    epoch: int = 0
    epoch_size: int = 0

    def idf(self, term: str) -> float:
        n = len(self.docs)
        df = len(self.postings.get(term, ()))
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def avg_len(self) -> tuple[float, ...]:
        n = max(len(self.docs), 1)
        return tuple(max(s / n, 1.0) for s in self.field_len_sum)

    def add(self, doc: _Doc) -> None:
        self.docs[doc.key] = doc
        for term, tfs in doc.term_fields.items():
            self.postings.setdefault(term, {})[doc.key] = tfs
            if term[0].isascii() and term.isalpha() and len(term) >= _TYPO_MIN_LEN:
                bucket = self.vocab_by_initial.setdefault(term[0], set())
                if term not in bucket:
                    bucket.add(term)
                    self.vocab_lists.pop(term[0], None)
        for i, length in enumerate(doc.field_len):
            self.field_len_sum[i] += length
        self._maybe_new_epoch()

    def discard(self, key: int) -> None:
        doc = self.docs.pop(key, None)
        if doc is None:
            return
        for term in doc.term_fields:
            posting = self.postings.get(term)
            if posting is None:
                continue
            posting.pop(key, None)
            if not posting:
                del self.postings[term]
                bucket = self.vocab_by_initial.get(term[0])
                if bucket is not None and term in bucket:
                    bucket.discard(term)
                    self.vocab_lists.pop(term[0], None)
        for i, length in enumerate(doc.field_len):
            self.field_len_sum[i] -= length
        self._maybe_new_epoch()

    def _maybe_new_epoch(self) -> None:
        n = len(self.docs)
        if abs(n - self.epoch_size) > max(2, self.epoch_size // 20):
            self.epoch += 1
            self.epoch_size = n

    def vocabulary(self, initial: str) -> list[str]:
        words = self.vocab_lists.get(initial)
        if words is None:
            words = sorted(self.vocab_by_initial.get(initial, ()))
            self.vocab_lists[initial] = words
        return words

    def unit_idf_mass(self, unit: _Unit) -> float:
        if unit.norm_epoch != self.epoch:
            unit.idf_mass = sum(self.idf(t) * _term_weight(t) for t in unit.terms)
            unit.norm_epoch = self.epoch
        return unit.idf_mass


def _term_weight(term: str) -> float:
    return _BIGRAM_WEIGHT if term.startswith(BIGRAM_PREFIX) else 1.0


class KnowledgeMatcher:
    """Ranks published articles for a query; updated in place as articles change."""

    def __init__(self, settings: MatchSettings | None = None) -> None:
        self._settings = settings or MatchSettings()
        self._lock = threading.RLock()
        self._indexes: dict[str, _LanguageIndex] = {}
        self._where: dict[str, tuple[str, int]] = {}  # article id -> (language, key)
        self._articles: dict[str, Article] = {}
        self._next_key = 0

    # -- settings ---------------------------------------------------------------------------------

    @property
    def settings(self) -> MatchSettings:
        return self._settings

    def set_settings(self, settings: MatchSettings) -> None:
        """Make ``settings`` current. The index holds no stop words, so no rebuild is ever needed."""
        settings.compiled()
        self._settings = settings

    # -- index maintenance --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._where

    def get(self, article_id: str) -> Article | None:
        return self._articles.get(article_id)

    def articles(self) -> list[Article]:
        """Every indexed (published) article, as a snapshot."""
        with self._lock:
            return list(self._articles.values())

    def upsert(self, article: Article) -> None:
        """Add or replace one article; an unpublished article is removed from the index."""
        if not article.published:
            self.remove(article.id)
            return
        # Analysis (jieba) happens outside the lock: it is the slow part.
        language = _language(article.locale)
        with self._lock:
            key = self._next_key
            self._next_key += 1
        doc = _build_doc(key, article)
        with self._lock:
            self._remove_locked(article.id)
            self._indexes.setdefault(language, _LanguageIndex()).add(doc)
            self._where[article.id] = (language, key)
            self._articles[article.id] = article

    def remove(self, article_id: str) -> bool:
        with self._lock:
            return self._remove_locked(article_id)

    def _remove_locked(self, article_id: str) -> bool:
        where = self._where.pop(article_id, None)
        if where is None:
            return False
        self._articles.pop(article_id, None)
        language, key = where
        self._indexes[language].discard(key)
        return True

    def rebuild(self, articles: Iterable[Article]) -> None:
        """Replace the whole index (start-up, import). Built aside, then swapped in one step."""
        fresh = KnowledgeMatcher(self._settings)
        for article in articles:
            fresh.upsert(article)
        with self._lock:
            self._indexes = fresh._indexes
            self._where = fresh._where
            self._articles = fresh._articles
            self._next_key = fresh._next_key

    # -- matching ------------------------------------------------------------------------------------

    def match(
        self,
        query: str,
        *,
        locale: str | None = None,
        settings: MatchSettings | None = None,
        limit: int | None = None,
        min_score: float | None = None,
    ) -> list[Match]:
        """Best articles first. By default only those at or above the threshold, at most
        ``max_suggestions``; the admin "try it" passes ``min_score=0`` to see everything scored."""
        settings = settings or self._settings
        compiled = settings.compiled()
        limit = settings.max_suggestions if limit is None else limit

        with self._lock:
            if locale is not None:
                index = self._indexes.get(_language(locale))
                indexes = [index] if index is not None else []
            else:
                indexes = list(self._indexes.values())
            results: list[Match] = []
            for index in indexes:
                results.extend(_match_in(index, query, compiled, limit))
        if min_score is None:
            results = [m for m in results if m.score >= settings.threshold_for(m.locale)]
        else:
            results = [m for m in results if m.score >= min_score]
        results.sort(key=lambda m: (-m.score, m.article_id))
        return results[:limit]


def _build_doc(key: int, article: Article) -> _Doc:
    # Stop words are not removed from the index, only from queries: then an admin's change of stop
    # words (or a proposed one in "try it") takes effect at once without re-indexing.
    stop: frozenset[str] = frozenset()
    per_field: list[list[Analysis]] = [
        [analyze(article.title, stop)],
        [analyze(p, stop) for p in article.phrasings],
        [analyze(k, stop) for k in (*article.keywords, *article.tags)],
        [analyze(s, stop) for s in article.synonyms],
        [analyze(article.body, stop)] if article.body else [],
    ]
    counts: list[Counter[str]] = [Counter(t for a in analyses for t in a.terms) for analyses in per_field]
    term_fields: dict[str, tuple[int, ...]] = {}
    for term in set().union(*counts):
        term_fields[term] = tuple(c.get(term, 0) for c in counts)
    texts: list[Sequence[str]] = [
        [article.title],
        article.phrasings,
        (*article.keywords, *article.tags),
        article.synonyms,
    ]
    units: list[_Unit] = []
    unit_postings: dict[str, list[int]] = {}
    for field_idx in (_TITLE, _PHRASINGS, _KEYWORDS, _SYNONYMS):
        for text, analysis in zip(texts[field_idx], per_field[field_idx], strict=True):
            if not analysis.terms:
                continue
            terms = frozenset(analysis.terms)
            for term in terms:
                unit_postings.setdefault(term, []).append(len(units))
            units.append(_Unit(field_idx, text, analysis.fuzzy_text, terms))
    return _Doc(
        key=key,
        article=article,
        category=analyze(article.category, stop).fuzzy_text if article.category else "",
        field_len=tuple(sum(counts[i].values()) for i in range(len(FIELD_NAMES))),
        term_fields=term_fields,
        units=units,
        unit_postings=unit_postings,
    )


def _prepare_query(index: _LanguageIndex, text: str, compiled: CompiledSettings) -> _Query:
    analysis = analyze(text, compiled.stop_words)
    terms: dict[str, _QueryTerm] = {}
    origins: dict[str, float] = {}
    for term in analysis.terms:
        weight = _term_weight(term)
        origins[term] = weight
        terms[term] = _QueryTerm(term, weight, term)

    def add(term: str, weight: float, origin: str, reason: str) -> None:
        current = terms.get(term)
        if current is None or current.weight < weight:
            terms[term] = _QueryTerm(term, weight, origin, reason)

    words = set(analysis.words)
    for word in sorted(words):
        for rule in compiled.rules_by_term.get(word, ()):
            if rule.trigger <= words:
                origin = min(rule.trigger)
                for expansion in rule.expansion:
                    add(expansion, origins[origin] * _SYNONYM_WEIGHT, origin, f"synonym of {origin}")
    for word in analysis.words:
        if word in index.postings or not word.isascii() or not word.isalpha() or len(word) < _TYPO_MIN_LEN:
            continue
        for fixed, similarity, _ in process.extract(
            word,
            index.vocabulary(word[0]),
            scorer=fuzz.ratio,
            processor=None,  # both sides are already analysed terms
            limit=2,
            score_cutoff=_TYPO_CUTOFF,
        ):
            add(fixed, _TYPO_WEIGHT * similarity / 100.0, word, f"typo of {word}")
    return _Query(analysis, terms, origins)


def _match_in(index: _LanguageIndex, text: str, compiled: CompiledSettings, limit: int) -> list[Match]:
    if not index.docs:
        return []
    query = _prepare_query(index, text, compiled)
    if not query.terms:
        return []
    weights = compiled.weights
    avg = index.avg_len()
    idf = {t: index.idf(t) for t in query.terms}
    origin_idf = {o: index.idf(o) * w for o, w in query.origins.items()}
    origin_mass = sum(origin_idf.values()) or 1.0

    epoch = index.epoch
    w0, w1, w2, w3, w4 = weights

    def bm25(qt: _QueryTerm, doc: _Doc, tfs: tuple[int, ...]) -> float:
        # The hottest loop of a query: unrolled over the five fields, length norms cached per epoch.
        if doc.norm_epoch != epoch:
            doc.norms = tuple(1.0 / (1.0 - _B[i] + _B[i] * doc.field_len[i] / avg[i]) for i in range(5))
            doc.norm_epoch = epoch
        n = doc.norms
        tfw = (
            w0 * tfs[0] * n[0]
            + w1 * tfs[1] * n[1]
            + w2 * tfs[2] * n[2]
            + w3 * tfs[3] * n[3]
            + w4 * tfs[4] * n[4]
        )
        return qt.weight * idf[qt.term] * tfw / (tfw + _K1)

    # Candidate generation: rare terms first over their whole posting lists; once the budget is
    # spent, the remaining (common) terms are only looked up for the candidates already found.
    ordered = sorted(query.terms.values(), key=lambda qt: len(index.postings.get(qt.term, ())))
    scores: dict[int, float] = {}
    walked = 0
    deferred: list[_QueryTerm] = []
    for qt in ordered:
        posting = index.postings.get(qt.term)
        if not posting:
            continue
        if walked and walked + len(posting) > _POSTING_BUDGET:
            deferred.append(qt)
            continue
        walked += len(posting)
        for key, tfs in posting.items():
            scores[key] = scores.get(key, 0.0) + bm25(qt, index.docs[key], tfs)
    if not scores:
        return []
    pool = heapq.nlargest(_CANDIDATES * 3 if deferred else _CANDIDATES, scores.items(), key=lambda kv: kv[1])
    if deferred:
        rescored: dict[int, float] = {}
        for key, partial in pool:
            doc = index.docs[key]
            for qt in deferred:
                found = doc.term_fields.get(qt.term)
                if found:
                    partial += bm25(qt, doc, found)
            rescored[key] = partial
        pool = heapq.nlargest(_CANDIDATES, rescored.items(), key=lambda kv: kv[1])

    origin_base = {o: index.idf(o) for o in query.origins}
    by_rarity = sorted(((qt, idf[qt.term]) for qt in query.terms.values()), key=lambda p: -p[1])
    scored = [
        _score_candidate(index, query, by_rarity, origin_base, origin_mass, key, raw) for key, raw in pool
    ]
    _add_fuzzy(query, scored)
    # Explanations cost more than scores: build them for the returned few only.
    best = heapq.nlargest(max(limit, 1), scored, key=lambda c: c.score(compiled))
    return [cand.finish(compiled) for cand in best]


@dataclass(slots=True)
class _Candidate:
    doc: _Doc
    bm25: float
    coverage: float
    unit_sim: float
    best_units: list[tuple[float, int]]  # (overlap, unit index), best first
    matched: dict[str, list[str]]  # field -> query terms
    missing: list[str]
    expansions: dict[str, str]
    fuzzy: float = 0.0

    def score(self, compiled: CompiledSettings) -> float:
        boost = compiled.category_boosts.get(self.doc.category, 1.0)
        blend = (
            _W_BM25 * self.bm25
            + _W_COVERAGE * self.coverage
            + _W_UNIT * self.unit_sim
            + _W_FUZZY * self.fuzzy
        )
        return min(100.0, 100.0 * blend * boost)

    def finish(self, compiled: CompiledSettings) -> Match:
        boost = compiled.category_boosts.get(self.doc.category, 1.0)
        score = self.score(compiled)
        best = self.doc.units[self.best_units[0][1]] if self.best_units else None
        found = sorted({t for terms in self.matched.values() for t in terms})
        explanation = Explanation(
            best_field=FIELD_NAMES[best.field_idx] if best else "body",
            best_text=best.text if best else "",
            matched_terms=tuple(_display(t) for t in found),
            missing_terms=tuple(_display(t) for t in self.missing),
            fields={k: tuple(_display(t) for t in sorted(v)) for k, v in self.matched.items()},
            expansions=dict(self.expansions),
            components={
                "bm25": round(self.bm25, 4),
                "coverage": round(self.coverage, 4),
                "phrase": round(self.unit_sim, 4),
                "fuzzy": round(self.fuzzy, 4),
                "boost": boost,
            },
        )
        article = self.doc.article
        return Match(article.id, article.title, score, article.locale, article.category, explanation)


def _display(term: str) -> str:
    return "bigram:" + term[len(BIGRAM_PREFIX) :] if term.startswith(BIGRAM_PREFIX) else term


def _score_candidate(
    index: _LanguageIndex,
    query: _Query,
    ordered: Sequence[tuple[_QueryTerm, float]],
    base: Mapping[str, float],
    origin_mass: float,
    key: int,
    raw_bm25: float,
) -> _Candidate:
    doc = index.docs[key]
    credit: dict[str, float] = {}
    matched: dict[str, list[str]] = {}
    expansions: dict[str, str] = {}
    # unit index -> origin -> best credit within that unit
    unit_credit: dict[int, dict[str, float]] = {}
    seeding_floor = 0.0
    for qt, term_idf in ordered:
        tfs = doc.term_fields.get(qt.term)
        if tfs is None:
            continue
        if qt.weight > credit.get(qt.origin, 0.0):
            credit[qt.origin] = qt.weight
        if qt.reason:
            expansions[_display(qt.term)] = qt.reason
        for i, tf in enumerate(tfs):
            if tf:
                matched.setdefault(FIELD_NAMES[i], []).append(qt.term)
        units = doc.unit_postings.get(qt.term)
        if not units:
            continue
        # Terms come rarest first. A common word ("my", "的") may only add to units that a rarer
        # term already found: a unit sharing nothing but common words cannot be the best unit, and
        # skipping them keeps intents with hundreds of phrasings cheap.
        seeding = term_idf >= seeding_floor or not unit_credit
        if not seeding_floor:
            seeding_floor = term_idf * _SEED_FRACTION
        for u in units:
            per_origin = unit_credit.get(u)
            if per_origin is None:
                if not seeding:
                    continue
                per_origin = unit_credit[u] = {}
            if qt.weight > per_origin.get(qt.origin, 0.0):
                per_origin[qt.origin] = qt.weight
    coverage = sum(base[o] * c for o, c in credit.items()) / origin_mass
    best_units: list[tuple[float, int]] = []
    epoch = index.epoch
    for u, per_origin in unit_credit.items():
        unit = doc.units[u]
        overlap = sum(base[o] * c for o, c in per_origin.items())
        mass = unit.idf_mass if unit.norm_epoch == epoch else index.unit_idf_mass(unit)
        dice = 2.0 * overlap / (origin_mass + mass)
        if unit.field_idx > _PHRASINGS:
            dice *= _FRAGMENT_FACTOR
        best_units.append((dice, u))
    best_units.sort(reverse=True)
    missing = sorted(o for o in query.origins if o not in credit)
    # BM25 normalised by the query's own IDF mass: 1.0 would be every term saturated in a top field.
    bm25 = min(1.0, raw_bm25 / origin_mass)
    return _Candidate(
        doc=doc,
        bm25=bm25,
        coverage=min(1.0, coverage),
        unit_sim=min(1.0, best_units[0][0]) if best_units else 0.0,
        best_units=best_units[:_FUZZY_UNITS_PER_DOC],
        matched=matched,
        missing=missing,
        expansions=expansions,
    )


def _add_fuzzy(query: _Query, candidates: list[_Candidate]) -> None:
    """rapidfuzz on the top candidates' best units only: the one step whose cost grows with text."""
    ranked = sorted(range(len(candidates)), key=lambda i: -(candidates[i].bm25 + candidates[i].unit_sim))[
        :_FUZZY_CANDIDATES
    ]
    choices: list[str] = []
    owners: list[int] = []
    for i in ranked:
        for _, u in candidates[i].best_units:
            choices.append(candidates[i].doc.units[u].fuzzy_text)
            owners.append(i)
    if not choices or not query.analysis.fuzzy_text:
        return
    for _, score, pos in process.extract(
        query.analysis.fuzzy_text,
        choices,
        scorer=fuzz.token_sort_ratio,
        processor=None,  # choices were normalised and segmented at index time, the query likewise
        limit=None,
        score_cutoff=30,
    ):
        cand = candidates[owners[pos]]
        cand.fuzzy = max(cand.fuzzy, score / 100.0)
