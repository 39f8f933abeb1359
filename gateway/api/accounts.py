"""REST for people and access: the caller (`/me`), console accounts (`/accounts`: role, password, language,
disabled; the routing profile of the same `agents` records is issue 7's `/api/v1/agents`), API tokens, and
the audit log."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from bson import ObjectId
from bson.errors import InvalidId

from gateway.accounts.setup_links import INVITE
from gateway.accounts.store import CONSOLE_LOCALES, validate_account
from gateway.api import admin_audit
from gateway.api.auth import principal
from gateway.api.tickets import json_response, read_json_object
from gateway.appkeys import ACCOUNTS, AUDIT, SESSIONS, SETTINGS, SETUP_LINKS, TOKENS
from gateway.tokens import ROLES, validate_scopes
from ticket_core.errors import InvalidInput, NotFound

routes = web.RouteTableDef()


def _fields_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field} {message}", code="invalid_fields", fields={field: message})


# -- the caller ----------------------------------------------------------------------------------------


@routes.get("/api/v1/me")
async def get_me(request: web.Request) -> web.Response:
    who = principal(request)
    account = await request.app[ACCOUNTS].find(who.name) if who.via == "session" else None
    return json_response(
        {
            "name": who.name,
            "role": who.role,
            "via": who.via,
            "teams": list(who.teams) if who.teams is not None else None,
            "scopes": list(who.scopes),
            "locale": account.locale if account else who.locale,
            "email": account.email if account else None,
        }
    )


@routes.patch("/api/v1/me")
async def patch_me(request: web.Request) -> web.Response:
    """Own preferences: the console language, and the password (with the current one)."""
    who = principal(request)
    if who.via != "session":
        raise InvalidInput("only a console session has preferences", code="not_an_account")
    body = await read_json_object(request)
    unknown = set(body) - {"locale", "password", "current_password"}
    if unknown:
        raise InvalidInput(
            "unknown fields", code="invalid_fields", fields={k: "unknown field" for k in unknown}
        )
    changes: dict[str, Any] = {}
    if "locale" in body:
        if body["locale"] not in CONSOLE_LOCALES:
            raise _fields_error("locale", f"must be one of {', '.join(CONSOLE_LOCALES)}")
        changes["locale"] = body["locale"]
    if "password" in body:
        current = body.get("current_password")
        if not isinstance(current, str) or await request.app[ACCOUNTS].verify(who.name, current) is None:
            raise _fields_error("current_password", "is not your current password")
        changes.update(validate_account({"password": body["password"]}, partial=True))
    before, after = await request.app[ACCOUNTS].update(who.name, changes)
    await admin_audit.record(
        request, "account.self_update", who.name, _pref(before.view()), _pref(after.view())
    )
    return json_response(after.view())


def _pref(view: dict[str, Any]) -> dict[str, Any]:
    return {"locale": view["locale"]}


# -- accounts --------------------------------------------------------------------------------------------


@routes.get("/api/v1/accounts")
async def list_agents(request: web.Request) -> web.Response:
    accounts = await request.app[ACCOUNTS].all()
    items = [a.view() for a in accounts]
    return json_response({"items": items, "next": None})


@routes.post("/api/v1/accounts")
async def create_agent(request: web.Request) -> web.Response:
    fields = validate_account(await read_json_object(request), partial=False)
    account = await request.app[ACCOUNTS].create(fields)
    answer = account.view()
    if not account.has_password:
        # The person sets their own password through a one-time link the admin passes on.
        token = await request.app[SETUP_LINKS].create(INVITE, agent=account.name)
        answer["setup_url"] = f"{request.app[SETTINGS].server.public_url.rstrip('/')}/admin/setup/{token}"
    await admin_audit.record(request, "account.create", account.name, None, account.view())
    return json_response(answer, status=201)


@routes.get("/api/v1/accounts/{name}")
async def get_agent(request: web.Request) -> web.Response:
    account = await request.app[ACCOUNTS].get(request.match_info["name"])
    return json_response(account.view())


@routes.patch("/api/v1/accounts/{name}")
async def update_agent(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    fields = validate_account(await read_json_object(request), partial=True)
    if "name" in fields and fields["name"] != name:
        raise _fields_error("name", "cannot be changed (tickets and events refer to it)")
    await _keep_an_admin(request, name, fields)
    before, after = await request.app[ACCOUNTS].update(name, fields)
    if fields.get("disabled") or fields.get("password") or ("role" in fields and before.role != after.role):
        await request.app[SESSIONS].delete_for(name)
    await admin_audit.record(request, "account.update", name, before.view(), after.view())
    return json_response(after.view())


@routes.delete("/api/v1/accounts/{name}")
async def delete_agent(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    await _keep_an_admin(request, name, {"disabled": True})
    before = await request.app[ACCOUNTS].delete(name)
    await request.app[SESSIONS].delete_for(name)
    await admin_audit.record(request, "account.delete", name, before.view(), None)
    return web.Response(status=204)


async def _keep_an_admin(request: web.Request, name: str, fields: dict[str, Any]) -> None:
    """Nobody may lock everyone out: the last enabled admin stays an enabled admin."""
    target = await request.app[ACCOUNTS].get(name)
    demoted = fields.get("disabled") is True or ("role" in fields and fields["role"] != "admin")
    if target.role != "admin" or not demoted:
        return
    admins = [a for a in await request.app[ACCOUNTS].all() if a.role == "admin" and not a.disabled]
    if len(admins) <= 1:
        raise InvalidInput("the last admin cannot be removed, disabled or demoted", code="last_admin")


@routes.post("/api/v1/accounts/{name}/setup-link")
async def agent_setup_link(request: web.Request) -> web.Response:
    """A new one-time link for an agent to set (or reset) their password."""
    account = await request.app[ACCOUNTS].get(request.match_info["name"])
    token = await request.app[SETUP_LINKS].create(INVITE, agent=account.name)
    await admin_audit.record(request, "account.setup_link", account.name)
    base = request.app[SETTINGS].server.public_url.rstrip("/")
    return json_response({"setup_url": f"{base}/admin/setup/{token}"}, status=201)


# -- API tokens ------------------------------------------------------------------------------------------


@routes.get("/api/v1/tokens")
async def list_tokens(request: web.Request) -> web.Response:
    return json_response({"items": await request.app[TOKENS].list(), "next": None})


@routes.post("/api/v1/tokens")
async def create_token(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    name, role = body.get("name"), body.get("role")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise _fields_error("name", "is required (at most 100 characters)")
    if role not in ROLES:
        raise _fields_error("role", f"must be one of {', '.join(ROLES)}")
    scopes = body.get("scopes", ["*"])
    try:
        scopes = list(validate_scopes(scopes if isinstance(scopes, list) else []))
    except ValueError as exc:
        raise _fields_error("scopes", str(exc)) from exc
    agent = body.get("agent")
    if agent is not None:
        if not isinstance(agent, str):
            raise _fields_error("agent", "must be an account name")
        await request.app[ACCOUNTS].get(agent)
    token, doc = await request.app[TOKENS].create_record(
        name=name.strip(), role=role, scopes=scopes, agent=agent, created_by=principal(request).name
    )
    from gateway.tokens import token_view

    view = token_view(doc)
    await admin_audit.record(request, "token.create", view["id"], None, view)
    return json_response({**view, "token": token}, status=201)


@routes.delete("/api/v1/tokens/{id}")
async def revoke_token(request: web.Request) -> web.Response:
    token_id = request.match_info["id"]
    before = await request.app[TOKENS].revoke(token_id, by=principal(request).name)
    if before is None:
        raise NotFound(f"no token {token_id}")
    await admin_audit.record(request, "token.revoke", token_id, before, {**before, "revoked": True})
    return web.Response(status=204)


# -- audit log -------------------------------------------------------------------------------------------


@routes.get("/api/v1/audit")
async def list_audit(request: web.Request) -> web.Response:
    allowed = {"actor", "action", "limit", "cursor"}
    unknown = set(request.query) - allowed
    if unknown:
        raise InvalidInput(f"unknown filter(s): {', '.join(sorted(unknown))}", code="invalid_filter")
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError as exc:
        raise InvalidInput("limit must be a number", code="invalid_limit") from exc
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be between 1 and 500", code="invalid_limit")
    before_id = None
    if request.query.get("cursor"):
        try:
            before_id = ObjectId(request.query["cursor"])
        except (InvalidId, TypeError) as exc:
            raise InvalidInput("cursor is not valid", code="invalid_filter") from exc
    items = await request.app[AUDIT].search(
        actor=request.query.get("actor") or None,
        action=request.query.get("action") or None,
        limit=limit + 1,
        before_id=before_id,
    )
    more = len(items) > limit
    items = items[:limit]
    return json_response({"items": items, "next": str(items[-1]["_id"]) if more else None})
