"""Config for the ingress controller (Traefik): ``platform:ingress``.

On K3s stacks Traefik's LoadBalancer Service takes a fixed MetalLB address, the target of
every DNS record: ``address`` when set (it must lie in a MetalLB pool), else the single address
of ``addressPool`` (default: the first MetalLB pool; the homelab's ``ingress-vip-pool`` is
``192.0.2.50/32``). A pool of several addresses is requested by name and MetalLB picks one. On
a Gardener shoot the shoot's Octavia load balancer assigns the address, so both keys are
rejected there.
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
    address_pool: str | None = None  # K3s: the MetalLB pool it comes from
    dashboard: bool = False
    replicas: int = 2
    redirect_https: bool = True


def parse_ingress(top: Reader, cluster_kind: str, metallb: MetalLB | None) -> Ingress:
    r = top.obj("ingress")
    enabled = r.boolean("enabled", True)
    class_name = r.string("className", "traefik", pattern=DNS_LABEL_RE.pattern, hint="a DNS-1123 label") or "traefik"
    text = r.string("address")
    pool_name = r.string("addressPool", pattern=DNS_LABEL_RE.pattern, hint="a MetalLB pool name")
    address = parse_ip(text) if text is not None else None
    if text is not None and address is None:
        r.error("address", f"{describe(text)} is not an IPv4/IPv6 address")
    pools = metallb.pools if metallb is not None and metallb.enabled else ()
    if cluster_kind == "cleura":
        for key in ("address", "addressPool"):
            if r.has(key):
                r.error(key, "the shoot's OpenStack load balancer assigns the address on clusterKind 'cleura'; "
                             "remove it")
        address, pool_name = None, None
    elif enabled and (text is not None or pool_name is not None) and not pools:
        key = "address" if text is not None else "addressPool"
        r.error(key, f"needs a MetalLB pool to announce it; configure {NAMESPACE}:metallb.pools or remove it")
    elif enabled and pools:
        names = ", ".join(p.name for p in pools)
        if pool_name is not None and pool_name not in {p.name for p in pools}:
            r.error("addressPool", f"{pool_name!r} is not a {NAMESPACE}:metallb.pools name (pools: {names})")
        elif address is not None:
            holder = next((p for p in pools for rng in p.addresses if rng.contains(address)), None)
            if holder is None:
                r.error("address", f"{address} lies in no {NAMESPACE}:metallb.pools entry (pools: {names}); add it "
                                   "to a pool or pick an address from one")
            elif pool_name is not None and holder.name != pool_name:
                r.error("address", f"{address} lies in pool {holder.name}, not in addressPool {pool_name}")
            else:
                pool_name = holder.name
        else:
            pool = next(p for p in pools if pool_name in (None, p.name))
            pool_name = pool.name
            if len(pool.addresses) == 1 and pool.addresses[0].first == pool.addresses[0].last:
                address = pool.addresses[0].first  # a one-address pool: that address, fixed
    ingress = Ingress(
        enabled, class_name, r.boolean("defaultClass", True), address, pool_name, r.boolean("dashboard", False),
        r.integer("replicas", 2, minimum=1, maximum=10), r.boolean("redirectHttps", True),
    )
    r.finish()
    return ingress
