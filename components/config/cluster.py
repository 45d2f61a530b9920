"""Config for the K3s cluster itself: nodes, SSH access, K3s and etcd settings.

Parsers here record every problem with its key path and return typed, frozen objects;
`components.config.parse_stack_config` composes them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components import kubesyntax, versions
from components.config.reader import NAMESPACE, Reader, Secret, describe, secret_command, suggest
from components.config.registries import PEM_CERTS_RE, RegistryConfig, parse_registries
from components.netaddr import (
    DNS_LABEL_RE,
    DNS_NAME_RE,
    IPAddress,
    parse_ip,
)
from components.problems import Problems

K3S_VERSION_RE = r"v\d+\.\d+\.\d+\+k3s\d+"
# Kubernetes label keys: optional DNS-subdomain prefix, then a name of at most 63 characters.
LABEL_KEY_RE = re.compile(
    r"(([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
LABEL_VALUE_RE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
TAINT_RE = re.compile(r"(?P<key>[^=:]+)(=(?P<value>[^:]*))?:(?P<effect>NoSchedule|PreferNoSchedule|NoExecute)")
INTERFACE_RE = r"[A-Za-z0-9_.:-]{1,15}"
HOST_KEY_RE = re.compile(r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+")
HOST_KEY_HINT = "expected '<type> <base64>' as in ssh-keyscan output (no host name)"


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
    gone: bool = False  # dead for good: removed from a surviving server, never dialled again


@dataclass(frozen=True)
class Bastion:
    host: str
    user: str
    port: int
    host_key: str | None = None  # pinned when given, like the nodes' keys


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
    interface: str | None  # None: each server uses the interface of its route to the VIP


@dataclass(frozen=True)
class EtcdS3:
    endpoint: str
    bucket: str
    region: str
    folder: str
    access_key: str
    secret_key: Secret | None
    skip_ssl_verify: bool = False
    insecure: bool = False  # plain HTTP to a self-hosted S3 (etcd-s3-insecure)
    endpoint_ca: str | None = None  # PEM of the CA that signed a self-hosted S3's certificate


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


# A proxy URL without credentials (they would sit in plain text in state and on every host).
PROXY_URL_RE = r"https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?/?"
NO_PROXY_RE = r"[A-Za-z0-9.*:_/\[\]-]{1,253}"


@dataclass(frozen=True)
class Proxy:
    """`k3s.proxy`: reaches the K3s installer (its downloads) and the K3s unit's environment."""

    http: str | None = None
    https: str | None = None
    no_proxy: tuple[str, ...] = ()


ExtraValue = str | int | bool | tuple[str, ...]
CONFIG_KEY_RE = r"[a-z][a-z0-9-]{0,62}"
# config.yaml keys the program writes itself: a pass-through may not override them.
OWNED_CONFIG_KEYS = frozenset({
    "agent-token", "cluster-cidr", "cluster-dns", "cluster-domain", "cluster-init", "disable",
    "disable-network-policy", "etcd-arg", "etcd-s3", "etcd-s3-access-key", "etcd-s3-bucket", "etcd-s3-endpoint",
    "etcd-s3-folder", "etcd-s3-region", "etcd-s3-secret-key", "etcd-s3-skip-ssl-verify",
    "etcd-snapshot-retention", "etcd-snapshot-schedule-cron", "flannel-backend", "kube-apiserver-arg",
    "kube-controller-manager-arg", "kubelet-arg", "node-ip", "node-label", "node-name", "node-taint",
    "secrets-encryption", "selinux", "server", "service-cidr", "tls-san", "token", "token-file",
    "write-kubeconfig-mode", "data-dir", "agent-token-file", "etcd-s3-insecure", "etcd-s3-endpoint-ca",
    "private-registry",  # registries.yaml is the program's (k3s.registries)
})


def parse_extra_config(k: Reader, key: str) -> tuple[tuple[str, ExtraValue], ...]:
    raw = k.raw(key) or {}
    path = k.key_path(key)
    if not isinstance(raw, Mapping):
        k.error(key, "expected an object of K3s config keys -> values")
        return ()
    out: list[tuple[str, ExtraValue]] = []
    for name, value in raw.items():
        at = f"{path}.{name}"
        if not isinstance(name, str) or not re.fullmatch(CONFIG_KEY_RE, name):
            k.problems.error(at, "is not a K3s config key (lower-case, e.g. 'kube-proxy-arg')")
            continue
        if name in OWNED_CONFIG_KEYS:
            k.problems.error(at, "is set by the program itself; use its own setting (see the README config reference)")
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = tuple(value)
        if not isinstance(value, str | int | bool | tuple) or any(
            "\n" in v for v in (value if isinstance(value, tuple) else (value,)) if isinstance(v, str)
        ):
            k.problems.error(at, f"{describe(value)} is not a one-line string, number, boolean or list of strings")
            continue
        out.append((name, value))
    return tuple(sorted(out, key=lambda kv: kv[0]))


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
    proxy: Proxy | None = None
    secrets_encryption: bool = True
    allow_destroy: bool = False
    agent_batch_size: int = 1
    extra_server_config: tuple[tuple[str, ExtraValue], ...] = ()
    extra_agent_config: tuple[tuple[str, ExtraValue], ...] = ()
    kubelet_args: tuple[str, ...] = ()
    accept_transition: str | None = None  # one run's override of the recorded-deployment rules
    installer: versions.InstallerPin = versions.K3S_INSTALLER
    registry_configs: tuple[RegistryConfig, ...] = ()  # registries.yaml `configs` (auth, TLS)


def parse_proxy(k: Reader) -> Proxy | None:
    if not k.has("proxy"):
        return None
    p = k.obj("proxy")
    hint = "an http(s)://host:port URL without credentials"
    http = p.string("http", pattern=PROXY_URL_RE, hint=hint)
    https = p.string("https", pattern=PROXY_URL_RE, hint=hint)
    no_proxy = p.strings("noProxy")
    for i, entry in enumerate(no_proxy):
        if not re.fullmatch(NO_PROXY_RE, entry):
            k.problems.error(f"{p.key_path('noProxy')}[{i}]", f"{describe(entry)} is not a host, domain or CIDR")
    if http is None and https is None and not p.broken:
        p.error("http", "a proxy needs 'http' and/or 'https' (e.g. http://proxy.example.com:3128)")
    p.finish()
    return Proxy(http, https, no_proxy)


def parse_labels(reader: Reader, key: str) -> tuple[tuple[str, str], ...]:
    """Node labels, each key and value checked by Kubernetes' own rules (`components.kubesyntax`)."""
    labels = reader.string_map(key)
    for k, v in labels.items():
        problem = kubesyntax.label_key_problem(k) or kubesyntax.label_value_problem(v)
        if problem:
            reader.error(f"{key}.{k}", problem)
    return tuple(sorted(labels.items()))


def parse_taints(reader: Reader, key: str) -> tuple[Taint, ...]:
    """``key[=value]:Effect`` strings, checked as the API server checks taints (no repeated key+effect)."""
    taints: list[Taint] = []
    paths: list[str] = []
    for path, item in reader.items(key):
        parsed, why = kubesyntax.parse_taint(item)
        if parsed is None:
            reader.problems.error(path, f"{why}")
            continue
        taints.append(Taint(*parsed))
        paths.append(path)
    for index, first, (taint_key, effect) in kubesyntax.duplicate_taints((t.key, t.effect) for t in taints):
        reader.problems.error(paths[index], f"repeats the taint {taint_key}:{effect} of {paths[first]} (one taint "
                                            "per key and effect)")
    return tuple(taints)


KUBELET_LABEL_PREFIXES = ("kubelet.kubernetes.io/", "node.kubernetes.io/")
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os", "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type", "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
})


def kubelet_may_not_set(key: str) -> bool:
    """Labels K3s passes as kubelet --node-labels must pass the NodeRestriction rules."""
    prefix = key.split("/", 1)[0] if "/" in key else ""
    restricted = any(prefix == ns or prefix.endswith("." + ns) for ns in ("kubernetes.io", "k8s.io"))
    return restricted and key not in KUBELET_LABELS and not key.startswith(KUBELET_LABEL_PREFIXES)


def parse_nodes(top: Reader) -> tuple[tuple[Node, ...], int | None]:
    """The nodes that parsed, and the number of entries asking for role 'server'.

    The count is None when some role is invalid: a misspelt role is reported once, and the
    server count it would distort is then not judged as well.
    """
    nodes: list[Node] = []
    servers = 0
    bad_role = False
    names: dict[str, str] = {}
    addresses: dict[IPAddress, str] = {}
    for path, item in top.items("nodes"):
        r = Reader(item, path, top.problems)
        name = r.string("name", required=True)
        address_text = r.string("address", required=True)
        errors_before = len(top.problems.errors)
        role = r.choice("role", ("server", "agent"), "agent")
        bad_role = bad_role or len(top.problems.errors) > errors_before
        servers += role == "server"
        labels = parse_labels(r, "labels")
        for label_key, _ in labels:
            if kubelet_may_not_set(label_key):
                r.error(f"labels.{label_key}", "the kubelet may not set labels in the kubernetes.io / k8s.io "
                                               "namespaces (NodeRestriction) and K3s would not start; use your "
                                               "own prefix, e.g. example.com/role")
        taints = parse_taints(r, "taints")
        storage = r.boolean("storage", True)
        gone = r.boolean("gone", False)
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
            nodes.append(Node(name, address, role, labels, taints, storage, user, port, gone))  # type: ignore[arg-type]
    return tuple(nodes), None if bad_role else servers


def check_server_count(servers: int | None, problems: Problems, path: str) -> None:
    if servers is None:
        return  # a role was invalid: that error is the one to fix first
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


PUBLIC_KEY_RE = re.compile(r"\s*(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-\S+)\s+[A-Za-z0-9+/=]{16,}")
_PEM_KIND = r"(OPENSSH |RSA |EC |DSA |ENCRYPTED )?"
# The PEM label is assembled so that no literal key header sits in the source (secret scanners).
_PRIVATE_LABEL = "PRIVATE" + " KEY"
PRIVATE_KEY_RE = re.compile(
    rf"\s*-----BEGIN {_PEM_KIND}{_PRIVATE_LABEL}-----\r?\n.+\r?\n-----END {_PEM_KIND}{_PRIVATE_LABEL}-----\s*",
    re.DOTALL,
)


def private_key_problem(text: str) -> str | None:
    """Why `text` is not an SSH private key (its text is never echoed: it is a secret), or None."""
    if PUBLIC_KEY_RE.match(text):
        return ("holds a public key (an 'ssh-...' line, the .pub file); the SSH client needs the private key "
                "file itself")
    if "PUBLIC KEY-----" in text or "CERTIFICATE-----" in text:
        return "holds a PEM public key or certificate, not a private key"
    if "PuTTY-User-Key-File" in text:
        return "is a PuTTY .ppk key; convert it with 'puttygen key.ppk -O private-openssh -o id_key'"
    if not PRIVATE_KEY_RE.fullmatch(text):
        return ("does not look like a private key (expected the whole file ssh-keygen writes, from its "
                f"'BEGIN OPENSSH {_PRIVATE_LABEL}' line to its 'END' line; a passphrase-protected key cannot "
                "be used unattended)")
    if "ENCRYPTED" in text or "Proc-Type: 4,ENCRYPTED" in text:
        return "is protected by a passphrase, which an unattended run cannot type; use a key without one"
    return None


def parse_ssh(top: Reader, secrets: Mapping[str, Secret], node_names: set[str]) -> Ssh:
    r = top.obj("ssh")
    user = r.string("user", "root", pattern=r"[a-z_][a-z0-9_-]{0,31}", hint="a POSIX user name") or "root"
    port = r.integer("port", 22, minimum=1, maximum=65535)
    host_keys = r.string_map("hostKeys")
    for name, host_key in host_keys.items():
        if name not in node_names:
            r.error(f"hostKeys.{name}", f"no node is named {name!r}{suggest(name, sorted(node_names))}")
        if not HOST_KEY_RE.fullmatch(host_key):
            r.error(f"hostKeys.{name}", HOST_KEY_HINT)
    unpinned = sorted(node_names - set(host_keys))
    if unpinned:
        # Pinned host keys are the default for production: without one, SSH trusts any host that answers.
        r.problems.warn(r.key_path("hostKeys"), f"no pinned host key for {', '.join(unpinned)}: SSH accepts "
                        "whichever host answers at that address; pin them for production stacks "
                        "(ssh-keyscan -t ed25519 <address>)")
    bastion: Bastion | None = None
    if r.has("bastion"):
        b = r.obj("bastion")
        host = b.string("host", required=True)
        if host is not None and parse_ip(host) is None and not DNS_NAME_RE.fullmatch(host):
            b.error("host", f"{describe(host)} is neither an address nor a DNS name")
        b_user = b.string("user", user, pattern=r"[a-z_][a-z0-9_-]{0,31}", hint="a POSIX user name") or user
        b_port = b.integer("port", 22, minimum=1, maximum=65535)
        b_key = b.string("hostKey")
        if b_key is not None and not HOST_KEY_RE.fullmatch(b_key):
            b.error("hostKey", HOST_KEY_HINT)
            b_key = None
        b.finish()
        if host is not None:
            bastion = Bastion(host, b_user, b_port, b_key)
    r.finish()
    key = secrets.get("sshPrivateKey")
    set_key = secret_command("sshPrivateKey", "-- < ~/.ssh/id_ed25519")
    if key is None:
        top.problems.error(f"{NAMESPACE}:sshPrivateKey", f"required secret is not set; run: {set_key}")
    elif not any(e.startswith(f"{NAMESPACE}:sshPrivateKey:") for e in top.problems.errors) and (
        problem := private_key_problem(key.value)
    ) is not None:
        top.problems.error(f"{NAMESPACE}:sshPrivateKey", f"{problem}; run: {set_key}")
        key = None
    return Ssh(user, port, key, tuple(sorted(host_keys.items())), bastion)


def parse_etcd(k: Reader, secrets: Mapping[str, Secret]) -> Etcd:
    e = k.obj("etcd")
    heartbeat = e.integer("heartbeatIntervalMs", 500, minimum=50, maximum=10000)
    election = e.integer("electionTimeoutMs", 5000, minimum=100, maximum=50000)
    if election < 5 * heartbeat:
        e.error("electionTimeoutMs", f"{election} must be at least 5x heartbeatIntervalMs ({heartbeat})")
    schedule = e.string("snapshotSchedule")
    if schedule is not None:
        from components.gardener.spec import cron_problem  # the one cron checker (robfig/cron rules)

        problem = cron_problem(schedule, extended=False)
        if problem:
            e.error("snapshotSchedule", f"{describe(schedule)} is not a 5-field cron expression or descriptor that "
                                        f"K3s (etcd-snapshot-schedule-cron) accepts: {problem}")
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
        insecure = s.boolean("insecure", False)
        endpoint_ca = s.string("endpointCa")
        if endpoint_ca is not None and not re.fullmatch(PEM_CERTS_RE, endpoint_ca.strip()):
            s.error("endpointCa", "expected one or more PEM certificates (-----BEGIN CERTIFICATE----- ...)")
            endpoint_ca = None
        s.finish()
        secret = secrets.get("etcdS3SecretKey")
        if secret is None:
            k.problems.error(
                f"{NAMESPACE}:etcdS3SecretKey",
                f"required secret for {e.key_path('s3')} is not set; run: {secret_command('etcdS3SecretKey')}",
            )
        if bucket and access:
            s3 = EtcdS3(endpoint or "", bucket, region or "", folder or "", access, secret, skip, insecure,
                        endpoint_ca.strip() + "\n" if endpoint_ca else None)
    if not e.has("s3"):
        # The pre-upgrade / pre-removal snapshots are kept outside K3s's data dir, but on the same host.
        e.problems.warn(e.key_path("s3"), "not set: etcd snapshots (scheduled, pre-upgrade, pre-removal) stay on "
                        "the servers' own disks, so a lost host takes its copies with it; set k3s.etcd.s3 (any "
                        "S3-compatible store off these hosts) for off-node copies, or copy "
                        "/var/lib/platform/k3s-snapshots/ away yourself (README, K3s operations)")
    e.finish()
    return Etcd(heartbeat, election, schedule, retention, s3)


def parse_installer(versions_r: Reader) -> versions.InstallerPin:
    """``versions.k3sInstaller``: another install.sh commit and its sha256, both or neither."""
    if not versions_r.has("k3sInstaller"):
        return versions.K3S_INSTALLER
    i = versions_r.obj("k3sInstaller")
    commit = i.string("commit", required=True, pattern=r"[0-9a-f]{40}", hint="a full 40-hex k3s-io/k3s commit")
    sha256 = i.string("sha256", required=True, pattern=r"[0-9a-f]{64}",
                      hint="the 64-hex sha256 from install.sh.sha256sum at that commit")
    i.finish()
    if commit is None or sha256 is None:
        return versions.K3S_INSTALLER
    return versions.InstallerPin(commit, sha256)


def parse_k3s(top: Reader, versions_r: Reader, nodes: tuple[Node, ...], secrets: Mapping[str, Secret]) -> K3s:
    k = top.obj("k3s")
    servers = tuple(n for n in nodes if n.role == "server")
    version = versions_r.string(
        "k3s", versions.K3S_VERSION, pattern=K3S_VERSION_RE, hint="a K3s version like v1.34.2+k3s1"
    ) or versions.K3S_VERSION
    installer = parse_installer(versions_r)
    kube_vip = versions_r.string(
        "kubeVip", versions.KUBE_VIP_VERSION, pattern=r"v\d+\.\d+\.\d+", hint="a kube-vip tag like v0.9.2"
    ) or versions.KUBE_VIP_VERSION
    vip: Vip | None = None
    if k.has("vip"):
        v = k.obj("vip")
        address_text = v.string("address", required=True)
        interface = v.string("interface", None, pattern=INTERFACE_RE, hint="a network interface name") or None
        v.finish()
        address = parse_ip(address_text)
        if address_text is not None and address is None:
            v.error("address", f"{describe(address_text)} is not an IPv4/IPv6 address")
        elif address is not None:
            # Any node's address, not only a server's: kube-vip would answer ARP for an agent's IP.
            owner = next((n for n in nodes if n.address == address), None)
            if owner is not None:
                v.error("address", f"{address} is node {owner.name}'s own address; the VIP must be a free address")
            vip = Vip(address, interface)
    default_endpoint = str(vip.address) if vip else (str(servers[0].address) if servers else "")
    endpoint = k.string("apiEndpoint", default_endpoint) or default_endpoint
    endpoint_ip = parse_ip(endpoint) if endpoint else None
    if endpoint and endpoint_ip is None and not DNS_NAME_RE.fullmatch(endpoint):
        k.error("apiEndpoint", f"{describe(endpoint)} is neither an IP address nor a DNS name")
    elif endpoint_ip is not None and servers and (vip is None or endpoint_ip != vip.address) and all(
        n.address != endpoint_ip for n in servers
    ):
        # Agents and joining nodes reach the API here on 6443: only servers (or their VIP) answer.
        owner = next((n for n in nodes if n.address == endpoint_ip), None)
        served_by = ([f"the VIP {vip.address}"] if vip else []) + [f"{n.name} {n.address}" for n in servers]
        what = f"agent {owner.name}'s address" if owner else "no server's address and not the VIP"
        k.error("apiEndpoint", f"{endpoint_ip} is {what}: nothing serves the API there; use one of "
                               f"{', '.join(served_by)}, or a DNS name (e.g. of a load balancer in front of the "
                               "servers)")
    sans = k.strings("tlsSans")
    for i, san in enumerate(sans):
        if parse_ip(san) is None and not DNS_NAME_RE.fullmatch(san.removeprefix("*.")):
            k.problems.error(f"{k.key_path('tlsSans')}[{i}]", f"{describe(san)} is neither an address nor a DNS name")
    firewall = k.choice("firewall", ("disabled", "managed"), "disabled")
    selinux = k.boolean("selinux", False)
    failover = k.boolean("failoverTuning", True)
    etcd = parse_etcd(k, secrets)
    mirrors, registry_configs = parse_registries(k, secrets)
    a = k.obj("airgap")
    airgap = Airgap(
        a.boolean("enabled", False), a.string("binary"), a.string("images"), a.string("installScript")
    )
    if airgap.enabled and not (airgap.binary and airgap.install_script):
        a.error("enabled", "airgap needs 'binary' and 'installScript' (local paths to stage on every node)")
    script = Path(airgap.install_script) if airgap.enabled and airgap.install_script else None
    if script is not None and script.is_file():
        digest = hashlib.sha256(script.read_bytes()).hexdigest()
        if digest != installer.sha256:
            # The user's own copy runs as staged; the pin is what every online install runs.
            a.problems.warn(a.key_path("installScript"), f"sha256 {digest} is not the pinned installer's "
                            f"{installer.sha256} ({installer.url}): stage that file, or pin yours with "
                            "platform:versions.k3sInstaller")
    a.finish()
    disable_local = k.boolean("disableLocalStorage", True)
    proxy = parse_proxy(k)
    secrets_encryption = k.boolean("secretsEncryption", True)
    allow_destroy = k.boolean("allowDestroy", False)
    agent_batch_size = k.integer("agentBatchSize", 1, minimum=1, maximum=1000)
    extra_server = parse_extra_config(k, "extraServerConfig")
    extra_agent = parse_extra_config(k, "extraAgentConfig")
    kubelet_args = k.strings("kubeletArgs")
    accept_transition = k.string(
        "acceptTransition", None, pattern=rf"nodes|{K3S_VERSION_RE}",
        hint="the K3s version the hosts really run after a restore (like v1.33.5+k3s1), or 'nodes'",
    ) or None
    if accept_transition is not None:
        k.problems.warn(k.key_path("acceptTransition"), f"{accept_transition!r} overrides the refusal of a "
                        "downgrade, minor skip or majority server removal against the recorded deployment: "
                        "remove it again after this `pulumi up`")
    for i, arg in enumerate(kubelet_args):
        if not re.fullmatch(r"[a-z][a-z0-9-]*=[^\n]*", arg):
            k.problems.error(f"{k.key_path('kubeletArgs')}[{i}]", f"{describe(arg)} is not 'name=value'")
    k.finish()
    return K3s(
        version, endpoint, vip, kube_vip, sans, firewall, selinux, failover, etcd,  # type: ignore[arg-type]
        mirrors, airgap, disable_local, proxy=proxy, secrets_encryption=secrets_encryption,
        allow_destroy=allow_destroy, agent_batch_size=agent_batch_size, extra_server_config=extra_server,
        extra_agent_config=extra_agent, kubelet_args=kubelet_args, accept_transition=accept_transition,
        installer=installer, registry_configs=registry_configs,
    )
