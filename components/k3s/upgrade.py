"""Version-transition and node-removal rules, in Python and in the remote scripts.

A Pulumi program cannot read the previously deployed state before it registers its
resources, yet "refuse downgrades and minor-version skips" and "refuse removing a majority
of the servers at once" are questions about the previous state. The design is two layers,
both built from the rules in this module so they can never disagree:

1. **Validation against the previous run.** `upgrade_problem` and `removal_problem` are pure.
   The component registers a `transition.Transition` record first, and every step waits for
   it: the engine hands its ``Check`` the previous run's inputs from state, so a refused
   transition fails `pulumi preview` (and `pulumi up`) before any SSH step is planned.
   `K3sClusterArgs.from_config(previous=...)` applies the same rules to a `DeployedState`
   known in advance (tests, tools that read the stack's ``deployed`` output).
2. **Remote guards, always.** The cluster itself is the authoritative record of what is
   deployed. The `preflight` step runs first on server 1 on every change of version or
   node set; it reads every node's ``kubeletVersion`` and the live etcd members and
   applies the *same* rules (rendered to bash by `shell_functions()`), refusing with the
   same message before any node is touched. Each node's install script repeats the version
   check against its own installed ``k3s --version`` (defence in depth, e.g. when the
   preflight ran on a fresh first server). The tests run the bash and Python rules on the
   same generated version pairs and assert they agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from components.k3s.shell import shell_text

VERSION_RE = re.compile(r"v(\d+)\.(\d+)\.(\d+)\+k3s(\d+)")


@total_ordering
@dataclass(frozen=True)
class K3sVersion:
    major: int
    minor: int
    patch: int
    revision: int

    @classmethod
    def parse(cls, text: str) -> K3sVersion:
        match = VERSION_RE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a K3s version like v1.34.2+k3s1")
        return cls(*(int(g) for g in match.groups()))

    def key(self) -> tuple[int, int, int, int]:
        return (self.major, self.minor, self.patch, self.revision)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, K3sVersion):
            return NotImplemented
        return self.key() < other.key()

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}+k3s{self.revision}"


class TransitionRefusedError(ValueError):
    """A version change or node removal the cluster must not go through."""


def upgrade_problem(previous: str, new: str) -> str | None:
    """Why `previous` → `new` is refused, or None when it is allowed (same, patch, +1 minor)."""
    old_v, new_v = K3sVersion.parse(previous), K3sVersion.parse(new)
    if new_v == old_v:
        return None
    if new_v.major != old_v.major:
        return f"changing the major version ({old_v} -> {new_v}) is not supported"
    if new_v < old_v:
        return (
            f"downgrade from {old_v} to {new_v} refused: Kubernetes and etcd data cannot be downgraded; "
            f"restore an etcd snapshot taken on {new_v} instead"
        )
    if new_v.minor > old_v.minor + 1:
        return (
            f"upgrade from {old_v} to {new_v} skips minor version(s) refused: upgrade one minor version at a time "
            f"(next: the latest v{old_v.major}.{old_v.minor + 1}.x+k3sN)"
        )
    return None


def check_upgrade(previous: str | None, new: str) -> None:
    """Raise `TransitionRefusedError` unless `previous` → `new` is allowed (None: fresh install)."""
    if previous is None:
        return
    problem = upgrade_problem(previous, new)
    if problem:
        raise TransitionRefusedError(problem)


def removal_problem(previous_servers: set[str] | frozenset[str], new_servers: set[str] | frozenset[str]) -> str | None:
    """Why going from `previous_servers` to `new_servers` is refused, or None.

    Removing a majority of the etcd members at once (2 of 3, 3 of 5) is refused: even with
    the removals serialised, the cluster drops below the fault tolerance it had and the
    intent is almost always a mistake (a renamed list, a wrong stack). Remove at most a
    minority per update.
    """
    if not previous_servers:
        return None
    removed = sorted(set(previous_servers) - set(new_servers))
    if 2 * len(removed) > len(previous_servers):
        return (
            f"removing {len(removed)} of {len(previous_servers)} servers at once ({', '.join(removed)}) refused: "
            f"that is a majority of the etcd members; remove at most {(len(previous_servers) - 1) // 2} per update"
        )
    if previous_servers and not new_servers:
        return "removing every server refused: use `pulumi destroy` to tear the cluster down"
    return None


def check_removal(previous_servers: set[str] | frozenset[str], new_servers: set[str] | frozenset[str]) -> None:
    problem = removal_problem(previous_servers, new_servers)
    if problem:
        raise TransitionRefusedError(problem)


def shell_functions() -> str:
    """The bash twins of `upgrade_problem` and `removal_problem` (static text)."""
    return shell_text("version-rules.sh")
