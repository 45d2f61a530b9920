"""The install graph as data: serial servers, parallel agents, a critical path that ignores agents."""

from __future__ import annotations

import dataclasses

import pytest

from components.k3s.plan import critical_path, describe, install_plan

from .stacks import sized_args


@pytest.mark.parametrize(("servers", "agents"), [(1, 0), (3, 0), (3, 3), (3, 30), (5, 300)])
def test_critical_path_is_servers_plus_a_constant(servers: int, agents: int) -> None:
    # with every agent in one batch (k3s.agentBatchSize >= agents); the default of 1 is serial
    args = dataclasses.replace(sized_args(servers, agents), agent_batch_size=max(1, agents))
    path = critical_path(install_plan(args))
    assert len(path) == servers + (7 if agents else 4)
    installs = [k for k in path if k.endswith("-install")]
    assert installs[:servers] == [f"node-s{i}-install" for i in range(1, servers + 1)]


def test_every_dependency_points_backwards() -> None:
    seen: set[str] = set()
    for step in install_plan(sized_args(3, 5)):
        assert set(step.after) <= seen
        seen.add(step.key)


def test_control_steps_run_on_the_first_server() -> None:
    plan = install_plan(sized_args(3, 2))
    for step in plan:
        if step.kind in ("preflight", "api-ready", "node", "member", "kubeconfig"):
            assert step.host == "node-s1"
        if step.kind in ("prepare", "install"):
            assert step.host == step.node


def test_describe_names_the_order_for_reviewers() -> None:
    text = describe(dataclasses.replace(sized_args(3, 2), agent_batch_size=2))
    assert "servers, one at a time: node-s1 -> node-s2 -> node-s3" in text
    assert "agents, in parallel once the API answers: node-a1, node-a2" in text
    assert "critical path, 10 remote steps" in text
    assert "then node-s3 -> node-s2 -> node-s1" in text


def test_every_node_gets_a_labels_step_on_the_first_server_after_it_registered() -> None:
    plan = {s.key: s for s in install_plan(sized_args(3, 2))}
    assert plan["node-s2-labels"].after == ("api-ready",) and plan["node-s2-labels"].host == "node-s1"
    assert plan["node-a1-labels"].after == ("node-a1-member",) and plan["node-a1-labels"].host == "node-s1"


@pytest.mark.parametrize(("size", "batches"), [(1, 5), (2, 3), (5, 1)])
def test_agents_change_in_batches_of_the_configured_size(size: int, batches: int) -> None:
    args = dataclasses.replace(sized_args(3, 5), agent_batch_size=size)
    plan = {s.key: s for s in install_plan(args)}
    members = [f"node-a{i}-member" for i in range(1, 6)]
    for i in range(1, 6):
        batch = (i - 1) // size
        waits_for = {k for k in plan[f"node-a{i}-node"].after if k.endswith("-member")}
        expected = set(members[(batch - 1) * size:batch * size]) if batch else set()
        assert waits_for == expected, (i, waits_for)
    chain = critical_path(tuple(plan.values()))
    assert sum(k.endswith("-member") for k in chain) == batches  # never all agents at once unless asked


def test_servers_are_prepared_one_at_a_time_agents_in_parallel() -> None:
    plan = {s.key: s for s in install_plan(sized_args(3, 2))}
    assert plan["node-s1-prepare"].after == ()
    assert plan["node-s2-prepare"].after == ("node-s1-prepare",)
    assert plan["node-s3-prepare"].after == ("node-s2-prepare",)
    assert plan["node-a1-prepare"].after == () and plan["node-a2-prepare"].after == ()
