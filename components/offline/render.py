"""Offline render of a stack: every artefact the program would hand the engine, on disk.

``python -m components.offline.render <stack> [--out build/render]`` runs the real program
under mocks and writes ``<out>/<stack>/``:

- ``summary.txt``: one line per resource (name, type, parent, dependencies, a hash of its
  inputs), sorted by name: the first file to diff,
- ``outputs.json``: the stack outputs (secrets as ``[secret]``); ``warnings.txt``: config warnings,
- ``install-order.txt``: the remote steps in waves (what runs in parallel, the critical path),
- ``resources.json``: every resource (type, name, parent, dependencies, provider, options,
  aliases as sent, inputs with secrets replaced by ``[secret]``; scripts as ``[script scripts/<file>]``),
- ``scripts/<resource>.<create|update|delete>.sh``: every remote/local command script, written
  once (an update script identical to the create script refers to the create file),
- ``hosts/<node>/...``: the files those scripts write on each node (tokens redacted),
- ``helm/<release>.yaml``: chart, repository, version, namespace and values of each Helm
  release (v3 Release) and chart (v4 Chart),
- ``manifests/<kind>-<name>.yaml``: every other Kubernetes object and custom resource (a
  ``yaml/v2:ConfigGroup``'s objects as ``<kind>-<group>-<object>.yaml``),
- ``manifest-files.txt``: each ``yaml/v2:ConfigFile``, ``<resource>\t<file or URL>`` (the CSI
  snapshot CRDs: what a `manifests.mirror` must hold),
- ``api/<resource>.json``: the API request body of each Gardener shoot.

Reviewers diff two renders; CI runs shellcheck and schema validation on them. The tree is
written aside and moved into place when complete; a failed render leaves only
``RENDER-FAILED.txt`` (with the error) in ``<out>/<stack>/``, never a stale tree. Secrets are
redacted by construction and the written tree is then scanned for every secret's text.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from components.offline.runner import (
    PROJECT_ROOT,
    SECRET,
    ProgramFailed,
    Recording,
    Resource,
    run_program,
    stack_file_notes,
)
from components.offline.stackfile import StackFileError

COMMAND_TYPES = ("command:remote:Command", "command:local:Command")
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
GARDENER_SHOOT_SUFFIX = ":Shoot"
NOT_MANIFESTS = ("kubernetes:helm.sh/", "pulumi:providers:", "kubernetes:yaml")
CONFIG_GROUP, CONFIG_FILE = "kubernetes:yaml/v2:ConfigGroup", "kubernetes:yaml/v2:ConfigFile"


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _is_gardener_shoot(resource: Resource) -> bool:
    return resource.type.startswith("pulumi-python:dynamic") and resource.type.endswith(GARDENER_SHOOT_SUFFIX)


def is_manifest(resource: Resource) -> bool:
    return resource.type.startswith("kubernetes:") and resource.custom and not resource.type.startswith(NOT_MANIFESTS)


def scripts(resource: Resource) -> dict[str, str]:
    """The create/update/delete scripts of a command resource (redacted)."""
    inputs = resource.redacted_inputs()
    return {phase: inputs[phase] for phase in ("create", "update", "delete") if isinstance(inputs.get(phase), str)}


def helm_release(resource: Resource) -> dict[str, Any]:
    inputs = resource.redacted_inputs()
    repo_opts = inputs.get("repositoryOpts") or {}
    return {
        "name": inputs.get("name", resource.name),
        "namespace": inputs.get("namespace"),
        "chart": inputs.get("chart"),
        "repo": repo_opts.get("repo") if isinstance(repo_opts, dict) else repo_opts,
        "version": inputs.get("version"),
        "values": inputs.get("values") or {},
    }


def manifest(resource: Resource) -> dict[str, Any]:
    """A Kubernetes object as it would be applied (inputs already use apiVersion/kind/metadata)."""
    inputs = resource.redacted_inputs()
    inputs.pop("__defaults", None)
    return inputs


def api_body(resource: Resource) -> dict[str, Any]:
    from components.gardener.spec import create_body_from_inputs

    body: dict[str, Any] = create_body_from_inputs(resource.redacted_inputs())
    return body


def install_order(recording: Recording) -> str:
    """Remote steps grouped by the earliest wave they can run in (from real dependencies).

    Steps in one wave run in parallel; the number of waves is the critical path. This is how a
    reviewer sees that servers join one at a time and agents install side by side.
    """
    commands = [r for r in recording if r.type in COMMAND_TYPES]
    wave: dict[str, int] = {}

    def depth(resource: Resource) -> int:
        if resource.urn not in wave:
            wave[resource.urn] = 0  # guards against cycles while computing
            before = [c for c in commands if c is not resource and recording.depends_on(resource, c)]
            wave[resource.urn] = 1 + max((depth(c) for c in before), default=0)
        return wave[resource.urn]

    waves: dict[int, list[str]] = {}
    for command in commands:
        waves.setdefault(depth(command), []).append(command.name)
    lines = [f"{len(commands)} remote steps in {len(waves)} waves (critical path)"]
    for number in sorted(waves):
        names = sorted(waves[number])
        label = "parallel" if len(names) > 1 else "serial"
        lines.append(f"wave {number:3d} ({label}, {len(names)}): {', '.join(names)}")
    return "\n".join(lines) + "\n"


def input_hash(resource: Resource) -> str:
    """A short digest of a resource's redacted inputs: changes whenever a non-secret input does."""
    text = json.dumps(resource.redacted_inputs(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def summary(recording: Recording) -> str:
    """One line per resource, sorted by name then type: what a reviewer scans before the details.

    ``<name>  <type>  parent=<name>  deps=<names>  inputs=<hash>`` (dependencies are the union of
    resource and property dependencies; `-` when there are none).
    """
    names = {r.urn: r.name for r in recording}
    lines = []
    for r in sorted(recording, key=lambda r: (r.name, r.type, r.urn)):
        deps = set(r.dependencies)
        for values in r.property_dependencies.values():
            deps.update(values)
        dep_names = sorted(names.get(u, u.rsplit("::", 1)[-1]) for u in deps)
        parent = names.get(r.parent, "-") if r.parent else "-"
        lines.append(f"{r.name}  {r.type}  parent={parent}  deps={','.join(dep_names) or '-'}  inputs={input_hash(r)}")
    return "\n".join(lines) + "\n"


def script_files(recording: Recording) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """Where each command script is written: ``{(urn, phase): relative path}`` and ``{path: text}``.

    An update (or delete) script identical to the create script is not written again: it
    refers to the create script's file.
    """
    refs: dict[tuple[str, str], str] = {}
    files: dict[str, str] = {}
    for resource in recording:
        if resource.type not in COMMAND_TYPES:
            continue
        by_text: dict[str, str] = {}
        for phase, text in scripts(resource).items():
            if text in by_text:
                refs[(resource.urn, phase)] = by_text[text]
                continue
            relative = f"scripts/{_file_name(resource.name)}.{phase}.sh"
            files[relative] = text if text.endswith("\n") else text + "\n"
            refs[(resource.urn, phase)] = by_text[text] = relative
    return refs, files


def resources_json(recording: Recording, refs: dict[tuple[str, str], str]) -> str:
    """`Recording.canonical_json` with each script replaced by ``[script <file>]`` (written once)."""
    entries = json.loads(recording.canonical_json())
    for entry, resource in zip(entries, sorted(recording.resources, key=lambda r: r.urn), strict=True):
        for phase in ("create", "update", "delete"):
            if (resource.urn, phase) in refs:
                entry["inputs"][phase] = f"[script {refs[(resource.urn, phase)]}]"
    return json.dumps(entries, indent=2, sort_keys=True, default=str) + "\n"


def render(recording: Recording, out: Path, extra: dict[str, str] | None = None) -> list[Path]:
    """Write the render tree for `recording` (plus `extra` files) under `out` and return the files.

    The tree is written beside `out` and moved into place only when complete and free of
    secret text, so `out` is never half old, half new.
    """
    staging = out.with_name(out.name + ".rendering")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    relatives: list[str] = []

    def write(relative: str, text: str) -> None:
        path = staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        relatives.append(relative)

    dump: Callable[[Any], str] = lambda data: yaml.safe_dump(data, sort_keys=True, default_flow_style=False)  # noqa: E731
    refs, scripts_written = script_files(recording)
    try:
        write("resources.json", resources_json(recording, refs))
        write("summary.txt", summary(recording))
        write("outputs.json", json.dumps(recording.redacted_outputs(), indent=2, sort_keys=True, default=str) + "\n")
        write("install-order.txt", install_order(recording))
        for relative, text in sorted((extra or {}).items()):
            write(relative, text)
        for relative, text in sorted(scripts_written.items()):
            write(relative, text)
        for resource in recording:
            if resource.type in HELM_TYPES:
                write(f"helm/{_file_name(resource.name)}.yaml", dump(helm_release(resource)))
            elif _is_gardener_shoot(resource):
                write(f"api/{_file_name(resource.name)}.create.json", json.dumps(api_body(resource), indent=2) + "\n")
            elif is_manifest(resource):
                body = manifest(resource)
                kind = str(body.get("kind") or resource.type.rsplit(":", 1)[-1])
                write(f"manifests/{_file_name(kind)}-{_file_name(resource.name)}.yaml", dump(body))
            elif resource.type == CONFIG_GROUP:
                for obj in resource.redacted_inputs().get("objs") or []:
                    kind, name = str(obj.get("kind")), str((obj.get("metadata") or {}).get("name"))
                    group = f"{_file_name(resource.name)}-{_file_name(name)}"
                    write(f"manifests/{_file_name(kind)}-{group}.yaml", dump(obj))
        files = [f"{r.name}\t{r.inputs.get('file')}\n" for r in recording if r.type == CONFIG_FILE]
        if files:
            write("manifest-files.txt", "".join(sorted(files)))
        leaks = find_leaks([staging / r for r in relatives], recording.secret_values)
        if leaks:
            shown = ", ".join(str(out / Path(p).relative_to(staging)) for p in leaks)
            raise RuntimeError(f"refusing to keep a render that contains secret text: {shown}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return [out / r for r in relatives]


FAILED_MARKER = "RENDER-FAILED.txt"


def mark_failed(out: Path, message: str) -> Path:
    """Replace a stale render by a tree holding only the failure, so nobody diffs old output."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    marker = out / FAILED_MARKER
    marker.write_text(f"The last render of this stack failed; nothing here is current.\n\n{message}\n")
    return marker


def find_leaks(paths: list[Path], secret_values: frozenset[str]) -> list[str]:
    """Files whose text contains a secret value, or any long token of a multi-line secret.

    Long whitespace-free tokens (key material, base64, hex) catch a secret that was split or
    re-wrapped; shorter fragments such as a kubeconfig's server line are not secret on their own.
    """
    needles: set[str] = set()
    for value in secret_values:
        if value == SECRET:
            continue
        needles.add(value)
        needles.update(token for token in value.split() if len(token) >= 32)
    return [str(p) for p in paths if any(n in p.read_text() for n in needles)]


def host_files(stack: str, secrets: dict[str, str], root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Files the K3s scripts write on each host, with tokens redacted (they travel on stdin).

    The scripts receive these on secret stdin, so they are absent from `resources.json`;
    rendering them from the same pure functions lets reviewers diff every node's config.
    """
    from components.config import ConfigError, parse_stack_config
    from components.k3s import K3sClusterArgs
    from components.k3s import render as k3s_render
    from components.offline.runner import cli_config

    raw: dict[str, str] = cli_config(stack, root=root)
    raw.update(secrets)
    try:
        cfg = parse_stack_config(raw, frozenset(secrets), stack=stack)
    except ConfigError:
        return {}  # not this platform's config (another program under the runner): no host files
    if cfg.cluster_kind != "k3s":
        return {}
    args = K3sClusterArgs.from_config(cfg)
    redacted = k3s_render.redacted(args)
    files = {
        f"hosts/{node.name}/etc/rancher/k3s/config.yaml": k3s_render.render_node_config(args, node, redacted)
        for node in args.nodes
    }
    registries = k3s_render.registries_yaml(args, redacted)
    tls_files = dict(k3s_render.registry_cert_files(args))
    tls_files.update(dict.fromkeys(k3s_render.registry_key_paths(args), k3s_render.REDACTED_TLS_KEY))
    vip = k3s_render.kube_vip_manifest(args)
    for node in args.nodes:  # containerd on every node reads registries.yaml
        if registries:
            files[f"hosts/{node.name}/etc/rancher/k3s/registries.yaml"] = registries
        for path, text in tls_files.items():
            files[f"hosts/{node.name}{path}"] = text
        if vip and node.role == "server":
            files[f"hosts/{node.name}{k3s_render.KUBE_VIP_MANIFEST_PATH}"] = vip
    return files


@functools.lru_cache(maxsize=1)
def throwaway_ssh_key() -> str:
    """A fresh ed25519 private key for offline runs (never stored: no key material in the repo).

    Made with ``ssh-keygen`` when present; otherwise random text of the same shape, which is
    all an offline run needs (nothing connects). One key per process.
    """
    if shutil.which("ssh-keygen"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "key"
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "platform-offline-throwaway", "-f", str(path)],
                check=True, stdin=subprocess.DEVNULL,
            )
            return path.read_text()
    body = base64.b64encode(os.urandom(300)).decode()
    lines = [body[i:i + 70] for i in range(0, len(body), 70)]
    label = "OPENSSH PRIVATE KEY"
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def render_secrets(stack: str, root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Secrets for an offline render: the throwaway test key and placeholders, never a real one.

    K3s stacks (the parsed ``clusterKind``, not a text search: comments and quoting vary) get
    the test SSH key; every value the stack file holds encrypted gets a placeholder, so a
    stack with e.g. ``etcdS3SecretKey`` set renders without its passphrase (a structured one,
    e.g. ``k3sRegistryCredentials``, keeps its structure with a placeholder per secret leaf).
    """
    from components.offline.runner import encrypted_keys, encrypted_shapes, stack_config
    from components.offline.stackfile import placeholder

    secrets = {key: placeholder(key) for key in encrypted_keys(stack, root)}
    secrets.update(encrypted_shapes(stack, root))  # structured secrets keep their shape
    kind = stack_config(stack, root=root).get("platform:clusterKind", "k3s")
    if kind == "k3s":
        secrets["platform:sshPrivateKey"] = throwaway_ssh_key()
    if kind == "existing":
        secrets["platform:kubeconfig"] = THROWAWAY_KUBECONFIG
    return secrets


# What an offline render of a clusterKind-existing stack connects to: nothing (a placeholder
# that has the shape the config check wants, pointing at an address nobody serves).
THROWAWAY_KUBECONFIG = """apiVersion: v1
kind: Config
current-context: offline
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: offline, user: {token: offline-render-placeholder}}]
contexts: [{name: offline, context: {cluster: offline, user: offline}}]
"""


def config_warnings(stack: str, secrets: dict[str, str], root: Path = PROJECT_ROOT) -> str:
    """Stack-file notes (unquoted values read as surprising numbers) and the config warnings the
    program logs (``pulumi.log.warn``), one a line; `(none)` when clean."""
    from components.config import ConfigError, parse_stack_config
    from components.offline.runner import cli_config, stack_file_notes

    raw: dict[str, str] = cli_config(stack, root=root)
    raw.update(secrets)
    try:
        warnings = (*stack_file_notes(stack, root), *parse_stack_config(raw, frozenset(secrets), stack=stack).warnings)
    except ConfigError as err:
        warnings = (*stack_file_notes(stack, root), *err.warnings)
    return "\n".join(warnings or ("(none)",)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack name: renders Pulumi.<stack>.yaml")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "build" / "render"), help="output directory")
    parser.add_argument("--root", default=str(PROJECT_ROOT), help=argparse.SUPPRESS)  # tests: another project
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / f"Pulumi.{args.stack}.yaml").exists():
        stacks = sorted(p.name[7:-5] for p in root.glob("Pulumi.*.yaml"))
        print(f"no stack file Pulumi.{args.stack}.yaml (stacks: {', '.join(stacks)})", file=sys.stderr)
        return 2
    target = Path(args.out) / args.stack
    try:
        secrets = render_secrets(args.stack, root)
        recording = run_program(args.stack, secrets=secrets, root=root)
        extra = {**host_files(args.stack, secrets, root), "warnings.txt": config_warnings(args.stack, secrets, root)}
        files = render(recording, target, extra)
    except (ProgramFailed, StackFileError, RuntimeError) as failed:
        cause = failed.__cause__ if isinstance(failed, ProgramFailed) else None
        message = str(cause) if cause is not None else str(failed)
        if not isinstance(failed, StackFileError):
            notes = stack_file_notes(args.stack, root)
            message = "\n".join([*(f"note: {n}" for n in notes), message])
        print(message, file=sys.stderr)
        marker = mark_failed(target, message)
        print(f"render failed: the previous render of {args.stack} was removed ({marker} says why)", file=sys.stderr)
        return 1
    for note in stack_file_notes(args.stack, root):
        print(f"note: {note}", file=sys.stderr)
    print(f"rendered {len(recording.resources)} resources into {len(files)} files under {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
