"""ShootKubeconfig and ProjectBootstrap through the dynamic-provider host, plus the rotation math."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from components.gardener.client import CleuraClient, Credentials
from components.gardener.provider import ShootKubeconfigProvider, parse_time, rotation_due

from .conftest import (
    BOOTSTRAP_TYPE,
    KUBECONFIG_TYPE,
    PASSWORD,
    USER,
    bootstrap_inputs,
    kubeconfig_inputs,
    shoot_inputs,
    spec,
)
from .engine import Engine, EngineError, ProviderHost
from .fake_cleura import FakeCleura
from .test_lifecycle import DEMO

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def stamp(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def test_rotation_uses_the_granted_expiry_not_the_requested_lifetime() -> None:
    state = {"expires_at": stamp(NOW + timedelta(seconds=600)), "expiration_seconds": 86400}
    assert rotation_due(state, 300, NOW)[0] is False
    assert rotation_due(state, 600, NOW)[0] is True
    assert rotation_due(state, 0, NOW + timedelta(seconds=601))[0] is True


def test_rotation_falls_back_to_issue_time_and_treats_garbage_as_due() -> None:
    legacy = {"issued_at": stamp(NOW), "expiration_seconds": 3600}
    assert rotation_due(legacy, 0, NOW + timedelta(seconds=3599))[0] is False
    assert rotation_due(legacy, 0, NOW + timedelta(seconds=3601))[0] is True
    assert rotation_due({"expires_at": "yesterday"}, 0, NOW)[0] is True
    assert parse_time("2026-03-01T12:00:00Z") == NOW and parse_time("2026-03-01T12:00:00") == NOW


def test_kubeconfig_diff_replaces_for_a_new_shoot_or_lifetime() -> None:
    olds = {"cloud": "public", "region": "Sto2", "project_id": "p", "shoot_name": "demo", "shoot_uid": "u1",
            "expiration_seconds": 3600.0, "renew_before_expiry_seconds": 0,
            "expires_at": stamp(datetime.now(UTC) + timedelta(hours=1))}
    p = ShootKubeconfigProvider()
    assert p.diff("id", olds, {**olds, "expiration_seconds": 3600}).changes is False
    assert p.diff("id", olds, {**olds, "shoot_uid": "u2"}).replaces == ["shoot_uid"]  # shoot was recreated
    assert p.diff("id", olds, {**olds, "expiration_seconds": 7200}).replaces == ["expiration_seconds"]
    in_place = p.diff("id", olds, {**olds, "renew_before_expiry_seconds": 60})
    assert in_place.changes is True and in_place.replaces == []


@pytest.fixture
def shoot_up(fake: FakeCleura, host: ProviderHost) -> Engine:
    e = Engine(host, "pulumi-python:dynamic/cleura:Shoot", "shoot")
    e.up(shoot_inputs(spec()))
    return e


def test_kubeconfig_is_minted_from_v3_and_rotated_when_due_and_not_before(fake: FakeCleura, host: ProviderHost,
                                                                          shoot_up: Engine) -> None:
    fake.kubeconfig_cap = 2  # the API grants less than asked
    k = Engine(host, KUBECONFIG_TYPE, "kc")
    news = kubeconfig_inputs(expiration=3600, renew=1)
    assert k.up(news).op == "create"
    assert k.state is not None
    first = k.state.outputs
    assert first["kubeconfig"].startswith("apiVersion: v1") and first["granted_seconds"] <= 2
    assert fake.bodies[-1] == ("POST", "/gardener/v3/public/shoots/Sto2/p1234567890abcdef/demo/admin-kubeconfig",
                               {"expiration_seconds": 3600})
    assert k.preview(news).op == "same"  # not due yet: ~2 s left, renew 1 s before
    expires = parse_time(first["expires_at"])
    assert expires is not None
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds() - 1 + 0.05))
    step = k.preview(news)
    assert (step.op, step.replaces) == ("replace", ("expires_at",))
    k.up(news)
    assert k.state.outputs["kubeconfig"] != first["kubeconfig"]
    assert fake.count("POST", "admin-kubeconfig") == 2


def test_kubeconfig_waits_while_the_shoot_reconciles(fake: FakeCleura, host: ProviderHost, shoot_up: Engine) -> None:
    # 1500 fake seconds = 1.5 s real: still reconciling when the POST arrives, even on a loaded CI machine.
    fake.reconcile_duration = 1500
    CleuraClient(fake.url, Credentials(USER, None, PASSWORD), report=lambda m: None).request(
        "PATCH", DEMO, {"allowed_cidrs": ["198.51.100.0/24"]})
    k = Engine(host, KUBECONFIG_TYPE, "kc")
    k.up(kubeconfig_inputs())
    assert fake.count("POST", "admin-kubeconfig", 409) >= 1 and fake.count("POST", "admin-kubeconfig", 201) == 1


def test_kubeconfig_refresh_forgets_it_when_the_shoot_is_gone(fake: FakeCleura, host: ProviderHost,
                                                              shoot_up: Engine) -> None:
    k = Engine(host, KUBECONFIG_TYPE, "kc")
    k.up(kubeconfig_inputs())
    assert k.refresh() == "same"
    fake.remove_out_of_band("demo")
    assert k.refresh() == "deleted"


def test_kubeconfig_for_a_missing_shoot_says_so(fake: FakeCleura, host: ProviderHost) -> None:
    with pytest.raises(EngineError, match=r"not found in project.*wrong shoot name or project"):
        Engine(host, KUBECONFIG_TYPE, "kc").up(kubeconfig_inputs(name="nope"))


def test_bootstrap_is_safe_to_repeat_and_explains_unknown_projects(fake: FakeCleura, host: ProviderHost) -> None:
    one, two = Engine(host, BOOTSTRAP_TYPE, "b1"), Engine(host, BOOTSTRAP_TYPE, "b2")
    assert one.up(bootstrap_inputs()).op == "create" and two.up(bootstrap_inputs()).op == "create"
    assert fake.bootstrap_calls == 2
    assert one.preview(bootstrap_inputs()).op == "same"
    one.destroy()  # forgetting only: nothing to undo
    assert fake.bootstrap_calls == 2
    with pytest.raises(EngineError, match=r"500.*unknown project id: check project_id"):
        Engine(host, BOOTSTRAP_TYPE, "b3").up(bootstrap_inputs(project="pnotmine000000000"))
