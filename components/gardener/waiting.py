"""Deadlines and adaptive polling for Gardener operations.

Why not a fixed 15 s ticker (the Terraform provider): a first create takes 10-15 minutes, and a
fixed ticker either wastes API calls early or reacts late at the end. Here the interval starts
short (a failed validation shows up in seconds) and backs off; once `last_operation.progress`
has moved, the end is predicted from the rate between the API's own `last_update_time` stamps
(`EtaEstimator`) and the polls close in on it: a fraction of the predicted time left (at most
`eta_cap`), then every `tail` seconds near or past it; far from 100 % a stall stretches the
prediction instead of polling a distant end every few seconds. Jitter keeps parallel runs out
of step. `bench/gardener_polling.py` measures it against the fixed 15 s ticker in the same run.

Why the `baseline`: right after a PATCH/PUT the API can still report the *previous*
`Succeeded/100` operation, so "Succeeded" alone can mean "nothing started yet" (the stale-
Succeeded race; the Terraform provider's update and delete waits fall for it). A wait only
accepts an outcome that is provably ours: an operation different from the one seen before the
request, or one that was seen running after it. If nothing new appears within a grace period
the change needed no reconcile.

Time scaling: every duration is multiplied by `CLEURA_POLL_SCALE` (default 1), so tests and
the benchmark run a 12-minute create in a fraction of a second without changing the logic.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

ACTIVE_STATES = ("Pending", "Processing")
FAILED_STATES = ("Failed", "Error", "Aborted")
DEFAULT_GRACE_SECONDS = 90.0  # how long an edit may take to show a new operation
IMMINENT_PROGRESS = 10  # percent left below which the end may come at any poll

Report = Callable[[str], None]
Now = Callable[[], float]
Sleep = Callable[[float], None]


def time_scale(env: Mapping[str, str] | None = None) -> float:
    """`CLEURA_POLL_SCALE` as a positive float (1.0 when unset or invalid)."""
    raw = (os.environ if env is None else env).get("CLEURA_POLL_SCALE", "")
    try:
        value = float(raw)
    except ValueError:
        return 1.0
    return value if value > 0 else 1.0


@dataclass(frozen=True)
class PollPolicy:
    """Polling intervals in (unscaled) seconds."""

    initial: float = 5.0
    factor: float = 1.5
    cap: float = 30.0
    floor: float = 2.0
    jitter: float = 0.2
    eta_fraction: float = 0.6  # tuned with bench/gardener_polling.py
    eta_cap: float = 240.0  # longest sleep while the progress rate predicts a distant end
    tail: float = 4.0  # poll interval once the predicted end is near or past (p95 detection)
    scale: float = 1.0

    def interval(self, attempt: int, eta: float | None, rng: random.Random,
                 retry_after: float | None = None) -> float:
        """Scaled seconds until the next poll, jittered.

        Without a prediction: backoff from `initial` to `cap` (a failed validation shows up in
        seconds). With one (`eta`, unscaled seconds left): sleep a fraction of it, at most
        `eta_cap`, so the polls close in on the predicted end geometrically, then every `tail`
        seconds once it is near or past.
        """
        if eta is None:
            base = min(self.cap, self.initial * self.factor ** attempt)
            jitter = self.jitter
        else:
            base = min(self.eta_cap, max(self.tail, eta * self.eta_fraction))
            jitter = self.jitter / 2 if base <= self.tail else self.jitter
        base = max(self.floor, base) * rng.uniform(1 - jitter, 1 + jitter)
        if retry_after is not None:
            base = max(base, retry_after)
        return base * self.scale


@dataclass
class Deadline:
    """A wall-clock budget (scaled seconds) measured with the injected clock."""

    seconds: float
    now: Now
    started: float = -1.0

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.now()

    def elapsed(self) -> float:
        return self.now() - self.started

    def remaining(self) -> float:
        return self.seconds - self.elapsed()

    def expired(self) -> bool:
        return self.remaining() <= 0


class WaitTimeoutError(Exception):
    """The deadline passed before the operation finished."""


class OperationFailedError(Exception):
    """Gardener reported Failed / Error / Aborted for our operation."""


@dataclass(frozen=True)
class OpMarker:
    """Identity of a `last_operation` as far as the API lets us tell operations apart."""

    type: str | None
    state: str | None
    progress: int | None
    last_update_time: str | None

    @staticmethod
    def of(shoot: Mapping[str, Any] | None) -> OpMarker | None:
        op = shoot.get("last_operation") if isinstance(shoot, Mapping) else None
        if not isinstance(op, Mapping):
            return None
        progress = op.get("progress")
        return OpMarker(op.get("type"), op.get("state"),
                        int(progress) if isinstance(progress, int | float) else None, op.get("last_update_time"))

    def same_operation(self, other: OpMarker | None) -> bool:
        return other is not None and (self.type, self.last_update_time) == (other.type, other.last_update_time)


Verdict = Literal["waiting", "active", "done", "failed", "stale"]


def ready_verdict(shoot: Mapping[str, Any], baseline: OpMarker | None, seen_active: bool) -> Verdict:
    """Classify one observation of a shoot we are waiting on (pure, see module docstring)."""
    marker = OpMarker.of(shoot)
    if marker is None:
        return "waiting"  # right after create the API may not report an operation yet
    fresh = baseline is None or seen_active or not marker.same_operation(baseline)
    if marker.state in ACTIVE_STATES or (marker.state == "Succeeded" and (marker.progress or 0) < 100):
        return "active" if fresh or marker.state in ACTIVE_STATES else "stale"
    if marker.state == "Succeeded":
        return "done" if fresh else "stale"
    if marker.state in FAILED_STATES:
        return "failed" if fresh else "stale"
    return "waiting"


def describe_operation(shoot: Mapping[str, Any] | None) -> str:
    op = shoot.get("last_operation") if isinstance(shoot, Mapping) else None
    if not isinstance(op, Mapping):
        return "no operation reported yet"
    desc = str(op.get("description") or "").strip()
    text = f"{op.get('type')} {op.get('state')} {op.get('progress', 0)}%"
    return f"{text} ({desc})" if desc else text


def failure_message(shoot: Mapping[str, Any]) -> str:
    op = shoot.get("last_operation") or {}
    status = shoot.get("status") if isinstance(shoot.get("status"), Mapping) else {}
    errors = [str(e.get("description")) for e in (status or {}).get("last_errors") or []
              if isinstance(e, Mapping) and e.get("description")]
    text = f"{op.get('type')} {op.get('state')}: {op.get('description') or 'no description'}"
    return text + (f"; last errors: {'; '.join(errors)}" if errors else "")


@dataclass(frozen=True)
class Observation:
    """One poll: the shoot (None = 404) and the server's Retry-After hint (unscaled seconds).

    `unavailable` says the poll learned nothing (the API stayed down through the client's own
    retries); the wait then keeps polling until its deadline instead of failing a long operation
    on a short outage (reference 4 #14, 6.4).
    """

    shoot: dict[str, Any] | None
    retry_after: float | None = None
    unavailable: str | None = None


def api_time(text: object) -> float | None:
    """`last_operation.last_update_time` as POSIX seconds (None when absent or unparseable)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


class EtaEstimator:
    """Predicts the seconds left from how fast `progress` moved.

    With `last_update_time` (the API's timestamp of each progress change) the rate comes from
    the milestones themselves, not from when we happened to see them: rate = progress gained /
    API time between the first and the latest milestone. The API clock is mapped onto ours by
    the smallest observed `now - last_update_time` (clock skew plus the least detection delay),
    and scaled by `scale` like every other duration. Without timestamps: progress since
    `start` over our own clock.
    """

    def __init__(self, scale: float = 1.0) -> None:
        self.origin: tuple[float, int] | None = None
        self.scale = scale
        self.points: list[tuple[float, int]] = []
        self.offset: float | None = None

    def start(self, t: float, progress: int = 0) -> None:
        self.origin = (t, progress)

    def update(self, t: float, progress: int | None, updated: float | None = None) -> float | None:
        if progress is None:
            return None
        if updated is not None:
            eta = self._from_timestamps(t, progress, updated * self.scale)
            if eta is not None:
                return eta
        if self.origin is None:
            self.origin = (t, progress)
            return None
        t0, p0 = self.origin
        if progress <= p0 or t <= t0:
            return None
        rate = (progress - p0) / (t - t0)
        return max(0.0, (100 - progress) / rate)

    def _from_timestamps(self, t: float, progress: int, updated: float) -> float | None:
        self.offset = t - updated if self.offset is None else min(self.offset, t - updated)
        if not self.points or (progress > self.points[-1][1] and updated > self.points[-1][0]):
            self.points.append((updated, progress))
        (u0, p0), (u1, p1) = self.points[0], self.points[-1]
        if p1 > p0 and u1 > u0:
            rate = (p1 - p0) / (u1 - u0)
        elif self.origin is not None and p1 > self.origin[1] and u1 + self.offset > self.origin[0]:
            rate = (p1 - self.origin[1]) / (u1 + self.offset - self.origin[0])
        else:
            return None
        end = u1 + (100 - p1) / rate + self.offset
        if end > t:
            return end - t
        # Past the predicted end with no new milestone: the rate was optimistic. Close to 100 %
        # the end may come any moment (poll at the tail interval); further away it cannot come
        # before more progress, so assume progress could tick right now and let the time since
        # the last milestone slow the rate down, instead of polling a distant end every few seconds.
        if 100 - p1 <= IMMINENT_PROGRESS or t - self.offset <= u0:
            return 0.0
        return (100 - p1) / ((p1 - p0) / (t - self.offset - u0))


@dataclass
class Waiter:
    """Polls with `fetch` until done; every dependency is injected (clock, sleep, randomness)."""

    fetch: Callable[[], Observation]
    what: str
    policy: PollPolicy
    deadline: Deadline
    now: Now
    sleep: Sleep
    report: Report
    rng: random.Random
    grace: float = DEFAULT_GRACE_SECONDS

    def _pause(self, attempt: int, eta: float | None, obs: Observation, last: Mapping[str, Any] | None) -> None:
        interval = self.policy.interval(attempt, None if eta is None else eta / self.policy.scale, self.rng,
                                        obs.retry_after)
        if self.deadline.remaining() <= 0:
            raise WaitTimeoutError(f"timed out after {self._fmt(self.deadline.seconds)} waiting for {self.what} "
                              f"(last seen: {describe_operation(last)})")
        self.sleep(min(interval, max(self.deadline.remaining(), 0.0)))

    def _fmt(self, scaled: float) -> str:
        seconds = scaled / self.policy.scale
        return f"{seconds / 60:.0f}m" if seconds >= 120 else f"{seconds:.0f}s"

    def _unavailable(self, obs: Observation) -> None:
        self.report(f"{self.what}: API unavailable ({obs.unavailable}); still waiting, "
                    f"{self._fmt(self.deadline.elapsed())} elapsed")

    def _progress(self, shoot: Mapping[str, Any] | None, attempt: int, last_line: list[str]) -> None:
        line = describe_operation(shoot)
        if line != last_line[0]:
            last_line[0] = line
            self.report(f"{self.what}: {line}, {self._fmt(self.deadline.elapsed())} elapsed")

    def until_ready(self, baseline: OpMarker | None, request_started: float | None = None,
                    allow_missing: float = 0.0) -> dict[str, Any]:
        """Wait for *our* operation to reach Succeeded/100; raise on Failed/Error/Aborted or timeout."""
        seen_active, attempt, eta = False, 0, None
        estimator = EtaEstimator(self.policy.scale)
        if request_started is not None:
            estimator.start(request_started, 0)
        last_line = [""]
        started = self.now() if request_started is None else request_started
        last: dict[str, Any] | None = None
        while True:
            obs = self.fetch()
            shoot = obs.shoot
            if obs.unavailable is not None:
                self._unavailable(obs)
            elif shoot is None:
                if self.now() - started > allow_missing * self.policy.scale:
                    raise OperationFailedError(f"{self.what}: the shoot disappeared (404) while waiting; "
                                          "was it deleted out of band?")
            else:
                last = shoot
                verdict = ready_verdict(shoot, baseline, seen_active)
                self._progress(shoot, attempt, last_line)
                if verdict == "done":
                    return shoot
                if verdict == "failed":
                    raise OperationFailedError(f"{self.what}: {failure_message(shoot)}")
                if verdict == "active":
                    seen_active = True
                    marker = OpMarker.of(shoot)
                    eta = estimator.update(self.now(), marker.progress if marker else None,
                                           api_time(marker.last_update_time) if marker else None)
                if verdict == "stale" and self.now() - started >= self.grace * self.policy.scale:
                    marker = OpMarker.of(shoot)
                    if marker and marker.state in FAILED_STATES:
                        raise OperationFailedError(f"{self.what}: no new operation started and the last one "
                                              f"failed: {failure_message(shoot)}")
                    self.report(f"{self.what}: no new operation within {self._fmt(self.grace * self.policy.scale)};"
                                " the change needed no reconcile")
                    return shoot
            self._pause(attempt, eta, obs, last)
            attempt += 1

    def until_idle(self) -> dict[str, Any] | None:
        """Wait until no operation is Pending/Processing (used before retrying after a 409)."""
        attempt, last_line = 0, [""]
        while True:
            obs = self.fetch()
            if obs.unavailable is not None:
                self._unavailable(obs)
                self._pause(attempt, None, obs, None)
                attempt += 1
                continue
            if obs.shoot is None:
                return None
            marker = OpMarker.of(obs.shoot)
            if marker is None or marker.state not in ACTIVE_STATES:
                return obs.shoot
            self._progress(obs.shoot, attempt, last_line)
            self._pause(attempt, None, obs, obs.shoot)
            attempt += 1

    def until_gone(self, baseline: OpMarker | None = None, request_started: float | None = None) -> None:
        """Wait for 404. Never accepts `Succeeded`: a stale Reconcile/Succeeded is not a deletion.

        Nor a stale failure: after a DELETE that retries a failed deletion, GET can still report
        the *previous* Delete/Failed (`baseline`, seen before the request). Only a failure of a
        Delete that is provably ours fails the wait; a stale one does only after the grace period.
        """
        attempt, last_line = 0, [""]
        estimator = EtaEstimator(self.policy.scale)
        eta = None
        seen_active = False
        started = self.now() if request_started is None else request_started
        while True:
            obs = self.fetch()
            if obs.unavailable is not None:
                self._unavailable(obs)
                self._pause(attempt, eta, obs, None)
                attempt += 1
                continue
            if obs.shoot is None:
                self.report(f"{self.what}: gone after {self._fmt(self.deadline.elapsed())}")
                return
            marker = OpMarker.of(obs.shoot)
            if marker and marker.type == "Delete" and marker.state in FAILED_STATES:
                if seen_active or not marker.same_operation(baseline):
                    raise OperationFailedError(f"{self.what}: {failure_message(obs.shoot)}")
                if self.now() - started >= self.grace * self.policy.scale:
                    raise OperationFailedError(
                        f"{self.what}: no new delete operation started and the last one failed: "
                        f"{failure_message(obs.shoot)}; retry it in the Cleura console (or PATCH .../retry)")
            elif marker and marker.type == "Delete":
                seen_active = seen_active or marker.state in ACTIVE_STATES
                eta = estimator.update(self.now(), marker.progress, api_time(marker.last_update_time))
            self._progress(obs.shoot, attempt, last_line)
            self._pause(attempt, eta, obs, obs.shoot)
            attempt += 1
