"""Domain events of ticket operations (assignment, SLA, satisfaction), beside the core ones.

They subclass `TicketEvent`, so the dispatcher and every consumer treat them alike; their ids are
deterministic where two processes could emit the same fact, and notifications key on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ticket_core.events import TicketEvent


@dataclass(frozen=True)
class TicketAssigned(TicketEvent):
    team: str | None
    assignee: str | None
    rule: str | None = None
    strategy: str = "manual"


@dataclass(frozen=True)
class SlaWarning(TicketEvent):
    metric: str  # first_response | resolution
    due: str  # ISO time


@dataclass(frozen=True)
class SlaBreached(TicketEvent):
    metric: str
    due: str


@dataclass(frozen=True)
class StillOnIt(TicketEvent):
    """The policy's proactive "we are still on it" moment for the customer."""


@dataclass(frozen=True)
class CsatRated(TicketEvent):
    score: int
    comment: str | None = None
