"""`platform:charts.mirror`: every chart from one Helm repository, or from a local folder of archives."""

from __future__ import annotations

from pathlib import Path

import pytest

from components import versions
from components.offline.runner import ProgramFailed, Recording
from tests.conftest import RunProgram

RELEASE = "kubernetes:helm.sh/v3:Release"
CHART_V4 = "kubernetes:helm.sh/v4:Chart"


def charts(rec: Recording) -> dict[str, tuple[str, str | None]]:
    """Each Helm release/chart of a run: (chart, repository) as the engine receives them."""
    out = {}
    for res in rec.of_type(RELEASE) + rec.of_type(CHART_V4):
        repo = (res.inputs.get("repositoryOpts") or {}).get("repo")
        out[res.name] = (res.inputs["chart"], repo)
    return out


def test_a_repository_mirror_serves_every_chart_and_an_explicit_repo_wins(program: RunProgram) -> None:
    mirror = "https://charts.mirror.example.com/helm"
    rec = program("homelab", {"platform:charts": {"mirror": mirror + "/"},
                              "platform:versions": {"charts": {"metallb": {"version": "0.16.1",
                                                                           "repo": "https://metallb.example.org"}}}})
    seen = charts(rec)
    assert seen, "the homelab installs Helm charts"
    for name, (chart, repo) in seen.items():
        expected = "https://metallb.example.org" if chart == "metallb" else mirror
        assert repo == expected, name
        assert "/" not in chart, name


def test_a_local_mirror_installs_the_pinned_archives_without_a_repository(program: RunProgram, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mirror"
    folder.mkdir()
    for pin in versions.CHARTS.values():
        (folder / pin.archive_name).write_bytes(b"not read under mocks")
    rec = program("homelab", {"platform:charts": {"mirror": str(folder)}})
    seen = charts(rec)
    by_chart = {Path(chart).name: repo for chart, repo in seen.values()}
    assert by_chart == {f"{pin.chart}-{pin.version}.tgz": None for pin in versions.CHARTS.values()
                        if f"{pin.chart}-{pin.version}.tgz" in by_chart}
    assert {versions.CHARTS["longhorn"].archive_name, versions.CHARTS["metallb"].archive_name} <= set(by_chart)
    assert all(Path(chart).parent == folder for chart, _ in seen.values())


def test_a_local_mirror_missing_an_archive_in_use_stops_before_anything_is_registered(
        program: RunProgram, tmp_path: Path) -> None:
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name, pin in versions.CHARTS.items():
        if name != "longhorn":
            (folder / pin.archive_name).write_bytes(b"x")
    with pytest.raises(ProgramFailed) as failed:
        program("homelab", {"platform:charts": {"mirror": str(folder)}})
    assert failed.value.registered == []
    message = str(failed.value.__cause__)
    assert f"{folder}/{versions.CHARTS['longhorn'].archive_name} is missing" in message
    assert "platform:charts.mirror" in message


def test_an_archive_the_stack_does_not_install_need_not_be_in_the_mirror(program: RunProgram,
                                                                          tmp_path: Path) -> None:
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name, pin in versions.CHARTS.items():
        if name != "openebs":  # the homelab runs Longhorn
            (folder / pin.archive_name).write_bytes(b"x")
    assert charts(program("homelab", {"platform:charts": {"mirror": str(folder)}}))


@pytest.mark.parametrize(("mirror", "why"), [
    ("ftp://charts.example.com", "neither an http(s):// Helm repository nor a local folder"),
    ("/nonexistent/charts", "is not a folder"),
])
def test_a_bad_mirror_names_the_key_and_the_value(program: RunProgram, mirror: str, why: str) -> None:
    with pytest.raises(ProgramFailed) as failed:
        program("homelab", {"platform:charts": {"mirror": mirror}})
    message = str(failed.value.__cause__)
    assert "platform:charts.mirror" in message and mirror in message and why in message
    assert failed.value.registered == []


def test_the_reference_archives_work_as_a_mirror(program: RunProgram, reference: Path) -> None:
    rec = program("homelab", {"platform:charts": {"mirror": str(reference / "chart-archives")}})
    assert all(Path(chart).is_file() for chart, _ in charts(rec).values())
