"""Validation, typed spec and API bodies: pure functions, no mocks, no HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime import rpc

from components.gardener.schema import UNKNOWN, parse_duration, render_path
from components.gardener.spec import (
    SHOOT_INPUT_FIELDS,
    create_body,
    create_body_from_inputs,
    cron_rule,
    parse_cleura,
    shoot_spec_from_inputs,
    time_window_rule,
    validate_kubeconfig_inputs,
    validate_shoot_inputs,
    worker_body,
)
from components.problems import Problems

from .conftest import spec

ROOT = Path(__file__).resolve().parents[2]


def inputs(**changes: Any) -> dict[str, Any]:
    d = spec().to_inputs()
    d.update(changes)
    return d


def issues_of(d: dict[str, Any]) -> dict[str, str]:
    return {render_path(i.path): i.message for i in validate_shoot_inputs(d)[1]}


def with_worker(**changes: Any) -> dict[str, Any]:
    d = inputs()
    d["shoot_provider"]["workers"][0].update(changes)
    return d


def test_unknown_sentinel_is_the_sdks_in_both_forms() -> None:
    from pulumi.output import Unknown

    from components.gardener.schema import is_unknown

    assert rpc.UNKNOWN == UNKNOWN
    assert is_unknown(UNKNOWN) and is_unknown(Unknown()) and not is_unknown("x") and not is_unknown(None)


def test_valid_spec_round_trips_through_inputs() -> None:
    s = spec()
    d, issues = validate_shoot_inputs(s.to_inputs())
    assert issues == []
    assert shoot_spec_from_inputs(d) == s


@pytest.mark.parametrize(("name", "ok"), [
    ("a", True), ("demo-1", True), ("A1-b2", True), ("x" * 15, True),
    ("", False), ("x" * 16, False), ("demo_1", False), ("démo", False), ("a.b", False),
    ("ab\n", False),  # `$` with re.match would let a trailing newline through (into URLs)
])
def test_shoot_name_is_1_to_15_of_letters_digits_hyphen(name: str, ok: bool) -> None:
    found = issues_of(inputs(name=name))
    assert ("name" not in found) is ok, found


def test_every_problem_is_reported_with_its_property_path() -> None:
    d = inputs(name="bad_name!", kubernetes_version="v1.33",
               maintenance={"time_window": {"begin": "2200", "end": "060000+0000"}},
               hibernation_schedules=[{"start": "0 25 * * *", "end": "0 8 * * 1-5"}],
               networking={"type": "flannel"})
    d["shoot_provider"]["workers"].append({"name": "gpu pool", "machine": {"type": "g.1"}, "volume_size": "lots"})
    found = issues_of(d)
    assert set(found) >= {
        "name", "kubernetes_version", "maintenance.time_window.begin", "hibernation_schedules[0].start",
        "networking.type", "shoot_provider.workers[1].name", "shoot_provider.workers[1].volume_size",
    }
    assert "flannel" in found["networking.type"] and "calico" in found["networking.type"]


def test_cilium_options_need_cilium() -> None:
    found = issues_of(inputs(networking={"type": "calico", "cilium_provider_config": {"hubble_enabled": True}}))
    assert "cilium" in found["networking.cilium_provider_config"]
    assert "networking.cilium_provider_config" in issues_of(inputs(networking={
        "cilium_provider_config": {"tunnel": "vxlan"}}))
    assert issues_of(inputs(networking={"type": "cilium", "cilium_provider_config": {"tunnel": "geneve"}})) == {}
    assert "networking.cilium_provider_config.tunnel" in issues_of(inputs(networking={
        "type": "cilium", "cilium_provider_config": {"tunnel": "ipip"}}))


@pytest.mark.parametrize(("value", "ok"), [
    ("0 20 * * 1-5", True), ("*/15 8-18 * * MON-FRI", True), ("0 0 1 JAN *", True), ("@daily", True),
    ("@every 1h30m", True), ("0 0 * * * *", True),
    ("0 24 * * *", False), ("60 0 * * *", False), ("0 0 * * 8", False), ("every day", False), ("@sometimes", False),
    ("0 8-6 * * *", False),
])
def test_cron(value: str, ok: bool) -> None:
    assert (cron_rule(value) is None) is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("220000+0000", True), ("000000+0100", True), ("235959+1400", True),
    ("220000", False), ("22:00:00+0000", False), ("250000+0000", False), ("226000+0000", False),
    ("220000-0100", False),
])
def test_maintenance_time_window_format(value: str, ok: bool) -> None:
    assert (time_window_rule(value) is None) is ok


def test_maintenance_window_must_not_be_empty() -> None:
    assert "maintenance.time_window.end" in issues_of(
        inputs(maintenance={"time_window": {"begin": "020000+0000", "end": "020000+0000"}}))


def test_worker_rules() -> None:
    assert "shoot_provider.workers[0].minimum" in issues_of(with_worker(minimum=5, maximum=2))
    assert "shoot_provider.workers[0].maximum" in issues_of(with_worker(maximum=1, zones=["az1", "az2"]))
    assert "shoot_provider.workers[0].volume_size" in issues_of(with_worker(volume_size="50"))
    assert "shoot_provider.workers[0].name" in issues_of(with_worker(name="x" * 16))
    assert "shoot_provider.workers[0].taints[0].effect" in issues_of(
        with_worker(taints=[{"key": "k", "effect": "no_schedule"}]))
    assert "shoot_provider.workers[0].labels[1].key" in issues_of(
        with_worker(labels=[{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]))
    d = inputs()
    d["shoot_provider"]["workers"].append(dict(d["shoot_provider"]["workers"][0]))
    assert "duplicate" in issues_of(d)["shoot_provider.workers[1].name"]
    d["shoot_provider"]["workers"] = []
    assert "at least 1" in issues_of(d)["shoot_provider.workers"]


def test_null_list_items_are_errors_not_silently_dropped() -> None:
    d = inputs()
    d["shoot_provider"]["workers"] = [None]
    assert "null" in issues_of(d)["shoot_provider.workers[0]"]
    assert "null" in issues_of(inputs(allowed_cidrs=["198.51.100.0/24", None]))["allowed_cidrs[1]"]


@pytest.mark.parametrize("field", ["region", "project_id", "kubernetes_version"])
def test_values_that_reach_urls_or_bodies_reject_a_trailing_newline(field: str) -> None:
    valid = inputs()[field]
    assert field in issues_of(inputs(**{field: valid + "\n"}))


def test_network_ids_and_cidrs() -> None:
    d = inputs(allowed_cidrs=["10.0.0.0/8", "10.0.0.0/8", "not-a-cidr", "192.0.2.1"])
    d["shoot_provider"]["infrastructure_config"].update(network_id="nope", workers_network_cidr="10.250.0.1/16")
    found = issues_of(d)
    assert {"allowed_cidrs[1]", "allowed_cidrs[2]", "allowed_cidrs[3]",
            "shoot_provider.infrastructure_config.network_id",
            "shoot_provider.infrastructure_config.workers_network_cidr"} <= set(found)


def test_numbers_arrive_as_floats_over_grpc_and_are_ints_again() -> None:
    d, issues = validate_shoot_inputs(with_worker(minimum=1.0, maximum=3.0))
    assert issues == []
    w = d["shoot_provider"]["workers"][0]
    assert (w["minimum"], w["maximum"]) == (1, 3) and isinstance(w["minimum"], int)
    assert "shoot_provider.workers[0].maximum" in issues_of(with_worker(maximum=2.5))
    assert "enable_ha_control_plane" in issues_of(inputs(enable_ha_control_plane="yes"))


def test_unknown_keys_are_rejected_with_a_suggestion() -> None:
    d = inputs(kubernetes_verison="1.33.4")
    d["shoot_provider"]["infrastructure_config"]["floating_pool"] = "x"
    found = issues_of(d)
    assert "did you mean 'kubernetes_version'" in found["kubernetes_verison"]
    assert "floating_pool_name" in found["shoot_provider.infrastructure_config.floating_pool"]


def test_unknown_values_during_preview_are_tolerated() -> None:
    d = inputs(name=UNKNOWN, kubernetes_version=UNKNOWN, allowed_cidrs=UNKNOWN,
               networking={"type": UNKNOWN, "cilium_provider_config": {"hubble_enabled": True}})
    d["shoot_provider"]["workers"][0].update(minimum=UNKNOWN, zones=[UNKNOWN])
    out, issues = validate_shoot_inputs(d)
    assert issues == []
    assert out["name"] == UNKNOWN
    # ...but a known wrong value next to unknowns is still caught
    d["shoot_provider"]["workers"][0]["maximum"] = -1
    assert "shoot_provider.workers[0].maximum" in issues_of(d)


def test_timeouts_accept_durations() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("45m") == 2700
    assert parse_duration(90) == 90
    assert parse_duration("soon") is None and parse_duration(0) is None
    d, issues = validate_shoot_inputs(inputs(timeouts={"create": "90m", "delete": 600}))
    assert issues == [] and d["timeouts"] == {"create": 5400, "delete": 600}
    assert "timeouts.update" in issues_of(inputs(timeouts={"update": "forever"}))


def test_kubeconfig_lifetime_rules() -> None:
    base = {"region": "Sto2", "project_id": "p1", "shoot_name": "demo"}
    assert validate_kubeconfig_inputs({**base, "expiration_seconds": 3600, "renew_before_expiry_seconds": 600})[1] == []
    bad = {render_path(i.path) for i in validate_kubeconfig_inputs(
        {**base, "expiration_seconds": 300, "renew_before_expiry_seconds": 400})[1]}
    assert bad == {"expiration_seconds", "renew_before_expiry_seconds"}


# --- bodies ------------------------------------------------------------------------------------------


def test_create_body_is_flat_snake_case_with_integer_numbers() -> None:
    body = create_body(spec())
    assert set(body) == {"name", "kubernetes_version", "shoot_provider"}  # nothing the user did not set
    w = body["shoot_provider"]["workers"][0]
    assert w == {"name": "default", "machine": {"type": "b.2c4gb", "image_version": "1877.19.0"}, "minimum": 1,
                 "maximum": 3, "volume_size": "50Gi",
                 "labels": [{"key": "tier", "value": "general"}, {"key": "app", "value": "web"}]}
    assert "1.0" not in json.dumps(body)


def test_create_body_carries_optional_blocks_only_when_set() -> None:
    s = shoot_spec_from_inputs(inputs(
        enable_ha_control_plane=True, allowed_cidrs=[], hibernation_schedules=[],
        networking={"type": "cilium", "cilium_provider_config": {"hubble_enabled": True}},
        maintenance={"auto_update": {"kubernetes_version": False}}))
    body = create_body(s)
    assert body["enable_ha_control_plane"] is True
    assert body["allowed_cidrs"] == []
    assert "hibernation_schedules" not in body  # the create model wants it omitted when empty
    assert body["networking"] == {"type": "cilium", "cilium_provider_config": {"hubble_enabled": True}}
    assert body["maintenance"] == {"auto_update": {"kubernetes_version": False}}
    assert "image_name" not in json.dumps(body)


def test_worker_put_body_clears_labels_taints_annotations_explicitly() -> None:
    w = shoot_spec_from_inputs(with_worker(labels=None)).workers[0]
    assert worker_body(w, explicit_empty=True)["labels"] == []
    assert worker_body(w, explicit_empty=True)["taints"] == []
    assert "labels" not in worker_body(w, explicit_empty=False)


def test_create_body_from_recorded_inputs_ignores_provider_blob_and_outputs() -> None:
    recorded = {**inputs(), "__provider": "[secret]", "uid": None, "adopt": False, "timeouts": {"create": 60}}
    assert create_body_from_inputs(recorded) == create_body(spec())
    with pytest.raises(ValueError, match=r"name"):
        create_body_from_inputs({**recorded, "name": "x" * 20})


# --- stack config ----------------------------------------------------------------------------------


def _camel(d: Any) -> Any:
    from components.gardener.schema import camel

    if isinstance(d, dict):
        return {camel(k): _camel(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_camel(v) for v in d]
    return d


def test_parse_cleura_reads_camel_case_and_shares_the_provider_rules() -> None:
    raw = _camel({**inputs(), "kubeconfig_expiration_seconds": 7200, "renew_before_expiry_seconds": 600,
                  "adopt": True, "timeouts": {"create": "30m"}})
    p = Problems()
    cfg = parse_cleura(raw, "platform:cleura", p)
    assert p.errors == [] and cfg is not None
    assert cfg.shoot == spec()
    assert (cfg.adopt, cfg.timeouts.create, cfg.timeouts.update) == (True, 1800, 3600)
    assert (cfg.kubeconfig_expiration_seconds, cfg.renew_before_expiry_seconds, cfg.bootstrap_project) == (7200, 600,
                                                                                                           True)


def test_parse_cleura_reports_all_problems_with_stack_key_paths() -> None:
    raw = _camel(inputs())
    raw["name"] = "this-name-is-too-long"
    raw["shootProvider"]["workers"].append({"name": "b@d", "machine": {"type": "x"}, "volumeSize": "1Gi"})
    raw["shootProvider"]["infrastructureConfig"]["floatingPoolNmae"] = "x"
    raw["kubeconfigExpirationSeconds"] = 60
    raw["renewBeforeExpirySeconds"] = 0
    p = Problems()
    assert parse_cleura(raw, "platform:cleura", p) is None
    text = "\n".join(p.errors)
    assert "platform:cleura.name:" in text
    assert "platform:cleura.shootProvider.workers[1].name:" in text
    assert "platform:cleura.shootProvider.infrastructureConfig.floatingPoolNmae: unknown key; did you mean " \
           "'floatingPoolName'?" in text
    assert "platform:cleura.kubeconfigExpirationSeconds:" in text
    assert len(p.errors) == 4


def test_parse_cleura_warns_about_non_dns_names() -> None:
    p = Problems()
    raw = _camel(inputs(name="Demo"))
    assert parse_cleura(raw, "platform:cleura", p) is not None
    assert any("lowercase" in w for w in p.warnings)
    assert parse_cleura(None, "platform:cleura", Problems()) is None


def test_the_cleura_stack_file_is_valid_and_renders_a_create_body() -> None:
    data = yaml.safe_load((ROOT / "Pulumi.cleura.yaml").read_text())["config"]
    p = Problems()
    cfg = parse_cleura(data["platform:cleura"], "platform:cleura", p)
    assert p.errors == [] and cfg is not None
    body = create_body(cfg.shoot)
    assert body["networking"]["type"] == "cilium"
    assert set(SHOOT_INPUT_FIELDS) >= set(cfg.shoot.to_inputs())
    text = (ROOT / "Pulumi.cleura.yaml").read_text().lower()
    for word in ("password:", "token:", "secure:"):
        assert word not in text
