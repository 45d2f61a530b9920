"""Pure renderers of every file K3s reads: config.yaml, registries.yaml, the kube-vip manifest.

All server configs are produced by `server_config`, which starts from one dict built once
by `server_common` from `K3sClusterArgs`; only the keys in `PER_NODE_KEYS` differ between
servers. So the values K3s requires to be identical on every server ("critical
configuration value mismatch" otherwise) are identical by construction, and the tests check
it for whole stacks.

Secrets (token, agent token, etcd S3 secret key, registry passwords, identity tokens and
client keys) enter only through a `ConfigSecrets` value, which the component builds inside an
`Output.apply` over secret outputs; the rendered documents (config.yaml, registries.yaml, the
registry client keys: `install_stdin`) then travel to the host on stdin and are written with
mode 0600.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import yaml

from components.config.registries import registry_dir_name
from components.k3s.args import K3sClusterArgs, NodeSpec
from components.netaddr import parse_ip

CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
REGISTRIES_PATH = "/etc/rancher/k3s/registries.yaml"
KUBE_VIP_MANIFEST_PATH = "/var/lib/rancher/k3s/server/manifests/platform-kube-vip.yaml"
API_PORT = 6443
ETCD_S3_CA_PATH = "/etc/rancher/k3s/etcd-s3-ca.crt"  # written by the install script (etcd.s3.endpointCa)
# k3s.registries.configs TLS files: <dir>/<registry>/{ca.crt,client.crt,client.key}, written by the install script.
REGISTRY_TLS_DIR = "/etc/rancher/k3s/registry-tls"
# Between the files on the install step's stdin: a line no YAML document or PEM block here can hold
# (a YAML comment at column 0; `install_stdin` checks it anyway).
STDIN_SEPARATOR = "#platform:k3s:next-file"
KUBELET_LEASE_RENEW_SECONDS = 10  # the kubelet renews its Lease every 10s (a quarter of its 40s duration)
NODE_MONITOR_GRACE_SECONDS = 3 * KUBELET_LEASE_RENEW_SECONDS

# K3s refuses to join a server whose value differs from the cluster's for these keys.
CRITICAL_SERVER_KEYS = frozenset({
    "agent-token", "cluster-cidr", "cluster-dns", "cluster-domain", "disable", "disable-cloud-controller",
    "disable-helm-controller", "disable-network-policy", "egress-selector-mode", "flannel-backend",
    "flannel-ipv6-masq", "secrets-encryption", "service-cidr", "token",
})
# The only keys allowed to differ between two servers of one cluster.
PER_NODE_KEYS = frozenset({"node-name", "node-ip", "node-label", "node-taint", "cluster-init", "server"})


@dataclass(frozen=True)
class RegistryCredentials:
    """The secret values of one registries.yaml `configs` entry. Never printed: repr hides them."""

    password: str | None = None
    identity_token: str | None = None
    tls_key: str | None = None  # PEM client key

    def __repr__(self) -> str:
        return "RegistryCredentials(<redacted>)"


@dataclass(frozen=True)
class ConfigSecrets:
    """The secret values in config.yaml and registries.yaml. Never printed: repr hides them."""

    token: str
    agent_token: str
    etcd_s3_secret_key: str | None = None
    ca_hash: str | None = None  # sha256 of the cluster CA (PEM): joins use the secure token form
    registries: tuple[tuple[str, RegistryCredentials], ...] = ()  # registry host -> its credentials

    def join_token(self, user: str, password: str) -> str:
        """``K10<CA hash>::<user>:<password>`` once the CA is known: the joining node checks the
        server's CA against the hash before it sends any credential. The short form before."""
        return f"K10{self.ca_hash}::{user}:{password}" if self.ca_hash else password

    def __repr__(self) -> str:
        return "ConfigSecrets(<redacted>)"


# Placeholders for previews, docs and the offline render: never a real secret.
REDACTED = ConfigSecrets("<token>", "<agent-token>", "<etcd-s3-secret-key>")
REDACTED_TLS_KEY = "<registry-client-key: on the install step's secret stdin>\n"


def registry_credentials(args: K3sClusterArgs) -> tuple[tuple[str, RegistryCredentials], ...]:
    """The registry secrets of `args` (call it only where the result stays inside secret outputs)."""
    return tuple(
        (c.host, RegistryCredentials(
            c.password.value if c.password else None, c.identity_token.value if c.identity_token else None,
            c.tls_key.value if c.tls_key else None,
        ))
        for c in args.registry_configs if c.password or c.identity_token or c.tls_key
    )


def redacted(args: K3sClusterArgs) -> ConfigSecrets:
    """`REDACTED` with a placeholder for each registry secret `args` has (the offline render)."""
    creds = tuple(
        (c.host, RegistryCredentials(
            "<registry-password>" if c.password else None, "<registry-identity-token>" if c.identity_token else None,
            REDACTED_TLS_KEY if c.tls_key else None,
        ))
        for c in args.registry_configs if c.password or c.identity_token or c.tls_key
    )
    return dataclasses.replace(REDACTED, registries=creds)


def url_host(address: str) -> str:
    ip = parse_ip(address)
    return f"[{ip}]" if ip is not None and ip.version == 6 else address


def api_url(host: str) -> str:
    return f"https://{url_host(host)}:{API_PORT}"


def tls_sans(args: K3sClusterArgs) -> tuple[str, ...]:
    """Every name the API certificate must carry: endpoint, VIP, server addresses, extras."""
    names = [args.api_endpoint]
    if args.vip is not None:
        names.append(args.vip.address)
    names += [n.address for n in args.servers]
    names += list(args.tls_sans)
    return tuple(dict.fromkeys(names))


def node_labels(args: K3sClusterArgs, node: NodeSpec) -> list[str]:
    """``key=value`` node labels (the stack's, plus those its storage choice needs)."""
    return [f"{k}={v}" for k, v in sorted(dict(node.labels).items())]


def _disabled(args: K3sClusterArgs) -> list[str]:
    disabled = ["traefik", "servicelb"]
    if args.disable_local_storage:
        disabled.append("local-storage")
    return disabled


def server_common(args: K3sClusterArgs, secrets: ConfigSecrets) -> dict[str, Any]:
    """The part of every server's config.yaml that is the same on all servers."""
    doc: dict[str, Any] = {
        "token": secrets.token,
        "agent-token": secrets.agent_token,
        "tls-san": list(tls_sans(args)),
        "cluster-cidr": args.pod_cidr,
        "service-cidr": args.service_cidr,
        "cluster-dns": args.cluster_dns,
        "cluster-domain": args.cluster_domain,
        "disable": _disabled(args),
        "write-kubeconfig-mode": "0600",
    }
    if args.calico:
        doc["flannel-backend"] = "none"
        doc["disable-network-policy"] = True
    if args.selinux:
        doc["selinux"] = True
    if args.secrets_encryption:
        doc["secrets-encryption"] = True
    if args.failover_tuning:
        # The kubelet renews its lease every 10s: a grace period of three renewals (not 16s, less than
        # two) keeps one late renewal or a K3s restart from marking the node NotReady and evicting pods.
        doc["kube-controller-manager-arg"] = [
            "node-monitor-period=2s", f"node-monitor-grace-period={NODE_MONITOR_GRACE_SECONDS}s",
        ]
        doc["kube-apiserver-arg"] = [
            "default-not-ready-toleration-seconds=30", "default-unreachable-toleration-seconds=30",
        ]
    etcd = args.etcd
    doc["etcd-arg"] = [
        f"heartbeat-interval={etcd.heartbeat_interval_ms}", f"election-timeout={etcd.election_timeout_ms}",
    ]
    if etcd.snapshot_schedule:
        doc["etcd-snapshot-schedule-cron"] = etcd.snapshot_schedule
        doc["etcd-snapshot-retention"] = etcd.snapshot_retention
    if etcd.s3 is not None:
        s3 = etcd.s3
        doc["etcd-s3"] = True
        doc["etcd-s3-endpoint"] = s3.endpoint
        doc["etcd-s3-bucket"] = s3.bucket
        doc["etcd-s3-region"] = s3.region
        if s3.folder:
            doc["etcd-s3-folder"] = s3.folder
        doc["etcd-s3-access-key"] = s3.access_key
        if secrets.etcd_s3_secret_key is not None:
            doc["etcd-s3-secret-key"] = secrets.etcd_s3_secret_key
        if s3.skip_ssl_verify:
            doc["etcd-s3-skip-ssl-verify"] = True
        if s3.insecure:
            doc["etcd-s3-insecure"] = True
        if s3.endpoint_ca:
            doc["etcd-s3-endpoint-ca"] = ETCD_S3_CA_PATH
    return doc


def _node_part(args: K3sClusterArgs, node: NodeSpec) -> dict[str, Any]:
    doc: dict[str, Any] = {"node-name": node.name, "node-ip": node.address}
    labels = node_labels(args, node)
    if labels:
        doc["node-label"] = labels
    if node.taints:
        doc["node-taint"] = list(node.taints)
    return doc


def server_config(args: K3sClusterArgs, node: NodeSpec, secrets: ConfigSecrets) -> dict[str, Any]:
    """config.yaml of one server. Server 1 bootstraps etcd; the others join server 1 itself
    (not the API endpoint: a VIP served from inside the cluster is not up during the joins)."""
    if node.role != "server":
        raise ValueError(f"{node.name} is not a server")
    doc = dict(_node_part(args, node))
    if node.name == args.first_server.name:
        doc["cluster-init"] = True
    else:
        doc["server"] = api_url(args.first_server.address)
    doc.update(server_common(args, secrets))
    if node.name != args.first_server.name:
        doc["token"] = secrets.join_token("server", secrets.token)
    _pass_through(doc, args.extra_server_config, args.kubelet_args)
    return doc


def _pass_through(doc: dict[str, Any], extra: tuple[tuple[str, Any], ...], kubelet_args: tuple[str, ...]) -> None:
    """The stack's extra config keys (validated: never one the program owns) and kubelet args."""
    for name, value in extra:
        doc[name] = list(value) if isinstance(value, tuple) else value
    if kubelet_args:
        doc["kubelet-arg"] = list(kubelet_args)


def agent_config(args: K3sClusterArgs, node: NodeSpec, secrets: ConfigSecrets) -> dict[str, Any]:
    if node.role != "agent":
        raise ValueError(f"{node.name} is not an agent")
    doc = {"server": api_url(args.api_endpoint), "token": secrets.join_token("node", secrets.agent_token),
           **_node_part(args, node)}
    if args.selinux:
        doc["selinux"] = True
    _pass_through(doc, args.extra_agent_config, args.kubelet_args)
    return doc


def node_config(args: K3sClusterArgs, node: NodeSpec, secrets: ConfigSecrets) -> dict[str, Any]:
    return server_config(args, node, secrets) if node.role == "server" else agent_config(args, node, secrets)


def render_yaml(doc: dict[str, Any] | list[Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)


def render_node_config(args: K3sClusterArgs, node: NodeSpec, secrets: ConfigSecrets) -> str:
    """The exact bytes of /etc/rancher/k3s/config.yaml on `node`."""
    return "# Managed by platform:k3s (components/k3s/render.py). Local edits are overwritten.\n" + render_yaml(
        node_config(args, node, secrets)
    )


def registry_tls_paths(host: str) -> tuple[str, str, str]:
    """Where a registry's CA, client certificate and client key are written (ca.crt, client.crt, client.key)."""
    base = f"{REGISTRY_TLS_DIR}/{registry_dir_name(host)}"
    return f"{base}/ca.crt", f"{base}/client.crt", f"{base}/client.key"


def registry_cert_files(args: K3sClusterArgs) -> tuple[tuple[str, str], ...]:
    """(path, PEM) of every registry CA and client certificate: public, they travel in the script."""
    files: list[tuple[str, str]] = []
    for c in args.registry_configs:
        ca_path, cert_path, _ = registry_tls_paths(c.host)
        if c.ca:
            files.append((ca_path, c.ca))
        if c.cert:
            files.append((cert_path, c.cert))
    return tuple(files)


def registry_key_paths(args: K3sClusterArgs) -> tuple[str, ...]:
    """The client key files, in the order their PEM follows registries.yaml on the install step's stdin."""
    return tuple(registry_tls_paths(c.host)[2] for c in args.registry_configs if c.tls_key)


def _credentials(secrets: ConfigSecrets, host: str) -> RegistryCredentials:
    found = dict(secrets.registries).get(host)
    if found is None:
        raise ValueError(f"no credentials for registry {host!r} in the secrets (a programming error)")
    return found


def registries_doc(args: K3sClusterArgs, secrets: ConfigSecrets) -> dict[str, Any] | None:
    """registries.yaml as K3s reads it (`mirrors`, `configs` with auth and tls), or None when empty."""
    doc: dict[str, Any] = {}
    if args.registry_mirrors:
        doc["mirrors"] = {registry: {"endpoint": list(endpoints)} for registry, endpoints in args.registry_mirrors}
    if args.registry_configs:
        configs: dict[str, Any] = {}
        for c in args.registry_configs:
            entry: dict[str, Any] = {}
            if c.username is not None:
                entry["auth"] = {"username": c.username, "password": _credentials(secrets, c.host).password}
            elif c.identity_token is not None:
                entry["auth"] = {"identity_token": _credentials(secrets, c.host).identity_token}
            ca_path, cert_path, key_path = registry_tls_paths(c.host)
            tls: dict[str, Any] = {}
            if c.ca:
                tls["ca_file"] = ca_path
            if c.cert:
                tls["cert_file"] = cert_path
                tls["key_file"] = key_path
            if c.insecure_skip_verify:
                tls["insecure_skip_verify"] = True
            if tls:
                entry["tls"] = tls
            configs[c.host] = entry
        doc["configs"] = configs
    return doc or None


def registries_yaml(args: K3sClusterArgs, secrets: ConfigSecrets | None = None) -> str | None:
    """The exact bytes of /etc/rancher/k3s/registries.yaml (every node), or None when there is none.
    Without `secrets`, the registry secrets are placeholders (docs, the offline render)."""
    doc = registries_doc(args, secrets if secrets is not None else redacted(args))
    return None if doc is None else "# Managed by platform:k3s.\n" + render_yaml(doc)


def install_stdin(args: K3sClusterArgs, node: NodeSpec, secrets: ConfigSecrets) -> str:
    """The install step's (secret) stdin: config.yaml, registries.yaml (empty: none) and each
    registry client key in `registry_key_paths` order, separated by `STDIN_SEPARATOR` lines."""
    parts = [render_node_config(args, node, secrets), registries_yaml(args, secrets) or ""]
    parts += [_credentials(secrets, c.host).tls_key or "" for c in args.registry_configs if c.tls_key]
    for part in parts:
        if STDIN_SEPARATOR in part.splitlines() or (part and not part.endswith("\n")):
            raise ValueError("a file for the install step's stdin holds the separator line or no final newline")
    return f"{STDIN_SEPARATOR}\n".join(parts)


def proxy_env(args: K3sClusterArgs) -> tuple[str, ...]:
    """``NAME=value`` lines for the installer's environment and the K3s unit's environment file.

    NO_PROXY always covers loopback, the pod and service networks, the cluster domain, the API
    endpoint and every node, so in-cluster and node-to-node traffic never goes through the proxy.
    """
    proxy = args.proxy
    if proxy is None:
        return ()
    lines = []
    if proxy.http:
        lines.append(f"HTTP_PROXY={proxy.http}")
    if proxy.https:
        lines.append(f"HTTPS_PROXY={proxy.https}")
    no_proxy = ["127.0.0.0/8", "localhost", "::1", args.pod_cidr, args.service_cidr, ".svc",
                f".{args.cluster_domain}", args.api_endpoint, *(n.address for n in args.nodes), *proxy.no_proxy]
    lines.append("NO_PROXY=" + ",".join(dict.fromkeys(no_proxy)))
    return tuple(lines)


def kube_vip_manifest(args: K3sClusterArgs) -> str | None:
    """RBAC and DaemonSet for kube-vip (ARP, control plane only), for K3s's auto-deploy directory."""
    if args.vip is None:
        return None
    vip = args.vip
    labels = {"app.kubernetes.io/name": "kube-vip", "app.kubernetes.io/managed-by": "platform"}
    # Without vip_interface kube-vip uses the default-route interface of each node; the install
    # script checks, per server, that it is the interface of the route to the VIP.
    interface = {"vip_interface": vip.interface} if vip.interface else {}
    env = {
        "vip_arp": "true", "port": str(API_PORT), **interface, "cp_enable": "true",
        "cp_namespace": "kube-system", "svc_enable": "false", "vip_leaderelection": "true",
        "vip_leasename": "plndr-cp-lock", "vip_leaseduration": "5", "vip_renewdeadline": "3",
        "vip_retryperiod": "1", "address": vip.address,
    }
    env_list: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in env.items()]
    # The leader-election identity: the node name, not the hostname (cloned VMs share hostnames).
    env_list.append({"name": "vip_nodename", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "kube-vip", "namespace": "kube-system", "labels": labels}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "system:kube-vip-role", "labels": labels},
         "rules": [
             {"apiGroups": [""], "resources": ["services/status"], "verbs": ["update"]},
             {"apiGroups": [""], "resources": ["services", "endpoints"], "verbs": ["list", "get", "watch", "update"]},
             {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "get", "watch", "update", "patch"]},
             {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
              "verbs": ["list", "get", "watch", "update", "create"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
              "verbs": ["list", "get", "watch", "update"]},
             {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:kube-vip-binding", "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:kube-vip-role"},
         "subjects": [{"kind": "ServiceAccount", "name": "kube-vip", "namespace": "kube-system"}]},
        {"apiVersion": "apps/v1", "kind": "DaemonSet",
         "metadata": {"name": "kube-vip-ds", "namespace": "kube-system", "labels": labels},
         "spec": {
             "selector": {"matchLabels": {"app.kubernetes.io/name": "kube-vip"}},
             "updateStrategy": {"type": "RollingUpdate"},
             "template": {
                 "metadata": {"labels": labels},
                 "spec": {
                     "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                         "nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}]}}},
                     "containers": [{
                         "name": "kube-vip",
                         "image": f"ghcr.io/kube-vip/kube-vip:{vip.kube_vip_version}",
                         "imagePullPolicy": "IfNotPresent",
                         "args": ["manager"],
                         "env": env_list,
                         "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                     }],
                     "hostNetwork": True,
                     "serviceAccountName": "kube-vip",
                     # Nodes stay NotReady until the CNI runs; kube-vip must run before that.
                     "tolerations": [{"operator": "Exists", "effect": "NoSchedule"},
                                     {"operator": "Exists", "effect": "NoExecute"}],
                 },
             },
         }},
    ]
    return "# Managed by platform:k3s.\n" + yaml.safe_dump_all(docs, sort_keys=False, width=1000)


def rewrite_kubeconfig(text: str, api_endpoint: str, name: str) -> str:
    """K3s's admin kubeconfig, pointed at the API endpoint, with cluster/user/context `name`.

    Empty input (a preview, or mocks) gives empty output; anything else must be a
    kubeconfig with one cluster, user and context, or this raises.
    """
    if not text or not text.strip():
        return ""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ValueError("the kubeconfig read from server 1 is not a YAML mapping")
    clusters, users, contexts = doc.get("clusters"), doc.get("users"), doc.get("contexts")
    if not (isinstance(clusters, list) and isinstance(users, list) and isinstance(contexts, list)) or not (
        len(clusters) == len(users) == len(contexts) == 1
    ):
        raise ValueError("the kubeconfig read from server 1 does not have exactly one cluster, user and context")
    clusters[0]["name"] = name
    clusters[0]["cluster"]["server"] = api_url(api_endpoint)
    users[0]["name"] = name
    contexts[0]["name"] = name
    contexts[0]["context"]["cluster"] = name
    contexts[0]["context"]["user"] = name
    doc["current-context"] = name
    return render_yaml(doc)
