"""Config for the platform's Vault (``platform:vault``): HA on Raft, auto-unsealed by a Transit Vault.

`parse_vault` records every problem with its key path and returns a frozen `Vault`; the
component (`components.vault`) turns it into typed `VaultArgs`. The chart version is
``platform:versions.charts.vault`` (default in `components.versions`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.config.cluster import LABEL_KEY_RE, LABEL_VALUE_RE, Node
from components.config.reader import Reader, describe
from components.netaddr import DNS_LABEL_RE, DNS_NAME_RE

# The homelab's control tier (write-up section 18); `components.kube.CONTROL_TIER` spells the same.
CONTROL_TIER_LABEL = ("example.com/role", "control")
QUANTITY_RE = r"\d+(\.\d+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?"
STORAGE_SIZE_RE = r"\d+(Ki|Mi|Gi|Ti)"
TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"memory": "512Mi"},
}


Pairs = tuple[tuple[str, Any], ...]  # a frozen mapping (StackConfig stays hashable)


def _pairs(mapping: Mapping[str, Any]) -> Pairs:
    return tuple(sorted((k, _pairs(v) if isinstance(v, Mapping) else v) for k, v in mapping.items()))


def _unpair(pairs: Pairs) -> dict[str, Any]:
    return {k: _unpair(v) if isinstance(v, tuple) else v for k, v in pairs}


@dataclass(frozen=True)
class Vault:
    """``platform:vault``. `node_selector`/`tolerations` None: the default placement for the kind."""

    enabled: bool = True
    namespace: str = "vault-core"
    replicas: int = 3
    dev: bool = False
    storage_size: str = "10Gi"
    storage_class: str | None = None  # None: the stack's default StorageClass
    transit_storage_size: str = "1Gi"
    resource_pairs: Pairs = field(default_factory=lambda: _pairs(DEFAULT_RESOURCES))
    node_selector_pairs: Pairs | None = None
    toleration_pairs: tuple[Pairs, ...] | None = None
    injector: bool = False
    ui_host: str | None = None
    ui_ingress_class: str | None = None

    @property
    def resources(self) -> dict[str, dict[str, str]]:
        return _unpair(self.resource_pairs)

    @property
    def node_selector(self) -> dict[str, str] | None:
        return None if self.node_selector_pairs is None else _unpair(self.node_selector_pairs)

    @property
    def tolerations(self) -> list[dict[str, Any]] | None:
        return None if self.toleration_pairs is None else [_unpair(t) for t in self.toleration_pairs]


def _resources(r: Reader, key: str) -> dict[str, dict[str, str]]:
    if not r.has(key):
        r.raw(key)
        return {k: dict(v) for k, v in DEFAULT_RESOURCES.items()}
    res = r.obj(key)
    out: dict[str, dict[str, str]] = {}
    for part in ("requests", "limits"):
        values = res.string_map(part)
        for name, quantity in values.items():
            if name not in ("cpu", "memory"):
                res.problems.error(f"{res.key_path(part)}.{name}", "unknown resource (expected cpu or memory)")
            elif not re.fullmatch(QUANTITY_RE, quantity):
                res.problems.error(f"{res.key_path(part)}.{name}",
                                   f"{describe(quantity)} is not a Kubernetes quantity (e.g. 250m, 512Mi)")
        if values:
            out[part] = values
    res.finish()
    return out


def _tolerations(r: Reader, key: str) -> tuple[dict[str, Any], ...] | None:
    if not r.has(key):
        r.raw(key)
        return None
    out: list[dict[str, Any]] = []
    for path, item in r.items(key):
        t = Reader(item, path, r.problems)
        tol: dict[str, Any] = {}
        for name in TOLERATION_KEYS:
            if name == "tolerationSeconds":
                if t.has(name):
                    tol[name] = t.integer(name, 0, minimum=0)
                continue
            value = t.string(name)
            if value is not None:
                tol[name] = value
        if tol.get("operator", "Equal") not in ("Equal", "Exists"):
            t.error("operator", f"{describe(tol['operator'])} is not one of Equal, Exists")
        if "effect" in tol and tol["effect"] not in TOLERATION_EFFECTS:
            t.error("effect", f"{describe(tol['effect'])} is not one of {', '.join(TOLERATION_EFFECTS)}")
        if "key" not in tol and tol.get("operator") != "Exists":
            t.error("key", "is required unless operator is Exists")
        t.finish()
        out.append(tol)
    return tuple(out)


def parse_vault(top: Reader, cluster_kind: str, nodes: tuple[Node, ...]) -> Vault:
    """``platform:vault`` (see the README's config reference)."""
    v = top.obj("vault")
    enabled = v.boolean("enabled", True)
    namespace = v.string("namespace", "vault-core", pattern=DNS_LABEL_RE.pattern, hint="a DNS-1123 label")
    dev = v.boolean("dev", False)
    replicas = v.integer("replicas", 3, minimum=1, maximum=9)
    if replicas == 1 and not dev:
        v.error("replicas", "1 replica has no failover and loses quorum with its node; use 3 or 5, or set "
                            f"{v.key_path('dev')}: true for a throwaway dev stack")
    elif replicas == 1:
        top.problems.warn(v.key_path("replicas"), "1 replica (dev: true): no failover, no Raft quorum to lose")
    elif replicas < 3 or replicas % 2 == 0:
        v.error("replicas", f"{replicas} is not an odd number >= 3 (Raft needs a majority: {replicas} replicas "
                            f"tolerate {(replicas - 1) // 2} failure(s)); use 3 or 5")
    size = v.string("storageSize", "10Gi", pattern=STORAGE_SIZE_RE, hint="a size like 10Gi") or "10Gi"
    transit_size = v.string("transitStorageSize", "1Gi", pattern=STORAGE_SIZE_RE, hint="a size like 1Gi") or "1Gi"
    storage_class = v.string("storageClass", pattern=DNS_NAME_RE.pattern, hint="a StorageClass name")
    resources = _resources(v, "resources")
    node_selector: dict[str, str] | None = None
    if v.has("nodeSelector"):
        node_selector = v.string_map("nodeSelector")
        for key, value in node_selector.items():
            if not re.fullmatch(LABEL_KEY_RE, key) or not re.fullmatch(LABEL_VALUE_RE, value):
                v.problems.error(f"{v.key_path('nodeSelector')}.{key}",
                                 f"{describe(key)}={describe(value)} is not a valid label selector")
    else:
        v.raw("nodeSelector")
    tolerations = _tolerations(v, "tolerations")
    injector = v.boolean("injector", False)
    ui = v.obj("ui")
    ui_host = ui.string("host", pattern=DNS_NAME_RE.pattern, hint="a DNS name")
    ui_class = ui.string("ingressClassName", pattern=DNS_LABEL_RE.pattern, hint="an IngressClass name")
    if ui_class and not ui_host:
        ui.error("ingressClassName", f"has no effect without {ui.key_path('host')}")
    ui.finish()
    v.finish()

    if enabled and cluster_kind == "k3s" and nodes:
        selector = node_selector if node_selector is not None else _default_selector(nodes)
        eligible = [n for n in nodes if all(dict(n.labels).get(k) == val for k, val in selector.items())]
        if len(eligible) < replicas:
            where = (f"{v.key_path('nodeSelector')} {selector}" if node_selector is not None
                     else "the control tier (example.com/role=control)" if selector else "the cluster")
            message = (f"{replicas} replicas need {replicas} nodes (one replica per node), but {where} has "
                       f"{len(eligible)}; lower replicas (1 needs dev: true), widen the selector, or set "
                       f"{v.key_path('enabled')}: false")
            if v.has("replicas") or v.has("nodeSelector"):
                v.error("replicas", message)
            else:
                # The default on a small cluster: said loudly, but not fatal (enabled by default).
                top.problems.warn(v.key_path("replicas"), message + "; the HA pods would stay Pending")
    return Vault(enabled, namespace or "vault-core", replicas, dev, size, storage_class, transit_size,
                 _pairs(resources), None if node_selector is None else _pairs(node_selector),
                 None if tolerations is None else tuple(_pairs(t) for t in tolerations), injector, ui_host, ui_class)


def _default_selector(nodes: tuple[Node, ...]) -> Mapping[str, str]:
    key, value = CONTROL_TIER_LABEL
    return {key: value} if any(dict(n.labels).get(key) == value for n in nodes) else {}


__all__ = ["CONTROL_TIER_LABEL", "DEFAULT_RESOURCES", "Vault", "parse_vault"]
