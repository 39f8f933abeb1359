"""The OpenAPI 3.1 document for `/api/v1`, kept beside the routes it describes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api import console_openapi, kb_openapi, ops_openapi

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(ERROR, "Error") for c in codes}


NUMBER = {
    "name": "number",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "example": "T-000123"},
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Omnigate API", "version": "1"},
    "servers": [{"url": "/"}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                    }
                },
            },
            "Ticket": {
                "type": "object",
                "required": [
                    "id",
                    "number",
                    "subject",
                    "status",
                    "priority",
                    "channel",
                    "requester",
                    "created_at",
                    "updated_at",
                ],
                "properties": {
                    "id": {"type": "string"},
                    "number": {"type": "string"},
                    "subject": {"type": "string"},
                    "status": {"enum": ["new", "open", "pending", "on_hold", "solved", "closed"]},
                    "priority": {"enum": ["urgent", "high", "normal", "low"]},
                    "category": {"type": ["string", "null"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "channel": {"type": "string"},
                    "requester": {"type": "string"},
                    "assignee": {"type": ["string", "null"]},
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"},
                    "sla": {"type": "object"},
                },
            },
            "TicketList": {
                "type": "object",
                "required": ["items", "next"],
                "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Ticket"}},
                    "next": {"type": ["string", "null"]},
                },
            },
            "TicketUpdate": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "status": {"enum": ["new", "open", "pending", "on_hold", "solved", "closed"]},
                    "priority": {"enum": ["urgent", "high", "normal", "low"]},
                    "assignee": {"type": ["string", "null"]},
                    "category": {"type": ["string", "null"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Reply": {
                "type": "object",
                "required": ["text"],
                "properties": {
                    "text": {"type": "string", "minLength": 1},
                    "type": {"enum": ["public", "internal"]},
                },
            },
            "Delivery": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "state": {"enum": ["pending", "sending", "sent", "dead"]},
                    "channel": {"type": "string"},
                    "attempts": {"type": "integer"},
                    "last_error": {"type": "string"},
                },
            },
            "DeliveryList": {
                "type": "object",
                "required": ["items", "next"],
                "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}},
                    "next": {"type": ["string", "null"]},
                },
            },
            "FormSubmission": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "email": {"type": "string"},
                    "phone": {"type": "string"},
                    "subject": {"type": "string"},
                    "description": {"type": "string"},
                    "category": {"type": "string"},
                    "idempotency_key": {"type": "string"},
                },
            },
            "FormAccepted": {
                "type": "object",
                "required": ["reference"],
                "properties": {
                    "reference": {"type": "string"},
                    "ticket": {"type": "object", "properties": {"number": {"type": "string"}}},
                },
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/tickets": {
            "get": {
                "summary": "List tickets, newest first",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": "string"}}
                    for n in ("status", "channel", "requester", "assignee", "priority", "category", "cursor")
                ]
                + [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    }
                ],
                "responses": {"200": _json({"$ref": "#/components/schemas/TicketList"}), **_errors(400, 401)},
            }
        },
        "/api/v1/tickets/{number}": {
            "get": {
                "summary": "A ticket with its events",
                "parameters": [NUMBER],
                "responses": {"200": _json({"$ref": "#/components/schemas/Ticket"}), **_errors(401, 404)},
            },
            "patch": {
                "summary": "Change status, priority, assignee, category or tags",
                "parameters": [NUMBER],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/TicketUpdate"}}
                    },
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Ticket"}),
                    **_errors(400, 401, 403, 404, 409, 422),
                },
            },
        },
        "/api/v1/tickets/{number}/replies": {
            "post": {
                "summary": "Add a public reply (sent to the customer) or an internal note",
                "parameters": [NUMBER],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Reply"}}},
                },
                "responses": {
                    "201": _json({"type": "object"}, "Created"),
                    **_errors(400, 401, 403, 404, 422),
                },
            }
        },
        "/api/v1/tickets/{number}/deliveries": {
            "get": {
                "summary": "Outbox records (notifications) of a ticket",
                "parameters": [NUMBER],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/DeliveryList"}),
                    **_errors(401, 404),
                },
            }
        },
        "/api/v1/outbox": {
            "get": {
                "summary": "Outbox records, newest first",
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"enum": ["pending", "sending", "sent", "dead"]},
                    },
                    {"name": "channel", "in": "query", "schema": {"type": "string"}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    },
                ],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/DeliveryList"}),
                    **_errors(400, 401),
                },
            }
        },
        "/forms/{form}": {
            "post": {
                "summary": "Submit a web form (JSON, form-encoded or multipart)",
                "security": [],
                "parameters": [
                    {"name": "form", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/FormSubmission"}},
                        "application/x-www-form-urlencoded": {
                            "schema": {"$ref": "#/components/schemas/FormSubmission"}
                        },
                        "multipart/form-data": {"schema": {"$ref": "#/components/schemas/FormSubmission"}},
                    },
                },
                "responses": {
                    "201": _json({"$ref": "#/components/schemas/FormAccepted"}, "Ticket created"),
                    "200": _json({"$ref": "#/components/schemas/FormAccepted"}, "Replayed"),
                    "202": _json({"$ref": "#/components/schemas/FormAccepted"}, "Accepted"),
                    **_errors(400, 404, 413, 415, 422, 503),
                },
            }
        },
    },
}

DOCUMENT["components"]["schemas"].update(kb_openapi.SCHEMAS)
DOCUMENT["paths"].update(kb_openapi.PATHS)
DOCUMENT["components"]["schemas"].update(ops_openapi.SCHEMAS)
DOCUMENT["paths"].update(ops_openapi.PATHS)
DOCUMENT["components"]["schemas"].update(console_openapi.SCHEMAS)
DOCUMENT["paths"].update(console_openapi.PATHS)
for _path, _item in console_openapi.FALLBACK_PATHS.items():
    DOCUMENT["paths"].setdefault(_path, _item)
# Console sessions authenticate the API too (cookie plus X-CSRF-Token on changes).
DOCUMENT["components"]["securitySchemes"]["session"] = {
    "type": "apiKey",
    "in": "cookie",
    "name": "og_session",
}
DOCUMENT["security"] = [{"bearer": []}, {"session": []}]


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
