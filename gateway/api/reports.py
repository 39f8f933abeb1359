"""KPI reports from the rollups: `/api/v1/reports/summary` and `/api/v1/reports/backlog`, JSON or CSV
(`?format=csv`). A report reads rollup documents only (one per group and day), so its cost follows the
range asked for, not the number of tickets ever handled."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from gateway.api.auth import require_role
from gateway.api.tickets import json_response
from gateway.appkeys import OPERATIONS
from ticket_core.errors import InvalidInput
from ticket_core.reports import GROUPS, backlog, summarize

routes = web.RouteTableDef()
MAX_DAYS = 400
CSV_COLUMNS = (
    ("tickets", ("tickets",)),
    ("first_response_count", ("first_response", "count")),
    ("first_response_avg_seconds", ("first_response", "avg_seconds")),
    ("first_response_avg_business_seconds", ("first_response", "avg_business_seconds")),
    ("resolved", ("resolution", "count")),
    ("resolution_avg_seconds", ("resolution", "avg_seconds")),
    ("resolution_median_seconds", ("resolution", "median_seconds")),
    ("resolution_avg_business_seconds", ("resolution", "avg_business_seconds")),
    ("resolution_median_business_seconds", ("resolution", "median_business_seconds")),
    ("fcr_count", ("first_contact_resolution", "count")),
    ("fcr_rate", ("first_contact_resolution", "rate")),
    ("reopened", ("reopened",)),
    ("csat_count", ("csat", "count")),
    ("csat_average", ("csat", "average")),
    ("csat_satisfied_rate", ("csat", "satisfied_rate")),
    ("sla_count", ("sla", "count")),
    ("sla_breached", ("sla", "breached")),
    ("sla_compliance", ("sla", "compliance")),
    ("deflections", ("deflection", "deflections")),
    ("deflection_rate", ("deflection", "rate")),
)


def _day(value: str | None, name: str, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise InvalidInput(
            f"{name} must be YYYY-MM-DD", code="invalid_fields", fields={name: "YYYY-MM-DD"}
        ) from exc


def _by(request: web.Request, allowed: tuple[str, ...]) -> str | None:
    by = request.query.get("by") or None
    if by is not None and by not in allowed:
        raise InvalidInput(
            f"by must be one of {', '.join(allowed)}", code="invalid_fields", fields={"by": "|".join(allowed)}
        )
    return by


def _format(request: web.Request) -> str:
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidInput("format must be json or csv", code="invalid_fields", fields={"format": "json|csv"})
    return fmt


@routes.get("/api/v1/reports/summary")
async def summary(request: web.Request) -> web.Response:
    """FRT, resolution time (average, median), FCR, CSAT, SLA compliance and deflection rate for the
    tickets created from `from` to `to` (inclusive days in the reporting calendar), optionally `by`
    channel, category, team, agent or day."""
    ops = request.app[OPERATIONS]
    calendar = await ops.rollups.calendar()
    today = calendar.local_day(ops.clock())
    end = _day(request.query.get("to"), "to", today)
    start = _day(request.query.get("from"), "from", end - timedelta(days=29))
    if start > end or (end - start).days > MAX_DAYS:
        raise InvalidInput(
            f"from..to must be 0-{MAX_DAYS} days", code="invalid_fields", fields={"from": "range"}
        )
    by = _by(request, GROUPS)
    fmt = _format(request)
    await ops.refresher.settle()
    await ops.rollups.catch_up_deflections()
    dim = "all" if by in (None, "day") else by
    docs = await ops.rollups.read(
        {"kind": "daily", "dim": dim, "day": {"$gte": start.isoformat(), "$lte": end.isoformat()}}
    )
    result = {"from": start.isoformat(), "to": end.isoformat(), "by": by, **summarize(docs, by)}
    if by not in (None, "day"):
        # Deflections have no category, team or agent; per channel they do.
        deflection_docs = await ops.rollups.read(
            {"kind": "daily", "dim": "all", "day": {"$gte": start.isoformat(), "$lte": end.isoformat()}}
        )
        result["total"]["deflection"] = summarize(deflection_docs, None)["total"]["deflection"]
    if fmt == "csv":
        return _csv([{"key": "total", **result["total"]}, *result["items"]], f"summary-{start}-{end}")
    return json_response(result)


@routes.get("/api/v1/reports/backlog")
async def backlog_report(request: web.Request) -> web.Response:
    """Open tickets now and their age, optionally `by` channel, category, team or agent."""
    ops = request.app[OPERATIONS]
    by = _by(request, ("channel", "category", "team", "agent"))
    fmt = _format(request)
    await ops.refresher.settle()
    calendar = await ops.rollups.calendar()
    docs = await ops.rollups.read({"kind": "backlog", "dim": by or "all"})
    result = {"by": by, **backlog(docs, calendar.local_day(ops.clock()))}
    if fmt == "csv":
        rows = [{"key": "total", **result["total"]}, *result["items"]]
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["key", "open", "avg_age_days", "<1d", "1-3d", "3-7d", "7-30d", ">30d"])
        for row in rows:
            ages = row.get("by_age", {})
            writer.writerow(
                [
                    row["key"],
                    row["open"],
                    row["avg_age_days"],
                    *(ages.get(k, "") for k in ("<1d", "1-3d", "3-7d", "7-30d", ">30d")),
                ]
            )
        return _csv_response(buf.getvalue(), "backlog")
    return json_response(result)


@routes.post("/api/v1/reports/rebuild")
async def rebuild(request: web.Request) -> web.Response:
    """Recompute every ticket's facts and the rollups from `tickets` and `ticket_events`."""
    require_role(request, "admin")
    await request.app[OPERATIONS].refresher.settle()
    count = await request.app[OPERATIONS].rollups.rebuild()
    return json_response({"tickets": count})


def _pick(row: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = row
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else value


def _csv(rows: list[dict[str, Any]], name: str) -> web.Response:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["key", *(c for c, _ in CSV_COLUMNS)])
    for row in rows:
        writer.writerow([row["key"], *(_pick(row, path) for _, path in CSV_COLUMNS)])
    return _csv_response(buf.getvalue(), name)


def _csv_response(text: str, name: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
