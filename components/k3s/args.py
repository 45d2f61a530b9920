"""`K3sClusterArgs`: the one typed object every K3s config file and script is rendered from.

Built from the validated `StackConfig` by `K3sClusterArgs.from_config`. Construction
re-checks every value that reaches a script or a config file against a strict pattern
(defence in depth: a value that slipped past the stack parser, or an object built by hand
in a test or benchmark, still cannot inject shell), and raises one `ConfigError` listing
every problem.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from components.config import Airgap, Bastion, Etcd, RegistryConfig, Secret, StackConfig
from components.config.cluster import (
    CONFIG_KEY_RE,
    NO_PROXY_RE,
    OWNED_CONFIG_KEYS,
    PROXY_URL_RE,
    ExtraValue,
    Proxy,
)
from components.config.registries import (
    CONTROL_RE,
    ENDPOINT_URL_RE,
    PEM_CERTS_RE,
    pem_key_problem,
    registry_dir_name,
    registry_host_problem,
)
from components.k3s.upgrade import VERSION_RE, removal_problem, upgrade_problem
from components.netaddr import DNS_LABEL_RE, DNS_NAME_RE, parse_ip
from components.problems import ConfigError, Problems
from components.versions import K3S_INSTALLER, InstallerPin

POSIX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
INTERFACE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
KUBE_VIP_VERSION_RE = re.compile(r"v\d+\.\d+\.\d+")
PORT_RE = re.compile(r"(\d{1,5})(-(\d{1,5}))?/(tcp|udp)")
ABS_PATH_RE = re.compile(r"/[A-Za-z0-9._/-]*")
HOST_KEY_RE = re.compile(r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+")
AIRGAP_IMAGE_SUFFIXES = (".tar", ".tar.gz", ".tar.zst", ".tar.lz4", ".tar.bz2", ".tar.xz")
CALICO_ENCAPSULATIONS = ("IPIP", "IPIPCrossSubnet", "VXLAN", "VXLANCrossSubnet", "None")
STORAGE_PREREQUISITES = frozenset({"iscsi", "nfs", "nvme-tcp", "hugepages", "lvm", "zfs"})


@dataclass(frozen=True)
class NodeSpec:
    """One host: where to reach it and what it becomes."""

    name: str
    address: str
    role: Literal["server", "agent"]
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[str, ...] = ()
    storage: bool = True
    ssh_user: str = "root"
    ssh_port: int = 22
    host_key: str | None = None
    gone: bool = False  # dead for good: its steps are retained untouched, a survivor removes it


@dataclass(frozen=True)
class VipSpec:
    """kube-vip in ARP mode, serving the API on `address` from the servers."""

    address: str
    interface: str | None  # None: detected on each server (the route to the VIP); kube-vip picks it too
    kube_vip_version: str


@dataclass(frozen=True)
class StorageHost:
    """Host prerequisites of the stack's storage choice (from `Storage.host_prerequisites`)."""

    prerequisites: frozenset[str] = frozenset()
    hugepages: int = 1024  # 2 MiB pages, OpenEBS Mayastor storage nodes only
    hostpath_dir: str | None = None  # OpenEBS LocalPV hostpath base directory
    longhorn_rwx: bool = True  # Longhorn RWX volumes: NFS port in managed firewall mode
    # storage.longhorn.dedicatedDisk: (node, path) pairs that must be separate mounts on the host.
    dedicated_mounts: tuple[tuple[str, str], ...] = ()

    @property
    def mayastor(self) -> bool:
        return "nvme-tcp" in self.prerequisites


@dataclass(frozen=True)
class Timeouts:
    """Every wait in every script is bounded by one of these (seconds)."""

    server_ready: int = 300
    agent_ready: int = 300
    api_ready: int = 300
    drain: int = 300
    poll: int = 5


@dataclass(frozen=True)
class DeployedState:
    """What a previous run deployed (the component's `deployed` output), when known."""

    version: str
    servers: tuple[str, ...]
    agents: tuple[str, ...] = ()


@dataclass(frozen=True)
class K3sClusterArgs:
    cluster_name: str
    version: str
    api_endpoint: str
    nodes: tuple[NodeSpec, ...]
    pod_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    cluster_dns: str = "10.43.0.10"
    cluster_domain: str = "cluster.local"
    tls_sans: tuple[str, ...] = ()
    vip: VipSpec | None = None
    calico: bool = True
    calico_encapsulation: str = "IPIP"
    firewall: Literal["disabled", "managed"] = "disabled"
    extra_ports: tuple[str, ...] = ()  # opened in managed firewall mode (e.g. MetalLB memberlist)
    selinux: bool = False
    failover_tuning: bool = True
    etcd: Etcd = field(default_factory=Etcd)
    registry_mirrors: tuple[tuple[str, tuple[str, ...]], ...] = ()
    airgap: Airgap = field(default_factory=Airgap)
    disable_local_storage: bool = True
    storage: StorageHost = field(default_factory=StorageHost)
    ssh_private_key: Secret | None = None
    bastion: Bastion | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    proxy: Proxy | None = None  # HTTP(S)_PROXY/NO_PROXY for the installer and the K3s unit
    secrets_encryption: bool = True  # K3s secrets-encryption (the Vault component relies on it)
    allow_destroy: bool = False  # unprotects the servers' install steps (teardown, server removal)
    agent_batch_size: int = 1  # agents installed, upgraded and restarted this many at a time
    # Pass-through config.yaml keys (never one the program owns) and kubelet args, every server / agent.
    extra_server_config: tuple[tuple[str, ExtraValue], ...] = ()
    extra_agent_config: tuple[tuple[str, ExtraValue], ...] = ()
    kubelet_args: tuple[str, ...] = ()
    accept_transition: str | None = None  # `transition.Transition`: one run's override ('nodes' or a version)
    installer: InstallerPin = K3S_INSTALLER  # install.sh by commit, checked by sha256 before it runs
    registry_configs: tuple[RegistryConfig, ...] = ()  # registries.yaml `configs`: auth (secrets) and TLS

    def __post_init__(self) -> None:
        problems = Problems()
        _validate(self, problems)
        problems.raise_if_any()

    # -- views ------------------------------------------------------------------------
    @property
    def servers(self) -> tuple[NodeSpec, ...]:
        return tuple(n for n in self.nodes if n.role == "server")

    @property
    def agents(self) -> tuple[NodeSpec, ...]:
        return tuple(n for n in self.nodes if n.role == "agent")

    @property
    def first_server(self) -> NodeSpec:
        return self.servers[0]

    @property
    def live_servers(self) -> tuple[NodeSpec, ...]:
        return tuple(n for n in self.servers if not n.gone)

    @property
    def gone_nodes(self) -> tuple[NodeSpec, ...]:
        return tuple(n for n in self.nodes if n.gone)

    @property
    def deployed(self) -> DeployedState:
        return DeployedState(
            self.version, tuple(n.name for n in self.live_servers), tuple(n.name for n in self.agents if not n.gone),
        )

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_config(
        cls, cfg: StackConfig, calico: bool | None = None, previous: DeployedState | None = None,
        timeouts: Timeouts | None = None,
    ) -> K3sClusterArgs:
        """The K3s part of a validated stack config; `previous` enables transition checks."""
        problems = Problems()
        if cfg.cluster_kind != "k3s" or cfg.k3s is None or cfg.network is None or cfg.ssh is None:
            raise ConfigError(["platform:clusterKind: K3sCluster needs a 'k3s' stack with nodes, network and ssh"])
        k3s, net, ssh = cfg.k3s, cfg.network, cfg.ssh
        host_keys = dict(ssh.host_keys)
        nodes = tuple(
            NodeSpec(
                name=n.name, address=str(n.address), role=n.role,
                labels=tuple(sorted({**cfg.storage.node_labels(n), **dict(n.labels)}.items())),
                taints=tuple(str(t) for t in n.taints), storage=n.storage,
                ssh_user=n.ssh_user or ssh.user, ssh_port=n.ssh_port or ssh.port, host_key=host_keys.get(n.name),
                gone=n.gone,
            )
            for n in cfg.nodes
        )
        use_calico = cfg.calico.enabled if calico is None and cfg.calico is not None else bool(calico)
        encapsulation = cfg.calico.encapsulation if cfg.calico is not None else "IPIP"
        extra_ports: tuple[str, ...] = ()
        if cfg.metallb is not None and cfg.metallb.enabled:
            # memberlist between speakers, and the ingress ports LoadBalancer traffic arrives on
            extra_ports = ("7946/tcp", "7946/udp", "80/tcp", "443/tcp")
        openebs = cfg.storage.openebs
        storage = StorageHost(
            prerequisites=cfg.storage.host_prerequisites,
            hugepages=openebs.mayastor_hugepages if openebs else 1024,
            hostpath_dir=openebs.hostpath_base_path if openebs and openebs.engine == "hostpath"
            and cfg.storage.kind == "openebs" else None,
            longhorn_rwx=bool(cfg.storage.longhorn and cfg.storage.longhorn.rwx),
            dedicated_mounts=cfg.storage.longhorn_mounts(cfg.nodes),
        )
        vip = VipSpec(str(k3s.vip.address), k3s.vip.interface, k3s.kube_vip_version) if k3s.vip else None
        if previous is not None:
            problem = upgrade_problem(previous.version, k3s.version)
            if problem:
                problems.error("platform:versions.k3s", problem)
            wanted = frozenset(n.name for n in nodes if n.role == "server" and not n.gone)
            problem = removal_problem(frozenset(previous.servers), wanted)
            if problem:
                problems.error("platform:nodes", problem)
        problems.raise_if_any()
        return cls(
            cluster_name=cfg.cluster_name, version=k3s.version, api_endpoint=k3s.api_endpoint, nodes=nodes,
            pod_cidr=str(net.pod_cidr), service_cidr=str(net.service_cidr), cluster_dns=str(net.cluster_dns),
            cluster_domain=net.cluster_domain, tls_sans=k3s.tls_sans, vip=vip, calico=use_calico,
            calico_encapsulation=encapsulation, firewall=k3s.firewall, extra_ports=extra_ports, selinux=k3s.selinux,
            failover_tuning=k3s.failover_tuning, etcd=k3s.etcd, registry_mirrors=k3s.registry_mirrors,
            airgap=k3s.airgap, disable_local_storage=k3s.disable_local_storage, storage=storage,
            ssh_private_key=ssh.private_key, bastion=ssh.bastion, timeouts=timeouts or Timeouts(),
            proxy=k3s.proxy, secrets_encryption=k3s.secrets_encryption, allow_destroy=k3s.allow_destroy,
            agent_batch_size=k3s.agent_batch_size, extra_server_config=k3s.extra_server_config,
            extra_agent_config=k3s.extra_agent_config, kubelet_args=k3s.kubelet_args,
            accept_transition=k3s.accept_transition, installer=k3s.installer,
            registry_configs=k3s.registry_configs,
        )


def _is_host(text: str) -> bool:
    return parse_ip(text) is not None or bool(DNS_NAME_RE.fullmatch(text))


def _validate(a: K3sClusterArgs, p: Problems) -> None:
    """Strict re-validation of every value that reaches a script or a rendered file."""
    path = "platform:k3s"
    if not DNS_LABEL_RE.fullmatch(a.cluster_name):
        p.error("platform:clusterName", f"{a.cluster_name!r} is not a DNS-1123 label")
    if not VERSION_RE.fullmatch(a.version):
        p.error("platform:versions.k3s", f"{a.version!r} is not a K3s version like v1.34.2+k3s1")
    if not _is_host(a.api_endpoint):
        p.error(f"{path}.apiEndpoint", f"{a.api_endpoint!r} is neither an IP address nor a DNS name")
    for san in a.tls_sans:
        if not _is_host(san.removeprefix("*.")):
            p.error(f"{path}.tlsSans", f"{san!r} is neither an address nor a DNS name")
    for key, text in (("podCidr", a.pod_cidr), ("serviceCidr", a.service_cidr)):
        try:
            ipaddress.ip_network(text, strict=True)
        except ValueError:
            p.error(f"platform:network.{key}", f"{text!r} is not a CIDR")
    if parse_ip(a.cluster_dns) is None:
        p.error("platform:network.clusterDns", f"{a.cluster_dns!r} is not an address")
    if not DNS_NAME_RE.fullmatch(a.cluster_domain):
        p.error("platform:network.clusterDomain", f"{a.cluster_domain!r} is not a DNS name")
    if a.calico_encapsulation not in CALICO_ENCAPSULATIONS:
        p.error("platform:calico.encapsulation", f"{a.calico_encapsulation!r} is not one of {CALICO_ENCAPSULATIONS}")
    if a.firewall not in ("disabled", "managed"):
        p.error(f"{path}.firewall", f"{a.firewall!r} is not 'disabled' or 'managed'")
    for port in a.extra_ports:
        m = PORT_RE.fullmatch(port)
        if m is None or not all(0 < int(x) < 65536 for x in (m[1], m[3] or m[1])):
            p.error(f"{path}.firewall", f"{port!r} is not a port like 7946/tcp or 30000-32767/tcp")
    names: set[str] = set()
    addresses: set[str] = set()
    for i, n in enumerate(a.nodes):
        np = f"platform:nodes[{i}]"
        if not DNS_LABEL_RE.fullmatch(n.name):
            p.error(f"{np}.name", f"{n.name!r} is not a DNS-1123 label")
        if n.name in names:
            p.error(f"{np}.name", f"duplicate node name {n.name!r}")
        names.add(n.name)
        ip = parse_ip(n.address)
        if ip is None:
            p.error(f"{np}.address", f"{n.address!r} is not an IP address")
        elif str(ip) in addresses:
            p.error(f"{np}.address", f"duplicate address {ip}")
        else:
            addresses.add(str(ip))
        if n.role not in ("server", "agent"):
            p.error(f"{np}.role", f"{n.role!r} is not 'server' or 'agent'")
        if not POSIX_USER_RE.fullmatch(n.ssh_user):
            p.error(f"{np}.user", f"{n.ssh_user!r} is not a POSIX user name")
        if not 0 < n.ssh_port < 65536:
            p.error(f"{np}.port", f"{n.ssh_port} is not a TCP port")
        if n.host_key is not None and not HOST_KEY_RE.fullmatch(n.host_key):
            p.error(f"platform:ssh.hostKeys.{n.name}", "expected '<type> <base64>'")
        for key, value in n.labels:
            if "\n" in key + value or "=" in key:
                p.error(f"{np}.labels", f"{key!r}={value!r} is not a label")
        for taint in n.taints:
            if "\n" in taint or ":" not in taint:
                p.error(f"{np}.taints", f"{taint!r} is not a taint")
    servers = [n for n in a.nodes if n.role == "server"]
    if servers and servers[0].gone:
        p.error("platform:nodes[0].gone", f"the first server {servers[0].name} bootstraps the cluster and runs the "
                "control steps: put a live server first in platform:nodes, then mark this one gone")
    if servers and all(n.gone for n in servers):
        p.error("platform:nodes", "every server is gone: restore one from an etcd snapshot (see the README)")
    if not servers:
        p.error("platform:nodes", "no node has role 'server'")
    elif len(servers) % 2 == 0:
        p.error("platform:nodes", f"{len(servers)} servers: etcd needs an odd number (1, 3, 5, ...)")
    if a.vip is not None:
        if parse_ip(a.vip.address) is None:
            p.error(f"{path}.vip.address", f"{a.vip.address!r} is not an IP address")
        if a.vip.interface is not None and not INTERFACE_RE.fullmatch(a.vip.interface):
            p.error(f"{path}.vip.interface", f"{a.vip.interface!r} is not an interface name")
        if not KUBE_VIP_VERSION_RE.fullmatch(a.vip.kube_vip_version):
            p.error("platform:versions.kubeVip", f"{a.vip.kube_vip_version!r} is not a tag like v0.9.2")
    for registry, endpoints in a.registry_mirrors:
        if registry_host_problem(registry) is not None:
            p.error(f"{path}.registries.mirrors", f"{registry!r} is not a registry host")
        for url in endpoints:
            if not re.fullmatch(ENDPOINT_URL_RE, url):
                p.error(f"{path}.registries.mirrors.{registry}", f"{url!r} is not an http(s) URL")
    _validate_registry_configs(a.registry_configs, p)
    unknown = a.storage.prerequisites - STORAGE_PREREQUISITES
    if unknown:
        p.error("platform:storage", f"unknown host prerequisite(s) {sorted(unknown)}")
    if not 0 < a.storage.hugepages <= 1_000_000:
        p.error("platform:storage.openebs.mayastorHugepages", f"{a.storage.hugepages} is out of range")
    if a.storage.hostpath_dir is not None and (
        not ABS_PATH_RE.fullmatch(a.storage.hostpath_dir) or "/../" in a.storage.hostpath_dir + "/"
    ):
        p.error("platform:storage.openebs.hostpathBasePath", f"{a.storage.hostpath_dir!r} is not an absolute path")
    if a.airgap.enabled:
        for key, local in (("binary", a.airgap.binary), ("installScript", a.airgap.install_script),
                           ("images", a.airgap.images)):
            if local is None:
                if key != "images":
                    p.error(f"{path}.airgap.{key}", "is required when airgap is enabled")
                continue
            if not Path(local).is_file():
                p.error(f"{path}.airgap.{key}", f"{local!r} is not a file on this machine")
        if a.airgap.images and not a.airgap.images.endswith(AIRGAP_IMAGE_SUFFIXES):
            p.error(f"{path}.airgap.images", f"the images tarball must end in one of {AIRGAP_IMAGE_SUFFIXES}")
    if a.proxy is not None:
        for key, proxy_url in (("http", a.proxy.http), ("https", a.proxy.https)):
            if proxy_url is not None and not re.fullmatch(PROXY_URL_RE, proxy_url):
                p.error(f"{path}.proxy.{key}", f"{proxy_url!r} is not an http(s)://host:port URL without credentials")
        for entry in a.proxy.no_proxy:
            if not re.fullmatch(NO_PROXY_RE, entry):
                p.error(f"{path}.proxy.noProxy", f"{entry!r} is not a host, domain or CIDR")
    for key, extra in (("extraServerConfig", a.extra_server_config), ("extraAgentConfig", a.extra_agent_config)):
        for name, extra_value in extra:
            texts = extra_value if isinstance(extra_value, tuple) else (str(extra_value),)
            if not re.fullmatch(CONFIG_KEY_RE, name) or name in OWNED_CONFIG_KEYS or any("\n" in t for t in texts):
                p.error(f"{path}.{key}.{name}", "is not a pass-through K3s config key with a one-line value")
    for arg in a.kubelet_args:
        if not re.fullmatch(r"[a-z][a-z0-9-]*=[^\n]*", arg):
            p.error(f"{path}.kubeletArgs", f"{arg!r} is not 'name=value'")
    if a.etcd.s3 is not None and a.etcd.s3.endpoint_ca is not None and not re.fullmatch(
        PEM_CERTS_RE, a.etcd.s3.endpoint_ca.strip(),
    ):
        p.error(f"{path}.etcd.s3.endpointCa", "is not one or more PEM certificates")
    if isinstance(a.agent_batch_size, bool) or not 0 < a.agent_batch_size <= 1000:
        p.error(f"{path}.agentBatchSize", f"{a.agent_batch_size!r} must be between 1 and 1000")
    if a.accept_transition is not None and a.accept_transition != "nodes" and not VERSION_RE.fullmatch(
        a.accept_transition,
    ):
        p.error(f"{path}.acceptTransition", f"{a.accept_transition!r} is neither 'nodes' nor a K3s version")
    if not re.fullmatch(r"[0-9a-f]{40}", a.installer.commit):
        p.error("platform:versions.k3sInstaller.commit", f"{a.installer.commit!r} is not a 40-hex commit")
    if not re.fullmatch(r"[0-9a-f]{64}", a.installer.sha256):
        p.error("platform:versions.k3sInstaller.sha256", f"{a.installer.sha256!r} is not a 64-hex sha256")
    t = a.timeouts
    for name in ("server_ready", "agent_ready", "api_ready", "drain", "poll"):
        value = getattr(t, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 86400:
            p.error("timeouts", f"{name}={value!r} must be a positive number of seconds")


def _validate_registry_configs(configs: tuple[RegistryConfig, ...], p: Problems) -> None:
    """registries.yaml `configs`: what K3s accepts, and nothing that could break its YAML or the
    containerd config.toml it generates (secret values are checked, never echoed)."""
    seen: set[str] = set()
    for c in configs:
        at = f'platform:k3s.registries.configs["{c.host}"]'
        if registry_host_problem(c.host) is not None:
            p.error(at, f"{c.host!r} is not a registry host[:port] or '*'")
            continue
        if registry_dir_name(c.host) in seen:
            p.error(at, "names the same registry TLS directory as another entry")
        seen.add(registry_dir_name(c.host))
        if c.username is not None and (not c.username or CONTROL_RE.search(c.username) or ":" in c.username):
            p.error(f"{at}.auth.username", f"{c.username!r} is not a basic-auth user name")
        if (c.username is None) != (c.password is None):
            p.error(f"{at}.auth", "needs both a username and a password (platform:k3sRegistryCredentials)")
        if c.password is not None and c.identity_token is not None:
            p.error(f"{at}.auth", "is either username + password or an identity token, not both")
        if c.host == "*" and c.has_auth:
            p.error(f"{at}.auth", "credentials for '*' would be sent to every registry")
        for what, secret in (("password", c.password), ("identityToken", c.identity_token)):
            if secret is not None and (not secret.value or CONTROL_RE.search(secret.value)):
                p.error(f'platform:k3sRegistryCredentials["{c.host}"].{what}', "is empty or has a control character "
                        "(not shown: it is a secret)")
        for what, pem in (("ca", c.ca), ("cert", c.cert)):
            if pem is not None and not re.fullmatch(PEM_CERTS_RE, pem.strip()):
                p.error(f"{at}.tls.{what}", "is not one or more PEM certificates")
        if (c.cert is None) != (c.tls_key is None):
            p.error(f"{at}.tls", "a client certificate and its key (platform:k3sRegistryCredentials tlsKey) go "
                    "together")
        if c.tls_key is not None and pem_key_problem(c.tls_key.value) is not None:
            p.error(f'platform:k3sRegistryCredentials["{c.host}"].tlsKey', "is not an unencrypted PEM private key "
                    "(not shown: it is a secret)")
