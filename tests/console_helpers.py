"""Helpers for console tests: accounts, logging in through the real login form, CSRF headers."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.appkeys import ACCOUNTS

PASSWORD = "correct horse battery"


async def make_account(
    client: TestClient[Any, Any],
    name: str,
    role: str,
    *,
    teams: tuple[str, ...] = (),
    email: str | None = None,
) -> None:
    fields: dict[str, Any] = {"name": name, "role": role, "password": PASSWORD, "teams": list(teams)}
    if email:
        fields["email"] = email
    await client.app[ACCOUNTS].create(fields)


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf_token field in the page"
    return found.group(1)


async def login(client: TestClient[Any, Any], name: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token (read from a console page)."""
    page = await client.get("/admin/login")
    token = form_token(await page.text())
    resp = await client.post(
        "/admin/login", data={"login": name, "password": password, "csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    ticket_page = await client.get("/admin/tickets")
    assert ticket_page.status == 200
    found = re.search(r'data-csrf="([^"]+)"', await ticket_page.text())
    assert found
    return found.group(1)
