"""Fixtures for the add-on tests: typed configs from the homelab stack, and a mock recorder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from pulumi.runtime.sync_await import _sync_await

from components.config import StackConfig, Storage, parse_stack_config
from components.offline.runner import PROJECT_ROOT, Recording, run_under_mocks, stack_config

SSH_KEY = "platform:sshPrivateKey"
CLEURA_STACKS = sorted(p for p in PROJECT_ROOT.glob("Pulumi.*.yaml") if "clusterKind: cleura" in p.read_text())
PROVIDER_TYPE = "pulumi:providers:kubernetes"


def homelab_raw(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The homelab stack's raw config plus the SSH secret, with `overrides` (None deletes a key)."""
    raw = stack_config("homelab", overrides)
    raw[SSH_KEY] = "-----BEGIN OPENSSH PRIVATE KEY-----\ntest\n-----END OPENSSH PRIVATE KEY-----\n"
    return raw


def homelab(overrides: Mapping[str, Any] | None = None) -> StackConfig:
    """The homelab stack parsed, with `overrides` applied to its raw ``platform:*`` keys."""
    return parse_stack_config(homelab_raw(overrides), frozenset({SSH_KEY}), stack="homelab")


def cleura() -> StackConfig:
    """A Gardener (clusterKind cleura) stack as the add-ons see it: Cinder storage, nothing else."""
    return StackConfig("platform", "shoot", "shoot", "cleura", homelab().charts, Storage("cinder"))


def cleura_stack() -> StackConfig:
    """The repository's own clusterKind cleura stack, parsed (skips when there is none)."""
    if not CLEURA_STACKS:
        pytest.skip("no clusterKind: cleura stack file in the repository")
    raw = yaml.safe_load(CLEURA_STACKS[0].read_text())["config"]
    return parse_stack_config(raw, frozenset(), stack=CLEURA_STACKS[0].name.split(".")[1])


def record(build: Callable[[k8s.Provider], Any], stack: str = "homelab") -> Recording:
    """Run `build(provider)` under recording mocks and return every registration.

    The provider is a Kubernetes provider registered first, as `__main__.py` does; `build`
    receives it to pass through ``ResourceOptions(providers=[provider])``.
    """
    return run_under_mocks(lambda: build(k8s.Provider("cluster-k8s", kubeconfig="{}")), stack=stack,
                           command_stdout=None)


def resolve(output: pulumi.Output[Any]) -> Any:
    """The value of `output` inside a `record` build (the mocks resolve everything)."""
    return _sync_await(output.future())


@pytest.fixture(scope="module")
def conformance(reference: Path) -> Path:
    """The reference root (skips cleanly when ../shared/reference is absent, fails in CI)."""
    return reference
