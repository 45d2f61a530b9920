"""`ShootCluster` wiring under mocks: type tokens, parents, dependencies, options, secrets."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from components.gardener.cluster import ShootCluster
from components.gardener.marker import stamp_create_body
from components.gardener.spec import CleuraConfig, create_body, create_body_from_inputs, parse_cleura
from components.problems import Problems

from .conftest import PASSWORD, USER, spec
from .engine import register

ROOT = Path(__file__).resolve().parents[2]


def stack_config() -> CleuraConfig:
    raw = yaml.safe_load((ROOT / "Pulumi.cleura.yaml").read_text())["config"]["platform:cleura"]
    cfg = parse_cleura(raw, "platform:cleura", Problems())
    assert cfg is not None
    return cfg


def test_shoot_cluster_wires_bootstrap_shoot_and_secret_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    # Credentials present in the program's environment must still never reach the state.
    monkeypatch.setenv("CLEURA_API_USERNAME", USER)
    monkeypatch.setenv("CLEURA_API_PASSWORD", PASSWORD)
    monkeypatch.setenv("CLEURA_API_TOKEN", "tok-should-not-leak")
    cfg = stack_config()
    reg = register(lambda: ShootCluster("cleura", cfg).kubeconfig)
    types = [r.type for r in reg.resources]
    # Bootstrap and claim have no order between them (registered concurrently).
    assert sorted(types) == sorted(["platform:gardener:ShootCluster", "pulumi-python:dynamic/cleura:ProjectBootstrap",
                                    "pulumi-python:dynamic/cleura:ShootClaim", "pulumi-python:dynamic/cleura:Shoot",
                                    "pulumi-python:dynamic/cleura:ShootKubeconfig"])
    component, bootstrap, claim = reg.one("ShootCluster"), reg.one(":ProjectBootstrap"), reg.one(":ShootClaim")
    shoot, kubeconfig = reg.one(":Shoot"), reg.one(":ShootKubeconfig")
    assert {bootstrap.parent, claim.parent, shoot.parent, kubeconfig.parent} == {component.urn}
    assert bootstrap.urn in shoot.dependencies and shoot.urn in kubeconfig.dependencies
    # The claim is in state before the shoot's create starts, and is deleted after it.
    assert claim.urn in shoot.dependencies
    assert claim.inputs["owner"] == shoot.inputs["owner"] == "platform/gardener-test/cleura"
    # Delete-before-replace is the provider's per-diff decision (name reused), never forced by an option.
    assert not shoot.options["delete_before_replace"] and not kubeconfig.options["delete_before_replace"]
    assert kubeconfig.inputs["shoot_id"] is not None
    assert "kubeconfig" in kubeconfig.options["additional_secret_outputs"]
    assert reg.result["secret"] is True  # ShootCluster.kubeconfig is a secret Output
    for r in (bootstrap, shoot, kubeconfig):
        assert r.is_secret("__provider")
        blob = base64.b64decode(r.inputs["__provider"])
        for secret in (USER, PASSWORD, "tok-should-not-leak"):
            assert secret.encode() not in blob
    assert create_body_from_inputs(shoot.inputs) == stamp_create_body(create_body(cfg.shoot), shoot.inputs["owner"])
    assert kubeconfig.inputs["expiration_seconds"] == cfg.kubeconfig_expiration_seconds
    assert kubeconfig.inputs["shoot_name"] == cfg.shoot.name


def test_bootstrap_can_be_left_out() -> None:
    cfg = replace(stack_config(), bootstrap_project=False, shoot=spec())
    reg = register(lambda: ShootCluster("c", cfg).name)
    assert [r.type.rsplit(":", 1)[-1] for r in reg.resources] == ["ShootCluster", "ShootClaim", "Shoot",
                                                                  "ShootKubeconfig"]
    assert reg.result["value"] == "demo"
    adopted = register(lambda: ShootCluster("c", replace(cfg, adopt="observe")).name)
    assert "ShootClaim" not in [r.type.rsplit(":", 1)[-1] for r in adopted.resources]  # never deletes via a claim


def test_cloud_may_be_left_unset() -> None:
    # `cloud` is optional (CLEURA_CLOUD or public); the kubeconfig still reads `shoot.cloud`, so the
    # attribute must exist even though `ShootSpec.to_inputs` drops the None.
    cfg = replace(stack_config(), shoot=spec(cloud=None))
    reg = register(lambda: ShootCluster("c", cfg).name)
    assert sorted(r.type.rsplit(":", 1)[-1] for r in reg.resources) == ["ProjectBootstrap", "Shoot", "ShootClaim",
                                                                       "ShootCluster", "ShootKubeconfig"]
    assert reg.one(":Shoot").inputs.get("cloud") is None


def test_stack_waits_at_least_the_references_60_minutes() -> None:
    # Reference 6.4: overall timeout >= 60 min per wait (a first create alone can take 10-15 min,
    # deletions of clusters with load balancers and volumes longer).
    assert min(stack_config().timeouts.to_inputs().values()) >= 3600
