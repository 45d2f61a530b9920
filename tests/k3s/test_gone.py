"""`gone: true`: a node dead for good leaves from a surviving server; nothing dials it again."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from components.k3s import K3sClusterArgs, scripts
from components.k3s.plan import install_plan
from components.offline.render import render
from components.problems import ConfigError

from .mockrun import record_cluster
from .sandbox import Sandbox, unshare_available
from .stacks import FAST, homelab_raw, parse

DEAD_SERVER, DEAD_AGENT = "k3s-control-03", "k3s-worker-02"
DEAD_ADDRESSES = {"192.0.2.53", "192.0.2.55"}


def gone_args() -> K3sClusterArgs:
    raw = copy.deepcopy(homelab_raw())
    raw["platform:nodes"][2]["gone"] = True
    raw["platform:nodes"][4]["gone"] = True
    return K3sClusterArgs.from_config(parse(raw))


def test_no_step_may_dial_a_gone_host() -> None:
    rec = record_cluster(gone_args(), name="homelab").recording
    dialling = [r for r in rec if r.type.startswith("command:remote:")
                and r.inputs["connection"]["host"] in DEAD_ADDRESSES]
    assert {r.name for r in dialling} >= {f"homelab-{DEAD_SERVER}-install", f"homelab-{DEAD_AGENT}-prepare"}
    for r in dialling:
        # kept exactly as deployed (no update ever runs) and never deleted through the provider
        assert r.options["retain_on_delete"] is True, r.name
        assert {"connection", "create", "update", "delete", "stdin"} <= set(r.options["ignore_changes"]), r.name
    # the gone agent's steps on server 1 (drain, Node) are kept as deployed too; everything else is live
    live = [r for r in rec if r.type.startswith("command:remote:")
            and not r.name.startswith((f"homelab-{DEAD_SERVER}-", f"homelab-{DEAD_AGENT}-"))]
    assert live and all(r.options["retain_on_delete"] is False for r in live)
    assert rec.named(f"homelab-{DEAD_AGENT}-member").options["retain_on_delete"] is True
    # retained, not protected: dropping the dead server from the list later needs no allowDestroy
    assert rec.named(f"homelab-{DEAD_SERVER}-install").options["protect"] is False
    assert rec.named("homelab-k3s-control-02-install").options["protect"] is True


def test_the_dead_nodes_leave_from_the_first_server_before_any_live_server_restarts() -> None:
    args = gone_args()
    plan = {s.key: s for s in install_plan(args)}
    for dead in (DEAD_SERVER, DEAD_AGENT):
        step = plan[f"{dead}-gone"]
        assert step.host == "k3s-control-01" and step.after == ("preflight",)
        assert f"{dead}-gone" in plan["k3s-control-01-install"].after
    # a gone server is a removal for the rules, and the health gate no longer waits for it
    assert args.deployed.servers == ("k3s-control-01", "k3s-control-02")
    install2 = scripts.install_script(args, args.servers[1])
    assert "https://192.0.2.53:6443" not in install2.values["OTHER_SERVER_URLS"]
    assert scripts.preflight_script(args).values["SERVER_NAMES"] == ["k3s-control-01", "k3s-control-02"]


def test_render_shows_the_member_removal_on_a_surviving_server(tmp_path: Path) -> None:
    rec = record_cluster(gone_args(), name="homelab").recording
    render(rec, tmp_path / "render")
    gone = tmp_path / "render" / "scripts" / f"homelab-{DEAD_SERVER}-gone.create.sh"
    text = gone.read_text()
    assert "NODE=k3s-control-01\n" in text and f"TARGET={DEAD_SERVER}\n" in text and "TARGET_ROLE=server" in text
    assert "etcd_member_gone" in text
    assert rec.named(f"homelab-{DEAD_SERVER}-gone").inputs["connection"]["host"] == "192.0.2.51"


def test_the_first_server_cannot_be_gone() -> None:
    raw = copy.deepcopy(homelab_raw())
    raw["platform:nodes"][0]["gone"] = True
    with pytest.raises(ConfigError, match=r"platform:nodes\[0\].gone: the first server k3s-control-01"):
        K3sClusterArgs.from_config(parse(raw))


@pytest.mark.skipif(not unshare_available(), reason="needs unshare (mount namespace) and chroot")
def test_gone_server_is_deleted_and_dropped_from_etcd_on_the_first_server(tmp_path: Path) -> None:
    from components.k3s import render as k3s_render

    args = dataclasses.replace(gone_args(), timeouts=FAST)
    sb = Sandbox(tmp_path)
    first = args.servers[0]
    secrets = k3s_render.ConfigSecrets("k" * 64, "g" * 64, None)
    assert sb.run(scripts.install_script(args, first), stdin=k3s_render.install_stdin(args, first, secrets)
                  ).returncode == 0
    sb.path("/stub/etcd-members").write_text(
        '{"name":"k3s-control-01-0a1b2c3d","peerURLs":["https://192.0.2.51:2380"]}\n'
        '{"name":"k3s-control-03-2a3b4c5d","peerURLs":["https://192.0.2.53:2380"]}\n')
    result = sb.run(scripts.gone_script(args, args.servers[2]))
    assert result.returncode == 0, result.stderr
    assert "delete node k3s-control-03" in sb.path("/stub/cluster-ops.log").read_text()
    assert "etcd no longer lists k3s-control-03" in result.stderr
    assert "k3s-control-03" not in sb.path("/stub/etcd-members").read_text()
