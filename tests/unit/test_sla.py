from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ticket_core import sla
from ticket_core.sla import SlaPolicy

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
POLICY = SlaPolicy.from_doc(
    {
        "name": "standard",
        "targets": {"normal": {"first_response": 60, "resolution": 240}},
        "calendar": {
            "timezone": "UTC",
            "hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        },
        "warn_before_minutes": 15,
        "still_on_it_minutes": 120,
    }
)


def test_start_sets_due_and_warning_times_in_business_time() -> None:
    state = sla.start(POLICY, "normal", T0)
    fr, res = state["clocks"]["first_response"], state["clocks"]["resolution"]
    assert fr["due"] == T0 + timedelta(hours=1) and fr["warn_at"] == T0 + timedelta(minutes=45)
    assert res["due"] == T0 + timedelta(hours=4)
    assert state["next_check"] == T0 + timedelta(minutes=45)
    assert sla.pick_policy([POLICY], priority="urgent", category=None, tier=None) is None


def test_pending_pauses_and_open_resumes_with_the_time_left() -> None:
    state = sla.start(POLICY, "normal", T0)
    state = sla.on_first_response(state, T0 + timedelta(minutes=10))
    state = sla.on_status(state, "open", "pending", T0 + timedelta(hours=1))
    res = state["clocks"]["resolution"]
    assert res["due"] is None and res["remaining_seconds"] == 3 * 3600 and state["paused"]
    # Resumed the next morning: three business hours are left.
    resumed_at = T0 + timedelta(days=1)
    state = sla.on_status(state, "pending", "open", resumed_at)
    assert state["clocks"]["resolution"]["due"] == resumed_at + timedelta(hours=3)
    assert not state["clocks"]["first_response"]["breached"]


def test_actions_fire_when_due_and_a_late_answer_is_a_breach() -> None:
    state = sla.start(POLICY, "normal", T0)
    assert sla.due_actions(state, T0 + timedelta(minutes=50)) == [("first_response", "warning")]
    assert ("first_response", "breach") in sla.due_actions(state, T0 + timedelta(minutes=61))
    late = sla.on_first_response(state, T0 + timedelta(minutes=90))
    assert late["clocks"]["first_response"]["breached"] and sla.breached(late)
    assert ("still_on_it", "message") in sla.due_actions(state, T0 + timedelta(hours=2))


def test_solved_stops_and_reopen_resumes_resolution() -> None:
    state = sla.start(POLICY, "normal", T0)
    state = sla.on_status(state, "open", "solved", T0 + timedelta(hours=1))
    # Solved: resolution is met; an unanswered first response stops counting too (nothing to warn about).
    assert state["clocks"]["resolution"]["done_at"] is not None and state["next_check"] is None
    state = sla.on_status(state, "solved", "open", T0 + timedelta(hours=2))
    assert state["clocks"]["resolution"]["due"] == T0 + timedelta(hours=5)
