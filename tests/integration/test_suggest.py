"""The public knowledge endpoints: suggestions while typing, deflections, feedback, article pages."""

from __future__ import annotations

from typing import Any

from gateway.appkeys import KNOWLEDGE
from tests.helpers import running_app

JAM = {
    "id": "printer-jam",
    "title": "打印机卡纸怎么办",
    "body": "## 处理卡纸\n\n关机后打开后盖，**慢慢**抽出纸张。<script>alert(1)</script>\n\n"
    "[bad](javascript:alert(1)) [ok](https://example.com/help)",
    "locale": "zh-CN",
    "category": "printer",
    "keywords": ["卡纸"],
    "phrasings": ["打印机老是卡纸"],
}
RESET = {
    "id": "en-password-reset",
    "title": "Reset your account password",
    "body": "Open **Settings**, choose *Security* and press Reset password.",
    "locale": "en",
    "category": "account",
    "keywords": ["password", "reset"],
    "phrasings": ["I forgot my password", "cannot log in"],
}
HIDDEN = {**RESET, "id": "en-hidden", "title": "Reset password (draft)", "published": False}


async def _seed(client: Any) -> None:
    kb = client.app[KNOWLEDGE]
    for article in (JAM, RESET, HIDDEN):
        await kb.save(article, actor="test")


async def test_suggest_answers_the_contract_best_first(settings: Any) -> None:
    async with running_app(settings) as client:
        await _seed(client)
        res = await client.get(
            "/api/v1/suggest", params={"q": "forgot my password", "locale": "en", "form": "support"}
        )
        assert res.status == 200 and res.content_type == "application/json"
        items = (await res.json())["items"]
        assert [i["id"] for i in items] == ["en-password-reset"]  # the draft is never suggested
        item = items[0]
        assert set(item) == {"id", "title", "score", "url", "summary"}
        assert item["title"] == RESET["title"] and 0 < item["score"] <= 100
        assert item["url"] == "http://127.0.0.1:8080/kb/en-password-reset"
        assert item["summary"].startswith("Open Settings")
        scores = [i["score"] for i in items]
        assert scores == sorted(scores, reverse=True)
        zh = await (await client.get("/api/v1/suggest", params={"q": "打印机卡纸", "locale": "zh-CN"})).json()
        assert zh["items"][0]["id"] == "printer-jam"
        # nothing to match, nothing typed, unrelated text: an empty list, not an error
        for params in ({"q": ""}, {"q": "   "}, {}, {"q": "zzzz qqqq", "locale": "en"}):
            res = await client.get("/api/v1/suggest", params=params)
            assert res.status == 200 and (await res.json()) == {"items": []}, params
        res = await client.get("/api/v1/suggest", params={"q": "x", "locale": "klingon"})
        assert res.status == 422 and (await res.json())["error"]["fields"] == {
            "locale": "must be one of zh-CN, en"
        }
        # no token needed
        assert "error" not in await (await client.get("/api/v1/suggest?q=password")).json()


async def test_suggest_is_rate_limited_per_address_with_retry_after(settings: Any) -> None:
    async with running_app(settings) as client:
        await _seed(client)
        statuses = []
        for _ in range(60):
            res = await client.get("/api/v1/suggest", params={"q": "password", "locale": "en"})
            statuses.append(res.status)
            if res.status == 429:
                body = await res.json()
                assert body["error"]["code"] == "rate_limited" and body["error"]["message"]
                assert int(res.headers["Retry-After"]) >= 1
                break
        assert statuses[0] == 200 and statuses[-1] == 429 and len(statuses) > 20
        # the same bucket guards the deflection and feedback endpoints
        res = await client.post("/api/v1/articles/printer-jam/feedback", json={"helpful": True})
        assert res.status == 429


async def test_deflection_is_recorded_per_article_and_channel_and_makes_no_ticket(
    settings: Any, mongo: Any
) -> None:
    async with running_app(settings) as client:
        await _seed(client)
        body = {"article_id": "printer-jam", "form": "support", "query": "打印机卡纸", "key": "page-key-123"}
        res = await client.post("/api/v1/deflections", json=body)
        assert res.status == 201 and (await res.json()) == {
            "recorded": True,
            "article_id": "printer-jam",
            "ticket": None,
        }
        # the same page pressing again (a double click) counts once
        res = await client.post("/api/v1/deflections", json=body)
        assert res.status == 200 and (await res.json())["recorded"] is False
        # another customer, without a page key
        res = await client.post("/api/v1/deflections", json={"article_id": "printer-jam"})
        assert res.status == 201
        article = await mongo.articles.find_one({"_id": "printer-jam"})
        assert article["stats"]["deflections"] == 2
        assert article["stats"]["deflections_by_channel"] == {"webform": 2}
        records = [d async for d in mongo.deflections.find({}).sort("at", 1)]
        assert [(d["article_id"], d["channel"]) for d in records] == [("printer-jam", "webform")] * 2
        assert records[0]["query"] == "打印机卡纸"
        assert records[0]["conversation_key"] == "webform:support:page-key-123"
        assert await mongo.tickets.count_documents({}) == 0
        assert await mongo.inbox.count_documents({}) == 0
        # the counts show in the admin API too
        stats = (await client.app[KNOWLEDGE].get("printer-jam"))["stats"]
        assert stats["deflections_by_channel"]["webform"] == 2
        # bad input: 4xx with field messages, nothing counted
        for bad, status, field in (
            ({}, 422, "article_id"),
            ({"article_id": "no-such-article"}, 404, None),
            ({"article_id": "printer-jam", "form": "../etc"}, 422, "form"),
            ({"article_id": "printer-jam", "key": "x"}, 422, "key"),
            ({"article_id": ["printer-jam"]}, 422, "article_id"),
        ):
            res = await client.post("/api/v1/deflections", json=bad)
            error = (await res.json())["error"]
            assert res.status == status, bad
            assert field is None or field in error["fields"]
        res = await client.post("/api/v1/deflections", data=b"{oops")
        assert res.status == 400
        assert (await mongo.articles.find_one({"_id": "printer-jam"}))["stats"]["deflections"] == 2


async def test_feedback_counts_helpful_and_not_helpful(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        await _seed(client)
        for helpful in (True, True, False):
            res = await client.post("/api/v1/articles/en-password-reset/feedback", json={"helpful": helpful})
            assert res.status == 200 and (await res.json())["helpful"] is helpful
        stats = (await mongo.articles.find_one({"_id": "en-password-reset"}))["stats"]
        assert stats["helpful"] == 2 and stats["not_helpful"] == 1
        res = await client.post("/api/v1/articles/en-password-reset/feedback", json={"helpful": "yes"})
        assert res.status == 422 and "helpful" in (await res.json())["error"]["fields"]
        res = await client.post("/api/v1/articles/nope/feedback", json={"helpful": True})
        assert res.status == 404


async def test_article_page_renders_markdown_safely_and_counts_a_view(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        await _seed(client)
        res = await client.get("/kb/printer-jam")
        html = await res.text()
        assert res.status == 200 and res.content_type == "text/html"
        assert '<html lang="zh-CN">' in html and "帮助中心" in html and "这篇文章对您有帮助吗" in html
        assert "<h2>处理卡纸</h2>" in html and "<strong>慢慢</strong>" in html
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
        assert 'href="javascript' not in html  # the parser refuses the link; its text stays as text
        assert 'href="https://example.com/help"' in html and "noopener" in html
        assert 'id="kb-solved"' not in html  # not opened from a form: feedback buttons instead
        assert (await mongo.articles.find_one({"_id": "printer-jam"}))["stats"]["views"] == 1
        # opened from the form: the "solved" button, English chrome on request
        res = await client.get("/kb/printer-jam", params={"form": "support", "q": "卡纸", "lang": "en"})
        html = await res.text()
        assert '<html lang="en">' in html and "This solved my problem" in html
        assert 'data-form="support"' in html and 'lang="zh-CN"' in html  # the article keeps its language
        # a hostile form name or key is not echoed
        html = await (await client.get('/kb/printer-jam?form="><script>&key=<b>')).text()
        assert "<script>&" not in html and 'data-form=""' in html and 'data-key=""' in html
        # the fragment the web form shows in its panel
        res = await client.get("/kb/en-password-reset", params={"format": "fragment"})
        fragment = await res.text()
        assert res.status == 200 and fragment.lstrip().startswith("<article")
        assert "<strong>Settings</strong>" in fragment and "<html" not in fragment
        # unknown and unpublished articles are 404 pages
        for ident in ("nope", "en-hidden"):
            res = await client.get(f"/kb/{ident}")
            assert res.status == 404 and "文章不存在" in await res.text()
        assert (await mongo.articles.find_one({"_id": "en-hidden"}))["stats"]["views"] == 0
