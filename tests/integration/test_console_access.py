"""Accounts and access: login with argon2 passwords, session cookies, CSRF, throttling, token scopes and
revocation, team visibility, the audit trail, and the first-admin setup link."""

from __future__ import annotations

from typing import Any

from gateway.accounts.setup_links import FIRST_ADMIN
from gateway.appkeys import AUDIT, DATABASE, SETUP_LINKS, TOKENS
from tests.console_helpers import PASSWORD, form_token, login, make_account
from tests.helpers import running_app, token

FORM = {"subject": "Printer jams", "description": "It jams on page two.", "email": "c@example.com"}


async def test_password_is_hashed_with_argon2_and_login_sets_a_safe_cookie(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        await make_account(client, "alice", "agent")
        stored = await mongo.agents.find_one({"name": "alice"})
        assert stored["password_hash"].startswith("$argon2id$") and PASSWORD not in str(stored)
        page = await client.get("/admin/login")
        resp = await client.post(
            "/admin/login",
            data={"login": "alice", "password": PASSWORD, "csrf_token": form_token(await page.text())},
            allow_redirects=False,
        )
        assert resp.status == 303
        cookie = resp.cookies["og_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        assert not cookie["secure"]  # plain http on loopback
        session = await mongo.sessions.find_one({})
        assert session["agent"] == "alice" and session["_id"] != cookie.value  # only a hash is stored
        login_audit = await mongo.audit.find_one({"action": "login"})
        assert login_audit["actor"] == "alice" and login_audit["address"]


async def test_cookie_is_secure_behind_tls(make_settings: Any, mongo: Any) -> None:
    settings = make_settings(server={"public_url": "https://support.example.com"})
    async with running_app(settings) as client:
        await make_account(client, "alice", "agent")
        page = await client.get("/admin/login")
        assert page.cookies["og_form_csrf"]["secure"]
        # The client keeps Secure cookies to itself over plain http: hand the form cookie back by hand.
        form_cookie = page.cookies["og_form_csrf"].value
        resp = await client.post(
            "/admin/login",
            data={"login": "alice", "password": PASSWORD, "csrf_token": form_token(await page.text())},
            headers={"Cookie": f"og_form_csrf={form_cookie}"},
            allow_redirects=False,
        )
        assert resp.status == 303
        cookie = resp.cookies["og_session"]
        assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"


async def test_csrf_is_required_for_every_change_made_with_a_session(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        await make_account(client, "alice", "agent")
        # the login form itself refuses a post without its token
        refused = await client.post("/admin/login", data={"login": "alice", "password": PASSWORD})
        assert refused.status == 403
        csrf = await login(client, "alice")
        await client.post("/forms/support", json=FORM)
        number = (await mongo.tickets.find_one({}))["number"]
        reply = {"text": "hello", "type": "internal"}
        no_token = await client.post(f"/api/v1/tickets/{number}/replies", json=reply)
        assert no_token.status == 403 and (await no_token.json())["error"]["code"] == "csrf_failed"
        wrong = await client.post(
            f"/api/v1/tickets/{number}/replies", json=reply, headers={"X-CSRF-Token": "nope"}
        )
        assert wrong.status == 403
        ok = await client.post(
            f"/api/v1/tickets/{number}/replies", json=reply, headers={"X-CSRF-Token": csrf}
        )
        assert ok.status == 201
        # a form post (logout) without the token is refused too
        assert (await client.post("/admin/logout", data={})).status == 403
        assert (
            await client.post("/admin/logout", data={"csrf_token": csrf}, allow_redirects=False)
        ).status == 303
        assert (await client.get("/api/v1/me")).status == 401  # the session is gone


async def test_login_throttling_per_account_and_address(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        await make_account(client, "alice", "agent")
        page = await client.get("/admin/login")
        token = form_token(await page.text())

        async def attempt(password: str, who: str = "alice") -> int:
            resp = await client.post(
                "/admin/login",
                data={"login": who, "password": password, "csrf_token": token},
                allow_redirects=False,
            )
            return resp.status

        assert [await attempt("wrong password") for _ in range(5)] == [401] * 5
        throttled = await client.post(
            "/admin/login",
            data={"login": "alice", "password": PASSWORD, "csrf_token": token},
            allow_redirects=False,
        )
        assert throttled.status == 429 and int(throttled.headers["Retry-After"]) > 0
        assert await mongo.login_attempts.count_documents({"key": "account:alice"}) == 5
        # per address: spraying other accounts from the same place stops after 20 failures in all
        for i in range(15):
            assert await attempt("x" * 12, who=f"nobody{i}") == 401
        assert await attempt("x" * 12, who="someone-else") == 429
        actions = {d["action"] async for d in mongo.audit.find({})}
        assert {"login.failed", "login.throttled"} <= actions


async def test_tokens_are_scoped_revocable_and_show_last_use(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        admin = await token(client, "admin")
        made = await client.post(
            "/api/v1/tokens", json={"name": "crm", "role": "agent", "scopes": ["tickets:read"]}, headers=admin
        )
        assert made.status == 201
        body = await made.json()
        crm = {"Authorization": f"Bearer {body['token']}"}
        assert (await client.get("/api/v1/tickets", headers=crm)).status == 200
        assert (await client.get("/api/v1/articles", headers=crm)).status == 403  # outside its scopes
        await client.post("/forms/support", json=FORM)
        number = (await mongo.tickets.find_one({}))["number"]
        write = await client.patch(f"/api/v1/tickets/{number}", json={"priority": "high"}, headers=crm)
        assert write.status == 403
        listed = {
            t["id"]: t for t in (await (await client.get("/api/v1/tokens", headers=admin)).json())["items"]
        }
        assert listed[body["id"]]["last_used_at"] is not None and "token_hash" not in listed[body["id"]]
        assert (await client.delete(f"/api/v1/tokens/{body['id']}", headers=admin)).status == 204
        revoked = await client.get("/api/v1/tickets", headers=crm)
        assert revoked.status == 401
        record = await mongo.audit.find_one({"action": "token.revoke"})
        assert record["actor"] == "test-admin" and record["after"]["revoked"] is True


async def test_agents_see_their_teams_tickets_and_teamless_ones(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        await make_account(client, "alice", "agent", teams=("printers",))
        await make_account(client, "bob", "agent", teams=("billing",))
        for subject in ("one", "two", "three"):
            resp = await client.post("/forms/support", json={**FORM, "subject": subject})
            assert resp.status == 201
        await mongo.tickets.update_one({"subject": "one"}, {"$set": {"team": "printers"}})
        await mongo.tickets.update_one({"subject": "two"}, {"$set": {"team": "billing"}})
        number_one = (await mongo.tickets.find_one({"subject": "one"}))["number"]
        await login(client, "bob")
        seen = {t["subject"] for t in (await (await client.get("/api/v1/tickets")).json())["items"]}
        assert seen == {"two", "three"}
        assert (await client.get(f"/api/v1/tickets/{number_one}")).status == 404
        assert (await client.get(f"/admin/tickets/{number_one}")).status == 404


async def test_audit_shows_who_changed_which_setting(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        await make_account(client, "root", "admin")
        csrf = await login(client, "root")
        before = await (await client.get("/api/v1/settings/matching")).json()
        changed = await client.put(
            "/api/v1/settings/matching", json={"threshold": 61}, headers={"X-CSRF-Token": csrf}
        )
        assert changed.status == 200
        audit = await (await client.get("/api/v1/audit?action=PUT")).json()
        record = audit["items"][0]
        assert record["actor"] == "root" and record["target"] == "/api/v1/settings/matching"
        assert record["before"]["threshold"] == before["threshold"] and record["after"]["threshold"] == 61
        assert record["via"] == "session"
        assert await client.app[AUDIT].search(actor="root", action="login")


async def test_first_start_setup_link_creates_the_first_admin_once(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        secret = await client.app[SETUP_LINKS].create(FIRST_ADMIN)
        page = await client.get(f"/admin/setup/{secret}")
        assert page.status == 200
        form = {
            "name": "root",
            "email": "root@example.com",
            "password": "a long enough passphrase",
            "password2": "a long enough passphrase",
            "csrf_token": form_token(await page.text()),
        }
        done = await client.post(f"/admin/setup/{secret}", data=form, allow_redirects=False)
        assert done.status == 303 and "og_session" in done.cookies
        me = await (await client.get("/api/v1/me")).json()
        assert me["name"] == "root" and me["role"] == "admin"
        client.session.cookie_jar.clear()
        again = await client.post(f"/admin/setup/{secret}", data=form, allow_redirects=False)
        assert again.status == 404  # one time only
        assert await mongo.audit.find_one({"action": "account.first_admin", "actor": "root"})
        assert await client.app[DATABASE].db.setup_links.count_documents({}) == 0
        assert client.app[TOKENS] is not None
