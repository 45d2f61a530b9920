"""Shoot scenarios driven through the real dynamic-provider host over gRPC, against the fake API.

Every test goes Check -> Diff -> Create/Update/Read/Delete exactly as the engine sequences them,
with the `__provider` blob the SDK pickled when the resource was registered under mocks.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from components.gardener.client import CleuraClient, Credentials
from components.gardener.diffing import UpdatePlan
from components.gardener.operations import Location, ShootOps
from components.gardener.schema import UNKNOWN, is_unknown
from components.gardener.spec import (
    HibernationSchedule,
    KeyValue,
    Taint,
    Timeouts,
    Worker,
    create_body,
    shoot_path,
    worker_body,
)

from .conftest import PASSWORD, PROJECT, REGION, SPEED, USER, shoot_inputs, spec
from .engine import CheckFailedError, Engine, EngineError, ProviderHost
from .fake_cleura import FakeCleura

EngineFactory = Callable[[], Engine]

SHOOTS = shoot_path("public", REGION, PROJECT)
DEMO = SHOOTS + "/demo"
GPU = Worker(name="gpu", machine_type="g.8c32gb", volume_size="100Gi", minimum=0, maximum=2,
             taints=(Taint("nvidia.com/gpu", "NoSchedule", "present"),))


def workers(fake: FakeCleura) -> dict[str, dict]:  # type: ignore[type-arg]
    shoot = fake.shoot("demo")
    assert shoot is not None
    return {w["name"]: w for w in shoot["shoot_provider"]["workers"]}


def test_happy_create_reports_the_shoot_and_then_shows_no_changes(fake: FakeCleura, host: ProviderHost,
                                                                  shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    news = shoot_inputs(spec())
    log_start = host.log_offset()
    assert e.up(news).op == "create"
    assert e.state is not None
    out = e.state.outputs
    assert e.state.id == f"public/{REGION}/{PROJECT}/demo"
    assert out["last_operation"]["state"] == "Succeeded" and out["last_operation"]["progress"] == 100
    assert out["cloud_profile_name"] == "cleuracloud" and out["nodes_cidr"] == "10.250.0.0/16"
    assert out["uid"] and out["status"]["conditions"]
    assert out["reported"]["maintenance"]["time_window"]  # API default kept out of the user's fields...
    assert "maintenance" not in out
    assert e.preview(news).op == "same"  # ...so it causes no diff
    assert e.refresh() == "same" and e.preview(news).op == "same"
    assert fake.count("POST", SHOOTS + "$") == 1
    progress = host.logs()[log_start:]
    assert "Create Processing" in progress and "Create Succeeded 100%" in progress


def test_create_survives_faults_with_exactly_one_shoot(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    fake.add_fault("POST", SHOOTS + "$", "status", status=429, message="Too Many Requests", retry_after="2")
    fake.add_fault("POST", SHOOTS + "$", "status", status=503)
    fake.add_fault("POST", SHOOTS + "$", "drop_after")  # applied, but the answer is lost
    fake.add_fault("GET", DEMO + "$", "status", status=502, times=2)
    fake.add_fault("GET", DEMO + "$", "drop", times=2)
    fake.add_fault("GET", DEMO + "$", "slow", delay=0.8)
    fake.token_ttl = 40  # the token expires several times during the 120 s create
    e: Engine = shoot_engine()
    assert e.up(shoot_inputs(spec())).op == "create"
    assert fake.shoot_names() == ["demo"]
    # 429, 503, then the applied one: never a fourth (a POST the fake rejected as 403 because the
    # token expired on a loaded machine was not processed, and is re-sent after the re-login).
    assert fake.count("POST", SHOOTS + "$") - fake.count("POST", SHOOTS + "$", 403) == 3
    assert fake.count("POST", "/auth/v2/tokens") >= 2  # logged in again when the token expired
    assert e.state is not None and e.state.outputs["last_operation"]["state"] == "Succeeded"


def test_failed_create_surfaces_the_apis_description(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    fake.fail_next_create = "Quota exceeded for resources: cores"
    e: Engine = shoot_engine()
    with pytest.raises(EngineError) as err:
        e.up(shoot_inputs(spec()))
    assert "Create Failed: Quota exceeded for resources: cores" in err.value.details
    assert "adopt: true" in err.value.details
    assert e.state is None


def test_interrupted_create_is_resumed_with_adopt(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    fake.create_duration = 900
    e: Engine = shoot_engine()
    with pytest.raises(EngineError, match=r"timed out after 60s.*Create Processing.*adopt: true"):
        e.up(shoot_inputs(spec(), timeouts=Timeouts(create=60)))
    assert e.state is None and fake.shoot_names() == ["demo"]  # it exists, Pulumi does not track it
    with pytest.raises(EngineError, match=r"already exists.*adopt: true"):
        e.up(shoot_inputs(spec()))
    assert e.up(shoot_inputs(spec(), adopt=True)).op == "create"
    assert e.state is not None and e.state.outputs["last_operation"]["type"] == "Create"
    assert e.state.outputs["last_operation"]["state"] == "Succeeded"
    assert fake.count("POST", SHOOTS + "$") == 1


def test_adopt_records_the_live_shoot_and_previews_the_difference_as_an_update(
        fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    base = spec().workers[0]
    first: Engine = shoot_engine()
    first.up(shoot_inputs(spec(workers=(base, replace(base, name="extra")))))  # e.g. made in the console
    wanted = spec(workers=(replace(base, maximum=4, labels=()),))  # fewer groups, labels cleared
    with pytest.raises(EngineError, match=r"cannot adopt.*networking.type"):
        shoot_engine().up(shoot_inputs(replace(wanted, networking_type="cilium"), adopt=True))
    e: Engine = shoot_engine()
    mutations = len([r for r in fake.requests if r[0] in ("PUT", "PATCH", "DELETE") and "/auth/" not in r[1]])
    # The preview said "+ create": nothing about the live cluster may change behind it.
    assert e.up(shoot_inputs(wanted, adopt=True)).op == "create"
    assert set(workers(fake)) == {"default", "extra"}
    assert workers(fake)["default"]["maximum"] == 3 and workers(fake)["default"]["labels"]
    assert len([r for r in fake.requests if r[0] in ("PUT", "PATCH", "DELETE")
                and "/auth/" not in r[1]]) == mutations
    # The next preview shows the differences as an ordinary, reviewable update; up applies it.
    assert e.preview(shoot_inputs(wanted, adopt=True)).op == "update"
    assert e.up(shoot_inputs(wanted, adopt=True)).op == "update"
    assert set(workers(fake)) == {"default"} and workers(fake)["default"]["maximum"] == 4
    assert not workers(fake)["default"].get("labels")
    assert e.preview(shoot_inputs(wanted, adopt=True)).op == "same"


def test_adopt_observe_records_and_never_converges_or_deletes(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    shoot_engine().up(shoot_inputs(spec()))
    wanted = spec(workers=(replace(spec().workers[0], maximum=5),))
    e: Engine = shoot_engine()
    assert e.up(shoot_inputs(wanted, adopt="observe")).op == "create"
    assert e.preview(shoot_inputs(wanted, adopt="observe")).op == "same"  # differences reported, not planned
    e.up(shoot_inputs(wanted, adopt="observe"))
    assert workers(fake)["default"]["maximum"] == 3
    e.destroy()
    assert fake.shoot_names() == ["demo"]  # forgotten by the stack, still running
    with pytest.raises(CheckFailedError, match="true, false or observe"):
        e.check(shoot_inputs(spec(), adopt="yes"))


def test_in_place_worker_scale_waits_for_its_own_reconcile(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    e.up(shoot_inputs(spec()))
    fake.stale_lag, fake.reconcile_duration = 20.0, 60.0  # GET shows the old Succeeded for 20 s
    scaled = spec(workers=(replace(spec().workers[0], maximum=5, labels=()),))
    news = shoot_inputs(scaled)
    assert e.preview(news).op == "update"
    before = fake.clock.now()
    assert e.up(news).op == "update"
    assert fake.clock.now() - before >= 60  # a naive waiter returns on the stale Succeeded at once
    live = workers(fake)["default"]
    assert live["maximum"] == 5 and live["labels"] == []  # cleared explicitly (omitting keeps them)
    assert fake.count("PUT", "/workers/default") == 1 and fake.count("PATCH", DEMO + "$") == 0
    assert e.preview(news).op == "same"


def test_worker_groups_are_added_before_others_are_removed(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    e.up(shoot_inputs(spec()))
    both = shoot_inputs(spec(workers=(*spec().workers, GPU)))
    fake.add_fault("POST", DEMO + "/workers$", "drop_after")  # applied, answer lost: must not add it twice
    assert e.up(both).op == "update"
    assert fake.count("POST", DEMO + "/workers$") == 1
    assert set(workers(fake)) == {"default", "gpu"}
    assert workers(fake)["gpu"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    only_new = shoot_inputs(spec(workers=(replace(GPU, name="gpu2"),)))
    assert e.up(only_new).op == "update"
    assert set(workers(fake)) == {"gpu2"}
    calls = [(m, p) for m, p, _ in fake.requests if "/workers" in p]
    assert calls.index(("POST", DEMO + "/workers")) < calls.index(("DELETE", DEMO + "/workers/default"))
    assert e.preview(only_new).op == "same"


def test_shoot_patch_fields_and_ha_enable(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    e.up(shoot_inputs(spec(hibernation_schedules=(HibernationSchedule("0 20 * * 1-5", "0 7 * * 1-5"),))))
    assert fake.shoot("demo") and "hibernation" in fake.shoot("demo")  # type: ignore[operator]
    changed = spec(kubernetes_version="1.34.1", enable_ha_control_plane=True, allowed_cidrs=("203.0.113.0/24",),
                   hibernation_schedules=())  # () clears the schedules, None would leave them alone
    assert e.up(shoot_inputs(changed)).op == "update"
    live = fake.shoot("demo")
    assert live is not None
    assert live["kubernetes"]["version"] == "1.34.1" and "control_plane" in live
    assert live["allowed_cidrs"] == ["203.0.113.0/24"] and "hibernation" not in live
    assert fake.count("PATCH", "/ha-control-plane/enable") == 1
    assert e.preview(shoot_inputs(changed)).op == "same"
    with pytest.raises(CheckFailedError, match=r"downgrade"):
        e.check(shoot_inputs(replace(changed, kubernetes_version="1.33.4")))


def test_immutable_change_replaces_deleting_first_because_the_name_is_reused(fake: FakeCleura,
                                                                              shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    e.up(shoot_inputs(spec()))
    assert e.state is not None
    old_uid = e.state.outputs["uid"]
    news = shoot_inputs(spec(networking_type="cilium"))
    step = e.preview(news)
    assert (step.op, step.replaces, step.delete_before_replace) == ("replace", ("networking",), True)
    e.up(news)
    live = fake.shoot("demo")
    assert live is not None and live["networking"]["type"] == "cilium"
    assert fake.shoot_names() == ["demo"] and e.state.outputs["uid"] != old_uid
    methods = [m for m, p, _ in fake.requests if p in (SHOOTS, DEMO) and m in ("POST", "DELETE")]
    assert methods == ["POST", "DELETE", "POST"]


def test_out_of_band_delete_is_dropped_on_refresh_and_recreated(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    news = shoot_inputs(spec())
    e.up(news)
    fake.remove_out_of_band("demo")
    assert e.refresh() == "deleted" and e.state is None
    assert e.preview(news).op == "create"


def test_out_of_band_edit_shows_as_drift_and_is_reverted(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    news = shoot_inputs(spec())
    e.up(news)
    workers(fake)["default"]["maximum"] = 9  # someone scaled it in the console
    assert e.refresh() == "changed"
    assert e.preview(news).op == "update"
    e.up(news)
    assert workers(fake)["default"]["maximum"] == 3


def test_update_while_reconciling_waits_out_the_409(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    e.up(shoot_inputs(spec()))
    fake.reconcile_duration, fake.stale_lag = 60.0, 20.0  # the re-read after the 409 still shows Succeeded
    other = CleuraClient(fake.url, Credentials(USER, None, PASSWORD), report=lambda m: None)
    ops = ShootOps(CleuraClient(fake.url, Credentials(USER, None, PASSWORD), scale=1 / SPEED, report=lambda m: None),
                   Location("public", REGION, PROJECT))
    before = ops.get("demo")  # looked idle when we planned...
    assert before is not None
    other.request("PATCH", DEMO, {"allowed_cidrs": ["198.51.100.0/24"]})  # ...then someone else's change started
    put = worker_body(replace(spec().workers[0], maximum=6), explicit_empty=True)
    ops.apply_plan("demo", UpdatePlan(update_workers=(put,)), before, ops.deadline(600))
    assert fake.count("PUT", "/workers/default", 409) >= 1
    assert fake.count("PUT", "/workers/default", 202) == 1
    assert workers(fake)["default"]["maximum"] == 6


def test_update_waits_for_a_running_operation_before_sending(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    # If the API accepts a change while another operation runs (reference 7.4: unknown), Gardener
    # reconciles it only afterwards: the other operation's Succeeded must not end our wait.
    e: Engine = shoot_engine()
    e.up(shoot_inputs(spec()))
    fake.conflict_while_busy, fake.reconcile_duration = False, 60.0
    other = CleuraClient(fake.url, Credentials(USER, None, PASSWORD), report=lambda m: None)
    other.request("PATCH", DEMO, {"allowed_cidrs": ["198.51.100.0/24"]})
    e.up(shoot_inputs(spec(workers=(replace(spec().workers[0], maximum=6),))))
    assert workers(fake)["default"]["maximum"] == 6
    assert fake.settled("demo")  # our reconcile finished, not only the one that was running before it


def test_delete_waits_for_404_and_gone_is_success(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    e.up(shoot_inputs(spec()))
    fake.stale_lag = 20.0  # the old Create/Succeeded keeps showing after DELETE
    gets_before = fake.count("GET", DEMO + "$", 200)
    e.destroy()
    assert fake.shoot_names() == []
    assert fake.count("GET", DEMO + "$", 200) - gets_before > 2  # kept polling through the stale answers
    assert [r for r in fake.requests if "/auth/" not in r[1]][-1] == ("GET", DEMO, 404)
    again: Engine = shoot_engine()
    again.up(shoot_inputs(spec()))
    fake.remove_out_of_band("demo")
    again.destroy()  # already gone: success


def test_check_names_every_bad_property_and_tolerates_unknowns(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    bad = shoot_inputs(spec())
    bad["name"] = "no_underscores_please"
    bad["shoot_provider"]["workers"][0]["volume_size"] = "huge"
    bad["networking"] = {"type": "calico", "cilium_provider_config": {"hubble_enabled": True}}
    with pytest.raises(CheckFailedError) as err:
        e.check(bad)
    props = {p for p, _ in err.value.failures}
    assert props == {"name", "shoot_provider.workers[0].volume_size", "networking.cilium_provider_config"}
    preview = shoot_inputs(spec())
    preview["kubernetes_version"] = UNKNOWN
    preview["shoot_provider"]["workers"][0]["maximum"] = UNKNOWN
    assert is_unknown(e.check(preview)["kubernetes_version"])
    e.up(shoot_inputs(spec()))
    assert e.preview(preview).op == "update"  # diff copes with unknowns too


def test_no_credential_in_provider_blob_state_or_logs(fake: FakeCleura, host: ProviderHost,
                                                       shoot_engine: EngineFactory) -> None:
    news = shoot_inputs(spec(workers=(replace(spec().workers[0], labels=(KeyValue("a", "b"),)),)))
    blob = base64.b64decode(news["__provider"])
    assert b"components.gardener.provider" in blob and b"ShootProvider" in blob  # pickled by reference
    e: Engine = shoot_engine()
    e.up(news)
    state = json.dumps(e.state.outputs if e.state else {})
    secrets = [PASSWORD, *(t for t in fake.tokens)]
    for s in secrets:
        assert s.encode() not in blob
        assert s not in state
        assert s not in host.logs()
    assert USER.encode() not in blob


def test_a_name_taken_in_another_project_fails_before_creating(fake: FakeCleura, shoot_engine: EngineFactory) -> None:
    other = CleuraClient(fake.url, Credentials(USER, None, PASSWORD), report=lambda m: None)
    other.request("POST", shoot_path("public", REGION, "pother00000000000"), create_body(spec()), idempotent=False)
    with pytest.raises(EngineError, match=r"'demo' is taken in cloud public.*unique cloud-wide"):
        shoot_engine().up(shoot_inputs(spec()))
    assert fake.count("POST", SHOOTS + "$") == 0


def test_refresh_warns_about_a_failed_last_operation(fake: FakeCleura, host: ProviderHost,
                                                      shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    e.up(shoot_inputs(spec()))
    fake.fail_current("demo", "Quota exceeded for floating IPs")
    offset = host.log_offset()
    assert e.refresh() == "changed"
    assert e.state is not None and e.state.outputs["last_operation"]["state"] == "Failed"
    assert "last operation failed: Reconcile Failed: Quota exceeded for floating IPs" in host.logs()[offset:]


def test_destroy_after_a_failed_delete_ignores_the_stale_failure(fake: FakeCleura,
                                                                shoot_engine: EngineFactory) -> None:
    e: Engine = shoot_engine()
    e.up(shoot_inputs(spec()))
    fake.fail_next_delete = "cleanup failed: load balancer still in use"
    with pytest.raises(EngineError, match=r"Delete Failed: cleanup failed"):
        e.destroy()
    assert e.state is not None and fake.shoot_names() == ["demo"]
    fake.stale_lag = 20.0  # after the second DELETE, GET still shows the *first* Delete/Failed
    e.destroy()
    assert fake.shoot_names() == [] and fake.count("DELETE", DEMO + "$") == 2


def test_create_keeps_waiting_through_an_api_outage(fake: FakeCleura, host: ProviderHost,
                                                    shoot_engine: EngineFactory) -> None:
    # Longer than the client's own retries (6 attempts): the wait must not give up on the create.
    fake.add_fault("GET", DEMO + "$", "status", status=503, times=9, skip=2)
    offset = host.log_offset()
    e: Engine = shoot_engine()
    assert e.up(shoot_inputs(spec())).op == "create"
    assert fake.count("GET", DEMO + "$", 503) == 9
    assert e.state is not None and e.state.outputs["last_operation"]["state"] == "Succeeded"
    assert "API unavailable" in host.logs()[offset:]
