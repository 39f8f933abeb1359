"""OpenAPI paths and schemas of the knowledge endpoints, merged into the document in `openapi.py`."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
STRINGS = {"type": "array", "items": {"type": "string"}}
NUMBERS = {"type": "object", "additionalProperties": {"type": "number"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(ERROR, "Error") for c in codes}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
LOCALE = {"enum": ["zh-CN", "en"]}
LIMITED = _json(ERROR, "Rate limited (see Retry-After)")

SCHEMAS: dict[str, Any] = {
    "ArticleInput": {
        "type": "object",
        "required": ["title"],
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,99}$"},
            "title": {"type": "string", "maxLength": 300},
            "body": {"type": "string", "description": "Markdown"},
            "locale": LOCALE,
            "category": {"type": "string"},
            "tags": STRINGS,
            "keywords": STRINGS,
            "synonyms": STRINGS,
            "phrasings": {**STRINGS, "description": "questions customers ask"},
            "published": {"type": "boolean"},
        },
    },
    "Article": {
        "allOf": [
            _ref("ArticleInput"),
            {
                "type": "object",
                "properties": {
                    "version": {"type": "integer"},
                    "url": {"type": "string", "description": "the public page, /kb/{id}"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"},
                    "updated_by": {"type": "string"},
                    "outcome": {"enum": ["created", "updated", "unchanged"]},
                    "stats": {
                        "type": "object",
                        "properties": {
                            "views": {"type": "integer"},
                            "helpful": {"type": "integer"},
                            "not_helpful": {"type": "integer"},
                            "deflections": {"type": "integer"},
                            "deflections_by_channel": {
                                "type": "object",
                                "additionalProperties": {"type": "integer"},
                            },
                        },
                    },
                },
            },
        ]
    },
    "ArticleList": {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": _ref("Article")},
            "next": {"type": ["string", "null"]},
        },
    },
    "ArticleVersions": {
        "type": "object",
        "properties": {
            "current": {"type": "integer"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "version": {"type": "integer"},
                        "replaced_at": {"type": "string", "format": "date-time"},
                        "replaced_by": {"type": "string"},
                        "article": _ref("ArticleInput"),
                    },
                },
            },
            "next": {"type": "null"},
        },
    },
    "MatchingSettings": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "threshold": {"type": "number", "minimum": 0, "maximum": 100},
            "max_suggestions": {"type": "integer", "minimum": 1, "maximum": 20},
            "field_weights": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    name: {"type": "number", "minimum": 0, "maximum": 10}
                    for name in ("title", "phrasings", "keywords", "synonyms", "body")
                },
            },
            "synonyms": {"type": "object", "additionalProperties": STRINGS},
            "stop_words": STRINGS,
            "category_boosts": NUMBERS,
            "locale_thresholds": {
                "type": "object",
                "description": "a threshold per article locale, overriding `threshold` (zh-CN, en)",
                "additionalProperties": {"type": "number", "minimum": 0, "maximum": 100},
            },
        },
    },
    "MatchRequest": {
        "type": "object",
        "required": ["q"],
        "properties": {
            "q": {"type": "string", "minLength": 1, "maxLength": 2000},
            "locale": LOCALE,
            "settings": {**_ref("MatchingSettings"), "description": "proposed overrides to compare"},
        },
    },
    "Ranking": {
        "type": "object",
        "properties": {
            "threshold": {"type": "number"},
            "max_suggestions": {"type": "integer"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "score": {"type": "number"},
                        "suggested": {"type": "boolean", "description": "would be offered to a customer"},
                        "explanation": {
                            "type": "object",
                            "properties": {
                                "best_field": {"type": "string"},
                                "best_text": {"type": "string"},
                                "matched_terms": STRINGS,
                                "missing_terms": STRINGS,
                                "fields": {"type": "object", "additionalProperties": STRINGS},
                                "expansions": {"type": "object", "additionalProperties": {"type": "string"}},
                                "components": NUMBERS,
                            },
                        },
                    },
                },
            },
        },
    },
    "MatchResult": {
        "type": "object",
        "required": ["q", "current"],
        "properties": {
            "q": {"type": "string"},
            "locale": {"type": ["string", "null"]},
            "current": _ref("Ranking"),
            "proposed": _ref("Ranking"),
            "proposed_settings": _ref("MatchingSettings"),
        },
    },
    "SuggestList": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "title", "score", "url"],
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "score": {"type": "number", "minimum": 0, "maximum": 100},
                        "url": {"type": "string"},
                        "summary": {"type": "string"},
                    },
                },
            }
        },
    },
    "Deflection": {
        "type": "object",
        "required": ["article_id"],
        "properties": {
            "article_id": {"type": "string"},
            "form": {"type": "string", "default": "support"},
            "query": {"type": "string", "maxLength": 500},
            "key": {"type": "string", "description": "the form page's key: a repeat counts once"},
        },
    },
    "Feedback": {"type": "object", "required": ["helpful"], "properties": {"helpful": {"type": "boolean"}}},
}

PATHS: dict[str, Any] = {
    "/api/v1/articles": {
        "get": {
            "summary": "List knowledge articles in id order",
            "parameters": [
                {"name": "locale", "in": "query", "schema": LOCALE},
                {"name": "category", "in": "query", "schema": {"type": "string"}},
                {"name": "published", "in": "query", "schema": {"type": "boolean"}},
                {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "substring"},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
            ],
            "responses": {"200": _json(_ref("ArticleList")), **_errors(400, 401)},
        },
        "post": {
            "summary": "Create an article (admin); an id is made up when none is given",
            "requestBody": _body("ArticleInput"),
            "responses": {"201": _json(_ref("Article"), "Created"), **_errors(400, 401, 403, 409, 422)},
        },
    },
    "/api/v1/articles/{id}": {
        "get": {
            "summary": "An article with its stats",
            "parameters": [ID],
            "responses": {"200": _json(_ref("Article")), **_errors(401, 404)},
        },
        "put": {
            "summary": "Create or replace an article (admin); the old content is kept as a version",
            "parameters": [ID],
            "requestBody": _body("ArticleInput"),
            "responses": {
                "200": _json(_ref("Article"), "Updated or unchanged"),
                "201": _json(_ref("Article"), "Created"),
                **_errors(400, 401, 403, 422),
            },
        },
        "delete": {
            "summary": "Delete an article (admin)",
            "parameters": [ID],
            "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)},
        },
    },
    "/api/v1/articles/{id}/versions": {
        "get": {
            "summary": "Earlier versions of an article, newest first",
            "parameters": [ID],
            "responses": {"200": _json(_ref("ArticleVersions")), **_errors(401, 404)},
        }
    },
    "/api/v1/articles/{id}/feedback": {
        "post": {
            "summary": "A reader's helpful / not helpful vote (public, rate-limited)",
            "security": [],
            "parameters": [ID],
            "requestBody": _body("Feedback"),
            "responses": {"200": _json({"type": "object"}), "429": LIMITED, **_errors(400, 404, 422)},
        }
    },
    "/api/v1/articles/match": {
        "post": {
            "summary": "Try a query (admin): scores and explanations, current and proposed settings",
            "requestBody": _body("MatchRequest"),
            "responses": {"200": _json(_ref("MatchResult")), **_errors(400, 401, 403, 422)},
        }
    },
    "/api/v1/settings/matching": {
        "get": {
            "summary": "The knowledge matching settings",
            "responses": {"200": _json(_ref("MatchingSettings")), **_errors(401)},
        },
        "put": {
            "summary": "Change matching settings (admin); the keys given replace their values, at once",
            "requestBody": _body("MatchingSettings"),
            "responses": {"200": _json(_ref("MatchingSettings")), **_errors(400, 401, 403, 422)},
        },
    },
    "/api/v1/suggest": {
        "get": {
            "summary": "Article suggestions while a customer types (public, rate-limited), best first",
            "security": [],
            "parameters": [
                {"name": "q", "in": "query", "schema": {"type": "string"}},
                {"name": "locale", "in": "query", "schema": LOCALE},
                {"name": "form", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {"200": _json(_ref("SuggestList")), "429": LIMITED, **_errors(422)},
        }
    },
    "/api/v1/deflections": {
        "post": {
            "summary": "An article solved a web-form customer's problem: count it, make no ticket (public)",
            "security": [],
            "requestBody": _body("Deflection"),
            "responses": {
                "201": _json({"type": "object"}, "Recorded"),
                "200": _json({"type": "object"}, "Already recorded for this key"),
                "429": LIMITED,
                **_errors(400, 404, 422),
            },
        }
    },
}
