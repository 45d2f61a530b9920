"""The Cleura shoot spec: field rules, typed dataclasses, API bodies and the stack-config parser.

One source of truth for validation: `SHOOT_FIELDS` (with `cross_check`) backs both
`parse_cleura` (stack YAML, camelCase keys) and the dynamic provider's `check` (snake_case
inputs named like the Terraform provider's `cleura_gardener_shoot` attributes). Everything the
Cleura API is known to reject is rejected here first, with the property named, so a typo fails
`pulumi preview` instead of minute three of `pulumi up`.

Stack YAML convention: the `platform:cleura` object uses the *camelCase* form of every provider
input (`kubernetesVersion`, `shootProvider.infrastructureConfig.floatingPoolName`, ...); the
mapping is mechanical (`schema.camel`), so error paths read the same in both worlds.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components import kubesyntax
from components.gardener.schema import (
    Field,
    Issue,
    Walk,
    is_unknown,
    render_path,
    walk_object,
)
from components.problems import Problems

# --- field rules (pure; each returns an error message or None) -------------------------------

SHOOT_NAME_RE = re.compile(r"^[A-Za-z0-9-]{1,15}$")
WORKER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,15}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+$")
VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
TIME_WINDOW_RE = re.compile(r"^(\d{2})(\d{2})(\d{2})\+(\d{2})(\d{2})$")
VOLUME_SIZE_RE = re.compile(r"^[1-9][0-9]*(Mi|Gi|Ti|M|G|T)$")
GO_DURATION_RE = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
CNI_TYPES = ("calico", "cilium")
CILIUM_TUNNELS = ("vxlan", "geneve", "disabled")
CILIUM_ENCRYPTION_MODES = ("wireguard",)
TAINT_EFFECTS = ("NoSchedule", "NoExecute", "PreferNoSchedule")
CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@reboot")
MIN_KUBECONFIG_SECONDS = 600  # Gardener rejects admin kubeconfig requests shorter than 10 minutes.


def _pattern(regex: re.Pattern[str], what: str) -> Any:
    def rule(value: str) -> str | None:
        return None if regex.fullmatch(value) else f"{describe_str(value)} is not {what}"

    return rule


def _one_of(options: tuple[str, ...]) -> Any:
    def rule(value: str) -> str | None:
        return None if value in options else f"{describe_str(value)} must be one of {', '.join(options)}"

    return rule


def describe_str(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def shoot_name_rule(value: str) -> str | None:
    if SHOOT_NAME_RE.fullmatch(value):
        return None
    if not 1 <= len(value) <= 15:
        return f"{describe_str(value)} must be 1-15 characters (it has {len(value)})"
    return f"{describe_str(value)} may only contain letters, digits and '-'"


def worker_name_rule(value: str) -> str | None:
    if WORKER_NAME_RE.fullmatch(value):
        return None
    if not 1 <= len(value) <= 15:
        return f"{describe_str(value)} must be 1-15 characters (Gardener's worker pool limit)"
    return f"{describe_str(value)} may only contain letters, digits, '_' and '-'"


def cidr_rule(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{describe_str(value)} is not a CIDR such as 203.0.113.0/24"
    return None if "/" in value else f"{describe_str(value)} needs a prefix length, e.g. {value}/32"


def ipv4_cidr_rule(value: str) -> str | None:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return f"{describe_str(value)} is not an IPv4 network such as 10.250.0.0/16"
    return None if "/" in value else f"{describe_str(value)} needs a prefix length"


def uuid_rule(value: str) -> str | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return f"{describe_str(value)} is not a UUID"
    return None


def time_window_rule(value: str) -> str | None:
    m = TIME_WINDOW_RE.fullmatch(value)
    if not m:
        return f"{describe_str(value)} is not HHMMSS+ZZZZ (e.g. 220000+0000)"
    hh, mm, ss, oh, om = (int(g) for g in m.groups())
    if hh > 23 or mm > 59 or ss > 59 or oh > 14 or om > 59:
        return f"{describe_str(value)} is not a valid time of day with a UTC offset"
    return None


def _cron_field_ok(text: str, low: int, high: int, names: tuple[str, ...] = ()) -> bool:
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if base in ("*", "?"):
            continue
        lo_text, dash, hi_text = base.partition("-")
        bounds = []
        for t in (lo_text, hi_text) if dash else (lo_text,):
            if t.isdigit():
                bounds.append(int(t))
            elif t.upper() in names:
                bounds.append(names.index(t.upper()) + (1 if low == 1 else 0))
            else:
                return False
        if any(not low <= b <= high for b in bounds):
            return False
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            return False
    return True


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def cron_problem(value: str, *, extended: bool = True) -> str | None:
    """Why `value` is not a cron schedule as robfig/cron reads it (5 range-checked fields or a descriptor).

    Gardener hibernation schedules (`extended`) also take 6/7-field forms, ``@reboot`` and a
    day-of-week of 7; K3s's ``etcd-snapshot-schedule-cron`` (robfig's standard parser) takes 5
    fields with day-of-week 0-6 and the descriptors (``@daily``, ``@every 6h``, ...).
    """
    text = value.strip()
    if text.startswith("@"):
        if text in CRON_MACROS and (extended or text != "@reboot"):
            return None
        if text.startswith("@every ") and GO_DURATION_RE.fullmatch(text[len("@every "):].strip()):
            return None
        macros = [m for m in CRON_MACROS if extended or m != "@reboot"]
        return f"not a cron descriptor ({', '.join(macros)} or @every <duration>)"
    parts = text.split()
    if len(parts) == 5:
        names = ("minute", "hour", "day of month", "month", "day of week")
        ranges = [(0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, _MONTHS), (0, 7 if extended else 6, _DAYS)]
        for part, name, (lo, hi, labels) in zip(parts, names, ranges, strict=True):
            if not _cron_field_ok(part, lo, hi, labels):
                return f"{name} field {part!r} is out of range ({lo}-{hi}) or malformed"
        return None
    if extended and len(parts) in (6, 7) and all(re.fullmatch(r"[0-9A-Za-z*?,/#LW-]+", p) for p in parts):
        return None
    return f"{len(parts)} fields (expected 5, e.g. '0 20 * * 1-5', or a descriptor like @daily)"


def cron_rule(value: str) -> str | None:
    """Gardener hibernation schedules: 5-field cron (robfig style), 6/7 fields, or a macro."""
    problem = cron_problem(value)
    return f"{describe_str(value)} is not a cron expression: {problem}" if problem else None


def _non_negative(value: int) -> str | None:
    return None if value >= 0 else f"must be >= 0 (got {value})"


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


# --- the schema (snake_case provider inputs; camelCase in stack YAML) ------------------------

def _label_key(value: str) -> str | None:
    return kubesyntax.label_key_problem(value)


def _label_value(value: str) -> str | None:
    return kubesyntax.label_value_problem(value)


def _annotation_key(value: str) -> str | None:
    return kubesyntax.label_key_problem(value, "annotation key")


def _taint_key(value: str) -> str | None:
    return kubesyntax.label_key_problem(value, "taint key")


def _taint_value(value: str) -> str | None:
    return kubesyntax.label_value_problem(value, "taint value") if value else None


# Gardener validates worker labels, annotations and taints with Kubernetes' own rules.
KV_FIELDS: dict[str, Field] = {
    "key": Field("str", required=True, rule=_label_key),
    "value": Field("str", required=True, rule=_label_value),
}
ANNOTATION_FIELDS: dict[str, Field] = {
    "key": Field("str", required=True, rule=_annotation_key),
    "value": Field("str", required=True),
}
TAINT_FIELDS: dict[str, Field] = {
    "key": Field("str", required=True, rule=_taint_key),
    "value": Field("str", rule=_taint_value),
    "effect": Field("str", required=True, rule=_one_of(TAINT_EFFECTS)),
}
WORKER_FIELDS: dict[str, Field] = {
    "name": Field("str", required=True, rule=worker_name_rule),
    "machine": Field("obj", required=True, fields={
        "type": Field("str", required=True, rule=_non_empty),
        "image_name": Field("str", rule=_pattern(TOKEN_RE, "an image name such as gardenlinux")),
        "image_version": Field("str", rule=_pattern(VERSION_RE, "a version such as 1877.19.0")),
    }),
    "minimum": Field("int", rule=_non_negative),
    "maximum": Field("int", rule=_non_negative),
    "max_surge": Field("int", rule=_non_negative),
    "volume_size": Field("str", required=True, rule=_pattern(VOLUME_SIZE_RE, "a size such as 50Gi")),
    "zones": Field("list", item=Field("str", rule=_non_empty)),
    "labels": Field("list", item=Field("obj", fields=KV_FIELDS)),
    "annotations": Field("list", item=Field("obj", fields=ANNOTATION_FIELDS)),
    "taints": Field("list", item=Field("obj", fields=TAINT_FIELDS)),
}
CILIUM_FIELDS: dict[str, Field] = {
    "debug": Field("bool"),
    "encryption_enabled": Field("bool"),
    "encryption_mode": Field("str", rule=_one_of(CILIUM_ENCRYPTION_MODES)),
    "encryption_node_to_node_enabled": Field("bool"),
    "encryption_strict_mode_enabled": Field("bool"),
    "hubble_enabled": Field("bool"),
    "policy_audit_mode": Field("bool"),
    "tunnel": Field("str", rule=_one_of(CILIUM_TUNNELS)),
}
SHOOT_SPEC_FIELDS: dict[str, Field] = {
    "name": Field("str", required=True, rule=shoot_name_rule),
    "cloud": Field("str", rule=_pattern(TOKEN_RE, "a cloud name such as public or compliant")),
    "region": Field("str", required=True, rule=_pattern(TOKEN_RE, "a region tag such as Sto2")),
    "project_id": Field("str", required=True, rule=_pattern(TOKEN_RE, "an OpenStack project id")),
    "kubernetes_version": Field("str", required=True, rule=_pattern(VERSION_RE, "a version such as 1.33.4")),
    "enable_ha_control_plane": Field("bool", default=False),
    "hibernated": Field("bool"),  # desired state; unset: not managed (schedules and the console decide)
    "allowed_cidrs": Field("list", item=Field("str", rule=cidr_rule)),
    "hibernation_schedules": Field("list", item=Field("obj", fields={
        "start": Field("str", required=True, rule=cron_rule),
        "end": Field("str", required=True, rule=cron_rule),
    })),
    "maintenance": Field("obj", fields={
        "auto_update": Field("obj", fields={
            "kubernetes_version": Field("bool"),
            "machine_image_version": Field("bool"),
        }),
        "time_window": Field("obj", fields={
            "begin": Field("str", required=True, rule=time_window_rule),
            "end": Field("str", required=True, rule=time_window_rule),
        }),
    }),
    "networking": Field("obj", fields={
        "type": Field("str", rule=_one_of(CNI_TYPES)),
        "cilium_provider_config": Field("obj", fields=CILIUM_FIELDS),
    }),
    "shoot_provider": Field("obj", required=True, fields={
        "load_balancer_provider": Field("str", required=True,
                                        rule=_pattern(TOKEN_RE, "a load balancer provider such as amphora")),
        "infrastructure_config": Field("obj", required=True, fields={
            "floating_pool_name": Field("str", required=True, rule=_non_empty),
            "network_id": Field("str", rule=uuid_rule),
            "router_id": Field("str", rule=uuid_rule),
            "workers_network_cidr": Field("str", rule=ipv4_cidr_rule),
        }),
        "workers": Field("list", required=True, min_items=1, item=Field("obj", fields=WORKER_FIELDS)),
    }),
}
TIMEOUT_FIELDS: dict[str, Field] = {
    "create": Field("duration"),
    "update": Field("duration"),
    "delete": Field("duration"),
}
# Inputs of the `Shoot` resource: the spec plus behaviour knobs that never reach the API.
SHOOT_INPUT_FIELDS: dict[str, Field] = {
    **SHOOT_SPEC_FIELDS,
    "adopt": Field("adopt", default=False),  # true: record as-is, converge on the next up; observe: record only
    "timeouts": Field("obj", fields=TIMEOUT_FIELDS),
}
# The stack's `platform:cleura` object: shoot inputs plus what the component needs.
CLEURA_CONFIG_FIELDS: dict[str, Field] = {
    **SHOOT_INPUT_FIELDS,
    "kubeconfig_expiration_seconds": Field("int", default=86400),
    "renew_before_expiry_seconds": Field("int", default=43200),
    "bootstrap_project": Field("bool", default=True),
}
KUBECONFIG_INPUT_FIELDS: dict[str, Field] = {
    "cloud": Field("str", rule=_pattern(TOKEN_RE, "a cloud name")),
    "region": Field("str", required=True, rule=_pattern(TOKEN_RE, "a region tag")),
    "project_id": Field("str", required=True, rule=_pattern(TOKEN_RE, "an OpenStack project id")),
    "shoot_name": Field("str", required=True, rule=shoot_name_rule),
    "shoot_uid": Field("str"),
    "shoot_id": Field("str"),  # the Shoot's resource id: known in previews unless the shoot is replaced
    "credential": Field("str", default="exec"),  # how the kubeconfig authenticates (see credential.py)
    "expiration_seconds": Field("int", default=86400),
    "renew_before_expiry_seconds": Field("int", default=0),
}
BOOTSTRAP_INPUT_FIELDS: dict[str, Field] = {
    "cloud": Field("str", rule=_pattern(TOKEN_RE, "a cloud name")),
    "region": Field("str", required=True, rule=_pattern(TOKEN_RE, "a region tag")),
    "project_id": Field("str", required=True, rule=_pattern(TOKEN_RE, "an OpenStack project id")),
}

DEFAULT_TIMEOUT_SECONDS = 3600  # the Terraform provider's fixed 60 minutes, but per operation here


# --- cross-field rules -------------------------------------------------------------------------


def _known(*values: object) -> bool:
    return not any(is_unknown(v) for v in values)


def cross_check_shoot(d: Mapping[str, Any], w: Walk) -> None:
    """Rules spanning several fields; skipped wherever a value is unknown (preview)."""
    net = d.get("networking")
    if isinstance(net, Mapping) and net.get("cilium_provider_config") is not None:
        cni = net.get("type")
        if _known(cni) and cni != "cilium":
            w.error(("networking", "cilium_provider_config"),
                    f"is only valid with networking.type 'cilium' (type is {cni or 'unset, i.e. the default calico'});"
                    " the API answers 409 at apply time")
    maint = d.get("maintenance")
    if isinstance(maint, Mapping) and isinstance(maint.get("time_window"), Mapping):
        tw = maint["time_window"]
        if _known(tw.get("begin"), tw.get("end")) and tw.get("begin") and tw.get("begin") == tw.get("end"):
            w.error(("maintenance", "time_window", "end"), "must differ from begin")
    cidrs = d.get("allowed_cidrs")
    if isinstance(cidrs, list):
        _duplicates(cidrs, lambda c: c, ("allowed_cidrs",), "CIDR", w)
    prov = d.get("shoot_provider")
    workers = prov.get("workers") if isinstance(prov, Mapping) else None
    if not isinstance(workers, list):
        return
    _duplicates(workers, lambda wk: wk.get("name") if isinstance(wk, Mapping) else None,
                ("shoot_provider", "workers"), "worker name", w, leaf="name")
    for i, wk in enumerate(workers):
        if not isinstance(wk, Mapping):
            continue
        path = ("shoot_provider", "workers", i)
        lo, hi, zones = wk.get("minimum"), wk.get("maximum"), wk.get("zones")
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            w.error((*path, "minimum"), f"must be <= maximum ({lo} > {hi})")
        if isinstance(hi, int) and hi < 1:
            w.error((*path, "maximum"), "must be at least 1")
        if wk.get("max_surge") == 0:
            # max_unavailable is read-only in the Cleura API (always 0): Gardener rejects a rolling
            # update that may neither add a node nor take one away.
            w.error((*path, "max_surge"), "is 0 and maxUnavailable is always 0 through the Cleura API: Gardener "
                                          "rejects a worker pool with both zero (it could never roll); use 1")
        if isinstance(hi, int) and isinstance(zones, list) and _known(*zones) and hi < len(zones):
            w.error((*path, "maximum"),
                    f"must be >= the number of zones ({len(zones)}): Gardener needs a node per zone")
        for kind in ("labels", "annotations"):
            items = wk.get(kind)
            if isinstance(items, list):
                _duplicates(items, lambda kv: kv.get("key") if isinstance(kv, Mapping) else None,
                            (*path, kind), "key", w, leaf="key")
        taints = wk.get("taints")
        if isinstance(taints, list):
            _duplicates(taints, lambda t: (t.get("key"), t.get("effect")) if isinstance(t, Mapping) else None,
                        (*path, "taints"), "taint (key, effect)", w, leaf="key")


def _duplicates(items: list[Any], key: Any, path: tuple[str | int, ...], what: str, w: Walk,
                leaf: str | None = None) -> None:
    seen: dict[Any, int] = {}
    for i, item in enumerate(items):
        k = key(item)
        if k is None or is_unknown(k) or (isinstance(k, tuple) and not _known(*k)):
            continue
        if k in seen:
            where = (*path, i, leaf) if leaf else (*path, i)
            w.error(where, f"duplicate {what} {describe_str(k)} (first at index {seen[k]})")
        else:
            seen[k] = i


def cross_check_kubeconfig(d: Mapping[str, Any], w: Walk, exp_key: str = "expiration_seconds") -> None:
    """Lifetime rules shared by `ShootKubeconfig.check` and `parse_cleura` (which names the
    lifetime `kubeconfig_expiration_seconds`)."""
    exp, renew = d.get(exp_key), d.get("renew_before_expiry_seconds")
    if isinstance(exp, int) and exp < MIN_KUBECONFIG_SECONDS:
        w.error((exp_key,), f"must be at least {MIN_KUBECONFIG_SECONDS} seconds (Gardener's minimum), got {exp}")
    if isinstance(renew, int) and renew < 0:
        w.error(("renew_before_expiry_seconds",), f"must be >= 0, got {renew}")
    if isinstance(exp, int) and isinstance(renew, int) and renew >= exp:
        w.error(("renew_before_expiry_seconds",),
                f"must be less than the lifetime ({exp}s), or every run would mint a new kubeconfig")


def validate_shoot_inputs(raw: object, style: str = "snake") -> tuple[dict[str, Any], list[Issue]]:
    """Validate `Shoot` inputs; returns the normalised snake_case dict and every issue found."""
    w = Walk(style="camel" if style == "camel" else "snake")
    d = walk_object(SHOOT_INPUT_FIELDS, raw, (), w)
    cross_check_shoot(d, w)
    return d, w.issues


def validate_kubeconfig_inputs(raw: object) -> tuple[dict[str, Any], list[Issue]]:
    w = Walk()
    d = walk_object(KUBECONFIG_INPUT_FIELDS, raw, (), w)
    cross_check_kubeconfig(d, w)
    return d, w.issues


def validate_bootstrap_inputs(raw: object) -> tuple[dict[str, Any], list[Issue]]:
    w = Walk()
    d = walk_object(BOOTSTRAP_INPUT_FIELDS, raw, (), w)
    return d, w.issues


# --- typed spec ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str | None = None


@dataclass(frozen=True)
class Worker:
    """One worker group; `name` is its identity (groups are matched by name, never position)."""

    name: str
    machine_type: str
    volume_size: str
    image_version: str | None = None
    image_name: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_surge: int | None = None
    zones: tuple[str, ...] | None = None
    labels: tuple[KeyValue, ...] = ()
    annotations: tuple[KeyValue, ...] = ()
    taints: tuple[Taint, ...] = ()


@dataclass(frozen=True)
class HibernationSchedule:
    start: str
    end: str


@dataclass(frozen=True)
class Maintenance:
    auto_update_kubernetes: bool | None = None
    auto_update_machine_image: bool | None = None
    window_begin: str | None = None
    window_end: str | None = None


@dataclass(frozen=True)
class CiliumConfig:
    debug: bool | None = None
    encryption_enabled: bool | None = None
    encryption_mode: str | None = None
    encryption_node_to_node_enabled: bool | None = None
    encryption_strict_mode_enabled: bool | None = None
    hubble_enabled: bool | None = None
    policy_audit_mode: bool | None = None
    tunnel: str | None = None


@dataclass(frozen=True)
class ShootSpec:
    """What the user asked for. `None` means "not managed here": the API default is kept and pinned."""

    name: str
    region: str
    project_id: str
    kubernetes_version: str
    load_balancer_provider: str
    floating_pool_name: str
    workers: tuple[Worker, ...]
    cloud: str | None = None
    enable_ha_control_plane: bool = False
    allowed_cidrs: tuple[str, ...] | None = None
    hibernation_schedules: tuple[HibernationSchedule, ...] | None = None
    maintenance: Maintenance | None = None
    networking_type: str | None = None
    cilium: CiliumConfig | None = None
    network_id: str | None = None
    router_id: str | None = None
    workers_network_cidr: str | None = None
    hibernated: bool | None = None

    def to_inputs(self) -> dict[str, Any]:
        """The snake_case provider inputs (the inverse of `shoot_spec_from_inputs`)."""
        return spec_to_inputs(self)


@dataclass(frozen=True)
class Timeouts:
    """Per-operation deadlines in seconds (custom_timeouts never reach dynamic providers)."""

    create: int = DEFAULT_TIMEOUT_SECONDS
    update: int = DEFAULT_TIMEOUT_SECONDS
    delete: int = DEFAULT_TIMEOUT_SECONDS

    def to_inputs(self) -> dict[str, int]:
        return {"create": self.create, "update": self.update, "delete": self.delete}


@dataclass(frozen=True)
class CleuraConfig:
    """The validated `platform:cleura` stack object, everything `ShootCluster` needs."""

    shoot: ShootSpec
    adopt: bool | str = False  # True, False or "observe"
    timeouts: Timeouts = field(default_factory=Timeouts)
    kubeconfig_expiration_seconds: int = 86400
    renew_before_expiry_seconds: int = 43200
    bootstrap_project: bool = True


def _drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def worker_to_inputs(w: Worker) -> dict[str, Any]:
    return _drop_none({
        "name": w.name,
        "machine": _drop_none({"type": w.machine_type, "image_name": w.image_name, "image_version": w.image_version}),
        "minimum": w.minimum,
        "maximum": w.maximum,
        "max_surge": w.max_surge,
        "volume_size": w.volume_size,
        "zones": list(w.zones) if w.zones is not None else None,
        "labels": [{"key": kv.key, "value": kv.value} for kv in w.labels] or None,
        "annotations": [{"key": kv.key, "value": kv.value} for kv in w.annotations] or None,
        "taints": [_drop_none({"key": t.key, "value": t.value, "effect": t.effect}) for t in w.taints] or None,
    })


def spec_to_inputs(s: ShootSpec) -> dict[str, Any]:
    maintenance = None
    if s.maintenance is not None:
        m = s.maintenance
        auto = _drop_none({"kubernetes_version": m.auto_update_kubernetes,
                           "machine_image_version": m.auto_update_machine_image})
        window = {"begin": m.window_begin, "end": m.window_end} if m.window_begin is not None else None
        maintenance = _drop_none({"auto_update": auto or None, "time_window": window})
    networking = _drop_none({
        "type": s.networking_type,
        "cilium_provider_config": _drop_none(vars(s.cilium)) if s.cilium is not None else None,
    }) or None
    return _drop_none({
        "name": s.name,
        "cloud": s.cloud,
        "region": s.region,
        "project_id": s.project_id,
        "kubernetes_version": s.kubernetes_version,
        "enable_ha_control_plane": s.enable_ha_control_plane,
        "hibernated": s.hibernated,
        "allowed_cidrs": list(s.allowed_cidrs) if s.allowed_cidrs is not None else None,
        "hibernation_schedules": ([{"start": h.start, "end": h.end} for h in s.hibernation_schedules]
                                  if s.hibernation_schedules is not None else None),
        "maintenance": maintenance,
        "networking": networking,
        "shoot_provider": {
            "load_balancer_provider": s.load_balancer_provider,
            "infrastructure_config": _drop_none({
                "floating_pool_name": s.floating_pool_name,
                "network_id": s.network_id,
                "router_id": s.router_id,
                "workers_network_cidr": s.workers_network_cidr,
            }),
            "workers": [worker_to_inputs(w) for w in s.workers],
        },
    })


def worker_from_inputs(d: Mapping[str, Any]) -> Worker:
    machine = d.get("machine") or {}
    zones = d.get("zones")
    return Worker(
        name=d["name"],
        machine_type=machine.get("type", ""),
        image_version=machine.get("image_version"),
        image_name=machine.get("image_name"),
        volume_size=d.get("volume_size", ""),
        minimum=_int_or_none(d.get("minimum")),
        maximum=_int_or_none(d.get("maximum")),
        max_surge=_int_or_none(d.get("max_surge")),
        zones=tuple(zones) if zones is not None else None,
        labels=tuple(KeyValue(kv["key"], kv.get("value", "")) for kv in d.get("labels") or ()),
        annotations=tuple(KeyValue(kv["key"], kv.get("value", "")) for kv in d.get("annotations") or ()),
        taints=tuple(Taint(t["key"], t["effect"], t.get("value")) for t in d.get("taints") or ()),
    )


def _int_or_none(v: object) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return int(v)
    return None


def shoot_spec_from_inputs(d: Mapping[str, Any]) -> ShootSpec:
    """Typed spec from *validated* snake_case inputs (numbers may be floats after gRPC)."""
    prov = d["shoot_provider"]
    infra = prov["infrastructure_config"]
    m = d.get("maintenance")
    maintenance = None
    if m is not None:
        auto = m.get("auto_update") or {}
        tw = m.get("time_window") or {}
        maintenance = Maintenance(
            auto_update_kubernetes=auto.get("kubernetes_version"),
            auto_update_machine_image=auto.get("machine_image_version"),
            window_begin=tw.get("begin"),
            window_end=tw.get("end"),
        )
    net = d.get("networking") or {}
    cil = net.get("cilium_provider_config")
    hib = d.get("hibernation_schedules")
    cidrs = d.get("allowed_cidrs")
    return ShootSpec(
        name=d["name"],
        cloud=d.get("cloud"),
        region=d["region"],
        project_id=d["project_id"],
        kubernetes_version=d["kubernetes_version"],
        enable_ha_control_plane=bool(d.get("enable_ha_control_plane", False)),
        allowed_cidrs=tuple(cidrs) if cidrs is not None else None,
        hibernation_schedules=(tuple(HibernationSchedule(h["start"], h["end"]) for h in hib)
                               if hib is not None else None),
        maintenance=maintenance,
        networking_type=net.get("type"),
        cilium=CiliumConfig(**{k: cil.get(k) for k in CILIUM_FIELDS}) if cil is not None else None,
        load_balancer_provider=prov["load_balancer_provider"],
        floating_pool_name=infra["floating_pool_name"],
        network_id=infra.get("network_id"),
        router_id=infra.get("router_id"),
        workers_network_cidr=infra.get("workers_network_cidr"),
        workers=tuple(worker_from_inputs(w) for w in prov["workers"]),
        hibernated=d.get("hibernated"),
    )


def timeouts_from_inputs(d: Mapping[str, Any] | None) -> Timeouts:
    d = d or {}
    return Timeouts(**{k: int(d[k]) for k in ("create", "update", "delete") if d.get(k) is not None})


# --- API bodies ------------------------------------------------------------------------------------


def worker_body(w: Worker, *, explicit_empty: bool) -> dict[str, Any]:
    """CreateWorker / EditWorker body. A PUT must send `[]` to clear labels/annotations/taints."""
    body: dict[str, Any] = {"name": w.name, "machine": _drop_none({"type": w.machine_type,
                                                                    "image_version": w.image_version})}
    body.update(_drop_none({"minimum": w.minimum, "maximum": w.maximum, "max_surge": w.max_surge,
                            "volume_size": w.volume_size}))
    if w.zones is not None:
        body["zones"] = list(w.zones)
    for key, items in (("labels", w.labels), ("annotations", w.annotations)):
        if items or explicit_empty:
            body[key] = [{"key": kv.key, "value": kv.value} for kv in items]
    if w.taints or explicit_empty:
        body["taints"] = [_drop_none({"key": t.key, "value": t.value, "effect": t.effect}) for t in w.taints]
    return body


def maintenance_body(m: Maintenance) -> dict[str, Any]:
    body: dict[str, Any] = {}
    auto = _drop_none({"kubernetes_version": m.auto_update_kubernetes,
                       "machine_image_version": m.auto_update_machine_image})
    if auto:
        body["auto_update"] = auto
    if m.window_begin is not None and m.window_end is not None:
        body["time_window"] = {"begin": m.window_begin, "end": m.window_end}
    return body


def cilium_body(c: CiliumConfig) -> dict[str, Any]:
    return _drop_none(vars(c))


def create_body(spec: ShootSpec) -> dict[str, Any]:
    """The exact JSON body of `POST /gardener/v2/{cloud}/shoots/{region}/{project}` (CreateShoot).

    Flat snake_case (no v1 `{"shoot": ...}` wrapper); HA only when on; hibernation omitted when
    empty (the API's create model); integers are ints (the API rejects `1.0`).
    """
    body: dict[str, Any] = {"name": spec.name, "kubernetes_version": spec.kubernetes_version}
    if spec.enable_ha_control_plane:
        body["enable_ha_control_plane"] = True
    if spec.allowed_cidrs is not None:
        body["allowed_cidrs"] = list(spec.allowed_cidrs)
    if spec.hibernation_schedules:
        body["hibernation_schedules"] = [{"start": h.start, "end": h.end} for h in spec.hibernation_schedules]
    if spec.maintenance is not None and maintenance_body(spec.maintenance):
        body["maintenance"] = maintenance_body(spec.maintenance)
    networking: dict[str, Any] = {}
    if spec.networking_type is not None:
        networking["type"] = spec.networking_type
    if spec.cilium is not None:
        networking["cilium_provider_config"] = cilium_body(spec.cilium)
    if networking:
        body["networking"] = networking
    body["shoot_provider"] = {
        "load_balancer_provider": spec.load_balancer_provider,
        "infrastructure_config": _drop_none({
            "floating_pool_name": spec.floating_pool_name,
            "network_id": spec.network_id,
            "router_id": spec.router_id,
            "workers_network_cidr": spec.workers_network_cidr,
        }),
        "workers": [worker_body(w, explicit_empty=False) for w in spec.workers],
    }
    return body


def create_body_from_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The create body from a `Shoot` resource's recorded inputs (e.g. under mocks).

    Extra keys (`__provider`, seeded outputs set to None) are ignored; invalid inputs raise
    ValueError listing every issue.
    """
    wanted = {k: v for k, v in inputs.items() if k in SHOOT_INPUT_FIELDS and v is not None}
    d, issues = validate_shoot_inputs(wanted)
    if issues:
        raise ValueError("; ".join(f"{render_path(i.path)}: {i.message}" for i in issues))
    from components.gardener.marker import stamp_create_body

    owner = inputs.get("owner")  # the stack's marker, exactly as the provider's POST carries it
    return stamp_create_body(create_body(shoot_spec_from_inputs(d)), owner if isinstance(owner, str) else None)


def shoot_path(cloud: str, region: str, project_id: str, name: str | None = None) -> str:
    """The v2 shoot collection (or one shoot) path; the only place the v2 layout is spelled."""
    base = f"/gardener/v2/{cloud}/shoots/{region}/{project_id}"
    return f"{base}/{name}" if name else base


# --- stack config -----------------------------------------------------------------------------------


def parse_cleura(raw: object, path: str, problems: Problems) -> CleuraConfig | None:
    """Parse the stack's `platform:cleura` object (camelCase keys) into a `CleuraConfig`.

    Records every problem with its key path (``platform:cleura.shootProvider.workers[1].name``);
    unknown keys get the closest known spelling. Returns None when anything is wrong. The
    rules are the provider's own (`SHOOT_FIELDS`, `cross_check_shoot`): what passes here passes
    `check` at deploy time.
    """
    w = Walk(style="camel")
    if raw is None:
        problems.error(path, "is required when clusterKind is cleura")
        return None
    d = walk_object(CLEURA_CONFIG_FIELDS, raw, (), w)
    cross_check_shoot(d, w)
    cross_check_kubeconfig(d, w, "kubeconfig_expiration_seconds")
    for issue in w.issues:
        problems.error(render_path(issue.path, "camel", path), issue.message)
    name = d.get("name")
    dns_label = r"[a-z][a-z0-9-]*[a-z0-9]|[a-z]"
    if isinstance(name, str) and SHOOT_NAME_RE.fullmatch(name) and not re.fullmatch(dns_label, name):
        problems.warn(f"{path}.name", "Gardener names are DNS labels: prefer lowercase, starting with a letter")
    if w.issues:
        return None
    return CleuraConfig(
        shoot=shoot_spec_from_inputs(d),
        adopt=d.get("adopt", False),
        timeouts=timeouts_from_inputs(d.get("timeouts")),
        kubeconfig_expiration_seconds=int(d["kubeconfig_expiration_seconds"]),
        renew_before_expiry_seconds=int(d["renew_before_expiry_seconds"]),
        bootstrap_project=bool(d["bootstrap_project"]),
    )
