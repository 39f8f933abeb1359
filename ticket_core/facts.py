"""Per-ticket facts for reports, computed from the ticket and all of its events (pure).

Recomputing from the whole event list each time makes reopenings come out right by construction: a
ticket solved, reopened and solved again counts once, with its final resolution time. Each ticket
contributes to daily rollups keyed by its creation day (in the reporting calendar's time zone) for
every dimension (all, channel, category, team, agent); a report then reads rollups only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ticket_core.business_hours import BusinessCalendar
from ticket_core.model import OPEN_STATUSES

DIMENSIONS = ("channel", "category", "team", "agent")
NONE = "(none)"
Contributions = dict[str, dict[str, float]]  # rollup _id -> field -> amount


@dataclass(frozen=True)
class TicketFacts:
    day: str
    dims: Mapping[str, str]
    open: bool
    first_response_seconds: float | None
    first_response_business: float | None
    resolved: bool
    resolution_seconds: float | None
    resolution_business: float | None
    agent_replies: int
    reopened: bool
    csat: int | None
    with_sla: bool
    sla_breached: bool

    @property
    def fcr(self) -> bool:
        """Solved with one agent answer and never reopened."""
        return self.resolved and self.agent_replies == 1 and not self.reopened


def _aware(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    raise TypeError(f"not a time: {value!r}")


def compute(
    ticket: Mapping[str, Any], events: Sequence[Mapping[str, Any]], calendar: BusinessCalendar
) -> TicketFacts:
    created = _aware(ticket["created_at"])
    ordered = sorted(events, key=lambda e: _aware(e["at"]))
    replies = [
        e
        for e in ordered
        if e.get("type") == "public_reply" and (e.get("actor") or {}).get("kind") == "agent"
    ]
    status = str(ticket.get("status", "new"))
    resolved = status in ("solved", "closed")
    solved_at: datetime | None = None
    reopened = False
    for event in ordered:
        if event.get("type") != "status_changed":
            continue
        data = event.get("data") or {}
        if data.get("new") == "solved":
            solved_at = _aware(event["at"])
        if data.get("reopened") or (data.get("old") in ("solved", "closed") and data.get("new") == "open"):
            reopened = True
    if resolved and solved_at is None and ticket.get("solved_at") is not None:
        solved_at = _aware(ticket["solved_at"])
    first = _aware(replies[0]["at"]) if replies else None
    score = None
    csat = ticket.get("csat")
    if isinstance(csat, Mapping) and isinstance(csat.get("score"), int):
        score = int(csat["score"])
    else:
        for event in ordered:
            if event.get("type") == "csat" and isinstance((event.get("data") or {}).get("score"), int):
                score = int(event["data"]["score"])
    sla = ticket.get("sla") or {}
    clocks = sla.get("clocks") or {}
    return TicketFacts(
        day=calendar.local_day(created).isoformat(),
        dims={
            "channel": str(ticket.get("channel") or NONE),
            "category": str(ticket.get("category") or NONE),
            "team": str(ticket.get("team") or NONE),
            "agent": str(ticket.get("assignee") or NONE),
        },
        open=status in OPEN_STATUSES,
        first_response_seconds=(first - created).total_seconds() if first else None,
        first_response_business=calendar.between(created, first) if first else None,
        resolved=resolved and solved_at is not None,
        resolution_seconds=(solved_at - created).total_seconds() if resolved and solved_at else None,
        resolution_business=calendar.between(created, solved_at) if resolved and solved_at else None,
        agent_replies=len(replies),
        reopened=reopened,
        csat=score,
        with_sla=bool(clocks),
        sla_breached=any(bool(c.get("breached")) for c in clocks.values()),
    )


def stored(facts: TicketFacts) -> dict[str, Any]:
    """What `ticket_facts` keeps per ticket: enough to know its contributions, compactly."""
    values: dict[str, float] = {"tickets": 1}
    if facts.first_response_seconds is not None:
        values["responded"] = 1
        values["frt_s"] = facts.first_response_seconds
        values["frt_bs"] = facts.first_response_business or 0.0
    if facts.resolved and facts.resolution_seconds is not None:
        values["resolved"] = 1
        values["rt_s"] = facts.resolution_seconds
        values["rt_bs"] = facts.resolution_business or 0.0
        # Minute histograms give exact medians at minute precision without keeping every ticket.
        values[f"rt_hist.{int(facts.resolution_seconds // 60)}"] = 1
        values[f"rt_bhist.{int((facts.resolution_business or 0) // 60)}"] = 1
        if facts.fcr:
            values["fcr"] = 1
    if facts.reopened:
        values["reopened"] = 1
    if facts.csat is not None:
        values["csat_n"] = 1
        values["csat_sum"] = facts.csat
        if facts.csat >= 4:
            values["csat_good"] = 1
    if facts.with_sla:
        values["sla_n"] = 1
        if facts.sla_breached:
            values["sla_breached"] = 1
    # Field names hold dots (`rt_hist.12`), which MongoDB reads as paths: kept as pairs.
    return {
        "day": facts.day,
        "dims": dict(facts.dims),
        "values": [[k, v] for k, v in values.items()],
        "open": facts.open,
    }


def expand(doc: Mapping[str, Any] | None) -> Contributions:
    """The rollup amounts one stored facts document stands for (one per dimension value and day)."""
    if not doc or "values" not in doc:
        return {}
    values = {str(k): v for k, v in doc["values"]}
    day, dims = str(doc["day"]), doc["dims"]
    out: Contributions = {}
    for dim, value in (("all", "all"), *((d, str(dims[d])) for d in DIMENSIONS)):
        out[rollup_id(dim, value, day)] = dict(values)
        if doc.get("open"):
            out[backlog_id(dim, value)] = {f"open.{day}": 1}
    return out


def contributions(facts: TicketFacts) -> Contributions:
    return expand(stored(facts))


def rollup_id(dim: str, value: str, day: str) -> str:
    return f"{dim}|{value}|{day}"


def backlog_id(dim: str, value: str) -> str:
    return f"backlog|{dim}|{value}"


def delta(old: Contributions, new: Contributions) -> Contributions:
    out: Contributions = {}
    for key in old.keys() | new.keys():
        before, after = old.get(key, {}), new.get(key, {})
        diff = {f: after.get(f, 0) - before.get(f, 0) for f in before.keys() | after.keys()}
        diff = {f: v for f, v in diff.items() if v != 0}
        if diff:
            out[key] = diff
    return out


def add_into(total: Contributions, part: Contributions) -> None:
    for key, values in part.items():
        bucket = total.setdefault(key, {})
        for f, v in values.items():
            bucket[f] = bucket.get(f, 0) + v


def rollup_doc(key: str, values: Mapping[str, float]) -> dict[str, Any]:
    """A rollup document as stored: `rt_hist.12` becomes `{"rt_hist": {"12": n}}`."""
    doc: dict[str, Any] = {"_id": key, **describe(key)}
    for name, amount in values.items():
        head, _, tail = name.partition(".")
        if tail:
            doc.setdefault(head, {})[tail] = amount
        else:
            doc[name] = amount
    return doc


def describe(key: str) -> dict[str, str]:
    head, _, rest = key.partition("|")
    if head == "backlog":
        dim, _, value = rest.partition("|")
        return {"kind": "backlog", "dim": dim, "value": value}
    value, _, day = rest.rpartition("|")  # a value may itself hold "|"; the day never does
    return {"kind": "daily", "dim": head, "value": value, "day": day}
