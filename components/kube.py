"""Small shared pieces for the in-cluster components: placement, namespaces, Helm releases.

Placement follows the write-up's tiers (section 18): controllers and other single-purpose
Deployments go to the control tier (nodes labelled ``example.com/role=control``), DaemonSets
(Calico, the MetalLB speaker, the storage node plugins) run on every node and so tolerate every
taint the stack config declares. All functions here are pure except `namespace` and `release`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import Node, Taint
from components.versions import ChartPin

ROLE_LABEL = "example.com/role"
CONTROL_TIER = "control"
WORKER_TIER = "worker"
# Operators and storage node plugins need host access (hostNetwork, hostPath, privileged).
PRIVILEGED_NAMESPACE_LABELS = {
    "pod-security.kubernetes.io/enforce": "privileged",
    "pod-security.kubernetes.io/audit": "privileged",
    "pod-security.kubernetes.io/warn": "privileged",
}
# Ingress and certificates run unprivileged (their charts' defaults meet "restricted").
RESTRICTED_NAMESPACE_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
RELEASE_TIMEOUT_SECONDS = 900
# pulumi-kubernetes: a Job that is not ready (failed) is replaced on the next update, not waited for again.
REPLACE_UNREADY = "pulumi.com/replaceUnready"


@dataclass(frozen=True)
class Placement:
    """Where a workload may run: a nodeSelector and the tolerations it needs there."""

    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)

    def values(self) -> dict[str, Any]:
        """``{nodeSelector, tolerations}`` for a chart component, only the parts that are set."""
        out: dict[str, Any] = {}
        if self.node_selector:
            out["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            out["tolerations"] = [dict(t) for t in self.tolerations]
        return out


def toleration(taint: Taint) -> dict[str, str]:
    """The toleration that matches exactly `taint`."""
    if taint.value:
        return {"key": taint.key, "operator": "Equal", "value": taint.value, "effect": taint.effect}
    return {"key": taint.key, "operator": "Exists", "effect": taint.effect}


def tolerations_for(nodes: Iterable[Node]) -> list[dict[str, str]]:
    """One toleration per distinct taint on `nodes`, in a stable order."""
    seen: dict[tuple[str, str, str], dict[str, str]] = {}
    for node in nodes:
        for taint in node.taints:
            seen.setdefault((taint.key, taint.value, taint.effect), toleration(taint))
    return [seen[k] for k in sorted(seen)]


def tier_nodes(nodes: Iterable[Node], tier: str) -> tuple[Node, ...]:
    return tuple(n for n in nodes if dict(n.labels).get(ROLE_LABEL) == tier)


def control_tier(nodes: Iterable[Node]) -> Placement:
    """Placement on the control tier, or anywhere (no selector) when no node carries the label.

    Selecting a label no node has would leave the pods Pending, so the selector is only set
    when at least one node is in the tier.
    """
    members = tier_nodes(nodes, CONTROL_TIER)
    if not members:
        return Placement()
    return Placement({ROLE_LABEL: CONTROL_TIER}, tolerations_for(members))


def everywhere(nodes: Iterable[Node]) -> Placement:
    """Placement for DaemonSets that must run on every node: no selector, every taint tolerated."""
    return Placement({}, tolerations_for(nodes))


def taint_toleration_setting(nodes: Iterable[Node]) -> str:
    """Every taint in ``kubectl taint`` syntax, ``;``-separated (Longhorn's taintToleration)."""
    return ";".join(
        f"{t['key']}={t['value']}:{t['effect']}" if t.get("value") else f"{t['key']}:{t['effect']}"
        for t in tolerations_for(nodes)
    )


@dataclass(frozen=True)
class ReleaseSpec:
    """Everything that defines one Helm release, as plain data (tested without Pulumi)."""

    name: str
    pin: ChartPin
    namespace: str
    values: dict[str, Any]

    def args(self, namespace: pulumi.Input[str] | None = None) -> k8s.helm.v3.ReleaseArgs:
        chart, repo = self.pin.helm_source()
        return k8s.helm.v3.ReleaseArgs(
            name=self.name,
            chart=chart,
            version=self.pin.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo is not None else None,
            namespace=namespace if namespace is not None else self.namespace,
            create_namespace=False,
            values=self.values,
            # Helm waits for the chart's workloads (and hook Jobs) before the release is done.
            # Not atomic: a rollback would uninstall, which Longhorn refuses without its
            # deleting-confirmation-flag; a failed release is retried by the next `pulumi up`.
            skip_await=False,
            wait_for_jobs=True,
            cleanup_on_fail=True,
            timeout=RELEASE_TIMEOUT_SECONDS,
            max_history=10,
        )


def namespace(resource_name: str, name: str, opts: pulumi.ResourceOptions,
              labels: Mapping[str, str] | None = None) -> k8s.core.v1.Namespace:
    """A namespace for an add-on, privileged for Pod Security admission."""
    return k8s.core.v1.Namespace(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels={**PRIVILEGED_NAMESPACE_LABELS, **(labels or {})}),
        opts=opts,
    )


def release(resource_name: str, spec: ReleaseSpec, ns: k8s.core.v1.Namespace,
            opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    """The Helm release of `spec`, installed into (and after) the namespace `ns`."""
    return k8s.helm.v3.Release(resource_name, args=spec.args(ns.metadata.name), opts=opts)


def ready_when(*outputs: pulumi.Input[Any]) -> pulumi.Output[bool]:
    """An Output[bool] that resolves to True once every one of `outputs` has resolved."""
    return pulumi.Output.all(*outputs).apply(lambda _: True)


def child_options(parent: pulumi.Resource, opts: pulumi.ResourceOptions | None,
                  *after: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options for a component's children: parented, and waiting for what the component waits for.

    Pulumi does not pass a component's ``depends_on`` down to its children, so a component
    that must start after another (MetalLB after the CNI) forwards it here explicitly. The same
    for ``deleted_with`` (the cluster): destroying the cluster then skips every in-cluster
    object instead of deleting each through an API that is about to disappear.
    """
    own = pulumi.ResourceOptions(parent=parent, depends_on=list(after))
    if opts is not None and opts.deleted_with is not None:
        own = own.merge(pulumi.ResourceOptions(deleted_with=opts.deleted_with))
    if opts is None or opts.depends_on is None:
        return own
    return own.merge(pulumi.ResourceOptions(depends_on=opts.depends_on))
