"""Every rendered script: parses, passes shellcheck, keeps values in its header, holds no secret."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from components import versions
from components.k3s import scripts
from components.k3s.args import K3sClusterArgs

from .stacks import S3_SECRET, SSH_KEY, homelab_args, rich_args

VALUES_START = "# --- values ---\n"
VALUES_END = "# --- end of values ---\n"


def stacks(tmp: Path) -> dict[str, K3sClusterArgs]:
    return {"homelab": homelab_args(), "rich-3+5": rich_args(tmp)}


def split(script: str) -> tuple[str, str, str]:
    head, rest = script.split(VALUES_START, 1)
    values, body = rest.split(VALUES_END, 1)
    return head, values, body


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("airgap")
    return {name: scripts.all_scripts(args) for name, args in stacks(tmp).items()}


def test_homelab_renders_every_step(rendered: dict[str, dict[str, str]]) -> None:
    names = set(rendered["homelab"])
    assert {"preflight.sh", "api-ready.sh", "kubeconfig.sh"} <= names
    assert len([n for n in names if n.endswith("-install.sh")]) == 6
    assert len([n for n in names if n.endswith("-member.sh")]) == 3


def test_every_script_parses_with_bash_n(rendered: dict[str, dict[str, str]]) -> None:
    for stack, texts in rendered.items():
        for name, text in texts.items():
            proc = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
            assert proc.returncode == 0, f"{stack}/{name}: {proc.stderr}"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_every_script_passes_shellcheck(rendered: dict[str, dict[str, str]], tmp_path: Path) -> None:
    files = []
    for stack, texts in rendered.items():
        for name, text in texts.items():
            path = tmp_path / stack / name
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
            files.append(str(path))
    proc = subprocess.run(["shellcheck", "--severity=style", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[:4000]
    # + node, node-delete, uninstall per agent, + labels per node
    assert len(files) == 27 + 8 * 3 + 5 * 2 + 3 + 3 * (3 + 5) + (6 + 8) + 2  # + ca-hash


def test_scripts_are_complete_and_strict(rendered: dict[str, dict[str, str]]) -> None:
    for texts in rendered.values():
        for text in texts.values():
            head, _, _ = split(text)
            assert head.startswith("#!/usr/bin/env bash\n")
            assert "set -euo pipefail" in head
            assert "exec sudo -n -- bash -c" in head


def test_configuration_appears_only_in_the_values_block(rendered: dict[str, dict[str, str]]) -> None:
    """Same kind of script, two very different stacks: everything outside the values is identical."""
    homelab, rich = rendered["homelab"], rendered["rich-3+5"]
    pairs = [("preflight.sh", "preflight.sh"), ("api-ready.sh", "api-ready.sh"), ("kubeconfig.sh", "kubeconfig.sh"),
             ("k3s-control-01-install.sh", "node-s1-install.sh"), ("k3s-worker-02-install.sh", "node-a3-install.sh"),
             ("k3s-control-02-prepare.sh", "node-a4-prepare.sh"), ("k3s-control-03-remove.sh", "node-s2-remove.sh"),
             ("k3s-worker-01-member.sh", "node-a1-member.sh"),
             ("k3s-worker-01-member-delete.sh", "node-a5-member-delete.sh")]
    for left, right in pairs:
        (h1, v1, b1), (h2, v2, b2) = split(homelab[left]), split(rich[right])
        assert (h1, b1) == (h2, b2), f"{left} vs {right}: static text differs"
        assert v1 != v2


def test_values_block_is_only_assignments(rendered: dict[str, dict[str, str]]) -> None:
    assignment = re.compile(r"[A-Z][A-Z0-9_]*=")
    for texts in rendered.values():
        for name, text in texts.items():
            _, values, _ = split(text)
            # Every logical line starts NAME=; continuation lines only occur inside quotes,
            # which bash -c 'declare -p' below proves by parsing the block on its own.
            proc = subprocess.run(["bash", "-c", values + "\ndeclare -p | wc -l"], capture_output=True, text=True)
            assert proc.returncode == 0 and not proc.stderr, f"{name}: {proc.stderr}"
            first_lines = [line for line in values.splitlines() if line and not line.startswith((" ", "-", "#"))]
            assert all(assignment.match(line) for line in first_lines[:3]), name


def test_no_secret_text_in_any_script(rendered: dict[str, dict[str, str]]) -> None:
    key_lines = [line for line in SSH_KEY.splitlines() if len(line) > 20]
    for texts in rendered.values():
        for text in texts.values():
            assert S3_SECRET not in text and "token:" not in text
            assert not any(line in text for line in key_lines)


def test_installer_is_pinned_and_never_starts_k3s_itself(rendered: dict[str, dict[str, str]]) -> None:
    text = rendered["homelab"]["k3s-control-01-install.sh"]
    pin = versions.K3S_INSTALLER
    assert f"INSTALLER_URL=https://raw.githubusercontent.com/k3s-io/k3s/{pin.commit}/install.sh" in text
    assert f"INSTALLER_SHA256={pin.sha256}" in text
    assert "INSTALL_K3S_SKIP_START=true" in text
    assert "systemctl start --no-block" in text and "systemctl restart --no-block" in text
    assert re.search(r"systemctl (re)?start \"\$SERVICE\"", text) is None  # never a blocking start


def test_firewall_rules_are_exact_per_role(tmp_path: Path) -> None:
    args = rich_args(tmp_path)  # Calico VXLAN, Mayastor, MetalLB
    server = scripts.firewall_rules(args, args.servers[0])
    agent = scripts.firewall_rules(args, args.agents[0])
    assert server.trusted_sources == ("10.42.0.0/16", "10.43.0.0/16")
    assert {"6443/tcp", "2379-2380/tcp", "10250/tcp", "179/tcp", "5473/tcp", "4789/udp", "8420/tcp", "4421/tcp",
            "10124/tcp", "7946/tcp", "7946/udp"} == set(server.ports) - {"80/tcp", "443/tcp"}
    assert "6443/tcp" not in agent.ports and "2379-2380/tcp" not in agent.ports
    assert server.protocols == ()
    homelab = homelab_args()
    rules = scripts.firewall_rules(homelab, homelab.servers[0])
    assert rules.protocols == ("4",) and {"3260/tcp", "2049/tcp"} <= set(rules.ports)


def test_hugepages_only_on_mayastor_storage_nodes(tmp_path: Path) -> None:
    args = rich_args(tmp_path)
    storage_node, plain_node = args.agents[0], args.agents[1]
    assert not plain_node.storage
    assert ("vm.nr_hugepages", "1024") in scripts.host_sysctls(args, storage_node)
    assert all(k != "vm.nr_hugepages" for k, _ in scripts.host_sysctls(args, plain_node))
    assert "nvme_tcp" in scripts.host_modules(args, plain_node)


def test_the_kubeconfig_is_re_read_every_quarter_before_its_client_certificate_expires() -> None:
    import datetime as dt

    args = homelab_args()
    q3 = scripts.kubeconfig_script(args, today=dt.date(2026, 9, 30))
    q4 = scripts.kubeconfig_script(args, today=dt.date(2026, 10, 1))
    assert str(q3) != str(q4) and q4.values["GENERATION"].endswith("2026-Q4")
    assert str(scripts.kubeconfig_script(args, today=dt.date(2026, 11, 15))) == str(q4)
    assert scripts.renewal_period(dt.date(2027, 1, 1)) == "2027-Q1"


def test_a_dedicated_longhorn_disk_is_checked_as_a_mount_on_each_storage_node(tmp_path: Path) -> None:
    """storage.longhorn.dedicatedDisk: host preparation refuses a disk path that is not a mount."""
    from .stacks import homelab_raw, parse

    raw = homelab_raw()
    raw["platform:storage"] = {"kind": "longhorn", "longhorn": {
        "dataPath": "/var/lib/longhorn-disk", "dedicatedDisk": True,
        "nodeDataPaths": {"k3s-worker-01": "/mnt/nvme0"}}}
    args = K3sClusterArgs.from_config(parse(raw))
    storage_nodes = [n for n in args.nodes if n.storage]
    assert storage_nodes
    for node in args.nodes:
        _, values, body = split(scripts.prepare_script(args, node))
        want = {"k3s-worker-01": "/mnt/nvme0"}.get(node.name, "/var/lib/longhorn-disk") if node.storage else None
        line = next(v for v in values.splitlines() if v.startswith("DEDICATED_MOUNTS="))
        assert line == (f"DEDICATED_MOUNTS=({want})" if want else "DEDICATED_MOUNTS=()"), (node.name, line)
    # Run the check itself: a path that is a mount passes, one on the root filesystem stops the step.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mountpoint").write_text('#!/bin/sh\n[ "$3" = /mnt/nvme0 ]\n')
    (fake / "mountpoint").chmod(0o755)
    snippet = body[body.index("  # storage.longhorn.dedicatedDisk"):].split("\n}\n", 1)[0].replace("  local path\n", "")
    for path, ok in (("/mnt/nvme0", True), ("/var/lib/longhorn-disk", False)):
        harness = f'set -u\nNODE=n1\nDEDICATED_MOUNTS=({path})\ndie() {{ echo "$*" >&2; exit 1; }}\n'
        done = subprocess.run(
            ["bash", "-c", harness + snippet],
            capture_output=True, text=True, env={"PATH": f"{fake}:/usr/bin:/bin"},
        )
        assert (done.returncode == 0) is ok, done.stderr
        if not ok:
            assert "node n1: Longhorn's disk path /var/lib/longhorn-disk is not a separate mount" in done.stderr
