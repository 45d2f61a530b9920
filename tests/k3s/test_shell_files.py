"""The K3s scripts' static shell lives in real files (components/k3s/sh/), shellchecked as source."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from components.k3s import scripts, upgrade
from components.k3s.shell import HEADER_END, shell_text

ROOT = Path(__file__).resolve().parents[2]
SH_DIR = ROOT / "components" / "k3s" / "sh"


def sh_files() -> list[Path]:
    return sorted(SH_DIR.glob("*.sh"))


def test_every_step_body_is_a_shell_file() -> None:
    names = {p.name for p in sh_files()}
    assert {"prologue.sh", "lib.sh", "version-rules.sh", "install.sh", "remove.sh", "prepare.sh",
            "preflight.sh", "api-ready.sh", "member-create.sh", "member-delete.sh", "kubeconfig.sh"} <= names
    # Python keeps only the values and the assembly: no bash function body is left in it.
    for module in (scripts, upgrade):
        source = Path(module.__file__ or "").read_text()
        assert "() {" not in source, f"{module.__name__} still holds shell functions"


def test_header_is_not_rendered_and_body_is() -> None:
    for path in sh_files():
        text = path.read_text()
        assert text.startswith("# shellcheck shell=bash"), path.name
        body = shell_text(path.name)
        assert text.endswith(body) and HEADER_END not in body, path.name
        assert "shellcheck shell=bash" not in body
    assert scripts.LIBRARY.endswith(upgrade.shell_functions())


def test_shell_files_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["components.k3s"]
    matched = {p.name for pattern in patterns for p in (ROOT / "components" / "k3s").glob(pattern)}
    assert matched == {p.name for p in sh_files()}


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_source_files_pass_shellcheck() -> None:
    proc = subprocess.run(
        ["shellcheck", "--severity=style", *[str(p) for p in sh_files()]], capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
