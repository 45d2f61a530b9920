"""Stack configuration, parsed once into frozen, typed objects.

`load_stack_config()` reads every ``platform:*`` key the engine handed the program and
returns a `StackConfig`, or raises one `ConfigError` listing every problem with its key
path. Nothing is registered before this returns, so a bad config never half-applies.
Components receive these objects; none of them reads `pulumi.Config` itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from components import versions
from components.config_reader import Reader, describe, suggest
from components.netaddr import (
    DNS_LABEL_RE,
    DNS_NAME_RE,
    AddressRange,
    IPAddress,
    IPNetwork,
    network_range,
    parse_cidr,
    parse_ip,
    parse_range,
)
from components.problems import ConfigError, Problems

NAMESPACE = "platform"
K3S_VERSION_RE = r"v\d+\.\d+\.\d+\+k3s\d+"
CHART_VERSION_RE = r"v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?"
# Kubernetes label keys: optional DNS-subdomain prefix, then a name of at most 63 characters.
LABEL_KEY_RE = re.compile(
    r"(([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
LABEL_VALUE_RE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
TAINT_RE = re.compile(r"(?P<key>[^=:]+)(=(?P<value>[^:]*))?:(?P<effect>NoSchedule|PreferNoSchedule|NoExecute)")
INTERFACE_RE = r"[A-Za-z0-9_.:-]{1,15}"


class Secret:
    """A secret config value. Its text never appears in repr, logs or error messages."""

    __slots__ = ("_value", "key")

    def __init__(self, key: str, value: str) -> None:
        self.key = key
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.key, self._value) == (other.key, other._value)

    def __hash__(self) -> int:
        return hash(self.key)


def secret_command(key: str, example: str = "<value>") -> str:
    return f"pulumi config set --secret {NAMESPACE}:{key} {example}"


# ---------------------------------------------------------------------------------------
# Typed sections
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


@dataclass(frozen=True)
class Node:
    """One existing Linux host. `role` server runs etcd and the control plane."""

    name: str
    address: IPAddress
    role: Literal["server", "agent"]
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[Taint, ...] = ()
    storage: bool = True  # carries storage disks (Longhorn disk / Mayastor pool)
    ssh_user: str | None = None
    ssh_port: int | None = None


@dataclass(frozen=True)
class Network:
    pod_cidr: IPNetwork
    service_cidr: IPNetwork
    node_cidrs: tuple[IPNetwork, ...]
    cluster_domain: str
    cluster_dns: IPAddress


@dataclass(frozen=True)
class Bastion:
    host: str
    user: str
    port: int


@dataclass(frozen=True)
class Ssh:
    user: str
    port: int
    private_key: Secret | None
    host_keys: tuple[tuple[str, str], ...] = ()
    bastion: Bastion | None = None


@dataclass(frozen=True)
class Vip:
    """A kube-vip ARP virtual IP for the API, placed before server 1 starts."""

    address: IPAddress
    interface: str


@dataclass(frozen=True)
class EtcdS3:
    endpoint: str
    bucket: str
    region: str
    folder: str
    access_key: str
    secret_key: Secret | None
    skip_ssl_verify: bool = False


@dataclass(frozen=True)
class Etcd:
    heartbeat_interval_ms: int = 500
    election_timeout_ms: int = 5000
    snapshot_schedule: str | None = None
    snapshot_retention: int = 5
    s3: EtcdS3 | None = None


@dataclass(frozen=True)
class Airgap:
    enabled: bool = False
    binary: str | None = None  # local path of the k3s binary to stage
    images: str | None = None  # local path of the images tarball
    install_script: str | None = None  # local path of install.sh


@dataclass(frozen=True)
class K3s:
    version: str
    api_endpoint: str
    vip: Vip | None
    kube_vip_version: str
    tls_sans: tuple[str, ...]
    firewall: Literal["disabled", "managed"]
    selinux: bool
    failover_tuning: bool
    etcd: Etcd
    registry_mirrors: tuple[tuple[str, tuple[str, ...]], ...]
    airgap: Airgap
    disable_local_storage: bool


@dataclass(frozen=True)
class Calico:
    enabled: bool
    encapsulation: str
    nat_outgoing: bool
    block_size: int
    mtu: int
    autodetection_method: str
    autodetection_value: str
    goldmane: bool
    whisker: bool


@dataclass(frozen=True)
class AddressPool:
    name: str
    addresses: tuple[AddressRange, ...]
    auto_assign: bool
    advertise: Literal["l2", "bgp", "none"]


@dataclass(frozen=True)
class BgpPeer:
    name: str
    address: IPAddress
    asn: int
    my_asn: int


@dataclass(frozen=True)
class MetalLB:
    enabled: bool
    pools: tuple[AddressPool, ...]
    bgp_peers: tuple[BgpPeer, ...]


@dataclass(frozen=True)
class LonghornBackup:
    target: str
    access_key_id: str | None
    endpoint: str | None
    secret_access_key: Secret | None


@dataclass(frozen=True)
class Longhorn:
    replica_count: int = 3
    default_class: bool = True
    data_path: str = "/var/lib/longhorn"
    rwx: bool = True
    gitops_managed: bool = False
    backup: LonghornBackup | None = None


@dataclass(frozen=True)
class OpenEBS:
    engine: Literal["hostpath", "lvm", "zfs", "mayastor"] = "hostpath"
    default_class: bool = True
    hostpath_base_path: str = "/var/openebs/local"
    lvm_volume_group: str = "lvmvg"
    zfs_pool: str = "zfspv-pool"
    mayastor_hugepages: int = 1024
    mayastor_replicas: int = 3


LONGHORN_DISK_LABEL = "node.longhorn.io/create-default-disk"
MAYASTOR_LABEL = "openebs.io/engine"


@dataclass(frozen=True)
class Storage:
    kind: Literal["longhorn", "openebs", "cinder"]
    longhorn: Longhorn | None = None
    openebs: OpenEBS | None = None

    def node_labels(self, node: Node) -> dict[str, str]:
        """Labels this storage choice needs on `node` (merged into its K3s node labels).

        Storage nodes (``storage: true``) get Longhorn's create-default-disk label, or for
        Mayastor the ``openebs.io/engine=mayastor`` label its io-engine DaemonSet selects.
        """
        if not node.storage:
            return {}
        if self.kind == "longhorn":
            return {LONGHORN_DISK_LABEL: "true"}
        if self.kind == "openebs" and self.openebs and self.openebs.engine == "mayastor":
            return {MAYASTOR_LABEL: "mayastor"}
        return {}

    @property
    def host_prerequisites(self) -> frozenset[str]:
        """What the hosts must provide for this storage choice (feeds K3s host preparation)."""
        if self.kind == "longhorn":
            # iSCSI for every volume; the NFS client only for RWX (share-manager) volumes.
            return frozenset({"iscsi", "nfs"} if self.longhorn is None or self.longhorn.rwx else {"iscsi"})
        if self.kind == "openebs" and self.openebs and self.openebs.engine == "mayastor":
            return frozenset({"nvme-tcp", "hugepages"})
        if self.kind == "openebs" and self.openebs and self.openebs.engine == "lvm":
            return frozenset({"lvm"})
        if self.kind == "openebs" and self.openebs and self.openebs.engine == "zfs":
            return frozenset({"zfs"})
        return frozenset()


@dataclass(frozen=True)
class ChartVersions:
    pins: tuple[tuple[str, versions.ChartPin], ...]

    def __getitem__(self, name: str) -> versions.ChartPin:
        return dict(self.pins)[name]


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    cluster_name: str
    cluster_kind: Literal["k3s", "cleura"]
    charts: ChartVersions
    storage: Storage
    nodes: tuple[Node, ...] = ()
    network: Network | None = None
    ssh: Ssh | None = None
    k3s: K3s | None = None
    calico: Calico | None = None
    metallb: MetalLB | None = None
    cleura: Any = None  # components.gardener.spec.CleuraConfig
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def servers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role == "server")

    @property
    def agents(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role == "agent")


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------

TOP_LEVEL_KEYS = (
    "clusterName", "clusterKind", "nodes", "ssh", "network", "k3s", "calico", "metallb", "storage",
    "versions", "cleura",
)
SECRET_KEYS = ("sshPrivateKey", "etcdS3SecretKey", "longhornBackupSecretKey")


def _decode(value: object) -> object:
    """Structured config reaches the program as JSON text; scalars stay strings."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _parse_labels(reader: Reader, key: str) -> tuple[tuple[str, str], ...]:
    labels = reader.string_map(key)
    for k, v in labels.items():
        if not LABEL_KEY_RE.fullmatch(k) or len(k) > 317:
            reader.error(f"{key}.{k}", "is not a valid label key (prefix/name, e.g. example.com/role)")
        if not LABEL_VALUE_RE.fullmatch(v) or len(v) > 63:
            reader.error(f"{key}.{k}", f"{describe(v)} is not a valid label value (<= 63 of [A-Za-z0-9-_.])")
    return tuple(sorted(labels.items()))


def _parse_taints(reader: Reader, key: str) -> tuple[Taint, ...]:
    taints: list[Taint] = []
    for path, item in reader.items(key):
        match = TAINT_RE.fullmatch(item) if isinstance(item, str) else None
        if match is None or not LABEL_KEY_RE.fullmatch(match["key"]) or not LABEL_VALUE_RE.fullmatch(
            match["value"] or ""
        ):
            reader.problems.error(
                path, f"{describe(item)} is not a taint (expected key[=value]:NoSchedule|PreferNoSchedule|NoExecute)"
            )
            continue
        taints.append(Taint(match["key"], match["value"] or "", match["effect"]))
    return tuple(taints)


KUBELET_LABEL_PREFIXES = ("kubelet.kubernetes.io/", "node.kubernetes.io/")
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os", "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type", "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
})


def _kubelet_may_not_set(key: str) -> bool:
    """Labels K3s passes as kubelet --node-labels must pass the NodeRestriction rules."""
    prefix = key.split("/", 1)[0] if "/" in key else ""
    restricted = any(prefix == ns or prefix.endswith("." + ns) for ns in ("kubernetes.io", "k8s.io"))
    return restricted and key not in KUBELET_LABELS and not key.startswith(KUBELET_LABEL_PREFIXES)


def _parse_nodes(top: Reader) -> tuple[tuple[Node, ...], int]:
    """The nodes that parsed, and the number of entries asking for role 'server'."""
    nodes: list[Node] = []
    servers = 0
    names: dict[str, str] = {}
    addresses: dict[IPAddress, str] = {}
    for path, item in top.items("nodes"):
        r = Reader(item, path, top.problems)
        name = r.string("name", required=True)
        address_text = r.string("address", required=True)
        role = r.choice("role", ("server", "agent"), "agent")
        servers += role == "server"
        labels = _parse_labels(r, "labels")
        for label_key, _ in labels:
            if _kubelet_may_not_set(label_key):
                r.error(f"labels.{label_key}", "the kubelet may not set labels in the kubernetes.io / k8s.io "
                                               "namespaces (NodeRestriction) and K3s would not start; use your "
                                               "own prefix, e.g. example.com/role")
        taints = _parse_taints(r, "taints")
        storage = r.boolean("storage", True)
        user = r.string("user", pattern=r"[a-z_][a-z0-9_-]{0,31}", hint="a POSIX user name")
        port = r.integer("port", 0, minimum=1, maximum=65535) or None
        r.finish()
        address = parse_ip(address_text)
        if address_text is not None and address is None:
            r.error("address", f"{describe(address_text)} is not an IPv4/IPv6 address")
        if name is not None and not DNS_LABEL_RE.fullmatch(name):
            # Reported, but the node is kept so later checks (server count) do not cascade.
            r.error("name", f"{describe(name)} is not a valid DNS-1123 label (lowercase a-z, 0-9, '-', <= 63)")
        if name is not None and name in names:
            r.error("name", f"duplicate node name {name!r} (also {names[name]})")
        if address is not None and address in addresses:
            r.error("address", f"duplicate address {address} (also {addresses[address]})")
        if name is not None:
            names.setdefault(name, f"{path}.name")
        if address is not None:
            addresses.setdefault(address, f"{path}.address")
        if name is not None and address is not None:
            nodes.append(Node(name, address, role, labels, taints, storage, user, port))  # type: ignore[arg-type]
    return tuple(nodes), servers


def _check_server_count(servers: int, problems: Problems, path: str) -> None:
    if servers == 0:
        problems.error(path, "no node has role 'server': embedded etcd needs 1, 3 or 5 servers")
    elif servers % 2 == 0:
        problems.error(
            path,
            f"{servers} servers is an even number: etcd tolerates no more failures than with {servers - 1}; "
            f"use {servers - 1} or {servers + 1}",
        )
    elif servers == 1:
        problems.warn(path, "a single server has no control-plane redundancy; use 3 for HA")


def _parse_network(top: Reader, nodes: tuple[Node, ...]) -> Network | None:
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
    if "podCidr" not in cidrs or "serviceCidr" not in cidrs:
        return None
    service = cidrs["serviceCidr"]
    dns = parse_ip(dns_text) if dns_text else service.network_address + 10
    if dns_text and dns is None:
        r.error("clusterDns", f"{describe(dns_text)} is not an IPv4/IPv6 address")
        return None
    assert dns is not None
    if dns not in service:
        r.error("clusterDns", f"{dns} is outside serviceCidr {service}")
    return Network(cidrs["podCidr"], service, tuple(node_cidrs), domain, dns)


def _parse_ssh(top: Reader, secrets: Mapping[str, Secret], node_names: set[str]) -> Ssh:
    r = top.obj("ssh")
    user = r.string("user", "root", pattern=r"[a-z_][a-z0-9_-]{0,31}", hint="a POSIX user name") or "root"
    port = r.integer("port", 22, minimum=1, maximum=65535)
    host_keys = r.string_map("hostKeys")
    for name, host_key in host_keys.items():
        if name not in node_names:
            r.error(f"hostKeys.{name}", f"no node is named {name!r}{suggest(name, sorted(node_names))}")
        if not re.fullmatch(r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+", host_key):
            r.error(f"hostKeys.{name}", "expected '<type> <base64>' as in ssh-keyscan output (no host name)")
    bastion: Bastion | None = None
    if r.has("bastion"):
        b = r.obj("bastion")
        host = b.string("host", required=True)
        if host is not None and parse_ip(host) is None and not DNS_NAME_RE.fullmatch(host):
            b.error("host", f"{describe(host)} is neither an address nor a DNS name")
        b_user = b.string("user", user, pattern=r"[a-z_][a-z0-9_-]{0,31}", hint="a POSIX user name") or user
        b_port = b.integer("port", 22, minimum=1, maximum=65535)
        b.finish()
        if host is not None:
            bastion = Bastion(host, b_user, b_port)
    r.finish()
    key = secrets.get("sshPrivateKey")
    if key is None:
        top.problems.error(
            f"{NAMESPACE}:sshPrivateKey",
            f"required secret is not set; run: {secret_command('sshPrivateKey', '-- < ~/.ssh/id_ed25519')}",
        )
    return Ssh(user, port, key, tuple(sorted(host_keys.items())), bastion)


def _parse_etcd(k: Reader, secrets: Mapping[str, Secret]) -> Etcd:
    e = k.obj("etcd")
    heartbeat = e.integer("heartbeatIntervalMs", 500, minimum=50, maximum=10000)
    election = e.integer("electionTimeoutMs", 5000, minimum=100, maximum=50000)
    if election < 5 * heartbeat:
        e.error("electionTimeoutMs", f"{election} must be at least 5x heartbeatIntervalMs ({heartbeat})")
    schedule = e.string("snapshotSchedule")
    if schedule is not None and (
        len(schedule.split()) != 5 or not all(re.fullmatch(r"[0-9A-Za-z*?,/-]+", f) for f in schedule.split())
    ):
        e.error("snapshotSchedule", f"{describe(schedule)} is not a 5-field cron expression")
        schedule = None
    retention = e.integer("snapshotRetention", 5, minimum=1, maximum=1000)
    s3: EtcdS3 | None = None
    if e.has("s3"):
        s = e.obj("s3")
        endpoint = s.string("endpoint", "s3.amazonaws.com", pattern=r"[A-Za-z0-9.-]+(:\d+)?", hint="host[:port]")
        bucket = s.string("bucket", required=True, pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", hint="an S3 bucket")
        region = s.string("region", "us-east-1", pattern=r"[a-z0-9-]+", hint="a region name")
        folder = s.string("folder", "", pattern=r"[A-Za-z0-9._/-]*", hint="a folder path")
        access = s.string("accessKey", required=True, pattern=r"[A-Za-z0-9+/=._-]+", hint="an access key id")
        skip = s.boolean("skipSslVerify", False)
        s.finish()
        secret = secrets.get("etcdS3SecretKey")
        if secret is None:
            k.problems.error(
                f"{NAMESPACE}:etcdS3SecretKey",
                f"required secret for {e.key_path('s3')} is not set; run: {secret_command('etcdS3SecretKey')}",
            )
        if bucket and access:
            s3 = EtcdS3(endpoint or "", bucket, region or "", folder or "", access, secret, skip)
    e.finish()
    return Etcd(heartbeat, election, schedule, retention, s3)


def _parse_k3s(top: Reader, versions_r: Reader, servers: tuple[Node, ...], secrets: Mapping[str, Secret]) -> K3s:
    k = top.obj("k3s")
    version = versions_r.string(
        "k3s", versions.K3S_VERSION, pattern=K3S_VERSION_RE, hint="a K3s version like v1.34.2+k3s1"
    ) or versions.K3S_VERSION
    kube_vip = versions_r.string(
        "kubeVip", versions.KUBE_VIP_VERSION, pattern=r"v\d+\.\d+\.\d+", hint="a kube-vip tag like v0.9.2"
    ) or versions.KUBE_VIP_VERSION
    vip: Vip | None = None
    if k.has("vip"):
        v = k.obj("vip")
        address_text = v.string("address", required=True)
        interface = v.string("interface", "eth0", pattern=INTERFACE_RE, hint="a network interface name") or "eth0"
        v.finish()
        address = parse_ip(address_text)
        if address_text is not None and address is None:
            v.error("address", f"{describe(address_text)} is not an IPv4/IPv6 address")
        elif address is not None:
            if any(n.address == address for n in servers):
                v.error("address", f"{address} is a server's own address; the VIP must be a free address")
            vip = Vip(address, interface)
    default_endpoint = str(vip.address) if vip else (str(servers[0].address) if servers else "")
    endpoint = k.string("apiEndpoint", default_endpoint) or default_endpoint
    if endpoint and parse_ip(endpoint) is None and not DNS_NAME_RE.fullmatch(endpoint):
        k.error("apiEndpoint", f"{describe(endpoint)} is neither an IP address nor a DNS name")
    sans = k.strings("tlsSans")
    for i, san in enumerate(sans):
        if parse_ip(san) is None and not DNS_NAME_RE.fullmatch(san.removeprefix("*.")):
            k.problems.error(f"{k.key_path('tlsSans')}[{i}]", f"{describe(san)} is neither an address nor a DNS name")
    firewall = k.choice("firewall", ("disabled", "managed"), "disabled")
    selinux = k.boolean("selinux", False)
    failover = k.boolean("failoverTuning", True)
    etcd = _parse_etcd(k, secrets)
    mirrors: list[tuple[str, tuple[str, ...]]] = []
    registries = k.obj("registries")
    raw_mirrors = registries.raw("mirrors") or {}
    if not isinstance(raw_mirrors, Mapping):
        registries.error("mirrors", "expected an object of registry -> [endpoint URLs]")
        raw_mirrors = {}
    for registry, endpoints in raw_mirrors.items():
        path = f"{registries.key_path('mirrors')}.{registry}"
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d+)?|\*", str(registry)):
            k.problems.error(path, "is not a registry host name")
        if not isinstance(endpoints, list) or not all(
            isinstance(u, str) and re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._/-]*)?", u)
            for u in endpoints
        ):
            k.problems.error(path, "expected a list of http(s):// endpoint URLs")
            continue
        mirrors.append((str(registry), tuple(endpoints)))
    registries.finish()
    a = k.obj("airgap")
    airgap = Airgap(
        a.boolean("enabled", False), a.string("binary"), a.string("images"), a.string("installScript")
    )
    if airgap.enabled and not (airgap.binary and airgap.install_script):
        a.error("enabled", "airgap needs 'binary' and 'installScript' (local paths to stage on every node)")
    a.finish()
    disable_local = k.boolean("disableLocalStorage", True)
    k.finish()
    return K3s(
        version, endpoint, vip, kube_vip, sans, firewall, selinux, failover, etcd,  # type: ignore[arg-type]
        tuple(sorted(mirrors)), airgap, disable_local,
    )


CALICO_ENCAPSULATIONS = ("IPIP", "IPIPCrossSubnet", "VXLAN", "VXLANCrossSubnet", "None")
AUTODETECTION_METHODS = ("firstFound", "canReach", "interface", "skipInterface", "cidrs", "kubernetes")


def _parse_calico(top: Reader, network: Network | None) -> Calico:
    c = top.obj("calico")
    enabled = c.boolean("enabled", True)
    encapsulation = c.choice("encapsulation", CALICO_ENCAPSULATIONS, "IPIP")
    if c.has("ipPoolCidr"):
        pool = c.string("ipPoolCidr")
        if network is not None and pool != str(network.pod_cidr):
            c.error(
                "ipPoolCidr",
                f"{describe(pool)} differs from {NAMESPACE}:network.podCidr ({network.pod_cidr}); a mismatch "
                "SNATs cross-node traffic and breaks NetworkPolicy. Remove ipPoolCidr: the pool follows podCidr",
            )
    nat = c.boolean("natOutgoing", True)
    block = c.integer("blockSize", 26, minimum=20, maximum=32)
    if network is not None and network.pod_cidr.version == 4 and block < network.pod_cidr.prefixlen:
        c.error("blockSize", f"/{block} is larger than podCidr {network.pod_cidr}")
    mtu = c.integer("mtu", 0, minimum=0, maximum=9000)
    if mtu and mtu < 1000:
        c.error("mtu", f"{mtu} is too small (0 means auto-detect)")
    if network is not None and network.pod_cidr.version != 4:
        top.problems.error(f"{NAMESPACE}:network.podCidr", "the Calico layer supports IPv4 pod networks only")
    ad = c.obj("nodeAddressAutodetection")
    # Default: the node's Kubernetes InternalIP (K3s --node-ip). firstFound can pick kube-vip's
    # API VIP, which sits as a second address on the leader's interface.
    method = ad.choice("method", AUTODETECTION_METHODS, "kubernetes")
    value = ad.string("value", "") or ""
    if method in ("canReach", "interface", "skipInterface", "cidrs") and not value:
        ad.error("value", f"method {method} needs a value")
    if method == "kubernetes" and value not in ("", "NodeInternalIP"):
        ad.error("value", f"{describe(value)}: method kubernetes supports only NodeInternalIP")
    if method == "kubernetes":
        value = "NodeInternalIP"
    if method == "cidrs":
        for cidr in filter(None, (v.strip() for v in value.split(","))):
            if parse_cidr(cidr)[0] is None:
                ad.error("value", f"{describe(cidr)} is not a CIDR (method cidrs takes a comma-separated list)")
    if method == "canReach" and value and parse_ip(value) is None and not DNS_NAME_RE.fullmatch(value):
        ad.error("value", f"{describe(value)} is neither an address nor a DNS name")
    if method == "firstFound":
        value = ""
    ad.finish()
    goldmane = c.boolean("goldmane", False)
    whisker = c.boolean("whisker", False)
    if whisker and not goldmane:
        c.error("whisker", "Whisker shows the flows Goldmane aggregates; enable goldmane too")
    c.finish()
    return Calico(enabled, encapsulation, nat, block, mtu, method, value, goldmane, whisker)


RESERVED_ASNS = {23456: "AS_TRANS, RFC 6793", 65535: "RFC 7300", 4294967295: "RFC 7300"}


def _parse_metallb(top: Reader, nodes: tuple[Node, ...], network: Network | None) -> MetalLB:
    m = top.obj("metallb")
    enabled = m.boolean("enabled", True)
    pools: list[AddressPool] = []
    seen: list[tuple[str, AddressRange]] = []
    names: set[str] = set()
    my_asn = m.integer("myAsn", 64512, minimum=1, maximum=4294967295)
    if my_asn in RESERVED_ASNS:
        m.error("myAsn", f"{my_asn} is a reserved ASN ({RESERVED_ASNS[my_asn]})")
    for path, item in m.items("pools"):
        p = Reader(item, path, m.problems)
        name = p.string("name", required=True)
        if name is not None and not DNS_LABEL_RE.fullmatch(name):
            p.error("name", f"{describe(name)} is not a valid DNS-1123 label")
        if name in names:
            p.error("name", f"duplicate pool name {name!r}")
        advertise = p.choice("advertise", ("l2", "bgp", "none"), "l2")
        ranges: list[AddressRange] = []
        for apath, text in p.items("addresses"):
            rng, why = parse_range(text)
            if rng is None:
                m.problems.error(apath, why)
                continue
            for other_path, other in seen:
                if rng.overlaps(other):
                    m.problems.error(apath, f"{text} overlaps {other_path} ({other.text})")
            for node in nodes:
                if rng.contains(node.address):
                    m.problems.error(apath, f"{text} contains node {node.name}'s address {node.address}")
            if network is not None:
                for key, net in (("podCidr", network.pod_cidr), ("serviceCidr", network.service_cidr)):
                    if rng.overlaps(network_range(net)):
                        m.problems.error(apath, f"{text} overlaps {NAMESPACE}:network.{key} ({net})")
                if advertise == "l2" and network.node_cidrs and not any(rng.within(n) for n in network.node_cidrs):
                    m.problems.error(apath, f"{text} is an L2 pool outside every node network (network.nodeCidrs)")
            seen.append((apath, rng))
            ranges.append(rng)
        if not ranges and not p.raw("addresses"):
            p.error("addresses", "a pool needs at least one CIDR or a-b range")
        auto = p.boolean("autoAssign", True)
        p.finish()
        if name:
            names.add(name)
            pools.append(AddressPool(name, tuple(ranges), auto, advertise))  # type: ignore[arg-type]
    peers: list[BgpPeer] = []
    for path, item in m.items("bgpPeers"):
        p = Reader(item, path, m.problems)
        name = p.string("name", required=True)
        if name is not None and not DNS_LABEL_RE.fullmatch(name):
            p.error("name", f"{describe(name)} is not a valid DNS-1123 label")
        address = parse_ip(p.string("address", required=True))
        if p.has("address") and address is None:
            p.error("address", "is not an IPv4/IPv6 address")
        asn = p.integer("asn", 0, minimum=1, maximum=4294967295)
        if asn in RESERVED_ASNS:
            p.error("asn", f"{asn} is a reserved ASN ({RESERVED_ASNS[asn]})")
        p.finish()
        if name is not None and any(peer.name == name for peer in peers):
            p.error("name", f"duplicate BGP peer name {name!r}")
        if address is not None:
            for pool in pools:
                if any(r.contains(address) for r in pool.addresses):
                    p.error("address", f"{address} lies in address pool {pool.name}")
        if name and address and asn:
            peers.append(BgpPeer(name, address, asn, my_asn))
    if any(pool.advertise == "bgp" for pool in pools) and not m.raw("bgpPeers"):
        m.error("bgpPeers", "a pool is advertised over BGP but no bgpPeers are configured")
    if peers and not any(pool.advertise == "bgp" for pool in pools):
        m.problems.warn(m.key_path("bgpPeers"), "BGP peers are configured but no pool is advertised over BGP")
    m.finish()
    return MetalLB(enabled, tuple(pools), tuple(peers))


def _parse_storage(top: Reader, kind_default: str, cluster_kind: str, nodes: tuple[Node, ...],
                   secrets: Mapping[str, Secret]) -> Storage:
    s = top.obj("storage")
    allowed = ("cinder",) if cluster_kind == "cleura" else ("longhorn", "openebs")
    kind = s.choice("kind", allowed, kind_default)
    storage_nodes = [n for n in nodes if n.storage]
    longhorn: Longhorn | None = None
    openebs: OpenEBS | None = None
    if kind == "longhorn" or s.has("longhorn"):
        lr = s.obj("longhorn")
        replicas = lr.integer("replicaCount", min(3, max(1, len(storage_nodes))), minimum=1, maximum=10)
        if nodes and replicas > len(storage_nodes):
            lr.error("replicaCount", f"{replicas} replicas but only {len(storage_nodes)} storage node(s) "
                                     "(nodes with storage: true)")
        backup: LonghornBackup | None = None
        if lr.has("backup"):
            b = lr.obj("backup")
            target = b.string("target", required=True, pattern=r"(s3|nfs|cifs|azblob)://\S+",
                              hint="a backup target URL like s3://bucket@region/ or nfs://host:/path")
            access = b.string("accessKeyId")
            endpoint = b.string("endpoint")
            b.finish()
            secret = secrets.get("longhornBackupSecretKey")
            if access and secret is None:
                top.problems.error(f"{NAMESPACE}:longhornBackupSecretKey",
                                   f"required secret for {b.key_path('accessKeyId')} is not set; run: "
                                   f"{secret_command('longhornBackupSecretKey')}")
            if target:
                backup = LonghornBackup(target, access, endpoint, secret)
        longhorn = Longhorn(
            replicas, lr.boolean("defaultClass", True),
            lr.string("dataPath", "/var/lib/longhorn", pattern=r"/[A-Za-z0-9._/-]*", hint="an absolute path")
            or "/var/lib/longhorn",
            lr.boolean("rwx", True), lr.boolean("gitopsManaged", False), backup,
        )
        lr.finish()
    if kind == "openebs" or s.has("openebs"):
        o = s.obj("openebs")
        engine = o.choice("engine", ("hostpath", "lvm", "zfs", "mayastor"), "hostpath")
        openebs = OpenEBS(
            engine,  # type: ignore[arg-type]
            o.boolean("defaultClass", True),
            o.string("hostpathBasePath", "/var/openebs/local", pattern=r"/[A-Za-z0-9._/-]*", hint="an absolute path")
            or "/var/openebs/local",
            o.string("lvmVolumeGroup", "lvmvg", pattern=r"[A-Za-z0-9_.+-]+", hint="an LVM volume group") or "lvmvg",
            o.string("zfsPool", "zfspv-pool", pattern=r"[A-Za-z0-9_.:-]+", hint="a ZFS pool") or "zfspv-pool",
            o.integer("mayastorHugepages", 1024, minimum=512, maximum=65536),
            o.integer("mayastorReplicas", 3, minimum=1, maximum=5),
        )
        if engine == "mayastor" and len(storage_nodes) < 3:
            o.error("engine", f"mayastor needs at least 3 storage nodes (nodes with storage: true); "
                              f"found {len(storage_nodes)}")
        if engine == "mayastor" and openebs.mayastor_replicas > len(storage_nodes):
            o.error("mayastorReplicas", f"{openebs.mayastor_replicas} exceeds the {len(storage_nodes)} storage nodes")
        if engine == "mayastor" and kind == "openebs":
            # The label is derived for storage nodes (Storage.node_labels); a hand-set one must agree.
            for node in nodes:
                value = dict(node.labels).get(MAYASTOR_LABEL)
                if value is not None and (value == "mayastor") != node.storage:
                    o.error("engine", f"node {node.name} is labelled {MAYASTOR_LABEL}={value} but has storage: "
                                      f"{str(node.storage).lower()}; Mayastor runs on exactly the storage nodes")
        o.finish()
    if cluster_kind == "k3s" and kind in ("longhorn", "openebs"):
        # Exactly one default StorageClass: K3s's local-path (unless k3s.disableLocalStorage) or ours.
        disable_local = Reader(top.raw("k3s"), top.key_path("k3s"), Problems()).boolean("disableLocalStorage", True)
        ours = longhorn.default_class if kind == "longhorn" and longhorn else bool(openebs and openebs.default_class)
        if ours and not disable_local:
            s.error(f"{kind}.defaultClass", f"{kind} and K3s's local-path would both be the default StorageClass; "
                                            "set k3s.disableLocalStorage: true or this defaultClass: false")
        if not ours and disable_local:
            s.error(f"{kind}.defaultClass", "the cluster would have no default StorageClass (K3s's local-path is "
                                            "disabled by k3s.disableLocalStorage); set this defaultClass: true")
    s.finish()
    return Storage(kind, longhorn, openebs)  # type: ignore[arg-type]


def _parse_charts(versions_r: Reader) -> ChartVersions:
    c = versions_r.obj("charts")
    pins: list[tuple[str, versions.ChartPin]] = []
    for name, default in versions.CHARTS.items():
        raw = c.raw(name)
        pin = default
        if isinstance(raw, str):
            if re.fullmatch(CHART_VERSION_RE, raw):
                pin = versions.ChartPin(default.chart, raw, default.repo)
            else:
                c.error(name, f"{describe(raw)} is not an exact chart version (e.g. {default.version})")
        elif isinstance(raw, Mapping):
            r = Reader(raw, c.key_path(name), c.problems)
            version = r.string("version", default.version, pattern=CHART_VERSION_RE, hint="an exact chart version")
            repo = r.string("repo", default.repo, pattern=r"(https?|oci)://\S+", hint="an http(s):// or oci:// URL")
            r.finish()
            pin = versions.ChartPin(default.chart, version or default.version, repo or default.repo)
        elif raw is not None:
            c.error(name, "expected a version string or {version, repo}")
        pins.append((name, pin))
    c.finish()
    return ChartVersions(tuple(pins))


def parse_stack_config(
    raw: Mapping[str, object], secret_keys: frozenset[str] = frozenset(), *, project: str = "platform",
    stack: str = "dev",
) -> StackConfig:
    """Parse ``{"platform:key": value}`` (values JSON text or decoded) into a `StackConfig`.

    Raises `ConfigError` listing every problem. `secret_keys` names the keys that were set
    with ``--secret``; a secret key set in plain text is rejected, so it cannot land in git.
    """
    problems = Problems()
    values: dict[str, object] = {}
    secrets: dict[str, Secret] = {}
    prefix = f"{NAMESPACE}:"
    for full_key, value in raw.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        if key in SECRET_KEYS:
            if full_key not in secret_keys:
                problems.error(full_key, f"is a secret but was set in plain text; run: {secret_command(key)}")
            if isinstance(value, str) and value:
                secrets[key] = Secret(key, value)
            continue
        if key not in TOP_LEVEL_KEYS:
            problems.error(full_key, f"unknown key{suggest(key, TOP_LEVEL_KEYS + SECRET_KEYS)}")
            continue
        values[key] = _decode(value)

    top = Reader(values, "", problems)
    top.path = NAMESPACE
    def top_key_path(key: str) -> str:
        return f"{NAMESPACE}:{key}"  # top-level keys use ':' not '.'

    top.key_path = top_key_path  # type: ignore[method-assign]

    cluster_name = top.string("clusterName", stack, pattern=DNS_LABEL_RE.pattern, hint="a DNS-1123 label") or stack
    kind = top.choice("clusterKind", ("k3s", "cleura"), "k3s")
    versions_r = top.obj("versions")
    charts = _parse_charts(versions_r)
    if kind == "cleura":
        from components.gardener.spec import parse_cleura

        cleura = parse_cleura(top.raw("cleura"), top_key_path("cleura"), problems)
        storage = _parse_storage(top, "cinder", kind, (), secrets)
        for unused in ("nodes", "ssh", "network", "k3s", "calico", "metallb"):
            if top.has(unused):
                top.error(unused, "does not apply to clusterKind 'cleura' (Gardener runs the nodes, CNI and "
                                  "load balancers); remove it")
                top.raw(unused)
        versions_r.finish()
        top.finish()
        problems.raise_if_any()
        return StackConfig(project, stack, cluster_name, "cleura", charts, storage, cleura=cleura,
                           warnings=tuple(problems.warnings))

    if top.has("cleura"):
        top.error("cleura", "applies only to clusterKind 'cleura'")
        top.raw("cleura")
    nodes, server_count = _parse_nodes(top)
    if not top.has("nodes"):
        top.error("nodes", "is required for clusterKind 'k3s' (a list of {name, address, role})")
    else:
        _check_server_count(server_count, problems, top_key_path("nodes"))
    network = _parse_network(top, nodes)
    ssh = _parse_ssh(top, secrets, {n.name for n in nodes})
    servers = tuple(n for n in nodes if n.role == "server")
    k3s = _parse_k3s(top, versions_r, servers, secrets)
    if k3s.vip is not None and network is not None and network.node_cidrs and not any(
        k3s.vip.address in n for n in network.node_cidrs
    ):
        problems.error(f"{NAMESPACE}:k3s.vip.address", f"{k3s.vip.address} lies in none of network.nodeCidrs")
    calico = _parse_calico(top, network)
    metallb = _parse_metallb(top, nodes, network)
    if k3s.vip is not None:
        for pool in metallb.pools:
            if any(r.contains(k3s.vip.address) for r in pool.addresses):
                problems.error(f"{NAMESPACE}:metallb.pools", f"pool {pool.name} contains the API VIP {k3s.vip.address}")
    storage = _parse_storage(top, "longhorn", kind, nodes, secrets)
    versions_r.finish()
    top.finish()
    problems.raise_if_any()
    return StackConfig(
        project, stack, cluster_name, "k3s", charts, storage, nodes, network, ssh, k3s, calico, metallb,
        warnings=tuple(problems.warnings),
    )


def load_stack_config() -> StackConfig:
    """Read the engine-provided config for this program run and parse it."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    raw: dict[str, object] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    secret_keys = frozenset(k for k in raw if runtime_config.is_config_secret(k)) | frozenset(
        runtime_config.get_config_secret_keys_env()
    )
    return parse_stack_config(raw, secret_keys, project=pulumi.get_project(), stack=pulumi.get_stack())


__all__ = ["ConfigError", "StackConfig", "load_stack_config", "parse_stack_config"]
