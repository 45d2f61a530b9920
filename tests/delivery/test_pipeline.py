"""The pipeline: GitLab's schema (real validator), the shape GitLab needs for each job, and the
jobs' shell run for real in bash against a stand-in `pulumi` (the real CLI cannot be built here)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.delivery import ci_check

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PINNED = next(line.split("=", 1)[1].strip().lstrip("v") for line in (ROOT / "engine/pins.env").read_text().splitlines()
              if line.startswith("PULUMI_PKG_VERSION="))
STACKS = sorted(p.name[7:-5] for p in ROOT.glob("Pulumi.*.yaml") if not p.name.startswith("Pulumi.review-"))


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    merged, problems = ci_check.expand_pipeline(ROOT)
    assert problems == []
    return merged


def test_pipeline_and_components_validate_with_gitlabs_schema(tmp_path: Path) -> None:
    assert ci_check.run(ROOT, tmp_path / "out", str(VENV_BIN / "check-jsonschema")) == []
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "pipeline.expanded.yml" in written
    assert {f"{t}.spec.yml" for t in ("preview", "up", "destroy", "review", "reap", "drift")} <= set(written)


def copy_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / ".gitlab-ci.yml", root)
    shutil.copytree(ROOT / "templates", root / "templates")
    return root


@pytest.mark.parametrize(("edit", "expected"), [
    (("templates/up.yml", "  interruptible: false\n", "  interruptable: false\n"), "check-jsonschema"),
    (("templates/review.yml", "      when: manual\n", "      when: sometimes\n"), "check-jsonschema"),
    ((".gitlab-ci.yml", "      when: manual\n", "      when: later\n"), "is not one of"),
    ((".gitlab-ci.yml", "      ttl_hours: 48\n", "      ttl_hours: 48\n      ttl: 2d\n"), "not declared"),
    ((".gitlab-ci.yml", "      stack: cleura\n", "      stack: 'bad stack'\n"), "does not match"),
    (("templates/drift.yml", "default: drift", "default: nightly"), "not in `stages`"),
    (("templates/reap.yml", "--prefix \"$[[ inputs.prefix ]]\"", "--prefix \"$[[ inputs.prefixx ]]\""),
     "not declared"),
    (("templates/preview.yml", "      default: policy\n", "      default: 7\n"), "is not a string"),
])
def test_mistakes_are_caught(tmp_path: Path, edit: tuple[str, str, str], expected: str) -> None:
    root = copy_project(tmp_path)
    path, old, new = edit
    text = (root / path).read_text()
    assert old in text
    (root / path).write_text(text.replace(old, new, 1))
    problems = ci_check.run(root, tmp_path / "out", str(VENV_BIN / "check-jsonschema"))
    assert any(expected in p for p in problems), problems


def test_every_stack_has_preview_up_and_drift(pipeline: dict[str, Any]) -> None:
    assert STACKS == ["cleura", "homelab"]
    for stack in STACKS:
        assert {f"preview-{stack}", f"up-{stack}", f"drift-{stack}"} <= set(pipeline)


def test_preview_runs_on_merge_requests_for_the_stacks_a_change_touches(pipeline: dict[str, Any]) -> None:
    for stack in STACKS:
        rules = pipeline[f"preview-{stack}"]["rules"]
        assert all(r["if"] == '$CI_PIPELINE_SOURCE == "merge_request_event"' for r in rules)
        paths = [p for r in rules for p in r["changes"]["paths"]]
        assert f"Pulumi.{stack}.yaml" in paths and "components/**/*" in paths
        assert not any(p.startswith("Pulumi.") and p != f"Pulumi.{stack}.yaml" and p != "Pulumi.yaml" for p in paths)
        job = pipeline[f"preview-{stack}"]
        assert job["artifacts"]["reports"]["terraform"] == f"plan-{stack}.json"
        assert f"preview-{stack}.txt" in job["artifacts"]["paths"]
        assert job["artifacts"]["when"] == "always"


def test_up_is_serialised_per_stack_and_homelab_is_gated(pipeline: dict[str, Any]) -> None:
    for stack in STACKS:
        job = pipeline[f"up-{stack}"]
        assert job["resource_group"] == f"pulumi-{stack}" and job["interruptible"] is False
        assert job["rules"][0]["if"].startswith("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH")
    assert pipeline["up-homelab"]["rules"][0]["when"] == "manual"
    assert pipeline["up-cleura"]["rules"][0]["when"] == "on_success"
    stages = pipeline["stages"]
    assert stages.index("test") < stages.index("preview") < stages.index("up") < stages.index("review")


def test_review_environment_and_stop_job(pipeline: dict[str, Any]) -> None:
    review, stop = pipeline["review"], pipeline["stop-review"]
    assert review["environment"] == {"name": "review/$CI_MERGE_REQUEST_IID", "on_stop": "stop-review",
                                     "auto_stop_in": "48 hours", "deployment_tier": "development"}
    assert stop["environment"] == {"name": "review/$CI_MERGE_REQUEST_IID", "action": "stop"}
    assert stop["stage"] == review["stage"]
    assert stop["rules"][0]["when"] == "manual"
    assert stop["variables"]["GIT_STRATEGY"] == "none"
    assert stop["variables"]["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"] == "true"
    assert stop["resource_group"] == review["resource_group"] == "review-$CI_MERGE_REQUEST_IID"
    assert stop["interruptible"] is False
    assert any("--remove" in line and "pulumi destroy" in line for line in stop["script"])


def test_scheduled_jobs(pipeline: dict[str, Any]) -> None:
    for name in ("reap", "drift-homelab", "drift-cleura"):
        assert pipeline[name]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    drift_script = "\n".join(pipeline["drift-cleura"]["script"])
    assert "--refresh --expect-no-changes --non-interactive --json" in drift_script
    assert not any(line.strip().startswith("pulumi refresh") for line in drift_script.splitlines())
    assert "--apply" in "\n".join(pipeline["reap"]["script"])


def install_snippet(doc: dict[str, Any]) -> str:
    (job,) = [j for j in doc.values() if isinstance(j, dict) and "PULUMI_VERSION" in "\n".join(j["before_script"])]
    return next(s for s in job["before_script"] if "PULUMI_VERSION" in s)


def test_one_install_snippet_everywhere() -> None:
    snippets = set()
    for path in sorted((ROOT / "templates").glob("*.yml")):
        _, jobs = ci_check.load_component(path)
        for job in jobs.values():
            snippets |= {s for s in job["before_script"] if "PULUMI_VERSION" in s}
    assert len(snippets) == 1


def fake_bin(tmp_path: Path, pulumi_script: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for name, body in {
        # get.pulumi.com stand-in: installs a `pulumi` that reports the version it was asked for
        "curl": '#!/bin/sh\ncat <<\'EOF\'\nmkdir -p "$HOME/.pulumi/bin"\necho "$@" > "$HOME/install-args"\n'
                'printf \'#!/bin/sh\\n[ "$1" = version ] && echo v%s\\n\' "$2" > "$HOME/.pulumi/bin/pulumi"\n'
                'chmod +x "$HOME/.pulumi/bin/pulumi"\nEOF\n',
        "pulumi": pulumi_script,
    }.items():
        (bindir / name).write_text(body)
        (bindir / name).chmod(0o755 | stat.S_IEXEC)
    return bindir


def run_snippet(script: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", "set -eo pipefail\n" + script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, check=False)


def test_install_takes_exactly_the_pinned_version(tmp_path: Path) -> None:
    spec, jobs = ci_check.load_component(ROOT / "templates/preview.yml")
    values, _ = ci_check.resolve_inputs(spec, {"stack": "cleura"}, "t")
    snippet = install_snippet(ci_check.interpolate(jobs, values, "t"))
    (tmp_path / "engine").mkdir()
    shutil.copy(ROOT / "engine/pins.env", tmp_path / "engine/pins.env")
    bindir = fake_bin(tmp_path, "#!/bin/sh\nexit 127\n")
    (bindir / "pulumi").unlink()
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path), "PLATFORM_ROOT": str(tmp_path)}
    proc = run_snippet(snippet, tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "install-args").read_text().split()[:2] == ["--version", PINNED]
    assert f"Pulumi CLI v{PINNED}" in proc.stdout
    # no version anywhere: the job stops before installing anything
    (tmp_path / "engine/pins.env").write_text("PULUMI_SDK_VERSION=v3.274.0\n")
    (tmp_path / "install-args").unlink()
    proc = run_snippet(snippet, tmp_path, env)
    assert proc.returncode == 1 and "no exact Pulumi CLI version" in proc.stderr
    assert not (tmp_path / "install-args").exists()


PREVIEW_OUT = """Previewing update (cleura):
    ~ pulumi-python:dynamic/cleura:Shoot: (update)
      ~ kubernetes_version: "1.33.4" => "1.34.1"
Resources:
    ~ 1 to update
    6 unchanged
"""


def job_script(template: str, job: str, inputs: dict[str, Any]) -> str:
    """The job's before_script + script, with its `variables:` exported as the runner does."""
    spec, jobs = ci_check.load_component(ROOT / "templates" / template)
    values, problems = ci_check.resolve_inputs(spec, {"install_command": "true", **inputs}, template)
    assert problems == []
    doc = ci_check.interpolate(jobs, values, template)[job]
    exports = [f"export {k}={shlex.quote(str(v))}" for k, v in (doc.get("variables") or {}).items()]
    return "\n".join([*exports, *doc.get("before_script", []), *doc["script"]])


def job_env(tmp_path: Path, bindir: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{bindir}:{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "CI_PROJECT_DIR": str(tmp_path),
            "PULUMI_BACKEND_URL": f"file://{tmp_path}/state", "PULUMI_CONFIG_PASSPHRASE": "s3cret-passphrase",
            **extra}


def project_dir(tmp_path: Path) -> None:
    (tmp_path / "engine").mkdir(parents=True)
    shutil.copy(ROOT / "engine/pins.env", tmp_path / "engine/pins.env")
    shutil.copy(ROOT / "Pulumi.cleura.yaml", tmp_path)


def pulumi_stub(log: Path, preview_rc: int = 0, output: str = PREVIEW_OUT) -> str:
    body = output.replace("'", "'\\''")
    return (f"#!/bin/sh\n[ \"$1\" = version ] && {{ echo v{PINNED}; exit 0; }}\necho \"$*\" >> {log}\n"
            f"case \"$1\" in preview) printf '%s' '{body}'; exit {preview_rc} ;; esac\nexit 0\n")


@pytest.mark.parametrize("rc", [0, 255])
def test_preview_job_runs(tmp_path: Path, rc: int) -> None:
    project_dir(tmp_path)
    log = tmp_path / "pulumi.log"
    bindir = fake_bin(tmp_path, pulumi_stub(log, rc))
    proc = run_snippet(job_script("preview.yml", "preview-cleura", {"stack": "cleura"}), tmp_path,
                       job_env(tmp_path, bindir))
    assert proc.returncode == rc, proc.stderr
    calls = log.read_text()
    assert "preview --stack cleura --diff --suppress-outputs --non-interactive --policy-pack policy" in calls
    assert json.loads((tmp_path / "plan-cleura.json").read_text())["update"] == 1
    note = (tmp_path / "note-cleura.md").read_text()
    assert note.startswith("<!-- platform-preview stack=cleura -->")
    assert ("failed" in note) is (rc != 0)
    assert "s3cret-passphrase" not in proc.stdout + proc.stderr


def test_drift_job_fails_on_drift_and_names_the_resource(tmp_path: Path) -> None:
    project_dir(tmp_path)
    digest = {"steps": [{"op": "update", "urn": "urn:pulumi:cleura::platform::kubernetes:apps/v1:Deployment::web",
                         "diffReasons": ["spec"]}], "changeSummary": {"update": 1}}
    bindir = fake_bin(tmp_path, pulumi_stub(tmp_path / "log", 7, json.dumps(digest)))
    proc = run_snippet(job_script("drift.yml", "drift-cleura", {"stack": "cleura"}), tmp_path,
                       job_env(tmp_path, bindir))
    assert proc.returncode == 3
    assert "kubernetes:apps/v1:Deployment web (spec)" in proc.stdout
    assert json.loads((tmp_path / "drift-cleura.json").read_text())["status"] == "drift"


def test_review_job_creates_the_review_stack_and_ups_it(tmp_path: Path) -> None:
    project_dir(tmp_path)
    log = tmp_path / "pulumi.log"
    bindir = fake_bin(tmp_path, pulumi_stub(log))
    proc = run_snippet(job_script("review.yml", "review", {}), tmp_path,
                       job_env(tmp_path, bindir, CI_MERGE_REQUEST_IID="321"))
    assert proc.returncode == 0, proc.stderr
    stack = yaml.safe_load((tmp_path / "Pulumi.review-321.yaml").read_text())
    assert stack["config"]["platform:cleura"]["name"] == "rv-321"
    assert stack["config"]["platform:cleura"]["hibernationSchedules"]  # hibernate_outside_hours default true
    assert "up --stack review-321 --yes" in log.read_text()
    assert (tmp_path / "review.env").read_text().startswith("REVIEW_STACK=review-321\n")


def test_stop_job_works_without_the_branch(tmp_path: Path) -> None:
    """GIT_STRATEGY none: the job clones the default branch itself, then destroys and removes."""
    origin = tmp_path / "origin"
    project_dir(origin)
    git = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(["git", *cmd], cwd=origin, env=git, check=True)
    work = tmp_path / "job"
    work.mkdir()
    log = tmp_path / "pulumi.log"
    stub = pulumi_stub(log).replace("case \"$1\" in", "case \"$1\" in stack) [ \"$2\" = ls ] && "
                                    "echo '[{\"name\": \"review-9\"}]'; exit 0 ;;")
    bindir = fake_bin(tmp_path, stub)
    env = job_env(work, bindir, CI_MERGE_REQUEST_IID="9", CI_DEFAULT_BRANCH="main", CI_REPOSITORY_URL=str(origin))
    env["HOME"] = str(tmp_path)
    proc = run_snippet(job_script("review.yml", "stop-review", {}), work, env)
    assert proc.returncode == 0, proc.stderr
    assert "destroy --stack review-9 --yes --suppress-outputs --non-interactive --remove" in log.read_text()
    assert (work / ".review-src" / "Pulumi.cleura.yaml").exists()
    # a stack that is already gone is success, not an error
    log.unlink()
    stub_gone = stub.replace('[{"name": "review-9"}]', "[]")
    assert stub_gone != stub
    (bindir / "pulumi").write_text(stub_gone)
    proc = run_snippet(job_script("review.yml", "stop-review", {}), work, env)
    assert proc.returncode == 0 and "already destroyed" in proc.stdout
    assert "destroy" not in (log.read_text() if log.exists() else "")
