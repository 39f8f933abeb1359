"""The knowledge base: articles in MongoDB (`articles`, versions in `article_versions`), an in-memory
`KnowledgeMatcher` index kept in step with them, and the admin-tunable matching settings.

Every change bumps a version counter; other gateway processes notice it on their next refresh and
reload, so an edit or a new threshold takes effect everywhere without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from dialog.matcher import Article, KnowledgeMatcher, Match, MatchSettings
from ticket_core.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

Db = AsyncDatabase[dict[str, Any]]
LOCALES = ("zh-CN", "en")
SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
LIST_FIELDS = ("tags", "keywords", "synonyms", "phrasings")
VERSION_KEY = "kb_version"
SETTINGS_KEY = "matching"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Suggestion:
    article_id: str
    title: str
    score: float
    url: str
    summary: str
    category: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.article_id,
            "title": self.title,
            "score": round(self.score, 2),
            "url": self.url,
            "summary": self.summary,
            "category": self.category,
        }


def summary_of(body: str, limit: int = 120) -> str:
    """The first sentence-ish of a Markdown body, as plain text."""
    text = re.sub(r"[#>*_`\[\]()!|-]+", " ", body)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clean_article(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an article from the API or an import; InvalidInput names each bad field."""
    errors: dict[str, str] = {}
    ident = str(raw.get("id") or raw.get("slug") or "").strip()
    if not SLUG_RE.match(ident):
        errors["id"] = "must be 1-100 letters, digits, '-', '_' or '.'"
    title = str(raw.get("title") or "").strip()
    if not title:
        errors["title"] = "is required"
    elif len(title) > 300:
        errors["title"] = "is longer than 300 characters"
    locale = str(raw.get("locale") or "zh-CN")
    if locale not in LOCALES:
        errors["locale"] = f"must be one of {', '.join(LOCALES)}"
    body = raw.get("body", "")
    if not isinstance(body, str):
        errors["body"] = "must be text"
    elif len(body) > 200_000:
        errors["body"] = "is longer than 200000 characters"
    lists: dict[str, list[str]] = {}
    for name in LIST_FIELDS:
        value = raw.get(name, [])
        if isinstance(value, str):
            value = [v for v in re.split(r"[,;，；\n]", value)]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            errors[name] = "must be a list of strings"
            continue
        lists[name] = [v.strip() for v in value if v.strip()][:500]
    published = raw.get("published", True)
    if isinstance(published, str):
        published = published.strip().lower() not in ("false", "0", "no", "")
    if errors:
        raise InvalidInput("the article has invalid fields", code="invalid_fields", fields=errors)
    return {
        "_id": ident,
        "title": title,
        "body": body,
        "locale": locale,
        "category": str(raw.get("category") or "").strip(),
        **lists,
        "published": bool(published),
    }


def _to_article(doc: Mapping[str, Any]) -> Article:
    return Article.from_doc({**doc, "id": doc["_id"]})


class KnowledgeBase:
    def __init__(self, db: Db, *, public_url: str, matcher: KnowledgeMatcher | None = None) -> None:
        self._db = db
        self.matcher = matcher or KnowledgeMatcher()
        self._public_url = public_url.rstrip("/")
        self._version = -1
        self._reload_lock = asyncio.Lock()

    # -- loading and refreshing -----------------------------------------------------------------------

    async def _current_version(self) -> int:
        doc = await self._db.counters.find_one({"_id": VERSION_KEY})
        return int(doc["seq"]) if doc else 0

    async def _bump_version(self) -> None:
        doc = await self._db.counters.find_one_and_update(
            {"_id": VERSION_KEY}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        # our own index is already current: remember the version so refresh does not reload it
        if doc is not None and int(doc["seq"]) == self._version + 1:
            self._version = int(doc["seq"])

    async def load(self) -> None:
        """Read every published article and the settings, and swap in a fresh index."""
        async with self._reload_lock:
            version = await self._current_version()
            settings_doc = await self._db.settings.find_one({"_id": SETTINGS_KEY})
            settings = MatchSettings.from_doc(settings_doc) if settings_doc else MatchSettings()
            docs = [doc async for doc in self._db.articles.find({"published": True})]
            articles = [_to_article(d) for d in docs]
            self.matcher.set_settings(settings)
            # Analysis (jieba) of many articles is CPU work: keep it off the event loop.
            await asyncio.to_thread(self.matcher.rebuild, articles)
            self._version = version
            log.info("knowledge base loaded: %d published article(s), version %d", len(articles), version)

    async def refresh(self) -> bool:
        """Reload when another process changed articles or settings; True when it did."""
        if await self._current_version() == self._version:
            return False
        await self.load()
        return True

    # -- articles ---------------------------------------------------------------------------------------

    async def is_empty(self) -> bool:
        return await self._db.articles.estimated_document_count() == 0

    async def get(self, article_id: str) -> dict[str, Any]:
        doc = await self._db.articles.find_one({"_id": article_id})
        if doc is None:
            raise NotFound(f"no article {article_id!r}")
        return doc

    async def exists(self, article_id: str) -> bool:
        return await self._db.articles.find_one({"_id": article_id}, {"_id": 1}) is not None

    async def save(self, raw: Mapping[str, Any], *, actor: str) -> tuple[dict[str, Any], str]:
        """Create or update; returns the stored article and "created", "updated" or "unchanged"."""
        article = clean_article(raw)
        now = _now()
        existing = await self._db.articles.find_one({"_id": article["_id"]})
        if existing is not None:
            same = all(existing.get(k) == v for k, v in article.items())
            if same:
                return existing, "unchanged"
            await self._db.article_versions.insert_one(
                {
                    "article_id": article["_id"],
                    "version": existing.get("version", 1),
                    "snapshot": {k: existing.get(k) for k in article},
                    "replaced_at": now,
                    "replaced_by": actor,
                }
            )
            update = {
                **article,
                "version": int(existing.get("version", 1)) + 1,
                "updated_at": now,
                "updated_by": actor,
            }
            await self._db.articles.update_one({"_id": article["_id"]}, {"$set": update})
            outcome = "updated"
        else:
            update = {
                **article,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "updated_by": actor,
                "stats": {"views": 0, "helpful": 0, "not_helpful": 0, "deflections": 0},
            }
            await self._db.articles.insert_one(update)
            outcome = "created"
        stored = await self.get(article["_id"])
        await asyncio.to_thread(self.matcher.upsert, _to_article(stored))
        await self._bump_version()
        return stored, outcome

    async def search(
        self,
        *,
        locale: str | None = None,
        category: str | None = None,
        published: bool | None = None,
        text: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Stored articles (published or not) in id order, for the admin list and export.
        `text` is a case-insensitive substring of the id, title, keywords or phrasings: the embedded
        database refuses text indexes, and an admin list is small enough for a regex scan."""
        query: dict[str, Any] = {}
        if locale is not None:
            query["locale"] = locale
        if category is not None:
            query["category"] = category
        if published is not None:
            query["published"] = published
        if text:
            pattern = {"$regex": re.escape(text[:200]), "$options": "i"}
            query["$or"] = [{name: pattern} for name in ("_id", "title", "keywords", "phrasings")]
        if after:
            query["_id"] = {"$gt": after}
        cursor = self._db.articles.find(query).sort("_id", 1).limit(limit)
        return [doc async for doc in cursor]

    async def delete(self, article_id: str) -> None:
        result = await self._db.articles.delete_one({"_id": article_id})
        if result.deleted_count == 0:
            raise NotFound(f"no article {article_id!r}")
        self.matcher.remove(article_id)
        await self._bump_version()

    async def versions(self, article_id: str) -> list[dict[str, Any]]:
        cursor = self._db.article_versions.find({"article_id": article_id}).sort("version", -1)
        return [doc async for doc in cursor]

    # -- settings ---------------------------------------------------------------------------------------

    @property
    def settings(self) -> MatchSettings:
        return self.matcher.settings

    async def save_settings(self, settings: MatchSettings, *, actor: str) -> None:
        settings.compiled()  # validates before anything is stored
        await self._db.settings.replace_one(
            {"_id": SETTINGS_KEY},
            {**settings.to_doc(), "updated_by": actor, "updated_at": _now()},
            upsert=True,
        )
        self.matcher.set_settings(settings)
        await self._bump_version()

    # -- matching ---------------------------------------------------------------------------------------

    def url(self, article_id: str) -> str:
        return f"{self._public_url}/kb/{article_id}"

    def suggest(
        self,
        text: str,
        *,
        locale: str | None = None,
        limit: int | None = None,
        settings: MatchSettings | None = None,
    ) -> list[Suggestion]:
        """Articles above the threshold, best first. Bounded CPU: safe to call on the event loop."""
        matches = self.matcher.match(text, locale=locale, limit=limit, settings=settings)
        if not matches and locale is not None:
            matches = self.matcher.match(text, locale=None, limit=limit, settings=settings)
        return [self._suggestion(m) for m in matches]

    def explain(
        self, text: str, *, locale: str | None, settings: MatchSettings | None, limit: int = 10
    ) -> list[Match]:
        return self.matcher.match(text, locale=locale, settings=settings, limit=limit, min_score=0)

    def _suggestion(self, match: Match) -> Suggestion:
        article = self.matcher.get(match.article_id)
        body = article.body if article else ""
        return Suggestion(
            match.article_id,
            match.title,
            match.score,
            self.url(match.article_id),
            summary_of(body),
            match.category,
        )

    def top(self, category: str, *, locale: str | None = None, limit: int = 5) -> list[Suggestion]:
        found = [
            a for a in self.articles() if a.category == category and (locale is None or a.locale == locale)
        ]
        found.sort(key=lambda a: a.title)
        return [
            Suggestion(a.id, a.title, 100.0, self.url(a.id), summary_of(a.body), a.category)
            for a in found[:limit]
        ]

    def by_ids(self, ids: Sequence[str]) -> list[Suggestion]:
        found = [self.matcher.get(i) for i in ids]
        return [
            Suggestion(a.id, a.title, 100.0, self.url(a.id), summary_of(a.body), a.category)
            for a in found
            if a is not None
        ]

    def articles(self) -> Sequence[Article]:
        return self.matcher.articles()

    def categories(self, locale: str | None = None) -> list[str]:
        return sorted(
            {a.category for a in self.articles() if a.category and (locale is None or a.locale == locale)}
        )

    # -- counters ---------------------------------------------------------------------------------------

    async def log_query(
        self, query: str, *, locale: str | None, channel: str, suggested: Sequence[str]
    ) -> None:
        """Record a customer's query the dialog matched (`match_log`, expires after 30 days), so an admin
        can see what a proposed threshold would have done to real traffic. Never fails the dialog."""
        try:
            await self._db.match_log.insert_one(
                {
                    "q": query[:500],
                    "locale": locale,
                    "channel": channel,
                    "suggested": list(suggested),
                    "at": _now(),
                }
            )
        except PyMongoError as exc:
            log.warning("could not record a matched query: %s", exc)

    async def record_view(self, article_id: str) -> None:
        await self._db.articles.update_one({"_id": article_id}, {"$inc": {"stats.views": 1}})

    async def record_feedback(self, article_id: str, *, helpful: bool) -> None:
        field = "stats.helpful" if helpful else "stats.not_helpful"
        await self._db.articles.update_one({"_id": article_id}, {"$inc": {field: 1}})

    async def record_deflection(
        self, article_id: str, *, channel: str, conversation_key: str, query: str = "", key: str | None = None
    ) -> bool:
        """One deflection: a customer whose problem an article solved without a ticket.
        `key` makes it idempotent (a retried handler); False when it was already recorded."""
        doc = {
            "article_id": article_id,
            "channel": channel,
            "conversation_key": conversation_key,
            "query": query[:500],
            "at": _now(),
        }
        if key is not None:
            doc["_id"] = key
            if await self._db.deflections.find_one({"_id": key}, {"_id": 1}):
                return False
        await self._db.deflections.insert_one(doc)
        await self._db.articles.update_one(
            {"_id": article_id},
            {
                "$inc": {
                    "stats.deflections": 1,
                    f"stats.deflections_by_channel.{channel}": 1,
                    "stats.helpful": 1,
                }
            },
        )
        return True
