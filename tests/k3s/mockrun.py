"""Instantiate `K3sCluster` directly under mocks and record what the engine would see.

Reuses the project's recording monitor (`components.offline.runner`), so the records have
the same shape as the whole-program runs: type, name, parent, dependencies, inputs with
secret paths, and options. A fresh event loop and root stack per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.k3s import K3sCluster, K3sClusterArgs
from components.offline.runner import Recording, run_under_mocks


@dataclass
class ClusterRun:
    recording: Recording
    outputs: dict[str, Any]
    secret_outputs: set[str]


def record_cluster(args: K3sClusterArgs, name: str = "lab", preview: bool = False) -> ClusterRun:
    def build() -> None:
        cluster = K3sCluster(name, args)
        for key in ("kubeconfig", "api_ready", "api_endpoint", "deployed", "token"):
            pulumi.export(key, getattr(cluster, key))

    recording = run_under_mocks(build, preview=preview)
    return ClusterRun(recording, dict(recording.stack_outputs), set(recording.stack_output_secrets))
