"""Offline render of a stack: every artefact the program would hand the engine, on disk.

``python -m components.offline.render <stack> [--out build/render]`` runs the real program
under mocks and writes ``<out>/<stack>/``:

- ``install-order.txt``: the remote steps in waves (what runs in parallel, the critical path),
- ``resources.json``: every resource (type, name, parent, dependencies, provider, options,
  inputs with secrets replaced by ``[secret]``),
- ``scripts/<resource>.<create|update|delete>.sh``: every remote/local command script,
- ``hosts/<node>/...``: the files those scripts write on each node (tokens redacted),
- ``helm/<release>.yaml``: chart, repository, version, namespace and values of each Helm
  release (v3 Release) and chart (v4 Chart),
- ``manifests/<kind>-<name>.yaml``: every other Kubernetes object and custom resource,
- ``api/<resource>.json``: the API request body of each Gardener shoot.

Reviewers diff two renders; CI runs shellcheck and schema validation on them. Secrets are
redacted by construction and the written tree is then scanned for every secret's text.
"""

from __future__ import annotations

import argparse
import base64
import functools
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

from components.offline.runner import PROJECT_ROOT, SECRET, ProgramFailed, Recording, Resource, run_program

COMMAND_TYPES = ("command:remote:Command", "command:local:Command")
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
GARDENER_SHOOT_SUFFIX = ":Shoot"
NOT_MANIFESTS = ("kubernetes:helm.sh/", "pulumi:providers:", "kubernetes:yaml")


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


def render(recording: Recording, out: Path, extra: dict[str, str] | None = None) -> list[Path]:
    """Write the render tree for `recording` (plus `extra` files) under `out` and return the files."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written: list[Path] = []

    def write(relative: str, text: str) -> None:
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)

    dump: Callable[[Any], str] = lambda data: yaml.safe_dump(data, sort_keys=True, default_flow_style=False)  # noqa: E731
    write("resources.json", recording.canonical_json() + "\n")
    write("install-order.txt", install_order(recording))
    for relative, text in sorted((extra or {}).items()):
        write(relative, text)
    for resource in recording:
        if resource.type in COMMAND_TYPES:
            for phase, text in scripts(resource).items():
                write(f"scripts/{_file_name(resource.name)}.{phase}.sh", text if text.endswith("\n") else text + "\n")
        elif resource.type in HELM_TYPES:
            write(f"helm/{_file_name(resource.name)}.yaml", dump(helm_release(resource)))
        elif _is_gardener_shoot(resource):
            write(f"api/{_file_name(resource.name)}.create.json", json.dumps(api_body(resource), indent=2) + "\n")
        elif is_manifest(resource):
            body = manifest(resource)
            kind = str(body.get("kind") or resource.type.rsplit(":", 1)[-1])
            write(f"manifests/{_file_name(kind)}-{_file_name(resource.name)}.yaml", dump(body))
    leaks = find_leaks(written, recording.secret_values)
    if leaks:
        for path in written:
            path.unlink(missing_ok=True)
        raise RuntimeError(f"refusing to keep a render that contains secret text: {', '.join(leaks)}")
    return written


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


def host_files(stack: str, secrets: dict[str, str]) -> dict[str, str]:
    """Files the K3s scripts write on each host, with tokens redacted (they travel on stdin).

    The scripts receive these on secret stdin, so they are absent from `resources.json`;
    rendering them from the same pure functions lets reviewers diff every node's config.
    """
    from components.config import parse_stack_config
    from components.k3s import K3sClusterArgs
    from components.k3s import render as k3s_render
    from components.offline.runner import stack_config

    raw = {f"{k}": (v if isinstance(v, str) else json.dumps(v)) for k, v in stack_config(stack).items()}
    raw.update(secrets)
    cfg = parse_stack_config(raw, frozenset(secrets), stack=stack)
    if cfg.cluster_kind != "k3s":
        return {}
    args = K3sClusterArgs.from_config(cfg)
    files = {
        f"hosts/{node.name}/etc/rancher/k3s/config.yaml": k3s_render.render_node_config(args, node, k3s_render.REDACTED)
        for node in args.nodes
    }
    registries = k3s_render.registries_yaml(args)
    vip = k3s_render.kube_vip_manifest(args)
    for node in args.servers:
        if registries:
            files[f"hosts/{node.name}/etc/rancher/k3s/registries.yaml"] = registries
        if vip:
            files[f"hosts/{node.name}{k3s_render.KUBE_VIP_MANIFEST_PATH}"] = vip
    for node in args.agents:
        if registries:
            files[f"hosts/{node.name}/etc/rancher/k3s/registries.yaml"] = registries
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
    stack with e.g. ``etcdS3SecretKey`` set renders without its passphrase.
    """
    from components.offline.runner import encrypted_keys, stack_config

    secrets = {key: f"offline-render-placeholder-for-{key.split(':', 1)[-1]}" for key in encrypted_keys(stack, root)}
    if stack_config(stack, root=root).get("platform:clusterKind", "k3s") == "k3s":
        secrets["platform:sshPrivateKey"] = throwaway_ssh_key()
    return secrets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack name: renders Pulumi.<stack>.yaml")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "build" / "render"), help="output directory")
    args = parser.parse_args(argv)
    if not (PROJECT_ROOT / f"Pulumi.{args.stack}.yaml").exists():
        stacks = sorted(p.name[7:-5] for p in PROJECT_ROOT.glob("Pulumi.*.yaml"))
        print(f"no stack file Pulumi.{args.stack}.yaml (stacks: {', '.join(stacks)})", file=sys.stderr)
        return 2
    secrets = render_secrets(args.stack)
    try:
        recording = run_program(args.stack, secrets=secrets)
    except ProgramFailed as failed:
        cause = failed.__cause__
        print(str(cause) if cause is not None else str(failed), file=sys.stderr)
        return 1
    target = Path(args.out) / args.stack
    files = render(recording, target, host_files(args.stack, secrets))
    print(f"rendered {len(recording.resources)} resources into {len(files)} files under {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
