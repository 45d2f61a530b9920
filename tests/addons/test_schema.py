"""The conformance helper itself: it must catch what the API server and Helm would reject."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.addons import schema

INSTALLATION: dict[str, Any] = {
    "apiVersion": "operator.tigera.io/v1", "kind": "Installation", "metadata": {"name": "default"},
    "spec": {"calicoNetwork": {"ipPools": [{"cidr": "10.42.0.0/16", "encapsulation": "IPIP"}]}},
}
POOL: dict[str, Any] = {
    "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
    "metadata": {"name": "pool", "namespace": "metallb-system"}, "spec": {"addresses": ["192.0.2.50/32"]},
}


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    *parents, last = path.split(".")
    target = obj
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return obj


def test_valid_objects_pass(conformance: Path) -> None:
    assert schema.validate_custom_resource(INSTALLATION, conformance) == []
    assert schema.validate_custom_resource(POOL, conformance) == []


@pytest.mark.parametrize(("base", "path", "value", "fragment"), [
    (INSTALLATION, "spec.calicoNetwork.bogus", True, "'bogus' was unexpected"),
    (INSTALLATION, "spec.calicoNetwork.ipPools.0.encapsulation", "GRE", "is not one of"),
    (INSTALLATION, "spec.calicoNetwork.ipPools.0.cidr", KeyError, "'cidr' is a required property"),
    (INSTALLATION, "spec.controlPlaneReplicas", "2", "is not of type 'integer'"),
    (INSTALLATION, "metadata.namespace", "default", "cluster-scoped"),
    (INSTALLATION, "metadata.name", "Not_A_Name", "not a DNS subdomain"),
    (POOL, "spec.addresses", KeyError, "'addresses' is a required property"),
    (POOL, "spec.autoAssign", "yes", "is not of type 'boolean'"),
    (POOL, "metadata.namespace", KeyError, "namespaced"),
    (POOL, "metadata.labels", {"tier": 1}, "must be a string"),
    (POOL, "status", {"anything": 1}, "'anything' was unexpected"),
])
def test_invalid_objects_are_rejected(conformance: Path, base: dict[str, Any], path: str, value: Any,
                                      fragment: str) -> None:
    problems = schema.validate_custom_resource(changed(base, path, value), conformance)
    assert any(fragment in p for p in problems), problems


def test_unknown_version_and_kind_are_reported(conformance: Path) -> None:
    with pytest.raises(ValueError, match="served"):
        schema.validate_custom_resource({**POOL, "apiVersion": "metallb.io/v1"}, conformance)
    with pytest.raises(schema.ReferenceMissingError):
        schema.validate_custom_resource({**POOL, "kind": "Frobnicator"}, conformance)
    assert not schema.has_crd("example.com/v1", "Thing", conformance)


def test_int_or_string_preserve_unknown_and_nullable_are_honoured() -> None:
    translated = schema.to_json_schema({
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "maybe": {"type": "string", "nullable": True, "enum": ["a"]},
            "strict": {"type": "object", "properties": {"a": {"type": "string"}}},
        },
    })
    validator = jsonschema.Draft7Validator(translated)
    assert validator.is_valid({"port": 80, "free": {"x": {"y": 1}}, "maybe": None, "strict": {"a": "b"}})
    assert validator.is_valid({"port": "http"})
    assert not validator.is_valid({"strict": {"b": "c"}})
    assert not validator.is_valid({"unknown": 1})
    assert not validator.is_valid({"port": 1.5})


def test_openapi_boolean_exclusive_bounds_are_translated() -> None:
    translated = schema.to_json_schema({"type": "integer", "minimum": 0, "exclusiveMinimum": True})
    validator = jsonschema.Draft7Validator(translated)
    assert validator.is_valid(1) and not validator.is_valid(0)


def test_every_reference_crd_translates_to_a_valid_json_schema(conformance: Path) -> None:
    for entry in schema._index(conformance)["crds"]:
        for version in entry["versions"]:
            crd = schema.crd_version(f"{entry['group']}/{version}", entry["kind"], conformance)
            jsonschema.Draft7Validator.check_schema(crd.validator.schema)


# -- values -----------------------------------------------------------------------------------


def test_unknown_value_keys_and_type_mismatches_are_errors(conformance: Path) -> None:
    found = schema.check_values("metallb", "0.16.1", {
        "controller": {"replicas": 2, "nodeSelector": {"any/key": "ok"}},
        "speaker": {"tolerateMaster": "yes"},
    }, conformance)
    assert any("controller.replicas is not a value" in e for e in found.errors), found
    assert any("speaker.tolerateMaster is a string" in e for e in found.errors), found
    assert not any("nodeSelector" in e for e in found.errors), found


def test_values_schema_json_is_enforced(conformance: Path) -> None:
    found = schema.check_values("metallb", "0.16.1", {"controller": {"logLevel": "verbose"}}, conformance)
    assert any("values.schema.json" in e and "verbose" in e for e in found.errors), found


def test_subchart_keys_resolve_under_their_prefix(conformance: Path) -> None:
    ok = schema.check_values("metallb", "0.16.1", {"frr-k8s": {"frrk8s": {"tolerations": []}}}, conformance)
    assert ok.errors == [] and ok.warnings == []
    bad = schema.check_values("metallb", "0.16.1", {"frr-k8s": {"frrk8s": {"replicas": 3}}}, conformance)
    assert any("frr-k8s.frrk8s.replicas" in e for e in bad.errors), bad


def test_misses_in_inexact_subcharts_are_warnings(conformance: Path) -> None:
    found = schema.check_values("openebs", "4.2.0", {
        "mayastor": {"etcd": {"replicaCount": 3, "notAKey": 1}}, "zfs-localpv": {"zfsNode": {"bogus": 1}},
    }, conformance)
    assert found.errors == []
    assert len(found.warnings) == 2, found.warnings


def test_open_maps_accept_any_key(conformance: Path) -> None:
    found = schema.check_values("longhorn", "1.12.1", {
        "defaultSettings": {"settingFromTheFuture": "1"}, "longhornManager": {"nodeSelector": {"a": "b"}},
    }, conformance)
    assert found.errors == []


def test_calico_installation_values_are_checked_against_the_crd(conformance: Path) -> None:
    good = {"installation": {"enabled": True, "calicoNetwork": {"bgp": "Disabled"}}}
    assert schema.check_values("tigera-operator", "v3.32.1", good, conformance).errors == []
    bad = {"installation": {"calicoNetwork": {"bgp": "Off"}, "flannel": True}}
    errors = schema.check_values("tigera-operator", "v3.32.1", bad, conformance).errors
    assert any("bgp" in e for e in errors) and any("flannel" in e for e in errors), errors


def test_unknown_chart_version_is_reported(conformance: Path) -> None:
    with pytest.raises(schema.ReferenceMissingError, match="have:"):
        schema.check_values("metallb", "0.0.1", {}, conformance)


def test_render_directory_check(conformance: Path, tmp_path: Path) -> None:
    (tmp_path / "helm").mkdir()
    (tmp_path / "manifests").mkdir()
    release = {"chart": "metallb", "version": "0.16.1", "values": {"controller": {"replicas": 1}}}
    (tmp_path / "helm" / "metallb.yaml").write_text(yaml.safe_dump(release))
    (tmp_path / "manifests" / "IPAddressPool-x.yaml").write_text(yaml.safe_dump(changed(POOL, "spec.extra", 1)))
    (tmp_path / "manifests" / "Namespace-x.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                                                             "metadata": {"name": "x"}}))
    found = schema.check_render_dir(tmp_path, conformance)
    assert len(found.errors) == 2, found.errors


def test_go_inline_flags_become_python_global_flags(conformance: Path) -> None:
    assert schema.python_pattern("^(?i)(Info|Debug)?$") == "(?i)^(Info|Debug)?$"
    assert schema.python_pattern("^(?i:ab)$") == "^(?i:ab)$"
    felix = {"apiVersion": "projectcalico.org/v3", "kind": "FelixConfiguration", "metadata": {"name": "default"},
             "spec": {"logSeverityScreen": "info"}}
    assert schema.validate_custom_resource(felix, conformance) == []
    assert schema.validate_custom_resource(changed(felix, "spec.logSeverityScreen", "loud"), conformance) != []
