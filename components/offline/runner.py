"""Execute `__main__.py` under `pulumi.runtime.set_mocks` and record every registration.

What is recorded is what the engine would see: type, name, parent, dependencies, provider,
inputs (with the secret-ness of every value), and the resource options that change engine
behaviour (`protect`, `delete_before_replace`, `additional_secret_outputs`, `ignore_changes`,
...). Each run gets a fresh event loop and a fresh root stack, and waits for resources
registered inside `apply` callbacks before returning. A program that raises makes
`run_program` raise `ProgramFailed` with the original exception chained.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import runpy
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.offline import stackfile

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECRET = "[secret]"  # noqa: S105 - the redaction marker, not a password
UNKNOWN = "[unknown]"
FAKE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: mock
  cluster: {server: 'https://127.0.0.1:6443'}
users:
- name: mock
  user: {token: mock-token}
contexts:
- name: mock
  context: {cluster: mock, user: mock}
current-context: mock
"""


class ProgramFailed(Exception):  # noqa: N818 - reads as the event it reports
    """The program raised; the original exception is chained as `__cause__`.

    `registered` holds what was registered before it failed (config errors must leave it empty).
    """

    def __init__(self, message: str, registered: list[Resource]) -> None:
        super().__init__(message)
        self.registered = registered


@dataclass
class Resource:
    """One registration as the engine received it."""

    type: str
    name: str
    urn: str
    custom: bool
    parent: str | None
    dependencies: tuple[str, ...]
    property_dependencies: dict[str, tuple[str, ...]]
    provider: str | None
    inputs: dict[str, Any]  # secrets unwrapped: only ever held in memory
    secret_paths: frozenset[str]
    options: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    # As sent: ``{"urn": ...}`` or an alias spec (name, type, stack, project, parentUrn, noParent;
    # absent parts default to the resource's own). `components.offline.migration` resolves them.
    aliases: tuple[dict[str, Any], ...] = ()

    def is_secret(self, path: str) -> bool:
        """True when the value at `path` (or an enclosing value) was registered as a secret."""
        # Every enclosing path: "a.b[0].c" -> "a", "a.b", "a.b[0]", "a.b[0].c" (list items included).
        prefixes = [path[: m.start()] for m in re.finditer(r"[.\[]", path)] + [path]
        return any(prefix in self.secret_paths for prefix in prefixes)

    def redacted_inputs(self) -> dict[str, Any]:
        redacted: dict[str, Any] = _redact(self.inputs, self.secret_paths, "")
        return redacted


@dataclass
class Recording:
    """Everything one program run registered, in registration order."""

    stack: str
    resources: list[Resource]
    stack_outputs: dict[str, Any]
    stack_output_secrets: frozenset[str]
    secret_values: frozenset[str]
    stack_output_secret_paths: frozenset[str] = frozenset()

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Resource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def ancestors(self, resource: Resource) -> list[Resource]:
        out: list[Resource] = []
        parent = resource.parent
        while parent:
            found = [r for r in self.resources if r.urn == parent]
            if not found:
                break
            out.append(found[0])
            parent = found[0].parent
        return out

    def depends_on(self, a: Resource, b: Resource) -> bool:
        """True when `a` waits for `b`, directly or through any chain of dependencies.

        Waiting for a component means waiting for every resource beneath it (the SDK expands a
        component in ``depends_on`` to its custom descendants): for a component `b` this is true
        when `a` names it (a remote component such as a v4 Chart) or waits for each of those.
        """
        children: dict[str, list[str]] = {}
        for r in self.resources:
            if r.parent:
                children.setdefault(r.parent, []).append(r.urn)

        def with_descendants(urn: str) -> list[str]:
            out, todo = [], [urn]
            while todo:
                current = todo.pop()
                out.append(current)
                todo.extend(children.get(current, ()))
            return out

        index = {r.urn: r for r in self.resources}
        seen: set[str] = set()
        stack = [a.urn]
        while stack:
            node = index.get(stack.pop())
            if node is None:
                continue
            deps = set(node.dependencies)
            for values in node.property_dependencies.values():
                deps.update(values)
            for dep in deps:
                for urn in with_descendants(dep):
                    if urn == b.urn:
                        return True
                    if urn not in seen:
                        seen.add(urn)
                        stack.append(urn)
        if b.custom:
            return False
        targets = [u for u in with_descendants(b.urn) if u in index and index[u].custom]
        return bool(targets) and all(self.depends_on(a, index[u]) for u in targets)

    def redacted_outputs(self) -> dict[str, Any]:
        """Stack outputs with every secret (whole output or nested value) as ``[secret]``."""
        secret_paths = self.stack_output_secret_paths | self.stack_output_secrets
        return {key: _redact(value, frozenset(secret_paths), key) for key, value in self.stack_outputs.items()}

    def canonical_json(self, *, reveal_secrets: bool = False) -> str:
        """Byte-stable rendering of every registration, sorted by URN (determinism checks, renders).

        Secrets are redacted unless `reveal_secrets` (in-memory comparisons only: never written,
        not even as a hash, which would be a brute-force target for a low-entropy secret).
        """
        return json.dumps(
            [
                {
                    "type": r.type, "name": r.name, "parent": r.parent, "dependencies": sorted(r.dependencies),
                    "provider": r.provider, "inputs": r.inputs if reveal_secrets else r.redacted_inputs(),
                    "secrets": sorted(r.secret_paths), "options": r.options,
                    **({"aliases": list(r.aliases)} if r.aliases else {}),
                }
                # Registration order varies with apply scheduling; the engine keys by URN.
                for r in sorted(self.resources, key=lambda r: r.urn)
            ],
            indent=2, sort_keys=True, default=str,
        )


def _walk_secrets(value: Any, path: str, found: set[str], plain: set[str]) -> Any:
    """Unwrap RPC secret envelopes, noting each secret's path and plaintext."""
    if rpc.is_rpc_secret(value):
        found.add(path)
        inner = rpc.unwrap_rpc_secret(value)
        _collect_strings(inner, plain)
        return _walk_secrets(inner, path, found, plain)
    if isinstance(value, dict):
        return {k: _walk_secrets(v, f"{path}.{k}" if path else k, found, plain) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk_secrets(v, f"{path}[{i}]", found, plain) for i, v in enumerate(value)]
    if value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        # The wire carries every number as a double; the engine (and `pulumi stack export`) shows
        # a whole number as one, so `maxHistory: 10` reads 10 here, not 10.0.
        return int(value)
    return value


def _sent_secret_paths(value: Any, path: str) -> set[str]:
    """Paths of the secret envelopes in a serialized (not yet deserialized) property tree."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return {path}
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_output_value_sig:
        return {path} if value.get("secret") else _sent_secret_paths(value.get("value"), path)
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            found |= _sent_secret_paths(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found |= _sent_secret_paths(v, f"{path}[{i}]")
    return found


def _collect_strings(value: Any, out: set[str]) -> None:
    if isinstance(value, str) and len(value) >= 6:
        out.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            _collect_strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _collect_strings(v, out)


def _redact(value: Any, secrets: frozenset[str], path: str) -> Any:
    if path in secrets:
        return SECRET
    if isinstance(value, dict):
        return {k: _redact(v, secrets, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secrets, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


class RecordingMocks(pulumi_mocks.Mocks):  # type: ignore[misc]
    """Resource outputs for the mock engine: inputs echoed back, plus plausible provider outputs."""

    def __init__(self, command_stdout: Callable[[pulumi_mocks.MockResourceArgs], str] | None = None) -> None:
        self.command_stdout = command_stdout

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        digest = hashlib.sha256(f"{args.typ}/{args.name}".encode()).hexdigest()
        if args.typ.startswith("random:"):
            length = int(state.get("length") or state.get("byteLength") or 32)
            state.setdefault("result", digest[:length])
            state.setdefault("hex", digest[:length])
            if args.typ == "random:index/randomPassword:RandomPassword":
                state.setdefault("bcryptHash", "$2a$10$" + digest[:53])
        if args.typ.startswith("tls:"):
            # pulumi-tls outputs: placeholder PEM text (the keys come back secret, as the SDK asks).
            for key, label in (("privateKeyPem", "PRIVATE KEY"), ("certPem", "CERTIFICATE"),
                               ("certRequestPem", "CERTIFICATE REQUEST")):
                state.setdefault(key, f"-----BEGIN {label}-----\nMOCK{digest[:48]}\n-----END {label}-----\n")
        if args.typ.startswith("command:"):
            stdout = self.command_stdout(args) if self.command_stdout else ""
            state.setdefault("stdout", stdout)
            state.setdefault("stderr", "")
        return f"{args.name}-id", state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def default_command_stdout(args: pulumi_mocks.MockResourceArgs) -> str:
    """The kubeconfig-fetching command (named ``*-kubeconfig``) prints a fake one; others nothing."""
    return FAKE_KUBECONFIG if args.name.endswith("-kubeconfig") else ""


class RecordingMonitor(pulumi_mocks.MockMonitor):  # type: ignore[misc]
    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Resource] = []
        self.secret_values: set[str] = set()
        self.stack_outputs: dict[str, Any] = {}
        self.stack_output_secrets: set[str] = set()
        self.stack_output_secret_paths: set[str] = set()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        pulumi_mocks._ensure_event_loop()
        urn = self.make_urn(request.parent, request.type, request.name)
        id_, state = self.mocks.new_resource(
            pulumi_mocks.MockResourceArgs(
                typ=request.type, name=request.name,
                inputs=rpc.deserialize_properties(request.object), provider=request.provider,
                resource_id=request.importId, custom=request.custom or False,
            )
        )
        # As the engine does: outputs named in additionalSecretOutputs come back as secrets.
        for key in request.additionalSecretOutputs:
            if key in state and not rpc.is_rpc_secret(state[key]):
                _collect_strings(state[key], self.secret_values)
                state[key] = rpc.wrap_rpc_secret(state[key])
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, id_ or "", state)
        response = resource_pb2.RegisterResourceResponse(
            urn=urn, id=id_, object=_sync_await(rpc.serialize_properties(state, {}))
        )
        pulumi_mocks._ensure_event_loop()
        raw = rpc.deserialize_properties(request.object, keep_unknowns=True)
        secret_paths: set[str] = set()
        inputs = _walk_secrets(raw, "", secret_paths, set())
        # The SDK's deserializer lifts a nested secret to its enclosing object; the engine keeps
        # it where it is (a Helm release with one secret value). Record the paths as sent.
        secret_paths = _sent_secret_paths(json_format.MessageToDict(request.object), "")
        options = {
            "protect": bool(request.protect),
            "delete_before_replace": bool(request.deleteBeforeReplace),
            "additional_secret_outputs": sorted(request.additionalSecretOutputs),
            "ignore_changes": sorted(request.ignoreChanges),
            "replace_on_changes": sorted(request.replaceOnChanges),
            "retain_on_delete": bool(request.retainOnDelete),
            "deleted_with": request.deletedWith or None,
            "custom_timeouts": {
                "create": request.customTimeouts.create, "update": request.customTimeouts.update,
                "delete": request.customTimeouts.delete,
            } if request.HasField("customTimeouts") else None,
        }
        providers = dict(request.providers)
        aliases = tuple(_alias_entry(a) for a in request.aliases) + tuple({"urn": u} for u in request.aliasURNs)
        self.recorded.append(
            Resource(
                type=request.type, name=request.name, urn=response.urn, custom=bool(request.custom),
                parent=request.parent or None, dependencies=tuple(request.dependencies),
                property_dependencies={k: tuple(v.urns) for k, v in request.propertyDependencies.items()},
                provider=request.provider or (next(iter(providers.values())) if providers else None),
                inputs=inputs, secret_paths=frozenset(secret_paths), options=options, aliases=aliases,
            )
        )
        return response


def _alias_entry(alias: Any) -> dict[str, Any]:
    """One ``Alias`` message as a plain dict: ``{"urn": ...}``, or the spec's fields that are set."""
    if alias.WhichOneof("alias") == "urn":
        return {"urn": alias.urn}
    spec = alias.spec
    entry: dict[str, Any] = {k: getattr(spec, k) for k in ("name", "type", "stack", "project") if getattr(spec, k)}
    if spec.WhichOneof("parent") == "parentUrn" and spec.parentUrn:
        entry["parentUrn"] = spec.parentUrn
    elif spec.WhichOneof("parent") == "noParent" and spec.noParent:
        entry["noParent"] = True
    return entry


def _stack_file(stack: str, root: Path) -> stackfile.StackFile:
    return stackfile.load(root / f"Pulumi.{stack}.yaml")


def stack_file_notes(stack: str, root: Path = PROJECT_ROOT) -> list[str]:
    """Unquoted stack-file values the CLI reads as a surprising number (``0123`` -> 83, ``1.10`` -> 1.1)."""
    return list(_stack_file(stack, root).notes)


def encrypted_keys(stack: str, root: Path = PROJECT_ROOT) -> list[str]:
    """Keys the stack file holds encrypted (``key: {secure: v1:...}``, from ``config set --secret``)."""
    return list(_stack_file(stack, root).encrypted)


def encrypted_shapes(stack: str, root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Encrypted keys with a structured value (``config set --secret --path``): their structure as the
    CLI would pass it, each secret leaf a placeholder."""
    return dict(_stack_file(stack, root).shapes)


def cli_config(stack: str, overrides: Mapping[str, Any] | None = None,
               root: Path = PROJECT_ROOT) -> dict[str, str]:
    """``PULUMI_CONFIG`` as the CLI would build it from the stack file, with `overrides` applied.

    File values are the CLI's own texts (`components.offline.stackfile`); an override is
    encoded the same way (a string as is, anything else as the CLI's JSON; None deletes).
    Encrypted values are left out: offline there is no passphrase, and their ciphertext passed
    on as a plain value would read as a secret set in plain text (`encrypted_keys` lists them).
    """
    config = dict(_stack_file(stack, root).values)
    for key, value in (overrides or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = stackfile.config_text(value)
    return config


def stack_config(stack: str, overrides: Mapping[str, Any] | None = None,
                 root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """`cli_config` with objects and lists decoded (scalars stay the CLI's text), for tests to edit."""
    config: dict[str, Any] = {}
    for key, text in cli_config(stack, None, root).items():
        config[key] = json.loads(text) if text[:1] in "[{" else text
    for key, value in (overrides or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def run_under_mocks(
    build: Callable[[], object],
    *,
    stack: str = "test",
    config: Mapping[str, str] | None = None,
    secret_keys: Iterable[str] = (),
    preview: bool = False,
    command_stdout: Callable[[pulumi_mocks.MockResourceArgs], str] | None = default_command_stdout,
    env: Mapping[str, str] | None = None,
) -> Recording:
    """Run `build()` as a Pulumi program under recording mocks; return what it registered.

    Whatever `build` exports with `pulumi.export` lands in `Recording.stack_outputs`, with its
    secret-ness, so component tests can export a component's outputs and inspect them.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    old_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(config or {}), list(secret_keys))
    monitor = RecordingMonitor(RecordingMocks(command_stdout))
    pulumi.runtime.set_mocks(monitor.mocks, project="platform", stack=stack, preview=preview, monitor=monitor)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()

    async def collect_exports() -> None:
        # The mock root stack finished at set_mocks time, so exports are read off it here.
        stack_resource = settings.get_root_resource()
        for key, value in dict(getattr(stack_resource, "outputs", {}) or {}).items():
            output = pulumi.Output.from_input(value)
            resolved = await output.future(with_unknowns=True)
            monitor.stack_outputs[key] = _walk_secrets(
                resolved, key, monitor.stack_output_secret_paths, monitor.secret_values
            )
            if await output.is_secret():
                monitor.stack_output_secrets.add(key)
                _collect_strings(resolved, monitor.secret_values)

    def program() -> Any:
        build()
        return collect_exports()

    try:
        _sync_await(run_pulumi_func(program))
    except BaseException as exc:
        raise ProgramFailed(
            f"the program for stack {stack!r} raised {type(exc).__name__}: {exc}", list(monitor.recorded)
        ) from exc
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        settings.ROOT.set(None)
        pulumi.runtime.set_all_config({}, [])
        loop.close()
        asyncio.set_event_loop(None)
    return Recording(stack, monitor.recorded, monitor.stack_outputs, frozenset(monitor.stack_output_secrets),
                     frozenset(monitor.secret_values), frozenset(monitor.stack_output_secret_paths))


def run_program(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    *,
    preview: bool = False,
    root: Path = PROJECT_ROOT,
    command_stdout: Callable[[pulumi_mocks.MockResourceArgs], str] | None = default_command_stdout,
    env: Mapping[str, str] | None = None,
) -> Recording:
    """Run `<root>/__main__.py` for `stack` under mocks and return what it registered.

    The program receives the stack file's config exactly as the Pulumi CLI would pass it
    (`cli_config`; a malformed file raises `StackFileError` naming file and line). `overrides`
    replace or (with None) delete `platform:*` keys; `secrets` are set as secret config values
    (as `pulumi config set --secret` would).
    """
    config = cli_config(stack, overrides, root)
    config.update(secrets or {})
    recording = run_under_mocks(
        lambda: runpy.run_path(str(root / "__main__.py"), run_name="__main__"),
        stack=stack,
        config=config,
        secret_keys=sorted(secrets or {}),
        preview=preview, command_stdout=command_stdout, env=env,
    )
    recording.secret_values = recording.secret_values | {v for v in (secrets or {}).values() if len(v) >= 6}
    return recording
