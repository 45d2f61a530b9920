"""What `pulumi preview --diff` / `up --diff` would print for each stack contains no secret.

The CLI prints every input value, except values registered as secrets, which it shows as
`[secret]`. Under the offline runner the same masking is `redacted_inputs()`; so if no secret
text survives it, none reaches a job log (outputs are off with `--suppress-outputs`)."""

from __future__ import annotations

import json

import pytest

from components.offline.render import render_secrets
from components.offline.runner import run_program


@pytest.mark.parametrize("stack", ["homelab", "cleura"])
def test_diff_shows_no_secret(stack: str) -> None:
    secrets = render_secrets(stack)
    recording = run_program(stack, secrets=secrets)
    shown = json.dumps([r.redacted_inputs() for r in recording.resources])
    needles = {v for v in secrets.values() if v}
    needles |= {line for v in secrets.values() for line in v.splitlines() if len(line) >= 16 and "-----" not in line}
    leaked = sorted(n[:20] for n in needles if n in shown)
    assert leaked == []
    if stack == "homelab":
        assert "[secret]" in shown and needles  # something secret was there and got masked
