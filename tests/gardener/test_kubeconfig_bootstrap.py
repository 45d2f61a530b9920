"""ShootKubeconfig and ProjectBootstrap through the dynamic-provider host."""

from __future__ import annotations

import time

import pytest

from components.gardener.client import CleuraClient, Credentials

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


@pytest.fixture
def shoot_up(fake: FakeCleura, host: ProviderHost) -> Engine:
    e = Engine(host, "pulumi-python:dynamic/cleura:Shoot", "shoot")
    e.up(shoot_inputs(spec()))
    return e


def test_kubeconfig_takes_server_and_ca_from_v3_and_keeps_no_credential(fake: FakeCleura, host: ProviderHost,
                                                                        shoot_up: Engine) -> None:
    fake.kubeconfig_cap = 2  # whatever the API grants: nothing stored expires
    k = Engine(host, KUBECONFIG_TYPE, "kc")
    news = kubeconfig_inputs(expiration=3600, renew=1)
    assert k.up(news).op == "create"
    assert k.state is not None
    outs = k.state.outputs
    assert outs["server"] == "https://api.demo.example.invalid" and outs["certificate_authority_data"]
    assert outs["credential"] == "exec" and "kc-" not in outs["kubeconfig"]
    assert fake.bodies[-2][:2] == ("POST", "/gardener/v3/public/shoots/Sto2/p1234567890abcdef/demo/admin-kubeconfig")
    time.sleep(0.05)
    assert k.preview(news).op == "same"
    assert fake.count("POST", "admin-kubeconfig") == 1


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
