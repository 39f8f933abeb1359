"""The small interface every channel adapter implements, and the registry that finds one by name.

Optional abilities (typing indicators, media download, template messages) are separate protocols that
an adapter may also implement; nothing raises "not supported".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from ticket_core.errors import UnknownChannel
from ticket_core.messages import AttachmentRef, InboundMessage, OutboundMessage


@dataclass(frozen=True)
class SendResult:
    """What the platform said: its message id, and anything worth keeping on the outbox record."""

    platform_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Channel(Protocol):
    @property
    def name(self) -> str:
        """The channel type: "wechat", "telegram", "email", "webform", "fake"."""
        ...

    @property
    def account(self) -> str:
        """The configured account, bot, mailbox or form name."""
        ...

    async def initialize(self) -> None: ...

    async def shutdown(self) -> None: ...

    def register(self, app: web.Application) -> None:
        """Add the channel's HTTP routes (webhooks, pages), if any."""
        ...


@runtime_checkable
class Sender(Protocol):
    """A channel that can reach a customer (a web form cannot: its tickets notify by email)."""

    @property
    def name(self) -> str: ...

    @property
    def account(self) -> str: ...

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver, or raise a ChannelError (RateLimited, PermanentDeliveryError, ChannelUnavailable)."""
        ...


@dataclass(frozen=True)
class Accepted:
    """What intake answered: the durable record, and whether it was already there (a retry). For a
    duplicate, `stored_meta` is the stored message's `meta`: a channel can tell a replay from a retry."""

    record_id: str
    duplicate: bool
    stored_meta: Mapping[str, Any] = field(default_factory=dict)


class Intake(Protocol):
    """The bus as channels see it: publish durably, then optionally wait for the handler's result."""

    async def publish(self, msg: InboundMessage) -> Accepted: ...

    async def wait_result(self, record_id: str, timeout: float) -> dict[str, Any] | None: ...


class AttachmentStore(Protocol):
    async def save(
        self, data: bytes, *, filename: str, content_type: str, meta: dict[str, Any]
    ) -> AttachmentRef: ...

    async def load(self, file_id: str) -> tuple[bytes, dict[str, Any]]: ...


class ChannelRegistry:
    """Maps (channel, account) to its adapter; the only place a channel is looked up."""

    def __init__(self) -> None:
        self._channels: dict[tuple[str, str], Channel] = {}

    def add(self, channel: Channel) -> None:
        key = (channel.name, channel.account)
        if key in self._channels:
            raise ValueError(f"channel {key} registered twice")
        self._channels[key] = channel

    def get(self, name: str, account: str) -> Channel:
        try:
            return self._channels[(name, account)]
        except KeyError:
            raise UnknownChannel(f"no channel {name}/{account} is configured") from None

    def sender(self, name: str, account: str) -> Sender:
        channel = self.get(name, account)
        if not isinstance(channel, Sender):
            raise UnknownChannel(f"channel {name}/{account} cannot send messages")
        return channel

    def first(self, name: str) -> Channel | None:
        return next((c for (n, _), c in self._channels.items() if n == name), None)

    def __iter__(self) -> Any:
        return iter(list(self._channels.values()))

    def __len__(self) -> int:
        return len(self._channels)
