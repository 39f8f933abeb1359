"""IMAP intake for one mailbox: every mail on the server becomes exactly one inbox record.

Order per batch of UIDs: note the batch as "in flight" in `channel_state`, fetch, store the raw mails,
parse, store attachments, publish to the bus (durable, unique dedup key), then advance the position and
optionally move the mails to the archive folder. After a crash, UIDs of the in-flight batch are looked
up in `inbox` before anything is stored again, so nothing is stored or published twice; the dedup key
(Message-ID, else a hash of the bytes) also holds across a UIDVALIDITY change, when every position is
dropped and the folder is read again.

One instance reads a mailbox at a time (a leader lease); IDLE is re-issued every `idle_seconds`, with
polling when the server has no IDLE, and the connection is rebuilt with exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from channels.base import AttachmentStore, Intake
from channels.email.imap_session import ImapSession
from channels.email.inbound import MailPosition, build_inbound, dedup_key
from channels.email.leader import LeaderLease
from channels.email.mime_parse import ParsedEmail, parse_email
from channels.email.raw_store import RawMailStore
from channels.email.threader import ReplyThreader
from channels.settings import EmailMailbox
from ticket_core.errors import ChannelUnavailable, InvalidInput, StorageUnavailable
from ticket_core.lifecycle import stop_task
from ticket_core.messages import AttachmentRef

log = logging.getLogger(__name__)

Quarantine = Callable[..., Awaitable[str]]
# Parsing a big mail takes a while: off the event loop so webhooks keep their deadlines.
THREAD_PARSE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Position:
    uidvalidity: int
    last_uid: int  # everything up to here is durable
    pending_upto: int  # a batch up to here may have been (partly) stored before a crash


class ImapIntake:
    def __init__(
        self,
        box: EmailMailbox,
        *,
        db: AsyncDatabase[dict[str, Any]],
        bus: Intake,
        attachments: AttachmentStore,
        threader: ReplyThreader,
        quarantine: Quarantine,
        own_addresses: frozenset[str],
        max_attachment_bytes: int,
    ) -> None:
        self.box = box
        self._db = db
        self._bus = bus
        self._attachments = attachments
        self._raw = RawMailStore(db)
        self._threader = threader
        self._quarantine = quarantine
        self._own = own_addresses
        self._max_attachment = max_attachment_bytes
        owner = f"{socket.gethostname()}:{os.getpid()}:{ObjectId()}"
        self._lease = LeaderLease(db, f"imap:{box.name}", owner, box.lease_seconds)
        self._state_key = f"email:imap:{box.name}:{box.folder}"
        self._task: asyncio.Task[None] | None = None
        self._session: ImapSession | None = None
        self.caught_up = asyncio.Event()  # set after each complete pass over the folder (tests, bench)
        self.stats = {
            "fetched": 0,
            "published": 0,
            "duplicates": 0,
            "quarantined": 0,
            "skipped_done": 0,
            "uidvalidity_changes": 0,
            "reconnects": 0,
            "parse_seconds": 0.0,
        }

    # -- lifecycle -------------------------------------------------------------------------------------

    async def initialize(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"imap-{self.box.name}")

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)
        if self._session is not None:
            await self._session.close()
        await self._lease.release()

    # -- the connection loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = 1.0
        while True:
            try:
                if await self._lease.acquire():
                    await self._serve()
                    delay = 1.0
                else:
                    await asyncio.sleep(min(self.box.lease_seconds / 3, 5.0))
                    continue
            except asyncio.CancelledError:
                raise
            except (ChannelUnavailable, StorageUnavailable, PyMongoError) as exc:
                log.warning("email/%s: IMAP intake interrupted: %s", self.box.name, exc)
            except Exception:  # a bug must not end intake for good: log it and reconnect
                log.exception("email/%s: IMAP intake failed unexpectedly", self.box.name)
            finally:
                if self._session is not None:
                    await self._session.close()
                    self._session = None
            self.stats["reconnects"] += 1
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, self.box.reconnect_max_seconds)

    async def _serve(self) -> None:
        """One connection: catch up, then wait for news; returns when the lease is lost."""
        box = self.box
        self._session = session = ImapSession(box)
        await session.connect()
        if box.archive_folder:
            await session.ensure_folder(box.archive_folder)
        heartbeat = max(0.5, min(box.lease_seconds / 3, box.poll_seconds))
        while True:
            uidvalidity, uidnext = await session.select(box.folder)
            position = await self._load_position(uidvalidity, uidnext)
            await self._catch_up(session, position)
            self.caught_up.set()
            if not await self._lease.acquire():
                log.info("email/%s: leader lease lost; another instance reads the mailbox", box.name)
                return
            if box.use_idle and session.can_idle():
                await session.idle(box.idle_seconds, heartbeat, self._lease.acquire)
            else:
                await asyncio.sleep(box.poll_seconds)
            self.caught_up.clear()

    # -- positions -------------------------------------------------------------------------------------

    async def _load_position(self, uidvalidity: int, uidnext: int) -> Position:
        doc = await self._db.channel_state.find_one({"key": self._state_key})
        if doc is not None and int(doc.get("uidvalidity", -1)) == uidvalidity:
            return Position(uidvalidity, int(doc.get("last_uid", 0)), int(doc.get("pending_upto", 0)))
        if doc is not None:
            # Renumbered folder: the old UIDs mean nothing now. Read it all again; every mail that was
            # already there is checked against the inbox by its dedup key before it is stored.
            self.stats["uidvalidity_changes"] += 1
            log.warning(
                "email/%s: UIDVALIDITY of %s changed (%s -> %s); re-reading the folder",
                self.box.name, self.box.folder, doc.get("uidvalidity"), uidvalidity,
            )  # fmt: skip
            position = Position(uidvalidity, 0, max(uidnext - 1, 0) if uidnext else 2**32)
        else:
            position = Position(uidvalidity, 0, 0)
        await self._save_position(position)
        return position

    async def _save_position(self, position: Position) -> None:
        await self._db.channel_state.update_one(
            {"key": self._state_key},
            {
                "$set": {
                    "mailbox": self.box.name,
                    "folder": self.box.folder,
                    "uidvalidity": position.uidvalidity,
                    "last_uid": position.last_uid,
                    "pending_upto": position.pending_upto,
                    "updated_at": datetime.now(UTC),
                }
            },
            upsert=True,
        )

    # -- reading ---------------------------------------------------------------------------------------

    async def _catch_up(self, session: ImapSession, position: Position) -> Position:
        uids = await session.uids_after(position.last_uid)
        batch = max(1, self.box.fetch_batch)
        for start in range(0, len(uids), batch):
            chunk = uids[start : start + batch]
            position = await self._ingest_chunk(session, position, chunk)
            if not await self._lease.acquire():
                break
        return position

    async def _ingest_chunk(self, session: ImapSession, position: Position, uids: list[int]) -> Position:
        upto = max(uids)
        maybe_done_upto = position.pending_upto
        if upto > position.pending_upto:
            position = replace(position, pending_upto=upto)
            await self._save_position(position)
        fetched = await session.fetch(uids)
        self.stats["fetched"] += len(fetched)
        items = [(uid, raw, dedup_key(self.box.name, raw)) for uid, raw in fetched]
        done = await self._already_done([key for uid, _, key in items if uid <= maybe_done_upto])
        fresh = [item for item in items if item[2] not in done]
        self.stats["skipped_done"] += len(items) - len(fresh)
        now = datetime.now(UTC)
        refs = await self._raw.save_many(
            [
                (key, raw, {"mailbox": self.box.name, "folder": self.box.folder,
                            "uidvalidity": position.uidvalidity, "uid": uid, "stored_at": now})
                for uid, raw, key in fresh
            ]
        )  # fmt: skip
        await asyncio.gather(
            *[
                self._ingest_one(
                    raw, key, refs[key], MailPosition(self.box.folder, position.uidvalidity, uid)
                )
                for uid, raw, key in fresh
            ]
        )
        position = replace(position, last_uid=max(position.last_uid, upto))
        await self._save_position(position)
        if self.box.archive_folder and fetched:
            await session.archive([uid for uid, _ in fetched], self.box.archive_folder)
        return position

    async def _already_done(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        cursor = self._db.inbox.find({"dedup_key": {"$in": keys}}, {"dedup_key": 1})
        done = {str(doc["dedup_key"]) async for doc in cursor}
        rest = [k for k in keys if k not in done]
        if rest:
            query = {"source": "email", "payload.dedup_key": {"$in": rest}}
            async for doc in self._db.quarantine.find(query, {"payload.dedup_key": 1}):
                done.add(str(doc["payload"]["dedup_key"]))
        return done

    async def _ingest_one(self, raw: bytes, key: str, raw_ref: str, position: MailPosition) -> None:
        started = time.perf_counter()
        try:
            if len(raw) > THREAD_PARSE_BYTES:
                parsed = await asyncio.to_thread(parse_email, raw, max_attachment_bytes=self._max_attachment)
            else:
                parsed = parse_email(raw, max_attachment_bytes=self._max_attachment)
        except InvalidInput as exc:
            await self._put_aside(f"not an email: {exc}", key, raw_ref, position)
            return
        except Exception as exc:  # parse_email degrades instead of raising; if it ever does, keep the mail
            await self._put_aside(f"parser failed: {type(exc).__name__}: {exc}", key, raw_ref, position)
            return
        finally:
            self.stats["parse_seconds"] += time.perf_counter() - started
        thread = await self._threader.resolve(parsed) if self._could_thread(parsed) else None
        attachments = await self._store_attachments(parsed, key)
        try:
            msg = build_inbound(
                parsed,
                mailbox=self.box.name,
                key=key,
                own_addresses=self._own,
                position=position,
                raw_ref=raw_ref,
                attachments=attachments,
                thread=thread,
            )
        except Exception as exc:
            await self._put_aside(f"could not normalise: {type(exc).__name__}: {exc}", key, raw_ref, position)
            return
        accepted = await self._bus.publish(msg)
        self.stats["duplicates" if accepted.duplicate else "published"] += 1

    @staticmethod
    def _could_thread(parsed: ParsedEmail) -> bool:
        return bool(parsed.plus_tokens or parsed.in_reply_to or parsed.references or "[" in parsed.subject)

    async def _store_attachments(self, parsed: ParsedEmail, key: str) -> tuple[AttachmentRef, ...]:
        refs: list[AttachmentRef] = []
        for attachment in parsed.attachments:
            if attachment.skipped or not attachment.content:
                continue
            refs.append(
                await self._attachments.save(
                    attachment.content,
                    filename=attachment.filename,
                    content_type=attachment.content_type,
                    meta={
                        "source": "email",
                        "dedup_key": key,
                        "inline": attachment.inline,
                        "content_id": attachment.content_id,
                    },
                )
            )
        return tuple(refs)

    async def _put_aside(self, reason: str, key: str, raw_ref: str, position: MailPosition) -> None:
        self.stats["quarantined"] += 1
        log.warning("email/%s: mail UID %d quarantined: %s", self.box.name, position.uid, reason)
        await self._quarantine(
            source="email",
            reason=reason,
            payload={
                "mailbox": self.box.name,
                "folder": position.folder,
                "uidvalidity": position.uidvalidity,
                "uid": position.uid,
                "dedup_key": key,
                "raw_ref": raw_ref,
            },
            ref=raw_ref,
        )
