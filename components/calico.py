"""Calico, the CNI of K3s clusters, installed through the Tigera operator.

Order: the CRD chart (server-side apply, as upstream prescribes since v3.32: the Installation
CRD is 1.46 MB), then the operator release, then the operator's custom resources from typed
config. The `Installation` is created here, not by the chart, so that Pulumi waits for its
``Ready`` condition: `Calico.ready` means pod networking works, not merely that the operator
runs. Its IP pool is the K3s cluster CIDR by construction (write-up section 7 caveat).

Skipped when the cluster brings its own CNI (a Gardener shoot runs its own Calico): see
`applies`.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components.config import Calico as CalicoConfig
from components.config import StackConfig
from components.config.addons import calico_runs_bird

NAMESPACE = "tigera-operator"
RELEASE_NAME = "calico"
POOL_NAME = "default-ipv4-ippool"
API_VERSION = "operator.tigera.io/v1"
# containerd on K3s with flannel-backend: none keeps the standard CNI directories.
CNI_BIN_DIR = "/opt/cni/bin"
CNI_CONF_DIR = "/etc/cni/net.d"
INSTALLATION_TIMEOUT = "20m"


def applies(cfg: StackConfig) -> bool:
    """Calico is installed on K3s clusters with ``calico.enabled`` (Gardener brings its own CNI)."""
    return cfg.cluster_kind == "k3s" and cfg.calico is not None and cfg.calico.enabled


def _calico(cfg: StackConfig) -> CalicoConfig:
    if cfg.calico is None or cfg.network is None:
        raise ValueError("Calico needs a K3s stack config (calico and network sections)")
    return cfg.calico


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


def installation_spec(cfg: StackConfig) -> dict[str, Any]:
    """The `Installation` spec (operator.tigera.io/v1) for this stack."""
    calico = _calico(cfg)
    assert cfg.network is not None
    pool: dict[str, Any] = {
        "name": POOL_NAME,
        "cidr": str(cfg.network.pod_cidr),  # equal to the K3s cluster-cidr, never a second value
        "encapsulation": calico.encapsulation,
        "natOutgoing": "Enabled" if calico.nat_outgoing else "Disabled",
        "nodeSelector": "all()",
        "blockSize": calico.block_size,
    }
    network: dict[str, Any] = {
        "bgp": bgp_mode(calico.encapsulation),
        "ipPools": [pool],
        "containerIPForwarding": "Enabled",  # required on K3s (see ../shared k3s notes)
        "nodeAddressAutodetectionV4": node_address_autodetection(calico),
    }
    if calico.mtu:
        network["mtu"] = calico.mtu
    control = kube.control_tier(cfg.nodes)
    candidates = kube.tier_nodes(cfg.nodes, kube.CONTROL_TIER) or cfg.nodes
    spec: dict[str, Any] = {
        "variant": "Calico",
        "cni": {"type": "Calico", "ipam": {"type": "Calico"}, "binDir": CNI_BIN_DIR, "confDir": CNI_CONF_DIR},
        "calicoNetwork": network,
        # Typha and the API server are host-network pods with a fixed port: at most one per node.
        "controlPlaneReplicas": max(1, min(2, len(candidates))),
        # The chart's default too: no Calico CSI driver (only Calico Enterprise policy uses it).
        "kubeletVolumePluginPath": "None",
    }
    if control.node_selector:
        spec["controlPlaneNodeSelector"] = control.node_selector
    if control.tolerations:
        spec["controlPlaneTolerations"] = control.tolerations
    return spec


def custom_resources(cfg: StackConfig) -> list[dict[str, Any]]:
    """The operator's custom resources: Installation and APIServer, Goldmane/Whisker if enabled."""
    calico = _calico(cfg)
    resources: list[dict[str, Any]] = [
        {
            "apiVersion": API_VERSION, "kind": "Installation",
            # Pulumi waits for the operator's Ready condition: pod networking is up.
            "metadata": {"name": "default", "annotations": {"pulumi.com/waitFor": "condition=Ready"}},
            "spec": installation_spec(cfg),
        },
        {"apiVersion": API_VERSION, "kind": "APIServer", "metadata": {"name": "default"}, "spec": {}},
    ]
    if calico.goldmane:
        resources.append({"apiVersion": API_VERSION, "kind": "Goldmane", "metadata": {"name": "default"}, "spec": {}})
    if calico.whisker:
        resources.append({"apiVersion": API_VERSION, "kind": "Whisker", "metadata": {"name": "default"}, "spec": {}})
    return resources


def values(cfg: StackConfig) -> dict[str, Any]:
    """tigera-operator chart values: the operator only; its resources are created by `Calico`."""
    _calico(cfg)
    control = kube.control_tier(cfg.nodes)
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


def release_spec(cfg: StackConfig) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(RELEASE_NAME, cfg.charts["tigeraOperator"], NAMESPACE, values(cfg))


def release_args(cfg: StackConfig) -> k8s.helm.v3.ReleaseArgs:
    return release_spec(cfg).args()


def crds_chart_args(cfg: StackConfig) -> k8s.helm.v4.ChartArgs:
    """The CRD chart, applied server-side (client-side apply cannot carry a 1.46 MB CRD)."""
    pin = cfg.charts["calicoCrds"]
    return k8s.helm.v4.ChartArgs(
        chart=pin.chart, version=pin.version, repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=pin.repo),
    )


class Calico(pulumi.ComponentResource):  # type: ignore[misc]
    """Calico CRDs, the Tigera operator and its resources. `ready` resolves once pod networking works."""

    ready: pulumi.Output[bool]

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:calico:Calico", name, None, opts)
        child = kube.child_options(self, opts)
        crds = k8s.helm.v4.Chart(f"{name}-crds", crds_chart_args(cfg), opts=child)
        ns = kube.namespace(f"{name}-namespace", NAMESPACE, child)
        operator = kube.release(f"{name}-operator", release_spec(cfg), ns, kube.child_options(self, opts, crds))
        created: list[pulumi.Output[Any]] = []
        for resource in custom_resources(cfg):
            kind = resource["kind"].lower()
            extra = (
                pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create=INSTALLATION_TIMEOUT))
                if resource["kind"] == "Installation" else None
            )
            cr = k8s.apiextensions.CustomResource(
                f"{name}-{kind}", api_version=resource["apiVersion"], kind=resource["kind"],
                metadata=resource["metadata"], spec=resource["spec"],
                opts=kube.child_options(self, opts, operator).merge(extra),
            )
            created.append(cr.id)
        self.ready = kube.ready_when(*created)
        self.register_outputs({"ready": self.ready})
