"""Drift versus error, for CLIs that exit 7 on drift and for older ones that exit 255 for both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.delivery import drift

SHOOT_URN = ("urn:pulumi:cleura::platform::platform:gardener:ShootCluster$pulumi-python:dynamic/cleura:Shoot"
             "::cleura-shoot")
DEPLOY_URN = "urn:pulumi:homelab::platform::kubernetes:apps/v1:Deployment::web"
DRIFTED = {"steps": [{"op": "refresh", "urn": DEPLOY_URN}, {"op": "same", "urn": "urn:pulumi:x::p::t::a"},
                     {"op": "update", "urn": DEPLOY_URN, "diffReasons": ["spec"]},
                     {"op": "update", "urn": SHOOT_URN, "diffReasons": ["workers"]}],
           "changeSummary": {"update": 2, "same": 40}}
CLEAN = {"steps": [{"op": "same", "urn": DEPLOY_URN}], "changeSummary": {"same": 42}}
FAILED = {"diagnostics": [{"severity": "error", "message": "dial tcp 192.0.2.49:6443: connect: no route to host"}]}


@pytest.mark.parametrize(("rc", "doc", "status"), [
    (0, CLEAN, "clean"),
    (7, DRIFTED, "drift"),                      # newer CLIs
    (255, DRIFTED, "drift"),                    # older CLIs: the JSON decides
    (255, FAILED, "error"),
    (255, None, "error"),                       # no JSON at all
    (255, {**DRIFTED, **FAILED}, "error"),      # changes, but the preview failed: not trustworthy
    (1, FAILED, "error"),
])
def test_classify(rc: int, doc: dict | None, status: str) -> None:
    text = "" if doc is None else json.dumps(doc)
    if rc == 255 and doc is DRIFTED:
        text += "\nerror: no changes were expected but changes were proposed"
    assert drift.classify(rc, text).status == status


def test_changed_resources_named() -> None:
    verdict = drift.classify(7, json.dumps(DRIFTED))
    assert [c.line() for c in verdict.changes] == [
        "update   kubernetes:apps/v1:Deployment web (spec)",
        "update   pulumi-python:dynamic/cleura:Shoot cleura-shoot (workers)"]
    assert verdict.exit_code == drift.EXIT_DRIFT


def test_cli_log_and_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "drift.json"
    out.write_text(json.dumps(DRIFTED))
    report = tmp_path / "report.json"
    assert drift.main(["--stack", "homelab", "--exit-code", "7", "--json", str(out), "--report", str(report)]) == 3
    assert "Deployment web" in capsys.readouterr().out
    assert json.loads(report.read_text())["status"] == "drift"
    out.write_text(json.dumps(FAILED))
    assert drift.main(["--stack", "homelab", "--exit-code", "255", "--json", str(out)]) == 1
    assert "no route to host" in capsys.readouterr().err
    out.write_text(json.dumps(CLEAN))
    assert drift.main(["--stack", "homelab", "--exit-code", "0", "--json", str(out)]) == 0
