"""KPIs from report rollups (pure): sums, averages, exact medians from minute histograms, rates.

Durations are in seconds, wall-clock and business time (the reporting calendar). Medians are exact at
minute precision. Attribution: a ticket counts on the day it was created (its cohort), so reopening
and solving again changes that day's figures rather than double counting.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

GROUPS = ("channel", "category", "team", "agent", "day")
AGE_BUCKETS = ((0, 1, "<1d"), (1, 3, "1-3d"), (3, 7, "3-7d"), (7, 30, "7-30d"), (30, None, ">30d"))


def _median(hist: Mapping[int, float]) -> float | None:
    """The median value (minutes * 60) of a histogram of whole minutes."""
    items = sorted((k, v) for k, v in hist.items() if v > 0)
    n = sum(v for _, v in items)
    if n <= 0:
        return None

    def nth(i: float) -> int:  # 0-based position in the sorted values
        seen = 0.0
        for k, v in items:
            seen += v
            if i < seen:
                return k
        return items[-1][0]

    if n % 2:
        return nth((n - 1) / 2) * 60.0
    return (nth(n / 2 - 1) + nth(n / 2)) / 2 * 60.0


class Accumulator:
    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.hist: dict[int, float] = defaultdict(float)
        self.bhist: dict[int, float] = defaultdict(float)

    def add(self, doc: Mapping[str, Any]) -> None:
        for name, value in doc.items():
            if name in ("rt_hist", "rt_bhist") and isinstance(value, Mapping):
                target = self.hist if name == "rt_hist" else self.bhist
                for minute, count in value.items():
                    target[int(minute)] += count
            elif isinstance(value, int | float) and not isinstance(value, bool):
                self.sums[name] += value

    def result(self) -> dict[str, Any]:
        s = self.sums
        tickets, responded, resolved = s["tickets"], s["responded"], s["resolved"]
        deflections = s["deflections"]

        def ratio(a: float, b: float) -> float | None:
            return a / b if b else None

        return {
            "tickets": int(tickets),
            "first_response": {
                "count": int(responded),
                "avg_seconds": ratio(s["frt_s"], responded),
                "avg_business_seconds": ratio(s["frt_bs"], responded),
            },
            "resolution": {
                "count": int(resolved),
                "avg_seconds": ratio(s["rt_s"], resolved),
                "median_seconds": _median(self.hist),
                "avg_business_seconds": ratio(s["rt_bs"], resolved),
                "median_business_seconds": _median(self.bhist),
            },
            "first_contact_resolution": {"count": int(s["fcr"]), "rate": ratio(s["fcr"], resolved)},
            "reopened": int(s["reopened"]),
            "csat": {
                "count": int(s["csat_n"]),
                "average": ratio(s["csat_sum"], s["csat_n"]),
                "satisfied_rate": ratio(s["csat_good"], s["csat_n"]),
            },
            "sla": {
                "count": int(s["sla_n"]),
                "breached": int(s["sla_breached"]),
                "compliance": ratio(s["sla_n"] - s["sla_breached"], s["sla_n"]),
            },
            "deflection": {
                "deflections": int(deflections),
                "rate": ratio(deflections, deflections + tickets),
            },
        }


def summarize(docs: Iterable[Mapping[str, Any]], by: str | None) -> dict[str, Any]:
    """`docs` are daily rollups of one dimension (`all` when grouping by day or not at all)."""
    total = Accumulator()
    groups: dict[str, Accumulator] = defaultdict(Accumulator)
    for doc in docs:
        total.add(doc)
        if by == "day":
            groups[str(doc["day"])].add(doc)
        elif by:
            groups[str(doc["value"])].add(doc)
    items = [{"key": key, **acc.result()} for key, acc in sorted(groups.items())]
    return {"total": total.result(), "items": items}


def backlog(docs: Iterable[Mapping[str, Any]], today: date) -> dict[str, Any]:
    """Open tickets per group, by age (days since creation, in the reporting calendar)."""
    items = []
    grand: dict[str, float] = defaultdict(float)
    for doc in sorted(docs, key=lambda d: str(d.get("value"))):
        opened = doc.get("open") or {}
        buckets: dict[str, float] = {label: 0 for _, _, label in AGE_BUCKETS}
        count = 0.0
        age_sum = 0.0
        for day, n in opened.items():
            if n <= 0:
                continue
            age = (today - date.fromisoformat(day)).days
            count += n
            age_sum += age * n
            for lo, hi, label in AGE_BUCKETS:
                if age >= lo and (hi is None or age < hi):
                    buckets[label] += n
        if count:
            items.append(
                {
                    "key": doc.get("value"),
                    "open": int(count),
                    "avg_age_days": age_sum / count,
                    "by_age": {k: int(v) for k, v in buckets.items()},
                }
            )
            grand["open"] += count
            grand["age"] += age_sum
    return {
        "total": {
            "open": int(grand["open"]),
            "avg_age_days": grand["age"] / grand["open"] if grand["open"] else None,
        },
        "items": items,
    }
