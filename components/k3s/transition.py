"""`Transition` (``pulumi-python:dynamic/k3s:Transition``): the previous deployment reaches validation.

A Pulumi program cannot read its own previous state before it registers resources (a
`StackReference` to the stack itself resolves only as an `Output`, after registration has
begun). The engine, however, hands every provider's ``Check`` the resource's *old inputs* from
state, in `pulumi preview` as in `pulumi up`. So the K3s component registers this record first,
with the deployment it is about to make (version, live servers, live agents) as inputs, and
every K3s step depends on it:

* ``check(olds, news)`` applies `upgrade.upgrade_problem` and `upgrade.removal_problem` to the
  recorded deployment and the new one, the same rules `K3sClusterArgs.from_config(previous=...)`
  and the remote preflight use. A refusal is a check failure: the preview (and `pulumi up`,
  which previews first and registers nothing that depends on a failed resource) stops there,
  naming the config key, before any SSH step is planned or run;
* ``create``/``update`` store the new inputs, so the next run compares against this one;
  ``read`` (refresh) keeps them; ``delete`` has nothing to undo.

The record holds the last deployment `pulumi up` *started*: after an upgrade that failed half
way the record already names the new version, and the remote preflight (which reads every
node's live version and the etcd members) stays the authority for what the hosts run.

KEEP THIS MODULE PATH STABLE: `TransitionProvider` is pickled by reference into state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from components.k3s.args import DeployedState
from components.k3s.upgrade import VERSION_RE, removal_problem, upgrade_problem

FIELDS = ("version", "servers", "agents")
RECORD_ID = "k3s-deployment"
OVERRIDE_HINT = (
    " (only if the hosts really run something else, e.g. after a restore from an older snapshot: set "
    "platform:k3s.acceptTransition to the version, or to 'nodes', for one `pulumi up`)"
)


def as_inputs(deployed: DeployedState, accept: str | None = None) -> dict[str, Any]:
    """The record's inputs: lists, sorted where order carries no meaning, so reruns are identical."""
    inputs: dict[str, Any] = {
        "version": deployed.version, "servers": sorted(deployed.servers), "agents": sorted(deployed.agents),
    }
    if accept is not None:
        inputs["accept"] = accept
    return inputs


def _deployed(props: Mapping[str, Any]) -> DeployedState | None:
    """The recorded deployment, or None when there is none (first run, or a record from elsewhere)."""
    version = props.get("version")
    if not isinstance(version, str) or VERSION_RE.fullmatch(version) is None:
        return None
    servers = props.get("servers") or []
    agents = props.get("agents") or []
    return DeployedState(version, tuple(str(s) for s in servers), tuple(str(a) for a in agents))


def transition_failures(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(input, reason) for every rule the change from `olds` to `news` breaks; none on a first run."""
    previous, wanted = _deployed(olds), _deployed(news)
    if previous is None or wanted is None:
        return []
    accept = news.get("accept")
    failures: list[tuple[str, str]] = []
    problem = upgrade_problem(previous.version, wanted.version)
    if problem and accept != wanted.version:
        failures.append(("version", f"platform:versions.k3s: {problem}{OVERRIDE_HINT}"))
    problem = removal_problem(frozenset(previous.servers), frozenset(wanted.servers))
    if problem and accept != "nodes":
        failures.append(("servers", f"platform:nodes: {problem}{OVERRIDE_HINT}"))
    return failures


class TransitionProvider(ResourceProvider):  # type: ignore[misc]
    """Stateless: every decision is `transition_failures`; nothing secret is ever an input."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {k: news[k] for k in (*FIELDS, "accept") if k in news}
        return CheckResult(inputs, [CheckFailure(p, r) for p, r in transition_failures(olds, news)])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Explicit (not the engine's fallback): an update whenever the deployment differs, never a replacement.
        return DiffResult(changes=any(olds.get(k) != news.get(k) for k in FIELDS), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(RECORD_ID, {k: props.get(k) for k in FIELDS})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, {k: props.get(k) for k in FIELDS})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({k: news.get(k) for k in FIELDS})


class Transition(dynamic.Resource, module="k3s", name="Transition"):  # type: ignore[misc,call-arg]
    """The record of the deployment this run makes; see the module docstring."""

    def __init__(self, resource_name: str, deployed: DeployedState, accept: str | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TransitionProvider(), resource_name, as_inputs(deployed, accept), opts)
