"""The whole program under mocks: every stack runs, runs identically twice, fails cleanly."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from components.offline.render import render
from components.offline.runner import ProgramFailed
from tests.conftest import TEST_SSH_KEY, RunProgram, stack_files


@pytest.mark.parametrize("stack", stack_files())
def test_every_stack_file_runs_under_mocks(program: RunProgram, stack: str) -> None:
    rec = program(stack)
    assert rec.resources, f"stack {stack} registered nothing"
    assert "kubeconfig" in rec.stack_output_secrets
    assert all(r.type != "platform:placeholder" for r in rec)


@pytest.mark.parametrize("stack", stack_files())
def test_running_twice_registers_identical_inputs(program: RunProgram, stack: str) -> None:
    first, second = program(stack), program(stack)
    assert first.canonical_json(reveal_secrets=True) == second.canonical_json(reveal_secrets=True)


def test_ten_mistakes_give_ten_messages_and_no_resources(program: RunProgram) -> None:
    overrides = {
        "platform:nodes": [
            {"name": "k3s-control-01", "address": "192.0.2.51", "role": "server", "taints": ["nope"]},
            {"name": "k3s-control-02", "address": "192.0.2.52", "role": "server"},
            {"name": "k3s-control-03", "address": "192.0.2.53", "role": "agent"},
            {"name": "k3s-worker-01", "address": "192.0.2.300", "role": "agent"},
            {"name": "k3s-worker-01", "address": "192.0.2.55", "role": "agent"},
            {"name": "Worker_3", "address": "192.0.2.56", "role": "agent"},
        ],
        "platform:network": {"podCidr": "10.42.0.0/16", "serviceCidr": "10.42.0.0/24", "nodeCidrs": ["192.0.2.0/24"]},
        "platform:metallb": {"pools": [{"name": "ingress", "addresses": ["192.0.2.51/32"]}]},
        "platform:versions": {"k3s": "v1.34"},
        "platform:k3s": {"vip": {"address": "192.0.2.49"}, "firewal": "managed"},
    }
    with pytest.raises(ProgramFailed) as failed:
        program("homelab", overrides, secrets={})
    message = str(failed.value.__cause__)
    assert failed.value.registered == []
    assert message.startswith("10 configuration error(s):"), message
    assert message.split("warning(s):")[0].count("\n  - ") == 10  # warnings (e.g. unpinned host keys) follow


def test_render_writes_artefacts_without_secret_text(program: RunProgram, tmp_path: Path) -> None:
    rec = program("homelab")
    files = render(rec, tmp_path / "homelab")
    assert (tmp_path / "homelab" / "resources.json") in files
    key_lines = [line for line in TEST_SSH_KEY.splitlines() if len(line) > 20]
    for path in files:
        text = path.read_text()
        assert not any(line in text for line in key_lines), path
    listed = json.loads((tmp_path / "homelab" / "resources.json").read_text())
    assert len(listed) == len(rec.resources)
    assert any(p.suffix == ".sh" for p in files)


def test_registry_credentials_reach_no_render_file_and_no_plain_input(program: RunProgram, tmp_path: Path) -> None:
    from tests.k3s.stacks import homelab_raw

    password, token = "registry-pw-1f0e2d3c4b5a", "registry-identity-token-99887766"
    k3s = {**homelab_raw()["platform:k3s"], "registries": {"configs": {
        "registry.example.com:5000": {"auth": {"username": "ci"}}, "ghcr.io": {}, "tokens.example.com": {}}}}
    creds = {"registry.example.com:5000": {"password": password}, "tokens.example.com": {"identityToken": token}}
    rec = program("homelab", {"platform:k3s": k3s}, secrets={
        "platform:sshPrivateKey": TEST_SSH_KEY, "platform:k3sRegistryCredentials": json.dumps(creds)})
    installs = [r for r in rec if r.name.endswith("-install") and r.type == "command:remote:Command"]
    assert installs and all(r.is_secret("stdin") and password in r.inputs["stdin"] for r in installs)
    files = render(rec, tmp_path / "homelab")
    for path in files:
        text = path.read_text()
        assert password not in text and token not in text, path


def test_renders_are_identical_across_processes_with_different_hash_seeds(tmp_path: Path) -> None:
    """Runs in one process share one string-hash seed, so set or dict-of-set ordering that depends
    on it can only show up between processes: render every stack under two seeds and compare."""
    import subprocess
    import sys

    from components.offline.runner import PROJECT_ROOT

    trees = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        for stack in stack_files():
            subprocess.run(
                [sys.executable, "-m", "components.offline.render", stack, "--out", str(out)],
                cwd=PROJECT_ROOT, env={**os.environ, "PYTHONHASHSEED": seed}, check=True, capture_output=True,
            )
        trees.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert trees[0] == trees[1]
    assert any(p.name == "resources.json" for p in trees[0])


def test_component_level_config_errors_are_clean_too(program: RunProgram, tmp_path: Path) -> None:
    """Airgap files are checked when the K3s args are built: still a config error, not a traceback."""
    overrides = {"platform:k3s": {"vip": {"address": "192.0.2.49"}, "airgap": {
        "enabled": True, "binary": str(tmp_path / "missing-k3s"), "installScript": str(tmp_path / "install.sh")}}}
    with pytest.raises(ProgramFailed) as failed:
        program("homelab", overrides)
    assert type(failed.value.__cause__).__name__ == "RunError"
    assert "platform:k3s.airgap.binary" in str(failed.value.__cause__)
    assert failed.value.registered == []


# -- the two commands and the first minutes --------------------------------------------------------


def _make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import shutil

    from components.offline.runner import PROJECT_ROOT

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(["make", "--no-print-directory", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False, timeout=120)


def test_make_help_lists_every_target_with_one_line() -> None:
    import re

    from components.offline.runner import PROJECT_ROOT

    makefile = (PROJECT_ROOT / "Makefile").read_text()
    documented = re.findall(r"^## ([a-z0-9-]+): ", makefile, re.M)
    phony = {t for line in re.findall(r"^\.PHONY: (.*)$", makefile, re.M) for t in line.split()} - {"preview-cli"}
    assert phony <= set(documented), phony - set(documented)
    out = _make("help").stdout.splitlines()
    for target in documented:
        assert sum(line.split()[:1] == [target] for line in out) == 1, (target, out)


def test_make_preview_checks_for_the_cli_before_building_anything(tmp_path: Path) -> None:
    """No minute of virtualenv building before learning the CLI is missing; hints ready to paste."""
    import time

    started = time.monotonic()
    done = _make("preview", "STACK=homelab", f"VENV={tmp_path / 'venv'}", "STATE=/srv/state",
                 env={"PATH": "/usr/bin:/bin"})
    assert time.monotonic() - started < 10
    assert done.returncode == 2 and "Error 3" in done.stderr
    assert not (tmp_path / "venv").exists() and "[1/3]" not in done.stdout
    assert "  export PULUMI_BACKEND_URL=file:///srv/state PULUMI_CONFIG_PASSPHRASE=<passphrase>" in done.stdout
    assert "  pulumi stack select --create homelab" in done.stdout
