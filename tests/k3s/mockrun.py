"""Instantiate `K3sCluster` directly under mocks and record what the engine would see.

Reuses the project's recording monitor (`components.offline.runner`), so the records have
the same shape as the whole-program runs: type, name, parent, dependencies, inputs with
secret paths, and options. A fresh event loop and root stack per call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.k3s import K3sCluster, K3sClusterArgs
from components.offline.runner import (
    Recording,
    RecordingMocks,
    RecordingMonitor,
    default_command_stdout,
)


@dataclass
class ClusterRun:
    recording: Recording
    outputs: dict[str, Any]
    secret_outputs: set[str]


def record_cluster(args: K3sClusterArgs, name: str = "lab", preview: bool = False) -> ClusterRun:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    settings.ROOT.set(None)
    pulumi.runtime.set_all_config({}, [])
    monitor = RecordingMonitor(RecordingMocks(default_command_stdout))
    pulumi.runtime.set_mocks(monitor.mocks, project="platform", stack="test", preview=preview, monitor=monitor)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()

    def program() -> Any:
        cluster = K3sCluster(name, args)

        async def collect() -> None:
            for key in ("kubeconfig", "api_ready", "api_endpoint", "deployed"):
                output = getattr(cluster, key)
                outputs[key] = await output.future(with_unknowns=True)
                if await output.is_secret():
                    secret_outputs.add(key)

        return collect()

    try:
        _sync_await(run_pulumi_func(program))
    finally:
        settings.ROOT.set(None)
        loop.close()
        asyncio.set_event_loop(None)
    recording = Recording("test", monitor.recorded, {}, frozenset(), frozenset(monitor.secret_values))
    return ClusterRun(recording, outputs, secret_outputs)
