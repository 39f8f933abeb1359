"""Which customer notices go out, and when: per-event switches and quiet hours (`settings` document
`notifications`, editable through `/api/v1/notification-settings`).

A non-urgent notice that falls in quiet hours is held in the outbox until they end rather than
dropped; a public reply (the customer is waiting for it) and anything about an urgent ticket is never
held. A resolution is its own switch (`solved`) although it travels as a status change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.database import Db
from gateway.notifier import Delivery
from ticket_core.errors import InvalidInput
from ticket_core.events import StatusChanged, TicketEvent
from ticket_core.model import Ticket

SWITCHES = ("ticket_created", "status_changed", "solved", "public_reply", "assigned", "still_on_it")
DEFAULTS: dict[str, Any] = {
    "events": {name: True for name in SWITCHES},
    "urgent_events": ["public_reply"],
    "quiet_hours": {"enabled": False, "start": "22:00", "end": "08:00", "timezone": "Asia/Shanghai"},
}


def _now() -> datetime:
    return datetime.now(UTC)


def _hhmm(value: Any, name: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidInput(f"{name} must be HH:MM", code="invalid_fields", fields={name: "HH:MM"}) from exc


def validate(body: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a (partial) update into the current settings, refusing anything malformed."""
    unknown = set(body) - set(DEFAULTS)
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_fields")
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in current.items()}
    events = body.get("events", {})
    if not isinstance(events, Mapping) or any(
        k not in SWITCHES or not isinstance(v, bool) for k, v in events.items()
    ):
        raise InvalidInput(
            f"events maps {', '.join(SWITCHES)} to true/false",
            code="invalid_fields",
            fields={"events": "switches"},
        )
    out["events"] = {**out["events"], **events}
    if "urgent_events" in body:
        urgent = body["urgent_events"]
        if not isinstance(urgent, list) or any(u not in SWITCHES for u in urgent):
            raise InvalidInput(
                "urgent_events lists event names", code="invalid_fields", fields={"urgent_events": "names"}
            )
        out["urgent_events"] = urgent
    quiet = body.get("quiet_hours", {})
    if not isinstance(quiet, Mapping) or set(quiet) - {"enabled", "start", "end", "timezone"}:
        raise InvalidInput("quiet_hours has enabled, start, end, timezone", code="invalid_fields")
    merged = {**out["quiet_hours"], **quiet}
    _hhmm(merged["start"], "quiet_hours.start")
    _hhmm(merged["end"], "quiet_hours.end")
    try:
        ZoneInfo(str(merged["timezone"]))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            "unknown time zone", code="invalid_fields", fields={"quiet_hours.timezone": "IANA"}
        ) from exc
    if not isinstance(merged["enabled"], bool):
        raise InvalidInput("quiet_hours.enabled is true/false", code="invalid_fields")
    out["quiet_hours"] = merged
    return out


def quiet_hold(quiet: Mapping[str, Any], now: datetime) -> float:
    """Seconds until quiet hours end, or 0 outside them (a window may span midnight)."""
    if not quiet.get("enabled"):
        return 0.0
    tz = ZoneInfo(str(quiet["timezone"]))
    local = now.astimezone(tz)
    start, end = _hhmm(quiet["start"], "start"), _hhmm(quiet["end"], "end")
    t = local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return 0.0
    end_day = local.date() if t < end else local.date() + timedelta(days=1)
    until = datetime.combine(end_day, end, tzinfo=tz)
    return max(0.0, (until - local).total_seconds())


class NotificationPolicy:
    def __init__(self, db: Db, *, clock: Callable[[], datetime] = _now) -> None:
        self._db = db
        self._clock = clock

    async def settings(self) -> dict[str, Any]:
        doc = await self._db.settings.find_one({"_id": "notifications"}, {"_id": 0}) or {}
        return {
            "events": {**DEFAULTS["events"], **(doc.get("events") or {})},
            "urgent_events": doc.get("urgent_events", DEFAULTS["urgent_events"]),
            "quiet_hours": {**DEFAULTS["quiet_hours"], **(doc.get("quiet_hours") or {})},
        }

    async def save(self, body: Mapping[str, Any]) -> dict[str, Any]:
        merged = validate(body, await self.settings())
        await self._db.settings.update_one({"_id": "notifications"}, {"$set": merged}, upsert=True)
        return merged

    async def decide(self, name: str, ticket: Ticket, event: TicketEvent) -> Delivery:
        current = await self.settings()
        switch = "solved" if isinstance(event, StatusChanged) and event.new == "solved" else name
        if switch not in SWITCHES:
            return Delivery()  # answers to the customer's own action (a rating's thanks): at once
        if not current["events"].get(switch, True):
            return Delivery(send=False)
        if switch in current["urgent_events"] or ticket.priority == "urgent":
            return Delivery()
        return Delivery(hold_seconds=quiet_hold(current["quiet_hours"], self._clock()))
