"""CSI volume snapshots on K3s: the snapshot CRDs, the snapshot controller, a VolumeSnapshotClass.

K3s ships neither (a Gardener shoot runs its own), so Longhorn's and OpenEBS's CSI snapshots
need them, as the write-up's bootstrap table lists (``volume-snapshot-crds``, then
``snapshot-controller``). Both come from kubernetes-csi/external-snapshotter at the pinned tag:
the three ``snapshot.storage.k8s.io`` CRDs applied from that tag's files (or from
``platform:manifests.mirror``, an air-gapped site's copy), and the controller's
RBAC and Deployment as that tag's ``deploy/kubernetes/snapshot-controller`` manifests define
them (tests/addons/test_snapshots.py compares the two), placed on the control tier. The
default VolumeSnapshotClass belongs to the stack's CSI driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components.config import Node, StackConfig, Storage
from components.versions import IMAGES, SNAPSHOT_CRD_BASE_URL, SNAPSHOT_CRD_FILE, SNAPSHOT_CRD_PLURALS, ImagePin

NAMESPACE = "kube-system"
NAME = "snapshot-controller"
DEFAULT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class"
# CSI driver and parameters of each storage choice that supports snapshots.
SNAPSHOT_DRIVERS: dict[str, tuple[str, dict[str, str]]] = {
    "longhorn": ("driver.longhorn.io", {"type": "snap"}),  # in-cluster snapshot (not a backup)
    "lvm": ("local.csi.openebs.io", {}),
    "zfs": ("zfs.csi.openebs.io", {}),
    "mayastor": ("io.openebs.csi-mayastor", {}),
}


def applies(cfg: StackConfig) -> bool:
    return cfg.cluster_kind in ("k3s", "existing") and cfg.storage.snapshots


def snapshot_driver(storage: Storage) -> tuple[str, dict[str, str]] | None:
    """The stack's CSI driver with snapshot support, or None (OpenEBS hostpath has none)."""
    if storage.kind == "longhorn":
        return SNAPSHOT_DRIVERS["longhorn"]
    if storage.kind == "openebs" and storage.openebs is not None:
        return SNAPSHOT_DRIVERS.get(storage.openebs.engine)
    return None


@dataclass(frozen=True)
class SnapshotArgs:
    """What the snapshot layer reads: the nodes (placement), the storage choice, the pins."""

    nodes: tuple[Node, ...]
    storage_kind: str
    driver: tuple[str, dict[str, str]] | None
    image: ImagePin
    crd_urls: tuple[str, ...]

    @classmethod
    def from_config(cls, cfg: StackConfig) -> SnapshotArgs:
        # A mirror (an air-gapped site's copy) holds the same files under the same names.
        base = cfg.manifests_mirror or SNAPSHOT_CRD_BASE_URL
        return cls(cfg.nodes, cfg.storage.kind, snapshot_driver(cfg.storage), IMAGES["snapshotController"],
                   tuple(f"{base}/{SNAPSHOT_CRD_FILE.format(plural=p)}" for p in SNAPSHOT_CRD_PLURALS))


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def cluster_role_rules() -> list[dict[str, Any]]:
    """snapshot-controller-runner, as external-snapshotter's rbac-snapshot-controller.yaml."""
    read = ["get", "list", "watch"]
    snap, group = ["snapshot.storage.k8s.io"], ["groupsnapshot.storage.k8s.io"]
    return [
        _rule([""], ["persistentvolumes"], read),
        _rule([""], ["persistentvolumeclaims"], [*read, "update"]),
        _rule([""], ["events"], ["list", "watch", "create", "update", "patch"]),
        _rule(snap, ["volumesnapshotclasses"], read),
        _rule(snap, ["volumesnapshotcontents"], ["create", "get", "list", "watch", "update", "delete", "patch"]),
        _rule(snap, ["volumesnapshotcontents/status"], ["patch"]),
        _rule(snap, ["volumesnapshots"], ["create", "get", "list", "watch", "update", "patch", "delete"]),
        _rule(snap, ["volumesnapshots/status"], ["update", "patch"]),
        _rule(group, ["volumegroupsnapshotclasses"], read),
        _rule(group, ["volumegroupsnapshotcontents"], ["create", "get", "list", "watch", "update", "delete", "patch"]),
        _rule(group, ["volumegroupsnapshotcontents/status"], ["patch"]),
        _rule(group, ["volumegroupsnapshots"], ["get", "list", "watch", "update", "patch"]),
        _rule(group, ["volumegroupsnapshots/status"], ["update", "patch"]),
    ]


def leader_election_rules() -> list[dict[str, Any]]:
    return [_rule(["coordination.k8s.io"], ["leases"], ["get", "watch", "list", "delete", "update", "create"])]


def deployment_spec(args: SnapshotArgs) -> dict[str, Any]:
    """The controller Deployment's spec, as upstream's setup-snapshot-controller.yaml, on the control tier."""
    labels = {"app.kubernetes.io/name": NAME}
    control = kube.control_tier(args.nodes)
    replicas = 2 if len(kube.tier_nodes(args.nodes, kube.CONTROL_TIER) or args.nodes) > 1 else 1
    return {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        # Upstream: longer than the controller's --retry-crd-interval-max (30 s).
        "minReadySeconds": 35,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "serviceAccountName": NAME,
                "containers": [{
                    "name": NAME, "image": args.image.ref, "imagePullPolicy": "IfNotPresent",
                    "args": ["--v=5", "--leader-election=true"],
                }],
                **control.values(),
            },
        },
    }


def snapshot_class(args: SnapshotArgs) -> dict[str, Any] | None:
    """The default VolumeSnapshotClass of the stack's CSI driver (None when it has no snapshots)."""
    if args.driver is None:
        return None
    driver, parameters = args.driver
    out: dict[str, Any] = {
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
        "metadata": {"name": f"{args.storage_kind}-snapshots" if args.storage_kind == "longhorn"
                     else f"openebs-{driver.split('.')[0]}-snapshots",
                     "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "driver": driver,
        "deletionPolicy": "Delete",
    }
    if parameters:
        out["parameters"] = dict(parameters)
    return out


class Snapshots(pulumi.ComponentResource):  # type: ignore[misc]
    """Snapshot CRDs, controller and class. `ready` resolves when all of them exist."""

    ready: pulumi.Output[bool]
    snapshot_class: str | None

    def __init__(self, name: str, args: SnapshotArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:snapshots:Snapshots", name, None, opts)
        crds = [
            k8s.yaml.v2.ConfigFile(f"{name}-crd-{url.rsplit('_', 1)[1].removesuffix('.yaml')}", file=url,
                                   opts=kube.child_options(self, opts))
            for url in args.crd_urls
        ]

        def meta(name_: str, namespaced: bool = True) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=name_, namespace=NAMESPACE if namespaced else None)

        sa = k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=meta(NAME), opts=kube.child_options(self, opts))
        role = k8s.rbac.v1.ClusterRole(f"{name}-runner", metadata=meta(f"{NAME}-runner", False),
                                       rules=cluster_role_rules(), opts=kube.child_options(self, opts))
        binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-runner-binding", metadata=meta(f"{NAME}-role", False),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"{NAME}-runner"},
            subjects=[{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
            opts=kube.child_options(self, opts, sa, role),
        )
        lease_role = k8s.rbac.v1.Role(f"{name}-leaderelection", metadata=meta(f"{NAME}-leaderelection"),
                                      rules=leader_election_rules(), opts=kube.child_options(self, opts))
        lease_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-leaderelection-binding", metadata=meta(f"{NAME}-leaderelection"),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{NAME}-leaderelection"},
            subjects=[{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
            opts=kube.child_options(self, opts, sa, lease_role),
        )
        controller = k8s.apps.v1.Deployment(
            f"{name}-controller", metadata=meta(NAME), spec=deployment_spec(args),
            opts=kube.child_options(self, opts, *crds, binding, lease_binding),
        )
        created: list[pulumi.Output[Any]] = [controller.id]
        manifest = snapshot_class(args)
        self.snapshot_class = manifest["metadata"]["name"] if manifest else None
        if manifest is not None:
            # Top-level driver/deletionPolicy (no spec): applied as a one-object ConfigGroup.
            group = k8s.yaml.v2.ConfigGroup(f"{name}-class-{manifest['metadata']['name']}", objs=[manifest],
                                            opts=kube.child_options(self, opts, *crds))
            created.append(group.resources)
        self.ready = kube.ready_when(*created)
        self.register_outputs({"ready": self.ready, "snapshotClass": self.snapshot_class})
