"""Shared fixtures: the real program under mocks, the test SSH key, the shared reference data."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from components.offline.render import render_secrets, throwaway_ssh_key
from components.offline.runner import PROJECT_ROOT, Recording, run_program

TEST_SSH_KEY = throwaway_ssh_key()  # made per test session; no key material lives in the repo
REFERENCE = PROJECT_ROOT.parent / "shared" / "reference"
DEFAULT_SECRETS = {"platform:sshPrivateKey": TEST_SSH_KEY}

RunProgram = Callable[..., Recording]


def stack_files() -> list[str]:
    """Every stack defined in the repository (`Pulumi.<stack>.yaml`)."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in PROJECT_ROOT.glob("Pulumi.*.yaml"))


def secrets_for(stack: str) -> dict[str, str]:
    """The secrets a stack needs to run under mocks: the same as `make render` gives it."""
    return render_secrets(stack)


@pytest.fixture
def program() -> RunProgram:
    """Run `__main__.py` for a stack under mocks: `program("homelab", overrides, secrets)`.

    Secrets default to what the stack needs (the test SSH key for K3s stacks); pass
    `secrets={}` to run without any. Raises `ProgramFailed` if the program raised.
    """

    def run(stack: str, overrides: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None,
            **kwargs: Any) -> Recording:
        return run_program(stack, overrides, secrets_for(stack) if secrets is None else secrets, **kwargs)

    return run


@pytest.fixture(scope="session")
def reference() -> Path:
    """`../shared/reference`; skipped when absent, except in CI where it must exist."""
    if not REFERENCE.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{REFERENCE} is missing; CI must provide ../shared/reference")
        pytest.skip(f"{REFERENCE} is not present in this checkout (reference data lives beside the project)")
    return REFERENCE
