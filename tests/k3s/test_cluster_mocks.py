"""The registered graph under mocks: order, parallelism, secrets, teardown."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from components.k3s.plan import install_plan
from components.offline.runner import Recording, Resource

from .mockrun import ClusterRun, record_cluster
from .stacks import S3_SECRET, SSH_KEY, homelab_args, rich_args, sized_args

COMMAND = "command:remote:Command"


def commands(rec: Recording) -> dict[str, Resource]:
    return {r.name: r for r in rec if r.type.startswith("command:remote:")}


def step_deps(rec: Recording, res: Resource) -> set[str]:
    """Names of the remote steps `res` directly depends on (tokens and the parent excluded)."""
    by_urn = {r.urn: r for r in rec}
    names = {by_urn[u].name for u in res.dependencies if u in by_urn}
    return {n for n in names if by_urn_name(rec, n).type.startswith("command:remote:")}


def by_urn_name(rec: Recording, name: str) -> Resource:
    return rec.named(name)


def deletion_order(rec: Recording) -> list[str]:
    """The order Pulumi deletes the remote steps: a resource only after everything that depends on it."""
    cmds = commands(rec)
    dependents: dict[str, set[str]] = {name: set() for name in cmds}
    for name, res in cmds.items():
        for dep in step_deps(rec, res):
            dependents[dep].add(name)
    order: list[str] = []
    remaining = dict(dependents)
    while remaining:
        ready = sorted(n for n, ds in remaining.items() if not ds & set(remaining))
        assert ready, "cycle in the step graph"
        order.extend(ready)
        for n in ready:
            del remaining[n]
    return order


@pytest.fixture(scope="module")
def homelab() -> ClusterRun:
    return record_cluster(homelab_args(), name="homelab")


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> ClusterRun:
    return record_cluster(rich_args(tmp_path_factory.mktemp("airgap")), name="rich")


def test_component_type_and_every_child_parented(homelab: ClusterRun) -> None:
    rec = homelab.recording
    component = rec.named("homelab")
    assert component.type == "platform:k3s:Cluster"
    assert all(r.parent == component.urn for r in rec if r is not component)


def test_servers_join_one_at_a_time_in_a_chain(homelab: ClusterRun) -> None:
    rec = homelab.recording
    servers = ["k3s-control-01", "k3s-control-02", "k3s-control-03"]
    assert step_deps(rec, rec.named("homelab-k3s-control-01-install")) == {
        "homelab-preflight", "homelab-k3s-control-01-prepare"}
    # server 1, then the CA hash for the secure join token, then each later server
    assert step_deps(rec, rec.named("homelab-ca-hash")) == {"homelab-k3s-control-01-install"}
    for previous, server in itertools.pairwise(servers):
        before = "homelab-ca-hash" if previous == servers[0] else f"homelab-{previous}-install"
        assert step_deps(rec, rec.named(f"homelab-{server}-install")) == {
            before, "homelab-ca-hash", f"homelab-{server}-prepare"}
    assert step_deps(rec, rec.named("homelab-api-ready")) == {"homelab-k3s-control-03-install"}


def test_agents_depend_only_on_the_api_and_their_own_host(homelab: ClusterRun) -> None:
    rec = homelab.recording
    agents = ["k3s-worker-01", "k3s-worker-02", "k3s-worker-03"]
    for agent in agents:
        install = rec.named(f"homelab-{agent}-install")
        assert step_deps(rec, install) == {f"homelab-{agent}-node", "homelab-ca-hash"}
        assert {"homelab-api-ready", f"homelab-{agent}-prepare"} <= step_deps(rec, rec.named(f"homelab-{agent}-node"))
        # the default k3s.agentBatchSize of 1: each agent waits for the one before (never all at once)
        index = agents.index(agent)
        if index:
            assert rec.depends_on(rec.named(f"homelab-{agent}-node"), rec.named(f"homelab-{agents[index - 1]}-member"))
        assert step_deps(rec, rec.named(f"homelab-{agent}-member")) == {f"homelab-{agent}-install"}
    assert step_deps(rec, rec.named("homelab-kubeconfig")) == {
        "homelab-api-ready", *(f"homelab-{a}-member" for a in agents)}


def test_registered_graph_is_exactly_the_plan(rich: ClusterRun, tmp_path: Path) -> None:
    rec = rich.recording
    plan = install_plan(rich_args(tmp_path))
    assert {f"rich-{s.key}" for s in plan} == set(commands(rec))
    for step in plan:
        assert step_deps(rec, rec.named(f"rich-{step.key}")) == {f"rich-{k}" for k in step.after}


def test_airgap_stages_artefacts_before_each_install(rich: ClusterRun) -> None:
    rec = rich.recording
    copies = [r for r in rec if r.type == "command:remote:CopyToRemote"]
    assert len(copies) == 8 * 3
    install = rec.named("rich-node-a1-node")  # the agent's install runs right after it
    assert {"rich-node-a1-stage-binary", "rich-node-a1-stage-installer", "rich-node-a1-stage-images"} <= step_deps(
        rec, install)


def test_airgap_uploads_of_a_non_root_ssh_user_go_to_its_home(rich: ClusterRun) -> None:
    # SFTP runs as the SSH user without sudo: only root can write under /var/lib.
    rec = rich.recording
    assert rec.named("rich-node-a3-stage-binary").inputs["remotePath"] == ".platform-k3s-staging/k3s"
    assert rec.named("rich-node-a1-stage-binary").inputs["remotePath"] == "/var/lib/platform/k3s/staging/k3s"
    assert rec.named("rich-node-a3-stage-images").inputs["remotePath"] == (
        ".platform-k3s-staging/platform-airgap-images.tar.zst")


def test_kubeconfig_is_a_secret_output_read_with_logging_off(homelab: ClusterRun) -> None:
    assert "kubeconfig" in homelab.secret_outputs
    kubeconfig = homelab.outputs["kubeconfig"]
    assert "server: https://192.0.2.49:6443" in kubeconfig and "current-context: homelab" in kubeconfig
    fetch = homelab.recording.named("homelab-kubeconfig")
    assert fetch.inputs["logging"] == "none"
    assert {"stdout", "stderr"} <= set(fetch.options["additional_secret_outputs"])
    assert "delete" not in fetch.inputs  # no delete: the old stdout is never sent back to a host


def test_config_with_the_tokens_travels_only_on_secret_stdin(rich: ClusterRun) -> None:
    rec = rich.recording
    for res in rec.of_type(COMMAND):
        if res.name.endswith("-install"):
            assert res.is_secret("stdin")
            stdin = res.inputs["stdin"]
            assert "\ntoken: " in stdin
            is_server = "-node-s" in res.name
            assert ("etcd-s3-secret-key: " in stdin) == is_server  # agents never get the S3 key
            assert ("agent-token: " in stdin) == is_server
        else:
            assert "stdin" not in res.inputs
        assert res.inputs.get("addPreviousOutputInEnv") is False
        assert "environment" not in res.inputs


def test_no_secret_value_appears_in_any_non_secret_input(rich: ClusterRun) -> None:
    rec = rich.recording
    tokens = {r.name: r for r in rec if r.type.startswith("random:")}
    assert len(tokens) == 2
    stdin = next(r for r in rec if r.name == "rich-node-s1-install").inputs["stdin"]
    token_lines = [line.split(": ", 1)[1] for line in stdin.splitlines() if line.startswith(("token:", "agent-token:"))]
    key_lines = [line for line in SSH_KEY.splitlines() if len(line) > 20]
    secret_texts = [*token_lines, S3_SECRET, *key_lines]
    assert len(token_lines) == 2
    for res in rec:
        plain = res.redacted_inputs()
        flat = repr(plain)
        for text in secret_texts:
            assert text not in flat, f"{res.name} carries a secret in a non-secret input"


def test_ssh_settings_come_from_config(rich: ClusterRun) -> None:
    rec = rich.recording
    conn = rec.named("rich-node-a3-prepare").inputs["connection"]
    assert (conn["host"], conn["user"], conn["port"]) == ("192.0.2.15", "deploy", 2222)
    assert conn["proxy"]["host"] == "bastion.example.com" and conn["proxy"]["user"] == "jump"
    assert conn["proxy"]["hostKey"].startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHb4")  # the bastion is pinned too
    assert rec.named("rich-node-s1-prepare").inputs["connection"]["hostKey"].startswith("ssh-ed25519 ")
    assert "hostKey" not in rec.named("rich-node-s2-prepare").inputs["connection"]
    assert rec.named("rich-node-s1-prepare").is_secret("connection")


def test_removal_safety_options(homelab: ClusterRun) -> None:
    for res in commands(homelab.recording).values():
        if res.name.endswith(("-install", "-member")):
            assert res.options["delete_before_replace"]
            assert res.inputs["delete"].startswith("#!/usr/bin/env bash")
        assert res.inputs["update"] == res.inputs["create"]  # changes are updates, never replacements


def test_tokens_are_never_regenerated_by_code_changes(homelab: ClusterRun) -> None:
    for res in homelab.recording:
        if res.type.startswith("random:"):
            assert {"length", "special", "upper"} <= set(res.options["ignore_changes"])
            assert res.inputs["special"] is False and res.inputs["upper"] is False


def test_teardown_is_the_reverse_of_creation() -> None:
    rec = record_cluster(sized_args(5, 4), name="big").recording
    order = deletion_order(rec)
    position = {name: i for i, name in enumerate(order)}
    servers = [f"big-node-s{i}-install" for i in range(1, 6)]
    agent_steps = [n for n in order if "-node-a" in n and not n.endswith("-prepare")]
    # agents (members drained first, then uninstalled) before any server
    assert max(position[a] for a in agent_steps) < min(position[s] for s in servers)
    for agent in range(1, 5):
        assert position[f"big-node-a{agent}-member"] < position[f"big-node-a{agent}-install"]
    # servers n, n-1, ..., 2, then server 1
    assert [position[s] for s in reversed(servers)] == sorted(position[s] for s in servers)
    assert position["big-kubeconfig"] == 0


def test_agent_count_does_not_lengthen_any_server_dependency() -> None:
    small = record_cluster(sized_args(3, 1), name="c").recording
    large = record_cluster(sized_args(3, 40), name="c").recording
    for server in ("node-s1", "node-s2", "node-s3"):
        assert step_deps(small, small.named(f"c-{server}-install")) == step_deps(
            large, large.named(f"c-{server}-install"))


def test_agent_removal_chain_is_drain_stop_delete_node_uninstall(homelab: ClusterRun) -> None:
    """Pulumi deletes dependents first, so the chain member -> install -> node -> prepare runs backwards."""
    rec = homelab.recording
    agent = "k3s-worker-01"
    member, install = rec.named(f"homelab-{agent}-member"), rec.named(f"homelab-{agent}-install")
    node, prepare = rec.named(f"homelab-{agent}-node"), rec.named(f"homelab-{agent}-prepare")
    assert rec.depends_on(member, install) and rec.depends_on(install, node) and rec.depends_on(node, prepare)
    assert "drain" in member.inputs["delete"] and "delete node" not in member.inputs["delete"]
    assert "ROLE=agent" in install.inputs["delete"] and "stop_service" in install.inputs["delete"]
    assert "kubectl_local delete node" in node.inputs["delete"]
    assert node.inputs["connection"]["host"] == "192.0.2.51"  # on the first server
    assert "k3s-agent-uninstall.sh" in prepare.inputs["delete"]
    # servers keep their prepare step without a delete: their install's delete does the whole removal
    assert not rec.named("homelab-k3s-control-02-prepare").inputs.get("delete")


def test_the_cluster_token_is_a_secret_output_for_restores(homelab: ClusterRun) -> None:
    assert "token" in homelab.secret_outputs
