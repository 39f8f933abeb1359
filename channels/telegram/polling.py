"""Long polling (getUpdates) for installations without a public URL, under a leader lease.

Exactly one gateway process polls a bot: Telegram itself answers a second concurrent getUpdates with
409, and two pollers would also race on the offset. The leader renews its lease every round (a round
is shorter than a third of the lease); a crashed leader's lease lapses and another process takes over.
The offset lives in `channel_state` and advances only after the updates before it are stored, so a
takeover re-reads at most a few updates, which the inbox's unique `dedup_key` turns into duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.errors import PyMongoError

from channels.telegram.bot_api import TelegramBotApi
from channels.telegram.lease import LeaderLease
from ticket_core.errors import ChannelError, InvalidInput, StorageUnavailable
from ticket_core.lifecycle import stop_task
from ticket_core.repository import Db

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
ERROR_PAUSE = 1.0

AcceptUpdate = Callable[[Any], Awaitable[object]]


class TelegramPoller:
    def __init__(
        self,
        bot: str,
        api: TelegramBotApi,
        lease: LeaderLease,
        db: Db,
        accept: AcceptUpdate,
        *,
        poll_timeout: int = 25,
    ) -> None:
        self.bot = bot
        self._api = api
        self._lease = lease
        self._db = db
        self._accept = accept
        # A round (long poll plus storing) must end well before the lease lapses.
        self._timeout = max(0, min(poll_timeout, int(lease.seconds / 3)))
        self._task: asyncio.Task[None] | None = None
        self.is_leader = False
        self.stats = {"rounds": 0, "updates": 0, "takeovers": 0, "errors": 0}

    @property
    def offset_key(self) -> str:
        return f"telegram:{self.bot}:offset"

    async def initialize(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"telegram-poll-{self.bot}")

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)
        if self.is_leader:
            self.is_leader = False
            await self._lease.release()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except (ChannelError, StorageUnavailable, PyMongoError) as exc:
                self.stats["errors"] += 1
                log.warning("telegram/%s polling: %s", self.bot, exc)
                await asyncio.sleep(ERROR_PAUSE)
            except Exception:  # a bug must not end polling for good
                self.stats["errors"] += 1
                log.exception("telegram/%s polling failed", self.bot)
                await asyncio.sleep(ERROR_PAUSE)

    async def run_once(self) -> int:
        """One round: hold the lease, fetch, store. Returns the number of updates stored."""
        if not await self._lease.acquire():
            self.is_leader = False
            # Followers check often enough to take over soon after the leader's lease lapses.
            await asyncio.sleep(min(1.0, self._lease.seconds / 4))
            return 0
        if not self.is_leader:
            self.is_leader = True
            self.stats["takeovers"] += 1
            log.info("telegram/%s: this process is now the polling leader", self.bot)
            # getUpdates is refused (409) while a webhook is set.
            await self._api.delete_webhook()
        self.stats["rounds"] += 1
        offset = await self._load_offset()
        updates = await self._api.get_updates(
            offset=offset, timeout=self._timeout, allowed_updates=ALLOWED_UPDATES
        )
        stored = 0
        for update in updates:
            update_id = update.get("update_id")
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                continue  # without an id it cannot even be confirmed; getUpdates never sends one
            try:
                await self._accept(update)
            except InvalidInput as exc:
                log.warning("telegram/%s: update %s dropped: %s", self.bot, update_id, exc)
            offset = max(offset or 0, update_id + 1)
            stored += 1
        if updates:
            await self._save_offset(offset)
        self.stats["updates"] += stored
        return stored

    async def _load_offset(self) -> int | None:
        doc = await self._db.channel_state.find_one({"key": self.offset_key})
        value = doc.get("offset") if doc else None
        return int(value) if isinstance(value, int) else None

    async def _save_offset(self, offset: int | None) -> None:
        if offset is None:
            return
        # $max: a slower former leader can never move the offset back.
        await self._db.channel_state.update_one(
            {"key": self.offset_key}, {"$max": {"offset": offset}}, upsert=True
        )
