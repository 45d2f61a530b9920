"""Stack configuration, parsed once into frozen, typed objects.

`load_stack_config()` reads every ``platform:*`` key the engine handed the program and
returns a `StackConfig`, or raises one `ConfigError` listing every problem with its key
path. Nothing is registered before this returns, so a bad config never half-applies.
Components receive these objects; none of them reads `pulumi.Config` itself.

One module per concern lives in this package (`reader`: the typed reader; `cluster`: nodes,
SSH, K3s; `network`: CIDRs and cluster DNS; `addons`: Calico, MetalLB, storage, chart pins);
their types are re-exported here, so `from components.config import Node, Storage,
StackConfig` is the one import to know. A new section gets its own module here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from components.config.addons import (
    AUTODETECTION_METHODS,
    CALICO_ENCAPSULATIONS,
    CHART_VERSION_RE,
    LONGHORN_DISK_LABEL,
    MAYASTOR_LABEL,
    RESERVED_ASNS,
    AddressPool,
    BgpPeer,
    Calico,
    ChartVersions,
    Cinder,
    Longhorn,
    LonghornBackup,
    MetalLB,
    OpenEBS,
    Storage,
    calico_runs_bird,
    parse_calico,
    parse_chart_mirror,
    parse_charts,
    parse_manifest_mirror,
    parse_metallb,
    parse_storage,
)
from components.config.argocd import ArgoCD, parse_argocd, schedulable_control_nodes, schedulable_shoot_nodes
from components.config.certs import Certs, Issuer, parse_certs
from components.config.cluster import (
    INTERFACE_RE,
    K3S_VERSION_RE,
    LABEL_KEY_RE,
    LABEL_VALUE_RE,
    TAINT_RE,
    Airgap,
    Bastion,
    Etcd,
    EtcdS3,
    K3s,
    Node,
    Ssh,
    Taint,
    Vip,
    check_server_count,
    parse_k3s,
    parse_nodes,
    parse_ssh,
)
from components.config.existing import Existing, parse_existing
from components.config.ingress import Ingress, parse_ingress
from components.config.network import Network, parse_network
from components.config.reader import NAMESPACE, Reader, Secret, secret_command, suggest
from components.config.registries import RegistryConfig
from components.config.vault import Vault, parse_vault
from components.netaddr import DNS_LABEL_RE
from components.problems import ConfigError, Problems


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    cluster_name: str
    cluster_kind: Literal["k3s", "cleura", "existing"]
    charts: ChartVersions
    storage: Storage
    nodes: tuple[Node, ...] = ()
    network: Network | None = None
    ssh: Ssh | None = None
    k3s: K3s | None = None
    calico: Calico | None = None
    metallb: MetalLB | None = None
    cleura: Any = None  # components.gardener.spec.CleuraConfig
    ingress: Ingress = field(default_factory=Ingress)
    certs: Certs = field(default_factory=Certs)
    argocd: ArgoCD | None = None
    existing: Existing | None = None  # clusterKind existing: the kubeconfig of the cluster to install onto
    delete_unreachable: bool = False  # teardown switch for a cluster that is gone (README "Day 2")
    vault: Vault = field(default_factory=Vault)
    manifests_mirror: str | None = None  # platform:manifests.mirror (the CSI snapshot CRDs' source)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def servers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role == "server")

    @property
    def agents(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role == "agent")


TOP_LEVEL_KEYS = (
    "clusterName", "clusterKind", "nodes", "ssh", "network", "k3s", "calico", "metallb", "storage",
    "versions", "cleura", "ingress", "certs", "charts", "argocd", "existing", "deleteUnreachable", "vault",
    "manifests",
)
SECRET_KEYS = ("sshPrivateKey", "etcdS3SecretKey", "longhornBackupSecretKey", "certsDns01Token", "argocdRepoSshKey",
               "argocdRepoToken", "argocdOidcClientSecret", "kubeconfig", "k3sRegistryCredentials")


def _decode(value: object) -> object:
    """Structured config reaches the program as JSON text; scalars stay strings."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


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
    secret_downgrades: list[str] = []
    prefix = f"{NAMESPACE}:"
    for full_key, value in raw.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        if key in SECRET_KEYS:
            if full_key not in secret_keys:
                problems.error(full_key, f"is a secret but was set in plain text; run: {secret_command(key)}")
            if isinstance(value, Mapping | list):  # structured (set with --path), handed over decoded
                value = json.dumps(value)
            if isinstance(value, str) and value:
                secrets[key] = Secret(key, value)
            continue
        if key not in TOP_LEVEL_KEYS:
            problems.error(full_key, f"unknown key{suggest(key, TOP_LEVEL_KEYS + SECRET_KEYS)}")
            continue
        if full_key in secret_keys:
            # Its values become plain resource inputs (scripts, Helm values, API bodies) and
            # would sit unencrypted in state and renders; refuse rather than silently downgrade.
            secret_downgrades.append(full_key)
            problems.error(
                full_key,
                "was set with --secret, but it is not a secret key: its values become plain resource "
                "inputs, stored unencrypted. Set it in plain text "
                f"(pulumi config rm {full_key}, then pulumi config set without --secret); the secrets are "
                + ", ".join(f"{NAMESPACE}:{k}" for k in SECRET_KEYS),
            )
            continue
        values[key] = _decode(value)
    if secret_downgrades:
        # Parsing those values could echo secret text in error messages: stop here.
        problems.raise_if_any()

    top = Reader(values, "", problems)
    top.path = NAMESPACE
    def top_key_path(key: str) -> str:
        return f"{NAMESPACE}:{key}"  # top-level keys use ':' not '.'

    top.key_path = top_key_path  # type: ignore[method-assign]

    cluster_name = top.string("clusterName", stack, pattern=DNS_LABEL_RE.pattern, hint="a DNS-1123 label") or stack
    errors_before = len(problems.errors)
    kind = top.choice("clusterKind", ("k3s", "cleura", "existing"), "k3s")
    if len(problems.errors) > errors_before:
        # Every other key's rules depend on the kind: guessing one would bury the one real
        # mistake under errors that do not apply (a 'Cleura' typo asking for nodes and SSH).
        for key in TOP_LEVEL_KEYS:
            top.raw(key)
        top.finish()
        problems.raise_if_any()
    versions_r = top.obj("versions")
    charts = parse_charts(versions_r, parse_chart_mirror(top))
    delete_unreachable = top.boolean("deleteUnreachable", False)
    if delete_unreachable:
        problems.warn(f"{NAMESPACE}:deleteUnreachable",
                      "is true: if the cluster cannot be reached, refresh/destroy DROP every in-cluster resource "
                      "from state; use it only to tear down a cluster that is already gone, then remove it")
    if kind == "existing":
        return _parse_existing_stack(top, versions_r, secrets, charts, project, stack, cluster_name,
                                     delete_unreachable)
    if top.has("existing"):
        top.error("existing", "applies only to clusterKind 'existing'")
        top.raw("existing")
    if "kubeconfig" in secrets:
        problems.error(f"{NAMESPACE}:kubeconfig", "applies only to clusterKind 'existing' (this stack builds "
                                                 f"its cluster); run: pulumi config rm {NAMESPACE}:kubeconfig")
    if kind == "cleura":
        from components.gardener.spec import parse_cleura

        cleura = parse_cleura(top.raw("cleura"), top_key_path("cleura"), problems)
        storage = parse_storage(top, "cinder", kind, (), secrets)
        ingress = parse_ingress(top, kind, None)
        certs = parse_certs(top, ingress, secrets)
        vault = parse_vault(top, kind, ())
        argocd = parse_argocd(top, secrets, schedulable_shoot_nodes(cleura), vault.enabled)
        for unused in ("nodes", "ssh", "network", "k3s", "calico", "metallb", "manifests"):
            if top.has(unused):
                top.error(unused, "does not apply to clusterKind 'cleura' (Gardener runs the nodes, CNI and "
                                  "load balancers); remove it")
                top.raw(unused)
        for unused in ("k3s", "kubeVip", "k3sInstaller"):
            if versions_r.has(unused):
                versions_r.error(unused, "does not apply to clusterKind 'cleura' (the shoot runs "
                                         "cleura.kubernetesVersion); remove it")
                versions_r.raw(unused)
        versions_r.finish()
        top.finish()
        problems.raise_if_any()
        return StackConfig(project, stack, cluster_name, "cleura", charts, storage, cleura=cleura,
                           ingress=ingress, certs=certs, argocd=argocd, vault=vault,
                           delete_unreachable=delete_unreachable,
                           warnings=tuple(problems.warnings))

    if top.has("cleura"):
        top.error("cleura", "applies only to clusterKind 'cleura'")
        top.raw("cleura")
    nodes, server_count = parse_nodes(top)
    if not top.has("nodes"):
        top.error("nodes", "is required for clusterKind 'k3s' (a list of {name, address, role})")
    else:
        check_server_count(server_count, problems, top_key_path("nodes"))
    network = parse_network(top, nodes)
    ssh = parse_ssh(top, secrets, {n.name for n in nodes})
    k3s = parse_k3s(top, versions_r, nodes, secrets)
    if k3s.vip is not None and network is not None and network.node_cidrs and not any(
        k3s.vip.address in n for n in network.node_cidrs
    ):
        problems.error(f"{NAMESPACE}:k3s.vip.address", f"{k3s.vip.address} lies in none of network.nodeCidrs")
    if k3s.vip is not None and network is not None:
        for key, net in (("podCidr", network.pod_cidr), ("serviceCidr", network.service_cidr)):
            if k3s.vip.address in net:
                problems.error(f"{NAMESPACE}:k3s.vip.address",
                               f"{k3s.vip.address} lies in {NAMESPACE}:network.{key} ({net}); the VIP must be a "
                               "free address on the node network")
    calico = parse_calico(top, network)
    metallb = parse_metallb(top, nodes, network)
    if calico.enabled and calico_runs_bird(calico.encapsulation) and metallb.enabled and any(
        pool.advertise == "bgp" for pool in metallb.pools
    ):
        problems.error(
            f"{NAMESPACE}:metallb.pools",
            f"BGP advertisement cannot run beside Calico's BGP daemon with encapsulation "
            f"{calico.encapsulation} (both listen on TCP 179 on every node); use advertise: l2, or set "
            f"{NAMESPACE}:calico.encapsulation to VXLAN or VXLANCrossSubnet",
        )
    if k3s.vip is not None:
        for pool in metallb.pools:
            if any(r.contains(k3s.vip.address) for r in pool.addresses):
                problems.error(f"{NAMESPACE}:metallb.pools", f"pool {pool.name} contains the API VIP {k3s.vip.address}")
    storage = parse_storage(top, "longhorn", kind, nodes, secrets)
    manifests_mirror = parse_manifest_mirror(top, storage)
    ingress = parse_ingress(top, kind, metallb)
    certs = parse_certs(top, ingress, secrets)
    vault = parse_vault(top, kind, nodes)
    argocd = parse_argocd(top, secrets, schedulable_control_nodes(nodes), vault.enabled)
    versions_r.finish()
    top.finish()
    problems.raise_if_any()
    return StackConfig(
        project, stack, cluster_name, "k3s", charts, storage, nodes, network, ssh, k3s, calico, metallb,
        ingress=ingress, certs=certs, argocd=argocd, vault=vault, delete_unreachable=delete_unreachable,
        manifests_mirror=manifests_mirror, warnings=tuple(problems.warnings),
    )


def _parse_existing_stack(top: Reader, versions_r: Reader, secrets: Mapping[str, Secret], charts: ChartVersions,
                          project: str, stack: str, cluster_name: str, delete_unreachable: bool) -> StackConfig:
    """``clusterKind: existing``: the add-on layer on a cluster the stack neither builds nor deletes."""
    problems = top.problems
    existing = parse_existing(top, secrets, problems)
    for unused in ("nodes", "ssh", "k3s", "cleura", "calico"):
        if top.has(unused):
            why = ("an existing cluster brings its own CNI" if unused == "calico"
                   else "the stack does not build or reach the cluster's nodes")
            top.error(unused, f"does not apply to clusterKind 'existing' ({why}); remove it")
            top.raw(unused)
    for unused in ("k3s", "kubeVip", "k3sInstaller"):
        if versions_r.has(unused):
            versions_r.error(unused, "does not apply to clusterKind 'existing' (the cluster runs its own "
                                     "Kubernetes); remove it")
            versions_r.raw(unused)
    # The cluster's own CIDRs, when given, keep MetalLB pools clear of them.
    network = parse_network(top, ()) if top.has("network") else None
    metallb = parse_metallb(top, (), network)
    storage = parse_storage(top, "provided", "existing", (), secrets)
    manifests_mirror = parse_manifest_mirror(top, storage)
    ingress = parse_ingress(top, "existing", metallb)
    certs = parse_certs(top, ingress, secrets)
    vault = parse_vault(top, "existing", ())
    argocd = parse_argocd(top, secrets, existing.schedulable_nodes if existing else 1, vault.enabled)
    versions_r.finish()
    top.finish()
    problems.raise_if_any()
    return StackConfig(project, stack, cluster_name, "existing", charts, storage, network=network, metallb=metallb,
                       ingress=ingress, certs=certs, argocd=argocd, vault=vault, existing=existing,
                       delete_unreachable=delete_unreachable, manifests_mirror=manifests_mirror,
                       warnings=tuple(problems.warnings))


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


__all__ = [
    "AUTODETECTION_METHODS",
    "CALICO_ENCAPSULATIONS",
    "CHART_VERSION_RE",
    "INTERFACE_RE",
    "K3S_VERSION_RE",
    "LABEL_KEY_RE",
    "LABEL_VALUE_RE",
    "LONGHORN_DISK_LABEL",
    "MAYASTOR_LABEL",
    "NAMESPACE",
    "RESERVED_ASNS",
    "TAINT_RE",
    "AddressPool",
    "Airgap",
    "ArgoCD",
    "Bastion",
    "BgpPeer",
    "Calico",
    "Certs",
    "ChartVersions",
    "Cinder",
    "ConfigError",
    "Etcd",
    "EtcdS3",
    "Existing",
    "Ingress",
    "Issuer",
    "K3s",
    "Longhorn",
    "LonghornBackup",
    "MetalLB",
    "Network",
    "Node",
    "OpenEBS",
    "RegistryConfig",
    "Secret",
    "Ssh",
    "StackConfig",
    "Storage",
    "Taint",
    "Vault",
    "Vip",
    "load_stack_config",
    "parse_stack_config",
    "secret_command",
]
