"""The review-stack command: valid unique names, template carried over, markers, idempotence."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from components.config import parse_stack_config
from components.delivery import review_stack as rs

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
SHOOT_NAME_RE = re.compile(r"^[A-Za-z0-9-]{1,15}$")  # ../shared/reference/cleura-gardener-api.md


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Pulumi.cleura.yaml", tmp_path / "Pulumi.cleura.yaml")
    return tmp_path


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_names_valid_and_unique_for_every_iid_up_to_ten_million() -> None:
    seen: set[str] = set()
    for iid in [*range(1, 20001), *range(10**7 - 20000, 10**7 + 1), 99999, 100000, 999999, 1000000]:
        name = rs.shoot_name(iid)
        assert SHOOT_NAME_RE.match(name) and name == name.lower(), name
        assert name.startswith(rs.DEFAULT_PREFIX)
        seen.add(name)
    assert len(seen) == 40001 + 4  # injective: every iid its own name
    assert rs.shoot_name(10**7) == "rv-10000000"


@pytest.mark.parametrize("iid", [0, -1, 10**7 + 1])
def test_iid_out_of_range_is_refused(iid: int) -> None:
    with pytest.raises(rs.ReviewStackError, match=r"1\.\.10000000"):
        rs.shoot_name(iid)


@pytest.mark.parametrize("prefix", ["", "Rv-", "1rv", "review-mr", "rv_"])
def test_prefix_that_could_break_a_name_is_refused(prefix: str) -> None:
    with pytest.raises(rs.ReviewStackError, match="--prefix"):
        rs.shoot_name(5, prefix)


def test_review_stack_from_template(project: Path) -> None:
    result = rs.write_review_stack(1234, root=project, now=NOW)
    assert (result.stack, result.shoot, result.expires_at) == ("review-1234", "rv-1234", "2026-12-04T06:00:00Z")
    config = load(project / "Pulumi.review-1234.yaml")["config"]
    template = load(project / "Pulumi.cleura.yaml")["config"]
    shoot, original = config["platform:cleura"], template["platform:cleura"]
    # carried over
    for key in ("cloud", "region", "projectId", "kubernetesVersion", "networking", "maintenance", "timeouts"):
        assert shoot[key] == original[key], key
    assert config["platform:storage"] == template["platform:storage"]
    assert shoot["shootProvider"]["loadBalancerProvider"] == original["shootProvider"]["loadBalancerProvider"]
    # review shape
    assert shoot["name"] == config["platform:clusterName"] == "rv-1234"
    assert shoot["enableHaControlPlane"] is False
    (worker,) = shoot["shootProvider"]["workers"]
    assert (worker["minimum"], worker["maximum"], worker["machine"]["type"]) == (1, 1, rs.DEFAULT_MACHINE_TYPE)
    assert worker["labels"] == original["shootProvider"]["workers"][0]["labels"]
    assert {"key": "review.platform/mr", "value": "1234"} in worker["annotations"]
    assert {"key": "review.platform/expires-at", "value": "2026-12-04T06:00:00Z"} in worker["annotations"]
    # and the program's own config parser accepts it as it is
    parsed = parse_stack_config(config, stack="review-1234")
    assert parsed.cleura is not None and parsed.cleura.shoot.name == "rv-1234"
    assert not parsed.cleura.shoot.enable_ha_control_plane


def test_idempotent_and_keeps_what_pulumi_added(project: Path) -> None:
    rs.write_review_stack(7, root=project, now=NOW)
    path = project / "Pulumi.review-7.yaml"
    first = path.read_text()
    rs.write_review_stack(7, root=project, now=NOW)
    assert path.read_text() == first
    # `pulumi stack init` adds an encryption salt; a later push must keep it, move only expires-at
    path.write_text(first + "encryptionsalt: v1:abc:def\n")
    rs.write_review_stack(7, root=project, now=NOW + timedelta(hours=5))
    again = load(path)
    assert again["encryptionsalt"] == "v1:abc:def"
    assert again["config"]["platform:cleura"]["name"] == "rv-7"
    annotations = again["config"]["platform:cleura"]["shootProvider"]["workers"][0]["annotations"]
    assert [a["value"] for a in annotations if a["key"] == rs.ANNOTATION_EXPIRES] == ["2026-12-04T11:00:00Z"]
    assert len(annotations) == 2  # markers replaced, not appended again


def test_ttl_and_hibernation(project: Path) -> None:
    result = rs.write_review_stack(3, root=project, now=NOW, ttl=rs.parse_ttl("1d12h"), hibernate=True)
    assert result.expires_at == "2026-12-03T18:00:00Z"
    shoot = load(result.path)["config"]["platform:cleura"]
    assert shoot["hibernationSchedules"] == [{"start": "0 19 * * 1-5", "end": "0 7 * * 1-5"}]
    assert parse_stack_config(load(result.path)["config"], stack="review-3").cleura is not None
    for bad in ("", "2w", "0d", "-1h"):
        with pytest.raises(rs.ReviewStackError, match="--ttl"):
            rs.parse_ttl(bad)


def test_template_with_encrypted_values_or_wrong_kind_is_refused(project: Path) -> None:
    doc = load(project / "Pulumi.cleura.yaml")
    doc["config"]["platform:etcdS3SecretKey"] = {"secure": "v1:AAAA"}
    (project / "Pulumi.enc.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(rs.ReviewStackError, match=r"encrypted values .*platform:etcdS3SecretKey"):
        rs.write_review_stack(1, root=project, template="enc", now=NOW)
    shutil.copy(ROOT / "Pulumi.homelab.yaml", project / "Pulumi.homelab.yaml")
    with pytest.raises(rs.ReviewStackError, match="clusterKind"):
        rs.write_review_stack(1, root=project, template="homelab", now=NOW)


def test_cli(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = project / "review.env"
    assert rs.main(["88", "--root", str(project), "--now", "2026-12-02T06:00:00Z", "--ttl", "2d",
                    "--dotenv", str(env_file)]) == 0
    assert env_file.read_text() == ("REVIEW_STACK=review-88\nREVIEW_SHOOT=rv-88\n"
                                    "REVIEW_EXPIRES_AT=2026-12-04T06:00:00Z\n")
    assert "shoot rv-88" in capsys.readouterr().out
    assert rs.main(["abc", "--root", str(project)]) == 2
    assert rs.main(["5", "--root", str(project), "--now", "2026-12-02T06:00:00"]) == 2
    assert "no UTC offset" in capsys.readouterr().err


def test_annotations_reach_the_shoot_spec(project: Path) -> None:
    result = rs.write_review_stack(9, root=project, now=NOW)
    parsed = parse_stack_config(load(result.path)["config"], stack="review-9")
    assert parsed.cleura is not None
    (worker,) = parsed.cleura.shoot.workers
    assert {(a.key, a.value) for a in worker.annotations} >= {(rs.ANNOTATION_MR, "9"),
                                                              (rs.ANNOTATION_EXPIRES, result.expires_at)}


def test_review_template_is_preferred_when_present(project: Path) -> None:
    doc = load(project / "Pulumi.cleura.yaml")
    doc["config"]["platform:cleura"]["kubernetesVersion"] = "1.34.1"
    (project / "Pulumi.review.yaml").write_text(yaml.safe_dump(doc))
    result = rs.write_review_stack(4, root=project, now=NOW)
    assert load(result.path)["config"]["platform:cleura"]["kubernetesVersion"] == "1.34.1"
    assert "generated from Pulumi.review.yaml" in result.path.read_text()
    result = rs.write_review_stack(4, root=project, now=NOW, template="cleura")
    assert load(result.path)["config"]["platform:cleura"]["kubernetesVersion"] == "1.33.4"
