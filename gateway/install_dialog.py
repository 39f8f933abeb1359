"""Puts the knowledge base and the dialog engine in front of ticket creation."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from pymongo.errors import PyMongoError

import dialog
from bots.rules import RuleEngine, seed_demo_rules
from dialog.conversations import DEMO_DIALOG_SETTINGS, ConversationStore, DialogSettingsHolder
from dialog.engine import DialogEngine
from dialog.knowledge import KnowledgeBase
from gateway.api import rules as rules_api
from gateway.appkeys import DIALOG, DIALOG_SETTINGS, KNOWLEDGE
from gateway.bus import MessageBus
from gateway.lifecycle import Component, TaskGroup
from gateway.replies import OutboxReplier
from gateway.wiring import Wiring
from ticket_core.errors import OmnigateError
from ticket_core.messages import CustomerIdentity, InboundMessage

log = logging.getLogger(__name__)
DEMO_KB = Path(dialog.__file__).parent / "demo_kb"
REFRESH_SECONDS = 5.0


class KnowledgeRefresher(Component):
    """Reloads the index when another process changed articles or matching settings."""

    def __init__(
        self, kb: KnowledgeBase, dialog_settings: DialogSettingsHolder, interval: float = REFRESH_SECONDS
    ) -> None:
        self._kb = kb
        self._dialog_settings = dialog_settings
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
                await self._dialog_settings.load()
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


class DialogTimeouts(Component):
    """A conversation that waited on the customer too long goes to a person: a `timeout` action is
    published through the bus, so it is handled in the conversation's order like any message."""

    def __init__(self, conversations: ConversationStore, bus: MessageBus, interval: float = 15.0) -> None:
        self._conversations = conversations
        self._bus = bus
        self._interval = interval
        self._tasks = TaskGroup("dialog-timeouts")

    async def initialize(self) -> None:
        self._tasks.spawn(self._loop())

    async def shutdown(self) -> None:
        await self._tasks.cancel_all()

    async def run_once(self) -> int:
        count = 0
        for doc in await self._conversations.expired(datetime.now(UTC)):
            identity = doc.get("identity") or {}
            if not identity:
                continue
            stamp = doc["expires_at"].isoformat()
            await self._bus.publish(
                InboundMessage(
                    channel=doc["channel"],
                    account=doc["account"],
                    external_id=f"timeout:{stamp}",
                    dedup_key=f"timeout:{doc['key']}:{stamp}",
                    identity=CustomerIdentity(**identity),
                    conversation_key=doc["key"],
                    kind="action",
                    fields={"action": "timeout"},
                    locale=doc.get("locale"),
                    meta={"reply_to": doc.get("reply_to", "")},
                )
            )
            count += 1
        return count

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.run_once()
            except (PyMongoError, OmnigateError) as exc:
                log.warning("dialog timeout sweep failed: %s", exc)


def install(wiring: Wiring) -> None:
    kb = KnowledgeBase(wiring.db, public_url=wiring.settings.server.public_url)
    wiring.app[KNOWLEDGE] = kb
    conversations = ConversationStore(wiring.db)
    dialog_settings = DialogSettingsHolder(wiring.db)
    engine = DialogEngine(
        service=wiring.service,
        tickets=wiring.tickets,
        customers=wiring.customers,
        knowledge=kb,
        conversations=conversations,
        replier=OutboxReplier(wiring.outbox, wiring.registry),
        rules=RuleEngine(wiring.db),
        settings=dialog_settings,
    )
    wiring.router.default = engine
    wiring.app[DIALOG] = engine
    wiring.app[DIALOG_SETTINGS] = dialog_settings

    async def ready() -> None:
        if wiring.settings.seed_demo:
            added = await seed_demo_articles(kb)
            if added:
                log.info("seeded %d demo knowledge articles", added)
            if await seed_demo_rules(wiring.db):
                log.info("seeded the demo out-of-hours rule")
            await wiring.db.settings.update_one(
                {"_id": "dialog"}, {"$setOnInsert": DEMO_DIALOG_SETTINGS.to_doc()}, upsert=True
            )
        await kb.load()
        await dialog_settings.load()

    wiring.on_ready.append(ready)
    wiring.components.append(KnowledgeRefresher(kb, dialog_settings))
    wiring.components.append(DialogTimeouts(conversations, wiring.bus))
    wiring.app.router.add_routes(rules_api.routes)
