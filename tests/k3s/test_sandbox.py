"""The production scripts, executed for real in a throwaway root (see sandbox.py).

Only commands that would touch the machine are stubbed. The scripts run exactly as
rendered for the stack, as sshd would run them, with config.yaml on stdin.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from components.k3s import render, scripts
from components.k3s.args import K3sClusterArgs

from .sandbox import Sandbox, unshare_available
from .stacks import FAST, homelab_args, rich_args

pytestmark = pytest.mark.skipif(not unshare_available(), reason="needs unshare (mount namespace) and chroot")

SECRETS = render.ConfigSecrets("k" * 64, "g" * 64, "s3-secret")
NEXT = "v1.35.0+k3s1"


@pytest.fixture
def homelab() -> K3sClusterArgs:
    return dataclasses.replace(homelab_args(), timeouts=FAST)


def install(sb: Sandbox, args: K3sClusterArgs, index: int, secrets: render.ConfigSecrets = SECRETS):
    node = args.nodes[index]
    return sb.run(scripts.install_script(args, node), stdin=render.install_stdin(args, node, secrets))


def test_debian_host_preparation_converges_and_a_second_run_changes_nothing(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = Sandbox(tmp_path, "debian")
    script = scripts.prepare_script(homelab, homelab.servers[0])
    first = sb.run(script)
    assert first.returncode == 0, first.stderr
    assert first.changes > 0
    calls = sb.calls()
    assert {"modprobe overlay", "modprobe br_netfilter", "modprobe iscsi_tcp", "swapoff -a"} <= set(calls)
    assert "systemctl disable --quiet ufw" in calls and "systemctl stop ufw" in calls
    assert any("apt-get -o DPkg::Lock::Timeout=300 install" in c and "open-iscsi" in c for c in calls)
    assert sum(c == "apt-get -o DPkg::Lock::Timeout=300 update -q" for c in calls) == 1
    # Waits (bounded) for a dpkg lock held by unattended-upgrades instead of failing the first boot.
    assert all("DPkg::Lock::Timeout=300" in c for c in calls if c.startswith("apt-get"))
    assert (sb.path("/etc/modules-load.d/platform-k3s.conf").read_text()
            == "overlay\nbr_netfilter\niscsi_tcp\n")
    sysctl = sb.path("/etc/sysctl.d/90-platform-k3s.conf").read_text()
    assert "net.ipv4.ip_forward = 1\n" in sysctl and "-net.ipv6.conf.all.forwarding = 1\n" in sysctl
    assert sb.path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() == "1"
    assert "#platform:k3s swap off# /dev/sda2 none swap sw 0 0" in sb.path("/etc/fstab").read_text()
    assert sb.path("/stub/units/iscsid.service/active").exists()

    before = sb.snapshot()
    sb.reset_calls()
    second = sb.run(script)
    assert second.returncode == 0, second.stderr
    assert second.changes == 0
    assert sb.mutating_calls() == []
    assert sb.snapshot() == before


def test_rhel_host_with_managed_firewall_selinux_and_mayastor(tmp_path: Path) -> None:
    args = dataclasses.replace(rich_args(tmp_path / "airgap"), timeouts=FAST)
    sb = Sandbox(tmp_path / "sb", "rhel")
    node = args.agents[0]  # a Mayastor storage node
    script = scripts.prepare_script(args, node)
    refused = sb.run(script)
    assert refused.returncode != 0 and "pre-install the container-selinux and k3s-selinux RPMs" in refused.stderr
    sb.path("/stub/pkgs/k3s-selinux").touch()  # airgap + SELinux: the operator pre-installs the policy
    first = sb.run(script)
    assert first.returncode == 0, first.stderr
    rules = sb.path("/stub/firewalld/rules").read_text().splitlines()
    assert "trusted source=10.42.0.0/16" in rules and "trusted source=10.43.0.0/16" in rules
    assert "default port=4789/udp" in rules and "default port=10250/tcp" in rules
    assert "default port=6443/tcp" not in rules  # an agent serves no API
    assert "firewall-cmd -q --reload" in sb.calls()
    assert sb.path("/stub/selinux-mode").read_text().strip() == "Enforcing"  # selinux: true keeps it on
    assert not sb.path("/stub/units/nm-cloud-setup.timer/enabled").exists()
    assert "modprobe nvme_tcp" in sb.calls()
    assert sb.path("/proc/sys/vm/nr_hugepages").read_text().strip() == "1024"
    assert [c for c in sb.calls() if c.startswith("dnf install")] == ["dnf install -y -q firewalld"]

    before = sb.snapshot()
    sb.reset_calls()
    second = sb.run(script)
    assert (second.returncode, second.changes) == (0, 0), second.stderr
    assert sb.mutating_calls() == []
    assert sb.snapshot() == before


def test_rhel_selinux_false_goes_permissive_now_and_at_boot(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path, "rhel")
    result = sb.run(scripts.prepare_script(homelab, homelab.servers[0]))
    assert result.returncode == 0, result.stderr
    assert sb.path("/stub/selinux-mode").read_text().strip() == "Permissive"
    assert "SELINUX=permissive" in sb.path("/etc/selinux/config").read_text()
    assert not sb.path("/stub/units/firewalld.service/active").exists()  # firewall: disabled


def test_unsupported_distributions_are_refused(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path, "centos7")
    result = sb.run(scripts.prepare_script(homelab, homelab.servers[0]))
    assert result.returncode != 0 and "too old (9 or later is required)" in result.stderr
    assert sb.mutating_calls() == []


def test_hugepages_the_kernel_cannot_reserve_fail_loudly(tmp_path: Path) -> None:
    args = dataclasses.replace(rich_args(tmp_path / "airgap"), timeouts=FAST)
    sb = Sandbox(tmp_path / "sb", "rhel")
    sb.path("/stub/hugepages-short").touch()
    result = sb.run(scripts.prepare_script(args, args.agents[0]))
    assert result.returncode != 0 and "the kernel kept vm.nr_hugepages=512 (wanted 1024)" in result.stderr


def test_server_install_writes_config_0600_and_starts_without_blocking(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    first = install(sb, homelab, 0)
    assert first.returncode == 0, first.stderr
    config = sb.path("/etc/rancher/k3s/config.yaml")
    assert config.stat().st_mode & 0o777 == 0o600
    assert config.read_text() == render.render_node_config(homelab, homelab.nodes[0], SECRETS)
    manifest = sb.path("/var/lib/rancher/k3s/server/manifests/platform-kube-vip.yaml")
    assert manifest.read_text() == render.kube_vip_manifest(homelab)
    assert sb.path("/usr/local/bin/k3s-install.sh").stat().st_mode & 0o777 == 0o755  # the installer is kept
    calls = sb.calls()
    assert "installer v1.34.2+k3s1 server" in calls
    assert "systemctl start --no-block k3s" in calls
    env = sb.path("/stub/installer-env.log").read_text()
    assert "INSTALL_K3S_SKIP_START=true" in env and "INSTALL_K3S_SKIP_SELINUX_RPM=true" in env
    assert SECRETS.token not in env and "K3S_TOKEN" not in env

    before = sb.snapshot()
    sb.reset_calls()
    second = install(sb, homelab, 0)
    assert (second.returncode, second.changes) == (0, 0), second.stderr
    assert sb.mutating_calls() == []
    assert sb.snapshot() == before


def test_config_change_restarts_once_without_reinstalling(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 1).returncode == 0
    sb.reset_calls()
    changed = dataclasses.replace(homelab, failover_tuning=False)
    result = install(sb, changed, 1)
    assert result.returncode == 0, result.stderr
    assert sb.mutating_calls() == ["systemctl restart --no-block k3s"]
    assert "node-monitor-period" not in sb.path("/etc/rancher/k3s/config.yaml").read_text()


def test_version_bump_upgrades_and_waits_for_the_new_version(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 0).returncode == 0
    sb.reset_calls()
    result = install(sb, dataclasses.replace(homelab, version=NEXT), 0)
    assert result.returncode == 0, result.stderr
    assert sb.mutating_calls() == [f"installer {NEXT} server", "systemctl enable k3s",
                                   "systemctl restart --no-block k3s"]
    assert sb.path("/stub/running-k3s.service").read_text().strip() == NEXT
    assert f"etcd member at {NEXT}" in result.stderr


@pytest.mark.parametrize(("installed", "wanted", "why"), [
    ("v1.34.2+k3s1", "v1.34.1+k3s1", "downgrade from v1.34.2+k3s1 to v1.34.1+k3s1 refused"),
    ("v1.34.2+k3s1", "v1.36.0+k3s1", "skips minor version(s) refused"),
])
def test_downgrades_and_minor_skips_are_refused_before_touching_the_node(
    tmp_path: Path, homelab: K3sClusterArgs, installed: str, wanted: str, why: str,
) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, dataclasses.replace(homelab, version=installed), 0).returncode == 0
    before = sb.snapshot()
    sb.reset_calls()
    result = install(sb, dataclasses.replace(homelab, version=wanted), 0)
    assert result.returncode != 0
    assert why in result.stderr and "nothing was changed on this node" in result.stderr
    assert sb.mutating_calls() == []
    assert sb.snapshot() == before


def test_a_node_that_never_gets_ready_fails_within_the_bound(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    sb.path("/stub/broken").touch()
    args = dataclasses.replace(homelab, timeouts=dataclasses.replace(FAST, server_ready=2))
    result = install(sb, args, 0)
    assert result.returncode != 0
    assert "gave up waiting for a new k3s process after 2s" in result.stderr
    assert "k3s did not start" in result.stderr


def test_agent_install_and_rerun(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    result = install(sb, homelab, 3)
    assert result.returncode == 0, result.stderr
    assert "installer v1.34.2+k3s1 agent" in sb.calls()
    text = sb.path("/etc/rancher/k3s/config.yaml").read_text()
    assert f"token: {SECRETS.agent_token}" in text and SECRETS.token not in text
    assert not sb.path("/var/lib/rancher/k3s/server/manifests/platform-kube-vip.yaml").exists()
    sb.reset_calls()
    assert install(sb, homelab, 3).changes == 0
    assert sb.mutating_calls() == []


def test_airgap_install_uses_only_staged_artefacts(tmp_path: Path) -> None:
    args = dataclasses.replace(rich_args(tmp_path / "airgap"), timeouts=FAST, selinux=False)
    sb = Sandbox(tmp_path / "sb")
    stage = "/var/lib/platform/k3s/staging"
    fake_k3s = sb.path("/stub/fake-k3s").read_text().replace("@VERSION@", args.version)
    sb.path(f"{stage}/k3s").parent.mkdir(parents=True)
    sb.path(f"{stage}/k3s").write_text(fake_k3s)
    sb.path(f"{stage}/install.sh").write_text(sb.path("/stub/fake-install.sh").read_text())
    sb.path(f"{stage}/platform-airgap-images.tar.zst").write_text("images")
    result = install(sb, args, 4)
    assert result.returncode == 0, result.stderr
    assert not any(c.startswith("curl") for c in sb.calls())
    assert "INSTALL_K3S_SKIP_DOWNLOAD=true" in sb.path("/stub/installer-env.log").read_text()
    assert sb.path("/var/lib/rancher/k3s/agent/images/platform-airgap-images.tar.zst").read_text() == "images"
    sb.reset_calls()
    assert install(sb, args, 4).changes == 0


def test_removing_a_server_drains_and_deletes_it_then_uninstalls(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 1).returncode == 0
    sb.path("/stub/remote-up").touch()
    sb.path("/stub/etcd-members").write_text(
        '{"name":"k3s-control-01-0a1b2c3d","peerURLs":["https://192.0.2.51:2380"]}\n'
        '{"name":"k3s-control-02-1a2b3c4d","peerURLs":["https://192.0.2.52:2380"]}\n')
    result = sb.run(scripts.remove_script(homelab, homelab.servers[1]))
    assert result.returncode == 0, result.stderr
    ops = sb.path("/stub/cluster-ops.log").read_text()
    assert "drain k3s-control-02" in ops and "delete node k3s-control-02" in ops
    assert "--server https://192.0.2.51:6443" in ops  # through a surviving server
    assert "uninstall" in sb.calls()
    assert not sb.path("/usr/local/bin/k3s").exists() and not sb.path("/var/lib/platform/k3s").exists()
    # a second delete (or one on a host that never had K3s) is a no-op
    again = sb.run(scripts.remove_script(homelab, homelab.servers[1]))
    assert again.returncode == 0 and "nothing to remove" in again.stderr


def test_the_last_server_uninstalls_without_leaving_itself(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 0).returncode == 0
    sb.path("/stub/cluster-nodes").write_text("k3s-control-01\n")
    sb.path("/stub/remote-down").touch()  # the other servers are gone already
    result = sb.run(scripts.remove_script(homelab, homelab.servers[0]))
    assert result.returncode == 0, result.stderr
    assert "last etcd member" in result.stderr
    assert not sb.path("/stub/cluster-ops.log").exists()
    assert "uninstall" in sb.calls()


def test_agent_member_steps_on_the_first_server(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 0).returncode == 0
    agent = homelab.agents[0]
    created = sb.run(scripts.member_create_script(homelab, agent))
    assert created.returncode == 0, created.stderr
    sb.path("/stub/internal-ip").write_text("192.0.2.99\n")
    clash = sb.run(scripts.member_create_script(homelab, agent))
    assert clash.returncode != 0 and "two hosts share one node name" in clash.stderr
    early = sb.run(scripts.node_create_script(homelab, agent))  # the same check before the agent installs
    assert early.returncode != 0 and "two hosts share one node name" in early.stderr
    deleted = sb.run(scripts.member_delete_script(homelab, agent))
    assert deleted.returncode == 0, deleted.stderr
    ops = sb.path("/stub/cluster-ops.log").read_text()
    # the member step only drains: the Node is deleted by the node step once the agent is stopped
    assert "drain k3s-worker-01" in ops and "delete node" not in ops
    sb.path("/stub/node-gone").touch()
    gone = sb.run(scripts.node_delete_script(homelab, agent))
    assert gone.returncode == 0, gone.stderr
    assert "delete node k3s-worker-01" in sb.path("/stub/cluster-ops.log").read_text()


def test_preflight_refuses_downgrades_and_majority_removals(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    fresh = sb.run(scripts.preflight_script(homelab))
    assert fresh.returncode == 0 and "fresh install" in fresh.stderr
    assert install(sb, homelab, 0).returncode == 0
    live = ("k3s-control-01 {v} true\nk3s-control-02 {v} true\nk3s-control-03 {v} true\n"
            "k3s-worker-01 {v} \n")
    sb.path("/stub/cluster-nodes").write_text(live.format(v="v1.34.2+k3s1"))
    assert sb.run(scripts.preflight_script(dataclasses.replace(homelab, version=NEXT))).returncode == 0

    sb.path("/stub/cluster-nodes").write_text(live.format(v="v1.35.1+k3s1"))
    refused = sb.run(scripts.preflight_script(homelab))
    assert refused.returncode != 0
    assert "k3s-control-02: downgrade from v1.35.1+k3s1 to v1.34.2+k3s1 refused" in refused.stderr
    assert "no node was touched" in refused.stderr

    sb.path("/stub/cluster-nodes").write_text(live.format(v="v1.34.2+k3s1"))
    one_server = dataclasses.replace(homelab, nodes=(homelab.nodes[0], *homelab.agents))
    shrink = sb.run(scripts.preflight_script(one_server))
    assert shrink.returncode != 0
    assert "removing 2 of 3 servers at once (k3s-control-02, k3s-control-03) refused" in shrink.stderr


def test_a_fresh_first_server_never_bootstraps_next_to_a_live_cluster(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = Sandbox(tmp_path)
    sb.path("/stub/ping-pong").touch()  # another configured server answers as K3s
    result = sb.run(scripts.preflight_script(homelab))
    assert result.returncode != 0 and "put an existing server first" in result.stderr
    installed = install(sb, homelab, 0)
    assert installed.returncode != 0 and "put an existing server first" in installed.stderr
    assert not any(c.startswith("installer") for c in sb.calls())


def test_api_ready_and_kubeconfig_on_the_first_server(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 0).returncode == 0
    ready = sb.run(scripts.api_ready_script(homelab))
    assert ready.returncode == 0 and "the API answers at https://192.0.2.49:6443" in ready.stderr
    assert "--server https://192.0.2.49:6443" in "\n".join(sb.calls())
    kubeconfig = sb.run(scripts.kubeconfig_script(homelab))
    assert kubeconfig.returncode == 0 and kubeconfig.stdout == "apiVersion: v1\n"  # stdout is the file only


def _stage_airgap(sb: Sandbox, stage: str, version: str) -> None:
    """What the CopyToRemote steps leave on the host: a k3s of `version`, the installer, images."""
    fake_k3s = sb.path("/stub/fake-k3s").read_text().replace("@VERSION@", version)
    sb.path(f"{stage}/k3s").parent.mkdir(parents=True, exist_ok=True)
    sb.path(f"{stage}/k3s").write_text(fake_k3s)
    sb.path(f"{stage}/install.sh").write_text(sb.path("/stub/fake-install.sh").read_text())
    sb.path(f"{stage}/platform-airgap-images.tar.zst").write_text("images")


def test_airgap_upgrade_reruns_the_installer_and_restarts_into_the_new_binary(tmp_path: Path) -> None:
    # Regression: the staged binary replaced /usr/local/bin/k3s before the version check, so
    # neither the installer nor a restart ran and the node was left on the old version.
    args = dataclasses.replace(rich_args(tmp_path / "airgap"), timeouts=FAST, selinux=False)
    sb = Sandbox(tmp_path / "sb")
    stage = scripts.STAGE_DIR
    _stage_airgap(sb, stage, args.version)
    assert install(sb, args, 4).returncode == 0
    _stage_airgap(sb, stage, NEXT)  # the new binary, as the stage steps upload it
    sb.reset_calls()
    result = install(sb, dataclasses.replace(args, version=NEXT), 4)
    assert result.returncode == 0, result.stderr
    assert f"installer {NEXT} agent" in sb.calls()
    assert "systemctl restart --no-block k3s-agent" in sb.calls()
    assert sb.path("/stub/running-k3s-agent.service").read_text().strip() == NEXT


def test_airgap_upgrade_refuses_a_stale_staged_binary(tmp_path: Path) -> None:
    args = dataclasses.replace(rich_args(tmp_path / "airgap"), timeouts=FAST, selinux=False)
    sb = Sandbox(tmp_path / "sb")
    _stage_airgap(sb, scripts.STAGE_DIR, args.version)
    assert install(sb, args, 4).returncode == 0
    sb.reset_calls()
    result = install(sb, dataclasses.replace(args, version=NEXT), 4)  # the binary was not re-staged
    assert result.returncode != 0
    assert f"the staged k3s binary is '{args.version}', the stack wants {NEXT}" in result.stderr
    assert sb.mutating_calls() == []


def test_airgap_with_a_non_root_ssh_user_reads_the_uploads_from_its_home(tmp_path: Path) -> None:
    # Regression: SFTP uploads run as the SSH user without sudo, so a non-root user could not
    # write the root-owned /var/lib/platform/k3s/staging the install script read from.
    args = dataclasses.replace(rich_args(tmp_path / "airgap"), timeouts=FAST, selinux=False)
    node = args.nodes[5]
    assert node.ssh_user == "deploy"
    assert scripts.stage_path(args, node, "binary") == ".platform-k3s-staging/k3s"  # relative: SFTP's home
    assert scripts.stage_path(args, args.nodes[4], "binary") == "/var/lib/platform/k3s/staging/k3s"
    sb = Sandbox(tmp_path / "sb")
    sb.path("/etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\ndeploy:x:1000:1000::/srv/deploy:/bin/bash\n")
    _stage_airgap(sb, "/srv/deploy/.platform-k3s-staging", args.version)
    result = install(sb, args, 5)
    assert result.returncode == 0, result.stderr
    assert sb.path("/var/lib/rancher/k3s/agent/images/platform-airgap-images.tar.zst").read_text() == "images"
    sb.reset_calls()
    assert install(sb, args, 5).changes == 0


def test_an_upgrade_interrupted_before_the_restart_is_finished_by_the_next_run(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    # Regression: once the installer had replaced the binary, a re-run saw the wanted version
    # installed and an unchanged config, so it never restarted the old process.
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 0).returncode == 0
    new_k3s = sb.path("/stub/fake-k3s").read_text().replace("@VERSION@", NEXT)
    sb.path("/usr/local/bin/k3s").write_text(new_k3s)  # the installer ran; the connection dropped
    sb.reset_calls()
    result = install(sb, dataclasses.replace(homelab, version=NEXT), 0)
    assert result.returncode == 0, result.stderr
    assert "systemctl restart --no-block k3s" in sb.calls()
    assert sb.path("/stub/running-k3s.service").read_text().strip() == NEXT


def test_a_server_stuck_in_activating_is_restarted_by_the_next_run(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    # Regression: 'systemctl start' on a unit that is 'activating' is a no-op, so a join that
    # hung (e.g. etcd ports blocked) could never be retried with a fixed host or config.
    sb = Sandbox(tmp_path)
    sb.path("/stub/hang").touch()
    args = dataclasses.replace(homelab, timeouts=dataclasses.replace(FAST, server_ready=2))
    hung = install(sb, args, 1)
    assert hung.returncode != 0 and "did not become a ready etcd member" in hung.stderr
    sb.path("/stub/hang").unlink()  # the operator fixed the cause
    sb.reset_calls()
    retried = install(sb, args, 1)
    assert retried.returncode == 0, retried.stderr
    assert "systemctl restart --no-block k3s" in sb.calls()
    assert "restarted k3s (was activating)" in retried.stderr


def test_preflight_lets_a_down_first_server_with_its_datastore_be_fixed(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    # Regression: with server 1 down (e.g. a bad config from the last run) and the other servers
    # up, preflight called it a second bootstrap and refused every run, including the fix.
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 0).returncode == 0
    sb.set_unit("k3s.service", enabled=True, active=False)
    sb.path("/stub/ping-pong").touch()
    result = sb.run(scripts.preflight_script(homelab))
    assert result.returncode == 0, result.stderr
    assert "has its datastore but its API does not answer" in result.stderr


def test_a_non_root_ssh_user_reexecs_through_sudo_and_keeps_the_config_on_stdin(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = Sandbox(tmp_path)
    # As a non-root login: `id -u` answers 1000 until sudo ran; sudo -n only records and execs.
    sb.path("/usr/local/sbin/id").write_text(
        '#!/bin/bash\nif [ "${1:-}" = -u ] && [ -z "${SUDO_USER:-}" ]; then echo 1000\n'
        'else exec /usr/bin/id "$@"; fi\n')
    sb.path("/usr/local/sbin/sudo").write_text(
        '#!/bin/bash\necho "sudo $1 $2 $3 $4" >>/stub/calls.log\n[ "$1 $2" = "-n --" ] || exit 1\n'
        'shift 2\nSUDO_USER=deploy exec "$@"\n')
    for name in ("id", "sudo"):
        sb.path(f"/usr/local/sbin/{name}").chmod(0o755)
    result = install(sb, homelab, 3)
    assert result.returncode == 0, result.stderr
    assert "sudo -n -- bash -c" in sb.calls()
    assert f"token: {SECRETS.agent_token}" in sb.path("/etc/rancher/k3s/config.yaml").read_text()
