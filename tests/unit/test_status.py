from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticket_core.errors import InvalidInput, InvalidTransition
from ticket_core.status import check_transition, status_after_customer_reply

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "current, target",
    [
        ("new", "open"),
        ("open", "pending"),
        ("open", "on_hold"),
        ("pending", "solved"),
        ("solved", "closed"),
        ("solved", "open"),
        ("on_hold", "open"),
        ("new", "solved"),
    ],
)
def test_allowed(current: str, target: str) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(
    "current, target", [("new", "closed"), ("open", "new"), ("closed", "open"), ("solved", "pending")]
)
def test_refused(current: str, target: str) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(current, target)


def test_unknown_status() -> None:
    with pytest.raises(InvalidInput):
        check_transition("open", "archived")


def test_customer_reply() -> None:
    window = timedelta(days=7)
    assert status_after_customer_reply("pending", None, NOW, window) == "open"
    assert status_after_customer_reply("open", None, NOW, window) == "open"
    assert status_after_customer_reply("solved", NOW - timedelta(days=6), NOW, window) == "open"
    assert status_after_customer_reply("solved", NOW - timedelta(days=8), NOW, window) is None
    assert status_after_customer_reply("closed", NOW, NOW, window) is None
