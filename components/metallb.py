"""MetalLB: LoadBalancer addresses for K3s clusters (L2, or BGP when peers are configured).

The chart goes first (its CRDs come with it); the address pools and advertisements are
created after the release, whose Helm wait covers the controller Deployment. That controller
serves the validating webhook the custom resources must pass, and its Service only routes to
Ready pods, so the webhook is reachable once the release is done; the readiness probe's 10 s
initial delay also covers the controller's certificate bootstrap. (Pulumi retries a create
only for a missing CRD, not for a webhook error, so this ordering is what the CRs rely on.)
BGP peers are written as ``metallb.io/v1beta2``.

Clusters with a cloud load balancer (Gardener shoots: OpenStack Octavia) do not get MetalLB;
see `applies`. Address validation (ranges, overlaps with nodes, pod and service networks, L2
pools inside a node subnet, ASNs) lives in the config model.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components.config import AddressPool, StackConfig
from components.config import MetalLB as MetalLBConfig
from components.netaddr import AddressRange

NAMESPACE = "metallb-system"
RELEASE_NAME = "metallb"
API_V1BETA1 = "metallb.io/v1beta1"
API_V1BETA2 = "metallb.io/v1beta2"


def applies(cfg: StackConfig) -> bool:
    """MetalLB runs on K3s clusters that enable it and define at least one pool."""
    return cfg.cluster_kind == "k3s" and cfg.metallb is not None and cfg.metallb.enabled and bool(cfg.metallb.pools)


def _metallb(cfg: StackConfig) -> MetalLBConfig:
    if cfg.metallb is None:
        raise ValueError("MetalLB needs a K3s stack config (metallb section)")
    return cfg.metallb


def address_text(rng: AddressRange) -> str:
    """MetalLB's spelling of a range: a normalised CIDR, or ``first-last``."""
    if "/" in rng.text:
        return str(ipaddress.ip_network(rng.text.strip(), strict=True))
    return f"{rng.first}-{rng.last}"


def _pool(pool: AddressPool) -> dict[str, Any]:
    return {
        "apiVersion": API_V1BETA1, "kind": "IPAddressPool",
        "metadata": {"name": pool.name, "namespace": NAMESPACE},
        "spec": {"addresses": [address_text(r) for r in pool.addresses], "autoAssign": pool.auto_assign},
    }


def custom_resources(cfg: StackConfig) -> list[dict[str, Any]]:
    """Pools first, then their advertisements and the BGP peers (manifests, in creation order)."""
    metallb = _metallb(cfg)
    out = [_pool(p) for p in metallb.pools]
    for pool in metallb.pools:
        if pool.advertise == "l2":
            out.append({
                "apiVersion": API_V1BETA1, "kind": "L2Advertisement",
                "metadata": {"name": f"{pool.name}-l2", "namespace": NAMESPACE},
                "spec": {"ipAddressPools": [pool.name]},
            })
        elif pool.advertise == "bgp":
            out.append({
                "apiVersion": API_V1BETA1, "kind": "BGPAdvertisement",
                "metadata": {"name": f"{pool.name}-bgp", "namespace": NAMESPACE},
                "spec": {"ipAddressPools": [pool.name]},
            })
    for peer in metallb.bgp_peers:
        out.append({
            "apiVersion": API_V1BETA2, "kind": "BGPPeer",
            "metadata": {"name": peer.name, "namespace": NAMESPACE},
            "spec": {"myASN": peer.my_asn, "peerASN": peer.asn, "peerAddress": str(peer.address)},
        })
    return out


def values(cfg: StackConfig) -> dict[str, Any]:
    """metallb chart values: controller on the control tier, speakers on every node."""
    metallb = _metallb(cfg)
    bgp = bool(metallb.bgp_peers)
    speakers = kube.everywhere(cfg.nodes)
    out: dict[str, Any] = {
        "controller": kube.control_tier(cfg.nodes).values(),
        # tolerateMaster (default) covers control-plane taints; the stack's own taints here.
        "speaker": speakers.values(),
        # frr-k8s is the BGP backend: an extra DaemonSet that only BGP needs.
        "frrk8s": {"enabled": bgp},
    }
    if bgp and speakers.tolerations:
        out["frr-k8s"] = {"frrk8s": speakers.values()}
    return {k: v for k, v in out.items() if v}


def release_spec(cfg: StackConfig) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(RELEASE_NAME, cfg.charts["metallb"], NAMESPACE, values(cfg))


def release_args(cfg: StackConfig) -> k8s.helm.v3.ReleaseArgs:
    return release_spec(cfg).args()


def _resource_name(name: str, manifest: dict[str, Any]) -> str:
    return f"{name}-{manifest['kind'].lower()}-{manifest['metadata']['name']}"


class MetalLB(pulumi.ComponentResource):  # type: ignore[misc]
    """MetalLB and its pools. `ready` resolves once every pool, advertisement and peer exists."""

    ready: pulumi.Output[bool]

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:metallb:MetalLB", name, None, opts)
        ns = kube.namespace(f"{name}-namespace", NAMESPACE, kube.child_options(self, opts))
        chart = kube.release(f"{name}-chart", release_spec(cfg), ns, kube.child_options(self, opts))
        pools: list[pulumi.Resource] = []
        created: list[pulumi.Output[Any]] = []
        for manifest in custom_resources(cfg):
            after = [chart] if manifest["kind"] == "IPAddressPool" else [chart, *pools]
            cr = k8s.apiextensions.CustomResource(
                _resource_name(name, manifest), api_version=manifest["apiVersion"], kind=manifest["kind"],
                metadata=manifest["metadata"], spec=manifest["spec"],
                opts=kube.child_options(self, opts, *after),
            )
            if manifest["kind"] == "IPAddressPool":
                pools.append(cr)
            created.append(cr.id)
        self.ready = kube.ready_when(*created)
        self.register_outputs({"ready": self.ready})
