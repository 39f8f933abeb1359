"""OpenAPI paths and schemas of ticket operations (routing, SLA, notifications, tasks, reports, CSAT),
merged into the document in `openapi.py`."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
STRINGS = {"type": "array", "items": {"type": "string"}}
OBJECT = {"type": "object", "additionalProperties": True}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(ERROR, "Error") for c in codes}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _list(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": _ref(name)}, "next": {"type": ["string", "null"]}},
    }


def _crud(name: str, schema: str, key: str, summary: str) -> dict[str, Any]:
    param = {"name": key, "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        f"/api/v1/{name}": {
            "get": {"summary": f"List {summary}", "responses": {"200": _json(_list(schema)), **_errors(401)}},
            "post": {
                "summary": f"Create {summary} (admin)",
                "requestBody": _body(_ref(schema)),
                "responses": {"201": _json(_ref(schema)), **_errors(401, 403, 422)},
            },
        },
        f"/api/v1/{name}/{{{key}}}": {
            "put": {
                "summary": f"Replace {summary} (admin)",
                "parameters": [param],
                "requestBody": _body(_ref(schema)),
                "responses": {"200": _json(_ref(schema)), **_errors(401, 403, 404, 422)},
            },
            "delete": {
                "summary": f"Delete {summary} (admin)",
                "parameters": [param],
                "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)},
            },
        },
    }


CALENDAR = {
    "type": "object",
    "properties": {
        "timezone": {"type": "string", "example": "Asia/Shanghai"},
        "hours": {
            "type": ["object", "null"],
            "description": "weekday (mon..sun) -> [[HH:MM, HH:MM], ...]; null: around the clock",
            "additionalProperties": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "string"}},
            },
        },
        "holidays": {"type": "array", "items": {"type": "string", "format": "date"}},
    },
}
ROUTING_CONTEXT = {
    "type": "object",
    "description": "A ticket inline, or `ticket` (its number); `rules`: unsaved rules to try",
    "properties": {
        "ticket": {"type": "string"},
        "subject": {"type": "string"},
        "description": {"type": "string"},
        "category": {"type": "string"},
        "channel": {"type": "string"},
        "priority": {"enum": ["urgent", "high", "normal", "low"]},
        "customer_tags": STRINGS,
        "tier": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        "rules": {"type": "array", "items": _ref("RoutingRule")},
    },
}
METRICS = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "tickets": {"type": "integer"},
        "first_response": OBJECT,
        "resolution": OBJECT,
        "first_contact_resolution": OBJECT,
        "reopened": {"type": "integer"},
        "csat": OBJECT,
        "sla": OBJECT,
        "deflection": OBJECT,
    },
}
REPORT_QUERY = [
    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}},
]

SCHEMAS: dict[str, Any] = {
    "Team": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "strategy": {"enum": ["least_open", "round_robin", "manual"]},
            "lead": {"type": ["string", "null"], "description": "agent name; escalations and low ratings"},
        },
    },
    "AgentProfile": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "role": {"enum": ["admin", "agent", "viewer"]},
            "email": {"type": "string"},
            "telegram_user_id": {"type": "integer"},
            "username": {"type": "string"},
            "teams": STRINGS,
            "skills": STRINGS,
            "online": {"type": "boolean"},
            "capacity": {"type": ["integer", "null"], "minimum": 0},
            "open_tickets": {"type": "integer", "readOnly": True},
        },
    },
    "RoutingRule": {
        "type": "object",
        "required": ["name", "team"],
        "properties": {
            "name": {"type": "string"},
            "team": {"type": "string"},
            "skill": {"type": ["string", "null"]},
            "order": {"type": "integer"},
            "enabled": {"type": "boolean"},
            "conditions": {
                "type": "object",
                "properties": {
                    "categories": STRINGS,
                    "channels": STRINGS,
                    "keywords": STRINGS,
                    "priorities": STRINGS,
                    "customer_tags": STRINGS,
                    "tiers": STRINGS,
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        },
    },
    "RoutingDecision": {
        "type": "object",
        "properties": {
            "team": {"type": ["string", "null"]},
            "assignee": {"type": ["string", "null"]},
            "rule": {"type": ["string", "null"]},
            "skill": {"type": ["string", "null"]},
            "strategy": {"type": "string"},
            "reason": {"type": "string"},
            "candidates": STRINGS,
        },
    },
    "SlaPolicy": {
        "type": "object",
        "required": ["name", "targets"],
        "properties": {
            "name": {"type": "string"},
            "order": {"type": "integer"},
            "targets": {
                "type": "object",
                "description": "priority -> {first_response, resolution} in business minutes",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"first_response": {"type": "number"}, "resolution": {"type": "number"}},
                },
            },
            "categories": STRINGS,
            "tiers": STRINGS,
            "calendar": CALENDAR,
            "pause_statuses": STRINGS,
            "warn_before_minutes": {"type": "number"},
            "still_on_it_minutes": {"type": ["number", "null"]},
            "enabled": {"type": "boolean"},
        },
    },
    "BusinessHours": CALENDAR,
    "NotificationSettings": {
        "type": "object",
        "properties": {
            "events": {"type": "object", "additionalProperties": {"type": "boolean"}},
            "urgent_events": STRINGS,
            "quiet_hours": {
                "type": "object",
                "properties": {
                    "enabled": {"type": "boolean"},
                    "start": {"type": "string", "example": "22:00"},
                    "end": {"type": "string", "example": "08:00"},
                    "timezone": {"type": "string"},
                },
            },
        },
    },
    "Task": {"type": "object", "additionalProperties": True},
    "ReportSummary": {
        "type": "object",
        "properties": {
            "from": {"type": "string"},
            "to": {"type": "string"},
            "by": {"type": ["string", "null"]},
            "total": METRICS,
            "items": {"type": "array", "items": METRICS},
        },
    },
}

PATHS: dict[str, Any] = {
    **_crud("teams", "Team", "name", "a team"),
    **_crud("routing-rules", "RoutingRule", "id", "a routing rule"),
    **_crud("sla-policies", "SlaPolicy", "id", "an SLA policy"),
    "/api/v1/agents": {
        "get": {
            "summary": "Agents with their routing profile and open tickets",
            "responses": {"200": _json(_list("AgentProfile"))},
        },
        "post": {
            "summary": "Create or update an agent's routing profile (admin)",
            "requestBody": _body(_ref("AgentProfile")),
            "responses": {"201": _json(_ref("AgentProfile")), **_errors(401, 403, 422)},
        },
    },
    "/api/v1/agents/{name}": {
        "patch": {
            "summary": "Change an agent (admin), or one's own on-line state",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": _body(_ref("AgentProfile")),
            "responses": {"200": _json(_ref("AgentProfile")), **_errors(401, 403, 404, 422)},
        }
    },
    "/api/v1/routing-rules/dry-run": {
        "post": {
            "summary": "Who a ticket would be assigned to now (changes nothing)",
            "requestBody": _body(ROUTING_CONTEXT),
            "responses": {"200": _json(_ref("RoutingDecision")), **_errors(401, 404, 422)},
        }
    },
    "/api/v1/routing-rules/replay": {
        "post": {
            "summary": "What the rules would have done with tickets created in a range (changes nothing)",
            "requestBody": _body(
                {
                    "type": "object",
                    "properties": {
                        "from": {"type": "string", "format": "date-time"},
                        "to": {"type": "string", "format": "date-time"},
                        "rules": {"type": "array", "items": _ref("RoutingRule")},
                        "include_items": {"type": "boolean"},
                    },
                }
            ),
            "responses": {"200": _json(OBJECT), **_errors(401, 422)},
        }
    },
    "/api/v1/business-hours": {
        "get": {"summary": "The reporting calendar", "responses": {"200": _json(_ref("BusinessHours"))}},
        "put": {
            "summary": "Set the reporting calendar (admin)",
            "requestBody": _body(_ref("BusinessHours")),
            "responses": {"200": _json(_ref("BusinessHours")), **_errors(401, 403, 422)},
        },
    },
    "/api/v1/notification-settings": {
        "get": {
            "summary": "Per-event switches and quiet hours",
            "responses": {"200": _json(_ref("NotificationSettings"))},
        },
        "put": {
            "summary": "Change notification settings (admin; partial)",
            "requestBody": _body(_ref("NotificationSettings")),
            "responses": {"200": _json(_ref("NotificationSettings")), **_errors(401, 403, 422)},
        },
    },
    "/api/v1/tasks": {
        "get": {
            "summary": "Follow-up tasks (low ratings)",
            "parameters": [{"name": "state", "in": "query", "schema": {"enum": ["open", "done"]}}],
            "responses": {"200": _json(_list("Task"))},
        }
    },
    "/api/v1/tasks/{id}": {
        "patch": {
            "summary": "Mark a task done or open",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": _body({"type": "object", "properties": {"state": {"enum": ["open", "done"]}}}),
            "responses": {"200": _json(_ref("Task")), **_errors(401, 404, 422)},
        }
    },
    "/api/v1/reports/summary": {
        "get": {
            "summary": "FRT, resolution (avg, median), FCR, CSAT, SLA compliance, deflection; JSON or CSV",
            "parameters": [
                *REPORT_QUERY,
                {
                    "name": "by",
                    "in": "query",
                    "schema": {"enum": ["channel", "category", "team", "agent", "day"]},
                },
            ],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": _ref("ReportSummary")},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                **_errors(401, 422),
            },
        }
    },
    "/api/v1/reports/backlog": {
        "get": {
            "summary": "Open tickets and their age; JSON or CSV",
            "parameters": [
                {"name": "by", "in": "query", "schema": {"enum": ["channel", "category", "team", "agent"]}},
                {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}},
            ],
            "responses": {"200": _json(OBJECT), **_errors(401, 422)},
        }
    },
    "/api/v1/reports/rebuild": {
        "post": {
            "summary": "Recompute facts and rollups from the ticket history (admin)",
            "responses": {"200": _json(OBJECT), **_errors(401, 403)},
        }
    },
    "/csat/{token}": {
        "get": {
            "summary": "The public rating page (signed link from the solved notice)",
            "security": [],
            "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "HTML page"}, **_errors(404)},
        },
        "post": {
            "summary": "Rate a solved ticket 1-5 with an optional comment (form-encoded or JSON)",
            "security": [],
            "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": _body(
                {
                    "type": "object",
                    "properties": {"score": {"type": "integer"}, "comment": {"type": "string"}},
                }
            ),
            "responses": {"200": {"description": "Thanks page or JSON"}, **_errors(400, 404, 422)},
        },
    },
}
