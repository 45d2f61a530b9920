"""Diff (preview) and update planning (apply), and the state mapping they rely on. Pure."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.gardener.diffing import ShootDiff, diff_shoot, immutable_conflicts, plan_update
from components.gardener.provider import shoot_outputs
from components.gardener.schema import UNKNOWN
from components.gardener.spec import create_body, shoot_spec_from_inputs, validate_shoot_inputs
from components.gardener.state import merge_observed, reported_inputs, version_satisfied

from .conftest import spec
from .fake_cleura import shoot_from_create


def checked(**changes: Any) -> dict[str, Any]:
    d = spec().to_inputs()
    d.update(changes)
    out, issues = validate_shoot_inputs(d)
    assert issues == []
    return out


def api_shoot(user: dict[str, Any]) -> dict[str, Any]:
    """What the API reports after creating `user` (defaults filled, lists normalised)."""
    shoot = shoot_from_create(create_body(shoot_spec_from_inputs(user)), "Sto2", "p1")
    shoot["last_operation"] = {"type": "Create", "state": "Succeeded", "progress": 100, "description": "",
                               "last_update_time": "2026-01-01T00:10:00Z"}
    return shoot


def state_for(user: dict[str, Any], shoot: dict[str, Any] | None = None) -> dict[str, Any]:
    return shoot_outputs(user, shoot or api_shoot(user))


def worker(d: dict[str, Any], i: int = 0) -> dict[str, Any]:
    w: dict[str, Any] = d["shoot_provider"]["workers"][i]
    return w


def test_no_spurious_diff_from_api_defaults_and_normalised_order() -> None:
    user = checked()
    olds = state_for(user)
    # The API filled in zones, max_surge, a maintenance window, network ids, and sorted the labels.
    assert olds["reported"]["maintenance"]["time_window"]
    assert [kv["key"] for kv in olds["reported"]["shoot_provider"]["workers"][0]["labels"]] == ["app", "tier"]
    assert diff_shoot(olds, user) == ShootDiff()
    assert plan_update(user, reported_inputs(api_shoot(user))).empty


@pytest.mark.parametrize(("change", "replaced"), [
    (lambda d: d.update(name="other"), "name"),
    (lambda d: d.update(project_id="p999"), "project_id"),
    (lambda d: d.update(region="Kna1"), "region"),
    (lambda d: d.update(networking={"type": "cilium"}), "networking.type"),
    (lambda d: d["shoot_provider"].update(load_balancer_provider="ovn"), "shoot_provider.load_balancer_provider"),
    (lambda d: d["shoot_provider"]["infrastructure_config"].update(floating_pool_name="other-net"),
     "shoot_provider.infrastructure_config.floating_pool_name"),
    (lambda d: d["shoot_provider"]["infrastructure_config"].update(network_id="0b6f6c38-8cbe-4a62-9c0c-6a1c1b9f1111"),
     "shoot_provider.infrastructure_config.network_id"),
])
def test_immutable_changes_replace(change: Any, replaced: str) -> None:
    user = checked()
    news = copy.deepcopy(user)
    change(news)
    result = diff_shoot(state_for(user), news)
    assert result.replaces == (replaced,)
    assert result.delete_before_replace is (replaced != "name")  # the same name must be free first
    assert ShootDiff.top_level(result.replaces) == [replaced.split(".")[0]]


def test_ha_can_be_enabled_in_place_but_disabling_replaces() -> None:
    off, on = checked(), checked(enable_ha_control_plane=True)
    up = diff_shoot(state_for(off), on)
    assert up.changes == ("enable_ha_control_plane",) and up.replaces == ()
    down = diff_shoot(state_for(on), off)
    assert down.replaces == ("enable_ha_control_plane",) and down.delete_before_replace
    assert plan_update(on, reported_inputs(api_shoot(off))).enable_ha
    assert plan_update(on, reported_inputs(api_shoot(off))).patch == {}  # HA goes through its own endpoint


def test_network_values_assigned_by_the_api_are_pinned_not_replaced() -> None:
    user = checked()
    olds = state_for(user)
    assigned = olds["reported"]["shoot_provider"]["infrastructure_config"]
    news = copy.deepcopy(user)
    news["shoot_provider"]["infrastructure_config"].update(network_id=assigned["network_id"],
                                                           workers_network_cidr=assigned["workers_network_cidr"])
    assert diff_shoot(olds, news).replaces == ()  # writing down what the API chose is not a change


def test_in_place_changes() -> None:
    user = checked()
    olds = state_for(user)
    news = checked(kubernetes_version="1.34.1", allowed_cidrs=["203.0.113.0/24"],
                   hibernation_schedules=[{"start": "0 20 * * 1-5", "end": "0 7 * * 1-5"}],
                   maintenance={"time_window": {"begin": "010000+0000", "end": "020000+0000"}})
    worker(news)["maximum"] = 5
    result = diff_shoot(olds, news)
    assert result.replaces == ()
    assert set(result.changes) == {"kubernetes_version", "allowed_cidrs", "hibernation_schedules",
                                   "maintenance.time_window.begin", "maintenance.time_window.end",
                                   "shoot_provider.workers[default].maximum"}
    plan = plan_update(news, reported_inputs(api_shoot(user)))
    assert plan.patch == {
        "kubernetes": "1.34.1",  # PATCH spells the version `kubernetes`
        "allowed_cidrs": ["203.0.113.0/24"],
        "hibernation_schedules": [{"start": "0 20 * * 1-5", "end": "0 7 * * 1-5"}],
        "maintenance": {"time_window": {"begin": "010000+0000", "end": "020000+0000"}},
    }
    assert [w["name"] for w in plan.update_workers] == ["default"]


def test_clearing_hibernation_sends_an_empty_list() -> None:
    user = checked(hibernation_schedules=[{"start": "0 20 * * *", "end": "0 7 * * *"}])
    plan = plan_update(checked(hibernation_schedules=[]), reported_inputs(api_shoot(user)))
    assert plan.patch == {"hibernation_schedules": []}
    # ...while leaving the key out means "not managed here"
    assert plan_update(checked(), reported_inputs(api_shoot(user))).empty


def test_workers_are_reconciled_by_name_and_new_groups_come_first() -> None:
    user = checked()
    news = copy.deepcopy(user)
    news["shoot_provider"]["workers"] = [
        {"name": "gpu", "machine": {"type": "g.8c32gb"}, "volume_size": "100Gi", "maximum": 2, "minimum": 0,
         "taints": [{"key": "gpu", "effect": "NoSchedule"}]},
    ]
    result = diff_shoot(state_for(user), news)
    assert set(result.changes) == {"shoot_provider.workers[gpu] (added)", "shoot_provider.workers[default] (removed)"}
    plan = plan_update(news, reported_inputs(api_shoot(user)))
    assert [w["name"] for w in plan.create_workers] == ["gpu"]
    assert plan.delete_workers == ("default",)
    assert plan.describe() == ["add worker group gpu", "remove worker group default"]


def test_reordering_workers_or_labels_is_not_a_change() -> None:
    user = checked()
    worker(user)["zones"] = ["b", "a"]
    news = copy.deepcopy(user)
    worker(news)["labels"].reverse()
    worker(news)["zones"] = ["a", "b"]
    assert diff_shoot(state_for(user), news) == ShootDiff()


def test_worker_put_clears_labels_and_pins_unset_fields() -> None:
    user = checked()
    news = copy.deepcopy(user)
    del worker(news)["labels"]
    del worker(news)["minimum"]
    assert diff_shoot(state_for(user), news).changes == ("shoot_provider.workers[default].labels",)
    (put,) = plan_update(news, reported_inputs(api_shoot(user))).update_workers
    assert put["labels"] == [] and put["annotations"] == [] and put["taints"] == []
    assert put["minimum"] == 1 and put["zones"] == ["nova"] and put["max_surge"] == 1  # pinned from the live group


def test_auto_updated_versions_are_not_downgraded() -> None:
    assert version_satisfied("1.33.2", "1.33.4")
    assert version_satisfied("1.33", "1.33.4")
    assert not version_satisfied("1.34.1", "1.33.4")
    assert not version_satisfied("1.33.10", "1.33.9")
    user = checked(kubernetes_version="1.33.4")
    shoot = api_shoot(user)
    shoot["kubernetes"]["version"] = "1.33.5"  # maintenance bumped the patch version
    worker_live = shoot["shoot_provider"]["workers"][0]
    worker_live["machine"]["image"]["version"] = "1877.20.0"
    olds = state_for(user, shoot)
    assert olds["kubernetes_version"] == "1.33.4"  # no drift recorded
    assert diff_shoot(olds, user) == ShootDiff()
    assert plan_update(user, reported_inputs(shoot)).empty


def test_out_of_band_changes_show_up_as_drift_in_user_fields_only() -> None:
    user = checked()
    shoot = api_shoot(user)
    shoot["shoot_provider"]["workers"][0]["maximum"] = 9
    shoot["shoot_provider"]["workers"][0]["labels"].append({"key": "extra", "value": "1"})
    shoot["maintenance"]["time_window"] = {"begin": "100000+0000", "end": "110000+0000"}  # not user-managed
    shoot["shoot_provider"]["workers"].append(shoot["shoot_provider"]["workers"][0] | {"name": "rogue"})
    olds = merge_observed(user, reported_inputs(shoot))
    assert worker(olds)["maximum"] == 9
    assert "maintenance" not in olds
    result = diff_shoot({**olds, "reported": reported_inputs(shoot)}, user)
    assert set(result.changes) == {"shoot_provider.workers[default].maximum",
                                   "shoot_provider.workers[default].labels",
                                   "shoot_provider.workers[rogue] (removed)"}


def test_unknowns_in_preview_count_as_possible_changes() -> None:
    user = checked()
    news = copy.deepcopy(user)
    news["kubernetes_version"] = UNKNOWN
    news["networking"] = {"type": UNKNOWN}
    result = diff_shoot(state_for(user), news)
    assert "kubernetes_version" in result.changes and "networking.type" in result.replaces


def test_adopt_refuses_replace_only_differences() -> None:
    live = reported_inputs(api_shoot(checked()))
    assert immutable_conflicts(checked(), live) == []
    found = immutable_conflicts(checked(networking={"type": "cilium"}), live)
    assert len(found) == 1 and "networking.type" in found[0]


def test_changing_only_timeouts_or_adopt_touches_no_api() -> None:
    user = checked()
    news = checked(timeouts={"create": 7200}, adopt=True)
    result = diff_shoot(state_for(user), news)
    assert set(result.changes) == {"timeouts", "adopt"} and result.replaces == ()
    assert plan_update(news, reported_inputs(api_shoot(user))).empty


def test_unset_cloud_comes_from_the_environment_once_then_sticks(monkeypatch: pytest.MonkeyPatch) -> None:
    from components.gardener.provider import ShootProvider

    news = spec(cloud=None).to_inputs()
    monkeypatch.setenv("CLEURA_CLOUD", "compliant")
    assert ShootProvider().check({}, news).inputs["cloud"] == "compliant"
    # a later run with another CLEURA_CLOUD must not retarget (replace) the existing shoot
    monkeypatch.setenv("CLEURA_CLOUD", "public")
    assert ShootProvider().check({**news, "cloud": "compliant"}, news).inputs["cloud"] == "compliant"
    monkeypatch.delenv("CLEURA_CLOUD")
    assert ShootProvider().check({}, news).inputs["cloud"] == "public"
