"""The offline runner itself: what it records must be what the engine would see."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from components.offline.runner import ProgramFailed, run_program

PROGRAM = """
import pulumi
import pulumi_random as random
from pulumi_command import remote

class Box(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("platform:test:Box", name, None, opts)
        token = random.RandomPassword(f"{name}-token", length=24, special=False,
                                      opts=pulumi.ResourceOptions(parent=self, protect=True))

        def later(value):
            # Registered inside an apply: the runner must wait for it.
            remote.Command(
                f"{name}-late", create="echo hi", stdin=token.result,
                connection=remote.ConnectionArgs(host="192.0.2.1",
                                                 private_key=pulumi.Output.secret("PRIVATE-KEY-TEXT")),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[token], delete_before_replace=True,
                                            additional_secret_outputs=["stdout"], ignore_changes=["triggers"]),
            )
            return value

        self.token = token.result.apply(later)
        self.register_outputs({"token": self.token})

box = Box("box")
pulumi.export("token", box.token)
pulumi.export("plain", "visible")
"""


def write_program(tmp_path: Path, body: str) -> Path:
    (tmp_path / "__main__.py").write_text(textwrap.dedent(body))
    (tmp_path / "Pulumi.t.yaml").write_text("config: {}\n")
    return tmp_path


def test_records_types_parents_dependencies_and_options(tmp_path: Path) -> None:
    rec = run_program("t", root=write_program(tmp_path, PROGRAM))
    box, token, late = rec.named("box"), rec.named("box-token"), rec.named("box-late")
    assert (box.type, box.custom) == ("platform:test:Box", False)
    assert token.parent == box.urn and late.parent == box.urn
    assert token.options["protect"] is True
    assert late.options["delete_before_replace"] is True
    assert "stdout" in late.options["additional_secret_outputs"]
    assert late.options["ignore_changes"] == ["triggers"]
    assert rec.depends_on(late, token) and not rec.depends_on(token, late)


def test_waits_for_resources_created_in_apply_and_tracks_secrets(tmp_path: Path) -> None:
    rec = run_program("t", root=write_program(tmp_path, PROGRAM))
    late = rec.named("box-late")
    assert late.is_secret("stdin") and late.is_secret("connection.privateKey")
    assert not late.is_secret("create")
    assert late.redacted_inputs()["stdin"] == "[secret]"
    assert "token" in rec.stack_output_secrets and "plain" not in rec.stack_output_secrets
    assert rec.stack_outputs["plain"] == "visible"
    assert rec.named("box-token").inputs["length"] == 24


def test_program_errors_fail_loudly(tmp_path: Path) -> None:
    root = write_program(tmp_path, "import pulumi\nraise pulumi.RunError('bad config: platform:x')\n")
    with pytest.raises(ProgramFailed, match="bad config: platform:x"):
        run_program("t", root=root)


def test_each_run_starts_from_a_clean_engine(tmp_path: Path) -> None:
    root = write_program(tmp_path, PROGRAM)
    first = run_program("t", root=root)
    second = run_program("t", root=root)
    assert [r.name for r in first] == [r.name for r in second]
    assert first.canonical_json() == second.canonical_json()


def test_render_refuses_to_keep_secret_text_that_escaped_redaction(tmp_path: Path) -> None:
    from components.offline.render import render

    leaky = """
import pulumi
from pulumi_command import local
key = pulumi.Config("platform").get("leaky")  # read as plain text: the secret escapes
local.Command("leak", create=f"echo {key}")
"""
    rec = run_program("t", secrets={"platform:leaky": "SUPER-SECRET-TEXT"}, root=write_program(tmp_path, leaky))
    with pytest.raises(RuntimeError, match="contains secret text"):
        render(rec, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.sh"))


NESTED = """
import pulumi
from pulumi_command import local

class Inner(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("platform:test:Inner", name, None, opts)
        local.Command(f"{name}-cmd", create="true", opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})

class Box(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("platform:test:Box", name, None, opts)
        Inner(f"{name}-inner", opts=pulumi.ResourceOptions(parent=self))
        local.Command(f"{name}-own", create="true", opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})

box = Box("box")
other = Box("other")
local.Command("after", create="true", opts=pulumi.ResourceOptions(depends_on=[box]))
local.Command("partial", create="true")
local.Command("listed", create="true", triggers=pulumi.Output.secret(["first-secret", "second-secret"]))
"""


def test_waiting_for_a_component_means_waiting_for_everything_beneath_it(tmp_path: Path) -> None:
    rec = run_program("t", root=write_program(tmp_path, NESTED))
    after = rec.named("after")
    for name in ("box", "box-inner", "box-inner-cmd", "box-own"):
        assert rec.depends_on(after, rec.named(name)), name
    for name in ("other", "other-inner", "partial"):
        assert not rec.depends_on(after, rec.named(name)), name


def test_items_of_a_secret_list_are_secret(tmp_path: Path) -> None:
    listed = run_program("t", root=write_program(tmp_path, NESTED)).named("listed")
    assert listed.is_secret("triggers") and listed.is_secret("triggers[1]")
    assert not listed.is_secret("create") and not listed.is_secret("triggersX")


def test_encrypted_stack_values_are_left_out_and_replaced_by_placeholders(tmp_path: Path) -> None:
    from components.offline.render import render_secrets
    from components.offline.runner import encrypted_keys, stack_config

    (tmp_path / "Pulumi.s.yaml").write_text(
        "# not a Gardener stack, whatever this comment says: clusterKind: cleura\n"
        "config:\n  platform:clusterName: s\n  platform:etcdS3SecretKey:\n    secure: v1:AAAA\n"
    )
    assert encrypted_keys("s", tmp_path) == ["platform:etcdS3SecretKey"]
    assert stack_config("s", root=tmp_path) == {"platform:clusterName": "s"}
    secrets = render_secrets("s", tmp_path)
    assert sorted(secrets) == ["platform:etcdS3SecretKey", "platform:sshPrivateKey"]
    assert "v1:AAAA" not in secrets.values()
    (tmp_path / "Pulumi.g.yaml").write_text('config:\n  platform:clusterKind: "cleura"\n')
    assert render_secrets("g", tmp_path) == {}


def test_a_stack_with_an_encrypted_secret_runs_offline(tmp_path: Path) -> None:
    """`make render` must not read an encrypted value as a secret set in plain text."""
    from components.offline.render import render_secrets
    from components.offline.runner import PROJECT_ROOT

    text = (PROJECT_ROOT / "Pulumi.homelab.yaml").read_text()
    text += "  platform:etcdS3SecretKey:\n    secure: v1:c2FsdA==\n"
    text = text.replace("      snapshotRetention: 12\n",
                        "      snapshotRetention: 12\n      s3: {bucket: etcd-backups, accessKey: AKIAEXAMPLE}\n")
    (tmp_path / "Pulumi.homelab.yaml").write_text(text)
    (tmp_path / "__main__.py").write_text((PROJECT_ROOT / "__main__.py").read_text())
    rec = run_program("homelab", secrets=render_secrets("homelab", tmp_path), root=tmp_path)
    assert rec.resources
