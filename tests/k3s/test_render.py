"""Pure rendering of config.yaml, registries.yaml, the kube-vip manifest and the kubeconfig."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from components.k3s import render
from components.k3s.args import K3sClusterArgs
from components.problems import ConfigError

from .stacks import homelab_args, rich_args, sized_args

SECRETS = render.ConfigSecrets("t" * 64, "a" * 64, "s3-key")


def server_docs(args: K3sClusterArgs) -> list[dict[str, object]]:
    return [render.server_config(args, n, SECRETS) for n in args.servers]


@pytest.mark.parametrize("make", [homelab_args, lambda: sized_args(5, 30)], ids=["homelab", "5+30"])
def test_critical_values_are_identical_on_every_server(make: object) -> None:
    args = make()  # type: ignore[operator]
    docs = server_docs(args)
    first = {k: v for k, v in docs[0].items() if k not in render.PER_NODE_KEYS}
    for doc in docs[1:]:
        assert {k: v for k, v in doc.items() if k not in render.PER_NODE_KEYS} == first
    for key in render.CRITICAL_SERVER_KEYS & set(first):
        assert all(doc[key] == first[key] for doc in docs)
    assert {"token", "agent-token", "cluster-cidr", "service-cidr", "disable"} <= set(first)


def test_servers_differ_only_in_per_node_keys_and_only_server_1_bootstraps(tmp_path: Path) -> None:
    args = rich_args(tmp_path)
    docs = server_docs(args)
    keys = set().union(*docs)
    differing = {k for k in keys if len({yaml.safe_dump(d.get(k)) for d in docs}) > 1}
    assert differing <= render.PER_NODE_KEYS
    assert docs[0]["cluster-init"] is True and "server" not in docs[0]
    for doc in docs[1:]:
        assert doc["server"] == "https://192.0.2.10:6443" and "cluster-init" not in doc
    assert [d["node-name"] for d in docs] == ["node-s1", "node-s2", "node-s3"]


def test_homelab_server_config_matches_the_writeup() -> None:
    args = homelab_args()
    doc = render.server_config(args, args.servers[0], SECRETS)
    assert doc["disable"] == ["traefik", "servicelb", "local-storage"]
    assert doc["flannel-backend"] == "none" and doc["disable-network-policy"] is True
    assert doc["kube-controller-manager-arg"] == ["node-monitor-period=2s", "node-monitor-grace-period=30s"]
    # longer than two lease renewals, so a single late renewal never flips a node NotReady
    assert render.NODE_MONITOR_GRACE_SECONDS > 2 * render.KUBELET_LEASE_RENEW_SECONDS
    assert doc["kube-apiserver-arg"] == [
        "default-not-ready-toleration-seconds=30", "default-unreachable-toleration-seconds=30"]
    assert doc["etcd-arg"] == ["heartbeat-interval=500", "election-timeout=5000"]
    assert doc["etcd-snapshot-schedule-cron"] == "0 */6 * * *" and doc["etcd-snapshot-retention"] == 12
    assert doc["tls-san"] == ["192.0.2.49", "192.0.2.51", "192.0.2.52", "192.0.2.53"]
    assert doc["cluster-cidr"] == "10.42.0.0/16" and doc["service-cidr"] == "10.43.0.0/16"
    assert doc["write-kubeconfig-mode"] == "0600"
    assert "example.com/role=control" in doc["node-label"]
    assert "node.longhorn.io/create-default-disk=true" in doc["node-label"]
    assert "etcd-s3" not in doc


def test_flannel_stays_when_calico_is_not_used() -> None:
    args = homelab_args(calico=False)
    doc = render.server_config(args, args.servers[0], SECRETS)
    assert "flannel-backend" not in doc and "disable-network-policy" not in doc


def test_agents_join_the_api_endpoint_with_the_agent_token_only(tmp_path: Path) -> None:
    args = rich_args(tmp_path)
    agent = args.agents[0]
    doc = render.agent_config(args, agent, SECRETS)
    assert doc["server"] == "https://192.0.2.5:6443"
    assert doc["token"] == SECRETS.agent_token
    text = render.render_node_config(args, agent, SECRETS)
    assert SECRETS.token not in text and "s3-key" not in text
    assert doc["node-taint"] == ["dedicated=gpu:NoSchedule"]


def test_etcd_s3_settings_and_secret(tmp_path: Path) -> None:
    args = rich_args(tmp_path)
    doc = render.server_config(args, args.servers[1], SECRETS)
    assert doc["etcd-s3"] is True and doc["etcd-s3-bucket"] == "etcd-backups"
    assert doc["etcd-s3-secret-key"] == "s3-key"
    assert doc["selinux"] is True
    assert "api.example.com" in doc["tls-san"]


def test_rendered_yaml_round_trips_hostile_secrets() -> None:
    args = homelab_args()
    hostile = render.ConfigSecrets("a: b\n- c", "'\"$(x)`y`", "#not a comment")
    text = render.render_node_config(args, args.servers[0], hostile)
    doc = yaml.safe_load(text)
    assert (doc["token"], doc["agent-token"]) == (hostile.token, hostile.agent_token)


def test_ipv6_server_addresses_are_bracketed_in_urls() -> None:
    assert render.api_url("2001:db8::1") == "https://[2001:db8::1]:6443"
    assert render.api_url("api.example.com") == "https://api.example.com:6443"


def test_registries_yaml() -> None:
    assert render.registries_yaml(homelab_args()) is None
    args = dataclasses.replace(homelab_args(), registry_mirrors=(("docker.io", ("https://m.example.com",)),))
    assert yaml.safe_load(render.registries_yaml(args) or "") == {
        "mirrors": {"docker.io": {"endpoint": ["https://m.example.com"]}}}


def test_kube_vip_manifest_serves_the_vip_in_arp_mode_on_control_plane_nodes() -> None:
    docs = list(yaml.safe_load_all(render.kube_vip_manifest(homelab_args()) or ""))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"]
    pod = docs[3]["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"] if "value" in e}
    # No interface in the stack: kube-vip uses each node's default-route interface (checked per server).
    assert env["address"] == "192.0.2.49" and "vip_interface" not in env and env["vip_arp"] == "true"
    # The leader-election identity is the node name (the upstream generator's vip_nodename).
    nodename = [e for e in pod["containers"][0]["env"] if e["name"] == "vip_nodename"]
    assert nodename == [{"name": "vip_nodename", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    assert env["cp_enable"] == "true" and env["svc_enable"] == "false"
    assert pod["containers"][0]["image"] == "ghcr.io/kube-vip/kube-vip:v0.9.2"
    assert pod["hostNetwork"] is True
    assert all(isinstance(v, str) for v in env.values())
    expr = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert expr["nodeSelectorTerms"][0]["matchExpressions"][0]["key"] == "node-role.kubernetes.io/control-plane"
    assert render.kube_vip_manifest(dataclasses.replace(homelab_args(), vip=None)) is None
    explicit = list(yaml.safe_load_all(render.kube_vip_manifest(sized_args(3, 1)) or ""))[3]
    explicit_env = {e["name"]: e.get("value") for e in explicit["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert explicit_env["vip_interface"] == "eth0"  # an explicit k3s.vip.interface is kept


K3S_KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
"""


def test_kubeconfig_is_pointed_at_the_endpoint_and_renamed() -> None:
    doc = yaml.safe_load(render.rewrite_kubeconfig(K3S_KUBECONFIG, "192.0.2.49", "homelab"))
    assert doc["clusters"][0] == {
        "cluster": {"certificate-authority-data": "Q0E=", "server": "https://192.0.2.49:6443"}, "name": "homelab"}
    assert doc["contexts"][0] == {"context": {"cluster": "homelab", "user": "homelab"}, "name": "homelab"}
    assert doc["users"][0]["name"] == "homelab" and doc["users"][0]["user"]["client-key-data"] == "S0VZ"
    assert doc["current-context"] == "homelab"
    assert render.rewrite_kubeconfig("", "x", "y") == ""
    with pytest.raises(ValueError, match="exactly one cluster"):
        render.rewrite_kubeconfig("clusters: []\nusers: []\ncontexts: []\n", "x", "y")


def test_args_reject_values_that_would_reach_a_script_unvalidated() -> None:
    args = homelab_args()
    bad_node = dataclasses.replace(args.nodes[0], name="x;reboot", address="192.0.2.51 ; id")
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(args, nodes=(bad_node, *args.nodes[1:]), api_endpoint="$(id)")
    text = str(err.value)
    assert "x;reboot" in text and "apiEndpoint" in text and "is not an IP address" in text


def test_secrets_encryption_is_on_by_default_and_identical_on_every_server() -> None:
    args = homelab_args()
    assert all(doc["secrets-encryption"] is True for doc in server_docs(args))
    assert "secrets-encryption" in render.CRITICAL_SERVER_KEYS
    off = dataclasses.replace(args, secrets_encryption=False)
    assert all("secrets-encryption" not in doc for doc in server_docs(off))
    agent = render.agent_config(args, args.agents[0], SECRETS)
    assert "secrets-encryption" not in agent  # a server-only flag


def test_joins_use_the_secure_token_form_once_the_ca_hash_is_known() -> None:
    args = homelab_args()
    ca = "ab" * 32
    secure = dataclasses.replace(SECRETS, ca_hash=ca)
    first = render.server_config(args, args.servers[0], secure)
    assert first["token"] == SECRETS.token  # server 1 defines the token: short form
    joining = render.server_config(args, args.servers[1], secure)
    assert joining["token"] == f"K10{ca}::server:{SECRETS.token}"
    agent = render.agent_config(args, args.agents[0], secure)
    assert agent["token"] == f"K10{ca}::node:{SECRETS.agent_token}"
    # unknown hash (preview, mocks): the short form
    assert render.agent_config(args, args.agents[0], SECRETS)["token"] == SECRETS.agent_token
    # critical keys still identical on every server: the secure form is only per-node presentation
    assert "token" in render.CRITICAL_SERVER_KEYS
