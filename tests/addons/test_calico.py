"""Calico: the Installation rendered from typed config, chart values, and their conformance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components import calico
from tests.addons import schema
from tests.addons.conftest import cleura, homelab, homelab_raw

TAINTED = [
    {**n, "taints": ["node-role.kubernetes.io/control-plane:NoSchedule"]} if n["role"] == "server" else n
    for n in homelab_raw()["platform:nodes"]
]


def calico_args(overrides: dict[str, Any] | None = None) -> calico.CalicoArgs:
    return calico.CalicoArgs.from_config(homelab(overrides))


def installation(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    return calico.custom_resources(calico_args(overrides))[0]


def test_pool_cidr_is_the_k3s_cluster_cidr() -> None:
    network = {**homelab_raw()["platform:network"], "podCidr": "10.244.0.0/16"}
    pools = installation({"platform:network": network})["spec"]["calicoNetwork"]["ipPools"]
    assert [p["cidr"] for p in pools] == ["10.244.0.0/16"]


def test_homelab_installation_matches_the_writeup() -> None:
    spec = installation()["spec"]
    assert spec["calicoNetwork"]["ipPools"] == [{
        "name": "default-ipv4-ippool", "cidr": "10.42.0.0/16", "encapsulation": "IPIP", "natOutgoing": "Enabled",
        "nodeSelector": "all()", "blockSize": 26,
        "allowedUses": ["Workload", "Tunnel"], "disableBGPExport": False, "disableNewAllocations": False,
        "assignmentMode": "Automatic",
    }]
    assert spec["calicoNetwork"]["containerIPForwarding"] == "Enabled"
    assert spec["calicoNetwork"]["bgp"] == "Enabled"
    assert spec["calicoNetwork"]["nodeAddressAutodetectionV4"] == {"kubernetes": "NodeInternalIP"}
    assert "mtu" not in spec["calicoNetwork"]
    assert spec["cni"]["type"] == "Calico" and spec["cni"]["ipam"] == {"type": "Calico"}


@pytest.mark.parametrize(("encapsulation", "bgp"), [
    ("IPIP", "Enabled"), ("IPIPCrossSubnet", "Enabled"), ("VXLAN", "Disabled"), ("VXLANCrossSubnet", "Disabled"),
    ("None", "Enabled"),
])
def test_encapsulation_decides_bgp(encapsulation: str, bgp: str) -> None:
    network = installation({"platform:calico": {"encapsulation": encapsulation}})["spec"]["calicoNetwork"]
    assert network["ipPools"][0]["encapsulation"] == encapsulation
    assert network["bgp"] == bgp


def test_nat_outgoing_block_size_and_mtu_follow_config() -> None:
    network = installation({"platform:calico": {"natOutgoing": False, "blockSize": 28, "mtu": 1400}})["spec"][
        "calicoNetwork"]
    assert network["ipPools"][0]["natOutgoing"] == "Disabled"
    assert network["ipPools"][0]["blockSize"] == 28
    assert network["mtu"] == 1400


@pytest.mark.parametrize(("method", "value", "expected"), [
    ("firstFound", "", {"firstFound": True}),
    ("kubernetes", "", {"kubernetes": "NodeInternalIP"}),
    ("interface", "eth.*", {"interface": "eth.*"}),
    ("skipInterface", "cali.*", {"skipInterface": "cali.*"}),
    ("canReach", "192.0.2.1", {"canReach": "192.0.2.1"}),
    ("cidrs", "192.0.2.0/24, 198.51.100.0/24", {"cidrs": ["192.0.2.0/24", "198.51.100.0/24"]}),
])
def test_node_address_autodetection(method: str, value: str, expected: dict[str, Any]) -> None:
    auto = {"method": method, **({"value": value} if value else {})}
    spec = installation({"platform:calico": {"nodeAddressAutodetection": auto}})["spec"]
    assert spec["calicoNetwork"]["nodeAddressAutodetectionV4"] == expected


def test_control_plane_components_go_to_the_control_tier() -> None:
    spec = installation({"platform:nodes": TAINTED})["spec"]
    control = {"example.com/role": "control"}
    assert spec["calicoKubeControllersDeployment"]["spec"]["template"]["spec"]["nodeSelector"] == control
    (_, apiserver, goldmane, whisker) = calico.custom_resources(calico_args(
        {"platform:nodes": TAINTED, "platform:calico": {"goldmane": True, "whisker": True}}))
    assert apiserver["spec"]["apiServerDeployment"]["spec"]["template"]["spec"]["nodeSelector"] == control
    assert goldmane["spec"]["goldmaneDeployment"]["spec"]["template"]["spec"]["nodeSelector"] == control
    assert whisker["spec"]["whiskerDeployment"]["spec"]["template"]["spec"]["nodeSelector"] == control
    assert spec["controlPlaneTolerations"] == [
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert spec["controlPlaneReplicas"] == 2


def test_typha_is_not_pinned_to_the_control_tier() -> None:
    # controlPlaneNodeSelector would also select host-network Typha (one per node, 3 on the
    # homelab's 6 nodes): on the 3 control nodes a drain would leave one Pending.
    spec = installation()["spec"]
    assert "controlPlaneNodeSelector" not in spec
    assert "nodeSelector" not in spec.get("typhaDeployment", {}).get("spec", {}).get("template", {}).get("spec", {})


def test_pool_declares_every_field_the_operator_defaults(conformance: Path) -> None:
    # The operator writes these back into the atomic ipPools list; a missing one makes it a
    # co-owner under server-side apply (conflicts, a diff on every refresh).
    (pool,) = installation()["spec"]["calicoNetwork"]["ipPools"]
    crd = yaml.safe_load((conformance / "crds" / "operator.tigera.io_installations.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    fields = spec["properties"]["calicoNetwork"]["properties"]["ipPools"]["items"]
    defaulted_by_crd = {k for k, v in fields["properties"].items() if "default" in v}
    assert defaulted_by_crd <= pool.keys()
    assert {k: pool[k] for k in calico.OPERATOR_POOL_DEFAULTS} == {
        "allowedUses": ["Workload", "Tunnel"], "disableBGPExport": False, "disableNewAllocations": False,
        "assignmentMode": "Automatic",
    }
    # Everything the operator's defaulting touches for an IPv4 pool is declared.
    assert {"name", "encapsulation", "natOutgoing", "nodeSelector", "blockSize", "allowedUses",
            "disableNewAllocations", "assignmentMode"} <= pool.keys()


def test_flexvolume_is_disabled() -> None:
    assert installation()["spec"]["flexVolumePath"] == "None"


def test_apiserver_readiness_is_awaited() -> None:
    (_, apiserver) = calico.custom_resources(calico_args())
    assert apiserver["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}


def test_without_tier_labels_there_is_no_selector_and_replicas_fit_the_nodes() -> None:
    node = {"name": "solo", "address": "192.0.2.51", "role": "server"}
    spec = installation({"platform:nodes": [node], "platform:storage": {"kind": "openebs"}})["spec"]
    assert "controlPlaneNodeSelector" not in spec and "calicoKubeControllersDeployment" not in spec
    assert spec["controlPlaneReplicas"] == 1


def test_installation_waits_for_ready_and_extras_are_off_by_default() -> None:
    resources = calico.custom_resources(calico.CalicoArgs.from_config(homelab()))
    assert [r["kind"] for r in resources] == ["Installation", "APIServer"]
    assert resources[0]["metadata"] == {"name": "default", "annotations": {"pulumi.com/waitFor": "condition=Ready"}}


def test_goldmane_and_whisker_when_enabled() -> None:
    cfg = homelab({"platform:calico": {"goldmane": True, "whisker": True}})
    kinds = [r["kind"] for r in calico.custom_resources(calico.CalicoArgs.from_config(cfg))]
    assert kinds == ["Installation", "APIServer", "Goldmane", "Whisker"]


def test_chart_installs_only_the_operator() -> None:
    values = calico.values(calico.CalicoArgs.from_config(homelab()))
    assert {values[k]["enabled"] for k in ("installation", "apiServer", "goldmane", "whisker")} == {False}
    assert values["manageCRDs"] is False
    assert values["nodeSelector"] == {"kubernetes.io/os": "linux", "example.com/role": "control"}


def test_charts_are_pinned_in_one_place_and_overridable() -> None:
    cfg = homelab()
    spec = calico.release_spec(calico.CalicoArgs.from_config(cfg))
    assert (spec.pin.chart, spec.pin.version) == ("tigera-operator", "v3.32.1")
    args = calico.crds_chart_args(calico.CalicoArgs.from_config(cfg))
    assert (args.chart, args.version) == ("crd.projectcalico.org.v1", "v3.32.1")
    assert args.repository_opts.repo == "https://docs.tigera.io/calico/charts"
    versions = {**homelab_raw()["platform:versions"], "charts": {"tigeraOperator": "v3.32.2"}}
    assert calico.release_spec(calico_args({"platform:versions": versions})).pin.version == "v3.32.2"


def test_release_args_carry_the_pinned_chart() -> None:
    args = calico.release_args(calico.CalicoArgs.from_config(homelab()))
    assert (args.chart, args.version, args.namespace, args.name) == ("tigera-operator", "v3.32.1", "tigera-operator",
                                                                     "calico")
    assert args.repository_opts.repo == "https://docs.tigera.io/calico/charts"
    assert args.create_namespace is False and args.skip_await is False


def test_calico_applies_to_k3s_with_calico_enabled_only() -> None:
    assert calico.applies(homelab())
    assert not calico.applies(homelab({"platform:calico": {"enabled": False}}))
    assert not calico.applies(cleura())


# -- conformance ----------------------------------------------------------------------------

CONFIGS: dict[str, dict[str, Any]] = {
    "homelab": {},
    "tainted-vxlan-extras": {
        "platform:nodes": TAINTED,
        "platform:calico": {"encapsulation": "VXLANCrossSubnet", "mtu": 1450, "goldmane": True, "whisker": True,
                            "nodeAddressAutodetection": {"method": "cidrs", "value": "192.0.2.0/24"}},
    },
    "no-encapsulation": {"platform:calico": {"encapsulation": "None", "natOutgoing": False}},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_custom_resources_validate_against_their_crds(conformance: Path, name: str) -> None:
    resources = calico.custom_resources(calico.CalicoArgs.from_config(homelab(CONFIGS[name])))
    for resource in resources:
        assert schema.validate_custom_resource(resource, conformance) == []


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_operator_values_exist_in_the_pinned_chart(conformance: Path, name: str) -> None:
    spec = calico.release_spec(calico.CalicoArgs.from_config(homelab(CONFIGS[name])))
    found = schema.check_values(spec.pin.chart, spec.pin.version, spec.values, conformance)
    assert found.errors == [] and found.warnings == []


def test_installation_spec_is_also_valid_as_chart_values(conformance: Path) -> None:
    # The chart copies installation.* into the Installation spec: either route must validate.
    spec = calico.installation_spec(calico.CalicoArgs.from_config(homelab(CONFIGS["tainted-vxlan-extras"])))
    found = schema.check_values("tigera-operator", "v3.32.1", {"installation": {"enabled": True, **spec}}, conformance)
    assert found.errors == []
