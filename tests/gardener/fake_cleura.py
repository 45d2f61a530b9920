"""A fake Cleura REST API (v2 shoots, v3 kubeconfig, v2 auth) over real HTTP on 127.0.0.1.

It follows `../shared/reference/cleura-gardener-api.md` where it matters to a client, and is
deliberately strict so client mistakes fail loudly:

* auth: `POST /auth/v2/tokens` (flat body, 201), both `X-AUTH-*` headers on every other call,
  `403 {"error": {"message": "Invalid token"}}` for a bad or expired token;
* bodies: unknown fields are 400, integers must be JSON integers, PATCH spells the version
  `kubernetes`, a worker PUT that omits labels/annotations/taints keeps the old ones (quirk 7);
* lifecycle: operations progress over *fake time* (`speed` fake seconds per real second) in
  Gardener-like steps; after every mutation GET keeps reporting the previous operation for
  `stale_lag` fake seconds (the stale-`Succeeded` race); deletion ends in 404;
* conflicts: HA re-enable and Cilium config on Calico are 409; mutations while an operation
  runs are 409 "operation in progress" when `conflict_while_busy`, else accepted and queued
  behind the running operation (which GET keeps reporting until it ends);
* faults: `add_fault` injects statuses (with Retry-After), dropped connections (before or after
  the request is applied), slow answers; tokens can be expired at will.

Everything observable (`requests`, `bootstrap_calls`) is recorded for assertions.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SUPPORTED_VERSIONS = ("1.32.9", "1.33.4", "1.33.5", "1.34.1")
# Fraction of an operation's duration -> progress Gardener reports (steps, not a smooth line).
MILESTONES = ((0.0, 0), (0.04, 4), (0.12, 15), (0.3, 32), (0.5, 50), (0.7, 76), (0.88, 89), (0.96, 97))
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
QUEUE_PICKUP = 10.0  # fake seconds between a finished operation and a queued one starting


class FakeClock:
    """Fake seconds: real monotonic time times `speed`, or manual (virtual) time for benchmarks."""

    def __init__(self, speed: float = 1.0, manual: bool = False) -> None:
        self.speed, self.manual = speed, manual
        self._t0 = time.monotonic()
        self._offset = 0.0

    def now(self) -> float:
        if self.manual:
            return self._offset
        return (time.monotonic() - self._t0) * self.speed + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    @staticmethod
    def stamp(t: float) -> str:
        return (EPOCH + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")


@dataclass
class Fault:
    """One injected failure for requests matching `method` and the `path` regex."""

    method: str
    path: str
    kind: str  # status | drop | drop_after | status_after | slow | empty
    status: int = 503
    message: str = "Service Unavailable"
    retry_after: str | None = None
    delay: float = 0.0
    times: int = 1
    hits: int = 0
    skip: int = 0  # let this many matching requests through first

    def matches(self, method: str, path: str) -> bool:
        return self.hits < self.times and self.method in ("*", method) and re.search(self.path, path) is not None


@dataclass
class Operation:
    type: str
    started: float
    duration: float
    fail: str | None = None
    fail_at: float = 0.5
    previous: dict[str, Any] | None = None
    stale_until: float = 0.0
    hidden_until: float = 0.0
    before: Operation | None = None  # still running when this one was requested: reported until we start

    def progress_at(self, frac: float) -> int:
        return max(p for f, p in MILESTONES if frac >= f)

    def report(self, t: float) -> dict[str, Any] | None:
        if t < self.stale_until:
            return self.previous
        if self.before is not None and t < self.started:
            return self.before.report(t)
        if t < self.hidden_until:
            return None
        frac = (t - self.started) / self.duration if self.duration > 0 else 1.0
        if self.fail and frac >= self.fail_at:
            return {"type": self.type, "state": "Failed", "progress": self.progress_at(self.fail_at),
                    "description": self.fail,
                    "last_update_time": FakeClock.stamp(self.started + self.fail_at * self.duration)}
        if frac >= 1.0:
            return {"type": self.type, "state": "Succeeded", "progress": 100,
                    "description": f"{self.type} succeeded",
                    "last_update_time": FakeClock.stamp(self.started + self.duration)}
        if frac < 0.02:
            return {"type": self.type, "state": "Pending", "progress": 0, "description": "Pending",
                    "last_update_time": FakeClock.stamp(self.started)}
        step = max(f for f, _ in MILESTONES if frac >= f)
        return {"type": self.type, "state": "Processing", "progress": self.progress_at(frac),
                "description": f"{self.type} in progress",
                "last_update_time": FakeClock.stamp(self.started + step * self.duration)}

    def finished(self, t: float) -> bool:
        return t >= self.started + self.duration or (self.fail is not None
                                                     and t >= self.started + self.fail_at * self.duration)

    def succeeded(self, t: float) -> bool:
        return self.fail is None and t >= self.started + self.duration


@dataclass
class ShootRecord:
    cloud: str
    region: str
    project: str
    spec: dict[str, Any]
    op: Operation | None = None
    deleting: bool = False
    invisible_until: float = 0.0  # GET answers 404 until then (eventual consistency after create)
    hibernated: bool = False  # the target: is_hibernated stays true through a whole wake-up
    was_hibernated: bool = False


class ApiFailure(Exception):  # noqa: N818 - mirrors the API envelope, not a Python error
    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def _envelope(status: int, message: str, errors: list[dict[str, str]] | None = None) -> bytes:
    return json.dumps({"error": {"code": status, "message": message, "errors": errors}}).encode()


Route = tuple[str, re.Pattern[str], Callable[..., tuple[int, Any]]]


@dataclass
class FakeCleura:
    """The fake API; call `start()` (or use as a context manager) and point CLEURA_API_URL at `url`."""

    speed: float = 1000.0
    clock: FakeClock = field(default=None)  # type: ignore[assignment]  # built from `speed`
    users: dict[str, str] = field(default_factory=lambda: {"svc-robot": "correct-horse-battery"})
    projects: set[tuple[str, str]] = field(default_factory=lambda: {("Sto2", "p1234567890abcdef"),
                                                                    ("Sto2", "pother00000000000")})
    create_duration: float = 120.0
    reconcile_duration: float = 30.0
    delete_duration: float = 40.0
    stale_lag: float = 5.0
    create_hidden: float = 3.0
    conflict_while_busy: bool = True
    kubeconfig_cap: int | None = None
    fail_next_create: str | None = None
    fail_next_delete: str | None = None
    token_ttl: float | None = None  # fake seconds a token stays valid (None: forever)
    create_invisible: float = 0.0  # fake seconds a new shoot still 404s on GET

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = FakeClock(self.speed)
        self.lock = threading.RLock()
        self.tokens: dict[str, tuple[str, float]] = {}
        self.shoots: dict[tuple[str, str, str, str], ShootRecord] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, int]] = []
        self.bodies: list[tuple[str, str, Any]] = []
        self.bootstrap_calls = 0
        self.bootstrapped: set[tuple[str, str]] = set()
        self.revoked: list[str] = []
        self.cloud_profiles: list[dict[str, Any]] | None = None
        self.server: ThreadingHTTPServer | None = None
        self._routes: list[Route] = self._build_routes()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeCleura:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                fake.serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any  # noqa: N815 - http.server's names

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> FakeCleura:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.tokens.clear()
            self.shoots.clear()
            self.faults.clear()
            self.requests.clear()
            self.bodies.clear()
            self.bootstrap_calls = 0
            self.bootstrapped.clear()
            self.revoked.clear()
            self.cloud_profiles = None
            self.create_duration, self.reconcile_duration, self.delete_duration = 120.0, 30.0, 40.0
            self.stale_lag, self.create_hidden = 5.0, 3.0
            self.conflict_while_busy, self.kubeconfig_cap, self.fail_next_create = True, None, None
            self.fail_next_delete = None
            self.token_ttl = None
            self.create_invisible = 0.0

    # -- test controls ---------------------------------------------------------------------------
    def issue_token(self, user: str = "svc-robot") -> str:
        token = "tok-" + secrets.token_hex(12)
        with self.lock:
            self.tokens[token] = (user, self.clock.now())
        return token

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def add_fault(self, method: str, path: str, kind: str, **kw: Any) -> Fault:
        fault = Fault(method, path, kind, **kw)
        with self.lock:
            self.faults.append(fault)
        return fault

    def count(self, method: str, path_regex: str = "", status: int | None = None) -> int:
        with self.lock:
            return sum(1 for m, p, s in self.requests
                       if m == method and re.search(path_regex, p) and (status is None or s == status))

    def shoot(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            for (_, _, _, n), rec in self.shoots.items():
                if n == name:
                    return rec.spec
        return None

    def shoot_names(self) -> list[str]:
        with self.lock:
            return sorted(k[3] for k in self.shoots)

    def remove_out_of_band(self, name: str) -> None:
        with self.lock:
            for key in [k for k in self.shoots if k[3] == name]:
                del self.shoots[key]

    def op_state(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            for (_, _, _, n), rec in self.shoots.items():
                if n == name and rec.op:
                    return rec.op.report(self.clock.now())
        return None

    def settled(self, name: str) -> bool:
        """True when every operation requested for the shoot (queued ones too) has finished."""
        with self.lock:
            for (_, _, _, n), rec in self.shoots.items():
                if n == name:
                    return rec.op is None or rec.op.finished(self.clock.now())
        return True

    def fail_current(self, name: str, description: str) -> None:
        """Make the shoot's last operation a failed Reconcile (e.g. quota exhausted overnight)."""
        with self.lock:
            for (_, _, _, n), rec in self.shoots.items():
                if n == name:
                    now = self.clock.now()
                    rec.op = Operation("Reconcile", now - 100, 50, fail=description)

    def finish_operations(self) -> None:
        """Jump fake time past every running operation."""
        with self.lock:
            self.clock.advance(max([self.create_duration, self.reconcile_duration, self.delete_duration]) + 60)
            self._expire_deleted()

    # -- HTTP --------------------------------------------------------------------------------------
    def serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        method, path = h.command, urlsplit(h.path).path  # an absolute URI when reached through a proxy
        fault = self._take_fault(method, path)
        if fault and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault and fault.kind == "drop":
            self._log(method, path, 0)
            h.close_connection = True
            return
        if fault and fault.kind == "empty":  # a 200 without a body (a proxy, a truncated answer)
            self._log(method, path, 200)
            self._write(h, 200, b"", None)
            return
        if fault and fault.kind == "status":
            self._log(method, path, fault.status)
            self._write(h, fault.status, _envelope(fault.status, fault.message), fault.retry_after)
            return
        status, payload = self._dispatch(method, path, raw, h)
        if fault and fault.kind == "drop_after":
            self._log(method, path, 0)
            h.close_connection = True
            return
        if fault and fault.kind == "status_after":
            status, payload = fault.status, _envelope(fault.status, fault.message)
        self._log(method, path, status)
        body = payload if isinstance(payload, bytes) else (json.dumps(payload).encode() if payload is not None
                                                            else b"")
        self._write(h, status, body, None)

    def _write(self, h: BaseHTTPRequestHandler, status: int, body: bytes, retry_after: str | None) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            if retry_after is not None:
                h.send_header("Retry-After", retry_after)
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass  # the client gave up (read timeout); nothing to do

    def _log(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.requests.append((method, path, status))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.matches(method, path):
                    if f.skip > 0:
                        f.skip -= 1
                        continue
                    f.hits += 1
                    return f
        return None

    def _dispatch(self, method: str, path: str, raw: bytes, h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return 400, _envelope(400, "request body is not JSON")
        with self.lock:
            self.bodies.append((method, path, body))
            try:
                for m, rx, fn in self._routes:
                    match = rx.match(path)
                    if m == method and match:
                        if fn != self._login or method == "DELETE":
                            self._auth(h)
                        if fn == self._login and method == "DELETE":
                            self.revoked.append(str(h.headers.get("X-AUTH-TOKEN")))
                            self.tokens.pop(str(h.headers.get("X-AUTH-TOKEN")), None)
                            return 204, None
                        self._expire_deleted()
                        return fn(body, **match.groupdict())
                return 404, _envelope(404, f"no route for {method} {path}")
            except ApiFailure as exc:
                return exc.status, _envelope(exc.status, exc.message, exc.errors)

    def _build_routes(self) -> list[Route]:
        seg = r"[A-Za-z0-9_-]+"
        base = rf"^/gardener/v2/(?P<cloud>{seg})/shoots/(?P<region>{seg})/(?P<project>{seg})"
        one = base + r"/(?P<name>[A-Za-z0-9-]+)"
        return [
            ("POST", re.compile(r"^/auth/v2/tokens$"), self._login),
            ("DELETE", re.compile(r"^/auth/v2/tokens$"), self._login),  # revoke: see _dispatch
            ("GET", re.compile(rf"^/gardener/v2/(?P<cloud>{seg})/shoots/(?P<name>{seg})/is-name-taken$"),
             self._name_taken),
            ("POST", re.compile(rf"^/gardener/v2/(?P<cloud>{seg})/(?P<region>{seg})/(?P<project>{seg})/bootstrap$"),
             self._bootstrap),
            ("POST", re.compile(rf"^/gardener/v3/(?P<cloud>{seg})/shoots/(?P<region>{seg})/(?P<project>{seg})"
                                r"/(?P<name>[A-Za-z0-9-]+)/admin-kubeconfig$"), self._kubeconfig),
            ("GET", re.compile(rf"^/gardener/v2/(?P<cloud>{seg})/cloud-profiles$"), self._cloud_profiles),
            ("GET", re.compile(base + "$"), self._list),
            ("POST", re.compile(base + "$"), self._create),
            ("POST", re.compile(one + "/workers$"), self._add_worker),
            ("PUT", re.compile(one + rf"/workers/(?P<worker>{seg})$"), self._edit_worker),
            ("DELETE", re.compile(one + rf"/workers/(?P<worker>{seg})$"), self._delete_worker),
            ("PATCH", re.compile(one + "/ha-control-plane/enable$"), self._enable_ha),
            ("PATCH", re.compile(one + "/hibernate$"), self._hibernate),
            ("PATCH", re.compile(one + "/wakeup$"), self._wakeup),
            ("GET", re.compile(one + "$"), self._get),
            ("PATCH", re.compile(one + "$"), self._patch),
            ("DELETE", re.compile(one + "$"), self._delete),
        ]

    # -- auth ----------------------------------------------------------------------------------------
    def _login(self, body: Any) -> tuple[int, Any]:
        _keys(body, {"login", "password", "two_factor_method"}, "body")
        login, password = body.get("login"), body.get("password")
        if not isinstance(login, str) or not isinstance(password, str):
            raise ApiFailure(400, "login and password are required")
        if self.users.get(login) != password:
            # Like the real API, validation errors may echo request fields back.
            raise ApiFailure(400, f"Invalid credentials for {login}", [{"key": "password", "value": password}])
        return 201, {"result": "login_ok", "token": self.issue_token(login)}

    def _auth(self, h: BaseHTTPRequestHandler) -> None:
        token, login = h.headers.get("X-AUTH-TOKEN"), h.headers.get("X-AUTH-LOGIN")
        user, issued = self.tokens.get(token or "", ("", 0.0))
        expired = self.token_ttl is not None and self.clock.now() - issued > self.token_ttl
        if not token or not login or user != login or expired:
            raise ApiFailure(403, "Invalid token")

    # -- helpers ---------------------------------------------------------------------------------------
    def _record(self, cloud: str, region: str, project: str, name: str) -> ShootRecord:
        self._project(region, project)
        rec = self.shoots.get((cloud, region, project, name))
        if rec is None or rec.invisible_until > self.clock.now():
            raise ApiFailure(404, f"Shoot {name} was not found")
        return rec

    def _project(self, region: str, project: str) -> None:
        if not any(r == region for r, _ in self.projects):
            raise ApiFailure(404, f"OpenStack region {region} was not found")
        if (region, project) not in self.projects:
            raise ApiFailure(404, f"Project {project} was not found")

    def _expire_deleted(self) -> None:
        now = self.clock.now()
        for key, rec in list(self.shoots.items()):
            if rec.deleting and rec.op and rec.op.succeeded(now):
                del self.shoots[key]

    def _busy(self, rec: ShootRecord) -> None:
        if rec.deleting:
            raise ApiFailure(409, "shoot is being deleted")
        if self.conflict_while_busy and rec.op and not rec.op.finished(self.clock.now()):
            raise ApiFailure(409, "Another operation is in progress for this shoot")

    def _start(self, rec: ShootRecord, kind: str, duration: float, fail: str | None = None) -> None:
        now = self.clock.now()
        if rec.op is not None and not rec.op.finished(now):
            # Only reachable with conflict_while_busy=False: like Gardener, finish the running
            # operation first, then reconcile the new spec (GET keeps showing the running one).
            # The running one shows Succeeded for a moment before the next reconcile is picked up.
            current = rec.op
            rec.op = Operation(kind, current.started + current.duration + QUEUE_PICKUP, duration, fail=fail,
                               before=current)
            return
        previous = rec.op.report(now) if rec.op else None
        rec.op = Operation(kind, now, duration, fail=fail, previous=previous, stale_until=now + self.stale_lag)

    def _view(self, rec: ShootRecord) -> dict[str, Any]:
        view = json.loads(json.dumps(rec.spec))
        op = rec.op.report(self.clock.now()) if rec.op else None
        if op is not None:
            view["last_operation"] = op
        errors = []
        if op is not None and op["state"] == "Failed":
            errors.append({"description": op["description"], "codes": ["ERR_INFRA_QUOTA_EXCEEDED"],
                           "task_id": "t1", "last_update_time": op["last_update_time"]})
        view["status"] = {
            "is_hibernated": (rec.hibernated if rec.op is None or rec.op.finished(self.clock.now())
                              else rec.hibernated or rec.was_hibernated),
            "conditions": [{"type": "APIServerAvailable", "status": "False" if errors else "True",
                            "reason": "", "message": "", "codes": []}],
            "constraints": [],
            "last_errors": errors,
        }
        result: dict[str, Any] = view
        return result

    # -- shoots ----------------------------------------------------------------------------------------
    def _name_taken(self, body: Any, cloud: str, name: str) -> tuple[int, Any]:
        return 200, {"is_taken": any(k[0] == cloud and k[3] == name for k in self.shoots)}

    def _bootstrap(self, body: Any, cloud: str, region: str, project: str) -> tuple[int, Any]:
        self.bootstrap_calls += 1
        if not any(r == region for r, _ in self.projects):
            raise ApiFailure(404, f"OpenStack region {region} was not found")
        if (region, project) not in self.projects:
            raise ApiFailure(500, "Internal Server Error")
        self.bootstrapped.add((region, project))
        return 204, None

    def _cloud_profiles(self, body: Any, cloud: str) -> tuple[int, Any]:
        if self.cloud_profiles is None:
            raise ApiFailure(404, "no route")  # like an API without the endpoint: the check is skipped
        return 200, self.cloud_profiles

    def _list(self, body: Any, cloud: str, region: str, project: str) -> tuple[int, Any]:
        self._project(region, project)
        return 200, [self._view(r) for k, r in self.shoots.items() if k[:3] == (cloud, region, project)]

    def _get(self, body: Any, cloud: str, region: str, project: str, name: str) -> tuple[int, Any]:
        return 200, self._view(self._record(cloud, region, project, name))

    def _create(self, body: Any, cloud: str, region: str, project: str) -> tuple[int, Any]:
        self._project(region, project)
        validate_create(body)
        name = body["name"]
        if any(k[0] == cloud and k[3] == name for k in self.shoots):
            raise ApiFailure(400, f"Shoot name {name} is already taken")
        spec = shoot_from_create(body, region, project)
        rec = ShootRecord(cloud, region, project, spec)
        now = self.clock.now()
        rec.op = Operation("Create", now, self.create_duration, fail=self.fail_next_create,
                           hidden_until=now + self.create_hidden)
        self.fail_next_create = None
        rec.invisible_until = now + self.create_invisible
        self.shoots[(cloud, region, project, name)] = rec
        return 202, self._view(rec)

    def _patch(self, body: Any, cloud: str, region: str, project: str, name: str) -> tuple[int, Any]:
        rec = self._record(cloud, region, project, name)
        _keys(body, {"kubernetes", "enable_ha_control_plane", "allowed_cidrs", "hibernation_schedules",
                     "maintenance", "networking", "shoot_provider"}, "body")
        self._busy(rec)
        spec = rec.spec
        if "kubernetes" in body:
            version = body["kubernetes"]
            if version not in SUPPORTED_VERSIONS:
                raise ApiFailure(400, f"Kubernetes version {version} is not supported")
            if _vt(version) < _vt(spec["kubernetes"]["version"]):
                raise ApiFailure(400, "Kubernetes version downgrade is not allowed")
            spec["kubernetes"]["version"] = version
        if body.get("enable_ha_control_plane") is True:
            if "control_plane" in spec:
                raise ApiFailure(409, "High availability is already enabled")
            spec["control_plane"] = {"high_availability": {"failure_tolerance": {"type": "node"}}}
        if "allowed_cidrs" in body:
            _strings(body["allowed_cidrs"], "allowed_cidrs")
            _set_or_drop(spec, "allowed_cidrs", sorted(body["allowed_cidrs"]))
        if "hibernation_schedules" in body:
            scheds = body["hibernation_schedules"]
            if scheds:
                spec["hibernation"] = {"schedules": [dict(s, location="UTC") for s in scheds]}
            else:
                spec.pop("hibernation", None)
        if "maintenance" in body:
            _keys(body["maintenance"], {"auto_update", "time_window"}, "maintenance")
            for k in ("auto_update", "time_window"):
                if k in body["maintenance"]:
                    spec["maintenance"][k].update(body["maintenance"][k])
        if "networking" in body:
            _keys(body["networking"], {"cilium_provider_config"}, "networking")
            if spec["networking"]["type"] != "cilium":
                raise ApiFailure(409, "Cilium configuration requires a Cilium shoot")
            spec["networking"]["cilium_provider_config"].update(body["networking"]["cilium_provider_config"])
        self._start(rec, "Reconcile", self.reconcile_duration)
        return 202, self._view(rec)

    def _hibernate(self, body: Any, cloud: str, region: str, project: str, name: str) -> tuple[int, Any]:
        return self._set_hibernation(self._record(cloud, region, project, name), True)

    def _wakeup(self, body: Any, cloud: str, region: str, project: str, name: str) -> tuple[int, Any]:
        return self._set_hibernation(self._record(cloud, region, project, name), False)

    def _set_hibernation(self, rec: ShootRecord, target: bool) -> tuple[int, Any]:
        self._busy(rec)
        rec.was_hibernated, rec.hibernated = rec.hibernated, target
        self._start(rec, "Reconcile", self.reconcile_duration)
        return 202, None

    def hibernate_out_of_band(self, name: str) -> None:
        with self.lock:
            rec = next(r for k, r in self.shoots.items() if k[3] == name)
            rec.was_hibernated = rec.hibernated = True

    def _enable_ha(self, body: Any, cloud: str, region: str, project: str, name: str) -> tuple[int, Any]:
        rec = self._record(cloud, region, project, name)
        if "control_plane" in rec.spec:
            raise ApiFailure(409, "High availability is already enabled")
        self._busy(rec)
        rec.spec["control_plane"] = {"high_availability": {"failure_tolerance": {"type": "node"}}}
        self._start(rec, "Reconcile", self.reconcile_duration)
        return 202, self._view(rec)

    def _delete(self, body: Any, cloud: str, region: str, project: str, name: str) -> tuple[int, Any]:
        rec = self._record(cloud, region, project, name)
        now = self.clock.now()
        failed = rec.deleting and rec.op is not None and rec.op.fail is not None and rec.op.finished(now)
        if rec.deleting and not failed:
            return 204, None
        if not failed:
            self._busy(rec)
        # A DELETE after a failed deletion starts a new Delete; GET shows the failed one for a while.
        rec.deleting = True
        self._start(rec, "Delete", self.delete_duration, fail=self.fail_next_delete)
        self.fail_next_delete = None
        return 204, None

    # -- workers -----------------------------------------------------------------------------------------
    def _add_worker(self, body: Any, cloud: str, region: str, project: str, name: str) -> tuple[int, Any]:
        rec = self._record(cloud, region, project, name)
        validate_worker(body, "body", create=True)
        self._busy(rec)
        workers = rec.spec["shoot_provider"]["workers"]
        if any(w["name"] == body["name"] for w in workers):
            raise ApiFailure(409, f"Worker group {body['name']} already exists")
        workers.append(worker_read(body))
        self._start(rec, "Reconcile", self.reconcile_duration)
        return 202, self._view(rec)

    def _edit_worker(self, body: Any, cloud: str, region: str, project: str, name: str,
                     worker: str) -> tuple[int, Any]:
        rec = self._record(cloud, region, project, name)
        validate_worker(body, "body", create=False)
        self._busy(rec)
        workers = rec.spec["shoot_provider"]["workers"]
        idx = next((i for i, w in enumerate(workers) if w["name"] == worker), None)
        if idx is None:
            raise ApiFailure(404, f"Worker group {worker} was not found")
        workers[idx] = worker_read(body, old=workers[idx])
        self._start(rec, "Reconcile", self.reconcile_duration)
        return 202, self._view(rec)

    def _delete_worker(self, body: Any, cloud: str, region: str, project: str, name: str,
                       worker: str) -> tuple[int, Any]:
        rec = self._record(cloud, region, project, name)
        workers = rec.spec["shoot_provider"]["workers"]
        if not any(w["name"] == worker for w in workers):
            raise ApiFailure(404, f"Worker group {worker} was not found")
        if len(workers) == 1:
            raise ApiFailure(400, "A shoot needs at least one worker group")
        self._busy(rec)
        rec.spec["shoot_provider"]["workers"] = [w for w in workers if w["name"] != worker]
        self._start(rec, "Reconcile", self.reconcile_duration)
        return 204, None

    # -- kubeconfig ----------------------------------------------------------------------------------------
    def _kubeconfig(self, body: Any, cloud: str, region: str, project: str, name: str) -> tuple[int, Any]:
        rec = self._record(cloud, region, project, name)
        _keys(body, {"expiration_seconds"}, "body")
        seconds = body.get("expiration_seconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 600:
            raise ApiFailure(400, "expiration_seconds must be an integer >= 600")
        if rec.op is None or not rec.op.succeeded(self.clock.now()) or rec.deleting or rec.hibernated:
            raise ApiFailure(409, "Shoot is not ready")
        granted = min(seconds, self.kubeconfig_cap) if self.kubeconfig_cap else seconds
        expires = datetime.now(UTC) + timedelta(seconds=granted)
        token = "kc-" + secrets.token_hex(16)
        ca = base64.b64encode(f"fake CA of shoot uid {rec.spec['uid']}".encode()).decode()
        kubeconfig = (f"apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n"
                      f"    certificate-authority-data: {ca}\n"
                      f"    server: https://api.{name}.example.invalid\ncontexts:\n- name: {name}\n  context:\n"
                      f"    cluster: {name}\n    user: admin\ncurrent-context: {name}\nusers:\n- name: admin\n"
                      f"  user:\n    token: {token}\n")
        return 201, {"kubeconfig": kubeconfig, "expires_at": expires.isoformat().replace("+00:00", "Z")}


# --- request validation (what the reference says the API rejects) ----------------------------------------


def _vt(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def _keys(obj: Any, allowed: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise ApiFailure(400, f"{where} must be an object")
    extra = set(obj) - allowed
    if extra:
        raise ApiFailure(400, f"{where}: unknown field(s) {sorted(extra)}")


def _int(v: Any, where: str) -> None:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ApiFailure(400, f"{where} must be an integer, got {v!r}")


def _strings(v: Any, where: str) -> None:
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise ApiFailure(400, f"{where} must be a list of strings")


def _set_or_drop(d: dict[str, Any], key: str, value: list[Any]) -> None:
    if value:
        d[key] = value
    else:
        d.pop(key, None)  # quirk 9: an empty allow-list comes back absent


def _kv(items: Any, where: str, taint: bool = False) -> None:
    if not isinstance(items, list):
        raise ApiFailure(400, f"{where} must be a list")
    for i, it in enumerate(items):
        _keys(it, {"key", "value", "effect"} if taint else {"key", "value"}, f"{where}[{i}]")
        if taint and it.get("effect") not in ("NoSchedule", "NoExecute", "PreferNoSchedule"):
            raise ApiFailure(400, f"{where}[{i}].effect is invalid")


def validate_worker(w: Any, where: str, *, create: bool) -> None:
    _keys(w, {"name", "machine", "minimum", "maximum", "max_surge", "volume_size", "zones", "labels",
              "annotations", "taints"}, where)
    if create and not re.match(r"^[A-Za-z0-9_-]+$", str(w.get("name", ""))):
        raise ApiFailure(400, f"{where}.name is invalid")
    if create or "machine" in w:
        _keys(w.get("machine"), {"type", "image_version"}, f"{where}.machine")
        if create and not w["machine"].get("type"):
            raise ApiFailure(400, f"{where}.machine.type is required")
    for k in ("minimum", "maximum", "max_surge"):
        if k in w:
            _int(w[k], f"{where}.{k}")
    if "zones" in w:
        _strings(w["zones"], f"{where}.zones")
    for k in ("labels", "annotations"):
        if k in w:
            _kv(w[k], f"{where}.{k}")
    if "taints" in w:
        _kv(w["taints"], f"{where}.taints", taint=True)


def validate_create(b: Any) -> None:
    _keys(b, {"name", "kubernetes_version", "enable_ha_control_plane", "allowed_cidrs", "hibernation_schedules",
              "maintenance", "networking", "shoot_provider"}, "body")
    name = b.get("name")
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9-]{1,15}$", name):
        raise ApiFailure(400, "name must be 1-15 characters of [A-Za-z0-9-]")
    if b.get("kubernetes_version") not in SUPPORTED_VERSIONS:
        raise ApiFailure(400, f"Kubernetes version {b.get('kubernetes_version')} is not supported")
    net = b.get("networking") or {}
    _keys(net, {"type", "cilium_provider_config"}, "networking")
    if net.get("cilium_provider_config") is not None and net.get("type") != "cilium":
        raise ApiFailure(409, "Cilium configuration requires networking type cilium")
    prov = b.get("shoot_provider")
    _keys(prov, {"load_balancer_provider", "infrastructure_config", "workers"}, "shoot_provider")
    _keys(prov.get("infrastructure_config"), {"floating_pool_name", "network_id", "router_id",
                                              "workers_network_cidr"}, "infrastructure_config")
    workers = prov.get("workers")
    if not isinstance(workers, list) or not workers:
        raise ApiFailure(400, "at least one worker group is required")
    for i, w in enumerate(workers):
        validate_worker(w, f"shoot_provider.workers[{i}]", create=True)
    if "allowed_cidrs" in b:
        _strings(b["allowed_cidrs"], "allowed_cidrs")


def worker_read(w: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """The read shape of a worker group; PUT keeps omitted fields (labels too: quirk 7)."""
    old = old or {}
    machine = w.get("machine") or {}
    old_machine = old.get("machine") or {}

    def keep(key: str, default: Any) -> Any:
        return w[key] if key in w else old.get(key, default)

    return {
        "name": w.get("name") or old.get("name"),
        "machine": {"type": machine.get("type") or old_machine.get("type"),
                    "image": {"name": "gardenlinux",
                              "version": machine.get("image_version")
                              or (old_machine.get("image") or {}).get("version") or "1877.19.0"},
                    "architecture": "amd64"},
        "minimum": keep("minimum", 1),
        "maximum": keep("maximum", 3),
        "max_surge": keep("max_surge", 1),
        "max_unavailable": 0,
        "volume": {"size": w.get("volume_size") or (old.get("volume") or {}).get("size") or "50Gi"},
        "zones": sorted(keep("zones", ["nova"])),
        # The API returns these in a normalised (sorted) order, not the caller's.
        "labels": sorted(keep("labels", []), key=lambda kv: kv["key"]),
        "annotations": sorted(keep("annotations", []), key=lambda kv: kv["key"]),
        "taints": sorted(keep("taints", []), key=lambda t: (t["key"], t["effect"])),
    }


def shoot_from_create(b: dict[str, Any], region: str, project: str) -> dict[str, Any]:
    net = b.get("networking") or {}
    infra = b["shoot_provider"]["infrastructure_config"]
    maint = b.get("maintenance") or {}
    cidr = infra.get("workers_network_cidr") or "10.250.0.0/16"
    networks: dict[str, Any] = {"workers": cidr, "id": infra.get("network_id") or "6c1b8a5e-0000-4000-8000-"
                                + secrets.token_hex(6)}
    if infra.get("router_id"):
        networks["router"] = {"id": infra["router_id"]}
    spec: dict[str, Any] = {
        "name": b["name"],
        "namespace": f"garden-{project[:10]}",
        "purpose": "evaluation",
        "region": region.lower(),
        "cloud_profile_name": "cleuracloud",
        "uid": secrets.token_hex(8),
        "technical_id": f"shoot--{project[:10]}--{b['name']}",
        "credentials_binding_name": f"{project}-binding",
        "kubernetes": {"version": b["kubernetes_version"]},
        "maintenance": {
            "auto_update": {"kubernetes_version": True, "machine_image_version": True,
                            **(maint.get("auto_update") or {})},
            "time_window": maint.get("time_window") or {"begin": "030000+0000", "end": "040000+0000"},
        },
        "networking": {"type": net.get("type") or "calico", "nodes": cidr},
        "shoot_provider": {
            "type": "openstack",
            "control_plane_config": {"load_balancer_provider": b["shoot_provider"]["load_balancer_provider"]},
            "infrastructure_config": {"floating_pool_name": infra["floating_pool_name"], "networks": networks},
            "workers": [worker_read(w) for w in b["shoot_provider"]["workers"]],
        },
    }
    if net.get("type") == "cilium":
        spec["networking"]["cilium_provider_config"] = {
            "debug": False, "encryption_enabled": False, "hubble_enabled": False, "policy_audit_mode": False,
            "tunnel": "vxlan", **(net.get("cilium_provider_config") or {})}
    if b.get("allowed_cidrs"):
        spec["allowed_cidrs"] = sorted(b["allowed_cidrs"])
    if b.get("hibernation_schedules"):
        spec["hibernation"] = {"schedules": [dict(s, location="UTC") for s in b["hibernation_schedules"]]}
    if b.get("enable_ha_control_plane"):
        spec["control_plane"] = {"high_availability": {"failure_tolerance": {"type": "node"}}}
    return spec
