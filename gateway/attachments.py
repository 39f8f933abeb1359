"""Attachments live in GridFS; messages and tickets carry only their metadata."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from gridfs import AsyncGridFSBucket, NoFile

from gateway.database import Db
from ticket_core.errors import NotFound
from ticket_core.messages import AttachmentRef


class GridFSAttachmentStore:
    def __init__(self, db: Db) -> None:
        self._bucket = AsyncGridFSBucket(db, bucket_name="attachments")

    async def save(
        self, data: bytes, *, filename: str, content_type: str, meta: dict[str, Any]
    ) -> AttachmentRef:
        file_id = await self._bucket.upload_from_stream(
            filename, data, metadata={"content_type": content_type, **meta}
        )
        return AttachmentRef(
            file_id=str(file_id), filename=filename, content_type=content_type, size=len(data)
        )

    async def load(self, file_id: str) -> tuple[bytes, dict[str, Any]]:
        try:
            stream = await self._bucket.open_download_stream(ObjectId(file_id))
        except (InvalidId, NoFile, TypeError) as exc:
            raise NotFound(f"no attachment {file_id}") from exc
        data = await stream.read()
        return data, {"filename": stream.filename, **(stream.metadata or {})}
