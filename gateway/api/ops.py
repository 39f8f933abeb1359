"""Liveness and database reachability, and Prometheus metrics for the queues."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pymongo.errors import PyMongoError

from gateway.appkeys import BUS, DATABASE, OUTBOX


async def healthz(request: web.Request) -> web.Response:
    ok = await request.app[DATABASE].ping()
    return web.json_response(
        {"status": "ok" if ok else "degraded", "database": ok}, status=200 if ok else 503
    )


async def _oldest(collection: Any, query: dict[str, Any], field: str, now: datetime) -> float:
    doc = await collection.find_one(query, {field: 1}, sort=[("_id", 1)])
    if doc is None or not isinstance(doc.get(field), datetime):
        return 0.0
    stamp = doc[field] if doc[field].tzinfo else doc[field].replace(tzinfo=UTC)
    return round(max(0.0, (now - stamp).total_seconds()), 3)


async def metrics(request: web.Request) -> web.Response:
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: dict[str, float]) -> None:
        lines.append(f"# HELP omnigate_{name} {help_text}")
        lines.append(f"# TYPE omnigate_{name} {kind}")
        for labels, value in samples.items():
            lines.append(f"omnigate_{name}{labels} {value}")

    bus, outbox = request.app[BUS], request.app[OUTBOX]
    metric(
        "inbox_messages_total",
        "counter",
        "Inbound messages by outcome in this process.",
        {f'{{outcome="{k}"}}': v for k, v in bus.stats.items()},
    )
    metric(
        "outbox_deliveries_total",
        "counter",
        "Outbound deliveries by outcome in this process.",
        {f'{{outcome="{k}"}}': v for k, v in outbox.stats.items()},
    )
    db = request.app[DATABASE].db
    try:
        depth = {
            state: await db.outbox.count_documents({"state": state})
            for state in ("pending", "sending", "dead")
        }
        metric(
            "outbox_records",
            "gauge",
            "Outbox records by state.",
            {f'{{state="{k}"}}': v for k, v in depth.items()},
        )
        pending = await db.inbox.count_documents({"state": {"$in": ["pending", "processing"]}})
        metric("inbox_pending_records", "gauge", "Inbox records not yet handled.", {"": pending})
        now = datetime.now(UTC)
        ages = {
            "inbox": await _oldest(
                db.inbox, {"state": {"$in": ["pending", "processing"]}}, "received_at", now
            ),
            "outbox": await _oldest(db.outbox, {"state": {"$in": ["pending", "sending"]}}, "created_at", now),
        }
        metric(
            "queue_oldest_age_seconds",
            "gauge",
            "Age of the oldest unfinished record per queue.",
            {f'{{queue="{k}"}}': v for k, v in ages.items()},
        )
        metric(
            "quarantine_records",
            "gauge",
            "Records kept aside with the reason they could not be handled.",
            {"": await db.quarantine.estimated_document_count()},
        )
        metric("database_up", "gauge", "1 when the database answered.", {"": 1})
    except PyMongoError:
        metric("database_up", "gauge", "1 when the database answered.", {"": 0})
    return web.Response(
        text="\n".join(lines) + "\n",
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )
