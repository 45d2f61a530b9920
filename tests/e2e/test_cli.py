"""The real Pulumi CLI against the project's stack files: versions, config and secrets as the CLI sees them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from components.offline.runner import encrypted_keys
from tests.conftest import stack_files
from tests.e2e.engine import pins
from tests.e2e.pulumi_cli import workspace


def test_cli_is_the_pinned_version(tmp_path: Path) -> None:
    ws = workspace(tmp_path, [])
    assert ws.pulumi("version").stdout.strip() == pins()["PULUMI_PKG_VERSION"]


def test_every_stack_file_is_read_by_the_cli(tmp_path: Path) -> None:
    stacks = stack_files()
    ws = workspace(tmp_path, stacks)
    for stack in stacks:
        seen = ws.config_json(stack)
        written = yaml.safe_load((ws.project / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert set(seen) == set(written), stack


def test_a_secret_set_with_the_cli_is_ciphertext_in_the_stack_file_and_known_as_secret(tmp_path: Path) -> None:
    ws = workspace(tmp_path, ["homelab"])
    key_text = "-----BEGIN OPENSSH PRIVATE KEY-----\ne2e-not-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"
    ws.pulumi("config", "set", "--secret", "--stack", "homelab", "platform:sshPrivateKey", stdin=key_text)
    stack_file = (ws.project / "Pulumi.homelab.yaml").read_text()
    assert "e2e-not-a-real-key" not in stack_file
    seen = ws.config_json("homelab")["platform:sshPrivateKey"]
    assert seen["secret"] is True and "value" not in seen
    # The offline runner recognises the CLI's own encrypted form, so renders use a placeholder.
    assert "platform:sshPrivateKey" in encrypted_keys("homelab", ws.project)
    shown = json.loads(ws.pulumi("config", "--json", "--show-secrets", "--stack", "homelab").stdout)
    assert shown["platform:sshPrivateKey"]["value"].strip() == key_text.strip()
