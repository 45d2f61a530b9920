"""Version and removal rules: the Python twins and the bash twins agree, and validation uses them."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.k3s import DeployedState, K3sClusterArgs, TransitionRefusedError, check_removal, check_upgrade
from components.k3s.upgrade import K3sVersion, removal_problem, shell_functions, upgrade_problem
from components.problems import ConfigError

from .stacks import homelab_config


@pytest.mark.parametrize(("old", "new"), [
    ("v1.34.2+k3s1", "v1.34.2+k3s1"), ("v1.34.2+k3s1", "v1.34.3+k3s1"), ("v1.34.2+k3s1", "v1.34.2+k3s2"),
    ("v1.33.9+k3s1", "v1.34.1+k3s1"),
])
def test_allowed_transitions(old: str, new: str) -> None:
    check_upgrade(old, new)
    check_upgrade(None, new)


@pytest.mark.parametrize(("old", "new", "why"), [
    ("v1.34.2+k3s1", "v1.34.1+k3s1", "downgrade"), ("v1.34.2+k3s2", "v1.34.2+k3s1", "downgrade"),
    ("v1.34.2+k3s1", "v1.33.9+k3s1", "downgrade"), ("v1.32.2+k3s1", "v1.34.2+k3s1", "skips minor"),
    ("v1.34.2+k3s1", "v2.0.0+k3s1", "major"),
])
def test_refused_transitions(old: str, new: str, why: str) -> None:
    with pytest.raises(TransitionRefusedError, match=why):
        check_upgrade(old, new)


def test_removal_of_a_majority_of_servers_is_refused() -> None:
    check_removal(frozenset({"a", "b", "c"}), frozenset({"a", "b"}))
    check_removal(frozenset({"a", "b", "c", "d", "e"}), frozenset({"a", "b", "c"}))
    with pytest.raises(TransitionRefusedError, match="removing 2 of 3 servers"):
        check_removal(frozenset({"a", "b", "c"}), frozenset({"a"}))
    with pytest.raises(TransitionRefusedError, match="remove at most 2 per update"):
        check_removal(frozenset({"a", "b", "c", "d", "e"}), frozenset({"a", "b"}))


def test_validation_refuses_when_the_previous_state_is_known() -> None:
    cfg = homelab_config()
    K3sClusterArgs.from_config(cfg, previous=DeployedState("v1.33.5+k3s1", ("k3s-control-01",)))
    with pytest.raises(ConfigError) as err:
        K3sClusterArgs.from_config(cfg, previous=DeployedState(
            "v1.35.0+k3s1", ("k3s-control-01", "k3s-control-02", "k3s-control-03", "old-1", "old-2", "old-3", "x")))
    text = str(err.value)
    assert "platform:versions.k3s: downgrade from v1.35.0+k3s1 to v1.34.2+k3s1 refused" in text
    assert "platform:nodes: removing 4 of 7 servers at once" in text


def _bash(calls: list[str]) -> list[str]:
    script = shell_functions() + "\n" + "\n".join(f"printf '%s\\n' \"$({c})\"" for c in calls)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    return out.split("\n")[: len(calls)]


versions = st.builds(
    lambda a, b, c, d: f"v{a}.{b}.{c}+k3s{d}",
    st.integers(1, 2), st.integers(0, 40), st.integers(0, 12), st.integers(1, 3),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(versions, versions), min_size=1, max_size=30))
def test_bash_and_python_version_rules_agree(pairs: list[tuple[str, str]]) -> None:
    got = _bash([f"version_problem {old} {new}" for old, new in pairs])
    want = [upgrade_problem(old, new) or "" for old, new in pairs]
    assert got == want


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.data())
def test_bash_and_python_removal_rules_agree(total: int, data: st.DataObject) -> None:
    members = [f"s{i}" for i in range(total)]
    removed = sorted(data.draw(st.sets(st.sampled_from(members), max_size=total - 1)))
    (got,) = _bash([f"removal_problem {total} {' '.join(removed)}"])
    want = removal_problem(frozenset(members), frozenset(members) - set(removed)) or ""
    assert got == want


def test_versions_order_numerically() -> None:
    assert K3sVersion.parse("v1.9.0+k3s1") < K3sVersion.parse("v1.10.0+k3s1")
    assert str(K3sVersion.parse("v1.34.2+k3s1")) == "v1.34.2+k3s1"
    with pytest.raises(ValueError, match="not a K3s version"):
        K3sVersion.parse("1.34")
