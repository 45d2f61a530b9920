"""The Application health check, executed by a real Lua 5.1 (Argo CD's gopher-lua speaks 5.1)."""

from __future__ import annotations

from typing import Any

import pytest

from components import argocd

lua51 = pytest.importorskip("lupa.lua51")


def health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(argocd.APPLICATION_HEALTH_LUA)
    return str(result["status"]), str(result["message"])


def app(health_status: str | None = None, sync: str | None = None,
        conditions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if health_status is not None:
        status["health"] = {"status": health_status}
    if sync is not None:
        status["sync"] = {"status": sync}
    if conditions is not None:
        status["conditions"] = conditions
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "x"},
            **({"status": status} if status else {})}


def test_a_new_application_without_status_is_progressing() -> None:
    assert health(app())[0] == "Progressing"


def test_synced_and_healthy_is_healthy() -> None:
    assert health(app("Healthy", "Synced"))[0] == "Healthy"


def test_healthy_but_not_synced_is_still_progressing() -> None:
    # A child that was just created reports Healthy before anything is deployed (argo-cd#6708).
    assert health(app("Healthy", "OutOfSync")) == ("Progressing", "healthy but not yet synced")
    assert health(app("Healthy"))[0] == "Progressing"


@pytest.mark.parametrize("state", ["Degraded", "Missing", "Progressing", "Suspended", "Unknown"])
def test_the_childs_own_health_is_passed_up(state: str) -> None:
    assert health(app(state, "Synced"))[0] == state


def test_an_error_condition_is_degraded_even_when_reported_healthy() -> None:
    # A wrong repoURL or path leaves a ComparisonError while health may still say Healthy (argo-cd#10088).
    cond = [{"type": "SharedResourceWarning", "message": "fine"},
            {"type": "ComparisonError", "message": "repository not found"}]
    assert health(app("Healthy", "Synced", cond)) == ("Degraded", "repository not found")
    assert health(app("Healthy", "Synced", [{"type": "SharedResourceWarning", "message": "ok"}]))[0] == "Healthy"
