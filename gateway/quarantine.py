"""What was accepted but cannot be handled is kept here with the reason, never dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.database import Db


async def quarantine(db: Db, *, source: str, reason: str, payload: Any, ref: str | None = None) -> str:
    doc = {"source": source, "reason": reason[:2000], "payload": payload, "ref": ref, "at": datetime.now(UTC)}
    result = await db.quarantine.insert_one(doc)
    return str(result.inserted_id)
