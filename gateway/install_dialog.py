"""Puts the knowledge base and the dialog engine in front of ticket creation."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from pymongo.errors import PyMongoError

import dialog
from dialog.knowledge import KnowledgeBase
from gateway.appkeys import KNOWLEDGE
from gateway.lifecycle import Component, TaskGroup
from gateway.wiring import Wiring

log = logging.getLogger(__name__)
DEMO_KB = Path(dialog.__file__).parent / "demo_kb"
REFRESH_SECONDS = 5.0


class KnowledgeRefresher(Component):
    """Reloads the index when another process changed articles or matching settings."""

    def __init__(self, kb: KnowledgeBase, interval: float = REFRESH_SECONDS) -> None:
        self._kb = kb
        self._interval = interval
        self._tasks = TaskGroup("kb-refresh")

    async def initialize(self) -> None:
        self._tasks.spawn(self._loop())

    async def shutdown(self) -> None:
        await self._tasks.cancel_all()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._kb.refresh()
            except PyMongoError as exc:
                log.warning("knowledge base refresh failed: %s", exc)


async def seed_demo_articles(kb: KnowledgeBase) -> int:
    """The demo knowledge base (Chinese and English), only into an empty `articles` collection."""
    if not await kb.is_empty():
        return 0
    added = 0
    for path in sorted(DEMO_KB.glob("*.json")):
        for raw in json.loads(path.read_text(encoding="utf-8")):
            await kb.save(raw, actor="demo-seed")
            added += 1
    return added


def install(wiring: Wiring) -> None:
    kb = KnowledgeBase(wiring.db, public_url=wiring.settings.server.public_url)
    wiring.app[KNOWLEDGE] = kb

    async def ready() -> None:
        if wiring.settings.seed_demo:
            added = await seed_demo_articles(kb)
            if added:
                log.info("seeded %d demo knowledge articles", added)
        await kb.load()

    wiring.on_ready.append(ready)
    wiring.components.append(KnowledgeRefresher(kb))
