"""Vault: a Raft HA Vault auto-unsealed by a small Transit Vault, bootstrapped with no human.

```
              ┌──────────── vault-core ─────────────────────────────────────────────┐
 unsealer ───►│ vault-transit (1 pod, Raft)   transit/keys/autounseal                │
 (Deployment, │      ▲  sys/unseal with the key in Secret vault-transit-unseal       │
  loops)      │      │  encrypt/decrypt with the orphan periodic token               │
              │      │  (Secret vault-transit-seal-token -> VAULT_TOKEN)             │
              │ vault-ha-0..N-1 (Raft, retry_join every peer, seal "transit")        │
              └──────────────────────────────────────────────────────────────────────┘
```
Install order: storage → Transit release → bootstrap-transit Job (init, unseal, transit key,
policy, seal token) → HA release → bootstrap-ha Job (init with recovery keys, Kubernetes auth,
``kv/`` KV v2, the `VaultAuthRole` policies and roles, autopilot, all peers voters) → the root
token is read back from its in-cluster Secret as a Pulumi secret. The scripts are shell files in
`components.vault_sh` (README: "Vault"). Neither release waits for its pods (sealed pods are
never Ready); the Jobs wait, with their own deadlines, and Pulumi waits for the Jobs.

TLS on every listener: a CA and one server certificate per Vault from pulumi-tls (private keys
are Pulumi secrets); the CA is an output (`ca_cert`) and the ConfigMap ``vault-ca``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls
import yaml

from components import kube
from components.config import StackConfig
from components.vault_auth import VaultAuthRole
from components.versions import VAULT_TOOLS_IMAGE, ChartPin

TRANSIT_RELEASE = "vault-transit"
HA_RELEASE = "vault-ha"
PORT = 8200
CLUSTER_PORT = 8201
SEAL_KEY_NAME = "autounseal"
SEAL_POLICY_NAME = "autounseal"
SEAL_TOKEN_PERIOD = "768h"  # noqa: S105 - 32 days; renewed by Vault itself and checked hourly by the unsealer
TRANSIT_UNSEAL_SECRET = "vault-transit-unseal"  # noqa: S105 - Secret names, not values
TRANSIT_ROOT_SECRET = "vault-transit-root"  # noqa: S105
SEAL_TOKEN_SECRET = "vault-transit-seal-token"  # noqa: S105
HA_INIT_SECRET = "vault-ha-init"  # noqa: S105
CA_CONFIGMAP = "vault-ca"
SCRIPTS_CONFIGMAP = "vault-bootstrap-scripts"
ROLES_CONFIGMAP = "vault-bootstrap-roles"
BOOTSTRAP = "vault-bootstrap"
UNSEALER = "vault-unsealer"
SCRIPT_FILES = ("lib.sh", "bootstrap-transit.sh", "bootstrap-ha.sh", "unsealer.sh")
USERCONFIG = "/vault/userconfig"
JOB_TIMEOUT = "30m"  # Pulumi's wait for each Job: longer than the scripts' own WAIT_SECONDS
WAIT_SECONDS = 1200
CA_VALIDITY_HOURS = 10 * 365 * 24
CERT_VALIDITY_HOURS = 2 * 365 * 24
CERT_EARLY_RENEWAL_HOURS = 90 * 24  # `pulumi up` re-issues a server certificate in its last 90 days
# No host access here: Pod Security "baseline" enforced, "restricted" reported (the chart's pods).
NAMESPACE_LABELS = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
TOOLS_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}


def script(name: str) -> str:
    """One of the shell files shipped in `components.vault_sh`."""
    return resources.files("components.vault_sh").joinpath(name).read_text()


@dataclass(frozen=True)
class VaultArgs:
    """Everything `Vault` builds from (typed, frozen; see `from_config`)."""

    namespace: str
    replicas: int
    chart: ChartPin
    storage_class: str
    storage_size: str = "10Gi"
    transit_storage_size: str = "1Gi"
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    placement: kube.Placement = field(default_factory=kube.Placement)
    injector: bool = False
    ui_host: str | None = None
    ui_ingress_class: str | None = None
    cluster_domain: str = "cluster.local"
    dev: bool = False
    auth_roles: tuple[VaultAuthRole, ...] = ()
    tools_image: str = VAULT_TOOLS_IMAGE
    kubernetes_host: str = "https://kubernetes.default.svc"

    @classmethod
    def from_config(cls, cfg: StackConfig, storage_class: str,
                    auth_roles: tuple[VaultAuthRole, ...] = ()) -> VaultArgs:
        v = cfg.vault
        default = kube.control_tier(cfg.nodes) if cfg.cluster_kind == "k3s" else kube.Placement()
        placement = kube.Placement(
            dict(v.node_selector) if v.node_selector is not None else default.node_selector,
            [dict(t) for t in v.tolerations] if v.tolerations is not None else default.tolerations,
        )
        names = [r.name for r in auth_roles]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate Vault auth role names: {sorted(names)}")
        return cls(
            namespace=v.namespace, replicas=v.replicas, chart=cfg.charts["vault"],
            storage_class=v.storage_class or storage_class, storage_size=v.storage_size,
            transit_storage_size=v.transit_storage_size, resources=v.resources, placement=placement,
            injector=v.injector, ui_host=v.ui_host, ui_ingress_class=v.ui_ingress_class,
            cluster_domain=cfg.network.cluster_domain if cfg.network is not None else "cluster.local",
            dev=v.dev, auth_roles=auth_roles,
        )

    # -- addresses ------------------------------------------------------------------------
    def service(self, release: str) -> str:
        return f"{release}.{self.namespace}.svc"

    def pod(self, release: str, index: int) -> str:
        return f"{release}-{index}.{release}-internal.{self.namespace}.svc"

    @property
    def address(self) -> str:
        """The in-cluster address of the HA Vault (any pod; standbys forward to the leader)."""
        return f"https://{self.service(HA_RELEASE)}:{PORT}"

    @property
    def transit_address(self) -> str:
        return f"https://{self.service(TRANSIT_RELEASE)}:{PORT}"

    def replicas_of(self, release: str) -> int:
        return self.replicas if release == HA_RELEASE else 1


# -- TLS names --------------------------------------------------------------------------------


def tls_dns_names(args: VaultArgs, release: str) -> list[str]:
    """Every name a client or peer uses for `release`: services, the headless pods, localhost."""
    ns, domain = args.namespace, args.cluster_domain
    names: list[str] = []
    for svc in (release, f"{release}-active", f"{release}-standby", f"{release}-internal"):
        names += [svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.{domain}"]
    for i in range(args.replicas_of(release)):
        pod = f"{release}-{i}.{release}-internal"
        names += [pod, f"{pod}.{ns}", f"{pod}.{ns}.svc", f"{pod}.{ns}.svc.{domain}"]
    if release == HA_RELEASE and args.ui_host:
        names.append(args.ui_host)
    return [*names, "localhost"]


# -- Vault server configuration (HCL) ---------------------------------------------------------


def _hcl_string(value: str) -> str:
    return json.dumps(value)  # HCL string literals share JSON's escapes


def tls_dir(release: str) -> str:
    return f"{USERCONFIG}/{release}-tls"


def listener_hcl(release: str) -> str:
    d = tls_dir(release)
    return (
        'listener "tcp" {\n'
        f'  address = "[::]:{PORT}"\n'
        f'  cluster_address = "[::]:{CLUSTER_PORT}"\n'
        f"  tls_cert_file = {_hcl_string(d + '/tls.crt')}\n"
        f"  tls_key_file = {_hcl_string(d + '/tls.key')}\n"
        '  tls_min_version = "tls12"\n'
        "}\n"
    )


def raft_hcl(args: VaultArgs, release: str) -> str:
    """Raft storage; on the HA Vault one ``retry_join`` per peer (pod DNS names the certificate covers)."""
    joins = "".join(
        "  retry_join {\n"
        f"    leader_api_addr = {_hcl_string(f'https://{args.pod(release, i)}:{PORT}')}\n"
        f"    leader_ca_cert_file = {_hcl_string(tls_dir(release) + '/ca.crt')}\n"
        "  }\n"
        for i in range(args.replicas_of(release))
    ) if release == HA_RELEASE else ""  # the one-pod Transit Vault has no peer to join
    return f'storage "raft" {{\n  path = "/vault/data"\n{joins}}}\n'


def seal_hcl(args: VaultArgs) -> str:
    """The HA Vault's transit seal; its token comes from VAULT_TOKEN (a Secret), never from here."""
    return (
        'seal "transit" {\n'
        f"  address = {_hcl_string(args.transit_address)}\n"
        f"  key_name = {_hcl_string(SEAL_KEY_NAME)}\n"
        '  mount_path = "transit/"\n'
        f"  tls_ca_cert = {_hcl_string(tls_dir(HA_RELEASE) + '/ca.crt')}\n"
        "}\n"
    )


def server_config(args: VaultArgs, release: str) -> str:
    """The complete server configuration of `release` (``server.ha.raft.config``)."""
    parts = [
        f"ui = {'true' if release == HA_RELEASE and args.ui_host else 'false'}\n"
        # Integrated storage memory-maps its database: mlock would pin all of it (HashiCorp's advice).
        "disable_mlock = true\n",
        listener_hcl(release),
        raft_hcl(args, release),
        'service_registration "kubernetes" {}\n',
    ]
    if release == HA_RELEASE:
        parts.append(seal_hcl(args))
    return "\n".join(parts)


# -- chart values ------------------------------------------------------------------------------


def server_labels(release: str) -> dict[str, str]:
    """The labels the chart puts on `release`'s server pods."""
    return {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": release, "component": "server"}


def values(args: VaultArgs, release: str) -> dict[str, Any]:
    """Chart values for `release` (``vault-transit`` or ``vault-ha``)."""
    ha = release == HA_RELEASE
    replicas = args.replicas_of(release)
    selector = {"matchLabels": server_labels(release)}
    server: dict[str, Any] = {
        "resources": {k: dict(v) for k, v in args.resources.items()},
        "readinessProbe": {"enabled": True, "path": "/v1/sys/health?standbyok=true", "port": PORT},
        "dataStorage": {
            "enabled": True, "size": args.storage_size if ha else args.transit_storage_size,
            "storageClass": args.storage_class, "accessMode": "ReadWriteOnce",
        },
        "extraVolumes": [{"type": "secret", "name": f"{release}-tls"}],
        "extraEnvironmentVars": {"VAULT_CACERT": f"{tls_dir(release)}/ca.crt"},
        # One replica per node (the chart renders this string with tpl), spread over zones too.
        "affinity": yaml.safe_dump({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}]}}, sort_keys=True),
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": selector},
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": selector},
        ],
        "ha": {
            "enabled": True, "replicas": replicas,
            "raft": {"enabled": True, "setNodeId": True, "config": server_config(args, release)},
            "disruptionBudget": {"enabled": ha, "maxUnavailable": 1},
        },
        **args.placement.values(),
    }
    if ha:
        # Clients of the vault-ha Service reach only Ready (unsealed) pods; Transit keeps the chart's
        # default (true) so the bootstrap and the seal reach it while it is still sealed.
        server["service"] = {"publishNotReadyAddresses": False}
        if args.ui_host:
            # The ingress controller must speak TLS to Vault: Traefik reads this on the Service.
            https = {"traefik.ingress.kubernetes.io/service.serversscheme": "https"}
            server["service"].update(annotations=https, active={"annotations": https})
        server["extraSecretEnvironmentVars"] = [
            {"envName": "VAULT_TOKEN", "secretName": SEAL_TOKEN_SECRET, "secretKey": "token"}]
        if args.ui_host:
            ingress: dict[str, Any] = {"enabled": True, "activeService": True,
                                       "hosts": [{"host": args.ui_host, "paths": []}],
                                       "annotations": {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"}}
            if args.ui_ingress_class:
                ingress["ingressClassName"] = args.ui_ingress_class
            server["ingress"] = ingress
    return {
        "global": {"tlsDisable": False},
        # The chart compares these as strings ("-" inherits global.enabled).
        "injector": {"enabled": "true" if args.injector and ha else "false"},
        "ui": {"enabled": ha and bool(args.ui_host)},
        "server": server,
    }


def release_spec(args: VaultArgs, release: str) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(release, args.chart, args.namespace, values(args, release))


def release_args(args: VaultArgs, release: str, namespace: pulumi.Input[str] | None = None) -> k8s.helm.v3.ReleaseArgs:
    """The release without Helm's wait: sealed pods are never Ready, the bootstrap Jobs wait instead."""
    out = release_spec(args, release).args(namespace)
    out.skip_await = True
    out.wait_for_jobs = False
    return out


# -- bootstrap and unsealer --------------------------------------------------------------------


def roles_json(args: VaultArgs) -> str:
    """The roles the bootstrap writes (policy HCL is not secret)."""
    return json.dumps([
        {"name": r.name, "service_accounts": list(r.service_accounts), "namespaces": list(r.namespaces),
         "policy_name": r.policy_name, "policy_hcl": r.policy_hcl, "token_ttl": r.token_ttl}
        for r in args.auth_roles
    ], indent=2, sort_keys=True) + "\n"


def scripts_data() -> dict[str, str]:
    return {name: script(name) for name in SCRIPT_FILES}


def bootstrap_rbac(args: VaultArgs) -> list[dict[str, Any]]:
    """ServiceAccounts, Roles and RoleBindings of the bootstrap Jobs and the unsealer.

    The bootstrap may create Secrets (create cannot be limited by name) and read and replace
    exactly its three: it creates the Transit unseal key's Secret but cannot read it back; only
    the unsealer can. The unsealer may read that and the Transit root token, read and replace the seal token,
    and list and delete pods (to restart crash-looping HA pods after a cold start). Neither
    touches the TLS Secrets.
    """
    ns = args.namespace
    out: list[dict[str, Any]] = []
    rules = {
        BOOTSTRAP: [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "update"],
             "resourceNames": [TRANSIT_ROOT_SECRET, SEAL_TOKEN_SECRET, HA_INIT_SECRET]},
        ],
        UNSEALER: [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
             "resourceNames": [TRANSIT_UNSEAL_SECRET, TRANSIT_ROOT_SECRET]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "update"],
             "resourceNames": [SEAL_TOKEN_SECRET]},
            # After a cold start: restart HA pods crash-looping on a sealed Transit (unsealer.sh).
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]},
        ],
    }
    for name, role_rules in rules.items():
        meta = {"name": name, "namespace": ns}
        out += [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": role_rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
             "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
        ]
    return out


def _env(pairs: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in pairs.items()]


def tools_pod(args: VaultArgs, component: str, script_name: str, env: Mapping[str, str],
              restart_policy: str) -> dict[str, Any]:
    """A pod spec that runs one of the scripts: non-root, read-only root, secrets only in tmpfs."""
    return {
        "serviceAccountName": component,
        "restartPolicy": restart_policy,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": component,
            "image": args.tools_image,
            "command": ["/bin/bash", f"/scripts/{script_name}"],
            "env": _env({
                "NAMESPACE": args.namespace, "VAULT_CACERT": "/vault-ca/ca.crt", "TMPDIR": "/tmp",  # noqa: S108 - a tmpfs emptyDir
                "TRANSIT_UNSEAL_SECRET": TRANSIT_UNSEAL_SECRET, "TRANSIT_ROOT_SECRET": TRANSIT_ROOT_SECRET,
                "SEAL_TOKEN_SECRET": SEAL_TOKEN_SECRET, "UNSEALER_NAME": UNSEALER,
                "HA_INIT_SECRET": HA_INIT_SECRET, "SEAL_KEY_NAME": SEAL_KEY_NAME,
                "SEAL_POLICY_NAME": SEAL_POLICY_NAME, "SEAL_TOKEN_PERIOD": SEAL_TOKEN_PERIOD,
                "TRANSIT_ADDR": args.transit_address, "WAIT_SECONDS": str(WAIT_SECONDS), **env,
            }),
            "resources": TOOLS_RESOURCES,
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [
                {"name": "scripts", "mountPath": "/scripts", "readOnly": True},
                {"name": "roles", "mountPath": "/config", "readOnly": True},
                {"name": "ca", "mountPath": "/vault-ca", "readOnly": True},
                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the in-memory emptyDir below
            ],
        }],
        "volumes": [
            {"name": "scripts", "configMap": {"name": SCRIPTS_CONFIGMAP, "defaultMode": 0o555}},
            {"name": "roles", "configMap": {"name": ROLES_CONFIGMAP}},
            {"name": "ca", "configMap": {"name": CA_CONFIGMAP}},
            # In memory: the scripts' response and header files never touch a disk.
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        ],
        **args.placement.values(),
    }


def inputs_digest(args: VaultArgs) -> str:
    """Changes when a script, the roles or the chart change: the Jobs then run again (idempotently)."""
    text = json.dumps({"scripts": scripts_data(), "roles": roles_json(args), "chart": args.chart.version,
                       "replicas": args.replicas}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def bootstrap_job(args: VaultArgs, phase: str) -> dict[str, Any]:
    """``vault-bootstrap-transit`` or ``vault-bootstrap-ha`` (Pulumi waits for it to complete)."""
    env: dict[str, str] = {}
    if phase == "ha":
        # Init on the first pod (the others join it); everything after on the leader.
        env = {"HA_INIT_ADDR": f"https://{args.pod(HA_RELEASE, 0)}:{PORT}",
               "HA_ADDR": f"https://{args.service(HA_RELEASE + '-active')}:{PORT}",
               "HA_REPLICAS": str(args.replicas), "ROLES_FILE": "/config/roles.json",
               "KUBERNETES_HOST": args.kubernetes_host}
    name = f"{BOOTSTRAP}-{phase}"
    labels = {"app.kubernetes.io/name": BOOTSTRAP, "app.kubernetes.io/part-of": "vault"}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        # A Job that failed (all retries) is replaced by the next `pulumi up` (pulumi-kubernetes'
        # replaceUnready), instead of being waited for again: fix the cause, run `pulumi up`.
        "metadata": {"name": name, "namespace": args.namespace, "labels": labels,
                     "annotations": {kube.REPLACE_UNREADY: "true"}},
        "spec": {
            "backoffLimit": 3,  # every retry is a fresh, idempotent run
            "activeDeadlineSeconds": WAIT_SECONDS + 300,
            "template": {
                "metadata": {"labels": labels, "annotations": {"platform.example.com/inputs": inputs_digest(args)}},
                "spec": tools_pod(args, BOOTSTRAP, f"bootstrap-{phase}.sh", env, "Never"),
            },
        },
    }


def unsealer_deployment(args: VaultArgs) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": UNSEALER, "app.kubernetes.io/part-of": "vault"}
    selector = ",".join(f"{k}={v}" for k, v in server_labels(HA_RELEASE).items() if k != "app.kubernetes.io/name")
    env = {"TRANSIT_PODS": f"https://{args.pod(TRANSIT_RELEASE, 0)}:{PORT}", "INTERVAL": "10",
           "TOKEN_CHECK_SECONDS": "3600", "HA_POD_SELECTOR": urllib.parse.quote(selector, safe="")}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": UNSEALER, "namespace": args.namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {"platform.example.com/inputs": inputs_digest(args)}},
                "spec": tools_pod(args, UNSEALER, "unsealer.sh", env, "Always"),
            },
        },
    }


def transit_network_policy(args: VaultArgs) -> dict[str, Any]:
    """Only the HA Vault's servers, the bootstrap and the unsealer reach the Transit Vault's API."""
    peers = [server_labels(HA_RELEASE), {"app.kubernetes.io/name": BOOTSTRAP},
             {"app.kubernetes.io/name": UNSEALER}]
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": f"{TRANSIT_RELEASE}-ingress", "namespace": args.namespace},
        "spec": {
            "podSelector": {"matchLabels": server_labels(TRANSIT_RELEASE)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": p}} for p in peers],
                         "ports": [{"protocol": "TCP", "port": PORT}]}],
        },
    }


def decode_root_token(data: Mapping[str, str] | None) -> str | None:
    """The root token from the data of Secret ``vault-ha-init`` (None before the first bootstrap)."""
    if not data or "root_token" not in data:
        return None
    return base64.b64decode(data["root_token"]).decode()


# -- the component -----------------------------------------------------------------------------


class Vault(pulumi.ComponentResource):  # type: ignore[misc]
    """Transit Vault, HA Vault, their bootstrap and the unsealer in `args.namespace`.

    Outputs: `address` (in-cluster HA address), `ca_cert` (PEM), `root_token` (secret),
    `ready` (True once the HA bootstrap Job completed).
    """

    address: str
    ca_cert: pulumi.Output[str]
    root_token: pulumi.Output[str | None]
    ready: pulumi.Output[bool]

    def __init__(self, name: str, args: VaultArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:vault:Vault", name, None, opts)
        self.args = args
        self.address = args.address
        def child(*after: pulumi.Resource) -> pulumi.ResourceOptions:
            return kube.child_options(self, opts, *after)

        ns = kube.namespace(f"{name}-namespace", args.namespace, child(), NAMESPACE_LABELS)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child())
        ca = tls.SelfSignedCert(
            f"{name}-ca", private_key_pem=ca_key.private_key_pem, is_ca_certificate=True,
            validity_period_hours=CA_VALIDITY_HOURS, allowed_uses=["cert_signing", "crl_signing"],
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"Vault CA ({args.namespace})",
                                                  organization="platform"),
            opts=child(),
        )
        self.ca_cert = ca.cert_pem
        ca_map = k8s.core.v1.ConfigMap(
            f"{name}-ca-configmap", metadata=self._meta(ns, CA_CONFIGMAP), data={"ca.crt": ca.cert_pem},
            opts=child())
        tls_secrets = {release: self._server_tls(name, ns, release, ca_key, ca, child)
                       for release in (TRANSIT_RELEASE, HA_RELEASE)}
        scripts_map = k8s.core.v1.ConfigMap(
            f"{name}-scripts", metadata=self._meta(ns, SCRIPTS_CONFIGMAP), data=scripts_data(), opts=child())
        roles_map = k8s.core.v1.ConfigMap(
            f"{name}-roles", metadata=self._meta(ns, ROLES_CONFIGMAP), data={"roles.json": roles_json(args)},
            opts=child())
        rbac = self._rbac(name, ns, child)
        policy_m = transit_network_policy(args)
        netpol = k8s.networking.v1.NetworkPolicy(
            f"{name}-transit-netpol", metadata=self._meta(ns, policy_m["metadata"]["name"]), spec=policy_m["spec"],
            opts=child())
        transit = k8s.helm.v3.Release(
            f"{name}-transit", args=release_args(args, TRANSIT_RELEASE, ns.metadata.name),
            opts=child(tls_secrets[TRANSIT_RELEASE], netpol))
        tools = [ca_map, scripts_map, roles_map, *rbac]
        unsealer_m = unsealer_deployment(args)
        k8s.apps.v1.Deployment(
            f"{name}-unsealer", metadata=self._meta(ns, UNSEALER, unsealer_m["metadata"]["labels"]),
            spec=unsealer_m["spec"], opts=child(transit, *tools))
        boot_transit = self._job(name, ns, "transit", child(transit, *tools))
        ha = k8s.helm.v3.Release(
            f"{name}-ha", args=release_args(args, HA_RELEASE, ns.metadata.name),
            opts=child(tls_secrets[HA_RELEASE], boot_transit))
        boot_ha = self._job(name, ns, "ha", child(ha, *tools))
        init = k8s.core.v1.Secret.get(
            f"{name}-init-secret", boot_ha.metadata.apply(lambda _: f"{args.namespace}/{HA_INIT_SECRET}"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[boot_ha]))
        self.root_token = pulumi.Output.secret(init.data.apply(decode_root_token))
        self.ready = kube.ready_when(boot_ha.id)
        self.register_outputs({"address": self.address, "caCert": self.ca_cert, "ready": self.ready,
                               "rootToken": self.root_token})

    @staticmethod
    def _meta(ns: k8s.core.v1.Namespace, name: str, labels: Mapping[str, str] | None = None
              ) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns.metadata.name, labels=dict(labels or {}) or None)

    def _server_tls(self, name: str, ns: k8s.core.v1.Namespace, release: str, ca_key: tls.PrivateKey,
                    ca: tls.SelfSignedCert, child: Callable[..., pulumi.ResourceOptions]) -> k8s.core.v1.Secret:
        key = tls.PrivateKey(f"{name}-{release}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child())
        csr = tls.CertRequest(
            f"{name}-{release}-csr", private_key_pem=key.private_key_pem, dns_names=tls_dns_names(self.args, release),
            ip_addresses=["127.0.0.1"], subject=tls.CertRequestSubjectArgs(common_name=self.args.service(release)),
            opts=child())
        cert = tls.LocallySignedCert(
            f"{name}-{release}-cert", cert_request_pem=csr.cert_request_pem, ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem, validity_period_hours=CERT_VALIDITY_HOURS,
            early_renewal_hours=CERT_EARLY_RENEWAL_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", "server_auth", "client_auth"], opts=child())
        return k8s.core.v1.Secret(
            f"{name}-{release}-tls", metadata=self._meta(ns, f"{release}-tls"), type="kubernetes.io/tls",
            string_data={"tls.crt": cert.cert_pem, "tls.key": pulumi.Output.secret(key.private_key_pem),
                         "ca.crt": ca.cert_pem},
            opts=child())

    def _rbac(self, name: str, ns: k8s.core.v1.Namespace,
              child: Callable[..., pulumi.ResourceOptions]) -> list[pulumi.Resource]:
        out: list[pulumi.Resource] = []
        accounts: dict[str, pulumi.Resource] = {}
        for m in bootstrap_rbac(self.args):
            rname = f"{name}-{m['metadata']['name']}-{m['kind'].lower()}"
            meta = self._meta(ns, m["metadata"]["name"])
            if m["kind"] == "ServiceAccount":
                accounts[m["metadata"]["name"]] = k8s.core.v1.ServiceAccount(rname, metadata=meta, opts=child())
                out.append(accounts[m["metadata"]["name"]])
            elif m["kind"] == "Role":
                out.append(k8s.rbac.v1.Role(rname, metadata=meta, rules=m["rules"], opts=child()))
            else:
                out.append(k8s.rbac.v1.RoleBinding(rname, metadata=meta, role_ref=m["roleRef"],
                                                   subjects=m["subjects"], opts=child(*out)))
        return out

    def _job(self, name: str, ns: k8s.core.v1.Namespace, phase: str, opts: pulumi.ResourceOptions) -> k8s.batch.v1.Job:
        m = bootstrap_job(self.args, phase)
        return k8s.batch.v1.Job(
            f"{name}-bootstrap-{phase}", metadata=self._meta(ns, m["metadata"]["name"], m["metadata"]["labels"]),
            spec=m["spec"],
            opts=opts.merge(pulumi.ResourceOptions(
                # A fixed name and an immutable pod template: a changed script replaces it delete-first.
                delete_before_replace=True,
                custom_timeouts=pulumi.CustomTimeouts(create=JOB_TIMEOUT, update=JOB_TIMEOUT),
            )),
        )
