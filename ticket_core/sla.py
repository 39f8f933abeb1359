"""SLA policies and the clocks they put on a ticket (pure: no I/O, every time passed in).

A policy sets first-response and resolution targets per priority (optionally only for some categories
or customer tiers) in business time. The ticket's `sla` field is a snapshot of what applies to it (the
calendar included, so editing a policy later does not move promises already made) plus one clock per
target. A clock runs, pauses while the ticket waits in a pause status (its remaining business time
kept), resumes, and stops when its goal is met; `breached` and `warned` only ever turn true.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ticket_core.business_hours import BusinessCalendar
from ticket_core.errors import InvalidInput
from ticket_core.model import PRIORITIES, STATUSES

Metric = Literal["first_response", "resolution"]
METRICS: tuple[Metric, ...] = ("first_response", "resolution")
DONE_STATUSES = frozenset({"solved", "closed"})


@dataclass(frozen=True)
class SlaPolicy:
    id: str
    name: str
    # priority -> metric -> target minutes (business time); a missing metric has no target
    targets: Mapping[str, Mapping[str, float]]
    order: int = 0
    categories: tuple[str, ...] = ()  # empty: any
    tiers: tuple[str, ...] = ()  # empty: any
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)
    pause_statuses: frozenset[str] = frozenset({"pending", "on_hold"})
    warn_before_minutes: float = 30.0
    still_on_it_minutes: float | None = None  # proactive "we are still on it" after this much business time
    enabled: bool = True

    def matches(self, *, priority: str, category: str | None, tier: str | None) -> bool:
        if not self.enabled or priority not in self.targets:
            return False
        if self.categories and (category or "") not in self.categories:
            return False
        return not (self.tiers and (tier or "") not in self.tiers)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> SlaPolicy:
        name = doc.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("name is required", code="invalid_fields", fields={"name": "is required"})
        raw_targets = doc.get("targets")
        if not isinstance(raw_targets, Mapping) or not raw_targets:
            raise InvalidInput(
                "targets maps a priority to {first_response, resolution} minutes",
                code="invalid_fields",
                fields={"targets": "required"},
            )
        targets: dict[str, dict[str, float]] = {}
        for priority, spec in raw_targets.items():
            if priority not in PRIORITIES or not isinstance(spec, Mapping):
                raise InvalidInput(
                    f"unknown priority {priority!r}", code="invalid_fields", fields={"targets": priority}
                )
            targets[priority] = {}
            for metric in METRICS:
                value = spec.get(metric)
                if value is None:
                    continue
                if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                    raise InvalidInput(
                        f"{priority}.{metric} must be a positive number of minutes",
                        code="invalid_fields",
                        fields={"targets": f"{priority}.{metric}"},
                    )
                targets[priority][metric] = float(value)
        pause = doc.get("pause_statuses", ["pending", "on_hold"])
        if not isinstance(pause, list) or any(s not in STATUSES for s in pause):
            raise InvalidInput(
                "pause_statuses must be statuses",
                code="invalid_fields",
                fields={"pause_statuses": "statuses"},
            )
        still = doc.get("still_on_it_minutes")
        return cls(
            id=str(doc.get("_id", doc.get("id", ""))),
            name=name.strip(),
            targets=targets,
            order=_int(doc.get("order", 0), "order"),
            categories=_strings(doc.get("categories"), "categories"),
            tiers=_strings(doc.get("tiers"), "tiers"),
            calendar=BusinessCalendar.from_doc(doc.get("calendar")),
            pause_statuses=frozenset(pause),
            warn_before_minutes=_number(doc.get("warn_before_minutes", 30), "warn_before_minutes"),
            still_on_it_minutes=None if still is None else _number(still, "still_on_it_minutes"),
            enabled=bool(doc.get("enabled", True)),
        )

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "targets": {p: dict(m) for p, m in self.targets.items()},
            "order": self.order,
            "categories": list(self.categories),
            "tiers": list(self.tiers),
            "calendar": self.calendar.to_doc(),
            "pause_statuses": sorted(self.pause_statuses),
            "warn_before_minutes": self.warn_before_minutes,
            "still_on_it_minutes": self.still_on_it_minutes,
            "enabled": self.enabled,
        }


def pick_policy(
    policies: list[SlaPolicy], *, priority: str, category: str | None, tier: str | None
) -> SlaPolicy | None:
    for policy in sorted(policies, key=lambda p: (p.order, p.name)):
        if policy.matches(priority=priority, category=category, tier=tier):
            return policy
    return None


# -- the ticket's clocks -------------------------------------------------------------------------------


def start(policy: SlaPolicy, priority: str, now: datetime) -> dict[str, Any]:
    """The `sla` field of a new ticket under `policy`."""
    calendar = policy.calendar
    clocks: dict[str, Any] = {}
    for metric in METRICS:
        minutes = policy.targets.get(priority, {}).get(metric)
        if minutes is None:
            continue
        clocks[metric] = {"target_seconds": minutes * 60, "breached": False, "warned": False, "done_at": None}
        _run(clocks[metric], calendar, now, minutes * 60, policy.warn_before_minutes * 60)
    sla: dict[str, Any] = {
        "policy_id": policy.id,
        "policy": policy.name,
        "calendar": calendar.to_doc(),
        "pause_statuses": sorted(policy.pause_statuses),
        "warn_before_seconds": policy.warn_before_minutes * 60,
        "paused": False,
        "clocks": clocks,
    }
    if policy.still_on_it_minutes is not None:
        sla["still_on_it"] = {"at": calendar.add(now, policy.still_on_it_minutes * 60), "sent": False}
    sla["next_check"] = next_check(sla)
    return sla


def _run(
    clock: dict[str, Any], calendar: BusinessCalendar, now: datetime, remaining: float, warn: float
) -> None:
    clock["due"] = calendar.add(now, remaining)
    clock["warn_at"] = None if clock.get("warned") else calendar.add(now, max(0.0, remaining - warn))
    clock["remaining_seconds"] = None


def _pause(clock: dict[str, Any], calendar: BusinessCalendar, now: datetime) -> None:
    clock["remaining_seconds"] = calendar.between(now, clock["due"])
    clock["due"] = None
    clock["warn_at"] = None


def calendar_of(sla: Mapping[str, Any]) -> BusinessCalendar:
    return BusinessCalendar.from_doc(sla.get("calendar"))


def on_status(sla: Mapping[str, Any], old: str, new: str, now: datetime) -> dict[str, Any]:
    """The clocks after a status change: pause or resume, stop resolution on solve, resume on reopen."""
    out = _copy(sla)
    if not out.get("clocks"):
        return out
    calendar = calendar_of(out)
    pause = set(out.get("pause_statuses", ()))
    warn = float(out.get("warn_before_seconds", 0))
    should_pause = new in pause
    stop = new in DONE_STATUSES
    for metric, clock in out["clocks"].items():
        if clock.get("done_at") is not None and not (
            metric == "resolution" and old in DONE_STATUSES and not stop
        ):
            continue
        if stop and metric == "resolution":
            _finish(clock, calendar, now)
            continue
        if metric == "resolution" and clock.get("done_at") is not None:
            # Reopened: the resolution clock resumes with what was left when it was solved.
            clock["done_at"] = None
        running = clock.get("due") is not None
        if (should_pause or stop) and running:
            _pause(clock, calendar, now)
        elif not (should_pause or stop) and not running:
            _run(clock, calendar, now, float(clock.get("remaining_seconds") or 0), warn)
    out["paused"] = should_pause
    out["next_check"] = next_check(out)
    return out


def on_first_response(sla: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    out = _copy(sla)
    clock = out.get("clocks", {}).get("first_response")
    if clock is not None and clock.get("done_at") is None:
        _finish(clock, calendar_of(out), now)
    out["next_check"] = next_check(out)
    return out


def _finish(clock: dict[str, Any], calendar: BusinessCalendar, now: datetime) -> None:
    if clock.get("due") is not None:
        _pause(clock, calendar, now)
    clock["done_at"] = now
    if float(clock.get("remaining_seconds") or 0) < 0:
        clock["breached"] = True  # met late: a breach even if no sweep saw it first
    clock["warn_at"] = None


Action = tuple[str, str]  # (metric or "still_on_it", "warning" | "breach" | "message")


def due_actions(sla: Mapping[str, Any], now: datetime) -> list[Action]:
    actions: list[Action] = []
    for metric, clock in (sla.get("clocks") or {}).items():
        if clock.get("done_at") is not None or clock.get("due") is None:
            continue
        if (
            not clock.get("warned")
            and clock.get("warn_at") is not None
            and clock["warn_at"] <= now < clock["due"]
        ):
            actions.append((metric, "warning"))
        if not clock.get("breached") and clock["due"] <= now:
            actions.append((metric, "breach"))
    still = sla.get("still_on_it")
    resolution = (sla.get("clocks") or {}).get("resolution", {})
    if still and not still.get("sent") and still["at"] <= now and not sla.get("paused"):
        if resolution.get("done_at") is None:
            actions.append(("still_on_it", "message"))
    return actions


def next_check(sla: Mapping[str, Any]) -> datetime | None:
    """When a sweep next has something to do for this ticket (indexed, so sweeps read only due tickets)."""
    times: list[datetime] = []
    for clock in (sla.get("clocks") or {}).values():
        if clock.get("done_at") is not None or clock.get("due") is None:
            continue
        if not clock.get("warned") and clock.get("warn_at") is not None:
            times.append(clock["warn_at"])
        if not clock.get("breached"):
            times.append(clock["due"])
    still = sla.get("still_on_it")
    if still and not still.get("sent") and not (sla.get("clocks") or {}).get("resolution", {}).get("done_at"):
        times.append(still["at"])
    return min(times) if times else None


def breached(sla: Mapping[str, Any]) -> bool:
    return any(bool(c.get("breached")) for c in (sla.get("clocks") or {}).values())


def _copy(sla: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(sla)
    out["clocks"] = {k: dict(v) for k, v in (sla.get("clocks") or {}).items()}
    if "still_on_it" in sla and sla["still_on_it"] is not None:
        out["still_on_it"] = dict(sla["still_on_it"])
    return out


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(
            f"{name} must be a list of strings", code="invalid_fields", fields={name: "list of strings"}
        )
    return tuple(value)


def _number(value: Any, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise InvalidInput(
            f"{name} must be a non-negative number", code="invalid_fields", fields={name: "number"}
        )
    return float(value)


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{name} must be an integer", code="invalid_fields", fields={name: "integer"})
    return value


__all__ = [
    "METRICS",
    "SlaPolicy",
    "breached",
    "due_actions",
    "next_check",
    "on_first_response",
    "on_status",
    "pick_policy",
    "start",
]
