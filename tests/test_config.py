"""The config model: every validation rule, defaults, and round-trips (no Pulumi engine needed)."""

from __future__ import annotations

import copy
import json
from ipaddress import ip_address, ip_network
from typing import Any

import pytest
import yaml

from components.config import StackConfig, parse_stack_config
from components.offline.runner import PROJECT_ROOT
from components.problems import ConfigError

KEY = "platform:sshPrivateKey"


def homelab() -> dict[str, Any]:
    data = yaml.safe_load((PROJECT_ROOT / "Pulumi.homelab.yaml").read_text())["config"]
    return copy.deepcopy(data)


def parse(raw: dict[str, Any], *, with_key: bool = True, as_json: bool = False) -> StackConfig:
    values: dict[str, Any] = {k: json.dumps(v) if as_json and not isinstance(v, str) else v for k, v in raw.items()}
    secrets = frozenset()
    if with_key:
        values[KEY] = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"
        secrets = frozenset({KEY})
    return parse_stack_config(values, secrets, stack="test")


def errors_of(raw: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(raw, **kwargs)
    return caught.value.errors


def one_error(raw: dict[str, Any], **kwargs: Any) -> str:
    errors = errors_of(raw, **kwargs)
    assert len(errors) == 1, errors
    return errors[0]


# -- valid configs ----------------------------------------------------------------------


def test_homelab_parses_with_its_six_nodes() -> None:
    cfg = parse(homelab())
    assert [n.name for n in cfg.servers] == ["k3s-control-01", "k3s-control-02", "k3s-control-03"]
    assert [str(n.address) for n in cfg.agents] == ["192.0.2.54", "192.0.2.55", "192.0.2.56"]
    assert dict(cfg.servers[0].labels) == {"example.com/role": "control"}
    assert dict(cfg.agents[0].labels) == {"example.com/role": "worker"}
    assert cfg.k3s is not None and cfg.k3s.vip is not None and str(cfg.k3s.vip.address) == "192.0.2.49"
    assert cfg.metallb is not None and cfg.metallb.pools[0].addresses[0].text == "192.0.2.50/32"
    assert cfg.storage.kind == "longhorn"


def test_homelab_pod_cidr_is_the_single_source_for_k3s_and_calico() -> None:
    cfg = parse(homelab())
    assert cfg.network is not None and cfg.network.pod_cidr == ip_network("10.42.0.0/16")
    raw = homelab()
    raw["platform:calico"]["ipPoolCidr"] = "172.31.0.0/16"  # the write-up's mismatch
    assert "differs from platform:network.podCidr" in one_error(raw)


def test_json_encoded_values_parse_like_objects() -> None:
    assert parse(homelab(), as_json=True) == parse(homelab())


def test_defaults_apply_when_sections_are_omitted() -> None:
    raw = {"platform:nodes": [{"name": "a", "address": "192.0.2.10", "role": "server"}]}
    cfg = parse(raw)
    assert cfg.cluster_name == "test"
    assert cfg.network is not None
    assert (str(cfg.network.pod_cidr), str(cfg.network.service_cidr)) == ("10.42.0.0/16", "10.43.0.0/16")
    assert cfg.network.cluster_dns == ip_address("10.43.0.10")
    assert cfg.k3s is not None and cfg.k3s.api_endpoint == "192.0.2.10"
    assert (cfg.k3s.etcd.heartbeat_interval_ms, cfg.k3s.etcd.election_timeout_ms) == (500, 5000)
    assert cfg.k3s.firewall == "disabled" and cfg.k3s.failover_tuning
    assert cfg.ssh is not None and (cfg.ssh.user, cfg.ssh.port) == ("root", 22)
    assert cfg.charts["metallb"].version == "0.16.1"
    assert cfg.storage.kind == "longhorn"


def test_single_server_is_a_warning_not_an_error() -> None:
    cfg = parse({"platform:nodes": [{"name": "a", "address": "192.0.2.10", "role": "server"}]})
    assert any("single server" in w for w in cfg.warnings)


def test_chart_version_and_repo_can_be_overridden_per_stack() -> None:
    raw = homelab()
    raw["platform:versions"]["charts"]["metallb"] = {"version": "0.16.2", "repo": "oci://mirror.example.com/metallb"}
    pin = parse(raw).charts["metallb"]
    assert (pin.chart, pin.version, pin.repo) == ("metallb", "0.16.2", "oci://mirror.example.com/metallb")


def test_secret_never_shows_in_repr() -> None:
    cfg = parse(homelab())
    assert "BEGIN OPENSSH" not in repr(cfg)


# -- one rule at a time -------------------------------------------------------------------


def test_malformed_address_names_the_key_and_value() -> None:
    raw = homelab()
    raw["platform:nodes"][3]["address"] = "192.0.2.300"
    assert one_error(raw) == "platform:nodes[3].address: '192.0.2.300' is not an IPv4/IPv6 address"


def test_duplicate_node_name_is_rejected() -> None:
    raw = homelab()
    raw["platform:nodes"][4]["name"] = "k3s-worker-01"
    assert "platform:nodes[4].name: duplicate node name 'k3s-worker-01'" in one_error(raw)


def test_duplicate_node_address_is_rejected() -> None:
    raw = homelab()
    raw["platform:nodes"][5]["address"] = "192.0.2.51"
    assert one_error(raw).startswith("platform:nodes[5].address: duplicate address 192.0.2.51")


@pytest.mark.parametrize("name", ["K3s-Control", "node_1", "-edge", "a" * 64, "x.y"])
def test_node_name_must_be_a_dns_1123_label(name: str) -> None:
    raw = homelab()
    raw["platform:nodes"][0]["name"] = name
    assert "is not a valid DNS-1123 label" in one_error(raw)


@pytest.mark.parametrize("servers", [0, 2, 4])
def test_even_or_zero_server_count_is_rejected(servers: int) -> None:
    nodes = [{"name": f"n{i}", "address": f"192.0.2.{10 + i}", "role": "server" if i < servers else "agent"}
             for i in range(6)]
    error = one_error({"platform:nodes": nodes})
    assert error.startswith("platform:nodes: ")
    assert ("even number" in error) if servers else ("no node has role 'server'" in error)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("podCidr", "10.42.0.1/16", "has host bits set (did you mean 10.42.0.0/16?)"),
        ("serviceCidr", "10.43.0.0", "is not a CIDR"),
        ("serviceCidr", "10.42.128.0/20", "overlaps platform:network.podCidr"),
    ],
)
def test_bad_or_overlapping_cidrs_are_rejected(key: str, value: str, expected: str) -> None:
    raw = homelab()
    raw["platform:network"][key] = value
    error = one_error(raw)
    assert error.startswith(f"platform:network.{key}") and expected in error


def test_node_network_overlapping_pod_cidr_is_rejected() -> None:
    raw = homelab()
    raw["platform:network"]["podCidr"] = "192.0.0.0/16"
    errors = errors_of(raw)
    assert any("overlaps platform:network.podCidr" in e for e in errors)
    assert any("contains node k3s-control-01's address" in e for e in errors)


def test_node_outside_every_node_network_is_rejected() -> None:
    raw = homelab()
    raw["platform:nodes"][2]["address"] = "198.51.100.7"
    assert "node k3s-control-03 (198.51.100.7) lies in none of the node networks" in one_error(raw)


def test_load_balancer_pool_overlapping_a_node_is_rejected() -> None:
    raw = homelab()
    raw["platform:metallb"]["pools"][0]["addresses"] = ["192.0.2.48/28"]
    errors = errors_of(raw)
    assert any(e.startswith("platform:metallb.pools[0].addresses[0]: 192.0.2.48/28 contains node k3s-control-01")
               for e in errors)


def test_load_balancer_pools_may_not_overlap_each_other() -> None:
    raw = homelab()
    raw["platform:metallb"]["pools"].append({"name": "second", "addresses": ["192.0.2.50-192.0.2.50"]})
    assert "overlaps platform:metallb.pools[0].addresses[0]" in one_error(raw)


def test_load_balancer_pool_overlapping_service_cidr_is_rejected() -> None:
    raw = homelab()
    raw["platform:metallb"]["pools"][0]["addresses"] = ["10.43.0.0/24"]
    errors = errors_of(raw)
    assert any("overlaps platform:network.serviceCidr" in e for e in errors)


def test_l2_pool_outside_node_subnets_is_rejected() -> None:
    raw = homelab()
    raw["platform:metallb"]["pools"][0]["addresses"] = ["198.51.100.10/32"]
    assert "is an L2 pool outside every node network" in one_error(raw)


def test_vip_inside_a_load_balancer_pool_is_rejected() -> None:
    raw = homelab()
    raw["platform:metallb"]["pools"][0]["addresses"] = ["192.0.2.48/31"]
    assert "contains the API VIP 192.0.2.49" in one_error(raw)


@pytest.mark.parametrize("version", ["v1.34", "1.34.2+k3s1", "v1.34.2-k3s1", "latest"])
def test_k3s_version_must_match_its_pattern(version: str) -> None:
    raw = homelab()
    raw["platform:versions"]["k3s"] = version
    assert one_error(raw).startswith("platform:versions.k3s: ")


def test_chart_version_must_be_exact() -> None:
    raw = homelab()
    raw["platform:versions"]["charts"]["longhorn"] = "1.x"
    assert one_error(raw).startswith("platform:versions.charts.longhorn: '1.x' is not an exact chart version")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("labels", {"example.com/role": "not valid!"}, "is not a valid label value"),
        ("labels", {"-bad/key": "x"}, "is not a valid label key"),
        ("taints", ["dedicated=db"], "is not a taint"),
        ("taints", ["dedicated=db:Sometimes"], "is not a taint"),
    ],
)
def test_label_and_taint_syntax_is_checked(field: str, value: Any, expected: str) -> None:
    raw = homelab()
    raw["platform:nodes"][0][field] = value
    error = one_error(raw)
    assert error.startswith(f"platform:nodes[0].{field}") and expected in error


def test_valid_taints_parse() -> None:
    raw = homelab()
    raw["platform:nodes"][0]["taints"] = ["node-role.kubernetes.io/control-plane:NoSchedule", "db=yes:NoExecute"]
    assert [str(t) for t in parse(raw).nodes[0].taints] == [
        "node-role.kubernetes.io/control-plane:NoSchedule", "db=yes:NoExecute"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["platform:network"].update(podCIDR="10.42.0.0/16"),
         "platform:network.podCIDR: unknown key; did you mean 'podCidr'?"),
        (lambda r: r.update({"platform:metalb": {}}), "platform:metalb: unknown key; did you mean 'metallb'?"),
        (lambda r: r["platform:nodes"][0].update(adress="192.0.2.51"),
         "platform:nodes[0].adress: unknown key; did you mean 'address'?"),
        (lambda r: r["platform:k3s"]["etcd"].update(heartbeatInterval=100),
         "platform:k3s.etcd.heartbeatInterval: unknown key; did you mean 'heartbeatIntervalMs'?"),
    ],
)
def test_unknown_keys_suggest_the_closest_known_key(mutate: Any, expected: str) -> None:
    raw = homelab()
    mutate(raw)
    assert one_error(raw) == expected


def test_missing_ssh_key_says_the_exact_command() -> None:
    error = one_error(homelab(), with_key=False)
    assert error.startswith("platform:sshPrivateKey: required secret is not set; run: "
                            "pulumi config set --secret platform:sshPrivateKey")


def test_secret_set_in_plain_text_is_rejected() -> None:
    raw = homelab()
    raw[KEY] = "plaintext-key"
    error = one_error(raw, with_key=False)
    assert "is a secret but was set in plain text" in error and "--secret platform:sshPrivateKey" in error


def test_etcd_s3_needs_its_secret_key() -> None:
    raw = homelab()
    raw["platform:k3s"]["etcd"]["s3"] = {"bucket": "etcd-backups", "accessKey": "AKIAEXAMPLE"}
    assert "pulumi config set --secret platform:etcdS3SecretKey" in one_error(raw)


def test_all_problems_are_reported_at_once() -> None:
    raw = homelab()
    raw["platform:nodes"][3]["address"] = "192.0.2.300"  # 1 bad address
    raw["platform:nodes"][4]["name"] = "k3s-worker-01"  # 2 duplicate name
    raw["platform:nodes"][5]["name"] = "Worker_3"  # 3 not a DNS label
    raw["platform:nodes"][2]["role"] = "agent"  # 4 two servers: even
    raw["platform:network"]["serviceCidr"] = "10.42.0.0/24"  # 5 overlaps podCidr
    raw["platform:metallb"]["pools"][0]["addresses"] = ["192.0.2.51/32"]  # 6 pool covers a node
    raw["platform:versions"]["k3s"] = "v1.34"  # 7 version pattern
    raw["platform:nodes"][0]["taints"] = ["nope"]  # 8 taint syntax
    raw["platform:k3s"]["firewal"] = "managed"  # 9 typo
    errors = errors_of(raw, with_key=False)  # 10 missing secret
    assert len(errors) == 10, "\n".join(errors)
    for fragment in ["nodes[3].address", "nodes[4].name", "nodes[5].name", "platform:nodes: 2 servers",
                     "network.serviceCidr", "metallb.pools[0].addresses[0]", "versions.k3s", "nodes[0].taints[0]",
                     "k3s.firewal: unknown key; did you mean 'firewall'?", "platform:sshPrivateKey"]:
        assert any(fragment in e for e in errors), fragment


def test_bastion_host_key_is_pinned_when_given_and_checked() -> None:
    raw = homelab()
    raw["platform:ssh"]["bastion"] = {"host": "bastion.example.com", "hostKey": "ssh-ed25519 AAAAC3Nza"}
    cfg = parse(raw)
    assert cfg.ssh is not None and cfg.ssh.bastion is not None
    assert cfg.ssh.bastion.host_key == "ssh-ed25519 AAAAC3Nza"
    raw["platform:ssh"]["bastion"]["hostKey"] = "bastion.example.com ssh-ed25519 AAAAC3Nza"
    assert one_error(raw).startswith("platform:ssh.bastion.hostKey: expected '<type> <base64>'")


# -- malformed stack YAML is reported, never a crash -------------------------------------------


def test_non_string_keys_are_reported_not_crashing() -> None:
    raw = homelab()
    raw["platform:network"][1] = "x"  # YAML `1: x`
    raw["platform:nodes"][0][2] = "y"
    errors = errors_of(raw)
    assert any(e.startswith("platform:network.1: unknown key") for e in errors), errors
    assert any(e.startswith("platform:nodes[0].2: unknown key") for e in errors), errors


def test_a_node_that_is_not_an_object_is_reported_once() -> None:
    raw = homelab()
    raw["platform:nodes"][3] = "k3s-worker-01"
    assert one_error(raw) == "platform:nodes[3]: expected an object, got 'k3s-worker-01'"


@pytest.mark.parametrize(
    "service_cidr", ["10.43.0.0/29", "255.255.255.248/29", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff8/125"]
)
def test_service_cidr_without_room_for_the_default_cluster_dns(service_cidr: str) -> None:
    raw = homelab()
    raw["platform:network"]["serviceCidr"] = service_cidr
    error = one_error(raw)
    assert error.startswith("platform:network.clusterDns: is not set and serviceCidr") and "set clusterDns" in error


def test_service_cidr_with_explicit_cluster_dns_needs_no_tenth_address() -> None:
    raw = homelab()
    raw["platform:network"].update(serviceCidr="10.43.0.0/29", clusterDns="10.43.0.2")
    cfg = parse(raw)
    assert cfg.network is not None and cfg.network.cluster_dns == ip_address("10.43.0.2")


def test_vip_may_not_be_an_agents_address() -> None:
    raw = homelab()
    raw["platform:k3s"].update(vip={"address": "192.0.2.54"}, apiEndpoint="192.0.2.54")
    assert one_error(raw) == ("platform:k3s.vip.address: 192.0.2.54 is node k3s-worker-01's own address; "
                              "the VIP must be a free address")


def test_vip_may_not_lie_in_the_service_network() -> None:
    raw = homelab()
    raw["platform:network"]["nodeCidrs"] = []
    raw["platform:k3s"].update(vip={"address": "10.43.0.1"}, apiEndpoint="10.43.0.1")
    assert one_error(raw).startswith("platform:k3s.vip.address: 10.43.0.1 lies in platform:network.serviceCidr")


def test_secret_set_on_a_plain_key_is_rejected_without_echoing_it() -> None:
    raw = homelab()
    raw["platform:k3s"]["etcd"]["s3"] = {"bucket": "b", "accessKey": "AKIA", "secretKey": "TOP-SECRET-VALUE"}
    values = {**raw, KEY: "key-text"}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(values, frozenset({KEY, "platform:k3s"}), stack="test")
    assert len(caught.value.errors) == 1, caught.value.errors
    assert caught.value.errors[0].startswith("platform:k3s: was set with --secret")
    assert "platform:etcdS3SecretKey" in caught.value.errors[0]
    assert "TOP-SECRET-VALUE" not in caught.value.render()


def test_a_cluster_kind_typo_is_the_only_error() -> None:
    raw = yaml.safe_load((PROJECT_ROOT / "Pulumi.cleura.yaml").read_text())["config"]
    raw["platform:clusterKind"] = "Cleura"
    assert one_error(raw, with_key=False) == (
        "platform:clusterKind: 'Cleura' is not one of k3s, cleura, existing; did you mean 'cleura'?")


def test_k3s_versions_do_not_apply_to_a_shoot() -> None:
    raw = yaml.safe_load((PROJECT_ROOT / "Pulumi.cleura.yaml").read_text())["config"]
    raw["platform:versions"] = {"k3s": "v1.34.2+k3s1"}
    assert one_error(raw, with_key=False).startswith(
        "platform:versions.k3s: does not apply to clusterKind 'cleura'")


NUMBER_HINT = "; YAML read the unquoted text as a number (0123 becomes 83): quote it if a string was meant"


@pytest.mark.parametrize(("value", "errors"), [
    (None, []), ("10.42.0.0/16", []), (5, ["platform:calico.ipPoolCidr: expected a string, got 5" + NUMBER_HINT]),
])
def test_calico_pool_cidr_null_or_wrong_type_gives_no_nonsense(value: Any, errors: list[str]) -> None:
    raw = homelab()
    raw["platform:calico"]["ipPoolCidr"] = value
    if errors:
        assert errors_of(raw) == errors
    else:
        parse(raw)


def test_bgp_peer_address_of_the_wrong_type_is_one_error() -> None:
    raw = homelab()
    raw["platform:calico"]["encapsulation"] = "VXLAN"
    raw["platform:metallb"]["pools"][0]["advertise"] = "bgp"
    raw["platform:metallb"]["bgpPeers"] = [{"name": "tor", "address": "192.0.2.300", "asn": 65001}]
    assert one_error(raw) == "platform:metallb.bgpPeers[0].address: '192.0.2.300' is not an IPv4/IPv6 address"


# -- validation as strict as the systems that receive the values -------------------------------


def cleura() -> dict[str, Any]:
    data = yaml.safe_load((PROJECT_ROOT / "Pulumi.cleura.yaml").read_text())["config"]
    return copy.deepcopy(data)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"Example.com/role": "x"},
         "'Example.com/role' is not a valid label key: prefix 'Example.com' must be a lowercase"),
        ({"a/b/c": "x"}, "'a/b/c' is not a valid label key: more than one '/'"),
        ({"/role": "x"}, "'/role' is not a valid label key: empty prefix"),
        ({"example.com/" + "n" * 64: "x"}, "the name part has 64 characters (at most 63)"),
        ({"example.com/role": "v" * 64}, "is not a valid label value: 64 characters (at most 63)"),
        ({"example.com/role": "-x"}, "'-x' is not a valid label value"),
    ],
)
def test_node_labels_follow_kubernetes_rules(labels: dict[str, str], expected: str) -> None:
    raw = homelab()
    raw["platform:nodes"][3]["labels"] = labels
    error = one_error(raw)
    assert error.startswith("platform:nodes[3].labels.") and expected in error, error


@pytest.mark.parametrize(
    ("taints", "expected"),
    [
        (["dedicated=gpu:noschedule"], "'noschedule' is not a valid taint effect: not one of NoSchedule, "
                                       "PreferNoSchedule, NoExecute; did you mean 'NoSchedule'?"),
        (["Bad Key:NoSchedule"], "'Bad Key:NoSchedule' is not a taint: 'Bad Key' is not a valid taint key"),
        (["dedicated=" + "v" * 64 + ":NoSchedule"], "is not a valid taint value: 64 characters"),
        (["dedicated"], "'dedicated' is not a taint: no effect"),
    ],
)
def test_node_taints_follow_kubernetes_rules(taints: list[str], expected: str) -> None:
    raw = homelab()
    raw["platform:nodes"][3]["taints"] = taints
    error = one_error(raw)
    assert error.startswith("platform:nodes[3].taints[0]: ") and expected in error, error


def test_a_repeated_taint_key_and_effect_is_rejected_as_the_api_server_would() -> None:
    raw = homelab()
    raw["platform:nodes"][3]["taints"] = ["gpu=a:NoSchedule", "gpu=b:NoExecute", "gpu=c:NoSchedule"]
    assert one_error(raw) == ("platform:nodes[3].taints[2]: repeats the taint gpu:NoSchedule of "
                              "platform:nodes[3].taints[0] (one taint per key and effect)")


@pytest.mark.parametrize(
    ("field", "item", "expected"),
    [
        ("labels", {"key": "Bad Key", "value": "x"}, "labels[1].key: 'Bad Key' is not a valid label key"),
        ("labels", {"key": "tier", "value": "not valid!"}, "labels[1].value: 'not valid!' is not a valid label value"),
        ("taints", {"key": "a/b/c", "effect": "NoSchedule"}, "taints[0].key: 'a/b/c' is not a valid taint key"),
        ("annotations", {"key": "-x", "value": "free text is fine here"}, "annotations[0].key: '-x' is not a valid "
                                                                          "annotation key"),
    ],
)
def test_cleura_worker_labels_taints_and_annotations_follow_kubernetes_rules(
    field: str, item: dict[str, str], expected: str
) -> None:
    raw = cleura()
    worker = raw["platform:cleura"]["shootProvider"]["workers"][0]
    worker[field] = [*worker.get(field, []), item]
    error = one_error(raw, with_key=False)
    assert error.startswith("platform:cleura.shootProvider.workers[0].") and expected in error, error


def test_cleura_worker_cannot_have_surge_and_unavailable_both_zero() -> None:
    raw = cleura()
    raw["platform:cleura"]["shootProvider"]["workers"][0]["maxSurge"] = 0
    assert one_error(raw, with_key=False).startswith(
        "platform:cleura.shootProvider.workers[0].maxSurge: is 0 and maxUnavailable is always 0")


def test_a_terraform_style_key_is_reported_as_written_with_the_closest_valid_key_and_nothing_else() -> None:
    raw = cleura()
    raw["platform:cleura"]["kubernetes_version"] = raw["platform:cleura"].pop("kubernetesVersion")
    assert errors_of(raw, with_key=False) == [
        "platform:cleura.kubernetes_version: unknown key; did you mean 'kubernetesVersion'?"]


def test_a_version_yaml_turned_into_a_number_says_to_quote_it() -> None:
    raw = cleura()
    raw["platform:cleura"]["kubernetesVersion"] = 1.30  # what YAML makes of an unquoted 1.30
    error = one_error(raw, with_key=False)
    assert error.startswith("platform:cleura.kubernetesVersion: expected a string, got 1.3; YAML read the unquoted "
                            "text as the number 1.3"), error
    assert 'quote the value as written, e.g. "1.10"' in error


def test_a_misspelt_role_is_one_error_not_also_an_even_server_count() -> None:
    raw = homelab()
    raw["platform:nodes"][2]["role"] = "sever"
    assert errors_of(raw) == ["platform:nodes[2].role: 'sever' is not one of server, agent; did you mean 'server'?"]


@pytest.mark.parametrize(("cidr", "ok"), [("10.64.0.0/12", True), ("10.64.0.0/11", False), ("fd00:43::/108", True),
                                          ("fd00:43::/107", False)])
def test_service_cidr_size_is_kube_apiservers_limit(cidr: str, ok: bool) -> None:
    raw = homelab()
    raw["platform:network"]["serviceCidr"] = cidr
    if ok:
        assert parse(raw).network is not None
    else:
        error = one_error(raw)
        assert error.startswith(f"platform:network.serviceCidr: {cidr} is too large for kube-apiserver: the prefix "
                                f"must be /{12 if '.' in cidr else 108} or longer"), error


@pytest.mark.parametrize(("dns", "why"), [("10.43.0.0", "the network address"), ("10.43.0.1", "the first address"),
                                          ("10.43.255.255", "the broadcast address")])
def test_cluster_dns_may_not_be_a_reserved_service_address(dns: str, why: str) -> None:
    raw = homelab()
    raw["platform:network"]["clusterDns"] = dns
    assert one_error(raw).startswith(f"platform:network.clusterDns: {dns} is {why} of serviceCidr 10.43.0.0/16")


@pytest.mark.parametrize(("schedule", "ok"), [
    ("@daily", True), ("@every 6h", True), ("0 */6 * * *", True), ("30 2 * * SUN", True),
    ("0 25 * * *", False), ("61 * * * *", False), ("0 0 * * 7", False), ("@reboot", False), ("0 0 0 * *", False),
    ("0 0 * * * *", False),
])
def test_snapshot_schedule_is_checked_as_k3s_cron_parser_would(schedule: str, ok: bool) -> None:
    raw = homelab()
    raw["platform:k3s"]["etcd"]["snapshotSchedule"] = schedule
    if ok:
        k3s = parse(raw).k3s
        assert k3s is not None and k3s.etcd.snapshot_schedule == schedule
    else:
        assert one_error(raw).startswith(f"platform:k3s.etcd.snapshotSchedule: '{schedule}' is not a 5-field cron")


def test_hibernation_schedules_use_the_same_range_checks() -> None:
    raw = cleura()
    raw["platform:cleura"]["hibernationSchedules"] = [{"start": "0 25 * * 1-5", "end": "0 7 * * 1-5"}]
    assert one_error(raw, with_key=False) == (
        "platform:cleura.hibernationSchedules[0].start: '0 25 * * 1-5' is not a cron expression: hour field '25' "
        "is out of range (0-23) or malformed")


@pytest.mark.parametrize(("endpoint", "expected"), [
    ("192.0.2.54", "192.0.2.54 is agent k3s-worker-01's address: nothing serves the API there"),
    ("192.0.2.99", "192.0.2.99 is no server's address and not the VIP: nothing serves the API there"),
    ("192.0.2.51", None), ("192.0.2.49", None), ("api.example.com", None),
])
def test_api_endpoint_must_be_served_by_a_server(endpoint: str, expected: str | None) -> None:
    raw = homelab()
    raw["platform:k3s"]["apiEndpoint"] = endpoint
    if expected is None:
        k3s = parse(raw).k3s
        assert k3s is not None and k3s.api_endpoint == endpoint
    else:
        error = one_error(raw)
        assert error.startswith(f"platform:k3s.apiEndpoint: {expected}; use one of the VIP 192.0.2.49, "
                                "k3s-control-01 192.0.2.51"), error


@pytest.mark.parametrize(("key", "expected"), [
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEYKEYKEYKEYKEYKEYKEYKEY user@host\n", "holds a public key"),
    ("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----\n", "PEM public key or certificate"),
    ("AAAAC3NzaC1lZDI1NTE5AAAAIKEYKEYKEYKEYKEYKEYKEYKEY", "does not look like a private key"),
    ("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nabc\n-----END RSA PRIVATE KEY-----\n", "passphrase"),
])
def test_ssh_key_material_must_be_a_private_key_and_is_never_echoed(key: str, expected: str) -> None:
    raw = homelab()
    values: dict[str, Any] = {**raw, KEY: key}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(values, frozenset({KEY}), stack="test")
    assert len(caught.value.errors) == 1
    error = caught.value.errors[0]
    assert error.startswith(f"{KEY}: ") and expected in error, error
    assert "KEYKEY" not in caught.value.render() and "MIIB" not in caught.value.render()


@pytest.mark.parametrize(("cidr", "expected"), [
    ("10.42.0.0/24", None), ("10.0.0.0/8", None),
    ("10.42.0.0/25", "10.42.0.0/25 is smaller than one node's pod range (/24, K3s's node-cidr-mask-size): "
                     "kube-controller-manager refuses it; use /24 or a shorter prefix, e.g. 10.42.0.0/16"),
    ("fd00:42::/47", "is too large for kube-controller-manager's IPv6 node ranges"),
])
def test_pod_cidr_fits_the_node_cidr_mask(cidr: str, expected: str | None) -> None:
    raw = homelab()
    raw["platform:network"]["podCidr"] = cidr
    if expected is None:
        errors = [e for e in errors_of_or_none(raw) if e.startswith("platform:network.podCidr")]
        assert errors == []
    else:
        assert any(e.startswith("platform:network.podCidr: ") and expected in e for e in errors_of_or_none(raw))


def errors_of_or_none(raw: dict[str, Any]) -> list[str]:
    try:
        parse(raw)
    except ConfigError as err:
        return err.errors
    return []
