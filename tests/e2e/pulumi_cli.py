"""The real Pulumi CLI (built by `make engine`) on a private, offline workspace.

Every run uses the engine's own ``PULUMI_HOME`` (its plugin cache), a local file backend in
the test's temporary folder, a throwaway passphrase, and no update checks or automatic
plugin downloads, so nothing leaves the machine and nothing touches the user's ~/.pulumi.
The project files are copied into the workspace because `pulumi stack init` writes the
stack's encryption salt into ``Pulumi.<stack>.yaml``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.engine import REPO, binary, engine_dir

PASSPHRASE = "e2e-throwaway-passphrase"  # a test workspace's own, never a real secret


@dataclass
class Workspace:
    project: Path
    state: Path

    def env(self) -> dict[str, str]:
        bin_dir = str(engine_dir() / "bin")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
        env.update({
            "PATH": f"{bin_dir}:{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}",
            "PULUMI_HOME": str(engine_dir() / "pulumi-home"),
            "PULUMI_BACKEND_URL": f"file://{self.state}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
        })
        return env

    def pulumi(self, *args: str, stdin: str | None = None, check: bool = True,
               timeout: int = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(binary("pulumi")), *args, "--non-interactive"], cwd=self.project,
                              env=self.env(), input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}"
                                 f"\n{done.stderr[-3000:]}")
        return done

    def config_json(self, stack: str) -> dict[str, Any]:
        return dict(json.loads(self.pulumi("config", "--json", "--stack", stack).stdout))


def workspace(tmp: Path, stacks: list[str]) -> Workspace:
    """A copy of the project (program, stack files) with its own file backend, stacks created."""
    project = tmp / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py", *[f"Pulumi.{s}.yaml" for s in stacks]):
        shutil.copy2(REPO / name, project / name)
    (project / "components").symlink_to(REPO / "components")
    state = tmp / "state"
    state.mkdir()
    ws = Workspace(project, state)
    for stack in stacks:
        ws.pulumi("stack", "init", stack)
    return ws
