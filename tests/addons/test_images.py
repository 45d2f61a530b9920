"""Every image the program adds is pinned in versions.py with its upstream build facts.

The MetalLB gate once ran ``/bin/bash -c`` in registry.k8s.io/kubectl, which is distroless (no
shell, no printf, no sleep): the Job could never start. So every container the program itself
defines (not the charts' own) must use a pinned image, and one that runs a script must use an
image whose recorded build definition has that interpreter.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import versions
from components.offline.runner import Recording
from tests.conftest import RunProgram

SHELLS = ("/bin/sh", "/bin/bash", "/bin/ash", "sh", "bash")


def containers(rec: Recording) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for resource in rec:
        if not resource.type.startswith("kubernetes:") or "spec" not in resource.inputs:
            continue
        spec = resource.inputs["spec"]
        pod = spec.get("template", {}).get("spec", {}) if isinstance(spec, dict) else {}
        out += [(resource.name, c) for c in pod.get("containers", []) + pod.get("initContainers", [])]
    return out


def pin_for(image: str) -> versions.ImagePin | None:
    """The pin of `image`: same repository and tag (the gate's tag follows the stack's K3s version)."""
    repository, _, tag = image.rpartition(":")
    for name, pin in versions.IMAGES.items():
        if pin.repository == repository and (tag == pin.tag or name == "webhookGate"):
            return pin
    return None


def test_every_pin_records_its_build_definition() -> None:
    for name, pin in versions.IMAGES.items():
        assert pin.build_file and ":" in pin.build_file, name  # repo:path of the upstream build file
        assert pin.base, name
        assert pin.shell is None or pin.shell.startswith("/"), name


def test_distroless_kubectl_is_recorded_as_shell_less() -> None:
    kubectl = versions.IMAGES["kubectl"]
    assert kubectl.shell is None and "distroless" in kubectl.base


def test_the_gate_image_has_a_shell_and_the_tools_its_script_uses() -> None:
    gate = versions.IMAGES["webhookGate"]
    assert gate.shell == "/bin/sh"
    assert {"kubectl", "printf", "sleep", "date"} <= set(gate.tools)


@pytest.mark.parametrize("stack", ["homelab", "cleura"])
def test_every_program_container_uses_a_pinned_image_with_the_shell_it_runs(program: RunProgram,
                                                                            stack: str) -> None:
    rec = program(stack)
    scripted = 0
    for name, container in containers(rec):
        pin = pin_for(container["image"])
        assert pin is not None, f"{name}: {container['image']} is not pinned in components/versions.py IMAGES"
        command = container.get("command") or []
        if command and command[0] in SHELLS:
            scripted += 1
            assert pin.shell == command[0], f"{name}: {pin.ref} has no {command[0]} ({pin.build_file})"
            script = command[2] if len(command) > 2 else ""
            used = {tool for tool in ("kubectl", "printf", "sleep", "date", "curl", "jq") if tool in script}
            assert used <= set(pin.tools), f"{name}: the script uses {sorted(used - set(pin.tools))}"
    if stack == "homelab":
        assert scripted >= 1  # the MetalLB webhook gate
