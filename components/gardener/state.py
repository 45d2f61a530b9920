"""From the API's shoot JSON to Pulumi state, without spurious diffs.

The API answers in its own shape (`volume.size`, `machine.image.version`, labels in normalised
order, defaults filled in). State must instead hold *what the user set*, overwritten only where
the live shoot really differs, so that:

* API-side defaults (a maintenance window Gardener picked, zones, autoscaler bounds) never show
  up as a change the user did not make: unset stays unset;
* out-of-band edits (someone scaled a worker group in the console) do show up in the next
  preview, because the user-set value in state is replaced by the observed one;
* re-ordering by the API is not a change (lists that are sets compare as sets and keep the
  user's order).

All functions are pure and lenient: unknown fields are ignored and missing optionals are None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from components.gardener.marker import MARKER_KEY
from components.gardener.schema import dig


def version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split("."))
    except ValueError:
        return ()


def version_satisfied(desired: str, actual: str) -> bool:
    """True when `actual` is the desired version or newer on the same prefix.

    Gardener's maintenance auto-update raises patch versions on its own; a user pinning
    `1.33.2` must not see a "downgrade to 1.33.2" diff once the shoot runs `1.33.4`.
    """
    d, a = version_tuple(desired), version_tuple(actual)
    if not d or not a:
        return desired == actual
    return a[: len(d)] >= d if len(a) >= len(d) else a >= d[: len(a)]


def _kv_list(items: object) -> list[dict[str, Any]]:
    out = []
    for it in items if isinstance(items, list) else []:
        if isinstance(it, Mapping) and it.get("key") is not None:
            out.append({"key": it["key"], "value": it.get("value") or ""})
    return out


def _taints(items: object) -> list[dict[str, Any]]:
    out = []
    for it in items if isinstance(items, list) else []:
        if isinstance(it, Mapping) and it.get("key") is not None:
            t = {"key": it["key"], "effect": it.get("effect")}
            if it.get("value"):
                t["value"] = it["value"]
            out.append(t)
    return out


def reported_worker(w: Mapping[str, Any]) -> dict[str, Any]:
    """A worker from the API's read shape, in the input shape."""
    machine = dig(w, "machine") or {}
    return {
        "name": w.get("name"),
        "machine": {k: v for k, v in {
            "type": machine.get("type"),
            "image_name": dig(machine, "image", "name"),
            "image_version": dig(machine, "image", "version"),
        }.items() if v is not None},
        "minimum": w.get("minimum"),
        "maximum": w.get("maximum"),
        "max_surge": w.get("max_surge"),
        "volume_size": dig(w, "volume", "size") or w.get("volume_size"),
        "zones": list(w.get("zones") or []),
        "labels": _kv_list(w.get("labels")),
        "annotations": [a for a in _kv_list(w.get("annotations")) if a["key"] != MARKER_KEY],  # ours, not drift
        "taints": _taints(w.get("taints")),
    }


def reported_inputs(shoot: Mapping[str, Any]) -> dict[str, Any]:
    """The shoot as the API reports it, in the input shape (API defaults included)."""
    return {**_reported_spec(shoot), "hibernated": bool(dig(shoot, "status", "is_hibernated"))}


def _reported_spec(shoot: Mapping[str, Any]) -> dict[str, Any]:
    net = shoot.get("networking") or {}
    networks = dig(shoot, "shoot_provider", "infrastructure_config", "networks") or {}
    hib = dig(shoot, "hibernation", "schedules") or []
    maint = shoot.get("maintenance") or {}
    cilium = net.get("cilium_provider_config")
    return {
        "name": shoot.get("name"),
        "kubernetes_version": dig(shoot, "kubernetes", "version"),
        # There is no HA boolean in the read model: `control_plane` exists only when HA is on.
        "enable_ha_control_plane": dig(shoot, "control_plane", "high_availability") is not None,
        "allowed_cidrs": list(shoot.get("allowed_cidrs") or []),
        "hibernation_schedules": [{"start": h.get("start"), "end": h.get("end")} for h in hib
                                  if isinstance(h, Mapping)],
        "maintenance": {
            "auto_update": dict(maint.get("auto_update") or {}),
            "time_window": dict(maint.get("time_window") or {}),
        },
        "networking": {k: v for k, v in {
            "type": net.get("type"),
            "cilium_provider_config": dict(cilium) if isinstance(cilium, Mapping) else None,
        }.items() if v is not None},
        "shoot_provider": {
            "load_balancer_provider": dig(shoot, "shoot_provider", "control_plane_config",
                                           "load_balancer_provider"),
            "infrastructure_config": {k: v for k, v in {
                "floating_pool_name": dig(shoot, "shoot_provider", "infrastructure_config",
                                           "floating_pool_name"),
                "network_id": networks.get("id"),
                "router_id": dig(networks, "router", "id"),
                "workers_network_cidr": networks.get("workers"),
            }.items() if v is not None},
            "workers": [reported_worker(w) for w in dig(shoot, "shoot_provider", "workers") or []
                        if isinstance(w, Mapping)],
        },
    }


def observed_outputs(shoot: Mapping[str, Any]) -> dict[str, Any]:
    """Read-only outputs: status, last operation, versions, profile, node CIDR, the full report."""
    op = shoot.get("last_operation")
    status = shoot.get("status")
    return {
        "cloud_profile_name": shoot.get("cloud_profile_name"),
        "gardener_region": shoot.get("region"),
        "namespace": shoot.get("namespace"),
        "purpose": shoot.get("purpose"),
        "uid": shoot.get("uid"),
        "technical_id": shoot.get("technical_id"),
        "credentials_binding_name": shoot.get("credentials_binding_name"),
        "nodes_cidr": dig(shoot, "networking", "nodes"),
        "current_kubernetes_version": dig(shoot, "kubernetes", "version"),
        "hibernated": bool(dig(status, "is_hibernated")),
        "last_operation": dict(op) if isinstance(op, Mapping) else None,
        "status": dict(status) if isinstance(status, Mapping) else None,
        "reported": reported_inputs(shoot),
    }


OBSERVED_KEYS = tuple(observed_outputs({}).keys())


def _ordered_like(user: Sequence[Any], actual: Sequence[Any], key: Callable[[Any], Any]) -> list[Any]:
    """`actual`'s items, in the user's order first, extras after (API order)."""
    by_key = {key(a): a for a in actual}
    out = [by_key.pop(key(u)) for u in user if key(u) in by_key]
    return out + list(by_key.values())


def _merge_set_list(user: object, actual: object, key: Callable[[Any], Any]) -> Any:
    if user is None:
        return None
    if not isinstance(actual, list) or not isinstance(user, list):
        return user
    return _ordered_like(user, actual, key)


def _merge_leaf(user: object, actual: object) -> object:
    """User-set leaf -> observed value (drift); unset leaf stays unset."""
    if user is None or actual is None:
        return user
    return actual


def _merge_obj(user: object, actual: object) -> Any:
    if not isinstance(user, Mapping):
        return user
    if not isinstance(actual, Mapping):
        return dict(user)
    out: dict[str, Any] = {}
    for k, v in user.items():
        out[k] = _merge_obj(v, actual.get(k)) if isinstance(v, Mapping) else _merge_leaf(v, actual.get(k))
    return out


def _drop_empty_lists(d: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not (k in keys and v == [])}


def merge_worker(user: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": user["name"]}
    out["machine"] = _merge_obj(user.get("machine") or {}, actual.get("machine"))
    um, am = user.get("machine") or {}, actual.get("machine") or {}
    if um.get("image_version") and am.get("image_version") and version_satisfied(um["image_version"],
                                                                                    am["image_version"]):
        out["machine"]["image_version"] = um["image_version"]
    if "image_name" in um:  # not part of the v2 write model: never treated as drift
        out["machine"]["image_name"] = um["image_name"]
    for k in ("minimum", "maximum", "max_surge", "volume_size"):
        if user.get(k) is not None:
            out[k] = _merge_leaf(user.get(k), actual.get(k))
    if user.get("zones") is not None:
        out["zones"] = _merge_set_list(user["zones"], actual.get("zones"), lambda z: z)
    # Omitted labels/annotations/taints mean "none": anything on the live group is drift.
    for k in ("labels", "annotations"):
        out[k] = _ordered_like(user.get(k) or [], actual.get(k) or [], lambda kv: (kv["key"], kv.get("value")))
    out["taints"] = _ordered_like(user.get("taints") or [], actual.get("taints") or [],
                                  lambda t: (t["key"], t.get("effect"), t.get("value")))
    return _drop_empty_lists(out, ("labels", "annotations", "taints"))


def merge_observed(user: Mapping[str, Any], reported: Mapping[str, Any]) -> dict[str, Any]:
    """User inputs with every *user-set* value replaced by the live one (see module docstring)."""
    out = dict(user)
    for k in ("name", "enable_ha_control_plane"):
        if user.get(k) is not None and reported.get(k) is not None:
            out[k] = reported[k]
    uv, av = user.get("kubernetes_version"), reported.get("kubernetes_version")
    if isinstance(uv, str) and isinstance(av, str) and not version_satisfied(uv, av):
        out["kubernetes_version"] = av
    out["allowed_cidrs"] = _merge_set_list(user.get("allowed_cidrs"), reported.get("allowed_cidrs"), lambda c: c)
    out["hibernation_schedules"] = _merge_set_list(
        user.get("hibernation_schedules"), reported.get("hibernation_schedules"),
        lambda h: (h.get("start"), h.get("end")))
    for k in ("maintenance", "networking"):
        if user.get(k) is not None:
            out[k] = _merge_obj(user[k], reported.get(k))
    up, ap = user.get("shoot_provider") or {}, reported.get("shoot_provider") or {}
    prov = dict(up)
    prov["load_balancer_provider"] = _merge_leaf(up.get("load_balancer_provider"), ap.get("load_balancer_provider"))
    prov["infrastructure_config"] = _merge_obj(up.get("infrastructure_config") or {}, ap.get("infrastructure_config"))
    live = {w["name"]: w for w in ap.get("workers") or [] if w.get("name")}
    workers = [merge_worker(w, live.pop(w["name"])) for w in up.get("workers") or [] if w.get("name") in live]
    workers += [_drop_empty_lists(dict(w), ("labels", "annotations", "taints")) for w in live.values()]
    prov["workers"] = workers
    out["shoot_provider"] = prov
    return {k: v for k, v in out.items() if v is not None}


def last_operation_failure(shoot: Mapping[str, Any]) -> str | None:
    """A human summary when the last operation failed (API returns the spec even then)."""
    op = shoot.get("last_operation")
    if not isinstance(op, Mapping) or op.get("state") not in ("Failed", "Error", "Aborted"):
        return None
    errors = [str(e.get("description")) for e in dig(shoot, "status", "last_errors") or []
              if isinstance(e, Mapping) and e.get("description")]
    text = f"{op.get('type')} {op.get('state')}: {op.get('description')}"
    return text + (f" ({'; '.join(errors)})" if errors else "")
