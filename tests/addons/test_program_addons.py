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
    assert {"platform-calico-operator.yaml", "platform-metallb-chart.yaml",
            "platform-storage-chart.yaml", "platform-ingress-chart.yaml",
            "platform-certs-chart.yaml"} <= helm
    manifests = {p.name.split("-", 1)[0] for p in files if p.parent.name == "manifests"}
    assert {"Installation", "APIServer", "IPAddressPool", "L2Advertisement", "ClusterIssuer", "Certificate",
            "Deployment"} <= manifests
    found = schema.check_render_dir(tmp_path / "homelab", conformance)
    assert found.errors == [] and found.warnings == []


def fingerprints(rec: Recording) -> dict[str, str]:
    return {r.name: json.dumps([r.type, r.parent, sorted(r.dependencies), r.redacted_inputs()], sort_keys=True,
                               default=str) for r in rec}


def _without_dependencies(rec: Recording, name: str) -> str:
    r = rec.named(name)
    return json.dumps([r.type, r.parent, r.redacted_inputs()], sort_keys=True, default=str)


def test_longhorn_to_hostpath_changes_host_preparation_and_storage_only(program: RunProgram) -> None:
    longhorn, hostpath = run(program, "homelab"), run(program, "homelab", HOSTPATH)
    before, after = fingerprints(longhorn), fingerprints(hostpath)
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    by_name = {r.name: r for r in [*longhorn, *hostpath]}
    # The storage component, and the snapshot class of its CSI driver (hostpath has none).
    storage = {name for name in changed if name.startswith(("platform-storage",
                                                             "platform-snapshots-class"))}
    host_preparation = {name for name in changed if by_name[name].type == "command:remote:Command"}
    vault = {name for name in changed if name.startswith("platform-vault")}  # waits for storage, uses its class
    assert storage, "the storage release did not change"
    assert host_preparation, "the host preparation did not change"
    # Argo CD waits for the storage component, whose URN names the engine: only its dependencies move.
    argocd = {name for name in changed if name.startswith("platform-argocd")}
    assert all(_without_dependencies(longhorn, name) == _without_dependencies(hostpath, name) for name in argocd)
    assert changed == storage | host_preparation | argocd | vault
    assert all(by_name[name].type != RELEASE or by_name[name].inputs["chart"] == "openebs" for name in storage)


def test_gardener_stack_installs_no_cni_and_no_load_balancer(program: RunProgram) -> None:
    cleura = [s for s in stack_files() if "clusterKind: cleura" in (PROJECT_ROOT / f"Pulumi.{s}.yaml").read_text()]
    if not cleura:
        pytest.skip("no clusterKind: cleura stack in the repository")
    rec = run(program, cleura[0])
    # Argo CD and Vault come on both kinds (tests/argocd, tests/vault).
    types = {r.type for r in rec if not r.name.startswith(("platform-argocd", "platform-vault"))}
    assert "platform:storage:Cinder" in types
    assert not any(t.startswith(("platform:calico", "platform:metallb", "platform:snapshots")) for t in types)
    charts = sorted(r.inputs["chart"] for r in rec.of_type(RELEASE))
    assert charts == ["argo-cd", "cert-manager", "traefik", "vault", "vault"]  # Traefik behind Octavia


def test_in_cluster_objects_are_deleted_with_the_cluster(program: RunProgram) -> None:
    # Destroying the cluster skips every object inside it (Longhorn's pre-delete Job, webhooks,
    # finalizers) instead of waiting on an API that is about to disappear.
    rec = run(program, "homelab")
    (cluster,) = [r for r in rec if r.type == "platform:k3s:Cluster" or r.type.endswith(":K3sCluster")] or [None]
    in_cluster = [r for r in rec if r.type.startswith("kubernetes:") and r.type != "pulumi:providers:kubernetes"]
    assert in_cluster
    targets = {r.options["deleted_with"] for r in in_cluster}
    assert len(targets) == 1 and None not in targets, targets
    (target,) = targets
    assert cluster is None or target == cluster.urn
    assert rec.by_urn(target).type.startswith("platform:k3s")
