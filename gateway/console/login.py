"""Logging in and out, and the one-time setup links (first admin, invited agents).

Before a session exists there is no per-session CSRF token, so these forms use a double-submit token:
a random cookie that the form must echo back."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from aiohttp import web

from gateway.accounts.passwords import check_strength
from gateway.accounts.sessions import COOKIE, CSRF_FIELD, IDLE, csrf_matches
from gateway.accounts.setup_links import FIRST_ADMIN
from gateway.accounts.store import validate_account
from gateway.api.auth import client_address, maybe_principal
from gateway.appkeys import ACCOUNTS, AUDIT, LOGIN_THROTTLE, SESSIONS, SETTINGS, SETUP_LINKS
from gateway.console.render import error_page, page
from ticket_core.errors import Conflict, InvalidInput

PRE_CSRF_COOKIE = "og_form_csrf"


def secure_cookies(request: web.Request) -> bool:
    """Secure when we are served over TLS, directly or behind a proxy whose public URL is https."""
    return request.secure or request.app[SETTINGS].server.public_url.lower().startswith("https://")


def _form_token(request: web.Request) -> str:
    return request.cookies.get(PRE_CSRF_COOKIE) or secrets.token_urlsafe(24)


def _with_form_token(request: web.Request, response: web.Response, token: str) -> web.Response:
    response.set_cookie(
        PRE_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request),
        path="/admin/",
    )
    return response


async def _form_ok(request: web.Request) -> bool:
    form = await request.post()
    given = form.get(CSRF_FIELD)
    expected = request.cookies.get(PRE_CSRF_COOKIE, "")
    return bool(expected) and csrf_matches(expected, given if isinstance(given, str) else None)


def _next(request: web.Request, value: str | None) -> str:
    # Only paths inside the console: a login link must not send people elsewhere (open redirect).
    if value and value.startswith("/admin/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin/tickets"


async def _start_session(request: web.Request, name: str, target: str) -> web.Response:
    value, _ = await request.app[SESSIONS].create(name, address=client_address(request))
    response = redirect(target)
    response.set_cookie(
        COOKIE,
        value,
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(request),
        path="/",
        max_age=int(IDLE.total_seconds()),
    )
    response.del_cookie(PRE_CSRF_COOKIE, path="/admin/")
    return response


async def login_form(request: web.Request) -> web.Response:
    if maybe_principal(request) is not None:
        return redirect(_next(request, request.query.get("next")))
    token = _form_token(request)
    response = page(
        request, "login.html", form_token=token, next=request.query.get("next", ""), error=None, login=""
    )
    return _with_form_token(request, response, token)


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    login = str(form.get("login", ""))[:200].strip()
    password = str(form.get("password", ""))
    target = _next(request, str(form.get("next", "")))
    token = _form_token(request)

    def again(status: int, error: str, headers: dict[str, str] | None = None) -> web.Response:
        response = page(
            request,
            "login.html",
            status=status,
            form_token=token,
            next=target,
            error=error,
            login=login,
            headers=headers,
        )
        return _with_form_token(request, response, token)

    if not await _form_ok(request):
        return again(403, "csrf")
    address = client_address(request)
    throttle = request.app[LOGIN_THROTTLE]
    audit = request.app[AUDIT]
    wait = await throttle.retry_after(login, address)
    if wait:
        await audit.record(actor=login or "?", action="login.throttled", address=address, outcome="refused")
        return again(429, "throttled", {"Retry-After": str(wait)})
    account = await request.app[ACCOUNTS].verify(login, password) if login and password else None
    if account is None:
        await throttle.failed(login, address)
        await audit.record(actor=login or "?", action="login.failed", address=address, outcome="refused")
        return again(401, "bad_login")
    await throttle.succeeded(login)
    await audit.record(actor=account.name, action="login", address=address, via="session")
    return await _start_session(request, account.name, target)


async def logout(request: web.Request) -> web.Response:
    who = maybe_principal(request)
    value = request.cookies.get(COOKIE)
    if value:
        await request.app[SESSIONS].delete(value)
    if who is not None:
        await request.app[AUDIT].record(actor=who.name, action="logout", address=client_address(request))
    response = redirect("/admin/login")
    response.del_cookie(COOKIE, path="/")
    return response


async def setup_form(request: web.Request) -> web.Response:
    link = await request.app[SETUP_LINKS].peek(request.match_info["token"])
    if link is None:
        return error_page(request, 404, "setup_invalid")
    token = _form_token(request)
    response = page(
        request, "setup.html", form_token=token, link=link, first=link["purpose"] == FIRST_ADMIN, error=None
    )
    return _with_form_token(request, response, token)


async def setup_submit(request: web.Request) -> web.Response:
    secret = request.match_info["token"]
    links = request.app[SETUP_LINKS]
    link = await links.peek(secret)
    if link is None:
        return error_page(request, 404, "setup_invalid")
    first = link["purpose"] == FIRST_ADMIN
    form = await request.post()
    token = _form_token(request)

    def again(status: int, error: str) -> web.Response:
        response = page(
            request, "setup.html", status=status, form_token=token, link=link, first=first, error=error
        )
        return _with_form_token(request, response, token)

    if not await _form_ok(request):
        return again(403, "csrf")
    password = str(form.get("password", ""))
    if password != str(form.get("password2", "")):
        return again(422, "passwords_differ")
    problem = check_strength(password)
    if problem:
        return again(422, problem)
    accounts = request.app[ACCOUNTS]
    locale = str(form.get("locale", "en"))
    if first:
        if await accounts.has_admin_login():
            return error_page(request, 404, "setup_invalid")
        raw = {
            "name": str(form.get("name", "")).strip(),
            "role": "admin",
            "password": password,
            "locale": locale if locale in ("en", "zh-CN") else "en",
        }
        if form.get("email"):
            raw["email"] = str(form.get("email"))
        try:
            fields = validate_account(raw, partial=False)
        except InvalidInput as exc:
            return again(422, "; ".join(f"{k}: {v}" for k, v in exc.fields.items()))
        if not await links.consume(secret):
            return error_page(request, 404, "setup_invalid")
        try:
            account = await accounts.create(fields)
        except Conflict as exc:
            return again(409, str(exc))
        action = "account.first_admin"
    else:
        if not await links.consume(secret):
            return error_page(request, 404, "setup_invalid")
        _, account = await accounts.update(str(link["agent"]), {"password": password})
        action = "account.password_set"
    await request.app[AUDIT].record(
        actor=account.name,
        action=action,
        target=account.name,
        after=account.view(),
        address=client_address(request),
    )
    return await _start_session(request, account.name, "/admin/tickets")


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def login_redirect(request: web.Request) -> web.Response:
    return redirect("/admin/login?next=" + quote(request.path_qs, safe="/"))
