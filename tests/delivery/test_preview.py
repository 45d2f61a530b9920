"""Plan report, note body and the one-note-per-stack upsert against a fake GitLab over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.delivery import preview as pv

from .fake_gitlab import TOKEN, FakeGitLab

DIFF = """Previewing update (cleura):
  pulumi:pulumi:Stack: (same)
    [urn=urn:pulumi:cleura::platform::pulumi:pulumi:Stack::platform-cleura]
    ~ pulumi-python:dynamic/cleura:Shoot: (update)
        [urn=urn:pulumi:cleura::platform::platform:gardener:ShootCluster$pulumi-python:dynamic/cleura:Shoot::cleura-shoot]
      ~ kubernetes_version: "1.33.4" => "1.34.1"
        connection: [secret]
    + kubernetes:storage.k8s.io/v1:StorageClass: (create)
    +-kubernetes:core/v1:Namespace: (replace)
    - kubernetes:core/v1:ConfigMap: (delete)
Outputs:
    apiEndpoint: "https://api.rv-1.example"
    kubeconfig : [secret]

Resources:
    + 1 to create
    ~ 1 to update
    - 1 to delete
    +-1 to replace
    4 changes. 3 unchanged
"""


def test_counts_from_text_and_json_agree() -> None:
    assert pv.counts_from_text(DIFF) == {"create": 2, "update": 1, "delete": 2}
    digest = {"changeSummary": {"create": 1, "update": 1, "delete": 1, "replace": 1, "same": 3}}
    assert pv.counts_from_digest(digest) == {"create": 2, "update": 1, "delete": 2}
    steps = {"steps": [{"op": "create"}, {"op": "same"}, {"op": "update"}, {"op": "update"}]}
    assert pv.counts_from_digest(steps) == {"create": 1, "update": 2, "delete": 0}
    assert pv.counts_from_text("error: could not load plugin") is None


def test_no_changes_summary() -> None:
    text = "Previewing update (homelab):\n\nResources:\n    41 unchanged\n"
    assert pv.counts_from_text(text) == {"create": 0, "update": 0, "delete": 0}
    body = pv.note_body(pv.NoteContext("homelab"), text, pv.counts_from_text(text))
    assert ":white_check_mark: no changes" in body


def test_note_summary_first_diff_collapsed_no_outputs() -> None:
    body = pv.note_body(pv.NoteContext("cleura", 0, "0123456789abcdef", "https://gl/job/1"), DIFF,
                        pv.counts_from_text(DIFF))
    lines = body.splitlines()
    assert lines[0] == "<!-- platform-preview stack=cleura -->"
    assert "2 to create, 1 to update, 2 to delete" in body
    assert body.index("to create") < body.index("<details>") < body.index("kubernetes_version")
    assert "api.rv-1.example" not in body and "Outputs: (not shown)" in body
    assert "Resources:" in body  # the summary after the outputs survives
    assert "commit `0123456789ab`" in body


def test_failed_preview_is_said_first() -> None:
    body = pv.note_body(pv.NoteContext("cleura", 255), "error: policy violation", None)
    assert "preview **failed** (exit 255)" in body and "did not finish" in body


def test_long_diff_is_cut_from_the_middle() -> None:
    diff = "".join(f"line {i}\n" for i in range(20000))
    body = pv.note_body(pv.NoteContext("s"), diff, {"create": 1, "update": 0, "delete": 0}, limit=3000)
    assert len(body) < 4000
    assert "line 0\n" in body and "line 19999" in body and "line 10000\n" not in body
    assert "lines cut from the middle" in body


def test_fences_in_the_diff_cannot_break_the_block() -> None:
    body = pv.note_body(pv.NoteContext("s"), 'value: "```\n</details>"', None)
    assert body.count("```") == 2


def test_secret_values_are_redacted(tmp_path: Path) -> None:
    env = {"PULUMI_CONFIG_PASSPHRASE": "hunter2-passphrase", "CLEURA_API_TOKEN": "tok-abcdef"}
    diff = tmp_path / "preview.txt"
    diff.write_text(DIFF + "debug: token tok-abcdef and hunter2-passphrase\n")
    assert pv.main(["--stack", "cleura", "--diff", str(diff), "--note", str(tmp_path / "n.md")], env=env) == 0
    note = (tmp_path / "n.md").read_text()
    assert "tok-abcdef" not in note and "hunter2-passphrase" not in note and "[secret]" in note


def test_report_file(tmp_path: Path) -> None:
    diff = tmp_path / "preview.txt"
    diff.write_text(DIFF)
    env = {"CI_JOB_URL": "https://gitlab.example.com/grp/platform/-/jobs/77"}
    assert pv.main(["--stack", "cleura", "--diff", str(diff), "--report", str(tmp_path / "plan.json")], env=env) == 0
    report = json.loads((tmp_path / "plan.json").read_text())
    # GitLab accepts exactly these keys in this order (it adds job_path itself)
    assert list(report.items()) == [("create", 2), ("update", 1), ("delete", 2)]


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    fake = FakeGitLab()
    yield fake
    fake.close()


def post(gitlab: FakeGitLab, tmp_path: Path, stack: str, text: str, token: str = TOKEN) -> int:
    diff = tmp_path / f"{stack}.txt"
    diff.write_text(text)
    env = {"GITLAB_API_TOKEN": token, "CI_MERGE_REQUEST_IID": "12", "CI_PROJECT_ID": "grp/platform",
           "CI_API_V4_URL": gitlab.api}
    return pv.main(["--stack", stack, "--diff", str(diff), "--post"], env=env)


def test_one_note_per_stack_edited_in_place(gitlab: FakeGitLab, tmp_path: Path) -> None:
    # unrelated discussion, more than one page of it
    gitlab.notes += [{"id": i, "mr": "12", "body": f"comment {i}"} for i in range(150)]
    assert post(gitlab, tmp_path, "cleura", DIFF) == 0
    assert post(gitlab, tmp_path, "homelab", "Resources:\n    3 unchanged\n") == 0
    assert post(gitlab, tmp_path, "cleura", DIFF.replace("1.34.1", "1.34.9")) == 0
    ours = [n for n in gitlab.notes if n["body"].startswith("<!-- platform-preview")]
    assert len(ours) == 2
    cleura = next(n for n in ours if "stack=cleura" in n["body"])
    assert "1.34.9" in cleura["body"]
    assert [m for m, _ in gitlab.requests].count("POST") == 2
    assert [m for m, _ in gitlab.requests].count("PUT") == 1
    assert any("/projects/grp%2Fplatform/" in p for _, p in gitlab.requests)


def test_without_token_nothing_is_posted_and_the_job_passes(gitlab: FakeGitLab, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert post(gitlab, tmp_path, "cleura", DIFF, token="") == 0
    assert gitlab.requests == [] and "not posted" in capsys.readouterr().out
    assert post(gitlab, tmp_path, "cleura", DIFF, token="glpat-wrong-token") == 0
    assert "HTTP 401" in capsys.readouterr().err and gitlab.notes == []
