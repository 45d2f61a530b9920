"""Benchmark: how many API calls, and how late, to notice that a 12-minute shoot create finished.

Compares, in one run and against the same fake API over real HTTP on 127.0.0.1:

* fixed 15 s polling (what the official Terraform provider does), and
* this project's adaptive waiter (`components.gardener.waiting.Waiter`, default `PollPolicy`),
  which predicts the end from the rate of `last_operation.progress` between its timestamps
  (`last_update_time`) and closes in on it (a fraction of the time left, then every few seconds),

for two progress profiles (see `PROFILES`).

Time is virtual: the fake API and both pollers share a manual clock that only moves when a
poller sleeps, so results are exact and the run takes a few seconds. Each trial uses a create
of 12 minutes plus a random 0-15 s (so the fixed ticker is not phase-locked to the end) and
the fake's Gardener-like stepped progress. Run: `python bench/gardener_polling.py [trials]`.
"""

from __future__ import annotations

import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.gardener.client import CleuraClient, Credentials
from components.gardener.spec import create_body, shoot_path
from components.gardener.waiting import Deadline, Observation, PollPolicy, Waiter
from tests.gardener import fake_cleura
from tests.gardener.conftest import PASSWORD, PROJECT, REGION, USER, spec
from tests.gardener.fake_cleura import FakeCleura, FakeClock

CREATE_SECONDS = 12 * 60
FIXED_INTERVAL = 15.0


@dataclass
class Result:
    calls: int
    latency: float


def create(fake: FakeCleura, client: CleuraClient, name: str, duration: float) -> float:
    fake.create_duration = duration
    client.request("POST", shoot_path("public", REGION, PROJECT), create_body(spec(name=name)), idempotent=False)
    return fake.clock.now()


def done(shoot: dict | None) -> bool:  # type: ignore[type-arg]
    op = (shoot or {}).get("last_operation") or {}
    return op.get("state") == "Succeeded" and op.get("progress") == 100


def fixed(fake: FakeCleura, client: CleuraClient, name: str, duration: float) -> Result:
    """The Terraform provider's loop: a 15 s ticker, GET, stop at Succeeded/100."""
    started = create(fake, client, name, duration)
    path = shoot_path("public", REGION, PROJECT, name)
    calls = 0
    while True:
        fake.clock.advance(FIXED_INTERVAL)
        calls += 1
        if done(client.get_json(path)[0]):
            return Result(calls, fake.clock.now() - (started + duration))


def adaptive(fake: FakeCleura, client: CleuraClient, name: str, duration: float, seed: int) -> Result:
    started = create(fake, client, name, duration)
    path = shoot_path("public", REGION, PROJECT, name)
    calls = 0

    def fetch() -> Observation:
        nonlocal calls
        calls += 1
        data, retry_after = client.get_json(path)
        return Observation(data, retry_after)

    clock = fake.clock
    waiter = Waiter(fetch=fetch, what=name, policy=PollPolicy(), deadline=Deadline(3600, clock.now), now=clock.now,
                    sleep=clock.advance, report=lambda m: None, rng=random.Random(seed))
    waiter.until_ready(None, request_started=started)
    return Result(calls, clock.now() - (started + duration))


def summary(results: list[Result]) -> Summary:
    lat = sorted(r.latency for r in results)
    p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
    return statistics.mean(r.calls for r in results), statistics.mean(lat), p95, lat[-1]


# Progress profiles: (fraction of the duration, progress %). "linear-ish" is the fake's default
# (Gardener-like steps); "front-loaded" races to 60% in the first 30% of the time and then
# crawls, so a rate-based prediction is early and has to correct itself.
PROFILES: dict[str, tuple[tuple[float, int], ...]] = {
    "linear-ish": fake_cleura.MILESTONES,
    "front-loaded": ((0.0, 0), (0.04, 10), (0.12, 35), (0.3, 60), (0.5, 75), (0.7, 85), (0.88, 92), (0.96, 97)),
}


Summary = tuple[float, float, float, float]  # mean calls, mean latency, p95 latency, max latency


def main(trials: int = 40) -> None:
    for profile in PROFILES:
        run(trials, profile)


def run(trials: int, profile: str) -> tuple[Summary, Summary]:
    """(fixed, adaptive) summaries for one progress profile, printed as a table."""
    default = fake_cleura.MILESTONES
    fake_cleura.MILESTONES = PROFILES[profile]
    try:
        return _run(trials, profile)
    finally:
        fake_cleura.MILESTONES = default


def _run(trials: int, profile: str) -> tuple[Summary, Summary]:
    fake = FakeCleura(clock=FakeClock(manual=True)).start()
    try:
        fake.create_hidden = 3.0
        client = CleuraClient(fake.url, Credentials(USER, None, PASSWORD), report=lambda m: None)
        rng = random.Random(2026)
        tf: list[Result] = []
        ours: list[Result] = []
        for i in range(trials):
            duration = CREATE_SECONDS + rng.uniform(0, FIXED_INTERVAL)
            tf.append(fixed(fake, client, f"f{i}", duration))
            ours.append(adaptive(fake, client, f"a{i}", duration, seed=i))
    finally:
        fake.stop()
    rows = [("fixed 15 s (Terraform)", summary(tf)), ("adaptive (this provider)", summary(ours))]
    print(f"Simulated {CREATE_SECONDS // 60}-minute shoot create, {profile} progress, {trials} trials, "
          "virtual time, real HTTP")
    print(f"{'strategy':<26} {'GET calls':>10} {'latency mean':>13} {'p95':>7} {'max':>7}")
    for label, (calls, mean, p95, worst) in rows:
        print(f"{label:<26} {calls:>10.1f} {mean:>12.1f}s {p95:>6.1f}s {worst:>6.1f}s")
    (c0, m0, p0, w0), (c1, m1, p1, w1) = rows[0][1], rows[1][1]
    print(f"{'ratio adaptive / fixed':<26} {c1 / c0:>10.2f} {m1 / m0:>13.2f} {p1 / p0:>7.2f} {w1 / w0:>7.2f}")
    print()
    return rows[0][1], rows[1][1]


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
