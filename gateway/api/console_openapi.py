"""OpenAPI paths and schemas of the console's endpoints (accounts, tokens, audit, views, macros,
templates, webhooks, channels, dashboard, knowledge tools) and of the ticket-operations endpoints that
had none, merged into the document in `openapi.py`."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
OBJ: dict[str, Any] = {"type": "object"}
STRINGS = {"type": "array", "items": {"type": "string"}}
NULL_STR = {"type": ["string", "null"]}
TIME = {"type": ["string", "null"], "format": "date-time"}
LOCALE = {"enum": ["en", "zh-CN"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next"],
        "properties": {"items": {"type": "array", "items": item}, "next": NULL_STR},
    }


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def _query(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema or {"type": "string"}}


def op(
    summary: str,
    ok: dict[str, Any] | None,
    *errors: int,
    status: int = 200,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    public: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": summary, "responses": {}}
    if ok is None:
        out["responses"][str(status)] = {"description": "Done"}
    else:
        out["responses"][str(status)] = _json(ok)
    for code in (401, 403, *errors) if not public else errors:
        out["responses"][str(code)] = _json(ERROR, "Error")
    if body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        out["parameters"] = params
    if public:
        out["security"] = []
    return out


NAME = _path("name")
ID = _path("id")
TEMPLATE_KEY = [_path("event"), _path("channel"), _path("locale", LOCALE)]

SCHEMAS: dict[str, Any] = {
    "Me": {
        "type": "object",
        "required": ["name", "role", "via"],
        "properties": {
            "name": {"type": "string"},
            "role": {"enum": ["admin", "agent", "viewer"]},
            "via": {"enum": ["token", "session"]},
            "teams": {"type": ["array", "null"], "items": {"type": "string"}},
            "scopes": STRINGS,
            "locale": LOCALE,
            "email": NULL_STR,
        },
    },
    "MeUpdate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "locale": LOCALE,
            "password": {"type": "string"},
            "current_password": {"type": "string"},
        },
    },
    "Account": {
        "type": "object",
        "required": ["name", "role"],
        "properties": {
            "name": {"type": "string"},
            "role": {"enum": ["admin", "agent", "viewer"]},
            "email": NULL_STR,
            "teams": STRINGS,
            "locale": LOCALE,
            "disabled": {"type": "boolean"},
            "has_password": {"type": "boolean"},
            "setup_url": {"type": "string", "description": "only when created without a password"},
        },
    },
    "AccountInput": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[\\w.\\-]{1,64}$"},
            "role": {"enum": ["admin", "agent", "viewer"]},
            "email": NULL_STR,
            "teams": STRINGS,
            "locale": LOCALE,
            "disabled": {"type": "boolean"},
            "password": {"type": "string", "minLength": 10, "maxLength": 256},
        },
    },
    "Token": {
        "type": "object",
        "required": ["id", "name", "role", "scopes", "revoked"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "role": {"enum": ["admin", "agent", "viewer"]},
            "scopes": STRINGS,
            "agent": NULL_STR,
            "created_at": TIME,
            "created_by": NULL_STR,
            "last_used_at": TIME,
            "revoked": {"type": "boolean"},
            "revoked_at": TIME,
            "token": {"type": "string", "description": "only in the answer to POST: shown once"},
        },
    },
    "TokenInput": {
        "type": "object",
        "required": ["name", "role"],
        "properties": {
            "name": {"type": "string"},
            "role": {"enum": ["admin", "agent", "viewer"]},
            "scopes": {**STRINGS, "description": "'*' or '<area>:read|write', e.g. tickets:read"},
            "agent": {"type": "string", "description": "the account whose teams limit what it sees"},
        },
    },
    "AuditRecord": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "at": TIME,
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "target": {"type": ["string", "null"]},
            "before": {},
            "after": {},
            "address": NULL_STR,
            "outcome": {"type": "string"},
            "via": {"type": "string"},
        },
    },
    "View": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "filters": {"type": "object", "additionalProperties": {"type": "string"}},
            "shared": {"type": "boolean"},
            "owner": {"type": "string"},
            "created_at": TIME,
        },
    },
    "ViewInput": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "filters": {"type": "object", "additionalProperties": {"type": "string"}},
            "shared": {"type": "boolean"},
        },
    },
    "Macro": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "title": {"type": "string"},
            "text": {
                "anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": {"type": "string"}}]
            },
            "tags": STRINGS,
            "priority": {"type": ["string", "null"]},
            "status": {"type": ["string", "null"]},
        },
    },
    "TemplateParts": {
        "type": "object",
        "properties": {"subject": NULL_STR, "text": NULL_STR, "html": NULL_STR},
    },
    "TemplateSummary": {
        "type": "object",
        "properties": {
            "event": {"type": "string"},
            "channel": {"type": "string"},
            "locale": LOCALE,
            "overridden": {"type": "boolean"},
            "updated_at": TIME,
            "updated_by": NULL_STR,
        },
    },
    "TemplateList": {
        "allOf": [
            _list(_ref("TemplateSummary")),
            {"type": "object", "properties": {"events": STRINGS, "channels": STRINGS, "locales": STRINGS}},
        ]
    },
    "Template": {
        "type": "object",
        "properties": {
            "event": {"type": "string"},
            "channel": {"type": "string"},
            "locale": LOCALE,
            "overridden": {"type": "boolean"},
            "parts": _ref("TemplateParts"),
            "defaults": _ref("TemplateParts"),
        },
    },
    "TemplateInput": {"type": "object", "properties": {"parts": _ref("TemplateParts")}},
    "TemplatePreviewInput": {
        "type": "object",
        "properties": {"locale": LOCALE, "parts": _ref("TemplateParts")},
    },
    "TemplatePreview": {
        "type": "object",
        "required": ["rendered", "errors"],
        "properties": {
            "rendered": _ref("TemplateParts"),
            "errors": {"type": "object", "additionalProperties": {"type": "string"}},
            "context": OBJ,
        },
    },
    "Webhook": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string"},
            "events": STRINGS,
            "active": {"type": "boolean"},
            "description": {"type": "string"},
            "created_at": TIME,
            "last_status": {"type": ["integer", "null"]},
            "secret": {"type": "string", "description": "only in the answer to POST: shown once"},
        },
    },
    "WebhookInput": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "format": "uri"},
            "events": {
                "type": "array",
                "items": {
                    "enum": [
                        "*",
                        "ticket.created",
                        "ticket.status_changed",
                        "ticket.public_reply",
                        "ticket.internal_note",
                        "ticket.customer_comment",
                        "ticket.updated",
                    ]
                },
            },
            "active": {"type": "boolean"},
            "description": {"type": "string"},
            "secret": {"type": "string", "minLength": 16},
        },
    },
    "ChannelStatus": {
        "type": "object",
        "properties": {
            "channel": {"type": "string"},
            "account": {"type": "string"},
            "endpoint": NULL_STR,
            "mode": {"type": "string"},
            "last_message_in": TIME,
            "last_sent": TIME,
            "last_error": {"type": ["object", "null"]},
        },
    },
    "Dashboard": {
        "type": "object",
        "required": ["from", "to", "days", "volume_by_channel", "csat", "deflection", "sla", "backlog"],
        "properties": {
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
            "days": STRINGS,
            "tickets": {"type": "integer"},
            "volume_by_channel": {"type": "object", "additionalProperties": {"type": "array"}},
            "frt_hours": {"type": "array", "items": {"type": ["number", "null"]}},
            "art_hours": {"type": "array", "items": {"type": ["number", "null"]}},
            "csat": OBJ,
            "deflection": OBJ,
            "sla": OBJ,
            "backlog": {"type": "array", "items": OBJ},
            "source": {"type": "string"},
        },
    },
    "MatchImpact": {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "queries": {"type": "integer"},
            "deflections": {"type": "integer"},
            "current": OBJ,
            "proposed": OBJ,
        },
    },
}

DATE = {"type": "string", "format": "date"}
ANY_LIST = _list(OBJ)

PATHS: dict[str, Any] = {
    "/api/v1/me": {
        "get": op("The caller: role, teams, scopes, language", _ref("Me")),
        "patch": op(
            "Change one's own language or password (console sessions)",
            _ref("Account"),
            400,
            422,
            body=_ref("MeUpdate"),
        ),
    },
    "/api/v1/accounts": {
        "get": op("Console accounts (admin)", _list(_ref("Account"))),
        "post": op(
            "Create an account; without a password the answer has a one-time setup_url",
            _ref("Account"),
            409,
            422,
            status=201,
            body=_ref("AccountInput"),
        ),
    },
    "/api/v1/accounts/{name}": {
        "get": op("One account", _ref("Account"), 404, params=[NAME]),
        "patch": op(
            "Change role, teams, email, language, password or disabled",
            _ref("Account"),
            400,
            404,
            422,
            body=_ref("AccountInput"),
            params=[NAME],
        ),
        "delete": op("Delete an account (ends its sessions)", None, 400, 404, status=204, params=[NAME]),
    },
    "/api/v1/accounts/{name}/setup-link": {
        "post": op(
            "A new one-time link to set the password",
            {"type": "object", "properties": {"setup_url": {"type": "string"}}},
            404,
            status=201,
            params=[NAME],
        )
    },
    "/api/v1/tokens": {
        "get": op("API tokens with last use (admin)", _list(_ref("Token"))),
        "post": op(
            "Create a token (shown once)", _ref("Token"), 404, 422, status=201, body=_ref("TokenInput")
        ),
    },
    "/api/v1/tokens/{id}": {"delete": op("Revoke a token", None, 404, status=204, params=[ID])},
    "/api/v1/audit": {
        "get": op(
            "Audit records, newest first (admin)",
            _list(_ref("AuditRecord")),
            400,
            params=[
                _query("actor"),
                _query("action", {"type": "string", "description": "prefix"}),
                _query("cursor"),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
            ],
        )
    },
    "/api/v1/views": {
        "get": op("Saved views of the ticket queue (own and shared)", _list(_ref("View"))),
        "post": op("Save a view", _ref("View"), 422, status=201, body=_ref("ViewInput")),
    },
    "/api/v1/views/{id}": {"delete": op("Delete a saved view", None, 404, status=204, params=[ID])},
    "/api/v1/macros": {"get": op("Macros", _list(_ref("Macro")))},
    "/api/v1/macros/{name}": {
        "put": op("Create or replace a macro", _ref("Macro"), 422, body=_ref("Macro"), params=[NAME]),
        "delete": op("Delete a macro", None, 404, status=204, params=[NAME]),
    },
    "/api/v1/templates": {"get": op("Notification templates: defaults and overrides", _ref("TemplateList"))},
    "/api/v1/templates/{event}/{channel}/{locale}": {
        "get": op(
            "A template's effective source and its defaults", _ref("Template"), 404, params=TEMPLATE_KEY
        ),
        "put": op("Override a template", OBJ, 400, 404, 422, body=_ref("TemplateInput"), params=TEMPLATE_KEY),
        "delete": op("Back to the packaged default", None, 404, status=204, params=TEMPLATE_KEY),
    },
    "/api/v1/templates/preview": {
        "post": op(
            "Render an unsaved template with sample data",
            _ref("TemplatePreview"),
            400,
            422,
            body=_ref("TemplatePreviewInput"),
        )
    },
    "/api/v1/webhooks": {
        "get": op("Outgoing webhook subscriptions (admin)", _list(_ref("Webhook"))),
        "post": op(
            "Subscribe (the signing secret is shown once)",
            _ref("Webhook"),
            422,
            status=201,
            body=_ref("WebhookInput"),
        ),
    },
    "/api/v1/webhooks/{id}": {
        "get": op("A subscription", _ref("Webhook"), 404, params=[ID]),
        "patch": op(
            "Change a subscription", _ref("Webhook"), 404, 422, body=_ref("WebhookInput"), params=[ID]
        ),
        "delete": op("Unsubscribe", None, 404, status=204, params=[ID]),
    },
    "/api/v1/channels": {
        "get": op("Configured channels with last message in and last error", _list(_ref("ChannelStatus")))
    },
    "/api/v1/dashboard": {
        "get": op(
            "KPIs over a date range (at most 366 days)",
            _ref("Dashboard"),
            400,
            params=[_query("from", DATE), _query("to", DATE)],
        )
    },
    "/api/v1/articles/preview": {
        "post": op(
            "Render article Markdown as the public page would",
            {"type": "object", "required": ["html"], "properties": {"html": {"type": "string"}}},
            400,
            422,
            body={"type": "object", "required": ["body"], "properties": {"body": {"type": "string"}}},
        )
    },
    "/api/v1/settings/matching/impact": {
        "post": op(
            "What proposed matching settings would have done to the last n queries and deflections",
            _ref("MatchImpact"),
            400,
            422,
            body={
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 1000}, "settings": OBJ},
            },
        )
    },
    "/api/v1/tickets/{number}/attachments/{file_id}": {
        "get": {
            "summary": "Download an attachment of a ticket",
            "parameters": [_path("number"), _path("file_id")],
            "responses": {
                "200": {
                    "description": "The file, always as a download",
                    "content": {
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                **{str(c): _json(ERROR, "Error") for c in (401, 403, 404)},
            },
        }
    },
}


# -- ticket operations (issue 7): loose entries used only where its own document has none ----------------

_CHANGE = (400, 404, 409, 422)
_CSV_OR_JSON = {
    "description": "OK",
    "content": {"application/json": {"schema": OBJ}, "text/csv": {"schema": {"type": "string"}}},
}


def _report(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    out = op(summary, OBJ, 400, params=params)
    out["responses"]["200"] = _CSV_OR_JSON
    return out


REPORT_PARAMS = [
    _query("from", DATE),
    _query("to", DATE),
    _query("by"),
    _query("format", {"enum": ["json", "csv"]}),
]

FALLBACK_PATHS: dict[str, Any] = dict(
    {
        "/api/v1/openapi.json": {"get": op("This document", OBJ, public=True)},
        "/api/v1/rules": {
            "get": op("Auto-reply rules", ANY_LIST),
            "post": op("Create a rule (admin)", OBJ, *_CHANGE, status=201, body=OBJ),
        },
        "/api/v1/rules/{id}": {
            "put": op("Replace a rule (admin)", OBJ, *_CHANGE, body=OBJ, params=[ID]),
            "delete": op("Delete a rule (admin)", None, 404, status=204, params=[ID]),
        },
        "/api/v1/rules/dry-run": {
            "post": op(
                "Which rules fire for a sample message",
                OBJ,
                *_CHANGE,
                body={
                    "type": "object",
                    "required": ["text"],
                    "properties": {
                        "text": {"type": "string"},
                        "channel": {"type": "string"},
                        "locale": {"type": "string"},
                        "at": {"type": "string", "format": "date-time"},
                        "first_contact": {"type": "boolean"},
                        "customer_tags": STRINGS,
                    },
                },
            )
        },
        "/api/v1/teams": {
            "get": op("Teams", ANY_LIST),
            "post": op("Create a team (admin)", OBJ, *_CHANGE, status=201, body=OBJ),
        },
        "/api/v1/teams/{name}": {
            "put": op("Change a team (admin)", OBJ, *_CHANGE, body=OBJ, params=[NAME]),
            "delete": op("Delete a team (admin)", None, 404, status=204, params=[NAME]),
        },
        "/api/v1/agents": {
            "get": op("Agents' routing profiles (teams, skills, on-line, capacity)", ANY_LIST),
            "post": op(
                "Create or update an agent's routing profile (admin)", OBJ, *_CHANGE, status=201, body=OBJ
            ),
        },
        "/api/v1/agents/{name}": {
            "patch": op(
                "Change a routing profile (an agent: only their own on-line state)",
                OBJ,
                *_CHANGE,
                body=OBJ,
                params=[NAME],
            )
        },
        "/api/v1/routing-rules": {
            "get": op("Routing rules", ANY_LIST),
            "post": op("Create a routing rule (admin)", OBJ, *_CHANGE, status=201, body=OBJ),
        },
        "/api/v1/routing-rules/{id}": {
            "put": op("Replace a routing rule (admin)", OBJ, *_CHANGE, body=OBJ, params=[ID]),
            "delete": op("Delete a routing rule (admin)", None, 404, status=204, params=[ID]),
        },
        "/api/v1/routing-rules/dry-run": {
            "post": op("Where a ticket would be routed", OBJ, *_CHANGE, body=OBJ)
        },
        "/api/v1/routing-rules/replay": {
            "post": op("Replay rules over past tickets", OBJ, *_CHANGE, body=OBJ)
        },
        "/api/v1/sla-policies": {
            "get": op("SLA policies", ANY_LIST),
            "post": op("Create an SLA policy (admin)", OBJ, *_CHANGE, status=201, body=OBJ),
        },
        "/api/v1/sla-policies/{id}": {
            "put": op("Replace an SLA policy (admin)", OBJ, *_CHANGE, body=OBJ, params=[ID]),
            "delete": op("Delete an SLA policy (admin)", None, 404, status=204, params=[ID]),
        },
        "/api/v1/business-hours": {
            "get": op("The business-hours calendar", OBJ),
            "put": op("Replace the business-hours calendar (admin)", OBJ, *_CHANGE, body=OBJ),
        },
        "/api/v1/notification-settings": {
            "get": op("Per-event customer notification switches and quiet hours", OBJ),
            "put": op("Change notification settings (admin)", OBJ, *_CHANGE, body=OBJ),
        },
        "/api/v1/tasks": {"get": op("Follow-up tasks (low CSAT)", ANY_LIST, 400)},
        "/api/v1/tasks/{id}": {"patch": op("Change a task", OBJ, *_CHANGE, body=OBJ, params=[ID])},
        "/api/v1/reports/summary": {
            "get": _report("KPIs: FRT, ART, FCR, CSAT, deflection, SLA", REPORT_PARAMS)
        },
        "/api/v1/reports/backlog": {"get": _report("Open tickets and their age", REPORT_PARAMS)},
        "/api/v1/reports/rebuild": {"post": op("Rebuild the report rollups (admin)", OBJ, 400, body=OBJ)},
    }
)
