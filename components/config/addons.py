"""Config for the add-on layer: Calico, MetalLB, storage (Longhorn, OpenEBS, Cinder), chart pins.

Parsers here record every problem with its key path and return typed, frozen objects;
`components.config.parse_stack_config` composes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components import versions
from components.config.cluster import Node
from components.config.network import Network
from components.config.reader import NAMESPACE, Reader, Secret, describe, secret_command
from components.netaddr import (
    DNS_LABEL_RE,
    DNS_NAME_RE,
    AddressRange,
    IPAddress,
    network_range,
    parse_cidr,
    parse_ip,
    parse_range,
)
from components.problems import Problems

CHART_VERSION_RE = r"v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?"
ABSOLUTE_PATH_RE = r"/[A-Za-z0-9._/-]*"


def calico_runs_bird(encapsulation: str) -> bool:
    """VXLAN routes without BIRD; IPIP and unencapsulated pools need BGP (BIRD on TCP 179)."""
    return not encapsulation.startswith("VXLAN")


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
    # Sets the chart's deletingConfirmationFlag: without it Longhorn's pre-delete Job refuses to
    # uninstall. Only an intended teardown sets it (README "Removing Longhorn").
    allow_uninstall: bool = False
    # Per-node disk paths, overriding data_path on the named nodes: ((node, path), ...).
    node_data_paths: tuple[tuple[str, str], ...] = ()
    # The data path must be a separate mount (a dedicated disk), checked on the host.
    dedicated_disk: bool = False

    def data_path_for(self, node: str) -> str:
        """The Longhorn disk path on `node` (its own override, else the stack's dataPath)."""
        return dict(self.node_data_paths).get(node, self.data_path)


@dataclass(frozen=True)
class Cinder:
    """The shoot's StorageClass the stack relies on (read from the API and checked at deploy)."""

    storage_class: str = "default"
    provisioner: str = "cinder.csi.openstack.org"


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
class ProvidedClass:
    """clusterKind existing: the cluster's own default StorageClass the stack relies on."""

    storage_class: str
    provisioner: str | None = None  # checked when given


@dataclass(frozen=True)
class Storage:
    kind: Literal["longhorn", "openebs", "cinder", "provided"]
    longhorn: Longhorn | None = None
    openebs: OpenEBS | None = None
    cinder: Cinder | None = None
    snapshots: bool = True  # CSI snapshot CRDs, controller and a VolumeSnapshotClass (K3s)
    provided: ProvidedClass | None = None

    def longhorn_mounts(self, nodes: tuple[Node, ...]) -> tuple[tuple[str, str], ...]:
        """(node, path) pairs whose path must be a separate mount, for the K3s host check.

        Non-empty only with ``storage.longhorn.dedicatedDisk``: every storage node's Longhorn
        disk path. The K3s host preparation (prepare.sh) checks each with ``mountpoint -q``.
        """
        if self.kind != "longhorn" or self.longhorn is None or not self.longhorn.dedicated_disk:
            return ()
        return tuple((n.name, self.longhorn.data_path_for(n.name)) for n in nodes if n.storage)

    def node_labels(self, node: Node) -> dict[str, str]:
        """Labels this storage choice needs on `node` (merged into its K3s node labels).

        Storage nodes (``storage: true``) get Longhorn's create-default-disk label, or for
        Mayastor the ``openebs.io/engine=mayastor`` label its io-engine DaemonSet selects.
        """
        if not node.storage:
            return {}
        if self.kind == "longhorn" and self.longhorn and node.name in dict(self.longhorn.node_data_paths):
            # "config": Longhorn creates the disk that the node's default-disks-config annotation names.
            return {LONGHORN_DISK_LABEL: "config"}
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


CALICO_ENCAPSULATIONS = ("IPIP", "IPIPCrossSubnet", "VXLAN", "VXLANCrossSubnet", "None")
AUTODETECTION_METHODS = ("firstFound", "canReach", "interface", "skipInterface", "cidrs", "kubernetes")


def parse_calico(top: Reader, network: Network | None) -> Calico:
    c = top.obj("calico")
    enabled = c.boolean("enabled", True)
    encapsulation = c.choice("encapsulation", CALICO_ENCAPSULATIONS, "IPIP")
    if c.has("ipPoolCidr"):
        pool = c.string("ipPoolCidr")  # null: as if absent; not a string: reported by string()
        if pool is not None and network is not None and parse_cidr(pool)[0] != network.pod_cidr:
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


def parse_metallb(top: Reader, nodes: tuple[Node, ...], network: Network | None) -> MetalLB:
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
        address_text = p.string("address", required=True)
        address = parse_ip(address_text)
        if address_text is not None and address is None:
            p.error("address", f"{describe(address_text)} is not an IPv4/IPv6 address")
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


def parse_storage(top: Reader, kind_default: str, cluster_kind: str, nodes: tuple[Node, ...],
                   secrets: Mapping[str, Secret]) -> Storage:
    s = top.obj("storage")
    allowed = {"cleura": ("cinder",), "existing": ("provided", "longhorn", "openebs")}.get(
        cluster_kind, ("longhorn", "openebs"))
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
        node_paths: list[tuple[str, str]] = []
        names = {n.name: n for n in nodes}
        for node_name, path in sorted(lr.string_map("nodeDataPaths").items()):
            key = f"nodeDataPaths.{node_name}"
            if node_name not in names:
                lr.error(key, f"{describe(node_name)} is not a node in {NAMESPACE}:nodes")
            elif not names[node_name].storage:
                lr.error(key, f"node {node_name} has storage: false; Longhorn puts no disk there")
            if not re.fullmatch(ABSOLUTE_PATH_RE, path) or path == "/":
                lr.error(key, f"{describe(path)} is not an absolute path below / (e.g. /mnt/longhorn)")
            node_paths.append((node_name, path))
        longhorn = Longhorn(
            replicas, lr.boolean("defaultClass", True),
            lr.string("dataPath", "/var/lib/longhorn", pattern=ABSOLUTE_PATH_RE, hint="an absolute path")
            or "/var/lib/longhorn",
            lr.boolean("rwx", True), lr.boolean("gitopsManaged", False), backup,
            allow_uninstall=lr.boolean("allowUninstall", False),
            node_data_paths=tuple(node_paths),
            dedicated_disk=lr.boolean("dedicatedDisk", False),
        )
        if longhorn.dedicated_disk and longhorn.data_path == "/var/lib/longhorn" and len(node_paths) < len(
            storage_nodes
        ):
            lr.error("dedicatedDisk", "the default dataPath /var/lib/longhorn is on the root filesystem; set "
                                      "dataPath (or nodeDataPaths for every storage node) to the dedicated disk's "
                                      "mount point, e.g. /var/lib/longhorn-disk")
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
    cinder: Cinder | None = None
    if kind == "cinder":
        cr = s.obj("cinder")
        cinder = Cinder(
            cr.string("storageClass", "default", pattern=DNS_NAME_RE.pattern, hint="a StorageClass name") or "default",
            cr.string("provisioner", "cinder.csi.openstack.org", pattern=r"[a-z0-9.-]+", hint="a CSI driver name")
            or "cinder.csi.openstack.org",
        )
        cr.finish()
    elif s.has("cinder"):
        s.error("cinder", "applies only to clusterKind 'cleura' (storage.kind cinder)")
        s.raw("cinder")
    provided: ProvidedClass | None = None
    if kind == "provided":
        pr = s.obj("provided")
        name = pr.string("storageClass", required=True, pattern=DNS_NAME_RE.pattern,
                         hint="the name of the cluster's default StorageClass (kubectl get storageclass)")
        provisioner = pr.string("provisioner", pattern=r"[a-z0-9.-]+", hint="a CSI driver name")
        pr.finish()
        provided = ProvidedClass(name or "default", provisioner)
    elif s.has("provided"):
        s.error("provided", "applies only to clusterKind 'existing' (storage.kind provided)")
        s.raw("provided")
    snapshots = s.boolean("snapshots", cluster_kind == "k3s")
    if snapshots and cluster_kind == "cleura":
        s.error("snapshots", "Gardener already runs the CSI snapshot controller and CRDs on a shoot; remove it")
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
    return Storage(kind, longhorn, openebs, cinder, snapshots, provided)  # type: ignore[arg-type]


MIRROR_URL_RE = r"https?://[^\s]+"


def _mirror(top: Reader, section: str, what: str) -> tuple[Reader, str | None, bool]:
    """``platform:<section>.mirror`` read and checked: (reader, the value, whether it is a local folder).

    An http(s) URL comes back without its trailing slash; a folder as written (relative to the
    project directory, where the engine runs the program and the provider); anything else is an
    error naming the key (and None).
    """
    r = top.obj(section)
    mirror = r.string("mirror")
    r.finish()
    if mirror is None:
        return r, None, False
    if re.fullmatch(MIRROR_URL_RE, mirror):
        return r, mirror.rstrip("/"), False
    if "://" in mirror:
        r.error("mirror", f"{describe(mirror)} is neither an http(s):// {what} nor a local folder")
        return r, None, False
    if not Path(mirror).is_dir():
        r.error("mirror", f"{describe(mirror)} is not a folder (looked for it relative to {Path.cwd()}); "
                          f"give a folder or an http(s):// {what}")
        return r, None, False
    return r, mirror, True


def parse_chart_mirror(top: Reader) -> str | None:
    """``platform:charts.mirror``: a Helm repository URL, or a local folder of chart archives.

    A folder becomes the ``file://<folder>`` repository of every pin, which Helm reads as the
    archive path ``<folder>/<chart>-<version>.tgz`` (an air-gapped mirror, or the test
    suite's copy of the pinned archives). The path is kept as written (relative to the project
    directory, where the engine runs the program and Helm), so state does not change with the
    checkout's location; whether each archive the stack installs is there is checked by
    `components.platform.chart_mirror_problems`, which knows which charts are in use.
    """
    _, mirror, local = _mirror(top, "charts", "Helm repository")
    return versions.LOCAL_MIRROR_SCHEME + mirror if mirror is not None and local else mirror


def parse_manifest_mirror(top: Reader, storage: Storage) -> str | None:
    """``platform:manifests.mirror``: where the plain upstream manifests (the CSI snapshot CRDs) come from.

    An http(s) base URL or a local folder holding each file under its upstream name
    (``snapshot.storage.k8s.io_volumesnapshots.yaml``), for sites that cannot reach
    raw.githubusercontent.com. A folder is checked for every file the stack applies before
    anything is registered.
    """
    r, mirror, local = _mirror(top, "manifests", "base URL")
    if mirror is not None and local and storage.snapshots:
        names = [versions.SNAPSHOT_CRD_FILE.format(plural=p) for p in versions.SNAPSHOT_CRD_PLURALS]
        missing = [n for n in names if not (Path(mirror) / n).is_file()]
        if missing:
            r.error("mirror", f"{mirror}/{missing[0]} is missing ({len(missing)} of the {len(names)} CSI snapshot "
                              f"CRDs of external-snapshotter {versions.EXTERNAL_SNAPSHOTTER_VERSION}); copy them "
                              f"from {versions.SNAPSHOT_CRD_BASE_URL}/")
    return mirror.rstrip("/") if mirror is not None else None


def parse_charts(versions_r: Reader, mirror: str | None = None) -> ChartVersions:
    """Chart pins: the defaults, each stack's version/repo overrides, and the mirror.

    The mirror replaces the default repository of every chart; a repository the stack names
    for one chart (``versions.charts.<name>.repo``) is more specific and wins.
    """
    c = versions_r.obj("charts")
    pins: list[tuple[str, versions.ChartPin]] = []
    for name, default in versions.CHARTS.items():
        raw = c.raw(name)
        base_repo = mirror or default.repo
        pin = versions.ChartPin(default.chart, default.version, base_repo)
        if isinstance(raw, str):
            if re.fullmatch(CHART_VERSION_RE, raw):
                pin = versions.ChartPin(default.chart, raw, base_repo)
            else:
                c.error(name, f"{describe(raw)} is not an exact chart version (e.g. {default.version})")
        elif isinstance(raw, Mapping):
            r = Reader(raw, c.key_path(name), c.problems)
            version = r.string("version", default.version, pattern=CHART_VERSION_RE, hint="an exact chart version")
            repo = r.string("repo", base_repo, pattern=r"(https?|oci|file)://\S+",
                            hint="an http(s):// or oci:// URL")
            r.finish()
            pin = versions.ChartPin(default.chart, version or default.version, repo or base_repo)
        elif raw is not None:
            c.error(name, "expected a version string or {version, repo}")
        pins.append((name, pin))
    c.finish()
    return ChartVersions(tuple(pins))
