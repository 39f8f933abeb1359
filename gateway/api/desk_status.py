"""Read-only views for the console: the channels page (configured accounts, last message in, last
delivery error, webhook endpoint) and the dashboard's KPIs over a date range.

The KPIs are computed here from `tickets`, `ticket_events` and `deflections` directly; issue 7's
`/api/v1/reports` (business-hours aware, with rollups) is the authority for exact figures.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from statistics import mean
from typing import Any

from aiohttp import web

from gateway.api.auth import principal, visible_to
from gateway.api.tickets import json_response
from gateway.appkeys import CHANNELS, DATABASE, SETTINGS
from ticket_core.errors import InvalidInput
from ticket_core.model import OPEN_STATUSES

routes = web.RouteTableDef()
MAX_DAYS = 366
MAX_TICKETS = 50_000
BACKLOG_BUCKETS = (("<1d", 1), ("1-3d", 3), ("3-7d", 7), (">7d", None))


@routes.get("/api/v1/channels")
async def channel_status(request: web.Request) -> web.Response:
    db = request.app[DATABASE].db
    base = request.app[SETTINGS].server.public_url.rstrip("/")
    items: list[dict[str, Any]] = []
    for channel in request.app[CHANNELS]:
        name, account = channel.name, channel.account
        last_in = await db.inbox.find_one(
            {"channel": name, "account": account}, {"received_at": 1}, sort=[("_id", -1)]
        )
        last_out = await db.outbox.find_one(
            {"channel": name, "account": account, "state": "sent"}, {"sent_at": 1}, sort=[("_id", -1)]
        )
        last_error = await db.outbox.find_one(
            {"channel": name, "account": account, "last_error": {"$exists": True}},
            {"last_error": 1, "state": 1, "dead_at": 1, "created_at": 1},
            sort=[("_id", -1)],
        )
        endpoint = {
            "wechat": f"{base}/channels/wechat/{account}",
            "telegram": f"{base}/channels/telegram/{account}",
            "webform": f"{base}/forms/{account}" if account != "webform" else f"{base}/forms/support",
        }.get(name)
        items.append(
            {
                "channel": name,
                "account": account,
                "endpoint": endpoint,
                "mode": _mode(request, name, account),
                "last_message_in": last_in.get("received_at") if last_in else None,
                "last_sent": last_out.get("sent_at") if last_out else None,
                "last_error": (
                    {
                        "error": last_error.get("last_error"),
                        "state": last_error.get("state"),
                        "at": last_error.get("dead_at") or last_error.get("created_at"),
                    }
                    if last_error
                    else None
                ),
            }
        )
    return json_response({"items": items, "next": None})


def _mode(request: web.Request, name: str, account: str) -> str:
    settings = request.app[SETTINGS]
    if name == "telegram":
        bot = next((b for b in settings.telegram_bots if b.name == account), None)
        return bot.mode if bot else "webhook"
    if name == "wechat":
        return "callback"
    if name == "email":
        return "imap+smtp"
    if name == "webhook":
        return "outgoing"
    return "http"


def _day(value: str | None, default: date, name: str) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a date (YYYY-MM-DD)", code="invalid_filter") from exc


@routes.get("/api/v1/dashboard")
async def dashboard(request: web.Request) -> web.Response:
    unknown = set(request.query) - {"from", "to"}
    if unknown:
        raise InvalidInput(f"unknown filter(s): {', '.join(sorted(unknown))}", code="invalid_filter")
    today = datetime.now(UTC).date()
    end = _day(request.query.get("to"), today, "to")
    start = _day(request.query.get("from"), end - timedelta(days=13), "from")
    if start > end or (end - start).days >= MAX_DAYS:
        raise InvalidInput(
            f"from must be on or before to, at most {MAX_DAYS} days apart", code="invalid_filter"
        )
    since = datetime.combine(start, time.min, UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, UTC)
    db = request.app[DATABASE].db
    query: dict[str, Any] = {"created_at": {"$gte": since, "$lt": until}}
    scope = visible_to(principal(request))
    if scope:
        query.update(scope)
    fields = {"created_at": 1, "channel": 1, "status": 1, "solved_at": 1, "csat": 1, "sla": 1}
    tickets = [d async for d in db.tickets.find(query, fields).limit(MAX_TICKETS)]
    ids = [str(t["_id"]) for t in tickets]
    first_reply: dict[str, datetime] = {}
    async for ev in db.ticket_events.find(
        {"type": "public_reply", "at": {"$gte": since}, "ticket_id": {"$in": ids}}, {"ticket_id": 1, "at": 1}
    ):
        current = first_reply.get(ev["ticket_id"])
        if current is None or ev["at"] < current:
            first_reply[ev["ticket_id"]] = ev["at"]
    days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    volume: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    frt: list[list[float]] = [[] for _ in days]
    art: list[list[float]] = [[] for _ in days]
    scores: list[int] = []
    tracked = met = 0
    for t in tickets:
        i = index.get(t["created_at"].astimezone(UTC).date().isoformat())
        if i is None:
            continue
        volume[t.get("channel") or "unknown"][i] += 1
        reply = first_reply.get(str(t["_id"]))
        if reply is not None:
            frt[i].append((reply - t["created_at"]).total_seconds() / 3600)
        if t.get("solved_at"):
            art[i].append((t["solved_at"] - t["created_at"]).total_seconds() / 3600)
        score = (t.get("csat") or {}).get("score")
        if isinstance(score, int) and 1 <= score <= 5:
            scores.append(score)
        clocks = (t.get("sla") or {}).get("clocks") or {}
        if clocks:
            tracked += 1
            met += not any(c.get("breached") for c in clocks.values() if isinstance(c, dict))
    deflections = await db.deflections.count_documents({"at": {"$gte": since, "$lt": until}})
    backlog = await _backlog(db, scope)
    return json_response(
        {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "days": days,
            "volume_by_channel": dict(volume),
            "tickets": len(tickets),
            "frt_hours": [round(mean(v), 2) if v else None for v in frt],
            "art_hours": [round(mean(v), 2) if v else None for v in art],
            "csat": {
                "count": len(scores),
                "average": round(mean(scores), 2) if scores else None,
                "distribution": {str(n): scores.count(n) for n in range(1, 6)},
            },
            "deflection": {
                "deflections": deflections,
                "tickets": len(tickets),
                "rate": round(deflections / (deflections + len(tickets)), 4)
                if deflections + len(tickets)
                else None,
            },
            "sla": {"tracked": tracked, "met": met, "rate": round(met / tracked, 4) if tracked else None},
            "backlog": backlog,
            "source": "tickets",
        }
    )


async def _backlog(db: Any, scope: dict[str, Any] | None) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    query: dict[str, Any] = {"status": {"$in": list(OPEN_STATUSES)}}
    if scope:
        query.update(scope)
    counts = dict.fromkeys((b for b, _ in BACKLOG_BUCKETS), 0)
    async for t in db.tickets.find(query, {"created_at": 1}).limit(MAX_TICKETS):
        age = (now - t["created_at"]).total_seconds() / 86400
        for bucket, limit in BACKLOG_BUCKETS:
            if limit is None or age < limit:
                counts[bucket] += 1
                break
    return [{"bucket": b, "count": c} for b, c in counts.items()]
