"""What the engine makes of a stack's state when the program registers a new graph: alias matching.

Under mocks there is no engine, so a rename cannot be seen as create and delete steps. This
module applies the engine's rules for URNs and aliases (as pulumi/pulumi's step generator
implements them: ``generateURN``, ``generateAliases``, ``collapseAliasToUrn``,
``inheritedChildAlias``, ``providerChanged``) to two `Recording`s: the run that wrote the state
and the run that follows it.

* A URN is ``urn:pulumi:<stack>::<project>::<qualified type>::<name>``; the qualified type is the
  parent's qualified type, ``$``, the resource's own type (for a child of the root stack, its type
  alone). Ancestors' names are not part of it. The mock monitor's URNs keep only the parent's
  last type, and the stack's: `engine_urns` computes the engine's.
* A registration takes over the first of these that the old state holds: its own URN; each alias
  (a spec's missing name, type and parent are the resource's own; a spec parent that was itself
  matched through an alias stands for that old URN); then, when its parent was matched through
  an alias, the inherited ones: its name with the parent's (new) name at its start replaced by the
  parent's old name, under the parent's old qualified type; the same for each of its aliases.
  A child whose name does not start with its parent's name keeps its name.
* An old URN that no registration takes over is a delete; a registration that takes over nothing
  is a create. A custom resource's provider counts as changed (the engine would replace it)
  unless its old provider is the new one, or the one the new provider took over.

Read-only lookups (``X.get``) are not registrations and are not covered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from components.offline.runner import Recording, Resource

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def split_urn(urn: str) -> tuple[str, str, str, str]:
    """``(stack, project, qualified type, name)`` of a URN."""
    head, project, qualified, name = urn.split("::", 3)
    return head.removeprefix("urn:pulumi:"), project, qualified, name


def make_urn(stack: str, project: str, type_: str, name: str, parent: str | None) -> str:
    """The engine's URN of `type_`/`name` under `parent` (None: the root stack)."""
    qualified = type_ if parent is None else f"{split_urn(parent)[2]}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def _is_root(urn: str) -> bool:
    return split_urn(urn)[2] == ROOT_STACK_TYPE


def engine_urns(recording: Recording) -> dict[str, str]:
    """Each recorded resource's URN (as the mocks gave it) -> the URN the engine gives it."""
    by_urn = {r.urn: r for r in recording}
    out: dict[str, str] = {}

    def urn_of(r: Resource) -> str:
        if r.urn not in out:
            parent = by_urn.get(r.parent) if r.parent else None  # not recorded: the root stack
            stack, project, _, _ = split_urn(r.urn)
            out[r.urn] = make_urn(stack, project, r.type, r.name, urn_of(parent) if parent else None)
        return out[r.urn]

    for resource in recording:
        urn_of(resource)
    return out


@dataclass(frozen=True)
class Migration:
    """The engine's matching of a new run's registrations against the old run's state."""

    taken_over: dict[str, str]  # new URN -> the old URN whose state it takes over (itself if unchanged)
    created: tuple[str, ...]
    deleted: tuple[str, ...]
    conflicts: tuple[str, ...]  # an old URN claimed twice (the engine fails the update)
    provider_changed: tuple[str, ...]  # new URNs of custom resources whose provider is another one

    @property
    def renamed(self) -> dict[str, str]:
        """Only the registrations matched through an alias: new URN -> old URN."""
        return {new: old for new, old in self.taken_over.items() if new != old}


def _provider_urn(reference: str | None) -> str | None:
    """The URN part of a provider reference ``<urn>::<id>``."""
    return reference.rsplit("::", 1)[0] if reference else None


def _candidates(r: Resource, urn: str, parent: str | None, urns: Mapping[str, str],
                renamed: Mapping[str, str]) -> Iterator[str]:
    """The URNs `r` may have had, in the engine's order (after its own URN)."""
    stack, project, _, _ = split_urn(urn)

    def collapse(alias: Mapping[str, Any]) -> str:
        if "urn" in alias:
            return str(alias["urn"])
        old_parent: str | None
        if alias.get("noParent"):
            old_parent = None
        elif alias.get("parentUrn"):
            given = urns.get(alias["parentUrn"], alias["parentUrn"])
            given = renamed.get(given, given)
            old_parent = None if _is_root(given) else given
        else:
            old_parent = parent
        return make_urn(alias.get("stack") or stack, alias.get("project") or project,
                        alias.get("type") or r.type, alias.get("name") or r.name, old_parent)

    explicit = [collapse(a) for a in r.aliases]
    yield from explicit
    if parent is not None and parent in renamed:
        old_parent, parent_name = renamed[parent], split_urn(parent)[3]
        old_parent_name = split_urn(old_parent)[3]
        for alias_urn in (urn, *explicit):
            _, _, qualified, name = split_urn(alias_urn)
            if name.startswith(parent_name):
                name = old_parent_name + name[len(parent_name):]
            yield make_urn(stack, project, qualified.rsplit("$", 1)[-1], name, old_parent)


def migrate(old: Recording, new: Recording) -> Migration:
    """What `pulumi up` of `new` does to the state `old` left (see the module docstring)."""
    old_urns, new_urns = engine_urns(old), engine_urns(new)
    old_state = {old_urns[r.urn]: r for r in old}
    taken_over: dict[str, str] = {}
    claimed_by: dict[str, str] = {}
    renamed: dict[str, str] = {}
    conflicts: list[str] = []
    for r in new:  # registration order: a parent always registers before its children
        urn = new_urns[r.urn]
        parent = new_urns.get(r.parent) if r.parent else None
        for candidate in (urn, *_candidates(r, urn, parent, new_urns, renamed)):
            if candidate not in old_state:
                continue
            if candidate in claimed_by:
                conflicts.append(f"{candidate} is claimed by {claimed_by[candidate]} and {urn}")
            else:
                claimed_by[candidate] = urn
                taken_over[urn] = candidate
                if candidate != urn:
                    renamed[urn] = candidate
            break
    provider_changed = []
    for r in new:
        urn = new_urns[r.urn]
        if not r.custom or urn not in taken_over:
            continue
        before = old_state[taken_over[urn]]
        old_provider = _provider_urn(before.provider)
        new_provider = _provider_urn(r.provider)
        old_provider = old_urns.get(old_provider, old_provider) if old_provider else None
        new_provider = new_urns.get(new_provider, new_provider) if new_provider else None
        if old_provider != new_provider and (new_provider is None or renamed.get(new_provider) != old_provider):
            provider_changed.append(urn)
    return Migration(
        taken_over=taken_over,
        created=tuple(u for u in new_urns.values() if u not in taken_over),
        deleted=tuple(u for u in old_state if u not in claimed_by),
        conflicts=tuple(conflicts),
        provider_changed=tuple(provider_changed),
    )
