"""Where `make engine` put the real binaries, and what it could not build here.

`engine/build.sh` writes ``${PLATFORM_ENGINE_DIR:-~/.cache/platform-engine}/<hash of
engine/pins.env>/`` with ``bin/`` and a ``status.tsv`` (name, built|unavailable|failed,
seconds, reason). Tests ask for a binary by name: missing because `make engine` has not run,
they skip (and fail under ``CI=true`` when ``go`` exists, since CI builds the engine first);
recorded ``unavailable`` (the Go module proxy does not serve that module), they skip with the
recorded reason, which is a fact of this machine's registries, not a test failure.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PINS = REPO / "engine" / "pins.env"

# Which build step provides each binary (status.tsv names the steps).
STEP_OF = {
    "pulumi": "pulumi",
    "pulumi-language-python": "language_python",
    "pulumi-resource-kubernetes": "provider_kubernetes",
    "pulumi-resource-command": "provider_command",
    "pulumi-resource-random": "provider_random",
    "kube-apiserver": "kubernetes",
    "kube-controller-manager": "kubernetes",
    "kubectl": "kubernetes",
    "kine": "kine",
    "helm": "helm",
}


def pins() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in PINS.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def engine_dir() -> Path:
    root = Path(os.environ.get("PLATFORM_ENGINE_DIR") or Path.home() / ".cache" / "platform-engine")
    return root / hashlib.sha256(PINS.read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class StepStatus:
    name: str
    result: str
    seconds: int
    reason: str


def statuses() -> dict[str, StepStatus]:
    path = engine_dir() / "status.tsv"
    if not path.exists():
        return {}
    out: dict[str, StepStatus] = {}
    for line in path.read_text().splitlines():
        name, result, seconds, reason = ([*line.split("\t"), "", "", ""])[:4]
        out[name] = StepStatus(name, result, int(seconds or 0), reason)
    return out


def must_run() -> bool:
    """CI with a Go toolchain builds the engine first, so a missing build is a failure there."""
    return os.environ.get("CI") == "true" and shutil.which("go") is not None


def binary(name: str) -> Path:
    """The path of a built binary, or skip (fail in CI) saying why it is not there."""
    path = engine_dir() / "bin" / name
    if path.exists():
        return path
    step = statuses().get(STEP_OF[name])
    if step is not None and step.result == "unavailable":
        pytest.skip(f"{name} cannot be built here: {step.reason}")
    if shutil.which("go") is None:
        pytest.skip(f"{name}: no Go toolchain on this machine, so `make engine` cannot build the real engine")
    message = f"{name} is not built in {engine_dir()}; run `make engine` (status: {step})"
    if must_run():
        pytest.fail(message)
    pytest.skip(message)
