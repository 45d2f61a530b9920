"""Traefik: the LoadBalancer on the MetalLB ingress address, redirect, dashboard, class; conformance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components import ingress
from components.config import ConfigError, parse_stack_config
from tests.addons import schema
from tests.addons.conftest import cleura, homelab


def args(overrides: dict[str, Any] | None = None) -> ingress.IngressArgs:
    return ingress.IngressArgs.from_config(homelab(overrides))


def test_homelab_traefik_claims_the_metallb_ingress_address() -> None:
    values = ingress.values(args())
    assert values["service"] == {
        "enabled": True, "spec": {"type": "LoadBalancer"},
        "annotations": {"metallb.io/loadBalancerIPs": "192.0.2.50"},
    }


TWO_POOLS = {"platform:metallb": {"pools": [
    {"name": "ingress-vip-pool", "addresses": ["192.0.2.50/32"]},
    {"name": "services", "addresses": ["192.0.2.60-192.0.2.69"]},
]}}


def test_an_explicit_address_or_a_pool_of_several_addresses() -> None:
    pinned = ingress.values(args({**TWO_POOLS, "platform:ingress": {"address": "192.0.2.61"}}))
    assert pinned["service"]["annotations"] == {"metallb.io/loadBalancerIPs": "192.0.2.61"}
    by_pool = ingress.values(args({**TWO_POOLS, "platform:ingress": {"addressPool": "services"}}))
    assert by_pool["service"]["annotations"] == {"metallb.io/address-pool": "services"}


@pytest.mark.parametrize(("ingress_cfg", "key", "fragment"), [
    ({"addressPool": "nope"}, "platform:ingress.addressPool", "is not a platform:metallb.pools name"),
    ({"address": "192.0.2.50", "addressPool": "services"}, "platform:ingress.address", "not in addressPool"),
])
def test_pool_errors_name_the_key(ingress_cfg: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        homelab({**TWO_POOLS, "platform:ingress": ingress_cfg})
    assert any(e.startswith(key) and fragment in e for e in err.value.errors), err.value.errors


def test_a_shoot_rejects_an_address() -> None:
    raw = {"platform:clusterKind": "cleura", "platform:ingress": {"address": "192.0.2.50"}}
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw, frozenset())
    assert any(e.startswith("platform:ingress.address") and "OpenStack load balancer" in e
               for e in err.value.errors), err.value.errors


def test_http_is_redirected_to_https_and_the_dashboard_is_off() -> None:
    values = ingress.values(args())
    web = values["ports"]["web"]
    assert web["http"]["redirections"]["entryPoint"] == {"to": "websecure", "scheme": "https", "permanent": True}
    assert web["allowACMEByPass"] is True  # HTTP-01 challenges are answered before the redirect
    assert values["ingressRoute"]["dashboard"]["enabled"] is False
    off = ingress.values(args({"platform:ingress": {"redirectHttps": False, "dashboard": True}}))
    assert "ports" not in off and off["ingressRoute"]["dashboard"]["enabled"] is True


def test_the_ingress_class_is_named_in_config() -> None:
    values = ingress.values(args({"platform:ingress": {"className": "public", "defaultClass": False}}))
    assert values["ingressClass"] == {"enabled": True, "isDefaultClass": False, "name": "public"}
    assert values["providers"]["kubernetesIngress"]["ingressClass"] == "public"


def test_replicas_get_a_disruption_budget() -> None:
    assert ingress.values(args())["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
    single = ingress.values(args({"platform:ingress": {"replicas": 1}}))
    assert "podDisruptionBudget" not in single and single["deployment"] == {"replicas": 1}


def test_on_a_shoot_octavia_assigns_the_address() -> None:
    values = ingress.values(ingress.IngressArgs.from_config(cleura()))
    assert values["service"] == {"enabled": True, "spec": {"type": "LoadBalancer"}}


def test_switchable_off() -> None:
    assert ingress.applies(homelab())
    assert not ingress.applies(homelab({"platform:ingress": {"enabled": False}}))


@pytest.mark.parametrize(("value", "fragment"), [
    ("192.0.2.77", "lies in no platform:metallb.pools entry"),
    ("not-an-ip", "is not an IPv4/IPv6 address"),
])
def test_the_address_must_be_a_metallb_address(value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        homelab({"platform:ingress": {"address": value}})
    assert any(e.startswith("platform:ingress.address") and fragment in e for e in err.value.errors), err.value.errors


def test_the_address_needs_metallb() -> None:
    with pytest.raises(ConfigError) as err:
        homelab({"platform:metallb": {"enabled": False, "pools": []}, "platform:ingress": {"address": "192.0.2.50"}})
    assert any("platform:ingress.address" in e and "MetalLB" in e for e in err.value.errors), err.value.errors


@pytest.mark.parametrize("overrides", [
    {}, {"platform:ingress": {"dashboard": True, "redirectHttps": False, "replicas": 1}},
])
def test_values_exist_in_the_pinned_chart_and_its_schema(conformance: Path, overrides: dict[str, Any]) -> None:
    spec = ingress.release_spec(args(overrides))
    assert (spec.pin.chart, spec.pin.version) == ("traefik", "41.3.0")
    found = schema.check_values(spec.pin.chart, spec.pin.version, spec.values, conformance)
    assert found.errors == [] and found.warnings == []


def test_redirect_keys_are_the_ones_the_chart_template_reads() -> None:
    # values.yaml has `entryPoint: {}` (an open map for the checker); the template reads these.
    entry = ingress.values(args())["ports"]["web"]["http"]["redirections"]["entryPoint"]
    assert set(entry) <= {"to", "scheme", "permanent", "priority"}
