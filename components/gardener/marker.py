"""The stack's ownership marker on a shoot, so an interrupted create is recognised as ours.

The SDK's dynamic-provider host cannot return partial state: when a create fails or is
interrupted after the POST (a wait timeout, a second Ctrl-C that kills the provider), the
shoot exists and is billed but Pulumi does not track it. The Cleura API has no shoot-level
labels, so the marker is a worker-group annotation (it lands on the nodes as a harmless node
annotation) whose value names the stack and the component. It is

* stamped on every worker group the provider creates or rewrites;
* stripped from what the provider reads back, so it never shows up as a diff;
* read by `ShootOps.create` (a shoot of this name that carries *our* marker is resumed without
  `adopt`; one without it, or with another stack's, still needs `adopt`) and by
  `ShootClaimProvider.delete` (`destroy` removes a shoot that a failed create left behind).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MARKER_KEY = "platform.pulumi.com/owner"


def stamp_worker(body: Mapping[str, Any], owner: str | None) -> dict[str, Any]:
    """A worker body (create or PUT) with the marker added to its annotations."""
    out = dict(body)
    if not owner:
        return out
    kept = [a for a in out.get("annotations") or [] if isinstance(a, Mapping) and a.get("key") != MARKER_KEY]
    out["annotations"] = [*kept, {"key": MARKER_KEY, "value": owner}]
    return out


def stamp_create_body(body: Mapping[str, Any], owner: str | None) -> dict[str, Any]:
    out = dict(body)
    prov = dict(out.get("shoot_provider") or {})
    prov["workers"] = [stamp_worker(w, owner) for w in prov.get("workers") or []]
    out["shoot_provider"] = prov
    return out


def owners_of(shoot: Mapping[str, Any]) -> set[str]:
    """Every owner value found on the live shoot's worker groups (read shape; lists or maps)."""
    found: set[str] = set()
    workers = (shoot.get("shoot_provider") or {}).get("workers") or []
    for w in workers:
        annotations = w.get("annotations") if isinstance(w, Mapping) else None
        if isinstance(annotations, Mapping):
            value = annotations.get(MARKER_KEY)
            if isinstance(value, str):
                found.add(value)
        for a in annotations if isinstance(annotations, list) else []:
            if isinstance(a, Mapping) and a.get("key") == MARKER_KEY and isinstance(a.get("value"), str):
                found.add(str(a["value"]))
    return found
