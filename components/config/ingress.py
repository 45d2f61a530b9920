"""Config for the ingress controller (Traefik): ``platform:ingress``.

On K3s stacks Traefik's LoadBalancer Service takes a fixed MetalLB address (the target of every
DNS record); on a Gardener shoot the shoot's Octavia load balancer assigns it, so ``address``
is rejected there.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.addons import MetalLB
from components.config.reader import NAMESPACE, Reader, describe
from components.netaddr import DNS_LABEL_RE, IPAddress, parse_ip


@dataclass(frozen=True)
class Ingress:
    enabled: bool = True
    class_name: str = "traefik"
    default_class: bool = True
    address: IPAddress | None = None  # K3s: the MetalLB address of the LoadBalancer Service
    dashboard: bool = False
    replicas: int = 2
    redirect_https: bool = True


def parse_ingress(top: Reader, cluster_kind: str, metallb: MetalLB | None) -> Ingress:
    r = top.obj("ingress")
    enabled = r.boolean("enabled", True)
    class_name = r.string("className", "traefik", pattern=DNS_LABEL_RE.pattern, hint="a DNS-1123 label") or "traefik"
    address: IPAddress | None = None
    text = r.string("address")
    if text is not None:
        address = parse_ip(text)
        if address is None:
            r.error("address", f"{describe(text)} is not an IPv4/IPv6 address")
        elif cluster_kind == "cleura":
            r.error("address", "the shoot's OpenStack load balancer assigns the address on clusterKind 'cleura'; "
                               "remove it")
            address = None
        elif enabled and (metallb is None or not metallb.enabled):
            r.error("address", f"needs MetalLB to announce it; set {NAMESPACE}:metallb.enabled: true or remove it")
        elif enabled and metallb is not None and not any(
            rng.contains(address) for pool in metallb.pools for rng in pool.addresses
        ):
            pools = ", ".join(p.name for p in metallb.pools) or "none"
            r.error("address", f"{address} lies in no {NAMESPACE}:metallb.pools entry (pools: {pools}); add it to a "
                               "pool or pick an address from one")
    ingress = Ingress(
        enabled, class_name, r.boolean("defaultClass", True), address, r.boolean("dashboard", False),
        r.integer("replicas", 2, minimum=1, maximum=10), r.boolean("redirectHttps", True),
    )
    r.finish()
    return ingress
