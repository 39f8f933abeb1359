"""The ticket status machine: which moves are allowed and what a customer reply does."""

from __future__ import annotations

from datetime import datetime, timedelta

from ticket_core.errors import InvalidInput, InvalidTransition
from ticket_core.model import STATUSES

ALLOWED: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "pending", "on_hold", "solved"}),
    "open": frozenset({"pending", "on_hold", "solved"}),
    "pending": frozenset({"open", "on_hold", "solved"}),
    "on_hold": frozenset({"open", "pending", "solved"}),
    "solved": frozenset({"open", "closed"}),  # open again = reopen
    "closed": frozenset(),
}


def check_transition(current: str, target: str) -> None:
    if target not in STATUSES:
        raise InvalidInput(
            f"unknown status {target!r}; expected one of {', '.join(STATUSES)}", code="invalid_status"
        )
    if target == current:
        return
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(ALLOWED[current])) or "none"
        raise InvalidTransition(f"a {current} ticket cannot become {target} (allowed: {allowed})")


def status_after_customer_reply(
    current: str, solved_at: datetime | None, now: datetime, reopen_window: timedelta
) -> str | None:
    """The status a customer's reply moves the ticket to, or None when it cannot take the reply.

    A reply to a solved ticket within the window reopens it; later, or on a closed ticket, the reply
    starts a new conversation instead. A reply to a pending ticket (waiting on the customer) opens it.
    """
    if current == "closed":
        return None
    if current == "solved":
        if solved_at is not None and now - solved_at <= reopen_window:
            return "open"
        return None
    if current == "pending":
        return "open"
    return current
