"""API bearer tokens: only a hash is stored; the token itself is shown once, when created.

A token has a role, optional scopes (which areas of the API it may read or write), may belong to an
account (then it sees what that account's teams see), can be revoked, and records when it was last used.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bson import ObjectId
from bson.errors import InvalidId

from gateway.database import Db

Role = Literal["admin", "agent", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "agent", "viewer")
PREFIX = "og_"
# `<area>:read`, `<area>:write` (implies read) or `*`; an area is the first path segment after /api/v1/.
SCOPE_RE = re.compile(r"^(\*|[a-z_]+:(read|write|\*))$")
# Writing `last_used_at` on every request would double the database work of an API call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    token_id: str
    # None: not limited to teams (admins, integration tokens); otherwise the teams whose tickets it sees.
    teams: tuple[str, ...] | None = None
    scopes: tuple[str, ...] = ("*",)
    via: Literal["token", "session"] = "token"
    csrf: str = ""
    locale: str = "en"

    def allows(self, area: str, write: bool) -> bool:
        if "*" in self.scopes or f"{area}:*" in self.scopes or f"{area}:write" in self.scopes:
            return True
        return not write and f"{area}:read" in self.scopes


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def validate_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    bad = [s for s in scopes if not isinstance(s, str) or not SCOPE_RE.match(s)]
    if bad or not scopes:
        raise ValueError("scopes must be '*' or '<area>:read|write', for example tickets:read")
    return tuple(sorted(set(scopes)))


def token_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(doc["_id"]),
        "name": doc["name"],
        "role": doc["role"],
        "scopes": list(doc.get("scopes") or ["*"]),
        "agent": doc.get("agent"),
        "created_at": doc.get("created_at"),
        "created_by": doc.get("created_by"),
        "last_used_at": doc.get("last_used_at"),
        "revoked": bool(doc.get("revoked")),
        "revoked_at": doc.get("revoked_at"),
    }


class TokenService:
    def __init__(self, db: Db) -> None:
        self._db = db
        self._last_written: dict[str, datetime] = {}

    async def create(
        self,
        *,
        name: str,
        role: str,
        scopes: Sequence[str] = ("*",),
        agent: str | None = None,
        created_by: str | None = None,
    ) -> str:
        token, _ = await self.create_record(
            name=name, role=role, scopes=scopes, agent=agent, created_by=created_by
        )
        return token

    async def create_record(
        self,
        *,
        name: str,
        role: str,
        scopes: Sequence[str] = ("*",),
        agent: str | None = None,
        created_by: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        token = PREFIX + secrets.token_urlsafe(32)
        doc: dict[str, Any] = {
            "token_hash": _hash(token),
            "name": name,
            "role": role,
            "scopes": list(validate_scopes(scopes)),
            "agent": agent,
            "created_by": created_by,
            "created_at": datetime.now(UTC),
            "last_used_at": None,
            "revoked": False,
        }
        result = await self._db.tokens.insert_one(doc)
        doc["_id"] = result.inserted_id
        return token, doc

    async def authenticate(self, token: str) -> Principal | None:
        if not token.startswith(PREFIX) or len(token) > 200:
            return None
        doc = await self._db.tokens.find_one({"token_hash": _hash(token), "revoked": False})
        if doc is None:
            return None
        token_id = str(doc["_id"])
        await self._touch(doc["_id"], token_id)
        teams: tuple[str, ...] | None = None
        role = doc["role"]
        if doc.get("agent"):
            account = await self._db.agents.find_one({"name": doc["agent"]})
            if account is None or account.get("disabled"):
                return None
            teams = tuple(account.get("teams") or ()) if role != "admin" else None
        return Principal(
            name=doc["name"],
            role=role,
            token_id=token_id,
            teams=teams,
            scopes=tuple(doc.get("scopes") or ["*"]),
        )

    async def _touch(self, oid: Any, token_id: str) -> None:
        now = datetime.now(UTC)
        last = self._last_written.get(token_id)
        if last is not None and now - last < LAST_USED_RESOLUTION:
            return
        self._last_written[token_id] = now
        await self._db.tokens.update_one({"_id": oid}, {"$set": {"last_used_at": now}})

    async def list(self) -> list[dict[str, Any]]:
        return [token_view(d) async for d in self._db.tokens.find({}).sort("_id", -1).limit(1000)]

    async def revoke(self, token_id: str, *, by: str) -> dict[str, Any] | None:
        """The token's view before revocation, or None when there is no such token."""
        try:
            oid = ObjectId(token_id)
        except (InvalidId, TypeError):
            return None
        doc = await self._db.tokens.find_one({"_id": oid})
        if doc is None:
            return None
        await self._db.tokens.update_one(
            {"_id": oid}, {"$set": {"revoked": True, "revoked_at": datetime.now(UTC), "revoked_by": by}}
        )
        self._last_written.pop(token_id, None)
        return token_view(doc)
