"""API bearer tokens: only a hash is stored; the token itself is shown once, when created."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gateway.database import Db

Role = Literal["admin", "agent", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "agent", "viewer")
PREFIX = "og_"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    token_id: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenService:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def create(self, *, name: str, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        token = PREFIX + secrets.token_urlsafe(32)
        await self._db.tokens.insert_one(
            {
                "token_hash": _hash(token),
                "name": name,
                "role": role,
                "created_at": datetime.now(UTC),
                "revoked": False,
            }
        )
        return token

    async def authenticate(self, token: str) -> Principal | None:
        if not token.startswith(PREFIX) or len(token) > 200:
            return None
        doc = await self._db.tokens.find_one({"token_hash": _hash(token), "revoked": False})
        if doc is None:
            return None
        return Principal(name=doc["name"], role=doc["role"], token_id=str(doc["_id"]))
