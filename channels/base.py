"""The small interface every channel adapter implements, and the registry that finds one by name.

Optional abilities (typing indicators, media download, template messages) are separate protocols that
an adapter may also implement; nothing raises "not supported".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from ticket_core.errors import UnknownChannel
from ticket_core.messages import OutboundMessage


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

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver, or raise a ChannelError (RateLimited, PermanentDeliveryError, ChannelUnavailable)."""
        ...


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

    def first(self, name: str) -> Channel | None:
        return next((c for (n, _), c in self._channels.items() if n == name), None)

    def __iter__(self) -> Any:
        return iter(list(self._channels.values()))

    def __len__(self) -> int:
        return len(self._channels)
