"""Calico, the CNI of K3s clusters, installed through the Tigera operator.

Order: the CRD chart (server-side apply, as upstream prescribes since v3.32: the Installation
CRD is 1.46 MB), then the operator release, then the operator's custom resources from typed
config. The `Installation` is created here, not by the chart, so that Pulumi waits for its
``Ready`` condition: `Calico.ready` means pod networking works, not merely that the operator
runs. Its IP pool is the K3s cluster CIDR by construction (write-up section 7 caveat).

Staying converged: ``calicoNetwork.ipPools`` is an atomic list, and the operator writes back the
fields it defaults (``allowedUses``, ``disableNewAllocations``, ``assignmentMode``; the CRD
defaults ``disableBGPExport``), which makes it a co-owner of the whole list under server-side
apply: updates hit field-manager conflicts and every refresh shows a diff. So the pool declares
each of those fields with the operator's default value (`OPERATOR_POOL_DEFAULTS`).

Placement: ``controlPlaneNodeSelector`` applies to every operator-made Deployment including
Typha, which is host-network (port 5473, one per node) and scaled by the operator with the node
count (3 on 6 nodes): pinned to the 3 control nodes, a drain leaves one Pending. So Typha runs
on any node, and only calico-kube-controllers and the API server are pinned to the control tier.

Skipped when the cluster brings its own CNI (a Gardener shoot runs its own Calico): see
`applies`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components.config import Calico as CalicoConfig
from components.config import Node, StackConfig
from components.config.addons import calico_runs_bird
from components.versions import ChartPin

NAMESPACE = "tigera-operator"
RELEASE_NAME = "calico"
CRDS_RELEASE_NAME = "calico-crds"  # the helm.v4.Chart of the CRDs (its templates do not use it)
POOL_NAME = "default-ipv4-ippool"
API_VERSION = "operator.tigera.io/v1"
# containerd on K3s with flannel-backend: none keeps the standard CNI directories.
CNI_BIN_DIR = "/opt/cni/bin"
CNI_CONF_DIR = "/etc/cni/net.d"
INSTALLATION_TIMEOUT = "20m"
APISERVER_TIMEOUT = "10m"
# What the operator (pkg/controller/installation defaults) and the CRD default on each pool;
# declared so the operator never owns a field of the atomic ipPools list.
OPERATOR_POOL_DEFAULTS: dict[str, Any] = {
    "allowedUses": ["Workload", "Tunnel"],
    "disableBGPExport": False,
    "disableNewAllocations": False,
    "assignmentMode": "Automatic",
}


def applies(cfg: StackConfig) -> bool:
    """Calico is installed on K3s clusters with ``calico.enabled`` (Gardener brings its own CNI)."""
    return cfg.cluster_kind == "k3s" and cfg.calico is not None and cfg.calico.enabled


@dataclass(frozen=True)
class CalicoArgs:
    """Everything Calico reads: its own section, the pod CIDR, the nodes (placement), two chart pins."""

    calico: CalicoConfig
    pod_cidr: str
    nodes: tuple[Node, ...]
    crds_chart: ChartPin
    operator_chart: ChartPin

    @classmethod
    def from_config(cls, cfg: StackConfig) -> CalicoArgs:
        if cfg.calico is None or cfg.network is None:
            raise ValueError("Calico needs a K3s stack config (calico and network sections)")
        return cls(cfg.calico, str(cfg.network.pod_cidr), cfg.nodes, cfg.charts["calicoCrds"],
                   cfg.charts["tigeraOperator"])


def node_address_autodetection(calico: CalicoConfig) -> dict[str, Any]:
    """``nodeAddressAutodetectionV4`` for the configured method."""
    method, value = calico.autodetection_method, calico.autodetection_value
    if method == "firstFound":
        return {"firstFound": True}
    if method == "kubernetes":
        return {"kubernetes": value or "NodeInternalIP"}
    if method == "cidrs":
        return {"cidrs": [v.strip() for v in value.split(",") if v.strip()]}
    return {method: value}


def bgp_mode(encapsulation: str) -> str:
    """VXLAN routes without BIRD; IPIP and unencapsulated pools need BGP to spread routes."""
    return "Enabled" if calico_runs_bird(encapsulation) else "Disabled"


def installation_spec(args: CalicoArgs) -> dict[str, Any]:
    """The `Installation` spec (operator.tigera.io/v1) for this stack."""
    calico = args.calico
    pool: dict[str, Any] = {
        "name": POOL_NAME,
        "cidr": args.pod_cidr,  # equal to the K3s cluster-cidr, never a second value
        "encapsulation": calico.encapsulation,
        "natOutgoing": "Enabled" if calico.nat_outgoing else "Disabled",
        "nodeSelector": "all()",
        "blockSize": calico.block_size,
        **OPERATOR_POOL_DEFAULTS,
    }
    network: dict[str, Any] = {
        "bgp": bgp_mode(calico.encapsulation),
        "ipPools": [pool],
        "containerIPForwarding": "Enabled",  # required on K3s (see ../shared k3s notes)
        "nodeAddressAutodetectionV4": node_address_autodetection(calico),
    }
    if calico.mtu:
        network["mtu"] = calico.mtu
    control = kube.control_tier(args.nodes)
    candidates = kube.tier_nodes(args.nodes, kube.CONTROL_TIER) or args.nodes
    spec: dict[str, Any] = {
        "variant": "Calico",
        "cni": {"type": "Calico", "ipam": {"type": "Calico"}, "binDir": CNI_BIN_DIR, "confDir": CNI_CONF_DIR},
        "calicoNetwork": network,
        # HA replicas of calico-kube-controllers and the API server, no more than the control
        # tier's nodes. Typha's count is the operator's own (it scales with the node count).
        "controlPlaneReplicas": max(1, min(2, len(candidates))),
        # The chart's default too: no Calico CSI driver (only Calico Enterprise policy uses it).
        "kubeletVolumePluginPath": "None",
        # No FlexVolume driver: it would be installed under /usr/libexec/kubernetes on every node,
        # which fails on a read-only /usr, and nothing here uses FlexVolume.
        "flexVolumePath": "None",
    }
    # Not controlPlaneNodeSelector: it would pin host-network Typha to the control tier (module
    # docstring). Typha may run on every node; the controllers stay on the control tier.
    spec.update(_on_control_tier(args, "calicoKubeControllersDeployment"))
    if control.tolerations:
        spec["controlPlaneTolerations"] = control.tolerations
    return spec


def _on_control_tier(args: CalicoArgs, deployment: str) -> dict[str, Any]:
    """``{<deployment>: {spec.template.spec.nodeSelector}}`` for the control tier, or ``{}``."""
    control = kube.control_tier(args.nodes)
    if not control.node_selector:
        return {}
    return {deployment: {"spec": {"template": {"spec": {"nodeSelector": dict(control.node_selector)}}}}}


def apiserver_spec(args: CalicoArgs) -> dict[str, Any]:
    """The `APIServer` spec: its Deployment on the control tier (not host-network)."""
    return _on_control_tier(args, "apiServerDeployment")


def custom_resources(args: CalicoArgs) -> list[dict[str, Any]]:
    """The operator's custom resources: Installation and APIServer, Goldmane/Whisker if enabled."""
    calico = args.calico
    resources: list[dict[str, Any]] = [
        {
            "apiVersion": API_VERSION, "kind": "Installation",
            # Pulumi waits for the operator's Ready condition: pod networking is up.
            "metadata": {"name": "default", "annotations": {"pulumi.com/waitFor": "condition=Ready"}},
            "spec": installation_spec(args),
        },
        {
            "apiVersion": API_VERSION, "kind": "APIServer",
            # Ready once the aggregated projectcalico.org/v3 API serves: later releases that
            # run API discovery (Helm does) would otherwise fail on the unavailable APIService.
            "metadata": {"name": "default", "annotations": {"pulumi.com/waitFor": "condition=Ready"}},
            "spec": apiserver_spec(args),
        },
    ]
    if calico.goldmane:
        resources.append({"apiVersion": API_VERSION, "kind": "Goldmane", "metadata": {"name": "default"},
                          "spec": _on_control_tier(args, "goldmaneDeployment")})
    if calico.whisker:
        resources.append({"apiVersion": API_VERSION, "kind": "Whisker", "metadata": {"name": "default"},
                          "spec": _on_control_tier(args, "whiskerDeployment")})
    return resources


def values(args: CalicoArgs) -> dict[str, Any]:
    """tigera-operator chart values: the operator only; its resources are created by `Calico`."""
    control = kube.control_tier(args.nodes)
    return {
        # Created as Pulumi resources (custom_resources) so readiness can be awaited and each
        # is validated against its CRD; the chart would otherwise create the same objects.
        "installation": {"enabled": False},
        "apiServer": {"enabled": False},
        "goldmane": {"enabled": False},
        "whisker": {"enabled": False},
        # The CRDs belong to the pinned crd.projectcalico.org.v1 chart, not to the operator.
        "manageCRDs": False,
        # The operator runs on the host network before any CNI exists; it tolerates every taint
        # by default, and stays on the control tier when there is one.
        "nodeSelector": {"kubernetes.io/os": "linux", **control.node_selector},
    }


def release_spec(args: CalicoArgs) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(RELEASE_NAME, args.operator_chart, NAMESPACE, values(args))


def release_args(args: CalicoArgs) -> k8s.helm.v3.ReleaseArgs:
    return release_spec(args).args()


def crds_chart_args(args: CalicoArgs) -> k8s.helm.v4.ChartArgs:
    """The CRD chart, applied server-side (client-side apply cannot carry a 1.46 MB CRD)."""
    chart, repo = args.crds_chart.helm_source()
    return k8s.helm.v4.ChartArgs(
        # The release name defaults to the resource name; fixed, like every other release's.
        chart=chart, name=CRDS_RELEASE_NAME, version=args.crds_chart.version,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=repo) if repo is not None else None,
    )


class Calico(pulumi.ComponentResource):  # type: ignore[misc]
    """Calico CRDs, the Tigera operator and its resources.

    `ready` resolves once pod networking works and the ``projectcalico.org/v3`` API serves.
    """

    ready: pulumi.Output[bool]

    def __init__(self, name: str, args: CalicoArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:calico:Calico", name, None, opts)
        child = kube.child_options(self, opts)
        crds = k8s.helm.v4.Chart(f"{name}-crds", crds_chart_args(args), opts=child)
        ns = kube.namespace(f"{name}-namespace", NAMESPACE, child)
        operator = kube.release(f"{name}-operator", release_spec(args), ns, kube.child_options(self, opts, crds))
        timeouts = {"Installation": INSTALLATION_TIMEOUT, "APIServer": APISERVER_TIMEOUT}
        created: list[pulumi.Output[Any]] = []
        for resource in custom_resources(args):
            kind = resource["kind"].lower()
            timeout = timeouts.get(resource["kind"])
            extra = (
                pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout))
                if timeout else None
            )
            cr = k8s.apiextensions.CustomResource(
                f"{name}-{kind}", api_version=resource["apiVersion"], kind=resource["kind"],
                metadata=resource["metadata"], spec=resource["spec"],
                opts=kube.child_options(self, opts, operator).merge(extra),
            )
            created.append(cr.id)
        self.ready = kube.ready_when(*created)
        self.register_outputs({"ready": self.ready})
