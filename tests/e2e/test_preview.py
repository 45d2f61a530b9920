"""`pulumi preview` of every stack with the real engine: the plan equals what the offline render records.

Needs the Python language host and the three provider plugins, which `make engine` builds
only where the Go module proxy serves them (see engine/pins.env and the README): where it
does not, these tests skip with the recorded reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.offline.render import throwaway_ssh_key
from tests.conftest import stack_files
from tests.e2e.engine import REPO, binary
from tests.e2e.pulumi_cli import workspace

PLUGINS = ("pulumi-language-python", "pulumi-resource-kubernetes", "pulumi-resource-command",
           "pulumi-resource-random")


@pytest.mark.parametrize("stack", stack_files())
def test_preview_plans_exactly_the_rendered_resources(stack: str, tmp_path: Path) -> None:
    for plugin in PLUGINS:
        binary(plugin)
    ws = workspace(tmp_path, [stack])
    key = throwaway_ssh_key()
    ws.pulumi("config", "set", "--secret", "--stack", stack, "platform:sshPrivateKey", stdin=key)
    done = ws.pulumi("preview", "--stack", stack, "--json", timeout=900)
    assert key.splitlines()[1] not in done.stdout + done.stderr
    steps = json.loads(done.stdout)["steps"]
    planned = {(s["newState"]["type"], s["urn"].rsplit("::", 1)[-1]) for s in steps
               if s.get("newState") and s["newState"]["type"] != "pulumi:pulumi:Stack"}
    out = tmp_path / "render"
    subprocess.run([sys.executable, "-m", "components.offline.render", stack, "--out", str(out)], cwd=REPO,
                   check=True, capture_output=True)
    recorded = {(r["type"], r["name"]) for r in json.loads((out / stack / "resources.json").read_text())}
    assert planned == recorded
