"""`clusterKind: existing`: the platform layer on a cluster the stack neither builds nor deletes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.config.existing import kubeconfig_problems
from components.offline.render import THROWAWAY_KUBECONFIG
from components.offline.runner import ProgramFailed, Recording
from tests.conftest import RunProgram

# The homelab file turned into an existing-cluster stack: no nodes, SSH, K3s or Calico; its
# MetalLB pools, ingress, certificates and Argo CD stay.
EXISTING: dict[str, Any] = {
    "platform:clusterKind": "existing",
    "platform:nodes": None, "platform:ssh": None, "platform:k3s": None, "platform:calico": None,
    "platform:network": None, "platform:versions": None,
    "platform:storage": {"kind": "provided", "provided": {"storageClass": "standard"}},
}
KUBECONFIG = {"platform:kubeconfig": THROWAWAY_KUBECONFIG.replace("offline-render-placeholder", "s3cr3t-token-x")}


def run(program: RunProgram, overrides: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None) -> Recording:
    return program("homelab", {**EXISTING, **(overrides or {})}, KUBECONFIG if secrets is None else secrets)


def test_no_cluster_is_built_and_the_provider_uses_the_kubeconfig_secret(program: RunProgram) -> None:
    rec = run(program)
    types = {r.type for r in rec}
    built = ("platform:k3s", "command:remote", "platform:gardener", "platform:calico")
    assert not [t for t in types if t.startswith(built)]
    (provider,) = rec.of_type("pulumi:providers:kubernetes")
    assert provider.is_secret("kubeconfig")
    assert "s3cr3t-token-x" not in rec.canonical_json()
    assert provider.inputs["deleteUnreachable"] in (False, "false")
    assert {"platform:metallb:MetalLB", "platform:ingress:Traefik", "platform:storage:Provided"} <= types


def test_the_cluster_default_class_is_read_and_checked_never_created(program: RunProgram) -> None:
    from components.storage import check_cluster_class

    rec = run(program)
    assert not rec.of_type("kubernetes:storage.k8s.io/v1:StorageClass")  # only read (StorageClass.get)
    assert rec.of_type("platform:storage:Provided")
    default = {"storageclass.kubernetes.io/is-default-class": "true"}
    key = "platform:storage.provided"
    check_cluster_class(key, "standard", None, "the cluster's", "rancher.io/local-path", default)
    with pytest.raises(ValueError, match=re.escape(f"{key}.storageClass: 'standard' is not the cluster's")):
        check_cluster_class(key, "standard", None, "the cluster's", "x.csi", {})
    with pytest.raises(ValueError, match=re.escape(f"{key}.provisioner")):
        check_cluster_class(key, "standard", "ebs.csi.aws.com", "the cluster's", "x.csi", default)


@pytest.mark.parametrize(("text", "why"), [
    ("ssh-ed25519 AAAAC3Nza public key", "is not a kubeconfig"),
    ("apiVersion: v1\nkind: Config\ncurrent-context: nope\ncontexts: []\n", "names no context"),
    (THROWAWAY_KUBECONFIG.replace("https://", "http://"), "over https:// only"),
    (THROWAWAY_KUBECONFIG.replace("{token: offline-render-placeholder}", "{client-key: /home/me/.kube/key.pem}"),
     "refers to files on this machine"),
])
def test_a_wrong_kubeconfig_is_named_without_echoing_it(program: RunProgram, text: str, why: str) -> None:
    with pytest.raises(ProgramFailed) as failed:
        run(program, secrets={"platform:kubeconfig": text})
    message = str(failed.value.__cause__)
    assert "platform:kubeconfig" in message and why in message
    assert failed.value.registered == []
    assert "AAAAC3Nza" not in message and "/home/me" not in message
    assert kubeconfig_problems(text)[0]


def test_the_kubeconfig_is_required_and_must_be_secret(program: RunProgram) -> None:
    with pytest.raises(ProgramFailed) as failed:
        run(program, secrets={})
    assert "platform:kubeconfig: is required for clusterKind 'existing'" in str(failed.value.__cause__)


def test_what_an_existing_cluster_does_not_take_is_named(program: RunProgram) -> None:
    with pytest.raises(ProgramFailed) as failed:
        run(program, {"platform:calico": {"enabled": True}, "platform:nodes": [{"name": "a", "address": "192.0.2.9"}]})
    message = str(failed.value.__cause__)
    assert ("platform:calico: does not apply to clusterKind 'existing' (an existing cluster brings its own CNI)"
            in message)
    assert "platform:nodes: does not apply to clusterKind 'existing'" in message


def test_a_kubeconfig_on_a_stack_that_builds_its_cluster_is_rejected(program: RunProgram) -> None:
    with pytest.raises(ProgramFailed) as failed:
        program("homelab", None, {**KUBECONFIG, "platform:sshPrivateKey": "x"})
    assert "platform:kubeconfig: applies only to clusterKind 'existing'" in str(failed.value.__cause__)


def test_argocd_ha_on_an_existing_cluster_needs_the_declared_node_count(program: RunProgram) -> None:
    argocd = {"ha": True, "gitops": {"repoUrl": "https://git.example.com/platform/gitops.git"}}
    with pytest.raises(ProgramFailed):
        run(program, {"platform:argocd": argocd})
    rec = run(program, {"platform:argocd": argocd, "platform:existing": {"schedulableNodes": 3}})
    assert rec.of_type("platform:argocd:ArgoCD")
