"""The ticket-operations object graph of one process (assignment, SLA, CSAT, notices, reports)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.database import Db
from gateway.facts_refresher import FactsRefresher
from gateway.notification_policy import NotificationPolicy
from gateway.ops_scheduler import OperationsScheduler
from gateway.staff_notices import StaffNotices
from ticket_core.assignment import AssignmentService, MongoRoutingStore
from ticket_core.csat import CsatService, CsatTokens
from ticket_core.rollups import Rollups
from ticket_core.sla_tracker import SlaTracker


@dataclass
class Operations:
    db: Db
    routing: MongoRoutingStore
    assignment: AssignmentService
    sla: SlaTracker
    rollups: Rollups
    refresher: FactsRefresher
    csat: CsatService
    policy: NotificationPolicy
    staff: StaffNotices
    scheduler: OperationsScheduler
    clock: Callable[[], datetime]
    public_url: str
    tokens: CsatTokens | None = None  # loaded from MongoDB once the database is up
