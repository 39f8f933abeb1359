"""Plugs Telegram in: one channel per configured bot (webhook route or leader-elected poller), file
fetching before the dialog sees a media message, the agent relay in the staff group, and CSAT."""

from __future__ import annotations

import logging
from typing import Any

from bots.csat import Csat
from bots.relay import AgentRelay
from bots.staff_commands import ArticleSource
from bots.staff_sender import StaffSender
from bots.topics import TopicStore
from channels.telegram.channel import TelegramChannel
from channels.telegram.polling import TelegramPoller
from gateway.appkeys import KNOWLEDGE
from gateway.config import Settings
from gateway.lifecycle import Component
from gateway.wiring import Wiring
from ticket_core.messages import InboundMessage

log = logging.getLogger(__name__)

MEDIA_KINDS = ("image", "file", "video", "voice")


class PollerComponent(Component):
    def __init__(self, poller: TelegramPoller) -> None:
        self.poller = poller

    async def initialize(self) -> None:
        await self.poller.initialize()

    async def shutdown(self) -> None:
        await self.poller.shutdown()


def install(wiring: Wiring) -> None:
    settings = wiring.settings
    if not settings.telegram_bots:
        return
    channels: dict[str, TelegramChannel] = {}
    for bot in settings.telegram_bots:
        channel = TelegramChannel(
            bot,
            wiring.bus,
            wiring.attachments,
            wiring.db,
            public_url=settings.server.public_url,
            max_attachment_bytes=settings.storage.max_attachment_bytes,
        )
        wiring.registry.add(channel)
        channels[bot.name] = channel
        if channel.poller is not None:
            wiring.components.append(PollerComponent(channel.poller))

    router = wiring.router

    async def fetch_media(msg: InboundMessage, record_id: str) -> dict[str, Any] | None:
        # Files are fetched here, after the platform got its answer; `router.default` is looked up per
        # message because the dialog installer may replace it after this one ran.
        channel = channels.get(msg.account) if msg.channel == "telegram" else None
        if channel is not None:
            msg = await channel.with_attachments(msg)
        return await router.default(msg, record_id)

    for kind in MEDIA_KINDS:
        router.add(kind, fetch_media)

    relay: AgentRelay | None = None
    staff_bot = next((b for b in settings.telegram_bots if b.staff_chat_id), None)
    if staff_bot is not None:
        topics = TopicStore(wiring.db, staff_bot.name, staff_bot.staff_chat_id)
        wiring.registry.add(StaffSender(channels[staff_bot.name], topics, use_topics=staff_bot.staff_topics))

        def knowledge() -> ArticleSource | None:
            return wiring.app.get(KNOWLEDGE)

        relay = AgentRelay(
            bot=staff_bot.name,
            staff_chat_id=staff_bot.staff_chat_id,
            db=wiring.db,
            outbox=wiring.outbox,
            service=wiring.service,
            tickets=wiring.tickets,
            customers=wiring.customers,
            topics=topics,
            knowledge=knowledge,
        )
        relay.subscribe(wiring.events)
        router.add("staff", relay)

    async def render(event: str, channel: str, locale: str, context: dict[str, Any]) -> str:
        return (await wiring.renderer.render(event, channel, locale, context)).text

    csat = Csat(
        db=wiring.db,
        outbox=wiring.outbox,
        tickets=wiring.tickets,
        customers=wiring.customers,
        render=render,
        on_rated=relay.on_rated if relay is not None else None,
    )
    csat.subscribe(wiring.events)

    async def actions(msg: InboundMessage, record_id: str) -> dict[str, Any] | None:
        if msg.fields.get("action") == "csat":
            return await csat.record(msg, record_id)
        return await router.default(msg, record_id)

    router.add("action", actions)


def telegram_modes(settings: Settings) -> list[tuple[str, bool]]:
    """For `omnigate doctor`: how each bot receives updates, and whether that can work as configured."""
    lines: list[tuple[str, bool]] = []
    public = settings.server.public_url.rstrip("/")
    for bot in settings.telegram_bots:
        label = f"telegram/{bot.name}"
        relay = f"; agent relay in {bot.staff_chat_id}" if bot.staff_chat_id else "; no agent relay"
        if bot.mode == "polling":
            lines.append(
                (
                    f"{label}: polling mode (getUpdates, one leader per {bot.poll_lease_seconds:g} s lease)"
                    + relay,
                    True,
                )
            )
            continue
        url = f"{public}/channels/telegram/{bot.name}"
        lines.append((f"{label}: webhook mode at {url}{relay}", True))
        if not bot.secret_token:
            lines.append((f"{label}: secret_token is empty; every webhook call will be refused", False))
        if not public.startswith("https://"):
            lines.append((f"{label}: Telegram only delivers webhooks over HTTPS (server.public_url)", False))
    return lines
