"""Issue 9 in the chroot sandbox: stock-host first runs (VIP interface, CA bundle, proxy)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from components import versions
from components.config.cluster import Proxy
from components.k3s import render, scripts
from components.k3s.args import K3sClusterArgs, VipSpec

from .sandbox import Sandbox, unshare_available
from .stacks import FAST, homelab_args

pytestmark = pytest.mark.skipif(not unshare_available(), reason="needs unshare (mount namespace) and chroot")

SECRETS = render.ConfigSecrets("k" * 64, "g" * 64, "s3-secret")


@pytest.fixture
def homelab() -> K3sClusterArgs:
    return dataclasses.replace(homelab_args(), timeouts=FAST)


def install(sb: Sandbox, args: K3sClusterArgs, index: int):  # type: ignore[no-untyped-def]
    node = args.nodes[index]
    return sb.run(scripts.install_script(args, node), stdin=render.install_stdin(args, node, SECRETS))


def test_vip_on_a_predictably_named_interface_is_detected_from_the_route(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    assert homelab.vip is not None and homelab.vip.interface is None  # the homelab stack names none
    sb = Sandbox(tmp_path)  # ens18, default route on it
    result = install(sb, homelab, 0)
    assert result.returncode == 0, result.stderr
    assert "kube-vip interface on k3s-control-01: ens18" in result.stderr
    assert "vip_interface" not in sb.path(render.KUBE_VIP_MANIFEST_PATH).read_text()
    assert any(c.startswith("arping -q -D -c 2 -w 3 -I ens18 192.0.2.49") for c in sb.calls())


def test_vip_route_off_the_default_interface_is_refused_with_the_fix(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    (sb.path("/sys/class/net/enp2s0")).mkdir()
    sb.path("/stub/ip/route-dev").write_text("enp2s0\n")
    result = install(sb, homelab, 0)
    assert result.returncode != 0
    assert "server k3s-control-01 reaches the VIP 192.0.2.49 via enp2s0" in result.stderr
    assert "set k3s.vip.interface: enp2s0" in result.stderr
    assert not any(c.startswith("installer") for c in sb.calls())  # K3s never started


def test_an_explicit_interface_that_does_not_exist_is_refused_naming_the_node(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    assert homelab.vip is not None
    args = dataclasses.replace(homelab, vip=VipSpec(homelab.vip.address, "eth0", homelab.vip.kube_vip_version))
    sb = Sandbox(tmp_path)
    result = install(sb, args, 0)
    assert result.returncode != 0
    assert "k3s.vip.interface is 'eth0' but server k3s-control-01 has no such interface" in result.stderr
    assert "it has: ens18 lo" in result.stderr and "(here: ens18)" in result.stderr
    assert not sb.path("/etc/rancher/k3s/config.yaml").exists()


def test_a_vip_that_already_answers_stops_a_fresh_cluster(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    sb.path("/stub/vip-taken").touch()
    result = install(sb, homelab, 0)
    assert result.returncode != 0
    assert "the VIP 192.0.2.49 already answers on ens18 before this cluster exists" in result.stderr
    assert not any(c.startswith(("installer", "systemctl start")) for c in sb.calls())
    # A joining server expects the VIP to answer (kube-vip on server 1 holds it): no ARP probe there.
    join = install(sb, homelab, 1)
    assert join.returncode == 0, join.stderr


@pytest.mark.parametrize("family", ["debian", "rhel"])
def test_prepare_installs_the_ca_bundle_on_minimal_hosts(tmp_path: Path, homelab: K3sClusterArgs, family: str) -> None:
    sb = Sandbox(tmp_path, family)
    script = scripts.prepare_script(homelab, homelab.servers[0])
    if family == "rhel":
        sb.path("/stub/pkgs/firewalld").touch()
    first = sb.run(script)
    assert first.returncode == 0, first.stderr
    tool = "apt-get -o DPkg::Lock::Timeout=300 install" if family == "debian" else "dnf install"
    assert any(c.startswith(tool) and "ca-certificates" in c.split() for c in sb.calls()), sb.calls()
    sb.reset_calls()
    again = sb.run(script)
    assert again.returncode == 0 and not any("ca-certificates" in c for c in sb.calls())


def test_proxy_reaches_the_installer_and_the_unit_environment_and_a_change_restarts(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    proxy = Proxy("http://proxy.example.com:3128", "http://proxy.example.com:3128", ())
    args = dataclasses.replace(homelab, proxy=proxy)
    sb = Sandbox(tmp_path)
    result = install(sb, args, 3)  # an agent
    assert result.returncode == 0, result.stderr
    env = sb.path("/stub/installer-env.log").read_text().splitlines()
    assert "HTTPS_PROXY=http://proxy.example.com:3128" in env  # survives the installer's env -i
    assert any(line.startswith("NO_PROXY=127.0.0.0/8,") for line in env)
    assert "curl-proxy http://proxy.example.com:3128" in sb.calls()  # the installer download itself
    unit_env = sb.path("/etc/systemd/system/k3s-agent.service.env")
    assert unit_env.read_text().splitlines() == list(render.proxy_env(args))
    assert unit_env.stat().st_mode & 0o777 == 0o600
    sb.reset_calls()
    again = install(sb, args, 3)
    assert (again.returncode, again.changes) == (0, 0), again.stderr
    # Changing only the proxy rewrites the environment file and restarts K3s (it reads it at start).
    moved = dataclasses.replace(args, proxy=Proxy(None, "http://proxy2.example.com:8080", ()))
    changed = install(sb, moved, 3)
    assert changed.returncode == 0, changed.stderr
    assert sb.mutating_calls() == ["systemctl restart --no-block k3s-agent"]
    assert "HTTPS_PROXY=http://proxy2.example.com:8080" in unit_env.read_text()
    # Without a proxy, no environment file is written at all.
    plain = Sandbox(tmp_path / "plain")
    assert install(plain, homelab, 3).returncode == 0
    assert not plain.path("/etc/systemd/system/k3s-agent.service.env").exists()


MEMBERS = ('{"name":"k3s-control-01-0a1b2c3d","peerURLs":["https://192.0.2.51:2380"]}\n'
           '{"name":"k3s-control-02-1a2b3c4d","peerURLs":["https://192.0.2.52:2380"]}\n'
           '{"name":"k3s-control-03-2a3b4c5d","peerURLs":["https://192.0.2.53:2380"]}\n')


def leaving_server(tmp_path: Path, homelab: K3sClusterArgs) -> Sandbox:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 1).returncode == 0
    sb.path("/stub/remote-up").touch()
    sb.path("/stub/etcd-members").write_text(MEMBERS)
    sb.reset_calls()
    return sb


def test_server_removal_stops_first_deletes_through_a_survivor_waits_for_etcd_then_uninstalls(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = leaving_server(tmp_path, homelab)
    result = sb.run(scripts.remove_script(homelab, homelab.servers[1]))
    assert result.returncode == 0, result.stderr
    calls = sb.calls()
    stop = calls.index("systemctl stop k3s")
    delete = calls.index("remote delete node k3s-control-02 (local k3s stopped)")
    assert stop < delete < calls.index("uninstall")
    assert any("/v3/cluster/member/list" in c for c in calls[delete:calls.index("uninstall")])
    assert "k3s-control-02" not in sb.path("/stub/etcd-members").read_text()
    assert "etcd no longer lists k3s-control-02" in result.stderr


def test_a_failed_member_removal_leaves_k3s_installed(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = leaving_server(tmp_path, homelab)
    sb.path("/stub/delete-fails").touch()
    result = sb.run(scripts.remove_script(homelab, homelab.servers[1]))
    assert result.returncode != 0
    assert "could not delete node k3s-control-02" in result.stderr and "nothing was uninstalled" in result.stderr
    assert "uninstall" not in sb.calls()
    assert sb.path("/usr/local/bin/k3s").exists() and sb.path("/usr/local/bin/k3s-uninstall.sh").exists()


def test_a_member_etcd_keeps_listing_is_never_uninstalled(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = leaving_server(tmp_path, homelab)
    sb.path("/stub/member-sticks").touch()
    result = sb.run(scripts.remove_script(homelab, homelab.servers[1]))
    assert result.returncode != 0
    assert "etcd at https://192.0.2.51:6443 still lists k3s-control-02" in result.stderr
    assert "uninstall" not in sb.calls() and sb.path("/usr/local/bin/k3s").exists()


def test_removal_refuses_when_k3s_runs_elsewhere_but_no_api_answers(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = leaving_server(tmp_path, homelab)
    sb.path("/stub/remote-up").unlink()
    sb.path("/stub/remote-down").touch()
    sb.path("/stub/ping-pong").touch()
    result = sb.run(scripts.remove_script(homelab, homelab.servers[1]))
    assert result.returncode != 0 and "no other server's API answers" in result.stderr
    assert sb.mutating_calls() == []


def test_agent_removal_stops_then_the_node_step_deletes_then_prepare_uninstalls(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = Sandbox(tmp_path)
    agent = homelab.agents[0]
    assert install(sb, homelab, 3).returncode == 0
    sb.reset_calls()
    stopped = sb.run(scripts.remove_script(homelab, agent))
    assert stopped.returncode == 0, stopped.stderr
    assert "systemctl stop k3s-agent" in sb.calls() and "uninstall" not in sb.calls()
    assert sb.path("/usr/local/bin/k3s").exists()
    removed = sb.run(scripts.uninstall_script(homelab, agent))
    assert removed.returncode == 0, removed.stderr
    assert "uninstall" in sb.calls() and not sb.path("/usr/local/bin/k3s").exists()


NEXT = "v1.35.0+k3s1"


def test_health_gate_refuses_an_upgrade_or_restart_while_another_member_is_down(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 1).returncode == 0
    sb.path("/stub/down-192.0.2.53").touch()  # k3s-control-03 is down
    sb.reset_calls()
    upgrade = install(sb, dataclasses.replace(homelab, version=NEXT), 1)
    assert upgrade.returncode != 0
    assert "refusing to upgrade K3s to v1.35.0+k3s1 on k3s-control-02" in upgrade.stderr
    assert "https://192.0.2.53:6443" in upgrade.stderr and "nothing was changed" in upgrade.stderr
    restart = install(sb, dataclasses.replace(homelab, failover_tuning=False), 1)
    assert restart.returncode != 0 and "refusing to restart K3s on k3s-control-02" in restart.stderr
    assert not any(c.startswith(("installer", "systemctl restart")) for c in sb.calls())
    # healthy again: the same change goes through, gated once
    sb.path("/stub/down-192.0.2.53").unlink()
    ok = install(sb, dataclasses.replace(homelab, version=NEXT), 1)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr.count("health gate passed") == 1
    assert "systemctl restart --no-block k3s" in sb.calls()


def test_health_gate_refuses_a_removal_while_another_member_is_down(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = leaving_server(tmp_path, homelab)
    sb.path("/stub/down-192.0.2.53").touch()
    result = sb.run(scripts.remove_script(homelab, homelab.servers[1]))
    assert result.returncode != 0 and "refusing to remove k3s-control-02" in result.stderr
    assert sb.mutating_calls() == [] and "remote delete" not in "\n".join(sb.calls())


def test_an_upgrade_takes_a_snapshot_first_and_keeps_it_outside_the_data_dir(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 1).returncode == 0
    sb.reset_calls()
    result = install(sb, dataclasses.replace(homelab, version=NEXT), 1)
    assert result.returncode == 0, result.stderr
    calls = sb.calls()
    snap = calls.index("k3s etcd-snapshot save --name pre-upgrade")
    assert snap < next(i for i, c in enumerate(calls) if c.startswith("installer"))
    kept = list(sb.path(scripts.SNAPSHOT_DIR).iterdir())
    assert [p.name.startswith("pre-upgrade-") for p in kept] == [True]
    assert kept[0].stat().st_mode & 0o777 == 0o600
    assert not (scripts.SNAPSHOT_DIR + "/").startswith(("/var/lib/rancher/k3s/", scripts.STATE_DIR + "/"))


def test_a_failed_snapshot_stops_the_upgrade(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 1).returncode == 0
    sb.path("/stub/snapshot-fails").touch()
    sb.reset_calls()
    result = install(sb, dataclasses.replace(homelab, version=NEXT), 1)
    assert result.returncode != 0 and "the etcd snapshot before the upgrade" in result.stderr
    assert not any(c.startswith(("installer", "systemctl restart")) for c in sb.calls())


def test_a_removed_server_keeps_its_pre_removal_snapshot_after_the_uninstall(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = leaving_server(tmp_path, homelab)
    for _ in range(scripts.SNAPSHOT_KEEP + 2):  # older copies are pruned to SNAPSHOT_KEEP
        assert sb.run(scripts.remove_script(dataclasses.replace(homelab), homelab.servers[1])).returncode == 0
        assert install(sb, homelab, 1).returncode == 0
        sb.path("/stub/etcd-members").write_text(MEMBERS)
    calls = sb.calls()
    assert calls.index("k3s etcd-snapshot save --name pre-removal") < calls.index("systemctl stop k3s")
    kept = sorted(p.name for p in sb.path(scripts.SNAPSHOT_DIR).iterdir())
    assert len(kept) == scripts.SNAPSHOT_KEEP and all(n.startswith("pre-removal-") for n in kept)


def test_taint_and_label_changes_go_through_the_api_without_a_restart(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 0).returncode == 0
    agent = homelab.agents[0]
    tainted = dataclasses.replace(agent, taints=("dedicated=gpu:NoSchedule", "spot:NoExecute"),
                                  labels=(*agent.labels, ("example.com/tier", "gold")))
    args = dataclasses.replace(homelab, nodes=tuple(tainted if n.name == agent.name else n for n in homelab.nodes))
    first = sb.run(scripts.labels_script(args, tainted))
    assert first.returncode == 0, first.stderr
    assert set(sb.path("/stub/taints").read_text().split()) == {"dedicated=gpu:NoSchedule", "spot:NoExecute"}
    assert "example.com/tier=gold" in sb.path("/stub/labels").read_text()
    again = sb.run(scripts.labels_script(args, tainted))
    assert (again.returncode, again.changes) == (0, 0), again.stderr
    # dropping a taint and a label removes them from the Node (K3s itself would keep both)
    fewer = dataclasses.replace(tainted, taints=("spot:NoExecute",), labels=agent.labels)
    args2 = dataclasses.replace(homelab, nodes=tuple(fewer if n.name == agent.name else n for n in homelab.nodes))
    removed = sb.run(scripts.labels_script(args2, fewer))
    assert removed.returncode == 0, removed.stderr
    assert sb.path("/stub/taints").read_text().split() == ["spot:NoExecute"]
    assert "example.com/tier" not in sb.path("/stub/labels").read_text()


def test_a_taint_only_change_does_not_restart_k3s(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 3).returncode == 0
    agent = homelab.agents[0]
    tainted = dataclasses.replace(agent, taints=("dedicated=gpu:NoSchedule",))
    args = dataclasses.replace(homelab, nodes=tuple(tainted if n.name == agent.name else n for n in homelab.nodes))
    sb.reset_calls()
    result = install(sb, args, 3)
    assert result.returncode == 0, result.stderr
    assert "node-taint" in sb.path("/etc/rancher/k3s/config.yaml").read_text()  # still there for a re-registration
    assert not any(c.startswith("systemctl restart") for c in sb.calls())
    # an existing node whose marker predates this rule (digest of the whole file) does not restart either
    sb.path("/var/lib/platform/k3s/applied-config.sha256").write_text(
        __import__("hashlib").sha256(sb.path("/etc/rancher/k3s/config.yaml").read_bytes()).hexdigest() + "\n")
    sb.reset_calls()
    assert install(sb, args, 3).returncode == 0
    assert not any(c.startswith("systemctl restart") for c in sb.calls())


def test_turning_the_vip_off_deletes_kube_vip_from_the_cluster(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 0).returncode == 0
    assert sb.path(render.KUBE_VIP_MANIFEST_PATH).exists()
    on = sb.run(scripts.api_ready_script(homelab))
    ops_path = sb.path("/stub/cluster-ops.log")
    assert on.returncode == 0 and " delete " not in (ops_path.read_text() if ops_path.exists() else "")
    off = dataclasses.replace(homelab, vip=None, api_endpoint="192.0.2.51")
    assert install(sb, off, 0).returncode == 0
    assert not sb.path(render.KUBE_VIP_MANIFEST_PATH).exists()
    sb.path("/stub/kube-vip-objects").touch()
    result = sb.run(scripts.api_ready_script(off))
    assert result.returncode == 0, result.stderr
    ops = sb.path("/stub/cluster-ops.log").read_text()
    selector = "-l app.kubernetes.io/name=kube-vip,app.kubernetes.io/managed-by=platform"
    assert f"delete daemonset,serviceaccount -n kube-system {selector}" in ops
    assert f"delete clusterrole,clusterrolebinding {selector}" in ops
    assert "delete addons.k3s.cattle.io platform-kube-vip -n kube-system" in ops
    assert "kube-vip: daemonset.apps" in result.stderr


def test_ca_hash_and_switching_a_node_to_the_secure_token_restarts_nothing(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    import hashlib

    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 0).returncode == 0
    ca = sb.path("/var/lib/rancher/k3s/server/tls/server-ca.crt")
    ca.parent.mkdir(parents=True, exist_ok=True)
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    result = sb.run(scripts.ca_hash_script(homelab))
    assert result.returncode == 0, result.stderr
    assert result.stdout == hashlib.sha256(ca.read_bytes()).hexdigest() + "\n"  # stdout is the hash only
    # an agent that joined with the short form switches to the secure form without a restart
    agent_sb = Sandbox(tmp_path / "agent")
    assert install(agent_sb, homelab, 3).returncode == 0
    secure = dataclasses.replace(SECRETS, ca_hash=result.stdout.strip())
    agent = homelab.agents[0]
    agent_sb.reset_calls()
    switched = agent_sb.run(scripts.install_script(homelab, agent),
                            stdin=render.install_stdin(homelab, agent, secure))
    assert switched.returncode == 0, switched.stderr
    assert f"token: K10{secure.ca_hash}::node:" in agent_sb.path("/etc/rancher/k3s/config.yaml").read_text()
    assert not any(c.startswith("systemctl restart") for c in agent_sb.calls())


def test_a_server_restart_is_drained_waits_for_a_fresh_heartbeat_and_is_uncordoned(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 1).returncode == 0
    sb.path("/stub/cluster-nodes").write_text("k3s-control-01\nk3s-control-02\nk3s-control-03\n")
    result = install(sb, dataclasses.replace(homelab, version=NEXT), 1)
    assert result.returncode == 0, result.stderr
    ops = sb.path("/stub/cluster-ops.log").read_text().splitlines()
    drain = next(i for i, op in enumerate(ops) if " drain k3s-control-02 " in f"{op} ")
    uncordon = next(i for i, op in enumerate(ops) if " uncordon k3s-control-02" in op)
    assert drain < uncordon
    assert "--delete-emptydir-data" in ops[drain] and "--disable-eviction" not in ops[drain]  # PDBs respected
    # the old Node object (a heartbeat from before the restart) is not taken for the restarted node
    sb.path("/stub/stale-heartbeat").touch()
    stale = install(sb, dataclasses.replace(homelab, version=NEXT, failover_tuning=False,
                                            timeouts=dataclasses.replace(FAST, server_ready=3)), 1)
    assert stale.returncode != 0 and "did not become a ready etcd member" in stale.stderr


def test_an_agent_upgrade_is_drained_by_its_node_step_and_uncordoned_by_its_member_step(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = Sandbox(tmp_path)  # plays the first server; its fake kubectl answers for the agent's Node
    assert install(sb, homelab, 0).returncode == 0
    agent = homelab.agents[0]
    upgrade = dataclasses.replace(homelab, version=NEXT)
    drained = sb.run(scripts.node_create_script(upgrade, agent))
    assert drained.returncode == 0, drained.stderr
    assert "draining k3s-worker-01 before its upgrade from v1.34.2+k3s1 to v1.35.0+k3s1" in drained.stderr
    assert sb.path("/stub/ann-platform_k3s_drained-for").read_text() == NEXT
    # ... the agent's install upgrades it; the member step then waits for it at NEXT and uncordons it
    assert install(sb, upgrade, 0).returncode == 0  # (the fake Node reports the running version)
    member = sb.run(scripts.member_create_script(upgrade, agent))
    assert member.returncode == 0, member.stderr
    ops = sb.path("/stub/cluster-ops.log").read_text()
    assert ops.index("drain k3s-worker-01") < ops.index("uncordon k3s-worker-01")
    assert not sb.path("/stub/ann-platform_k3s_drained-for").exists()
    # the same version again: no drain
    again = sb.run(scripts.node_create_script(upgrade, agent))
    assert again.returncode == 0 and "draining" not in again.stderr


def test_rhel_networkmanager_leaves_calico_interfaces_alone(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path, "rhel")
    sb.path("/stub/pkgs/firewalld").touch()
    sb.set_unit("NetworkManager.service", enabled=True, active=True)
    result = sb.run(scripts.prepare_script(homelab, homelab.servers[0]))
    assert result.returncode == 0, result.stderr
    conf = sb.path("/etc/NetworkManager/conf.d/platform-calico.conf").read_text()
    assert "interface-name:cali*;interface-name:tunl*;interface-name:vxlan.calico" in conf
    assert "systemctl reload NetworkManager" in sb.calls()
    debian = Sandbox(tmp_path / "debian")
    assert debian.run(scripts.prepare_script(homelab, homelab.servers[0])).returncode == 0
    assert not debian.path("/etc/NetworkManager/conf.d/platform-calico.conf").exists()


@pytest.mark.parametrize("failure", ["delete-fails", "member-sticks", "snapshot-fails"])
def test_delete_scripts_given_the_secret_stdin_never_echo_it_in_a_failure(
    tmp_path: Path, homelab: K3sClusterArgs, failure: str,
) -> None:
    """pulumi-command passes stdin to the delete too and puts stdout/stderr in its error text."""
    sb = leaving_server(tmp_path, homelab)
    sb.path(f"/stub/{failure}").touch()
    node = homelab.servers[1]
    config = render.install_stdin(homelab, node, SECRETS)
    result = sb.run(scripts.remove_script(homelab, node), stdin=config)
    assert result.returncode != 0
    for secret in (SECRETS.token, SECRETS.agent_token):
        assert secret not in result.stdout + result.stderr
    agent = sb.run(scripts.uninstall_script(homelab, homelab.agents[0]), stdin=config)
    assert SECRETS.token not in agent.stdout + agent.stderr


def test_health_gate_skips_configured_servers_that_are_not_etcd_members(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    """Adding servers restarts the existing ones first (tls-san): the new ones are not members yet.
    In a teardown, a server already removed is no member either."""
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 1).returncode == 0
    sb.path("/stub/down-192.0.2.53").touch()  # k3s-control-03: configured, not installed yet
    sb.path("/stub/etcd-members").write_text(MEMBERS.replace(
        '{"name":"k3s-control-03-2a3b4c5d","peerURLs":["https://192.0.2.53:2380"]}\n', ""))
    result = install(sb, dataclasses.replace(homelab, failover_tuning=False), 1)
    assert result.returncode == 0, result.stderr
    assert "health gate passed" in result.stderr
    # ... but a member that is down still stops it
    sb.path("/stub/etcd-members").write_text(MEMBERS)
    refused = install(sb, dataclasses.replace(homelab, failover_tuning=True), 1)
    assert refused.returncode != 0 and "https://192.0.2.53:6443" in refused.stderr


def test_a_teardown_removes_servers_one_after_another(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = leaving_server(tmp_path, homelab)
    # k3s-control-03 was removed first: down, and etcd no longer lists it
    sb.path("/stub/down-192.0.2.53").touch()
    sb.path("/stub/etcd-members").write_text(MEMBERS.replace(
        '{"name":"k3s-control-03-2a3b4c5d","peerURLs":["https://192.0.2.53:2380"]}\n', ""))
    result = sb.run(scripts.remove_script(homelab, homelab.servers[1]))
    assert result.returncode == 0, result.stderr
    assert "uninstall" in sb.calls()


def test_the_self_hosted_s3_ca_is_written_for_k3s_and_a_change_restarts(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    from components.config.cluster import EtcdS3

    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    s3 = EtcdS3("minio.lan:9000", "etcd", "us-east-1", "", "AK", None, insecure=True, endpoint_ca=pem)
    args = dataclasses.replace(homelab, etcd=dataclasses.replace(homelab.etcd, s3=s3))
    sb = Sandbox(tmp_path)
    assert install(sb, args, 1).returncode == 0
    assert sb.path(render.ETCD_S3_CA_PATH).read_text() == pem
    sb.reset_calls()
    rotated = dataclasses.replace(s3, endpoint_ca=pem.replace("MIIB", "MIIC"))
    result = install(sb, dataclasses.replace(args, etcd=dataclasses.replace(homelab.etcd, s3=rotated)), 1)
    assert result.returncode == 0, result.stderr
    assert "systemctl restart --no-block k3s" in sb.calls()


def test_the_installer_is_fetched_from_the_pinned_commit_and_kept_while_its_sha256_matches(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = Sandbox(tmp_path)
    assert install(sb, homelab, 3).returncode == 0
    url = versions.K3S_INSTALLER.url
    assert f"/{versions.K3S_INSTALLER.commit}/install.sh" in url
    assert any(c.startswith("curl ") and c.endswith(url) for c in sb.calls())
    sb.reset_calls()
    assert install(sb, homelab, 3).returncode == 0
    assert not any("install.sh" in c for c in sb.calls())  # the kept copy still matches: no download
    # A kept copy that no longer matches (edited, or a new pin) is fetched and checked again.
    sb.path("/usr/local/bin/k3s-install.sh").write_text("#!/bin/sh\necho tampered\n")
    sb.reset_calls()
    assert install(sb, homelab, 3).returncode == 0
    assert any(c.endswith(url) for c in sb.calls())
    assert sb.path("/usr/local/bin/k3s-install.sh").read_text() == sb.path("/stub/fake-install.sh").read_text()


def test_an_installer_whose_sha256_differs_from_the_pin_is_never_run(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = Sandbox(tmp_path)
    sb.pin_fake_installer = False  # the download is the fake script, the pin the real one's: a mismatch
    result = install(sb, homelab, 3)
    assert result.returncode != 0
    assert f"not the pinned {versions.K3S_INSTALLER.sha256}: refusing to run" in result.stderr
    assert not any(c.startswith("installer") for c in sb.calls())
    assert not sb.path("/usr/local/bin/k3s-install.sh").exists()


def test_a_removal_also_leaves_a_snapshot_on_the_surviving_server_without_the_token_in_argv(
    tmp_path: Path, homelab: K3sClusterArgs,
) -> None:
    sb = leaving_server(tmp_path, homelab)
    token = "K10" + "c" * 64 + "::server:" + "k" * 64
    sb.path("/var/lib/rancher/k3s/server").mkdir(parents=True, exist_ok=True)
    sb.path("/var/lib/rancher/k3s/server/token").write_text(token + "\n")
    result = sb.run(scripts.remove_script(homelab, homelab.servers[1]))
    assert result.returncode == 0, result.stderr
    calls = sb.calls()
    remote = next(i for i, c in enumerate(calls) if "--name pre-removal-k3s-control-02" in c)
    assert calls.index("k3s etcd-snapshot save --name pre-removal") < remote < calls.index("systemctl stop k3s")
    assert token not in "\n".join(calls)  # never on a command line
    request = sb.path("/stub/remote-snapshots").read_text().splitlines()
    assert request[0].startswith('etcd-server: "https://') and request[0] != 'etcd-server: "https://192.0.2.52:6443"'
    assert request[1] == f'etcd-token: "{token}"' and request[2] == "600"
    assert "etcd snapshot pre-removal-k3s-control-02 on https://" in result.stderr


def test_a_survivor_that_cannot_take_the_snapshot_only_warns(tmp_path: Path, homelab: K3sClusterArgs) -> None:
    sb = leaving_server(tmp_path, homelab)
    sb.path("/var/lib/rancher/k3s/server").mkdir(parents=True, exist_ok=True)
    sb.path("/var/lib/rancher/k3s/server/token").write_text("K10abc::server:def\n")
    sb.path("/stub/remote-snapshot-fails").touch()
    result = sb.run(scripts.remove_script(homelab, homelab.servers[1]))
    assert result.returncode == 0, result.stderr
    assert "did not take the snapshot pre-removal-k3s-control-02" in result.stderr
    assert "uninstall" in sb.calls()
