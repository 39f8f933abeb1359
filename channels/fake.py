"""A real in-memory channel: it records what it sends and can be told to fail, for tests and demos."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

from channels.base import SendResult
from ticket_core.errors import ChannelError
from ticket_core.messages import OutboundMessage


@dataclass
class FakeChannel:
    account: str = "main"
    name: str = "fake"
    sent: list[OutboundMessage] = field(default_factory=list)
    attempts: int = 0
    failures: deque[ChannelError] = field(default_factory=deque)  # raised, one per send, before succeeding
    fail_always: ChannelError | None = None

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def register(self, app: web.Application) -> None:
        return None

    def fail_next(self, *errors: ChannelError) -> None:
        self.failures.extend(errors)

    async def send(self, message: OutboundMessage) -> SendResult:
        self.attempts += 1
        if self.fail_always is not None:
            raise self.fail_always
        if self.failures:
            raise self.failures.popleft()
        self.sent.append(message)
        return SendResult(platform_id=f"fake-{len(self.sent)}")
