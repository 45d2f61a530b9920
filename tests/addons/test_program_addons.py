"""The add-ons inside the whole program (`__main__.py` under mocks): the issue's acceptance checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.offline.render import render
from components.offline.runner import PROJECT_ROOT, ProgramFailed, Recording
from tests.addons import schema
from tests.conftest import RunProgram, stack_files

RELEASE = "kubernetes:helm.sh/v3:Release"
HOSTPATH = {"platform:storage": {"kind": "openebs", "openebs": {"engine": "hostpath"}}}


def run(program: RunProgram, stack: str, overrides: dict[str, Any] | None = None) -> Recording:
    try:
        return program(stack, overrides)
    except ProgramFailed as failed:
        if isinstance(failed.__cause__, ImportError):  # another layer not written yet
            pytest.skip(f"the program cannot run yet: {failed.__cause__}")
        raise


def test_homelab_render_has_the_addons_and_they_conform(program: RunProgram, conformance: Path,
                                                         tmp_path: Path) -> None:
    rec = run(program, "homelab")
    files = render(rec, tmp_path / "homelab")
    helm = {p.name for p in files if p.parent.name == "helm"}
    assert {"homelab-platform-calico-operator.yaml", "homelab-platform-metallb-chart.yaml",
            "homelab-platform-storage-chart.yaml"} <= helm
    manifests = {p.name.split("-", 1)[0] for p in files if p.parent.name == "manifests"}
    assert {"Installation", "APIServer", "IPAddressPool", "L2Advertisement"} <= manifests
    found = schema.check_render_dir(tmp_path / "homelab", conformance)
    assert found.errors == [] and found.warnings == []


def fingerprints(rec: Recording) -> dict[str, str]:
    return {r.name: json.dumps([r.type, r.parent, sorted(r.dependencies), r.redacted_inputs()], sort_keys=True,
                               default=str) for r in rec}


def test_longhorn_to_hostpath_changes_host_preparation_and_storage_only(program: RunProgram) -> None:
    longhorn, hostpath = run(program, "homelab"), run(program, "homelab", HOSTPATH)
    before, after = fingerprints(longhorn), fingerprints(hostpath)
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    by_name = {r.name: r for r in [*longhorn, *hostpath]}
    storage = {name for name in changed if name.startswith("homelab-platform-storage")}
    host_preparation = {name for name in changed if by_name[name].type == "command:remote:Command"}
    vault = {name for name in changed if name.startswith("homelab-platform-vault")}  # waits for storage, uses its class
    assert storage, "the storage release did not change"
    assert host_preparation, "the host preparation did not change"
    assert changed == storage | host_preparation | vault
    assert all(by_name[name].type != RELEASE or by_name[name].inputs["chart"] == "openebs" for name in storage)


def test_gardener_stack_installs_no_cni_and_no_load_balancer(program: RunProgram) -> None:
    cleura = [s for s in stack_files() if "clusterKind: cleura" in (PROJECT_ROOT / f"Pulumi.{s}.yaml").read_text()]
    if not cleura:
        pytest.skip("no clusterKind: cleura stack in the repository")
    rec = run(program, cleura[0])
    types = {r.type for r in rec if "-platform-vault" not in r.name}  # Vault runs on both kinds (tests/vault)
    assert "platform:storage:Cinder" in types
    assert not any(t.startswith(("platform:calico", "platform:metallb", "kubernetes:helm.sh")) for t in types)
