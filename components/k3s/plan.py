"""The install graph as data: which remote steps exist and which must finish before which.

`install_plan(args)` is pure; `cluster.py` turns each `Step` into one resource with
``depends_on`` exactly `Step.after`, and the tests check the registered graph equals the
plan. Pulumi deletes in reverse dependency order, so this one graph fixes creation,
rolling-update and teardown order:

    preflight (server 1) ─► gone (each dead node, on server 1) ─┐
    prepare/stage (agents in parallel; servers one at a time) ───┤
                          └─► install server 1 ─► ca-hash ─► install server 2 ─► … ─► install server n
                                                                              │
                                                                          api-ready (endpoint answers)
                                                                              │
                              labels server 1 … n (on server 1: labels and taints through the API)
                              node agent i (on server 1: the name is free; drain before an upgrade /
                                            delete the Node on removal)
                                 ─► install agent i ─► member agent i (registered; uncordon / drain
                                                       on removal) ─► labels agent i
                              agents in batches of k3s.agentBatchSize: batch k+1 after batch k's members
                                                                              │
                                                                          kubeconfig (server 1)

Creation and every update (a config change restarts, a version bump upgrades) run servers
one at a time in list order, then agents batch by batch; teardown runs kubeconfig, then per
agent member (drain), install (stop the agent), node (delete its Node from server 1), prepare
(uninstall), then servers n … 2, then server 1, each server's delete leaving etcd through a
surviving server before it uninstalls. With every agent in one batch the critical path is
servers + 7 steps whatever the number of agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.k3s.args import K3sClusterArgs

StepKind = Literal[
    "preflight", "gone", "prepare", "stage", "install", "ca-hash", "api-ready", "node", "member", "labels",
    "kubeconfig",
]


@dataclass(frozen=True)
class Step:
    key: str  # resource name suffix: f"{cluster}-{key}"
    kind: StepKind
    node: str | None  # the node the step is about
    host: str  # the node whose SSH connection runs it
    after: tuple[str, ...] = ()
    artefact: str | None = None  # stage steps: "binary" | "installer" | "images"
    # A gone node's own steps: kept exactly as deployed (no diff, never dialled) and retained on delete.
    retained: bool = False


def staged_artefacts(args: K3sClusterArgs) -> tuple[str, ...]:
    if not args.airgap.enabled:
        return ()
    return ("binary", "installer") + (("images",) if args.airgap.images else ())


def install_plan(args: K3sClusterArgs) -> tuple[Step, ...]:
    first = args.first_server.name
    steps: list[Step] = [Step("preflight", "preflight", None, first)]
    # Dead nodes leave first, from the first server, before any live server is restarted.
    gone = [f"{n.name}-gone" for n in args.gone_nodes]
    steps += [Step(key, "gone", n.name, first, ("preflight",)) for key, n in zip(gone, args.gone_nodes, strict=True)]
    node_prereqs: dict[str, tuple[str, ...]] = {}
    previous_server_prepare: tuple[str, ...] = ()
    for node in args.nodes:
        keys = [f"{node.name}-prepare"]
        # Host preparation changes the firewall, SELinux and kernel modules: one etcd member at a time.
        prepare_after = previous_server_prepare if node.role == "server" else ()
        steps.append(Step(keys[0], "prepare", node.name, node.name, prepare_after, retained=node.gone))
        if node.role == "server":
            previous_server_prepare = (keys[0],)
        for artefact in staged_artefacts(args):
            key = f"{node.name}-stage-{artefact}"
            steps.append(Step(key, "stage", node.name, node.name, artefact=artefact, retained=node.gone))
            keys.append(key)
        node_prereqs[node.name] = tuple(keys)
    previous = "preflight"
    for server in args.servers:
        key = f"{server.name}-install"
        # server 1 waits for the dead nodes to leave; every later server's config carries the CA hash
        extra = tuple(gone) if previous == "preflight" else ("ca-hash",) if previous != "ca-hash" else ()
        steps.append(Step(key, "install", server.name, server.name, (previous, *extra, *node_prereqs[server.name]),
                          retained=server.gone))
        previous = key
        if server.name == first:
            # Every later join carries the cluster CA's hash (the secure token form).
            steps.append(Step("ca-hash", "ca-hash", None, first, (key,)))
            previous = "ca-hash"
    steps.append(Step("api-ready", "api-ready", None, first, (previous,)))
    for server in args.servers:
        steps.append(Step(f"{server.name}-labels", "labels", server.name, first, ("api-ready",),
                          retained=server.gone))
    members: list[str] = []
    batch = max(1, args.agent_batch_size)
    previous_batch: tuple[str, ...] = ()
    current_batch: list[str] = []
    for index, agent in enumerate(args.agents):
        if index and index % batch == 0:  # agents change in batches, never all at once
            previous_batch, current_batch = tuple(current_batch), []
        # Removal runs this chain backwards: drain (member), stop (install), delete the Node
        # (node, on server 1), uninstall (prepare); a failure stops it before the uninstall.
        node_key = f"{agent.name}-node"
        node_after = ("api-ready", *node_prereqs[agent.name], *previous_batch)
        steps.append(Step(node_key, "node", agent.name, first, node_after, retained=agent.gone))
        install = f"{agent.name}-install"
        steps.append(Step(install, "install", agent.name, agent.name, (node_key, "ca-hash"), retained=agent.gone))
        member = f"{agent.name}-member"
        steps.append(Step(member, "member", agent.name, first, (install,), retained=agent.gone))
        current_batch.append(member)
        steps.append(Step(f"{agent.name}-labels", "labels", agent.name, first, (member,), retained=agent.gone))
        members.append(member)
    steps.append(Step("kubeconfig", "kubeconfig", None, first, ("api-ready", *members)))
    return tuple(steps)


def critical_path(steps: tuple[Step, ...] | list[Step]) -> list[str]:
    """The longest chain of steps (by count) through the dependency graph, first to last."""
    by_key = {s.key: s for s in steps}
    longest: dict[str, list[str]] = {}
    for step in steps:  # plan order is topological
        best: list[str] = []
        for dep in step.after:
            if dep not in by_key:
                raise KeyError(f"{step.key} depends on unknown step {dep}")
            if len(longest[dep]) > len(best):
                best = longest[dep]
        longest[step.key] = [*best, step.key]
    return max(longest.values(), key=len) if longest else []


def describe(args: K3sClusterArgs) -> str:
    """A human summary of the install order (for the offline render and reviews)."""
    steps = install_plan(args)
    path = critical_path(steps)
    servers = [n.name for n in args.servers]
    agents = [n.name for n in args.agents]
    lines = [
        f"{len(args.nodes)} nodes: {len(servers)} servers, {len(agents)} agents; API at {args.api_endpoint}"
        + (f" (kube-vip ARP VIP on {args.vip.interface or 'the interface of the route to it'})" if args.vip else ""),
        "servers, one at a time: " + " -> ".join(servers),
        f"agents, in parallel once the API answers: {', '.join(agents) or '(none)'}",
        f"critical path, {len(path)} remote steps: " + " -> ".join(path),
        f"teardown: kubeconfig, agents ({len(agents)} in parallel: drain, stop, delete the Node, uninstall), then "
        + " -> ".join(reversed(servers)) + " (each: drain, stop, delete its Node through a surviving server, "
        "wait until etcd drops it, uninstall)",
    ]
    return "\n".join(lines) + "\n"
