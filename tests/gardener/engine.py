"""Drive dynamic providers the way the Pulumi engine does, without the Pulumi CLI.

Two halves:

* `register(program)` runs a tiny Pulumi program under `pulumi.runtime.set_mocks` and returns
  what was registered, including the real `__provider` blob the SDK pickled (secrets unwrapped).
* `ProviderHost` starts `python -u -m pulumi.dynamic` (the process the engine would start, with
  the project directory as working directory), reads its port, and speaks gRPC to it;
  `Engine` then sequences Check -> Diff -> Create/Update/Replace, Read and Delete over one
  resource's state exactly as `pulumi preview/up/refresh/destroy` would (secrets arrive as
  plaintext because the dynamic host answers `acceptSecrets: false`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pulumi
from google.protobuf import struct_pb2
from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_KEY = "__provider"


# --- registration under mocks --------------------------------------------------------------------


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    parent: str | None
    dependencies: tuple[str, ...]
    inputs: dict[str, Any]
    secret_inputs: frozenset[str]
    delete_before_replace: bool
    additional_secret_outputs: tuple[str, ...]


class _Mocks(pulumi_mocks.Mocks):  # type: ignore[misc]
    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = {k: rpc.unwrap_rpc_secret(v) for k, v in args.inputs.items()}
        if args.typ.endswith(":ShootKubeconfig"):
            state.setdefault("kubeconfig", "apiVersion: v1\nkind: Config\n")
        if args.typ.endswith(":Shoot"):
            state.setdefault("uid", "mock-uid")
        return f"{args.name}-id", state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class _Monitor(pulumi_mocks.MockMonitor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(_Mocks())
        self.recorded: list[Registered] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = rpc.deserialize_properties(request.object, keep_unknowns=True)
            secret = frozenset(k for k, v in raw.items() if rpc.is_rpc_secret(v))
            self.recorded.append(Registered(
                type=request.type, name=request.name, urn=response.urn, parent=request.parent or None,
                dependencies=tuple(request.dependencies),
                inputs={k: rpc.unwrap_rpc_secret(v) for k, v in raw.items()}, secret_inputs=secret,
                delete_before_replace=bool(request.deleteBeforeReplace),
                additional_secret_outputs=tuple(request.additionalSecretOutputs)))
        return response


@dataclass
class Registration:
    resources: list[Registered]
    result: Any = None

    def one(self, type_suffix: str) -> Registered:
        found = [r for r in self.resources if r.type.endswith(type_suffix)]
        assert len(found) == 1, f"{len(found)} resources of type *{type_suffix}"
        return found[0]


def register(program: Callable[[], Any]) -> Registration:
    """Run `program` under mocks (fresh loop, fresh root stack); `result` is its awaited return."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    settings.ROOT.set(None)
    monitor = _Monitor()
    pulumi.runtime.set_mocks(monitor.mocks, project="platform", stack="gardener-test", preview=False,
                             monitor=monitor)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    box: dict[str, Any] = {}

    async def settle(value: Any) -> None:
        if isinstance(value, pulumi.Output):
            box["value"] = await value.future(with_unknowns=True)
            box["secret"] = await value.is_secret()

    def run() -> Any:
        return settle(program())

    try:
        _sync_await(run_pulumi_func(run))
    finally:
        settings.ROOT.set(None)
        loop.close()
        asyncio.set_event_loop(None)
    return Registration(monitor.recorded, box)


# --- the dynamic provider host over gRPC ------------------------------------------------------------


def _wire(value: Any) -> Any:
    """As on the wire: unknowns are the sentinel string, None is omitted."""
    if isinstance(value, Unknown):
        return rpc.UNKNOWN
    if isinstance(value, Mapping):
        return {k: _wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(_wire(props))
    return s


def from_struct(s: struct_pb2.Struct) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(s, keep_unknowns=True))


class EngineError(Exception):
    """A provider call failed; `details` is what the engine would print."""

    def __init__(self, op: str, details: str) -> None:
        super().__init__(f"{op} failed: {details}")
        self.op, self.details = op, details


class CheckFailedError(Exception):
    def __init__(self, failures: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {r}" for p, r in failures))
        self.failures = failures


class ProviderHost:
    """`python -u -m pulumi.dynamic` as the engine starts it, with a chosen environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("CLEURA_")}
        self._stderr = tempfile.NamedTemporaryFile(prefix="dynamic-host-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.dynamic"], cwd=PROJECT_ROOT,
                                     env={**base, **env}, stdout=subprocess.PIPE, stderr=self._stderr)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.close()
            raise RuntimeError(f"dynamic provider host did not print a port: {line!r}\n{self.logs()}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self.stub.Configure(provider_pb2.ConfigureRequest(args=struct_pb2.Struct(), acceptSecrets=True,
                                                          acceptResources=True))

    def logs(self) -> str:
        return Path(self._stderr.name).read_text(errors="replace")

    def log_offset(self) -> int:
        return len(self.logs())

    def close(self) -> None:
        if hasattr(self, "channel"):
            self.channel.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._stderr.close()
        os.unlink(self._stderr.name)

    def call(self, op: str, request: Any) -> Any:
        try:
            return getattr(self.stub, op)(request)
        except grpc.RpcError as exc:
            raise EngineError(op, exc.details() or str(exc)) from None


@dataclass
class State:
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class Step:
    """What one `up` (or preview) did: create / same / update / replace."""

    op: str
    replaces: tuple[str, ...] = ()
    delete_before_replace: bool = False


@dataclass
class Engine:
    """One resource's lifecycle, sequenced like the Pulumi engine."""

    host: ProviderHost
    type: str
    name: str
    state: State | None = None
    history: list[str] = field(default_factory=list)

    @property
    def urn(self) -> str:
        return f"urn:pulumi:gardener-test::platform::{self.type}::{self.name}"

    def check(self, news: Mapping[str, Any]) -> dict[str, Any]:
        olds = self.state.inputs if self.state else {}
        resp = self.host.call("Check", provider_pb2.CheckRequest(
            urn=self.urn, olds=to_struct(olds), news=to_struct(news), name=self.name, type=self.type))
        if resp.failures:
            raise CheckFailedError([(f.property, f.reason) for f in resp.failures])
        return from_struct(resp.inputs)

    def diff(self, checked: Mapping[str, Any]) -> Any:
        assert self.state is not None
        return self.host.call("Diff", provider_pb2.DiffRequest(
            id=self.state.id, urn=self.urn, olds=to_struct(self.state.outputs), news=to_struct(checked),
            old_inputs=to_struct(self.state.inputs), name=self.name, type=self.type))

    def plan(self, news: Mapping[str, Any]) -> tuple[Step, dict[str, Any]]:
        checked = self.check(news)
        if self.state is None:
            return Step("create"), checked
        d = self.diff(checked)
        if d.changes != provider_pb2.DiffResponse.DIFF_SOME:
            return Step("same"), checked
        if d.replaces:
            return Step("replace", tuple(d.replaces), d.deleteBeforeReplace), checked
        return Step("update"), checked

    def preview(self, news: Mapping[str, Any]) -> Step:
        return self.plan(news)[0]

    def _create(self, checked: Mapping[str, Any]) -> State:
        resp = self.host.call("Create", provider_pb2.CreateRequest(
            urn=self.urn, properties=to_struct(checked), name=self.name, type=self.type, timeout=3600))
        return State(resp.id, dict(checked), from_struct(resp.properties))

    def up(self, news: Mapping[str, Any]) -> Step:
        step, checked = self.plan(news)
        self.history.append(step.op)
        if step.op == "create":
            self.state = self._create(checked)
        elif step.op == "update":
            assert self.state is not None
            resp = self.host.call("Update", provider_pb2.UpdateRequest(
                id=self.state.id, urn=self.urn, olds=to_struct(self.state.outputs), news=to_struct(checked),
                old_inputs=to_struct(self.state.inputs), name=self.name, type=self.type, timeout=3600))
            self.state = State(self.state.id, dict(checked), from_struct(resp.properties))
        elif step.op == "replace":
            if step.delete_before_replace:
                self._delete()
                self.state = self._create(checked)
            else:
                old = self.state
                self.state = self._create(checked)
                self._delete(old)
        return step

    def refresh(self) -> str:
        assert self.state is not None
        resp = self.host.call("Read", provider_pb2.ReadRequest(
            id=self.state.id, urn=self.urn, properties=to_struct(self.state.outputs),
            inputs=to_struct(self.state.inputs), name=self.name, type=self.type))
        if not resp.id:
            self.state = None
            return "deleted"
        outputs = from_struct(resp.properties)
        changed = outputs != self.state.outputs
        self.state = State(resp.id, self.state.inputs, outputs)
        return "changed" if changed else "same"

    def _delete(self, state: State | None = None) -> None:
        st = state or self.state
        assert st is not None
        self.host.call("Delete", provider_pb2.DeleteRequest(
            id=st.id, urn=self.urn, properties=to_struct(st.outputs), old_inputs=to_struct(st.inputs),
            name=self.name, type=self.type, timeout=3600))

    def destroy(self) -> None:
        self._delete()
        self.state = None
