"""What the dialog engine needs from the outside, as small protocols wired in by the gateway."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ticket_core.messages import InboundMessage


class Replier(Protocol):
    """Sends a reply to the customer on the channel the message came from (durably, via the outbox).
    Returns the outbox record id, or None when the channel cannot be answered in place (web forms)."""

    async def reply(
        self,
        to: InboundMessage,
        text: str,
        *,
        key: str,
        locale: str,
        buttons: Sequence[tuple[str, str]] = (),
        articles: Sequence[Mapping[str, Any]] = (),
    ) -> str | None: ...


@dataclass(frozen=True)
class RuleContext:
    channel: str
    text: str
    now: datetime
    first_contact: bool
    locale: str
    customer_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleOutcome:
    fired: tuple[str, ...] = ()
    replies: tuple[str, ...] = ()  # already in the customer's language
    category: str | None = None
    priority: str | None = None
    tags: tuple[str, ...] = ()
    skip_suggestions: bool = False
    handoff: bool = False
    details: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)  # per rule: why it fired or not


class RuleEvaluator(Protocol):
    async def evaluate(self, context: RuleContext) -> RuleOutcome: ...
