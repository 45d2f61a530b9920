"""Shoot lifecycle against the Cleura API: create/adopt, update, delete, kubeconfig, bootstrap.

This is where the reference's hard parts live, kept out of the provider class so they can be
driven directly in tests:

* create never orphans or duplicates: an ambiguous POST (connection lost, 502/504) is resolved
  by looking for the shoot before trying again;
* a name that already exists is an error unless `adopt` (or it carries this stack's marker:
  an interrupted create is resumed), which waits for the running operation and records the
  shoot as it is; the next preview shows the differences (also how an existing shoot is
  imported, since `pulumi import` cannot work for dynamic providers);
* every mutation remembers the operation seen before it and waits for a *new* outcome;
* 409 "operation in progress" waits for the shoot to be idle and retries (bounded);
* delete waits for 404 only.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from components.gardener.client import (
    AmbiguousWriteError,
    ApiError,
    CleuraClient,
    ConflictError,
    NotFoundError,
    TransientError,
)
from components.gardener.diffing import UpdatePlan, immutable_conflicts, plan_update
from components.gardener.marker import MARKER_KEY, owners_of, stamp_create_body, stamp_worker
from components.gardener.spec import create_body, shoot_path, shoot_spec_from_inputs
from components.gardener.state import reported_inputs
from components.gardener.waiting import (
    ACTIVE_STATES,
    DEFAULT_GRACE_SECONDS,
    Deadline,
    Observation,
    OperationFailedError,
    OpMarker,
    PollPolicy,
    Waiter,
    WaitTimeoutError,
)

OWNER_KEY = "owner"  # the Shoot input carrying the stack's marker value
MAX_CONFLICT_RETRIES = 5
MAX_AMBIGUOUS_RETRIES = 3
CREATE_404_TOLERANCE = 60.0  # seconds a just-created shoot may still 404 (eventual consistency)


class ProviderError(Exception):
    """A user-facing failure; the message says what happened and what to do."""


@dataclass(frozen=True)
class Location:
    """Where a shoot lives; taken from each resource's own inputs, never from provider config."""

    cloud: str
    region: str
    project_id: str

    def shoots(self, name: str | None = None) -> str:
        return shoot_path(self.cloud, self.region, self.project_id, name)

    def kubeconfig_v3(self, name: str) -> str:
        return f"/gardener/v3/{self.cloud}/shoots/{self.region}/{self.project_id}/{name}/admin-kubeconfig"

    def bootstrap(self) -> str:
        return f"/gardener/v2/{self.cloud}/{self.region}/{self.project_id}/bootstrap"

    def name_taken(self, name: str) -> str:
        return f"/gardener/v2/{self.cloud}/shoots/{name}/is-name-taken"


class ShootOps:
    """Lifecycle calls for shoots in one location, with injectable time for tests and benches."""

    def __init__(self, client: CleuraClient, loc: Location, *, policy: PollPolicy | None = None,
                 now: Callable[[], float] = time.time, sleep: Callable[[float], None] | None = None,
                 rng: random.Random | None = None, grace: float = DEFAULT_GRACE_SECONDS) -> None:
        self.client, self.loc = client, loc
        self.policy = policy or PollPolicy(scale=client.scale)
        # Wall clock, not time.monotonic: monotonic stops while a laptop is suspended, so a
        # 60-minute deadline would not count the suspended hours.
        self.now, self.sleep = now, sleep or client.sleep
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self.grace = grace
        self.report = client.report

    # -- reads ---------------------------------------------------------------------------------
    def observe(self, name: str) -> Observation:
        try:
            data, retry_after = self.client.get_json(self.loc.shoots(name))
        except NotFoundError:
            return Observation(None)
        if not isinstance(data, dict) or not data.get("name"):
            # A 200 without a shoot proves nothing (a proxy, a truncated answer): never "gone".
            return Observation(None, retry_after, unavailable="the API answered 200 without a shoot")
        return Observation(data, retry_after)

    def get(self, name: str) -> dict[str, Any] | None:
        obs = self.observe(name)
        if obs.unavailable is not None:
            raise ProviderError(f"shoot {name}: GET {self.loc.shoots(name)}: {obs.unavailable}")
        return obs.shoot

    def read_existing(self, name: str) -> dict[str, Any] | None:
        """The live shoot for refresh; None *only* when the shoot itself is provably gone.

        A 404 can also mean "no such region/project/route" (a typo, a stale CLEURA_API_URL, the
        wrong cloud's endpoint): then refresh must fail and keep the state, not drop a running
        cluster from it. So a 404 is confirmed by listing the project's shoots, which must succeed
        (the location is right) and not contain the name.
        """
        shoot = self.get(name)
        if shoot is not None:
            return shoot
        try:
            listing, _ = self.client.get_json(self.loc.shoots())
        except NotFoundError as exc:
            raise ProviderError(
                f"shoot {name}: GET answered 404, but so does the project's shoot list ({exc.message}), so "
                f"the location is wrong, not the shoot gone: check cloud {self.loc.cloud!r}, region "
                f"{self.loc.region!r}, project_id {self.loc.project_id!r} and CLEURA_API_URL "
                f"({self.client.base}); state is kept") from None
        if not isinstance(listing, list):
            raise ProviderError(f"shoot {name}: GET answered 404 and the shoot list is not a list; state is kept")
        if any(isinstance(s, Mapping) and s.get("name") == name for s in listing):
            raise ProviderError(f"shoot {name}: GET answered 404 but the project lists it; state is kept, "
                                "retry later")
        return None

    def poll(self, name: str) -> Observation:
        """`observe` for waits: an API that stays down through the client's retries is a missed
        poll, not the end of a 60-minute wait (a plain read still raises: it must never turn an
        outage into "gone")."""
        try:
            return self.observe(name)
        except TransientError as exc:
            return Observation(None, unavailable=exc.message)

    def waiter(self, name: str, what: str, deadline: Deadline) -> Waiter:
        return Waiter(fetch=lambda: self.poll(name), what=f"shoot {name}: {what}", policy=self.policy,
                      deadline=deadline, now=self.now, sleep=self.sleep, report=self.report, rng=self.rng,
                      grace=self.grace)

    def deadline(self, seconds: float) -> Deadline:
        return Deadline(seconds * self.policy.scale, self.now)

    # -- create / adopt ---------------------------------------------------------------------------
    def create(self, desired: Mapping[str, Any], *, adopt: bool | str, timeout: float,
               owner: str | None = None) -> dict[str, Any]:
        """POST the shoot (or adopt an existing one) and wait until our Create has succeeded.

        `owner` is the stack's marker (see `marker`): stamped on the new shoot, and a shoot of
        this name that already carries it is the one an interrupted run of this stack started,
        so it is resumed without `adopt`.
        """
        name = str(desired["name"])
        deadline = self.deadline(timeout)
        existing = self.get(name)
        if existing is not None:
            if not adopt and owner and owner in owners_of(existing):
                self.report(f"shoot {name}: found the shoot an earlier, interrupted run of this stack started "
                            f"(marker {MARKER_KEY}={owner}); resuming instead of creating another")
                return self._adopt(existing, desired, deadline, observe=False)
            if not adopt:
                others = owners_of(existing)
                raise ProviderError(
                    f"shoot {name!r} already exists in project {self.loc.project_id} ({self.loc.region})"
                    + (f" and belongs to another stack ({', '.join(sorted(others))})" if others else "")
                    + "; set adopt: true to take it over (this is also how to import an existing shoot; it is "
                    "recorded as it is and the next preview shows the differences as an update), "
                    "adopt: observe to only track it, or choose another name")
            return self._adopt(existing, desired, deadline, observe=adopt == "observe")
        self._check_name_free(name)
        body = stamp_create_body(create_body(shoot_spec_from_inputs(desired)), owner)
        started = self.now()
        self._post_create(name, body)
        self.report(f"shoot {name}: create accepted; waiting for Gardener to provision it")
        resume = ("the next `pulumi up` resumes it (it carries this stack's marker) and `pulumi destroy` "
                  "deletes it" if owner else "re-run with adopt: true to resume waiting (or delete it in the "
                  "Cleura console)")
        try:
            shoot = self.waiter(name, "create", deadline).until_ready(None, request_started=started,
                                                                      allow_missing=CREATE_404_TOLERANCE)
            if desired.get("hibernated"):
                shoot = self._mutate(name, "PATCH", f"{self.loc.shoots(name)}/hibernate", None, "hibernate",
                                     shoot, deadline, done=_hibernated(True))
            return shoot
        except (WaitTimeoutError, OperationFailedError, ApiError, ProviderError) as exc:
            raise ProviderError(f"{exc}. The shoot exists on Cleura but Pulumi does not track it yet: {resume}") \
                from None

    def _check_name_free(self, name: str) -> None:
        try:
            data, _ = self.client.get_json(self.loc.name_taken(name))
        except NotFoundError:
            return  # older API without the check: the POST will tell
        if isinstance(data, dict) and data.get("is_taken"):
            raise ProviderError(f"shoot name {name!r} is taken in cloud {self.loc.cloud} (names are unique "
                                "cloud-wide, across all projects); choose another name")

    def _name_taken(self, name: str) -> bool:
        try:
            data, _ = self.client.get_json(self.loc.name_taken(name))
        except NotFoundError:
            return False
        return isinstance(data, dict) and bool(data.get("is_taken"))

    def _post_create(self, name: str, body: dict[str, Any]) -> None:
        """POST once; after an ambiguous answer, look before sending again (never two, never none)."""
        ambiguous = False
        for _ in range(MAX_AMBIGUOUS_RETRIES + 1):
            try:
                self.client.request("POST", self.loc.shoots(), body, idempotent=False)
                return
            except AmbiguousWriteError as exc:
                ambiguous = True
                self.report(f"shoot {name}: {exc.message}; checking whether it was created")
            except ApiError as exc:
                if not (ambiguous and exc.status in (400, 409)):
                    raise
                # An earlier attempt may have been applied after all and now blocks the name.
            # A just-created shoot can still 404 (eventual consistency), but its name is taken at
            # once: the name check was free before our POST, so a taken name now is our shoot.
            if self.get(name) is not None or self._name_taken(name):
                self.report(f"shoot {name}: the earlier create request was applied; continuing with it")
                return
        raise ProviderError(f"shoot {name}: the create request failed repeatedly and the shoot does not exist")

    def _adopt(self, existing: dict[str, Any], desired: Mapping[str, Any], deadline: Deadline, *,
               observe: bool) -> dict[str, Any]:
        """Record the live shoot *as it is*; never converge behind a `create` preview.

        The preview of an adoption can only say "+ create", so changing the cluster here would
        apply changes nobody reviewed (a removed worker group, cleared labels). The state records
        the live values instead, and the next preview shows the differences as an ordinary
        update. `observe` records without ever converging (see `ShootProvider.diff`).
        """
        name = str(desired["name"])
        live = reported_inputs(existing)
        conflicts = immutable_conflicts(desired, live)
        if conflicts and not observe:
            raise ProviderError(f"cannot adopt shoot {name!r}: replace-only settings differ: "
                                + "; ".join(conflicts) + ". Align the config with the live shoot first.")
        self.report(f"shoot {name}: adopting the existing shoot as it is; waiting for its current operation")
        waiter = self.waiter(name, "adopt", deadline)
        try:
            shoot = waiter.until_idle() if observe else waiter.until_ready(None)
        except OperationFailedError as exc:
            raise ProviderError(f"{exc}. Fix the cause, then retry the operation in the Cleura console "
                                "(or PATCH .../retry) and run again") from None
        if shoot is None:
            raise ProviderError(f"shoot {name!r} disappeared while adopting it")
        pending = plan_update(desired, reported_inputs(shoot)).describe()
        if pending:
            mode = ("observe mode: never applied" if observe
                    else "not applied now; the next `pulumi preview` shows them as an update")
            self.report(f"shoot {name}: adopted; the config differs from the live shoot ({mode}): "
                        + "; ".join(pending))
        return shoot

    # -- update ----------------------------------------------------------------------------------
    def update(self, desired: Mapping[str, Any], *, timeout: float) -> dict[str, Any]:
        name = str(desired["name"])
        deadline = self.deadline(timeout)
        shoot = self.get(name)
        if shoot is None:
            raise ProviderError(f"shoot {name!r} no longer exists; run `pulumi refresh` to drop it from state, "
                                "then `pulumi up` recreates it")
        return self._apply(desired, shoot, deadline)

    def _apply(self, desired: Mapping[str, Any], shoot: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        name = str(desired["name"])
        plan = plan_update(desired, reported_inputs(shoot))
        if plan.empty:
            return shoot
        self.report(f"shoot {name}: " + "; ".join(plan.describe()))
        owner = desired.get(OWNER_KEY)
        return self.apply_plan(name, plan, shoot, deadline, owner if isinstance(owner, str) else None)

    def apply_plan(self, name: str, plan: UpdatePlan, shoot: dict[str, Any], deadline: Deadline,
                   owner: str | None = None) -> dict[str, Any]:
        """One call at a time, each followed by a wait; new groups before removals (never zero groups)."""
        path = self.loc.shoots(name)
        if plan.hibernate is False:  # wake first: the other changes need running nodes
            shoot = self._mutate(name, "PATCH", f"{path}/wakeup", None, "wake up", shoot, deadline,
                                 done=_hibernated(False))
        plan = replace(plan, create_workers=tuple(stamp_worker(w, owner) for w in plan.create_workers),
                       update_workers=tuple(stamp_worker(w, owner) for w in plan.update_workers))
        if plan.patch:
            shoot = self._mutate(name, "PATCH", path, plan.patch, "update", shoot, deadline)
        if plan.enable_ha:
            shoot = self._mutate(name, "PATCH", f"{path}/ha-control-plane/enable", None, "enable HA", shoot,
                                 deadline, done=lambda s: s.get("control_plane") is not None)
        for w in plan.create_workers:
            wname = w["name"]
            shoot = self._mutate(name, "POST", f"{path}/workers", w, f"add worker group {wname}", shoot, deadline,
                                 done=_has_worker(wname, True), idempotent=False)
        for w in plan.update_workers:
            shoot = self._mutate(name, "PUT", f"{path}/workers/{w['name']}", w, f"update worker group {w['name']}",
                                 shoot, deadline)
        for wname in plan.delete_workers:
            shoot = self._mutate(name, "DELETE", f"{path}/workers/{wname}", None, f"remove worker group {wname}",
                                 shoot, deadline, done=_has_worker(wname, False))
        if plan.hibernate:
            shoot = self._mutate(name, "PATCH", f"{path}/hibernate", None, "hibernate", shoot, deadline,
                                 done=_hibernated(True))
        return shoot

    def _mutate(self, name: str, method: str, path: str, body: object, what: str, current: dict[str, Any],
                deadline: Deadline, *, done: Callable[[dict[str, Any]], bool] | None = None,
                idempotent: bool = True) -> dict[str, Any]:
        """Send one change and wait for the operation it starts (not the one before it)."""
        conflicts = ambiguous = 0
        while True:
            running = OpMarker.of(current)
            if running is not None and running.state in ACTIVE_STATES:
                # Sent now, the change could be accepted and queued behind the running operation,
                # whose Succeeded would then end our wait before our change is even reconciled.
                self.report(f"shoot {name}: {what} waits for the running {running.type} operation "
                            f"({running.progress}%)")
                idle = self.waiter(name, f"waiting to {what}", deadline).until_idle()
                if idle is None:
                    raise ProviderError(f"shoot {name} disappeared while waiting to {what}")
                current = idle
            baseline = OpMarker.of(current)
            started = self.now()
            try:
                self.client.request(method, path, body, idempotent=idempotent)
            except ConflictError as exc:
                conflicts += 1
                live = self.get(name)
                if live is not None and done is not None and done(live):
                    return live  # e.g. HA already enabled: the 409 means the goal is reached
                if conflicts > MAX_CONFLICT_RETRIES or live is None or deadline.expired():
                    raise ProviderError(f"shoot {name}: {what} rejected: {exc}") from None
                idle = self._wait_out_conflict(name, what, live, conflicts, deadline)
                if idle is None:
                    raise ProviderError(f"shoot {name} disappeared while waiting to {what}") from None
                current = idle
                continue
            except AmbiguousWriteError as exc:
                ambiguous += 1
                live = self.get(name)
                if live is not None and done is not None and done(live):
                    self.report(f"shoot {name}: {what}: {exc.message}; it was applied")
                elif ambiguous <= MAX_AMBIGUOUS_RETRIES:
                    self.report(f"shoot {name}: {what}: {exc.message}; not applied, sending again")
                    current = live or current
                    continue
                else:
                    raise ProviderError(f"shoot {name}: {what} failed: {exc}") from None
            except NotFoundError:
                if method == "DELETE":
                    return self.get(name) or current  # already removed
                raise
            try:
                return self.waiter(name, what, deadline).until_ready(baseline, request_started=started)
            except (WaitTimeoutError, OperationFailedError) as exc:
                raise ProviderError(str(exc)) from None

    def _wait_out_conflict(self, name: str, what: str, live: dict[str, Any], conflicts: int,
                           deadline: Deadline) -> dict[str, Any] | None:
        """After a 409: wait for the running operation to end; None if the shoot is gone.

        Right after a rejected change, GET can still report the previous, finished operation (the
        stale read of reference 3.3), so "nothing running" is not proof the 409 is permanent:
        pause a poll interval and let the caller retry (bounded by MAX_CONFLICT_RETRIES).
        """
        marker = OpMarker.of(live)
        if marker is not None and marker.state in ACTIVE_STATES:
            self.report(f"shoot {name}: {what} must wait for the running {marker.type} operation "
                        f"({marker.progress}%)")
            return self.waiter(name, f"waiting to {what}", deadline).until_idle()
        self.report(f"shoot {name}: {what} answered 409 but no running operation is visible yet; "
                    f"retrying ({conflicts}/{MAX_CONFLICT_RETRIES})")
        self.sleep(min(self.policy.interval(conflicts - 1, None, self.rng), max(deadline.remaining(), 0.0)))
        return live

    # -- delete ----------------------------------------------------------------------------------
    def delete(self, name: str, *, timeout: float) -> None:
        """DELETE, then wait for 404; a shoot that is already gone is success."""
        deadline = self.deadline(timeout)
        conflicts = 0
        while True:
            # The operation before our DELETE: a failed earlier deletion still shows for a while.
            baseline = OpMarker.of(self.get(name))
            started = self.now()
            try:
                self.client.request("DELETE", self.loc.shoots(name))
                break
            except NotFoundError:
                # Gone only if the project's list confirms it (a wrong region/project/URL 404s too,
                # and "deleting" a shoot there would drop a running, billed cluster from state).
                if self.read_existing(name) is None:
                    self.report(f"shoot {name}: already gone")
                    return
                raise ProviderError(f"shoot {name}: DELETE answered 404 but the shoot is still listed; "
                                    "state is kept, retry") from None
            except ConflictError as exc:
                conflicts += 1
                live = self.get(name)
                if conflicts > MAX_CONFLICT_RETRIES or deadline.expired():
                    raise ProviderError(f"shoot {name}: delete rejected: {exc}") from None
                if live is None or self._wait_out_conflict(name, "delete", live, conflicts, deadline) is None:
                    return
        self.report(f"shoot {name}: deletion accepted; waiting until it is gone")
        try:
            self.waiter(name, "delete", deadline).until_gone(baseline, request_started=started)
        except (WaitTimeoutError, OperationFailedError) as exc:
            raise ProviderError(str(exc)) from None

    # -- kubeconfig / bootstrap ------------------------------------------------------------------
    def mint_kubeconfig(self, name: str, seconds: int, *, timeout: float = 1800) -> dict[str, Any]:
        """v3 admin kubeconfig: `{kubeconfig, expires_at}`; a 409 (shoot busy) waits and retries."""
        deadline = self.deadline(timeout)
        for attempt in range(1, MAX_CONFLICT_RETRIES + 2):
            try:
                # Safe to repeat on 502/504 or a dropped connection: a second credential is harmless
                # (it only expires), unlike an AmbiguousWriteError failing the whole run.
                resp = self.client.request("POST", self.loc.kubeconfig_v3(name), {"expiration_seconds": int(seconds)},
                                           idempotent=True)
            except NotFoundError:
                raise ProviderError(f"shoot {name!r} not found in project {self.loc.project_id} "
                                    f"({self.loc.region}): wrong shoot name or project") from None
            except ConflictError as exc:
                self.report(f"shoot {name}: kubeconfig not available yet ({exc.message}); waiting")
                live = self.get(name)
                if live is not None and _hibernated(True)(live):
                    raise ProviderError(f"shoot {name!r} is hibernated, so it has no reachable API server: set "
                                        "platform:cleura.hibernated: false to wake it in this run, or run again "
                                        "after its hibernation schedule wakes it") from None
                if live is None or self._wait_out_conflict(name, "get a kubeconfig", live, attempt,
                                                           deadline) is None:
                    raise ProviderError(f"shoot {name!r} disappeared") from None
                continue
            data = resp.json()
            if not isinstance(data, dict) or not data.get("kubeconfig"):
                raise ProviderError("admin-kubeconfig answered without a kubeconfig")
            return data
        raise ProviderError(f"shoot {name}: kubeconfig request kept conflicting (409)")

    def bootstrap(self) -> None:
        try:
            self.client.request("POST", self.loc.bootstrap(), None, idempotent=True)
        except NotFoundError as exc:
            raise ProviderError(f"bootstrap: region {self.loc.region!r} unknown: {exc.message}") from None
        except ApiError as exc:
            if exc.status == 500:
                raise ProviderError(f"bootstrap failed with HTTP 500 ({exc.message}); Cleura answers 500 for an "
                                    f"unknown project id: check project_id {self.loc.project_id!r} and region "
                                    f"{self.loc.region!r}") from None
            raise


def _hibernated(want: bool) -> Callable[[dict[str, Any]], bool]:
    def check(shoot: dict[str, Any]) -> bool:
        return bool((shoot.get("status") or {}).get("is_hibernated")) == want

    return check


def _has_worker(name: str, present: bool) -> Callable[[dict[str, Any]], bool]:
    """Predicate "the group is there / gone", used to resolve 409s and ambiguous writes."""

    def check(shoot: dict[str, Any]) -> bool:
        return (name in _worker_names(shoot)) == present

    return check


def _worker_names(shoot: Mapping[str, Any]) -> set[str]:
    workers = (shoot.get("shoot_provider") or {}).get("workers") or []
    return {str(w.get("name")) for w in workers if isinstance(w, Mapping)}
