"""Renaming `platform:clusterName` re-registers nothing, and stacks from before migrate in place.

Every case runs the real program under mocks: K3s (`homelab`), a Cleura shoot (`cleura`) and a
cluster the stack does not build (`homelab` as clusterKind existing). "Before" is the program as
it was when names followed clusterName (`legacy_program`, the old `__main__` wiring around
today's components); `components.offline.migration` applies the engine's alias rules to tell what
`pulumi up` would create, delete or replace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import identity
from components.config import load_stack_config
from components.gardener.cluster import ShootCluster
from components.k3s import K3sCluster, K3sClusterArgs
from components.offline.migration import engine_urns, migrate, split_urn
from components.offline.runner import Recording, cli_config, run_under_mocks
from components.platform import PlatformLayer
from tests.conftest import RunProgram, secrets_for
from tests.test_existing_cluster import EXISTING, KUBECONFIG

RENAMED = "zz-renamed"
# (case id, stack file, overrides, secrets or None for the stack's own)
CASES: list[tuple[str, str, dict[str, Any], dict[str, str] | None]] = [
    ("k3s", "homelab", {}, None),
    ("cleura", "cleura", {}, None),
    # The stack file's clusterName is "cleura", the shoot component's fixed name: a stack whose
    # clusterName differs (review stacks use review-<iid>) is the case that needs the aliases.
    ("cleura-named", "cleura", {"platform:clusterName": "sto2-prod"}, None),
    ("existing", "homelab", EXISTING, KUBECONFIG),
]
IDS = [c[0] for c in CASES]
# The layouts stacks were deployed with: the K3s component was first named after clusterName, then
# fixed ("k3s") while the provider and the layer still followed clusterName.
MIGRATIONS = [(*case, "<clusterName>") for case in CASES] + [(*CASES[0], identity.K3S)]
MIGRATION_IDS = [f"{c[0]}-from-{c[-1]}" for c in MIGRATIONS]
REMOTE_COMPONENTS = ("kubernetes:helm.sh/v4:Chart", "kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml/v2:ConfigGroup")


def _secrets(stack: str, secrets: dict[str, str] | None) -> dict[str, str]:
    return secrets_for(stack) if secrets is None else secrets


def legacy_program(stack: str, overrides: Mapping[str, Any], secrets: Mapping[str, str],
                   k3s_name: str = "<clusterName>") -> Recording:
    """The program as it was before the fixed names: everything named after clusterName."""

    def build() -> None:
        cfg = load_stack_config()
        cluster: K3sCluster | ShootCluster | None = None
        if cfg.cluster_kind == "k3s":
            name = cfg.cluster_name if k3s_name == "<clusterName>" else k3s_name
            cluster = K3sCluster(name, K3sClusterArgs.from_config(cfg))
        elif cfg.cluster_kind == "cleura":
            assert cfg.cleura is not None
            cluster = ShootCluster(cfg.cluster_name, cfg.cleura)
        kubeconfig: pulumi.Input[str] = (
            cluster.kubeconfig if cluster is not None
            else pulumi.Output.secret(cfg.existing.kubeconfig.value if cfg.existing is not None else ""))
        provider = k8s.Provider(f"{cfg.cluster_name}-k8s", kubeconfig=kubeconfig,
                                delete_unreachable=cfg.delete_unreachable)
        PlatformLayer(f"{cfg.cluster_name}-platform", cfg,
                      opts=pulumi.ResourceOptions(providers=[provider], deleted_with=cluster))

    config = cli_config(stack, overrides)
    config.update(secrets)
    return run_under_mocks(build, stack=stack, config=config, secret_keys=sorted(secrets))


def _run(program: RunProgram, stack: str, overrides: Mapping[str, Any], secrets: dict[str, str] | None,
         cluster_name: str | None = None) -> Recording:
    extra = {"platform:clusterName": cluster_name} if cluster_name else {}
    return program(stack, {**overrides, **extra}, _secrets(stack, secrets))


def _without_aliases(rec: Recording) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(rec.canonical_json())
    return [{k: v for k, v in e.items() if k != "aliases"} for e in entries]


def _cluster_name(stack: str, overrides: Mapping[str, Any]) -> str:
    return str(cli_config(stack, overrides)["platform:clusterName"])


@pytest.mark.parametrize(("case", "stack", "overrides", "secrets"), CASES, ids=IDS)
def test_renaming_the_cluster_registers_the_same_urns_and_inputs(
        program: RunProgram, case: str, stack: str, overrides: dict[str, Any], secrets: dict[str, str] | None) -> None:
    before = _run(program, stack, overrides, secrets)
    after = _run(program, stack, overrides, secrets, cluster_name=RENAMED)
    urns_before, urns_after = set(engine_urns(before).values()), set(engine_urns(after).values())
    assert urns_before == urns_after  # no create, no delete, no replacement for a new name
    assert not [u for u in urns_after if RENAMED in u]
    # Nothing registered changes either but the aliases (old names, which do follow clusterName)
    # and the kubeconfig's names (a secret input of the provider: an in-place update, since
    # pulumi-kubernetes replaces a provider only for another cluster entry, server and CA).
    assert _without_aliases(before) == _without_aliases(after)
    changed = {r.name for r, s in zip(sorted(before, key=lambda r: r.urn), sorted(after, key=lambda r: r.urn),
                                      strict=True) if r.inputs != s.inputs}
    assert changed <= {identity.PROVIDER}
    assert after.stack_outputs["clusterName"] == RENAMED


@pytest.mark.parametrize(("case", "stack", "overrides", "secrets", "k3s_name"), MIGRATIONS, ids=MIGRATION_IDS)
def test_a_stack_from_before_the_fixed_names_migrates_without_create_delete_or_replace(
        program: RunProgram, case: str, stack: str, overrides: dict[str, Any], secrets: dict[str, str] | None,
        k3s_name: str) -> None:
    old = legacy_program(stack, overrides, _secrets(stack, secrets), k3s_name)
    new = _run(program, stack, overrides, secrets)
    result = migrate(old, new)
    assert result.conflicts == ()
    assert result.deleted == ()  # every old URN (children, grandchildren, the provider) is taken over
    assert result.created == ()
    assert result.provider_changed == ()  # the aliased provider counts as the same provider
    cluster_name = _cluster_name(stack, overrides)
    old_names = {split_urn(u)[3] for u in result.renamed.values()}
    assert {f"{cluster_name}-k8s", f"{cluster_name}-platform"} <= old_names
    assert all(name.startswith(cluster_name) for name in old_names), old_names
    # What the stack had is what it has: the same number of resources, matched one to one.
    assert len(old.resources) == len(new.resources) == len(result.taken_over)
    # Only the top-level resources carry old names (the K3s steps too, explicitly); the engine
    # derives every other child's. (pulumi-kubernetes adds type aliases of its own to many kinds.)
    aliased = {r.name for r in new if any("name" in a or "urn" in a for a in r.aliases)}
    assert aliased <= {identity.K3S, identity.SHOOT, identity.PROVIDER, identity.LAYER} | {
        r.name for r in new if r.parent and r.parent.endswith(f"::{identity.K3S}")}


def test_the_migration_check_sees_the_replacement_a_rename_made_before(program: RunProgram) -> None:
    """Without the fixed names a rename deleted and created everything: the check must say so."""
    secrets = secrets_for("homelab")
    old = legacy_program("homelab", {}, secrets)
    renamed = legacy_program("homelab", {"platform:clusterName": RENAMED}, secrets)
    result = migrate(old, renamed)
    deleted = {split_urn(u)[3] for u in result.deleted}
    assert {"homelab-k8s", "homelab-platform", "homelab-platform-storage-chart",
            "homelab-platform-vault-ha"} <= deleted
    assert len(result.created) == len(result.deleted) == len(old.resources)
    # ...and the new layout under a new clusterName no longer matches the old one either: the
    # aliases hold only while the old prefix is the current clusterName (README, "Renaming").
    late = migrate(old, program("homelab", {"platform:clusterName": RENAMED}, secrets))
    assert late.deleted and late.provider_changed == ()


def test_a_child_named_after_its_parent_follows_the_parent_alias_and_others_do_not() -> None:
    """The engine's inheritance rule, as `migration` models it, on a three-level tree."""

    def tree(top: str, child: str, grandchild: str, aliases: list[pulumi.Alias] | None = None) -> None:
        parent = pulumi.ComponentResource("test:index:Top", top, None, pulumi.ResourceOptions(aliases=aliases))
        middle = pulumi.ComponentResource("test:index:Middle", child, None, pulumi.ResourceOptions(parent=parent))
        pulumi.CustomResource("test:index:Leaf", grandchild, {}, pulumi.ResourceOptions(parent=middle))

    old = run_under_mocks(lambda: tree("old", "old-a", "old-a-b"))
    followed = migrate(old, run_under_mocks(lambda: tree("new", "new-a", "new-a-b", [pulumi.Alias(name="old")])))
    assert (followed.deleted, followed.created) == ((), ())
    assert sorted(split_urn(u)[3] for u in followed.renamed) == ["new", "new-a", "new-a-b"]
    not_prefixed = migrate(old, run_under_mocks(lambda: tree("new", "a-new", "a-new-b", [pulumi.Alias(name="old")])))
    assert sorted(split_urn(u)[3] for u in not_prefixed.deleted) == ["old-a", "old-a-b"]
    unaliased = migrate(old, run_under_mocks(lambda: tree("new", "new-a", "new-a-b")))
    assert len(unaliased.deleted) == 3


@pytest.mark.parametrize(("case", "stack", "overrides", "secrets"), CASES, ids=IDS)
def test_every_child_is_named_after_its_parent_and_remote_components_keep_that_prefix(
        program: RunProgram, case: str, stack: str, overrides: dict[str, Any], secrets: dict[str, str] | None) -> None:
    """The inheritance the migration relies on: also for what remote components register in the
    provider (not visible under mocks), named ``<component><sep><object>`` unless a resourcePrefix is set."""
    rec = _run(program, stack, overrides, secrets)
    names = {r.urn: r.name for r in rec}
    orphans = [r.name for r in rec if r.parent in names and not r.name.startswith(f"{names[r.parent]}-")]
    assert orphans == []
    tops = {r.name for r in rec if r.parent not in names}
    assert tops <= {identity.K3S, identity.SHOOT, identity.PROVIDER, identity.LAYER}
    remote = [r for r in rec if r.type in REMOTE_COMPONENTS]
    assert all("resourcePrefix" not in r.inputs for r in remote)
    if case == "k3s":
        assert remote and {r.type for r in remote} == set(REMOTE_COMPONENTS)
        (crds,) = rec.of_type("kubernetes:helm.sh/v4:Chart")
        assert crds.inputs["name"] == "calico-crds"  # the release name no longer defaults to the resource name


@pytest.mark.parametrize("cluster_name", ["cleura", "sto2-prod", RENAMED])
def test_the_shoot_keeps_its_cleura_name_and_ownership_marker_whatever_the_cluster_name(
        program: RunProgram, cluster_name: str) -> None:
    rec = program("cleura", {"platform:clusterName": cluster_name})
    (shoot,) = rec.of_type("pulumi-python:dynamic/cleura:Shoot")
    (claim,) = rec.of_type("pulumi-python:dynamic/cleura:ShootClaim")
    urns = engine_urns(rec)
    assert shoot.name == f"{identity.SHOOT}-shoot"
    assert shoot.inputs["name"] == claim.inputs["name"] == "platform-sto2"  # platform:cleura.name
    assert shoot.inputs["owner"] == claim.inputs["owner"] == "platform/cleura/cleura"
    assert shoot.inputs["resource_urn"] == urns[shoot.urn]  # progress lands on the shoot's own row
    expected = [] if cluster_name == identity.SHOOT else [{"name": cluster_name}]
    assert [a for r in rec if r.name == identity.SHOOT for a in r.aliases] == expected
