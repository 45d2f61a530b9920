"""The avp generate pipeline as a real script: shellcheck-clean, and run against stub tools."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from components import argocd

RENDERED = """apiVersion: v1
kind: Secret
metadata:
  name: demo
  annotations:
    note: keep%2Fthis%3Aencoded
stringData:
  password: %3Cpath%3Akv%2Fdata%2Fargocd%2Fapps%2Fhelm%2Fdemo%23password%3E
  both: "%3Cpath%3Akv%2Fdata%2Fa%23x%3E-%3cpath%3akv%2fdata%2fb%23y%3e"
  piped: %3Cpath%3Akv%2Fdata%2Fc%23z%20%7C%20base64encode%3E
  json: "\\u003cpath:kv/data/d#w\\u003e"
  plain: <path:kv/data/e#v>
"""
DECODED = """apiVersion: v1
kind: Secret
metadata:
  name: demo
  annotations:
    note: keep%2Fthis%3Aencoded
stringData:
  password: <path:kv/data/argocd/apps/helm/demo#password>
  both: "<path:kv/data/a#x>-<path:kv/data/b#y>"
  piped: <path:kv/data/c#z | base64encode>
  json: "<path:kv/data/d#w>"
  plain: <path:kv/data/e#v>
"""


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(app directory, stub bin directory, record directory)."""
    app, bin_dir, rec = tmp_path / "app", tmp_path / "bin", tmp_path / "rec"
    for d in (app, bin_dir, rec):
        d.mkdir()
    (tmp_path / "rendered.yaml").write_text(RENDERED)
    _stub(bin_dir, "helm", f'printf "%s\\n" "$@" > {rec}/helm-args\ncat {tmp_path}/rendered.yaml\n')
    _stub(bin_dir, "kustomize", f'printf "%s\\n" "$@" > {rec}/kustomize-args\ncat {tmp_path}/rendered.yaml\n')
    _stub(bin_dir, "argocd-vault-plugin", f'printf "%s\\n" "$@" > {rec}/avp-args\ntee {rec}/avp-stdin\n')
    return app, bin_dir, rec


def run(app: Path, bin_dir: Path, mode: str, helm_args: str = "") -> subprocess.CompletedProcess[str]:
    script = app.parent / "avp-generate.sh"
    script.write_text(argocd.plugin_script())
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "ARGOCD_APP_NAME": "demo", "ARGOCD_APP_NAMESPACE": "demo",
           "KUBE_VERSION": "1.34.2", "ARGOCD_ENV_HELM_ARGS": helm_args}
    return subprocess.run(["bash", str(script), mode], cwd=app, env=env, capture_output=True, text=True,
                          check=False, timeout=60)


def test_script_is_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    subprocess.run(["shellcheck", "-s", "bash", "-"], input=argocd.plugin_script(), text=True, check=True)
    subprocess.run(["bash", "-n"], input=argocd.plugin_script(), text=True, check=True)


def test_helm_render_is_url_decoded_before_the_plugin_sees_it(workspace: tuple[Path, Path, Path]) -> None:
    app, bin_dir, rec = workspace
    (app / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    done = run(app, bin_dir, "helm", "--values values.yaml --set image.tag=1.2 *")
    assert done.returncode == 0, done.stderr
    assert (rec / "avp-stdin").read_text() == DECODED
    assert (rec / "avp-args").read_text().split() == ["generate", "-"]
    assert done.stdout == DECODED
    # HELM_ARGS is split on whitespace, never globbed (`*` stays a literal argument).
    assert (rec / "helm-args").read_text().split("\n")[:-1] == [
        "template", "demo", ".", "--namespace", "demo", "--include-crds", "--kube-version", "1.34.2",
        "--values", "values.yaml", "--set", "image.tag=1.2", "*"]


def test_kustomize_variant_is_detected_and_decoded(workspace: tuple[Path, Path, Path]) -> None:
    app, bin_dir, rec = workspace
    (app / "kustomization.yaml").write_text("helmCharts: []\n")
    done = run(app, bin_dir, "auto")
    assert done.returncode == 0, done.stderr
    assert (rec / "kustomize-args").read_text().split() == ["build", "--enable-helm", "."]
    assert (rec / "avp-stdin").read_text() == DECODED


def test_a_directory_with_both_a_chart_and_a_kustomization_is_refused(workspace: tuple[Path, Path, Path]) -> None:
    app, bin_dir, rec = workspace
    (app / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (app / "kustomization.yaml").write_text("resources: []\n")
    done = run(app, bin_dir, "auto")
    assert done.returncode != 0 and "keep exactly one" in done.stderr
    assert not (rec / "avp-stdin").exists()


def test_a_failing_render_fails_the_pipeline(workspace: tuple[Path, Path, Path]) -> None:
    app, bin_dir, _ = workspace
    (app / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    _stub(bin_dir, "helm", 'echo "Error: template failed" >&2\nexit 1\n')
    done = run(app, bin_dir, "helm")
    assert done.returncode != 0


def test_chart_dependencies_are_updated_first(workspace: tuple[Path, Path, Path]) -> None:
    app, bin_dir, rec = workspace
    (app / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\ndependencies:\n  - name: x\n")
    _stub(bin_dir, "helm", f'echo "$1" >> {rec}/helm-calls\n[ "$1" = template ] && cat {app.parent}/rendered.yaml\n'
                           'true\n')
    done = run(app, bin_dir, "helm")
    assert done.returncode == 0, done.stderr
    assert (rec / "helm-calls").read_text().split() == ["dependency", "template"]


def test_sidecar_image_is_built_from_the_pinned_versions_and_checks_the_binary() -> None:
    import re

    from components import versions
    from components.offline.runner import PROJECT_ROOT

    text = (PROJECT_ROOT / "images" / "argocd-vault-plugin" / "Dockerfile").read_text()
    build_args = dict(re.findall(r"^ARG (\w+)=(.*)$", text, flags=re.MULTILINE))
    assert build_args["ARGOCD_IMAGE"] == versions.ARGOCD_IMAGE
    assert build_args["ARGOCD_VERSION"] == versions.ARGOCD_VERSION
    assert build_args["AVP_VERSION"] == versions.ARGOCD_VAULT_PLUGIN_VERSION
    assert build_args["AVP_MODULE_SUM"] == versions.ARGOCD_VAULT_PLUGIN_MODULE_SUM
    # The module is checked against the pinned sum before it is built, and nothing is fetched by URL.
    assert '"Sum\\": \\"${AVP_MODULE_SUM}\\"' in text and "releases/download" not in text
    assert re.search(r"^FROM \$\{ARGOCD_IMAGE\}:\$\{ARGOCD_VERSION\}$", text, flags=re.MULTILINE)


def test_without_kube_version_helm_uses_its_default(workspace: tuple[Path, Path, Path]) -> None:
    app, bin_dir, rec = workspace
    (app / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    script = app.parent / "avp-generate.sh"
    script.write_text(argocd.plugin_script())
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "ARGOCD_APP_NAME": "demo", "ARGOCD_APP_NAMESPACE": "demo"}
    done = subprocess.run(["bash", str(script), "helm"], cwd=app, env=env, capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--kube-version" not in (rec / "helm-args").read_text().split()


def test_the_pinned_module_sum_is_what_the_go_module_proxy_serves(tmp_path: Path) -> None:
    """The sum the image build checks is the plugin module's real h1: hash (checked by the Go tooling)."""
    import json

    from components import versions

    if shutil.which("go") is None:
        pytest.skip("no Go toolchain: cannot ask the Go module proxy for the plugin module's sum")
    module = f"github.com/argoproj-labs/argocd-vault-plugin@v{versions.ARGOCD_VAULT_PLUGIN_VERSION}"
    done = subprocess.run(
        ["go", "mod", "download", "-json", module],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "GOFLAGS": "-mod=mod", "GOPATH": os.environ.get("GOPATH", str(Path.home() / "go"))},
    )
    if done.returncode != 0 and "connect" in done.stderr:
        pytest.skip(f"the Go module proxy is not reachable: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Sum"] == versions.ARGOCD_VAULT_PLUGIN_MODULE_SUM
