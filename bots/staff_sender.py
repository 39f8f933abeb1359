"""Delivers the relay's posts into the staff group, each into its ticket's place.

Registered as its own sender (`telegram_staff`) so that posts about a ticket are ordinary outbox
records: durable, retried, paced. Delivery first makes sure the ticket's forum topic exists (created
once, see `TopicStore.claim`), then sends through the bot's `TelegramChannel`. Without topics (or when
the group turns out not to be a forum), the first post becomes the ticket's root message and later
posts reply to it; every post is remembered so an agent's reply to any of them finds the ticket.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from aiohttp import web

from bots.topics import TopicStore
from channels.base import SendResult
from channels.telegram.channel import TelegramChannel
from channels.telegram.lease import process_owner
from ticket_core.errors import ChannelUnavailable, PermanentDeliveryError
from ticket_core.messages import OutboundMessage

log = logging.getLogger(__name__)

STAFF_CHANNEL = "telegram_staff"


class StaffSender:
    name = STAFF_CHANNEL

    def __init__(self, channel: TelegramChannel, topics: TopicStore, *, use_topics: bool = True) -> None:
        self._channel = channel
        self._topics = topics
        self.account = channel.account
        self.use_topics = use_topics
        self._owner = process_owner()
        self._locks: dict[str, asyncio.Lock] = {}

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def register(self, app: web.Application) -> None:
        return None

    async def send(self, message: OutboundMessage) -> SendResult:
        ticket_id = message.meta.get("ticket_id")
        if not isinstance(ticket_id, str) or not ticket_id:
            return await self._channel.send(message)
        if len(self._locks) > 10_000:  # forget idle tickets' locks
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
        lock = self._locks.setdefault(ticket_id, asyncio.Lock())
        # One ticket's posts go out one at a time in this process: the topic is created once and the
        # root message is known before the next post replies to it.
        async with lock:
            place = await self._place(ticket_id, str(message.meta.get("topic_name") or ticket_id))
            result = await self._channel.send(replace(message, meta={**message.meta, **place}))
            if "message_thread_id" not in place:
                ids = [int(i) for i in result.detail.get("message_ids", [])]
                if ids:
                    await self._topics.set_root(ticket_id, ids[0])
                    await self._topics.remember_messages(ticket_id, ids)
            return result

    async def _place(self, ticket_id: str, topic_name: str) -> dict[str, Any]:
        known = await self._topics.for_ticket(ticket_id)
        if known and isinstance(known.get("thread_id"), int):
            return {"message_thread_id": known["thread_id"]}
        if not self.use_topics:
            root = known.get("root_message_id") if known else None
            return {"reply_to_message_id": root} if isinstance(root, int) else {}
        if not await self._topics.claim(ticket_id, self._owner):
            raise ChannelUnavailable(f"the topic of ticket {ticket_id} is being created by another process")
        chat = self._topics.chat_id
        await self._channel.limiter.acquire(chat)
        try:
            topic = await self._channel.api.create_forum_topic(chat, topic_name)
        except PermanentDeliveryError as exc:
            await self._topics.release(ticket_id, self._owner)
            if "forum" not in str(exc).lower():
                raise
            # The group has no topics: keep relaying, by replies, rather than lose the posts.
            log.warning("telegram/%s: staff group %s has no topics; relaying by replies", self.account, chat)
            self.use_topics = False
            return {}
        except BaseException:
            await self._topics.release(ticket_id, self._owner)
            raise
        await self._topics.set_thread(ticket_id, topic.message_thread_id)
        return {"message_thread_id": topic.message_thread_id}
