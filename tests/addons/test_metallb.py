"""MetalLB: pools, advertisements and BGP peers from typed config, chart values, conformance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components import metallb
from tests.addons import schema
from tests.addons.conftest import cleura, homelab, homelab_raw

BGP: dict[str, Any] = {
    "platform:metallb": {
        "myAsn": 64512,
        "pools": [
            {"name": "ingress-vip-pool", "addresses": ["192.0.2.50/32"]},
            {"name": "services", "addresses": ["198.51.100.0/28", "198.51.100.20 - 198.51.100.30"], "advertise": "bgp"},
            {"name": "reserved", "addresses": ["192.0.2.60-192.0.2.62"], "advertise": "none", "autoAssign": False},
        ],
        "bgpPeers": [{"name": "core-router", "address": "192.0.2.1", "asn": 4200000000}],
    },
}
TAINTED = [{**n, "taints": ["dedicated=storage:NoSchedule"]} if n["role"] == "agent" else n
           for n in homelab_raw()["platform:nodes"]]


def by_kind(resources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        out.setdefault(r["kind"], []).append(r)
    return out


def test_homelab_pool_and_l2_advertisement_match_the_writeup() -> None:
    assert metallb.custom_resources(homelab()) == [
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
         "metadata": {"name": "ingress-vip-pool", "namespace": "metallb-system"},
         "spec": {"addresses": ["192.0.2.50/32"], "autoAssign": True}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
         "metadata": {"name": "ingress-vip-pool-l2", "namespace": "metallb-system"},
         "spec": {"ipAddressPools": ["ingress-vip-pool"]}},
    ]


def test_bgp_peers_and_advertisements() -> None:
    kinds = by_kind(metallb.custom_resources(homelab(BGP)))
    assert [p["metadata"]["name"] for p in kinds["IPAddressPool"]] == ["ingress-vip-pool", "services", "reserved"]
    assert kinds["IPAddressPool"][1]["spec"]["addresses"] == ["198.51.100.0/28", "198.51.100.20-198.51.100.30"]
    assert kinds["IPAddressPool"][2]["spec"]["autoAssign"] is False
    assert [a["spec"]["ipAddressPools"] for a in kinds["L2Advertisement"]] == [["ingress-vip-pool"]]
    assert [a["spec"]["ipAddressPools"] for a in kinds["BGPAdvertisement"]] == [["services"]]
    (peer,) = kinds["BGPPeer"]
    assert peer["apiVersion"] == "metallb.io/v1beta2"
    assert peer["spec"] == {"myASN": 64512, "peerASN": 4200000000, "peerAddress": "192.0.2.1"}


def test_pools_precede_everything_that_references_them() -> None:
    kinds = [r["kind"] for r in metallb.custom_resources(homelab(BGP))]
    assert kinds[:3] == ["IPAddressPool"] * 3


def test_frr_k8s_only_with_bgp() -> None:
    assert metallb.values(homelab())["frrk8s"] == {"enabled": False}
    assert metallb.values(homelab(BGP))["frrk8s"] == {"enabled": True}


def test_controller_on_the_control_tier_speakers_everywhere() -> None:
    values = metallb.values(homelab({"platform:nodes": TAINTED, **BGP}))
    assert values["controller"] == {"nodeSelector": {"example.com/role": "control"}}
    toleration = {"key": "dedicated", "operator": "Equal", "value": "storage", "effect": "NoSchedule"}
    assert values["speaker"] == {"tolerations": [toleration]}
    assert values["frr-k8s"] == {"frrk8s": {"tolerations": [toleration]}}


def test_release_is_pinned() -> None:
    args = metallb.release_args(homelab())
    assert (args.chart, args.version, args.namespace) == ("metallb", "0.16.1", "metallb-system")
    assert args.repository_opts.repo == "https://metallb.github.io/metallb"


def test_metallb_is_skipped_without_pools_when_disabled_and_on_gardener() -> None:
    assert metallb.applies(homelab())
    assert not metallb.applies(homelab({"platform:metallb": {"enabled": False}}))
    assert not metallb.applies(homelab({"platform:metallb": {"pools": []}}))
    assert not metallb.applies(cleura())


# -- conformance ----------------------------------------------------------------------------

CONFIGS = {"homelab": {}, "bgp-tainted": {**BGP, "platform:nodes": TAINTED}}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_custom_resources_validate_against_their_crds(conformance: Path, name: str) -> None:
    for resource in metallb.custom_resources(homelab(CONFIGS[name])):
        assert schema.validate_custom_resource(resource, conformance) == []


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_values_exist_in_the_pinned_chart_and_its_schema(conformance: Path, name: str) -> None:
    spec = metallb.release_spec(homelab(CONFIGS[name]))
    found = schema.check_values(spec.pin.chart, spec.pin.version, spec.values, conformance)
    assert found.errors == [] and found.warnings == []
