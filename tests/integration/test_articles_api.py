"""The articles REST API, matching settings and the admin "try it" endpoint, through the real app."""

from __future__ import annotations

from typing import Any

from dialog.knowledge import KnowledgeBase
from gateway.appkeys import KNOWLEDGE
from tests.helpers import running_app, token

JAM = {
    "id": "printer-jam",
    "title": "打印机卡纸怎么办",
    "body": "## 处理卡纸\n\n1. 关机\n2. 打开后盖，**慢慢**抽出纸张",
    "locale": "zh-CN",
    "category": "printer",
    "tags": ["printer"],
    "keywords": ["卡纸"],
    "phrasings": ["打印机老是卡纸", "纸卡在打印机里了"],
}
WIFI = {
    "id": "router-wifi",
    "title": "Router Wi-Fi keeps dropping",
    "body": "Restart the router and move it away from the microwave.",
    "locale": "en",
    "category": "router",
    "keywords": ["wifi", "disconnect"],
    "phrasings": ["my wifi keeps disconnecting"],
}


async def _suggest_ids(client: Any, q: str, locale: str) -> list[str]:
    res = await client.get("/api/v1/suggest", params={"q": q, "locale": locale})
    assert res.status == 200
    return [item["id"] for item in (await res.json())["items"]]


async def test_crud_versions_and_stats(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        admin = await token(client)
        res = await client.post("/api/v1/articles", json=JAM, headers=admin)
        body = await res.json()
        assert res.status == 201, body
        assert body["id"] == "printer-jam" and body["outcome"] == "created" and body["version"] == 1
        assert body["url"].endswith("/kb/printer-jam") and body["stats"]["views"] == 0
        assert res.headers["Location"] == "/api/v1/articles/printer-jam"
        # creating the same id again is a conflict; PUT is the way to change it
        res = await client.post("/api/v1/articles", json=JAM, headers=admin)
        assert res.status == 409 and (await res.json())["error"]["code"] == "conflict"
        # PUT upserts: a new article, then an update that keeps the old version
        res = await client.put("/api/v1/articles/router-wifi", json=WIFI, headers=admin)
        assert res.status == 201 and (await res.json())["outcome"] == "created"
        changed = {**JAM, "title": "打印机卡纸的处理方法"}
        del changed["id"]
        res = await client.put("/api/v1/articles/printer-jam", json=changed, headers=admin)
        body = await res.json()
        assert res.status == 200 and body["outcome"] == "updated" and body["version"] == 2
        res = await client.put("/api/v1/articles/printer-jam", json=changed, headers=admin)
        assert (await res.json())["outcome"] == "unchanged"
        versions = await (await client.get("/api/v1/articles/printer-jam/versions", headers=admin)).json()
        assert versions["current"] == 2 and versions["next"] is None
        assert [v["version"] for v in versions["items"]] == [1]
        assert versions["items"][0]["article"]["title"] == "打印机卡纸怎么办"
        # a POST without an id gets one
        res = await client.post(
            "/api/v1/articles",
            json={"title": "No id given", "locale": "en", "published": False},
            headers=admin,
        )
        no_id = (await res.json())["id"]
        assert res.status == 201 and no_id.startswith("a-")
        # read with stats
        await client.get("/kb/printer-jam")
        got = await (await client.get("/api/v1/articles/printer-jam", headers=admin)).json()
        assert got["stats"]["views"] == 1 and got["title"] == "打印机卡纸的处理方法"
        assert got["stats"]["deflections_by_channel"] == {}
        # list: filters and pagination
        page = await (await client.get("/api/v1/articles?limit=2", headers=admin)).json()
        assert [a["id"] for a in page["items"]] == sorted([no_id, "printer-jam", "router-wifi"])[:2]
        rest = await (
            await client.get(f"/api/v1/articles?limit=2&cursor={page['next']}", headers=admin)
        ).json()
        assert len(rest["items"]) == 1 and rest["next"] is None
        assert [a["id"] for a in page["items"] + rest["items"]] == sorted(
            [no_id, "printer-jam", "router-wifi"]
        )

        async def ids(query: str) -> list[str]:
            res = await client.get(f"/api/v1/articles?{query}", headers=admin)
            assert res.status == 200, await res.text()
            return [a["id"] for a in (await res.json())["items"]]

        assert await ids("locale=zh-CN") == ["printer-jam"]
        assert await ids("category=router") == ["router-wifi"]
        assert await ids("published=false") == [no_id]
        assert await ids("q=WI-FI") == ["router-wifi"]
        assert await ids("q=卡纸") == ["printer-jam"]
        assert await ids("q=.*") == []  # a literal substring, not a regular expression
        # delete
        assert (await client.delete("/api/v1/articles/router-wifi", headers=admin)).status == 204
        assert (await client.get("/api/v1/articles/router-wifi", headers=admin)).status == 404
        assert (await client.delete("/api/v1/articles/router-wifi", headers=admin)).status == 404
        assert await mongo.articles.count_documents({}) == 2


async def test_roles_reads_for_everyone_writes_for_admins(settings: Any) -> None:
    async with running_app(settings) as client:
        admin, agent, viewer = [await token(client, r) for r in ("admin", "agent", "viewer")]
        assert (await client.put("/api/v1/articles/printer-jam", json=JAM, headers=admin)).status == 201
        assert (await client.get("/api/v1/articles")).status == 401
        for headers in (agent, viewer):
            assert (await client.get("/api/v1/articles", headers=headers)).status == 200
            assert (await client.get("/api/v1/articles/printer-jam", headers=headers)).status == 200
            assert (await client.get("/api/v1/settings/matching", headers=headers)).status == 200
            for method, path, body in (
                ("POST", "/api/v1/articles", {**JAM, "id": "other"}),
                ("PUT", "/api/v1/articles/printer-jam", JAM),
                ("DELETE", "/api/v1/articles/printer-jam", None),
                ("PUT", "/api/v1/settings/matching", {"threshold": 10}),
                ("POST", "/api/v1/articles/match", {"q": "卡纸"}),
            ):
                res = await client.request(method, path, json=body, headers=headers)
                error = (await res.json())["error"]
                assert res.status == 403 and error["code"] == "forbidden", (method, path)


async def test_invalid_input_gets_4xx_with_field_messages(settings: Any) -> None:
    async with running_app(settings) as client:
        admin = await token(client)
        res = await client.post(
            "/api/v1/articles",
            json={"id": "bad id!", "title": "", "locale": "fr", "tags": "a,b", "phrasings": [1, 2]},
            headers=admin,
        )
        error = (await res.json())["error"]
        assert res.status == 422 and error["code"] == "invalid_fields"
        assert set(error["fields"]) == {"id", "title", "locale", "phrasings"}
        res = await client.put("/api/v1/articles/x1", json={**JAM, "id": "x2"}, headers=admin)
        assert res.status == 422 and "id" in (await res.json())["error"]["fields"]
        for raw in (b"not json", b"[1, 2]", b"\xff\xfe"):
            res = await client.post("/api/v1/articles", data=raw, headers=admin)
            assert res.status == 400 and "error" in await res.json()
        for query in ("limit=0", "limit=x", "published=maybe", "locale=de", "colour=red"):
            res = await client.get(f"/api/v1/articles?{query}", headers=admin)
            assert res.status == 400, query
            assert (await res.json())["error"]["fields"]
        bad_settings = {
            "threshold": 150,
            "max_suggestions": 0,
            "field_weights": {"title": -1},
            "synonyms": {"a": "b"},
            "stop_words": [""],
            "category_boosts": {"printer": 0},
            "colour": "red",
        }
        res = await client.put("/api/v1/settings/matching", json=bad_settings, headers=admin)
        error = (await res.json())["error"]
        assert res.status == 422 and set(error["fields"]) == set(bad_settings)
        for value in (True, "50", None, float("nan")):
            res = await client.put("/api/v1/settings/matching", json={"threshold": value}, headers=admin)
            assert res.status in (400, 422), value
        res = await client.post("/api/v1/articles/match", json={"q": ""}, headers=admin)
        assert res.status == 422 and "q" in (await res.json())["error"]["fields"]
        res = await client.post(
            "/api/v1/articles/match", json={"q": "x", "settings": {"threshold": -5}}, headers=admin
        )
        assert res.status == 422 and "settings.threshold" in (await res.json())["error"]["fields"]
        res = await client.post("/api/v1/articles/match", json={"q": "x", "locale": "de"}, headers=admin)
        assert res.status == 422


async def test_threshold_change_takes_effect_on_the_next_match_without_restart(
    settings: Any, mongo: Any
) -> None:
    async with running_app(settings) as client:
        admin = await token(client)
        for article in (JAM, WIFI):
            assert (await client.post("/api/v1/articles", json=article, headers=admin)).status == 201
        # `threshold` governs English articles (Chinese ones may have their own, below)
        query = "wifi keeps dropping"
        first = await (await client.get("/api/v1/suggest", params={"q": query, "locale": "en"})).json()
        assert [i["id"] for i in first["items"]] == ["router-wifi"]
        score = first["items"][0]["score"]
        assert score < 100
        res = await client.put("/api/v1/settings/matching", json={"threshold": 100}, headers=admin)
        assert res.status == 200 and (await res.json())["threshold"] == 100
        assert await _suggest_ids(client, query, "en") == []
        # another gateway process sharing the database sees the change on its next refresh
        other = KnowledgeBase(mongo, public_url="http://other")
        await other.load()
        assert other.settings.threshold == 100 and other.suggest(query, locale="en") == []
        res = await client.put(
            "/api/v1/settings/matching", json={"threshold": max(score - 1, 0)}, headers=admin
        )
        assert res.status == 200
        assert await _suggest_ids(client, query, "en") == ["router-wifi"]
        assert await other.refresh() is True
        assert [s.article_id for s in other.suggest(query, locale="en")] == ["router-wifi"]
        stored = await (await client.get("/api/v1/settings/matching", headers=admin)).json()
        assert stored["threshold"] == max(score - 1, 0) and "title" in stored["field_weights"]
        if "locale_thresholds" in stored:  # per-locale thresholds, where the matcher has them
            zh = "打印机卡纸了"
            assert await _suggest_ids(client, zh, "zh-CN") == ["printer-jam"]
            res = await client.put(
                "/api/v1/settings/matching", json={"locale_thresholds": {"zh-CN": 100}}, headers=admin
            )
            assert res.status == 200 and (await res.json())["locale_thresholds"] == {"zh-CN": 100}
            assert await _suggest_ids(client, zh, "zh-CN") == []
            res = await client.put(
                "/api/v1/settings/matching", json={"locale_thresholds": {"fr": 10}}, headers=admin
            )
            assert res.status == 422 and "locale_thresholds" in (await res.json())["error"]["fields"]
        # other settings round-trip through the API
        res = await client.put(
            "/api/v1/settings/matching",
            json={"max_suggestions": 5, "synonyms": {"卡纸": ["夹纸"]}, "category_boosts": {"printer": 1.5}},
            headers=admin,
        )
        stored = await res.json()
        assert stored["max_suggestions"] == 5 and stored["synonyms"] == {"卡纸": ["夹纸"]}
        assert stored["category_boosts"] == {"printer": 1.5}
        assert client.app[KNOWLEDGE].settings.max_suggestions == 5


async def test_try_it_shows_scores_and_explanations_side_by_side(settings: Any) -> None:
    async with running_app(settings) as client:
        admin = await token(client)
        for article in (JAM, WIFI):
            await client.post("/api/v1/articles", json=article, headers=admin)
        res = await client.post(
            "/api/v1/articles/match",
            json={
                "q": "wifi keeps dropping",
                "locale": "en",
                "settings": {"threshold": 100, "max_suggestions": 1},
            },
            headers=admin,
        )
        body = await res.json()
        assert res.status == 200, body
        current, proposed = body["current"], body["proposed"]
        assert current["threshold"] == client.app[KNOWLEDGE].settings.threshold
        assert proposed["threshold"] == 100 and body["proposed_settings"]["max_suggestions"] == 1
        top = current["items"][0]
        assert top["id"] == "router-wifi" and top["suggested"] is True and 0 < top["score"] < 100
        explanation = top["explanation"]
        assert explanation["best_field"] in ("title", "phrasings", "keywords")
        assert explanation["matched_terms"] and "components" in explanation
        # the same article under the proposed settings: scored, but below the proposed threshold
        assert proposed["items"][0]["id"] == "router-wifi" and proposed["items"][0]["suggested"] is False
        assert proposed["items"][0]["score"] == top["score"]  # same scoring, a different decision
        # the current settings were not changed by trying
        assert client.app[KNOWLEDGE].settings.threshold != 100
        # without proposed settings only the current ranking is answered
        body = await (
            await client.post("/api/v1/articles/match", json={"q": "打印机卡纸"}, headers=admin)
        ).json()
        assert "proposed" not in body and body["current"]["items"][0]["id"] == "printer-jam"
        assert body["current"]["items"][0]["suggested"] is True


async def test_openapi_describes_the_knowledge_endpoints(settings: Any) -> None:
    async with running_app(settings) as client:
        doc = await (await client.get("/api/v1/openapi.json")).json()
        paths, schemas = doc["paths"], doc["components"]["schemas"]
        assert set(paths["/api/v1/articles"]) == {"get", "post"}
        assert set(paths["/api/v1/articles/{id}"]) == {"get", "put", "delete"}
        for path in (
            "/api/v1/articles/{id}/versions",
            "/api/v1/articles/{id}/feedback",
            "/api/v1/articles/match",
            "/api/v1/settings/matching",
            "/api/v1/suggest",
            "/api/v1/deflections",
        ):
            assert path in paths
        assert paths["/api/v1/suggest"]["get"]["security"] == []

        def refs(node: Any) -> list[str]:
            if isinstance(node, dict):
                own = [node["$ref"]] if "$ref" in node else []
                return own + [r for v in node.values() for r in refs(v)]
            return [r for v in node for r in refs(v)] if isinstance(node, list) else []

        for ref in refs(doc):
            assert ref.removeprefix("#/components/schemas/") in schemas, ref
