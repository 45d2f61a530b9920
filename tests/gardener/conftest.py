"""Fixtures: one fake Cleura API and one dynamic-provider host per session, reset per test.

Time is accelerated consistently on both sides: the fake runs `SPEED` fake seconds per real
second and the provider scales every duration by `1 / SPEED` (`CLEURA_POLL_SCALE`), so a
120-second create takes ~0.12 s while the provider's logic sees real-world numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from components.gardener.resources import ProjectBootstrap, Shoot, ShootClaim, ShootKubeconfig
from components.gardener.spec import KeyValue, ShootSpec, Timeouts, Worker

from .engine import Engine, ProviderHost, register
from .fake_cleura import FakeCleura

SPEED = 1000.0
USER, PASSWORD = "svc-robot", "correct-horse-battery"
REGION, PROJECT = "Sto2", "p1234567890abcdef"
SHOOT_TYPE = "pulumi-python:dynamic/cleura:Shoot"
KUBECONFIG_TYPE = "pulumi-python:dynamic/cleura:ShootKubeconfig"
BOOTSTRAP_TYPE = "pulumi-python:dynamic/cleura:ProjectBootstrap"
CLAIM_TYPE = "pulumi-python:dynamic/cleura:ShootClaim"


def host_env(url: str, **extra: str) -> dict[str, str]:
    return {"CLEURA_API_URL": url, "CLEURA_API_USERNAME": USER, "CLEURA_API_PASSWORD": PASSWORD,
            "CLEURA_POLL_SCALE": str(1 / SPEED), "CLEURA_HTTP_TIMEOUT": "0.5", **extra}


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeCleura]:
    with FakeCleura(speed=SPEED) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeCleura) -> FakeCleura:
    fake_server.reset()
    return fake_server


@pytest.fixture(scope="session")
def host(fake_server: FakeCleura) -> Iterator[ProviderHost]:
    h = ProviderHost(host_env(fake_server.url))
    yield h
    h.close()


def spec(**overrides: Any) -> ShootSpec:
    """A small valid shoot; keyword overrides replace fields."""
    base = ShootSpec(
        name="demo",
        cloud="public",
        region=REGION,
        project_id=PROJECT,
        kubernetes_version="1.33.4",
        load_balancer_provider="amphora",
        floating_pool_name="ext-net",
        workers=(Worker(name="default", machine_type="b.2c4gb", volume_size="50Gi", image_version="1877.19.0",
                        minimum=1, maximum=3, labels=(KeyValue("tier", "general"), KeyValue("app", "web"))),),
    )
    return replace(base, **overrides)


OWNER = "platform/gardener-test/cleura"


def shoot_inputs(s: ShootSpec, *, adopt: bool | str = False, timeouts: Timeouts | None = None,
                 owner: str | None = None) -> dict[str, Any]:
    """The inputs the program registers for a Shoot, with the real `__provider` blob."""
    reg = register(lambda: Shoot("shoot", s, adopt=adopt, timeouts=timeouts, owner=owner))
    return reg.one(":Shoot").inputs


def kubeconfig_inputs(name: str = "demo", expiration: int = 3600, renew: int = 0) -> dict[str, Any]:
    reg = register(lambda: ShootKubeconfig("kc", shoot_name=name, cloud="public", region=REGION, project_id=PROJECT,
                                           expiration_seconds=expiration, renew_before_expiry_seconds=renew))
    return reg.one(":ShootKubeconfig").inputs


def claim_inputs(name: str = "demo", owner: str = OWNER) -> dict[str, Any]:
    reg = register(lambda: ShootClaim("claim", name=name, cloud="public", region=REGION, project_id=PROJECT,
                                      owner=owner))
    return reg.one(":ShootClaim").inputs


def bootstrap_inputs(project: str = PROJECT) -> dict[str, Any]:
    reg = register(lambda: ProjectBootstrap("bootstrap", cloud="public", region=REGION, project_id=project))
    return reg.one(":ProjectBootstrap").inputs


@pytest.fixture
def shoot_engine(host: ProviderHost) -> Callable[[], Engine]:
    return lambda: Engine(host, SHOOT_TYPE, "shoot")
