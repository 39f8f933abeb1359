from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticket_core.business_hours import BusinessCalendar
from ticket_core.errors import InvalidInput

SHANGHAI = {
    "timezone": "Asia/Shanghai",
    "hours": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-11-09"],  # a Monday
}


def cst(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_due_time_skips_the_weekend_and_a_holiday() -> None:
    cal = BusinessCalendar.from_doc(SHANGHAI)
    # Friday 2026-11-06 17:00 local + 4 business hours: 1 h on Friday, Mon 9th is a holiday -> Tue 12:00.
    assert cal.add(cst(6, 17), 4 * 3600) == cst(10, 12)
    assert cal.between(cst(6, 17), cst(10, 12)) == 4 * 3600


def test_time_outside_hours_starts_at_the_next_opening() -> None:
    cal = BusinessCalendar.from_doc(SHANGHAI)
    assert cal.add(cst(7, 10), 30 * 60) == cst(10, 9, 30)  # Saturday -> Tuesday (Monday is a holiday)
    assert cal.between(cst(7, 0), cst(8, 23)) == 0


def test_negative_when_the_end_is_earlier_and_round_the_clock_by_default() -> None:
    cal = BusinessCalendar.from_doc(SHANGHAI)
    assert cal.between(cst(10, 12), cst(6, 17)) == -4 * 3600
    plain = BusinessCalendar()
    assert plain.add(cst(7, 10), 3600) == cst(7, 11)
    assert BusinessCalendar.from_doc(plain.to_doc()) == plain


def test_round_trip_and_bad_input() -> None:
    cal = BusinessCalendar.from_doc(SHANGHAI)
    assert BusinessCalendar.from_doc(cal.to_doc()) == cal
    for bad in (
        {"timezone": "Mars/Base"},
        {"hours": {"monday": [["09:00", "18:00"]]}},
        {"hours": {"mon": [["18:00", "09:00"]]}},
        {"holidays": ["tomorrow"]},
    ):
        with pytest.raises(InvalidInput):
            BusinessCalendar.from_doc(bad)
