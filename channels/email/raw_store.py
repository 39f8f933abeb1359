"""The untouched mail, stored before anything else reads it, keyed by its dedup key (so storing it
again after a restart is a no-op). Small mails go in one `raw_mail` collection in batches (a batch
insert is many times cheaper than GridFS's two writes per file); big ones go to GridFS."""

from __future__ import annotations

from typing import Any

from bson import Binary
from gridfs import AsyncGridFSBucket, NoFile
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ticket_core.errors import NotFound

INLINE_LIMIT = 8 * 1024 * 1024  # under MongoDB's 16 MB document cap with room for the rest
_DUPLICATE = 11000


class RawMailStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db
        self._bucket = AsyncGridFSBucket(db, bucket_name="raw_mail")

    async def save_many(self, items: list[tuple[str, bytes, dict[str, Any]]]) -> dict[str, str]:
        """Store (key, raw, meta) items; returns key -> raw_ref. Already stored keys are kept."""
        refs: dict[str, str] = {}
        docs = []
        for key, raw, meta in items:
            if len(raw) > INLINE_LIMIT:
                refs[key] = await self._save_big(key, raw, meta)
            else:
                docs.append({"_id": key, "size": len(raw), "data": Binary(raw), **meta})
                refs[key] = f"raw_mail:{key}"
        if docs:
            try:
                await self._db.raw_mail.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(err.get("code") != _DUPLICATE for err in errors):
                    raise
        return refs

    async def _save_big(self, key: str, raw: bytes, meta: dict[str, Any]) -> str:
        ref = f"raw_mail.gridfs:{key}"
        if await self._db["raw_mail.files"].find_one({"_id": key}, {"_id": 1}) is None:
            try:
                await self._bucket.upload_from_stream_with_id(key, key, raw, metadata=meta)
            except DuplicateKeyError:
                pass
        return ref

    async def load(self, ref: str) -> bytes:
        kind, _, key = ref.partition(":")
        if kind == "raw_mail":
            doc = await self._db.raw_mail.find_one({"_id": key}, {"data": 1})
            if doc is None:
                raise NotFound(f"no raw mail {ref}")
            return bytes(doc["data"])
        if kind == "raw_mail.gridfs":
            try:
                stream = await self._bucket.open_download_stream(key)
            except NoFile as exc:
                raise NotFound(f"no raw mail {ref}") from exc
            return bytes(await stream.read())
        raise NotFound(f"not a raw mail reference: {ref}")
