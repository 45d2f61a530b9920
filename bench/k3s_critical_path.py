"""Benchmark: the critical path of the K3s install graph for 3+3, 3+30 and 5+300 nodes.

The graph measured is the one the component really registers: `K3sCluster` is built under
mocks (the project's recording monitor) and its remote steps and ``depends_on`` edges are
read back. Two figures per size, each against a baseline measured in the same run, the
naive install that runs every remote step one after the other:

* **steps**: the longest chain of remote steps (what must happen one after another);
* **time**: the makespan with unlimited parallelism, using typical step durations
  (`DURATIONS`, from the K3s notes: ~50 s for server 1, 24-46 s per join, ~10-20 s per agent).

The target: critical path = servers + a small constant, whatever the number of agents.
Run: ``python bench/k3s_critical_path.py`` (exits non-zero if the target is missed).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.k3s import K3sClusterArgs, NodeSpec, VipSpec
from components.k3s.plan import critical_path, install_plan
from tests.k3s.mockrun import record_cluster

SIZES = ((3, 3), (3, 30), (5, 300))
# Typical durations in seconds, per kind of step (resource name suffix).
DURATIONS = {"preflight": 3, "prepare": 60, "install-first": 50, "install-join": 35, "install-agent": 20,
             "api-ready": 5, "member": 2, "kubeconfig": 1, "stage": 30, "node": 2, "labels": 2, "ca-hash": 1}


def cluster_args(servers: int, agents: int) -> K3sClusterArgs:
    nodes = [
        NodeSpec(f"s{i}", f"10.0.0.{i + 10}", "server") for i in range(1, servers + 1)
    ] + [
        NodeSpec(f"a{i}", f"10.{1 + i // 250}.{i % 250}.10", "agent") for i in range(1, agents + 1)
    ]
    return K3sClusterArgs(
        cluster_name="bench", version="v1.34.2+k3s1", api_endpoint="10.0.0.5", nodes=tuple(nodes),
        vip=VipSpec("10.0.0.5", "eth0", "v0.9.2"),
        agent_batch_size=max(1, agents),  # all agents in one batch (the default of 1 is serial by design)
    )


def kind_of(name: str, first: str) -> str:
    short = name.removeprefix("bench-")
    if short.endswith("-install"):
        if short == f"{first}-install":
            return "install-first"
        return "install-join" if short.startswith("s") else "install-agent"
    for kind in ("prepare", "member", "stage", "node", "labels"):
        if short.endswith(f"-{kind}") or f"-{kind}-" in short:
            return kind
    return short


def measure(servers: int, agents: int) -> dict[str, float]:
    args = cluster_args(servers, agents)
    started = time.perf_counter()
    rec = record_cluster(args, name="bench").recording
    build_seconds = time.perf_counter() - started
    steps = {r.urn: r for r in rec if r.type.startswith("command:remote:")}
    order = [r for r in rec if r.urn in steps]  # registration order is topological
    longest: dict[str, int] = {}
    finish: dict[str, float] = {}
    first = args.first_server.name
    for res in order:
        deps = [u for u in res.dependencies if u in steps]
        longest[res.urn] = 1 + max((longest[d] for d in deps), default=0)
        finish[res.urn] = DURATIONS[kind_of(res.name, first)] + max((finish[d] for d in deps), default=0.0)
    naive_time = sum(DURATIONS[kind_of(r.name, first)] for r in order)
    path = max(longest.values())
    plan_path = len(critical_path(install_plan(args)))
    if plan_path != path:
        raise SystemExit(f"registered graph ({path}) and plan ({plan_path}) disagree for {servers}+{agents}")
    return {
        "steps": len(order), "critical": path, "naive": len(order), "time": max(finish.values()),
        "naive_time": naive_time, "build": build_seconds,
    }


def main() -> int:
    print("K3s install graph: critical path vs. a naive all-sequential install (same run)")
    header = (f"{'nodes':>8} {'remote steps':>12} {'critical path':>13} {'ratio':>7} {'makespan':>9} "
              f"{'naive':>9} {'ratio':>7} {'mock build':>10}")
    print(header)
    print("-" * len(header))
    constants = set()
    for servers, agents in SIZES:
        m = measure(servers, agents)
        constants.add(int(m["critical"]) - servers)
        print(f"{servers:>3}+{agents:<4} {int(m['steps']):>12} {int(m['critical']):>13} "
              f"{m['critical'] / m['naive']:>7.3f} {m['time']:>8.0f}s {m['naive_time']:>8.0f}s "
              f"{m['time'] / m['naive_time']:>7.4f} {m['build']:>9.2f}s")
    # 7: preflight, ca-hash, api-ready, node, agent install, member, kubeconfig
    ok = len(constants) == 1 and max(constants) <= 7
    print(f"critical path = servers + {sorted(constants)} for every size: "
          f"{'OK' if ok else 'FAILED'} (independent of the agent count)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
