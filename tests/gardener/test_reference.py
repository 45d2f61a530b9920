"""Cross-checks against `../shared/reference/cleura-gardener-api.md` (skipped when it is absent).

The reference is the contract; these tests catch drift between it and what we send, without
copying it into the project.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.gardener.diffing import plan_update
from components.gardener.operations import Location
from components.gardener.spec import CILIUM_TUNNELS, CNI_TYPES, TAINT_EFFECTS, create_body, worker_body
from components.gardener.state import reported_inputs

from .conftest import spec
from .test_diffing import api_shoot, checked


@pytest.fixture(scope="module")
def doc(reference: Path) -> str:
    path = reference / "cleura-gardener-api.md"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    return path.read_text()


def section(doc: str, start: str, end: str) -> str:
    return doc[doc.index(start):doc.index(end, doc.index(start))]


def field_names(text: str) -> set[str]:
    """Every backticked snake_case name (and each part of a dotted path) in a section."""
    return {part for m in re.finditer(r"`([a-z_.]+)`", text) for part in m.group(1).split(".")}


def keys(obj: object) -> set[str]:
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(k)
            out |= keys(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= keys(v)
    return out


def test_create_body_uses_only_documented_fields(doc: str) -> None:
    documented = field_names(section(doc, "**CreateShoot**", "**PatchShoot**"))
    s = spec(networking_type="cilium")
    assert keys(create_body(s)) - {"key", "value", "type"} <= documented
    assert keys(worker_body(s.workers[0], explicit_empty=True)) - {"key", "value", "type"} <= documented


def test_patch_body_uses_only_documented_fields(doc: str) -> None:
    documented = field_names(section(doc, "**PatchShoot**", "There is no way"))
    plan = plan_update(checked(kubernetes_version="1.34.1", allowed_cidrs=["192.0.2.0/24"], hibernation_schedules=[],
                               maintenance={"auto_update": {"kubernetes_version": False}}),
                       reported_inputs(api_shoot(checked())))
    assert set(plan.patch) <= documented
    assert "kubernetes" in plan.patch  # not `kubernetes_version`, a documented trap


def test_paths_match_the_documented_operations(doc: str) -> None:
    loc = Location("{cloud}", "R", "P")
    assert loc.kubeconfig_v3("{name}") in doc
    assert "/gardener/v2/{cloud}/{region}/{projectId}/bootstrap" in doc
    assert loc.shoots().replace("/R/P", "/{region}/{projectId}") in doc
    for tail in ("ha-control-plane/enable", "is-name-taken", "/workers/{workerName}"):
        assert tail in doc


def test_enums_match(doc: str) -> None:
    for value in (*TAINT_EFFECTS, *CNI_TYPES, *CILIUM_TUNNELS):
        assert f"`{value}`" in doc or value in doc
