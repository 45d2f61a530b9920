"""Config for the cluster network: pod, service and node CIDRs, cluster DNS.

Shared by the K3s cluster (its flags), Calico (its IP pool) and MetalLB (pools may not
overlap it); `components.config.parse_stack_config` composes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.cluster import Node
from components.config.reader import Reader, describe
from components.netaddr import DNS_NAME_RE, IPAddress, IPNetwork, parse_cidr, parse_ip

# kube-apiserver refuses a service range with more than 20 host bits (IPv4 /12, IPv6 /108).
MAX_SERVICE_HOST_BITS = 20
# kube-controller-manager's default --node-cidr-mask-size per family (K3s keeps the defaults).
NODE_CIDR_MASK_SIZE = {4: 24, 6: 64}


@dataclass(frozen=True)
class Network:
    pod_cidr: IPNetwork
    service_cidr: IPNetwork
    node_cidrs: tuple[IPNetwork, ...]
    cluster_domain: str
    cluster_dns: IPAddress



def parse_network(top: Reader, nodes: tuple[Node, ...]) -> Network | None:
    r = top.obj("network")
    cidrs: dict[str, IPNetwork] = {}
    for key, default in (("podCidr", "10.42.0.0/16"), ("serviceCidr", "10.43.0.0/16")):
        text = r.string(key, default)
        net, why = parse_cidr(text)
        if net is None:
            r.error(key, why)
        else:
            cidrs[key] = net
    node_cidrs: list[IPNetwork] = []
    for path, item in r.items("nodeCidrs"):
        net, why = parse_cidr(item)
        if net is None:
            top.problems.error(path, why)
        else:
            node_cidrs.append(net)
    domain = r.string("clusterDomain", "cluster.local")
    assert domain is not None
    if not DNS_NAME_RE.fullmatch(domain):
        r.error("clusterDomain", f"{describe(domain)} is not a DNS name")
    dns_text = r.string("clusterDns")
    r.finish()

    named = [(r.key_path(k), n) for k, n in cidrs.items()] + [
        (f"{r.key_path('nodeCidrs')}[{i}]", n) for i, n in enumerate(node_cidrs)
    ]
    for i, (path_a, a) in enumerate(named):
        for path_b, b in named[i + 1 :]:
            if a.version == b.version and a.overlaps(b):
                top.problems.error(path_b, f"{b} overlaps {path_a} ({a})")
    for node in nodes:
        if node_cidrs and not any(node.address in n for n in node_cidrs):
            top.problems.error(
                r.key_path("nodeCidrs"), f"node {node.name} ({node.address}) lies in none of the node networks"
            )
        for key, net in cidrs.items():
            if node.address in net:
                top.problems.error(r.key_path(key), f"{net} contains node {node.name}'s address {node.address}")
    pod_net = cidrs.get("podCidr")
    if pod_net is not None:
        node_mask = NODE_CIDR_MASK_SIZE[pod_net.version]
        if pod_net.prefixlen > node_mask:
            # kube-controller-manager: "mask size of cluster CIDR must be less than or equal to
            # --node-cidr-mask-size configured for CIDR family"; every node gets a /24 (IPv6 /64).
            r.error("podCidr", f"{pod_net} is smaller than one node's pod range (/{node_mask}, K3s's "
                               "node-cidr-mask-size): kube-controller-manager refuses it; use "
                               f"/{node_mask} or a shorter prefix, e.g. "
                               f"{pod_net.supernet(new_prefix=16 if pod_net.version == 4 else 56)}")
        elif pod_net.version == 6 and node_mask - pod_net.prefixlen > 16:
            r.error("podCidr", f"{pod_net} is too large for kube-controller-manager's IPv6 node ranges (at most 2^16 "
                               f"/{node_mask} subnets): use /{node_mask - 16} or a longer prefix")
    service_net = cidrs.get("serviceCidr")
    if service_net is not None and service_net.max_prefixlen - service_net.prefixlen > MAX_SERVICE_HOST_BITS:
        # kube-apiserver: "specified --service-cluster-ip-range is too large; for 32-bit addresses,
        # the mask must be >= 12" (128-bit: >= 108); K3s would not start.
        smallest = service_net.max_prefixlen - MAX_SERVICE_HOST_BITS
        example = f"{service_net.network_address}/{16 if service_net.version == 4 else 112}"
        r.error("serviceCidr", f"{service_net} is too large for kube-apiserver: the prefix must be /{smallest} or "
                               f"longer (at most 2^{MAX_SERVICE_HOST_BITS} service addresses), e.g. {example}")
    if "podCidr" not in cidrs or "serviceCidr" not in cidrs:
        return None
    service = cidrs["serviceCidr"]
    if not dns_text:
        # The default is the 10th address; a tiny serviceCidr has none (and adding past the
        # end of the address space raises), so say what to set instead of crashing.
        if service.num_addresses <= 10:
            r.error("clusterDns", f"is not set and serviceCidr {service} has no 10th address for the default; "
                                  "use a larger serviceCidr (e.g. /16) or set clusterDns to an address inside it")
            return None
        return Network(cidrs["podCidr"], service, tuple(node_cidrs), domain, service.network_address + 10)
    dns = parse_ip(dns_text)
    if dns is None:
        r.error("clusterDns", f"{describe(dns_text)} is not an IPv4/IPv6 address")
        return None
    if dns not in service:
        r.error("clusterDns", f"{dns} is outside serviceCidr {service}")
    elif dns == service.network_address:
        r.error("clusterDns", f"{dns} is the network address of serviceCidr {service}, which the API server never "
                              f"allocates; use e.g. {service.network_address + 10}")
    elif dns == service.network_address + 1:
        r.error("clusterDns", f"{dns} is the first address of serviceCidr {service}, reserved for the 'kubernetes' "
                              f"API service; use e.g. {service.network_address + 10}")
    elif service.version == 4 and dns == service.broadcast_address:
        r.error("clusterDns", f"{dns} is the broadcast address of serviceCidr {service}, which the API server never "
                              f"allocates; use e.g. {service.network_address + 10}")
    return Network(cidrs["podCidr"], service, tuple(node_cidrs), domain, dns)
