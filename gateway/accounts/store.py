"""Agent and admin accounts in the `agents` collection (shared with the Telegram relay and
`omnigate user add`), and teams in `teams`.

An account is found by `name` (unique); the relay adds `telegram_user_id`/`username`. The console adds
`password_hash`, `teams`, `locale` and `disabled`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from gateway.accounts.passwords import check_strength, hash_password, verify_password
from gateway.database import Db
from gateway.tokens import ROLES
from ticket_core.errors import Conflict, InvalidInput, NotFound

NAME_RE = re.compile(r"^[\w.\-]{1,64}$")
CONSOLE_LOCALES = ("en", "zh-CN")


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    email: str | None
    teams: tuple[str, ...]
    locale: str
    disabled: bool
    has_password: bool

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Account:
        return cls(
            name=str(doc["name"]),
            role=str(doc.get("role", "viewer")),
            email=doc.get("email"),
            teams=tuple(str(t) for t in doc.get("teams") or ()),
            locale=str(doc.get("locale") or "en"),
            disabled=bool(doc.get("disabled", False)),
            has_password=bool(doc.get("password_hash")),
        )

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "email": self.email,
            "teams": list(self.teams),
            "locale": self.locale,
            "disabled": self.disabled,
            "has_password": self.has_password,
        }


def validate_account(raw: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """The fields an admin may set; InvalidInput names every bad one."""
    allowed = {"name", "role", "email", "teams", "locale", "disabled", "password"}
    errors: dict[str, str] = {k: "unknown field" for k in set(raw) - allowed}
    out: dict[str, Any] = {}
    if "name" in raw or not partial:
        name = raw.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            errors["name"] = "1-64 letters, digits, '.', '-' or '_'"
        else:
            out["name"] = name
    if "role" in raw or not partial:
        if raw.get("role") not in ROLES:
            errors["role"] = f"one of {', '.join(ROLES)}"
        else:
            out["role"] = raw["role"]
    if "email" in raw and raw["email"] is not None:
        email = raw["email"]
        if (
            not isinstance(email, str)
            or "@" not in email
            or len(email) > 254
            or any(c.isspace() for c in email)
        ):
            errors["email"] = "an email address"
        else:
            out["email"] = email.strip().lower()
    elif "email" in raw:
        out["email"] = None
    if "teams" in raw:
        teams = raw["teams"]
        if not isinstance(teams, list) or not all(isinstance(t, str) and NAME_RE.match(t) for t in teams):
            errors["teams"] = "a list of team names"
        else:
            out["teams"] = sorted(set(teams))
    if "locale" in raw:
        if raw["locale"] not in CONSOLE_LOCALES:
            errors["locale"] = f"one of {', '.join(CONSOLE_LOCALES)}"
        else:
            out["locale"] = raw["locale"]
    if "disabled" in raw:
        if not isinstance(raw["disabled"], bool):
            errors["disabled"] = "true or false"
        else:
            out["disabled"] = raw["disabled"]
    if "password" in raw:
        password = raw["password"]
        problem = "must be a string" if not isinstance(password, str) else check_strength(password)
        if problem:
            errors["password"] = problem
        else:
            out["password"] = password
    if errors:
        raise InvalidInput("the account has invalid fields", code="invalid_fields", fields=errors)
    return out


class AccountStore:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def get(self, name: str) -> Account:
        doc = await self._db.agents.find_one({"name": name})
        if doc is None:
            raise NotFound(f"no account {name!r}")
        return Account.from_doc(doc)

    async def find(self, name: str) -> Account | None:
        doc = await self._db.agents.find_one({"name": name})
        return Account.from_doc(doc) if doc else None

    async def all(self) -> list[Account]:
        return [Account.from_doc(d) async for d in self._db.agents.find({}).sort("name", 1).limit(1000)]

    async def has_admin_login(self) -> bool:
        doc = await self._db.agents.find_one(
            {"role": "admin", "password_hash": {"$exists": True}, "disabled": {"$ne": True}}, {"_id": 1}
        )
        return doc is not None

    async def create(self, fields: Mapping[str, Any]) -> Account:
        now = datetime.now(UTC)
        doc: dict[str, Any] = {
            "name": fields["name"],
            "role": fields["role"],
            "email": fields.get("email"),
            "teams": list(fields.get("teams", [])),
            "locale": fields.get("locale", "en"),
            "disabled": bool(fields.get("disabled", False)),
            "created_at": now,
            "updated_at": now,
        }
        if fields.get("password"):
            doc["password_hash"] = await hash_password(fields["password"])
        try:
            await self._db.agents.insert_one(doc)
        except DuplicateKeyError as exc:
            raise Conflict(f"an account named {fields['name']!r} exists") from exc
        return Account.from_doc(doc)

    async def update(self, name: str, fields: Mapping[str, Any]) -> tuple[Account, Account]:
        """Returns (before, after)."""
        before = await self.get(name)
        changes = {k: v for k, v in fields.items() if k not in ("name", "password")}
        if fields.get("password"):
            changes["password_hash"] = await hash_password(fields["password"])
        changes["updated_at"] = datetime.now(UTC)
        await self._db.agents.update_one({"name": name}, {"$set": changes})
        return before, await self.get(name)

    async def delete(self, name: str) -> Account:
        before = await self.get(name)
        await self._db.agents.delete_one({"name": name})
        return before

    async def verify(self, login: str, password: str) -> Account | None:
        """The account whose name or email is `login` and whose password matches, if enabled."""
        login = login.strip()
        doc = await self._db.agents.find_one({"name": login})
        if doc is None and "@" in login:
            doc = await self._db.agents.find_one({"email": login.lower()})
        ok = await verify_password(doc.get("password_hash") if doc else None, password)
        if not ok or doc is None or doc.get("disabled"):
            return None
        return Account.from_doc(doc)

    async def by_handles(self, handles: Sequence[str]) -> list[Account]:
        """Accounts named by @mentions: the account name or the Telegram username."""
        if not handles:
            return []
        cursor = self._db.agents.find(
            {"$or": [{"name": {"$in": list(handles)}}, {"username": {"$in": list(handles)}}]}
        )
        return [Account.from_doc(d) async for d in cursor]
