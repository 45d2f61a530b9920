"""The reaper against the fake Cleura API over real HTTP, through the provider's own client."""

from __future__ import annotations

import json
import os
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import parse_stack_config
from components.delivery import reaper
from components.delivery import review_stack as rs
from components.delivery.review_stack import ANNOTATION_EXPIRES, ANNOTATION_MR
from components.gardener.client import client_from_env
from components.gardener.spec import create_body
from tests.gardener.fake_cleura import FakeCleura, ShootRecord, shoot_from_create

from .conftest import PROJECT, REGION, reaper_env

NOW = "2026-12-02T07:00:00Z"
PAST, FUTURE = "2026-12-01T07:00:00Z", "2026-12-04T07:00:00Z"


def add_shoot(fake: FakeCleura, name: str, annotations: dict[str, str] | None = None,
              project: str = PROJECT) -> None:
    body: dict[str, Any] = {
        "name": name, "kubernetes_version": "1.33.4",
        "shoot_provider": {"load_balancer_provider": "amphora",
                           "infrastructure_config": {"floating_pool_name": "ext-net"},
                           "workers": [{"name": "general", "machine": {"type": "b.2c4gb"}, "minimum": 1,
                                        "maximum": 1, "annotations": [{"key": k, "value": v} for k, v in
                                                                      (annotations or {}).items()]}]}}
    with fake.lock:
        fake.shoots[("public", REGION, project, name)] = ShootRecord("public", REGION, project,
                                                                      shoot_from_create(body, REGION, project))


def review(iid: int, expires: str) -> dict[str, str]:
    return {ANNOTATION_MR: str(iid), ANNOTATION_EXPIRES: expires}


@pytest.fixture
def cloud(fake: FakeCleura) -> FakeCleura:
    add_shoot(fake, "rv-1", review(1, PAST))                       # expired review shoot: reaped
    add_shoot(fake, "rv-2", review(2, FUTURE))                     # not yet expired
    add_shoot(fake, "rv-prod", {"team": "platform"})               # prefix in its name, but production
    add_shoot(fake, "rv-3", {ANNOTATION_EXPIRES: PAST})            # only one marker
    add_shoot(fake, "platform-sto2", review(4, PAST))              # markers, but not the review prefix
    add_shoot(fake, "rv-5", review(5, "yesterday"))                # unparsable expiry
    add_shoot(fake, "rv-6", review(6, "2026-12-01T09:00:00+02:00"))  # expired, with an offset
    return fake


def run(fake: FakeCleura, *args: str, **env: str) -> int:
    return reaper.main(["--region", REGION, "--project-id", PROJECT, "--now", NOW, *args],
                       env=reaper_env(fake.url, **env))


def test_dry_run_reports_every_shoot_and_deletes_nothing(cloud: FakeCleura, capsys: pytest.CaptureFixture[str]) -> None:
    before = cloud.shoot_names()
    assert run(cloud) == 0
    out = capsys.readouterr().out
    assert cloud.shoot_names() == before
    assert cloud.count("DELETE") == 0
    lines = {line.split()[1].rstrip(":"): line for line in out.splitlines()[1:]}
    assert set(lines) == set(before)
    assert lines["rv-1"].startswith("select") and "dry run" in lines["rv-1"]
    assert lines["rv-6"].startswith("select")
    for keep in ("rv-2", "rv-prod", "rv-3", "platform-sto2", "rv-5"):
        assert lines[keep].startswith("keep"), lines[keep]
    assert "expires at 2026-12-04" in lines["rv-2"]
    assert "not marked as a review shoot" in lines["rv-prod"] and "not marked" in lines["rv-3"]
    assert "review prefix" in lines["platform-sto2"]
    assert "not an RFC 3339 time" in lines["rv-5"]
    assert "2 selected" in out.splitlines()[0]


def test_apply_deletes_only_expired_marked_review_shoots(cloud: FakeCleura,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cloud, "--apply", "--keep-stacks") == 0
    assert cloud.shoot_names() == ["platform-sto2", "rv-2", "rv-3", "rv-5", "rv-prod"]
    deletes = [p for m, p, _ in cloud.requests if m == "DELETE"]
    assert sorted(p.rsplit("/", 1)[-1] for p in deletes) == ["rv-1", "rv-6"]
    out = capsys.readouterr().out
    assert "deleted rv-1" in out and "deleted rv-6" in out
    # waited until gone: the last GET of each deleted shoot answered 404
    assert cloud.count("GET", r"/rv-1$", 404) >= 1


def test_clock_decides(cloud: FakeCleura) -> None:
    assert reaper.main(["--region", REGION, "--project-id", PROJECT, "--now", "2026-12-05T00:00:00Z", "--apply",
                        "--keep-stacks"], env=reaper_env(cloud.url)) == 0
    assert "rv-2" not in cloud.shoot_names() and "rv-prod" in cloud.shoot_names()


def test_failed_delete_gives_non_zero_exit(cloud: FakeCleura, capsys: pytest.CaptureFixture[str]) -> None:
    cloud.fail_next_delete = "Infrastructure deletion failed: volume still attached"
    assert run(cloud, "--apply", "--keep-stacks") == 1
    out = capsys.readouterr().out
    assert "FAILED  rv-1" in out and "volume still attached" in out
    assert "deleted rv-6" in out  # one failure does not stop the others


def test_transient_errors_are_retried_like_the_provider(cloud: FakeCleura) -> None:
    cloud.add_fault("GET", r"/shoots/Sto2/p1234567890abcdef$", "status", status=429, retry_after="1", times=2)
    cloud.add_fault("DELETE", r"/rv-1$", "status", status=503, times=1)
    cloud.add_fault("GET", r"/rv-6$", "status", status=502, times=1)
    assert run(cloud, "--apply", "--keep-stacks") == 0
    assert cloud.count("GET", r"p1234567890abcdef$", 429) == 2
    assert cloud.count("DELETE", r"/rv-1$", 503) == 1
    assert "rv-1" not in cloud.shoot_names() and "rv-6" not in cloud.shoot_names()


def test_other_project_untouched_and_stack_location(cloud: FakeCleura, tmp_path: Path) -> None:
    add_shoot(cloud, "rv-9", review(9, PAST), project="pother00000000000")
    (tmp_path / "Pulumi.cleura.yaml").write_text(
        f"config:\n  platform:cleura:\n    region: {REGION}\n    projectId: {PROJECT}\n")
    assert reaper.main(["--stack", "cleura", "--root", str(tmp_path), "--now", NOW, "--apply", "--keep-stacks"],
                       env=reaper_env(cloud.url)) == 0
    assert "rv-9" in cloud.shoot_names() and "rv-1" not in cloud.shoot_names()


def fake_pulumi(bindir: Path, log: Path, stacks: list[str], rm_status: int = 0) -> None:
    """A stand-in `pulumi` on PATH (the real CLI cannot be built here) recording its arguments."""
    bindir.mkdir()
    script = bindir / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$*\" >> {log}\n"
        f"echo \"FALLBACK=$PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER\" >> {log}\n"
        "case \"$1 $2\" in\n"
        f"  'stack ls') echo '{json.dumps([{'name': s} for s in stacks])}' ;;\n"
        f"  'stack rm') exit {rm_status} ;;\n"
        "esac\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_matching_review_stack_is_removed(cloud: FakeCleura, tmp_path: Path) -> None:
    log = tmp_path / "pulumi.log"
    fake_pulumi(tmp_path / "bin", log, ["cleura", "review-1"])
    (tmp_path / "Pulumi.review-1.yaml").write_text("config: {}\n")
    path = f"{tmp_path / 'bin'}{os.pathsep}/usr/bin:/bin"
    assert run(cloud, "--apply", "--root", str(tmp_path), PATH=path) == 0
    calls = log.read_text().splitlines()
    assert "stack rm --force --yes --non-interactive review-1" in calls
    assert not any("review-6" in c and "rm" in c for c in calls)  # review-6 is not in the backend
    assert "FALLBACK=true" in calls
    assert not (tmp_path / "Pulumi.review-1.yaml").exists()


def test_failed_stack_removal_is_a_failure(cloud: FakeCleura, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    fake_pulumi(tmp_path / "bin", tmp_path / "log", ["review-1"], rm_status=255)
    assert run(cloud, "--apply", "--root", str(tmp_path), PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin") == 1
    assert "FAILED  stack review-1" in capsys.readouterr().out


def test_decide_is_pure_and_strict() -> None:
    now = datetime(2026, 12, 2, 7, tzinfo=UTC)
    shoot = {"name": "rv-1", "shoot_provider": {"workers": [
        {"annotations": [{"key": ANNOTATION_MR, "value": "1"}]},
        {"annotations": [{"key": ANNOTATION_MR, "value": "1"}, {"key": ANNOTATION_EXPIRES, "value": PAST}]}]}}
    assert reaper.decide(shoot, prefix="rv-", now=now).delete
    assert not reaper.decide(shoot, prefix="rev-", now=now).delete
    assert not reaper.decide({**shoot, "last_operation": {"type": "Delete"}}, prefix="rv-", now=now).delete
    assert not reaper.decide({"name": "rv-1"}, prefix="rv-", now=now).delete


def test_bad_arguments(fake: FakeCleura, capsys: pytest.CaptureFixture[str]) -> None:
    assert reaper.main(["--now", NOW], env=reaper_env(fake.url)) == 2
    assert "--region" in capsys.readouterr().err
    assert reaper.main(["--region", REGION, "--project-id", PROJECT, "--prefix", ""], env=reaper_env(fake.url)) == 2
    env = reaper_env(fake.url)
    del env["CLEURA_API_PASSWORD"]
    assert reaper.main(["--region", REGION, "--project-id", PROJECT], env=env) == 2
    assert "CLEURA_API_TOKEN" in capsys.readouterr().err


def test_a_review_stack_shoot_is_reaped_end_to_end(fake: FakeCleura, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """review_stack's config -> the program's create body -> POST to the fake API -> reaper."""
    root = tmp_path / "p"
    root.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "Pulumi.cleura.yaml", root)
    result = rs.write_review_stack(77, root=root, now=datetime(2026, 12, 1, tzinfo=UTC), hibernate=True)
    config = yaml.safe_load(result.path.read_text())["config"]
    config["platform:cleura"]["projectId"] = PROJECT  # the fake's project
    config["platform:cleura"]["kubernetesVersion"] = "1.33.4"
    parsed = parse_stack_config(config, stack=result.stack)
    assert parsed.cleura is not None
    body = create_body(parsed.cleura.shoot)
    client = client_from_env("public", reaper_env(fake.url))
    client.request("POST", f"/gardener/v2/public/shoots/{REGION}/{PROJECT}", body)  # validated by the fake
    add_shoot(fake, "rv-prod", {"team": "platform"})
    fake.finish_operations()
    env = reaper_env(fake.url)
    argv = ["--region", REGION, "--project-id", PROJECT, "--keep-stacks"]
    assert reaper.main([*argv, "--now", "2026-12-02T23:00:00Z", "--apply"], env=env) == 0  # not expired yet
    assert "rv-77" in fake.shoot_names()
    assert reaper.main([*argv, "--now", "2026-12-03T00:00:01Z", "--apply"], env=env) == 0
    assert fake.shoot_names() == ["rv-prod"]
    assert "deleted rv-77" in capsys.readouterr().out
