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
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from components.offline.runner import Recording, Resource, run_under_mocks

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_KEY = "__provider"


# --- registration under mocks --------------------------------------------------------------------


@dataclass
class Registration:
    """What a tiny program registered (the project's recorder) and what it returned."""

    recording: Recording
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def resources(self) -> list[Resource]:
        return self.recording.resources

    def one(self, type_suffix: str) -> Resource:
        found = [r for r in self.resources if r.type.endswith(type_suffix)]
        assert len(found) == 1, f"{len(found)} resources of type *{type_suffix}"
        return found[0]


def register(program: Callable[[], Any]) -> Registration:
    """Run `program` under the project's recording mocks; `result` is its returned Output."""

    def build() -> None:
        value = program()
        if isinstance(value, pulumi.Output):
            pulumi.export("result", value)

    recording = run_under_mocks(build, stack="gardener-test", command_stdout=None)
    result: dict[str, Any] = {}
    if "result" in recording.stack_outputs:
        result = {"value": recording.stack_outputs["result"], "secret": "result" in recording.stack_output_secrets}
    return Registration(recording, result)


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

    def __init__(self, env: Mapping[str, str], args: tuple[str, ...] = ()) -> None:
        """`args`: what the engine passes a provider plugin (its own gRPC address)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("CLEURA_")}
        self._stderr = tempfile.NamedTemporaryFile(prefix="dynamic-host-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.dynamic", *args], cwd=PROJECT_ROOT,
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

    def preview_view(self, news: Mapping[str, Any], output_keys: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
        """(id, outputs) as the *program* sees this resource during `pulumi preview`.

        The engine's SameStep keeps the stored id and outputs. For an update it always keeps the
        id (step.go: "Always propagate the ID, even in previews"), but a provider that does not
        support previews (the dynamic host) hands back the new *inputs* as outputs
        (plugin/provider.go), so every output that is not an input resolves as unknown in the
        SDK. A create or replacement has no id yet: unknown, and again inputs only.
        """
        step, checked = self.plan(news)
        if step.op == "same":
            assert self.state is not None
            return self.state.id, dict(self.state.outputs)
        view = {k: checked.get(k, Unknown()) for k in output_keys}
        view.update({k: v for k, v in checked.items() if k != PROVIDER_KEY})
        return (self.state.id if step.op == "update" and self.state else Unknown()), view

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
