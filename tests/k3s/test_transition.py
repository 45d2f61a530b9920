"""The recorded deployment: the previous run's version and servers reach validation before any step.

Driven three ways: the pure rule function; the SDK's own dynamic-provider host over gRPC, as the
engine calls it in `pulumi preview` / `pulumi up` (Check with the old inputs from state); and the
registered graph under mocks (every K3s step waits for the record).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.config import ConfigError
from components.k3s.args import DeployedState, K3sClusterArgs
from components.k3s.transition import Transition, as_inputs, transition_failures
from tests.gardener.engine import CheckFailedError, Engine, ProviderHost, register

from .mockrun import record_cluster
from .stacks import homelab_args, homelab_raw, parse

THREE = DeployedState("v1.33.5+k3s1", ("a", "b", "c"), ("w1",))
TRANSITION_TYPE = "pulumi-python:dynamic/k3s:Transition"


def news(version: str = "v1.33.5+k3s1", servers: tuple[str, ...] = ("a", "b", "c"), accept: str | None = None,
         agents: tuple[str, ...] = ("w1",)) -> dict[str, object]:
    return as_inputs(DeployedState(version, servers, agents), accept)


def test_first_run_patch_minor_and_minority_removal_pass() -> None:
    olds = as_inputs(THREE)
    assert transition_failures({}, news("v1.30.0+k3s1")) == []  # nothing recorded: a fresh install
    assert transition_failures(olds, news("v1.33.6+k3s1")) == []
    assert transition_failures(olds, news("v1.34.2+k3s1", ("a", "b"))) == []  # one of three
    assert transition_failures(olds, news(agents=())) == []  # agents come and go freely


def test_downgrade_skip_and_majority_removal_are_refused_naming_the_config_key() -> None:
    olds = as_inputs(THREE)
    [(prop, reason)] = transition_failures(olds, news("v1.32.9+k3s1"))
    assert prop == "version" and reason.startswith("platform:versions.k3s: downgrade from v1.33.5+k3s1")
    [(prop, reason)] = transition_failures(olds, news("v1.35.0+k3s1"))
    assert "skips minor version(s)" in reason and "next: the latest v1.34.x" in reason
    [(prop, reason)] = transition_failures(olds, news(servers=("a",)))
    assert prop == "servers" and reason.startswith("platform:nodes: removing 2 of 3 servers at once (b, c)")
    assert "platform:k3s.acceptTransition" in reason  # the way out is named


def test_accept_transition_lets_exactly_the_named_change_through() -> None:
    olds = as_inputs(THREE)
    assert transition_failures(olds, news("v1.32.9+k3s1", accept="v1.32.9+k3s1")) == []
    assert len(transition_failures(olds, news("v1.32.9+k3s1", accept="v1.32.8+k3s1"))) == 1
    assert transition_failures(olds, news(servers=("a",), accept="nodes")) == []
    assert len(transition_failures(olds, news("v1.32.9+k3s1", ("a",), accept="nodes"))) == 1


def test_inputs_do_not_depend_on_node_order() -> None:
    assert as_inputs(DeployedState("v1.33.5+k3s1", ("c", "a", "b"))) == as_inputs(
        DeployedState("v1.33.5+k3s1", ("a", "b", "c")))


@pytest.fixture(scope="module")
def host() -> Iterator[ProviderHost]:
    h = ProviderHost({})
    yield h
    h.close()


def registered(deployed: DeployedState, accept: str | None = None) -> dict[str, object]:
    """The inputs the program registers for the record, with the real pickled `__provider`."""
    return register(lambda: Transition("k3s-transition", deployed, accept)).one(":Transition").inputs


def test_through_the_dynamic_provider_host_the_previous_run_is_what_the_check_compares(host: ProviderHost) -> None:
    engine = Engine(host, TRANSITION_TYPE, "k3s-transition")
    assert engine.up(registered(THREE)).op == "create"
    assert engine.state is not None and engine.state.outputs["version"] == "v1.33.5+k3s1"
    assert engine.up(registered(THREE)).op == "same"  # a rerun changes nothing
    assert engine.refresh() == "same"
    with pytest.raises(CheckFailedError) as refused:
        engine.preview(registered(DeployedState("v1.35.0+k3s1", THREE.servers, THREE.agents)))
    assert refused.value.failures[0][0] == "version"
    assert "platform:versions.k3s: upgrade from v1.33.5+k3s1 to v1.35.0+k3s1" in refused.value.failures[0][1]
    with pytest.raises(CheckFailedError, match="removing 2 of 3 servers"):
        engine.up(registered(DeployedState(THREE.version, ("a",), ())))
    assert engine.state.inputs["servers"] == ["a", "b", "c"]  # a refused run records nothing
    assert engine.up(registered(DeployedState("v1.34.2+k3s1", ("a", "b", "c", "d", "e"), ()))).op == "update"
    # The record moved on: from five servers, two may go in one run; the minor after v1.34 is next.
    assert engine.up(registered(DeployedState("v1.35.0+k3s1", ("a", "b", "c"), ()))).op == "update"
    engine.destroy()


def test_every_k3s_step_waits_for_the_record() -> None:
    run = record_cluster(homelab_args(), name="homelab")
    rec = run.recording
    record = rec.named("homelab-transition")
    assert record.type == TRANSITION_TYPE
    assert record.inputs["servers"] == ["k3s-control-01", "k3s-control-02", "k3s-control-03"]
    steps = [r for r in rec if r.type.startswith("command:remote:")]
    assert steps and all(record.urn in r.dependencies for r in steps)


def test_accept_transition_is_validated_and_warned_about() -> None:
    raw = homelab_raw()
    raw["platform:k3s"]["acceptTransition"] = "yes please"
    with pytest.raises(ConfigError, match=r"platform:k3s\.acceptTransition.*'nodes'"):
        parse(raw)
    raw["platform:k3s"]["acceptTransition"] = "nodes"
    cfg = parse(raw)
    assert any("acceptTransition" in w and "remove it again" in w for w in cfg.warnings)
    assert K3sClusterArgs.from_config(cfg).accept_transition == "nodes"
