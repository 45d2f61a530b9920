"""The offline runner itself: what it records must be what the engine would see."""

from __future__ import annotations

import json
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


def test_a_stack_with_structured_registry_credentials_renders_offline_with_placeholders(tmp_path: Path) -> None:
    """``pulumi config set --secret --path 'platform:k3sRegistryCredentials["host:port"].password'`` leaves a
    structure with `secure:` leaves: the offline run gets the structure, each leaf a placeholder."""
    from components.offline.render import host_files, render_secrets
    from components.offline.runner import PROJECT_ROOT

    text = (PROJECT_ROOT / "Pulumi.homelab.yaml").read_text()
    text = text.replace("    firewall: disabled\n", "    firewall: disabled\n    registries:\n      configs:\n"
                        '        "registry.example.com:5000": {auth: {username: ci}}\n')
    text += ('  platform:k3sRegistryCredentials:\n    registry.example.com:5000:\n      password:\n'
             "        secure: v1:c2FsdA==\n")
    (tmp_path / "Pulumi.homelab.yaml").write_text(text)
    (tmp_path / "__main__.py").write_text((PROJECT_ROOT / "__main__.py").read_text())
    secrets = render_secrets("homelab", tmp_path)
    assert json.loads(secrets["platform:k3sRegistryCredentials"]) == {"registry.example.com:5000": {
        "password": 'offline-render-placeholder-for-k3sRegistryCredentials["registry.example.com:5000"].password'}}
    rec = run_program("homelab", secrets=secrets, root=tmp_path)
    assert rec.resources
    files = host_files("homelab", secrets, tmp_path)
    registries = files["hosts/k3s-worker-01/etc/rancher/k3s/registries.yaml"]
    assert "password: <registry-password>" in registries and "v1:c2FsdA==" not in registries


# -- the stack file as the Pulumi CLI reads it ---------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "cli_config"


def test_stack_file_texts_are_byte_for_byte_what_the_cli_passes() -> None:
    """expected.json was printed by the CLI's own code (workspace.LoadProjectStack + config.Value,
    pulumi sdk v3.274.0; tests/fixtures/cli_config/oracle.go.txt) for Pulumi.cases.yaml."""
    import json

    from components.offline.stackfile import load

    expected = json.loads((FIXTURES / "expected.json").read_text())
    assert load(FIXTURES / "Pulumi.cases.yaml").values == expected
    # The cases the issue names: yaml.v3 keeps `yes` a string, reads 0123 as octal 83 (as the
    # CLI passes it), 1.10 as 1.1; objects are Go JSON (sorted keys, HTML-safe, no `10.0`).
    assert expected["platform:a"] == "yes" and expected["platform:clusterName"] == "83"
    assert expected["platform:b"] == "1.1" and expected["platform:k"] == "0123"
    assert '"y":"yes"' in expected["platform:obj"] and '"w":10,' in expected["platform:obj"]


def test_yes_in_a_nested_value_is_rejected_as_the_cli_run_would(tmp_path: Path) -> None:
    """PyYAML read `natOutgoing: yes` as true; the CLI passes the string 'yes' and the program rejects it."""
    from components.offline.runner import PROJECT_ROOT

    stack = (PROJECT_ROOT / "Pulumi.homelab.yaml").read_text().replace("natOutgoing: true", "natOutgoing: yes")
    assert "natOutgoing: yes" in stack
    (tmp_path / "Pulumi.homelab.yaml").write_text(stack)
    (tmp_path / "__main__.py").write_text((PROJECT_ROOT / "__main__.py").read_text())
    (tmp_path / "components").symlink_to(PROJECT_ROOT / "components")
    with pytest.raises(ProgramFailed) as failed:
        run_program("homelab", secrets={"platform:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n"
                                        "-----END OPENSSH PRIVATE KEY-----\n"}, root=tmp_path)
    assert "platform:calico.natOutgoing: expected true or false, got 'yes'" in str(failed.value.__cause__)


def test_cli_config_texts_reach_the_program_unchanged(tmp_path: Path) -> None:
    body = """
import pulumi
from pulumi.runtime import config
pulumi.export("seen", dict(sorted({**config.get_config_env(), **config.CONFIG.get()}.items())))
"""
    root = write_program(tmp_path, body)
    (root / "Pulumi.t.yaml").write_text(
        "config:\n  platform:clusterName: 0123\n  platform:flag: yes\n  platform:obj: {b: 10.0, a: '<x>'}\n"
        "  bare: ~\n"
    )
    seen = run_program("t", root=root).stack_outputs["seen"]
    assert seen == {"platform:bare": "", "platform:clusterName": "83", "platform:flag": "yes",
                    "platform:obj": '{"a":"\\u003cx\\u003e","b":10}'}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("config:\n  platform:a: [1, 2\n  platform:b: 2\n", "Pulumi.t.yaml:3:"),
        ("config:\n  platform:a: 1\n  platform:a: 2\n",
         "Pulumi.t.yaml:3:3: mapping key 'platform:a' already defined at line 2"),
        ("config:\n\tplatform:a: 1\n", "Pulumi.t.yaml:2:"),
        ("config: [a, b]\n", "Pulumi.t.yaml:1:9: 'config' must be a mapping"),
        ("- a\n", "Pulumi.t.yaml:1:1: a stack file is a mapping"),
    ],
)
def test_a_malformed_stack_file_names_file_and_line(tmp_path: Path, text: str, where: str) -> None:
    from components.offline.stackfile import StackFileError, load

    (tmp_path / "Pulumi.t.yaml").write_text(text)
    with pytest.raises(StackFileError) as caught:
        load(tmp_path / "Pulumi.t.yaml")
    assert str(caught.value).startswith(where), caught.value


def test_render_of_a_malformed_stack_file_is_a_message_and_a_failure_marker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from components.offline.render import FAILED_MARKER, main

    root = write_program(tmp_path, PROGRAM)
    out = tmp_path / "out"
    assert main(["t", "--root", str(root), "--out", str(out)]) == 0
    assert (out / "t" / "resources.json").exists()
    (root / "Pulumi.t.yaml").write_text("config:\n  platform:a: {b: 1\n")
    assert main(["t", "--root", str(root), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Pulumi.t.yaml:3:" in err and "Traceback" not in err
    assert [p.name for p in (out / "t").iterdir()] == [FAILED_MARKER]  # the stale tree is gone
    assert "Pulumi.t.yaml:3:" in (out / "t" / FAILED_MARKER).read_text()


@pytest.mark.parametrize(
    ("value", "text"),
    [(10.0, "10"), (1.1, "1.1"), (1e21, "1e+21"), (1e-7, "1e-7"), (1.2345e-5, "0.000012345"), (-0.0, "-0")],
)
def test_floats_are_written_as_go_writes_them(value: float, text: str) -> None:
    from components.offline.stackfile import go_number

    assert go_number(value) == text


# -- a render a reviewer can diff -----------------------------------------------------------------

SCRIPTS = """
import pulumi
from pulumi_command import local, remote
conn = remote.ConnectionArgs(host="192.0.2.1", private_key=pulumi.Output.secret("PRIVATE-KEY-TEXT"))
same = remote.Command("same", create="echo install\\n", update="echo install\\n", delete="echo bye\\n",
                      connection=conn)
other = local.Command("other", create="echo a\\n", update="echo b\\n", opts=pulumi.ResourceOptions(depends_on=[same]))
pulumi.export("count", 10)
pulumi.export("nested", {"plain": "x", "key": pulumi.Output.secret("NESTED-SECRET-TEXT")})
pulumi.export("token", pulumi.Output.secret("WHOLE-SECRET-TEXT"))
"""


def test_render_writes_each_script_once_and_resources_json_refers_to_it(tmp_path: Path) -> None:
    import json

    from components.offline.render import render

    rec = run_program("t", root=write_program(tmp_path, SCRIPTS))
    out = tmp_path / "out"
    render(rec, out)
    assert sorted(p.name for p in (out / "scripts").iterdir()) == [
        "other.create.sh", "other.update.sh", "same.create.sh", "same.delete.sh"]
    listed = {r["name"]: r for r in json.loads((out / "resources.json").read_text())}
    assert listed["same"]["inputs"]["create"] == "[script scripts/same.create.sh]"
    assert listed["same"]["inputs"]["update"] == "[script scripts/same.create.sh]"  # identical: not written twice
    assert listed["other"]["inputs"]["update"] == "[script scripts/other.update.sh]"
    assert (out / "scripts" / "same.create.sh").read_text() == "echo install\n"
    assert max(len(line) for line in (out / "resources.json").read_text().splitlines()) < 200


def test_render_summary_outputs_and_integers(tmp_path: Path) -> None:
    import json

    from components.offline.render import render

    rec = run_program("t", root=write_program(tmp_path, PROGRAM))
    out = tmp_path / "out"
    render(rec, out)
    lines = (out / "summary.txt").read_text().splitlines()
    assert len(lines) == len(rec.resources) and lines == sorted(lines)
    late = next(line for line in lines if line.startswith("box-late "))
    assert "  command:remote:Command  parent=box  deps=box-token  inputs=" in late
    assert "PRIVATE-KEY-TEXT" not in (out / "summary.txt").read_text()
    outputs = json.loads((out / "outputs.json").read_text())
    assert outputs == {"plain": "visible", "token": "[secret]"}
    listed = {r["name"]: r for r in json.loads((out / "resources.json").read_text())}
    assert '"length": 24,' in (out / "resources.json").read_text() and listed["box-token"]["inputs"]["length"] == 24


def test_summary_hash_changes_with_inputs_and_secret_outputs_are_redacted_when_nested(tmp_path: Path) -> None:
    import json

    from components.offline.render import render

    rec = run_program("t", root=write_program(tmp_path, SCRIPTS))
    render(rec, tmp_path / "a")
    outputs = json.loads((tmp_path / "a" / "outputs.json").read_text())
    # A dict holding a secret is a secret output as a whole (Pulumi lifts secret-ness).
    assert outputs == {"count": 10, "nested": "[secret]", "token": "[secret]"}
    rec2 = run_program("t", root=write_program(tmp_path, SCRIPTS.replace("echo a", "echo A")))
    render(rec2, tmp_path / "b")
    a = (tmp_path / "a" / "summary.txt").read_text().splitlines()
    b = (tmp_path / "b" / "summary.txt").read_text().splitlines()
    assert [x == y for x, y in zip(a, b, strict=True)] == [x.startswith("same ") for x in a]  # only `other` differs


def test_unquoted_values_the_cli_reads_as_other_numbers_are_pointed_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`clusterName: 0123` reaches the program as "83" (in the CLI too): the render says where and why."""
    from components.offline.render import main
    from components.offline.runner import PROJECT_ROOT, cli_config, stack_file_notes

    stack = (PROJECT_ROOT / "Pulumi.homelab.yaml").read_text().replace("platform:clusterName: homelab",
                                                                      "platform:clusterName: 0123")
    stack = stack.replace("snapshotRetention: 12", "snapshotRetention: 012")
    (tmp_path / "Pulumi.homelab.yaml").write_text(stack)
    (tmp_path / "__main__.py").write_text((PROJECT_ROOT / "__main__.py").read_text())
    (tmp_path / "components").symlink_to(PROJECT_ROOT / "components")
    assert cli_config("homelab", root=tmp_path)["platform:clusterName"] == "83"
    line = stack.splitlines().index("  platform:clusterName: 0123") + 1
    notes = stack_file_notes("homelab", tmp_path)
    assert notes[0] == (f"Pulumi.homelab.yaml:{line}:25: unquoted 0123 is read as the octal number 83 (the CLI "
                        'passes 83); quote it ("0123") if 0123 was meant')
    assert "unquoted 012 is read as the octal number 10" in notes[1]
    out = tmp_path / "out"
    assert main(["homelab", "--root", str(tmp_path), "--out", str(out)]) == 0
    assert "note: " + notes[0] in capsys.readouterr().err
    assert (out / "homelab" / "warnings.txt").read_text().splitlines()[:2] == notes
    assert '"clusterName": "83"' in (out / "homelab" / "outputs.json").read_text()


def test_a_version_written_as_1_10_is_pointed_out(tmp_path: Path) -> None:
    from components.offline.runner import stack_file_notes

    (tmp_path / "Pulumi.t.yaml").write_text("config:\n  platform:cleura:\n    kubernetesVersion: 1.30\n")
    assert stack_file_notes("t", tmp_path) == [
        'Pulumi.t.yaml:3:24: unquoted 1.30 is read as the number 1.3; quote it ("1.30") if it is a version or '
        "other text"]


def test_config_keys_are_parsed_as_the_cli_parses_them(tmp_path: Path) -> None:
    from components.offline.stackfile import StackFileError, load

    (tmp_path / "Pulumi.t.yaml").write_text("config:\n  bare: 1\n  platform:config:legacy: x\n  other:k: y\n")
    assert load(tmp_path / "Pulumi.t.yaml").values == {"platform:bare": "1", "platform:legacy": "x", "other:k": "y"}
    (tmp_path / "Pulumi.t.yaml").write_text("config:\n  a:b:c: 1\n")
    with pytest.raises(StackFileError, match="could not parse 'a:b:c' as a configuration key"):
        load(tmp_path / "Pulumi.t.yaml")
