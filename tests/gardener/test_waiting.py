"""Waiting logic with a virtual clock: the stale-Succeeded race, failures, deadlines, backoff."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from components.gardener.waiting import (
    Deadline,
    EtaEstimator,
    Observation,
    OperationFailedError,
    OpMarker,
    PollPolicy,
    Waiter,
    WaitTimeoutError,
    ready_verdict,
    time_scale,
)


def op(type_: str, state: str, progress: int, t: str = "T1", desc: str = "") -> dict[str, Any]:
    return {"last_operation": {"type": type_, "state": state, "progress": progress, "description": desc,
                               "last_update_time": t}}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def scripted(clock: Clock, timeline: list[tuple[float, dict[str, Any] | None]]) -> Callable[[], Observation]:
    """fetch() returns the last timeline entry whose time has come."""
    calls = []

    def fetch() -> Observation:
        calls.append(clock.t)
        current = None
        for t, shoot in timeline:
            if clock.t >= t:
                current = shoot
        return Observation(current)

    fetch.calls = calls  # type: ignore[attr-defined]
    return fetch


def waiter(clock: Clock, fetch: Callable[[], Observation], timeout: float = 3600, grace: float = 90) -> Waiter:
    return Waiter(fetch=fetch, what="shoot demo: test", policy=PollPolicy(jitter=0.0), deadline=Deadline(timeout,
                  clock.now), now=clock.now, sleep=clock.sleep, report=lambda m: None, rng=random.Random(1),
                  grace=grace)


BEFORE = op("Reconcile", "Succeeded", 100, "T0")
BASE = OpMarker.of(BEFORE)


@pytest.mark.parametrize(("shoot", "seen", "verdict"), [
    ({}, False, "waiting"),
    (BEFORE, False, "stale"),  # the previous operation, still reported after our PATCH
    (op("Reconcile", "Processing", 40, "T1"), False, "active"),
    (op("Reconcile", "Succeeded", 100, "T1"), False, "done"),
    (BEFORE, True, "done"),  # saw ours running; Succeeded now is ours even if timestamps collide
    (op("Reconcile", "Failed", 30, "T1"), False, "failed"),
    (op("Reconcile", "Failed", 30, "T0"), False, "stale"),
])
def test_ready_verdict(shoot: dict[str, Any], seen: bool, verdict: str) -> None:
    assert ready_verdict(shoot, BASE, seen) == verdict


def test_update_wait_ignores_the_stale_succeeded_of_the_previous_operation() -> None:
    clock = Clock()
    fetch = scripted(clock, [(0, BEFORE), (20, op("Reconcile", "Processing", 15, "T1")),
                             (200, op("Reconcile", "Succeeded", 100, "T2"))])
    shoot = waiter(clock, fetch).until_ready(OpMarker.of(BEFORE), request_started=0)
    assert shoot["last_operation"]["last_update_time"] == "T2"
    assert clock.t >= 200


def test_an_edit_that_starts_no_operation_finishes_after_the_grace_period() -> None:
    clock = Clock()
    shoot = waiter(clock, scripted(clock, [(0, BEFORE)]), grace=90).until_ready(BASE, request_started=0)
    assert shoot is BEFORE and 90 <= clock.t < 130


def test_failure_carries_the_apis_description_and_last_errors() -> None:
    clock = Clock()
    failed = op("Create", "Failed", 50, "T1", "quota exceeded for instances")
    failed["status"] = {"last_errors": [{"description": "Quota exceeded: cores"}]}
    with pytest.raises(OperationFailedError, match=r"quota exceeded for instances.*Quota exceeded: cores"):
        waiter(clock, scripted(clock, [(0, op("Create", "Processing", 10)), (60, failed)])).until_ready(None)


def test_timeout_names_what_it_waited_for_and_how_far_it_got() -> None:
    clock = Clock()
    with pytest.raises(WaitTimeoutError, match=r"timed out after 5m waiting for shoot demo: test.*Processing 32%"):
        waiter(clock, scripted(clock, [(0, op("Create", "Processing", 32))]), timeout=300).until_ready(None)
    assert clock.t <= 300 + 1e-6


def test_delete_waits_for_404_never_for_succeeded() -> None:
    clock = Clock()
    fetch = scripted(clock, [(0, op("Create", "Succeeded", 100, "T0")), (30, op("Delete", "Processing", 50)),
                             (120, None)])
    waiter(clock, fetch).until_gone()
    assert clock.t >= 120


def test_delete_failure_is_reported() -> None:
    clock = Clock()
    with pytest.raises(OperationFailedError, match=r"Delete Failed"):
        waiter(clock, scripted(clock, [(0, op("Delete", "Failed", 20, "T1", "cleanup failed"))])).until_gone()


def test_polling_backs_off_to_a_cap_then_speeds_up_near_the_predicted_end() -> None:
    policy = PollPolicy(jitter=0.0)
    rng = random.Random(0)
    intervals = [policy.interval(n, None, rng) for n in range(10)]
    assert intervals[0] == 5.0 and intervals == sorted(intervals) and max(intervals) == 30.0
    assert policy.interval(9, eta=20.0, rng=rng) == 12.0  # 60 % of the predicted time left
    assert policy.interval(9, eta=1.0, rng=rng) == 4.0  # the tail interval near the predicted end
    assert policy.interval(0, eta=3600.0, rng=rng) == 240.0  # a distant end: long sleeps, capped
    assert policy.interval(0, None, rng, retry_after=45) == 45  # the server asked for longer
    assert PollPolicy(jitter=0.0, scale=0.01).interval(0, None, rng) == pytest.approx(0.05)


def test_jitter_spreads_intervals() -> None:
    policy = PollPolicy()
    rng = random.Random(42)
    values = {round(policy.interval(10, None, rng), 3) for _ in range(20)}
    assert len(values) > 10 and all(24 <= v <= 36 for v in values)


def test_eta_from_progress_rate() -> None:
    est = EtaEstimator()
    est.start(0.0, 0)
    assert est.update(100.0, 50) == pytest.approx(100.0)
    assert est.update(150.0, 50) == pytest.approx(150.0)  # progress stalled: estimate grows
    assert est.update(180.0, None) is None


def test_eta_from_the_apis_milestone_timestamps() -> None:
    est = EtaEstimator()
    est.start(0.0, 0)
    # API clock runs 990 s ahead of ours; milestones at API 1000 (0 %) and 1050 (50 %): 1 %/s.
    assert est.update(10.0, 0, updated=1000.0) is None
    assert est.update(70.0, 50, updated=1050.0) == pytest.approx(40.0)  # end at API 1100 = our 110
    # Seen late, the same milestone predicts the same end (its timestamp, not our poll, counts).
    assert est.update(90.0, 50, updated=1050.0) == pytest.approx(20.0)
    # Past the predicted end, far from 100 %: the stall slows the rate (no polling every few s).
    assert est.update(200.0, 50, updated=1050.0) == pytest.approx(190.0)
    # Close to 100 % the end may come at any poll.
    assert est.update(300.0, 95, updated=1250.0) == pytest.approx(0.0, abs=20.0)
    assert est.update(400.0, 95, updated=1250.0) == 0.0
    scaled = EtaEstimator(scale=0.001)  # tests run the API 1000x faster: API seconds are scaled too
    scaled.update(0.0, 0, updated=0.0)
    assert scaled.update(0.05, 50, updated=50.0) == pytest.approx(0.05)


def test_time_scale_from_environment() -> None:
    assert time_scale({}) == 1.0
    assert time_scale({"CLEURA_POLL_SCALE": "0.001"}) == 0.001
    assert time_scale({"CLEURA_POLL_SCALE": "-1"}) == 1.0
    assert time_scale({"CLEURA_POLL_SCALE": "fast"}) == 1.0


def test_delete_wait_ignores_the_stale_failure_of_an_earlier_delete() -> None:
    clock = Clock()
    old = op("Delete", "Failed", 20, "T0", "cleanup failed")
    fetch = scripted(clock, [(0, old), (20, op("Delete", "Processing", 40, "T1")), (120, None)])
    waiter(clock, fetch).until_gone(OpMarker.of(old), request_started=0)
    assert clock.t >= 120


def test_delete_wait_fails_after_grace_when_no_new_delete_starts() -> None:
    clock = Clock()
    old = op("Delete", "Failed", 20, "T0", "cleanup failed")
    with pytest.raises(OperationFailedError, match=r"no new delete operation.*cleanup failed"):
        waiter(clock, scripted(clock, [(0, old)]), grace=90).until_gone(OpMarker.of(old), request_started=0)
    assert 90 <= clock.t < 130


def test_polls_that_learn_nothing_do_not_end_the_wait() -> None:
    clock = Clock()
    done = op("Create", "Succeeded", 100, "T1")

    def fetch() -> Observation:
        return Observation(None, unavailable="HTTP 503") if clock.t < 300 else Observation(done)

    assert waiter(clock, fetch).until_ready(None) is done
    clock.t = 0.0
    assert waiter(clock, fetch).until_idle() is done
