"""The project's fake Cleura API (tests/gardener/fake_cleura.py) for the reaper, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gardener.fake_cleura import FakeCleura

SPEED = 1000.0
USER, PASSWORD = "svc-robot", "correct-horse-battery"
REGION, PROJECT = "Sto2", "p1234567890abcdef"


def reaper_env(url: str, **extra: str) -> dict[str, str]:
    return {"CLEURA_API_URL": url, "CLEURA_API_USERNAME": USER, "CLEURA_API_PASSWORD": PASSWORD,
            "CLEURA_POLL_SCALE": str(1 / SPEED), "CLEURA_HTTP_TIMEOUT": "0.5", "PATH": "/usr/bin:/bin", **extra}


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeCleura]:
    with FakeCleura(speed=SPEED) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeCleura) -> FakeCleura:
    fake_server.reset()
    return fake_server
