"""A synthetic ticket history with known timings, stored as the code stores it (tickets,
`ticket_events`, deflections), plus the truth per ticket so a test can compute the expected KPIs
on its own. Used by bench/reports.py (100,000 tickets) and tests/integration/test_reports.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from ticket_core.model import Ticket

CHANNELS = ("webform", "email", "wechat", "telegram")
CATEGORIES = ("billing", "hardware", "account", "shipping")
TEAMS = ("support", "vip")
AGENTS = ("ann", "bea", "cid", "dan", "eve")


@dataclass(frozen=True)
class Truth:
    created: datetime
    channel: str
    category: str
    team: str
    agent: str
    status: str
    first_reply: datetime | None
    replies: int
    solved: datetime | None  # the final solve of a resolved ticket
    reopened: bool
    csat: int | None
    with_sla: bool
    breached: bool


def _event(
    ticket: Ticket, kind: str, at: datetime, data: dict[str, Any], actor: str = "agent"
) -> dict[str, Any]:
    who = {"kind": actor, "id": ticket.assignee or "", "name": ticket.assignee or ""}
    if actor == "system":
        who = {"kind": "system", "id": "routing", "name": "routing"}
    return {
        "_id": ObjectId(),
        "event_id": str(ObjectId()),
        "ticket_id": ticket.id,
        "number": ticket.number,
        "type": kind,
        "actor": who,
        "at": at,
        "data": data,
    }


def generate(
    n: int, start: datetime, *, spacing_minutes: float, seed: int = 7, prefix: str = "T-"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Truth]]:
    rng = random.Random(seed)
    tickets: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    truths: list[Truth] = []
    m = timedelta(minutes=1)
    for i in range(n):
        created = start + timedelta(minutes=round(i * spacing_minutes))
        channel, category = CHANNELS[i % 4], CATEGORIES[rng.randrange(4)]
        team, agent = TEAMS[i % 2], AGENTS[rng.randrange(5)]
        frt = rng.randint(1, 600) if rng.random() < 0.95 else None
        resolved = frt is not None and rng.random() < 0.85
        rt = frt + rng.randint(6, 3000) if resolved and frt is not None else None
        reopened = resolved and rng.random() < 0.1
        replies = 0 if frt is None else 1 + (rng.random() < 0.3)
        closed = resolved and rng.random() < 0.3
        status = (
            "closed"
            if closed
            else "solved"
            if resolved
            else "new"
            if frt is None
            else rng.choice(("open", "pending"))
        )
        csat = rng.randint(1, 5) if resolved and rng.random() < 0.6 else None
        with_sla = rng.random() < 0.7
        breached = with_sla and (frt is None or frt > 240 or (rt is not None and rt > 2400))
        first = created + frt * m if frt is not None else None
        solved = created + rt * m if rt is not None else None
        oid = ObjectId()
        sla: dict[str, Any] = {}
        if with_sla:
            sla = {
                "policy_id": "standard",
                "policy": "standard",
                "clocks": {
                    "first_response": {"breached": frt is None or frt > 240},
                    "resolution": {"breached": rt is not None and rt > 2400},
                },
            }
        ticket = Ticket(
            id=str(oid),
            number=f"{prefix}{i + 1:07d}",
            subject=f"problem {i}",
            status=status,
            priority="normal",
            channel=channel,
            account="main",
            requester=str(ObjectId()),
            created_at=created,
            updated_at=solved or first or created,
            category=category,
            assignee=agent,
            team=team,
            conversation_key=f"{channel}:main:c{i}",
            reply_to=f"c{i}",
            sla=sla,
            solved_at=solved,
            closed_at=solved + 60 * m if closed and solved else None,
            csat={"score": csat, "comment": None, "at": (solved or created) + 10 * m} if csat else None,
        )
        doc = ticket.to_doc()
        doc["_id"] = oid
        if ticket.csat is None:
            doc.pop("csat")  # stored only once rated, like the rating paths do
        tickets.append(doc)
        events.append(
            _event(ticket, "created", created, {"subject": ticket.subject, "channel": channel}, "customer")
        )
        events.append(_event(ticket, "assigned", created, {"team": team, "assignee": agent}, "system"))
        if first is not None:
            events.append(
                _event(ticket, "status_changed", first, {"old": "new", "new": "open", "silent": True})
            )
            events.append(_event(ticket, "public_reply", first, {"text": "on it", "attachments": []}))
            if replies == 2:
                events.append(_event(ticket, "public_reply", first + m, {"text": "more", "attachments": []}))
        if solved is not None and first is not None:
            if reopened:
                events.append(
                    _event(ticket, "status_changed", first + 2 * m, {"old": "open", "new": "solved"})
                )
                events.append(
                    _event(
                        ticket,
                        "status_changed",
                        first + 3 * m,
                        {"old": "solved", "new": "open", "reopened": True},
                        "customer",
                    )
                )
            events.append(
                _event(ticket, "status_changed", solved, {"old": "open", "new": "solved", "reopened": False})
            )
            if closed:
                events.append(
                    _event(ticket, "status_changed", solved + 60 * m, {"old": "solved", "new": "closed"})
                )
            if csat:
                events.append(_event(ticket, "csat", solved + 10 * m, {"score": csat}, "customer"))
        elif status == "pending" and first is not None:
            events.append(_event(ticket, "status_changed", first + m, {"old": "open", "new": "pending"}))
        truths.append(
            Truth(
                created,
                channel,
                category,
                team,
                agent,
                status,
                first,
                replies,
                solved,
                reopened,
                csat,
                with_sla,
                breached,
            )
        )
    return tickets, events, truths


def deflections(n: int, start: datetime, *, spacing_minutes: float, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "_id": ObjectId(),
            "article_id": f"a{rng.randrange(50)}",
            "channel": CHANNELS[rng.randrange(4)],
            "conversation_key": f"d{i}",
            "query": "",
            "at": start + timedelta(minutes=round(i * spacing_minutes)),
        }
        for i in range(n)
    ]
