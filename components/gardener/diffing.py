"""Pure diff and update planning for shoots.

Two questions, two functions:

* `diff_shoot(olds, news)` answers the engine at preview: what changes, and does it force a
  replacement? It compares the new inputs with the state (`olds`: the user's values as last
  observed, plus `reported`, the API's view). A value the user leaves unset is pinned and never
  diffs, so API defaults cause no spurious changes.
* `plan_update(desired, live)` answers the apply: which calls turn the live shoot into the
  desired one? It compares with a fresh read, so a stale state cannot make it skip or repeat a
  call (the same plan also converges an adopted shoot).

Replacement rules follow the reference's table: name, cloud/region/project, CNI type, HA
true -> false, load-balancer provider, floating pool, and explicitly set network ids replace;
everything else is in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.gardener.schema import contains_unknown, dig, is_unknown
from components.gardener.spec import (
    CILIUM_FIELDS,
    worker_body,
    worker_from_inputs,
)
from components.gardener.state import version_satisfied

IDENTITY_KEYS = ("name", "cloud", "region", "project_id")
META_KEYS = ("adopt", "timeouts")
MAINTENANCE_LEAVES = (
    ("maintenance", "auto_update", "kubernetes_version"),
    ("maintenance", "auto_update", "machine_image_version"),
    ("maintenance", "time_window", "begin"),
    ("maintenance", "time_window", "end"),
)
INFRA = ("shoot_provider", "infrastructure_config")
PINNED_INFRA = ("network_id", "router_id", "workers_network_cidr")


def _first(*values: object) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def _differs(new: object, old: object) -> bool:
    """Unknown new values might differ; numbers compare by value (gRPC turns ints into floats)."""
    if contains_unknown(new):
        return True
    return bool(new != old)


def _as_set(items: object, key: Any) -> frozenset[Any]:
    return frozenset(key(i) for i in items) if isinstance(items, list) else frozenset()


def _kv_key(kv: Mapping[str, Any]) -> tuple[Any, Any]:
    return kv.get("key"), kv.get("value") or ""


def _taint_key(t: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return t.get("key"), t.get("effect"), t.get("value") or None


def _hib_key(h: Mapping[str, Any]) -> tuple[Any, Any]:
    return h.get("start"), h.get("end")


@dataclass(frozen=True)
class ShootDiff:
    """Dotted property paths that change / force replacement; `top_level` feeds the engine."""

    changes: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    delete_before_replace: bool = False

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.replaces)

    @staticmethod
    def top_level(paths: Sequence[str]) -> list[str]:
        return sorted({p.split(".")[0].split("[")[0] for p in paths})


def _worker_field_changes(name: str, new: Mapping[str, Any], old: Mapping[str, Any],
                          rep: Mapping[str, Any]) -> list[str]:
    """In-place differences of one worker group (user-unset fields are pinned)."""
    base = f"shoot_provider.workers[{name}]"
    out = []
    for leaf in ("type", "image_version", "image_name"):
        nv = dig(new, "machine", leaf)
        ov = _first(dig(old, "machine", leaf), dig(rep, "machine", leaf))
        if leaf == "image_version" and isinstance(nv, str) and isinstance(ov, str) and version_satisfied(nv, ov):
            continue  # the live image is this version or an auto-updated newer one
        if nv is not None and _differs(nv, ov):
            out.append(f"{base}.machine.{leaf}")
    for k in ("minimum", "maximum", "max_surge", "volume_size"):
        nv = new.get(k)
        if nv is not None and _differs(nv, _first(old.get(k), rep.get(k))):
            out.append(f"{base}.{k}")
    zones = new.get("zones")
    if zones is not None and (contains_unknown(zones)
                              or set(zones) != set(_first(old.get("zones"), rep.get("zones")) or [])):
        out.append(f"{base}.zones")
    for k, key in (("labels", _kv_key), ("annotations", _kv_key), ("taints", _taint_key)):
        if contains_unknown(new.get(k)) or _as_set(new.get(k) or [], key) != _as_set(old.get(k) or [], key):
            out.append(f"{base}.{k}")
    return out


def diff_shoot(olds: Mapping[str, Any], news: Mapping[str, Any]) -> ShootDiff:
    """What the engine should do with this shoot (see module docstring)."""
    rep: Mapping[str, Any] = olds.get("reported") or {}
    changes: list[str] = []
    replaces: list[str] = []
    for k in IDENTITY_KEYS:
        if _differs(news.get(k), olds.get(k)):
            replaces.append(k)
    if _differs(news.get("kubernetes_version"), olds.get("kubernetes_version")):
        changes.append("kubernetes_version")
    new_ha, old_ha = news.get("enable_ha_control_plane"), bool(olds.get("enable_ha_control_plane"))
    if is_unknown(new_ha) or (old_ha and not new_ha):
        replaces.append("enable_ha_control_plane")
    elif bool(new_ha) != old_ha:
        changes.append("enable_ha_control_plane")
    want_hib = news.get("hibernated")
    if want_hib is not None and _differs(want_hib, bool(olds.get("hibernated"))):
        changes.append("hibernated")
    for k, key in (("allowed_cidrs", lambda c: c), ("hibernation_schedules", _hib_key)):
        nv = news.get(k)
        if nv is None:
            continue
        if contains_unknown(nv) or _as_set(nv, key) != _as_set(_first(olds.get(k), rep.get(k)) or [], key):
            changes.append(k)
    for leaf in MAINTENANCE_LEAVES:
        nv = dig(news, *leaf)
        if nv is not None and _differs(nv, _first(dig(olds, *leaf), dig(rep, *leaf))):
            changes.append(".".join(leaf))
    cni = dig(news, "networking", "type")
    if cni is not None and _differs(cni, _first(dig(olds, "networking", "type"), dig(rep, "networking", "type"))):
        replaces.append("networking.type")
    for k in CILIUM_FIELDS:
        leaf = ("networking", "cilium_provider_config", k)
        nv = dig(news, *leaf)
        if nv is not None and _differs(nv, _first(dig(olds, *leaf), dig(rep, *leaf))):
            changes.append(".".join(leaf))
    for path in (("shoot_provider", "load_balancer_provider"), (*INFRA, "floating_pool_name")):
        if _differs(dig(news, *path), _first(dig(olds, *path), dig(rep, *path))):
            replaces.append(".".join(path))
    for k in PINNED_INFRA:
        nv = dig(news, *INFRA, k)
        if nv is not None and _differs(nv, _first(dig(olds, *INFRA, k), dig(rep, *INFRA, k))):
            replaces.append(".".join((*INFRA, k)))
    changes += _workers_diff(news, olds, rep)
    for k in META_KEYS:
        if _differs(news.get(k), olds.get(k)) and not (k == "adopt" and not news.get(k) and not olds.get(k)):
            changes.append(k)
    same_name = not _differs(news.get("name"), olds.get("name"))
    return ShootDiff(tuple(changes), tuple(replaces), delete_before_replace=bool(replaces) and same_name)


def _workers_diff(news: Mapping[str, Any], olds: Mapping[str, Any], rep: Mapping[str, Any]) -> list[str]:
    new_workers = dig(news, "shoot_provider", "workers")
    if contains_unknown(new_workers):
        return ["shoot_provider.workers"]
    new_by = {w["name"]: w for w in new_workers or [] if isinstance(w, Mapping)}
    old_by = {w["name"]: w for w in dig(olds, "shoot_provider", "workers") or [] if isinstance(w, Mapping)}
    rep_by = {w["name"]: w for w in dig(rep, "shoot_provider", "workers") or [] if isinstance(w, Mapping)}
    out = [f"shoot_provider.workers[{n}] (added)" for n in new_by if n not in old_by]
    out += [f"shoot_provider.workers[{n}] (removed)" for n in old_by if n not in new_by]
    for n, w in new_by.items():
        if n in old_by:
            out += _worker_field_changes(n, w, old_by[n], rep_by.get(n, {}))
    return out


# --- apply-time planning -----------------------------------------------------------------------


@dataclass(frozen=True)
class UpdatePlan:
    """The API calls that turn the live shoot into the desired one, in order of execution."""

    patch: dict[str, Any] = field(default_factory=dict)
    enable_ha: bool = False
    create_workers: tuple[dict[str, Any], ...] = ()
    update_workers: tuple[dict[str, Any], ...] = ()
    delete_workers: tuple[str, ...] = ()
    hibernate: bool | None = None  # True: hibernate (last), False: wake up (first), None: leave

    @property
    def empty(self) -> bool:
        return not (self.patch or self.enable_ha or self.create_workers or self.update_workers
                    or self.delete_workers or self.hibernate is not None)

    def describe(self) -> list[str]:
        steps = []
        if self.hibernate is False:
            steps.append("wake up")
        if self.patch:
            steps.append(f"PATCH shoot ({', '.join(sorted(self.patch))})")
        if self.enable_ha:
            steps.append("enable HA control plane")
        steps += [f"add worker group {w['name']}" for w in self.create_workers]
        steps += [f"update worker group {w['name']}" for w in self.update_workers]
        steps += [f"remove worker group {n}" for n in self.delete_workers]
        if self.hibernate:
            steps.append("hibernate")
        return steps


def immutable_conflicts(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Replace-only fields where the live shoot differs from the desired one (adopt refuses these)."""
    out = []
    cni = dig(desired, "networking", "type")
    if cni is not None and cni != dig(live, "networking", "type"):
        out.append(f"networking.type (live {dig(live, 'networking', 'type')!r}, wanted {cni!r})")
    for path in (("shoot_provider", "load_balancer_provider"), (*INFRA, "floating_pool_name"),
                 *((*INFRA, k) for k in PINNED_INFRA)):
        want = dig(desired, *path)
        if want is not None and want != dig(live, *path):
            out.append(f"{'.'.join(path)} (live {dig(live, *path)!r}, wanted {want!r})")
    if live.get("enable_ha_control_plane") and not desired.get("enable_ha_control_plane"):
        out.append("enable_ha_control_plane (live true, wanted false: HA cannot be disabled)")
    return out


def _pinned_worker(desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The desired group with user-unset fields taken from the live group, for a full PUT."""
    merged = dict(desired)
    machine = dict(desired.get("machine") or {})
    for leaf in ("type", "image_version"):
        if machine.get(leaf) is None and dig(live, "machine", leaf) is not None:
            machine[leaf] = dig(live, "machine", leaf)
    if (machine.get("image_version") and dig(live, "machine", "image_version")
            and version_satisfied(machine["image_version"], dig(live, "machine", "image_version"))):
        machine["image_version"] = dig(live, "machine", "image_version")  # never downgrade an auto-update
    merged["machine"] = machine
    for k in ("minimum", "maximum", "max_surge", "volume_size", "zones"):
        if merged.get(k) is None and live.get(k) is not None:
            merged[k] = live[k]
    return merged


def _worker_needs_update(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    return bool(_worker_field_changes(str(desired.get("name")), desired, live, {}))


def plan_update(desired: Mapping[str, Any], live: Mapping[str, Any]) -> UpdatePlan:
    """Calls to converge `live` (reported inputs from a fresh GET) onto `desired` (checked inputs)."""
    patch: dict[str, Any] = {}
    want_version, live_version = desired.get("kubernetes_version"), live.get("kubernetes_version")
    if want_version and live_version and not version_satisfied(want_version, live_version):
        patch["kubernetes"] = want_version  # PATCH spells it `kubernetes`, create `kubernetes_version`
    if desired.get("allowed_cidrs") is not None and set(desired["allowed_cidrs"]) != set(live.get("allowed_cidrs")
                                                                                           or []):
        patch["allowed_cidrs"] = list(desired["allowed_cidrs"])
    hib = desired.get("hibernation_schedules")
    if hib is not None and _as_set(hib, _hib_key) != _as_set(live.get("hibernation_schedules") or [], _hib_key):
        patch["hibernation_schedules"] = [{"start": h["start"], "end": h["end"]} for h in hib]  # [] clears
    maintenance: dict[str, Any] = {}
    want_auto, live_auto = dig(desired, "maintenance", "auto_update") or {}, dig(live, "maintenance",
                                                                                   "auto_update") or {}
    if any(v is not None and v != live_auto.get(k) for k, v in want_auto.items()):
        maintenance["auto_update"] = {**live_auto, **{k: v for k, v in want_auto.items() if v is not None}}
    want_tw = dig(desired, "maintenance", "time_window")
    if want_tw and (want_tw.get("begin"), want_tw.get("end")) != (
            dig(live, "maintenance", "time_window", "begin"), dig(live, "maintenance", "time_window", "end")):
        maintenance["time_window"] = {"begin": want_tw["begin"], "end": want_tw["end"]}
    if maintenance:
        patch["maintenance"] = maintenance  # only the sub-blocks we change (reference quirk 8)
    want_cil = dig(desired, "networking", "cilium_provider_config")
    live_cil = dig(live, "networking", "cilium_provider_config") or {}
    if want_cil and any(v is not None and v != live_cil.get(k) for k, v in want_cil.items()):
        full = {k: v for k, v in {**live_cil, **want_cil}.items() if k in CILIUM_FIELDS and v is not None}
        patch["networking"] = {"cilium_provider_config": full}
    enable_ha = bool(desired.get("enable_ha_control_plane")) and not live.get("enable_ha_control_plane")

    live_by = {w["name"]: w for w in dig(live, "shoot_provider", "workers") or []}
    want = [w for w in dig(desired, "shoot_provider", "workers") or []]
    creates = tuple(worker_body(worker_from_inputs(w), explicit_empty=False) for w in want
                    if w["name"] not in live_by)
    updates = tuple(worker_body(worker_from_inputs(_pinned_worker(w, live_by[w["name"]])), explicit_empty=True)
                    for w in want if w["name"] in live_by and _worker_needs_update(w, live_by[w["name"]]))
    wanted_names = {w["name"] for w in want}
    deletes = tuple(n for n in live_by if n not in wanted_names)
    want_hib = desired.get("hibernated")
    hibernate = None if want_hib is None or bool(want_hib) == bool(live.get("hibernated")) else bool(want_hib)
    return UpdatePlan(patch, enable_ha, creates, updates, deletes, hibernate)
