"""The public article page, `GET /kb/{id}`: Markdown rendered and sanitised, zh/en chrome, a view
counted. Opened from a web form (`?form=...`) it offers "this solved my problem", which records a
deflection; otherwise helpful / not helpful feedback. `?format=fragment` answers only the article
block, which the web form shows in a panel beside the customer's half-filled form.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import nh3
from aiohttp import web
from markdown_it import MarkdownIt
from pymongo.errors import PyMongoError

from gateway.appkeys import KNOWLEDGE
from ticket_core.errors import NotFound

log = logging.getLogger(__name__)

_PAGES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates_kb")), autoescape=True
)
# Raw HTML in an article is off at the parser, and nh3 still cleans the output: articles are written
# by admins, but imports come from files of unknown origin and the page is public.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{8,100}$")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "site": "Help centre",
        "not_found": "This article does not exist or is no longer published.",
        "solved": "This solved my problem",
        "not_solved": "Not solved: back to the form",
        "solved_done": "Great, we are glad it helped. No ticket was created; you can close this page.",
        "helpful_q": "Was this article helpful?",
        "yes": "Yes",
        "no": "No",
        "thanks": "Thank you for your feedback.",
        "failed": "Something went wrong. Please try again.",
        "contact": "Still need help? Contact support",
        "updated": "Updated",
    },
    "zh-CN": {
        "site": "帮助中心",
        "not_found": "文章不存在或已下线。",
        "solved": "这解决了我的问题",
        "not_solved": "没有解决，返回继续提交",
        "solved_done": "太好了，很高兴帮到您！无需提交工单，您可以关闭本页。",
        "helpful_q": "这篇文章对您有帮助吗？",
        "yes": "有帮助",
        "no": "没帮助",
        "thanks": "感谢您的反馈。",
        "failed": "操作失败，请稍后重试。",
        "contact": "仍需帮助？联系售后",
        "updated": "更新于",
    },
}


def render_markdown(body: str) -> str:
    """Safe HTML for an article body."""
    return nh3.clean(_MARKDOWN.render(body), link_rel="noopener noreferrer nofollow")


def _locale(request: web.Request, article_locale: str) -> str:
    choice = request.query.get("lang") or article_locale
    return "zh-CN" if choice.lower().startswith("zh") else "en"


def _context(request: web.Request, doc: dict[str, Any], locale: str) -> dict[str, Any]:
    form = request.query.get("form", "")
    key = request.query.get("key", "")
    updated = doc.get("updated_at")
    return {
        "locale": locale,
        "t": TEXT[locale],
        "article": {
            "id": doc["_id"],
            "title": doc["title"],
            "html": render_markdown(str(doc.get("body", ""))),
            "category": doc.get("category", ""),
            "updated": updated.date().isoformat() if isinstance(updated, datetime) else "",
            "lang": doc.get("locale", locale),
        },
        # Only a well-formed form name and key are echoed back into the page and the API call.
        "form": form if NAME_RE.match(form) else "",
        "key": key if KEY_RE.match(key) else "",
        "query": request.query.get("q", "")[:500],
    }


async def article_page(request: web.Request) -> web.Response:
    kb = request.app[KNOWLEDGE]
    article_id = request.match_info["id"]
    fragment = request.query.get("format") == "fragment"
    try:
        doc = await kb.get(article_id)
        if not doc.get("published", True):
            raise NotFound(article_id)
    except NotFound:
        locale = _locale(request, "zh-CN")
        if fragment:
            return web.Response(status=404, text=TEXT[locale]["not_found"], content_type="text/plain")
        html = _PAGES.get_template("missing.html").render(locale=locale, t=TEXT[locale])
        return web.Response(status=404, text=html, content_type="text/html")
    locale = _locale(request, str(doc.get("locale", "zh-CN")))
    try:
        await kb.record_view(doc["_id"])
    except PyMongoError as exc:  # a lost view count must not cost the customer the article
        log.warning("could not count a view of %s: %s", doc["_id"], exc)
    template = "fragment.html" if fragment else "article.html"
    html = _PAGES.get_template(template).render(**_context(request, doc, locale))
    headers = {"Cache-Control": "no-store"} if fragment else {}
    return web.Response(text=html, content_type="text/html", headers=headers)


def routes() -> list[web.RouteDef]:
    return [web.get("/kb/{id}", article_page)]
