"""Every add-on configuration rule, exercised through `parse_stack_config` (no Pulumi)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import ConfigError, parse_stack_config
from tests.addons.conftest import SSH_KEY, homelab, homelab_raw

NODES: list[dict[str, Any]] = homelab_raw()["platform:nodes"]


def errors(overrides: dict[str, Any]) -> list[str]:
    """The configuration errors for the homelab stack with `overrides` ([] when it parses)."""
    try:
        homelab(overrides)
    except ConfigError as err:
        return err.errors
    return []


def only_error(overrides: dict[str, Any], *fragments: str) -> str:
    found = errors(overrides)
    assert len(found) == 1, found
    for fragment in fragments:
        assert fragment in found[0], found[0]
    return found[0]


def with_nodes(*changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The homelab nodes with per-index changes (`{"index": i, **fields}`)."""
    nodes = [dict(n) for n in NODES]
    for change in changes:
        change = dict(change)
        nodes[change.pop("index")].update(change)
    return nodes


def test_homelab_stack_is_valid() -> None:
    assert errors({}) == []


def test_raw_values_may_be_json_text() -> None:
    raw = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in homelab_raw().items()}
    cfg = parse_stack_config(raw, frozenset({SSH_KEY}), stack="homelab")
    assert cfg.metallb is not None and cfg.metallb.pools[0].name == "ingress-vip-pool"


# -- Calico ---------------------------------------------------------------------------------


def test_calico_pool_cidr_must_equal_the_k3s_cluster_cidr() -> None:
    only_error({"platform:calico": {"ipPoolCidr": "172.31.0.0/16"}}, "calico.ipPoolCidr", "10.42.0.0/16", "SNAT")


def test_calico_pool_cidr_equal_to_pod_cidr_is_accepted() -> None:
    assert errors({"platform:calico": {"ipPoolCidr": "10.42.0.0/16"}}) == []


@pytest.mark.parametrize("encapsulation", ["IPIP", "IPIPCrossSubnet", "VXLAN", "VXLANCrossSubnet", "None"])
def test_calico_encapsulations_are_accepted(encapsulation: str) -> None:
    cfg = homelab({"platform:calico": {"encapsulation": encapsulation}})
    assert cfg.calico is not None and cfg.calico.encapsulation == encapsulation


def test_unknown_encapsulation_is_rejected_with_a_suggestion() -> None:
    only_error({"platform:calico": {"encapsulation": "vxlan"}}, "calico.encapsulation", "did you mean 'VXLAN'")


@pytest.mark.parametrize("block", [19, 33])
def test_block_size_out_of_range_is_rejected(block: int) -> None:
    only_error({"platform:calico": {"blockSize": block}}, "calico.blockSize", "out of range")


def test_block_larger_than_the_pod_cidr_is_rejected() -> None:
    only_error({"platform:network": {**homelab_raw()["platform:network"], "podCidr": "10.42.0.0/24"},
                "platform:calico": {"blockSize": 22}}, "calico.blockSize", "larger than podCidr")


def test_tiny_mtu_is_rejected() -> None:
    only_error({"platform:calico": {"mtu": 576}}, "calico.mtu", "too small")


def test_autodetection_defaults_to_the_kubernetes_internal_ip() -> None:
    cfg = homelab()
    assert cfg.calico is not None
    assert (cfg.calico.autodetection_method, cfg.calico.autodetection_value) == ("kubernetes", "NodeInternalIP")


@pytest.mark.parametrize(("method", "value", "fragment"), [
    ("interface", "", "needs a value"),
    ("cidrs", "192.0.2.0/33", "not a CIDR"),
    ("canReach", "not a host!", "neither an address nor a DNS name"),
    ("kubernetes", "NodeExternalIP", "only NodeInternalIP"),
])
def test_bad_autodetection_is_rejected(method: str, value: str, fragment: str) -> None:
    only_error({"platform:calico": {"nodeAddressAutodetection": {"method": method, "value": value}}},
               "calico.nodeAddressAutodetection.value", fragment)


def test_whisker_needs_goldmane() -> None:
    only_error({"platform:calico": {"whisker": True}}, "calico.whisker", "goldmane")
    assert errors({"platform:calico": {"whisker": True, "goldmane": True}}) == []


def test_ipv6_pod_network_is_rejected() -> None:
    network = {"podCidr": "fd00:42::/56", "serviceCidr": "10.43.0.0/16", "nodeCidrs": ["192.0.2.0/24"]}
    only_error({"platform:network": network}, "network.podCidr", "IPv4")


# -- MetalLB --------------------------------------------------------------------------------


def pools(*pool: dict[str, Any], **extra: Any) -> dict[str, Any]:
    # VXLAN: Calico without BIRD, so MetalLB may speak BGP (see test_metallb_bgp_beside_calico_bgp_*).
    return {"platform:metallb": {"pools": list(pool), **extra}, "platform:calico": {"encapsulation": "VXLAN"}}


@pytest.mark.parametrize("address", ["192.0.2.300/32", "192.0.2.60-192.0.2.50", "not-an-address", "192.0.2.1/24"])
def test_pool_addresses_must_be_ranges_or_cidrs(address: str) -> None:
    only_error(pools({"name": "p", "addresses": [address]}), "metallb.pools[0].addresses[0]")


def test_address_ranges_are_accepted() -> None:
    cfg = homelab(pools({"name": "p", "addresses": ["192.0.2.200-192.0.2.210", "192.0.2.240/29"]}))
    assert cfg.metallb is not None and len(cfg.metallb.pools[0].addresses) == 2


def test_pools_must_not_overlap_each_other() -> None:
    first = {"name": "a", "addresses": ["192.0.2.200/29"]}
    second = {"name": "b", "addresses": ["192.0.2.204-192.0.2.220"]}
    only_error(pools(first, second), "metallb.pools[1].addresses[0]", "overlaps")


def test_pools_must_not_contain_node_addresses() -> None:
    only_error(pools({"name": "a", "addresses": ["192.0.2.51/32"]}), "contains node k3s-control-01")


@pytest.mark.parametrize(("address", "key"), [("10.42.7.0/24", "podCidr"), ("10.43.0.10/32", "serviceCidr")])
def test_pools_must_not_overlap_pod_or_service_networks(address: str, key: str) -> None:
    found = errors(pools({"name": "a", "addresses": [address], "advertise": "none"}))
    assert any(f"network.{key}" in e for e in found), found


def test_l2_pools_must_lie_in_a_node_subnet() -> None:
    only_error(pools({"name": "a", "addresses": ["198.51.100.10/32"]}), "L2 pool outside every node network")


def test_bgp_pools_may_lie_outside_the_node_subnets() -> None:
    peer = {"name": "router", "address": "192.0.2.1", "asn": 64513}
    assert errors(pools({"name": "a", "addresses": ["198.51.100.0/28"], "advertise": "bgp"}, bgpPeers=[peer])) == []


def test_bgp_pool_needs_peers() -> None:
    only_error(pools({"name": "a", "addresses": ["198.51.100.0/28"], "advertise": "bgp"}),
               "metallb.bgpPeers", "no bgpPeers")


@pytest.mark.parametrize("asn", [0, 4294967296, -1])
def test_peer_asn_out_of_range_is_rejected(asn: int) -> None:
    peer = {"name": "router", "address": "192.0.2.1", "asn": asn}
    only_error(pools({"name": "a", "addresses": ["198.51.100.0/28"], "advertise": "bgp"}, bgpPeers=[peer]),
               "bgpPeers[0].asn", "out of range")


@pytest.mark.parametrize("asn", [23456, 65535, 4294967295])
def test_reserved_asns_are_rejected(asn: int) -> None:
    peer = {"name": "router", "address": "192.0.2.1", "asn": asn}
    only_error(pools({"name": "a", "addresses": ["198.51.100.0/28"], "advertise": "bgp"}, bgpPeers=[peer]),
               "bgpPeers[0].asn", "reserved")
    only_error(pools({"name": "a", "addresses": ["192.0.2.200/32"]}, myAsn=asn), "metallb.myAsn", "reserved")


def test_four_byte_asns_are_accepted() -> None:
    peer = {"name": "router", "address": "192.0.2.1", "asn": 4200000000}
    cfg = homelab(pools({"name": "a", "addresses": ["198.51.100.0/28"], "advertise": "bgp"}, bgpPeers=[peer],
                        myAsn=4200000001))
    assert cfg.metallb is not None
    assert (cfg.metallb.bgp_peers[0].asn, cfg.metallb.bgp_peers[0].my_asn) == (4200000000, 4200000001)


def test_peer_names_are_unique_and_peers_lie_outside_pools() -> None:
    routers = [{"name": "r", "address": "192.0.2.1", "asn": 64513},
               {"name": "r", "address": "198.51.100.3", "asn": 64514}]
    found = errors(pools({"name": "a", "addresses": ["198.51.100.0/28"], "advertise": "bgp"}, bgpPeers=routers))
    assert any("duplicate BGP peer name" in e for e in found), found
    assert any("lies in address pool a" in e for e in found), found


def test_pool_with_the_api_vip_is_rejected() -> None:
    found = errors(pools({"name": "a", "addresses": ["192.0.2.49/32"]}))
    assert any("API VIP" in e for e in found), found


# -- storage --------------------------------------------------------------------------------


def storage(kind: str, **section: Any) -> dict[str, Any]:
    return {"platform:storage": {"kind": kind, **({kind: section} if section else {})}}


def test_longhorn_replicas_cannot_exceed_storage_nodes() -> None:
    nodes = with_nodes(*({"index": i, "storage": False} for i in range(3, 6)))
    only_error({"platform:nodes": nodes, **storage("longhorn", replicaCount=4)},
               "longhorn.replicaCount", "3 storage node")
    assert errors({"platform:nodes": nodes, **storage("longhorn", replicaCount=3)}) == []


def test_mayastor_needs_three_storage_nodes() -> None:
    nodes = with_nodes(*({"index": i, "storage": False} for i in range(2, 6)))
    found = errors({"platform:nodes": nodes, **storage("openebs", engine="mayastor", mayastorReplicas=2)})
    assert any("at least 3 storage nodes" in e for e in found), found


def test_mayastor_replicas_cannot_exceed_storage_nodes() -> None:
    nodes = with_nodes(*({"index": i, "storage": False} for i in range(3, 6)))
    only_error({"platform:nodes": nodes, **storage("openebs", engine="mayastor", mayastorReplicas=4)},
               "openebs.mayastorReplicas")


def test_mayastor_label_is_derived_for_storage_nodes_only() -> None:
    nodes = with_nodes({"index": 0, "storage": False})
    cfg = homelab({"platform:nodes": nodes, **storage("openebs", engine="mayastor")})
    labelled = [n.name for n in cfg.nodes if cfg.storage.node_labels(n) == {"openebs.io/engine": "mayastor"}]
    assert labelled == [n["name"] for n in nodes[1:]]


def test_hand_set_mayastor_label_must_agree_with_storage_flag() -> None:
    labels = {"example.com/role": "control", "openebs.io/engine": "mayastor"}
    only_error({"platform:nodes": with_nodes({"index": 0, "storage": False, "labels": labels}),
                **storage("openebs", engine="mayastor")}, "k3s-control-01", "storage: false")
    only_error({"platform:nodes": with_nodes({"index": 1, "labels": {"openebs.io/engine": "other"}}),
                **storage("openebs", engine="mayastor")}, "k3s-control-02")


def test_longhorn_disk_label_marks_storage_nodes() -> None:
    cfg = homelab({"platform:nodes": with_nodes({"index": 5, "storage": False})})
    assert [bool(cfg.storage.node_labels(n)) for n in cfg.nodes] == [True] * 5 + [False]
    assert cfg.storage.node_labels(cfg.nodes[0]) == {"node.longhorn.io/create-default-disk": "true"}


def test_hostpath_needs_no_node_labels() -> None:
    cfg = homelab(storage("openebs", engine="hostpath"))
    assert all(cfg.storage.node_labels(n) == {} for n in cfg.nodes)


@pytest.mark.parametrize(("kind", "section"), [("longhorn", {}), ("openebs", {"engine": "hostpath"})])
def test_two_default_storage_classes_are_rejected(kind: str, section: dict[str, Any]) -> None:
    k3s = {**homelab_raw()["platform:k3s"], "disableLocalStorage": False}
    only_error({"platform:k3s": k3s, **storage(kind, **section, defaultClass=True)},
               f"storage.{kind}.defaultClass", "both be the default")


@pytest.mark.parametrize(("kind", "section"), [("longhorn", {}), ("openebs", {"engine": "lvm"})])
def test_no_default_storage_class_is_rejected(kind: str, section: dict[str, Any]) -> None:
    only_error(storage(kind, **section, defaultClass=False), f"storage.{kind}.defaultClass", "no default StorageClass")


def test_local_path_may_stay_the_default_when_ours_is_not() -> None:
    k3s = {**homelab_raw()["platform:k3s"], "disableLocalStorage": False}
    assert errors({"platform:k3s": k3s, **storage("longhorn", defaultClass=False)}) == []


def test_storage_kind_must_suit_the_cluster_kind() -> None:
    only_error(storage("cinder"), "storage.kind", "longhorn, openebs")


def test_unknown_openebs_engine_is_rejected() -> None:
    only_error(storage("openebs", engine="jiva"), "openebs.engine")


def test_backup_with_credentials_needs_the_secret() -> None:
    backup = {"target": "s3://backups@eu-north-1/", "accessKeyId": "AKIA0000"}
    only_error(storage("longhorn", backup=backup), "platform:longhornBackupSecretKey", "pulumi config set --secret")


def test_backup_target_must_be_a_url() -> None:
    only_error(storage("longhorn", backup={"target": "/mnt/backups"}), "longhorn.backup.target")


def test_backup_secret_set_in_plain_text_is_rejected() -> None:
    raw = homelab_raw(storage("longhorn", backup={"target": "s3://b@r/", "accessKeyId": "AKIA0000"}))
    raw["platform:longhornBackupSecretKey"] = "plaintext-secret"
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw, frozenset({SSH_KEY}), stack="homelab")
    assert any("set in plain text" in e for e in err.value.errors)
    assert "plaintext-secret" not in str(err.value)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, {"iscsi", "nfs"}),
    (storage("longhorn", rwx=False), {"iscsi"}),
    (storage("openebs", engine="hostpath"), set()),
    (storage("openebs", engine="lvm"), {"lvm"}),
    (storage("openebs", engine="zfs"), {"zfs"}),
    (storage("openebs", engine="mayastor"), {"nvme-tcp", "hugepages"}),
])
def test_storage_choice_drives_host_prerequisites(overrides: dict[str, Any], expected: set[str]) -> None:
    assert homelab(overrides).storage.host_prerequisites == expected


def test_switching_longhorn_to_hostpath_changes_only_the_storage_config() -> None:
    before, after = homelab(), homelab(storage("openebs", engine="hostpath"))
    assert before.storage != after.storage
    for name in ("nodes", "network", "ssh", "k3s", "calico", "metallb", "charts", "cluster_name", "cluster_kind"):
        assert getattr(before, name) == getattr(after, name), name


def test_metallb_bgp_beside_calico_bgp_is_rejected() -> None:
    peer = {"name": "router", "address": "192.0.2.1", "asn": 64513}
    overrides = {"platform:metallb": {"pools": [{"name": "a", "addresses": ["198.51.100.0/28"], "advertise": "bgp"}],
                                      "bgpPeers": [peer]}}
    only_error(overrides, "platform:metallb.pools", "both listen on TCP 179")


@pytest.mark.parametrize("encapsulation", ["VXLAN", "VXLANCrossSubnet"])
def test_metallb_bgp_beside_calico_vxlan_is_accepted(encapsulation: str) -> None:
    peer = {"name": "router", "address": "192.0.2.1", "asn": 64513}
    overrides = {"platform:metallb": {"pools": [{"name": "a", "addresses": ["198.51.100.0/28"], "advertise": "bgp"}],
                                      "bgpPeers": [peer]}, "platform:calico": {"encapsulation": encapsulation}}
    assert errors(overrides) == []


# -- storage.cinder, storage.snapshots --------------------------------------------------------


def test_cinder_settings_apply_only_to_shoots() -> None:
    only_error({"platform:storage": {"kind": "longhorn", "cinder": {"storageClass": "x"}}}, "storage.cinder",
               "clusterKind 'cleura'")


def test_a_shoot_rejects_snapshots_it_already_has() -> None:
    raw = {"platform:clusterKind": "cleura", "platform:storage": {"kind": "cinder", "snapshots": True}}
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw, frozenset())
    assert any(e.startswith("platform:storage.snapshots") and "Gardener" in e for e in err.value.errors)
