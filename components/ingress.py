"""Traefik: the cluster's ingress controller and the target of every DNS record.

On K3s stacks (whose bundled Traefik is disabled) the chart's LoadBalancer Service takes the
configured MetalLB address (``ingress.address``, or the single address of ``ingress.addressPool``,
by default the first pool: MetalLB's ``metallb.io/loadBalancerIPs`` annotation), so the ingress
VIP of the write-up is claimed by Traefik. On a Gardener shoot the
same Service gets the Octavia load balancer the shoot provides. The dashboard is off unless
configured; plain HTTP is redirected to HTTPS permanently. The IngressClass is named in config
(`PlatformLayer.ingress_class`), for the UI ingresses of Vault and Argo CD.

Switched off with ``platform:ingress.enabled: false``; see `applies`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import kube
from components.config import Ingress, Node, StackConfig
from components.versions import ChartPin

NAMESPACE = "traefik"
RELEASE_NAME = "traefik"
METALLB_ADDRESS_ANNOTATION = "metallb.io/loadBalancerIPs"
METALLB_POOL_ANNOTATION = "metallb.io/address-pool"


def applies(cfg: StackConfig) -> bool:
    return cfg.ingress.enabled


@dataclass(frozen=True)
class IngressArgs:
    """Everything Traefik reads: its section, the cluster kind, the nodes (placement), its chart."""

    ingress: Ingress
    cluster_kind: str
    nodes: tuple[Node, ...]
    chart: ChartPin

    @classmethod
    def from_config(cls, cfg: StackConfig) -> IngressArgs:
        return cls(cfg.ingress, cfg.cluster_kind, cfg.nodes, cfg.charts["traefik"])


def service_values(args: IngressArgs) -> dict[str, Any]:
    """The LoadBalancer Service: the MetalLB address on K3s, the shoot's Octavia LB on Gardener."""
    service: dict[str, Any] = {"enabled": True, "spec": {"type": "LoadBalancer"}}
    if args.ingress.address is not None:
        service["annotations"] = {METALLB_ADDRESS_ANNOTATION: str(args.ingress.address)}
    elif args.ingress.address_pool is not None:
        service["annotations"] = {METALLB_POOL_ANNOTATION: args.ingress.address_pool}
    return service


def values(args: IngressArgs) -> dict[str, Any]:
    """traefik chart values (41.x: Traefik v3)."""
    ingress = args.ingress
    out: dict[str, Any] = {
        "deployment": {"replicas": ingress.replicas},
        "ingressClass": {"enabled": True, "isDefaultClass": ingress.default_class, "name": ingress.class_name},
        "providers": {"kubernetesIngress": {"ingressClass": ingress.class_name}},
        "ingressRoute": {"dashboard": {"enabled": ingress.dashboard}},
        "service": service_values(args),
    }
    if ingress.redirect_https:
        out["ports"] = {"web": {
            "http": {"redirections": {"entryPoint": {"to": "websecure", "scheme": "https", "permanent": True}}},
            # ACME HTTP-01 challenges (cert-manager's solver ingress) are answered on plain HTTP,
            # before the redirect.
            "allowACMEByPass": True,
        }}
    if ingress.replicas > 1:
        # A drain keeps one Traefik serving.
        out["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1}
    tolerations = kube.everywhere(args.nodes).tolerations if args.cluster_kind == "k3s" else []
    if tolerations:
        out["tolerations"] = tolerations
    return out


def release_spec(args: IngressArgs) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(RELEASE_NAME, args.chart, NAMESPACE, values(args))


class Traefik(pulumi.ComponentResource):  # type: ignore[misc]
    """Traefik from its pinned chart. `ready` resolves when the release (and its Service) is deployed."""

    ready: pulumi.Output[bool]
    ingress_class: str

    def __init__(self, name: str, args: IngressArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:ingress:Traefik", name, None, opts)
        self.ingress_class = args.ingress.class_name
        ns = kube.namespace(f"{name}-namespace", NAMESPACE, kube.child_options(self, opts),
                            kube.RESTRICTED_NAMESPACE_LABELS)
        chart = kube.release(f"{name}-chart", release_spec(args), ns, kube.child_options(self, opts))
        self.ready = kube.ready_when(chart.status)
        self.register_outputs({"ready": self.ready, "ingressClass": self.ingress_class})
