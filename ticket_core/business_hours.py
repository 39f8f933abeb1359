"""Business hours: weekly opening times in a time zone, minus holidays, and time measured in them.

SLA due times and report durations count only business time, so a ticket written on Friday evening is
not late on Saturday. All arithmetic happens in the calendar's local time (DST-safe through zoneinfo)
and comes back as aware datetimes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ticket_core.errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar with hours but none that ever open would loop forever; ten years is "never".
MAX_DAYS = 3660

Interval = tuple[int, int]  # minutes after local midnight, [start, end)


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str = "UTC"
    # weekday (0 = Monday) -> opening intervals; None means open around the clock
    hours: Mapping[int, tuple[Interval, ...]] | None = None
    holidays: frozenset[date] = field(default_factory=frozenset)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def always_open(self) -> bool:
        return self.hours is None and not self.holidays

    def local_day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def _windows(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening windows (aware, UTC) from the day of `start` on, in order."""
        tz = self.tz
        day = start.astimezone(tz).date()
        for _ in range(MAX_DAYS):
            if day not in self.holidays:
                intervals: Sequence[Interval] = (
                    ((0, 24 * 60),) if self.hours is None else self.hours.get(day.weekday(), ())
                )
                for begin, end in intervals:
                    yield (_at(day, begin, tz), _at(day, end, tz))
            day += timedelta(days=1)

    def add(self, start: datetime, seconds: float) -> datetime:
        """The moment `seconds` of business time after `start`."""
        if self.always_open:
            return start + timedelta(seconds=seconds)
        left = max(0.0, seconds)
        for begin, end in self._windows(start):
            if end <= start:
                continue
            begin = max(begin, start)
            span = (end - begin).total_seconds()
            if left <= span:
                return begin + timedelta(seconds=left)
            left -= span
        raise InvalidInput("the business calendar never opens", code="invalid_calendar")

    def between(self, start: datetime, end: datetime) -> float:
        """Business seconds from `start` to `end` (negative when `end` is earlier)."""
        if end < start:
            return -self.between(end, start)
        if self.always_open:
            return (end - start).total_seconds()
        total = 0.0
        for begin, close in self._windows(start):
            if begin >= end:
                break
            lo, hi = max(begin, start), min(close, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        return total

    # -- documents --------------------------------------------------------------------------------

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> BusinessCalendar:
        """`{timezone, hours: {"mon": [["09:00", "18:00"]], ...} | null, holidays: ["2026-10-01"]}`."""
        if not doc:
            return cls()
        if not isinstance(doc, Mapping):
            raise InvalidInput("a calendar must be an object", code="invalid_calendar")
        tz = str(doc.get("timezone") or "UTC")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(f"unknown time zone {tz!r}", code="invalid_calendar") from exc
        raw_hours = doc.get("hours")
        hours: dict[int, tuple[Interval, ...]] | None = None
        if raw_hours is not None:
            if not isinstance(raw_hours, Mapping):
                raise InvalidInput("hours must map weekday names to intervals", code="invalid_calendar")
            hours = {}
            for name, spans in raw_hours.items():
                if name not in DAYS:
                    raise InvalidInput(
                        f"unknown weekday {name!r}; use {', '.join(DAYS)}", code="invalid_calendar"
                    )
                hours[DAYS.index(name)] = tuple(_interval(s) for s in spans or ())
        holidays: set[date] = set()
        for raw in doc.get("holidays") or ():
            try:
                holidays.add(date.fromisoformat(str(raw)))
            except ValueError as exc:
                raise InvalidInput(f"holiday {raw!r} is not YYYY-MM-DD", code="invalid_calendar") from exc
        return cls(tz, hours, frozenset(holidays))

    def to_doc(self) -> dict[str, Any]:
        hours = None
        if self.hours is not None:
            hours = {
                DAYS[d]: [[_hhmm(a), _hhmm(b)] for a, b in spans] for d, spans in sorted(self.hours.items())
            }
        return {
            "timezone": self.timezone,
            "hours": hours,
            "holidays": sorted(d.isoformat() for d in self.holidays),
        }


def _at(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    if minutes >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz).astimezone(UTC)


def _minutes(text: Any) -> int:
    try:
        hh, mm = str(text).split(":")
        value = int(hh) * 60 + int(mm)
    except ValueError as exc:
        raise InvalidInput(f"time {text!r} is not HH:MM", code="invalid_calendar") from exc
    if not 0 <= value <= 24 * 60:
        raise InvalidInput(f"time {text!r} is outside 00:00-24:00", code="invalid_calendar")
    return value


def _interval(span: Any) -> Interval:
    if not isinstance(span, list | tuple) or len(span) != 2:
        raise InvalidInput('an interval is ["HH:MM", "HH:MM"]', code="invalid_calendar")
    start, end = _minutes(span[0]), _minutes(span[1])
    if end <= start:
        raise InvalidInput(f"interval {span!r} ends before it starts", code="invalid_calendar")
    return (start, end)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
