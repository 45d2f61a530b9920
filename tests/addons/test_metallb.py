"""MetalLB: pools, advertisements and BGP peers from typed config, chart values, conformance."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components import metallb
from tests.addons import schema
from tests.addons.conftest import cleura, homelab, homelab_raw

BGP: dict[str, Any] = {
    "platform:calico": {"encapsulation": "VXLANCrossSubnet"},  # MetalLB BGP needs Calico without BIRD
    "platform:metallb": {
        "myAsn": 64512,
        "pools": [
            {"name": "ingress-vip-pool", "addresses": ["192.0.2.50/32"]},
            {"name": "services", "addresses": ["198.51.100.0/28", "198.51.100.20 - 198.51.100.30"], "advertise": "bgp"},
            {"name": "reserved", "addresses": ["192.0.2.60-192.0.2.62"], "advertise": "none", "autoAssign": False},
        ],
        "bgpPeers": [{"name": "core-router", "address": "192.0.2.1", "asn": 4200000000}],
    },
}
TAINTED = [{**n, "taints": ["dedicated=storage:NoSchedule"]} if n["role"] == "agent" else n
           for n in homelab_raw()["platform:nodes"]]


def by_kind(resources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        out.setdefault(r["kind"], []).append(r)
    return out


def test_homelab_pool_and_l2_advertisement_match_the_writeup() -> None:
    assert metallb.custom_resources(metallb.MetalLBArgs.from_config(homelab())) == [
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
         "metadata": {"name": "ingress-vip-pool", "namespace": "metallb-system"},
         "spec": {"addresses": ["192.0.2.50/32"], "autoAssign": True}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
         "metadata": {"name": "ingress-vip-pool-l2", "namespace": "metallb-system"},
         "spec": {"ipAddressPools": ["ingress-vip-pool"]}},
    ]


def test_bgp_peers_and_advertisements() -> None:
    kinds = by_kind(metallb.custom_resources(metallb.MetalLBArgs.from_config(homelab(BGP))))
    assert [p["metadata"]["name"] for p in kinds["IPAddressPool"]] == ["ingress-vip-pool", "services", "reserved"]
    assert kinds["IPAddressPool"][1]["spec"]["addresses"] == ["198.51.100.0/28", "198.51.100.20-198.51.100.30"]
    assert kinds["IPAddressPool"][2]["spec"]["autoAssign"] is False
    assert [a["spec"]["ipAddressPools"] for a in kinds["L2Advertisement"]] == [["ingress-vip-pool"]]
    assert [a["spec"]["ipAddressPools"] for a in kinds["BGPAdvertisement"]] == [["services"]]
    (peer,) = kinds["BGPPeer"]
    assert peer["apiVersion"] == "metallb.io/v1beta2"
    assert peer["spec"] == {"myASN": 64512, "peerASN": 4200000000, "peerAddress": "192.0.2.1"}


def test_pools_precede_everything_that_references_them() -> None:
    kinds = [r["kind"] for r in metallb.custom_resources(metallb.MetalLBArgs.from_config(homelab(BGP)))]
    assert kinds[:3] == ["IPAddressPool"] * 3


def test_frr_k8s_only_with_bgp() -> None:
    assert metallb.values(metallb.MetalLBArgs.from_config(homelab()))["frrk8s"] == {"enabled": False}
    assert metallb.values(metallb.MetalLBArgs.from_config(homelab(BGP)))["frrk8s"] == {"enabled": True}


def test_controller_on_the_control_tier_speakers_everywhere() -> None:
    values = metallb.values(metallb.MetalLBArgs.from_config(homelab({"platform:nodes": TAINTED, **BGP})))
    assert values["controller"] == {"nodeSelector": {"example.com/role": "control"}}
    toleration = {"key": "dedicated", "operator": "Equal", "value": "storage", "effect": "NoSchedule"}
    assert values["speaker"] == {"tolerations": [toleration]}
    assert values["frr-k8s"] == {"frrk8s": {"tolerations": [toleration]}}


def test_webhook_gate_retries_a_server_side_dry_run_until_the_webhook_answers() -> None:
    job = metallb.webhook_gate_job(metallb.MetalLBArgs.from_config(homelab()))
    assert job["metadata"] == {"name": "metallb-webhook-gate", "namespace": "metallb-system",
                               "annotations": {"pulumi.com/replaceUnready": "true"}}
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "metallb-webhook-gate"
    assert pod["nodeSelector"] == {"example.com/role": "control"}
    (container,) = pod["containers"]
    # The K3s image of the cluster's version: busybox sh and kubectl (registry.k8s.io/kubectl has no shell).
    assert container["image"] == "docker.io/rancher/k3s:v1.34.2-k3s1"
    assert container["command"][:2] == ["/bin/sh", "-c"]
    script = container["command"][2]
    assert "kubectl create --dry-run=server" in script and "until " in script and "exit 1" in script
    env = {e["name"]: e["value"] for e in container["env"]}
    assert json.loads(env["PROBE"]) == metallb.webhook_probe()
    assert env["METALLB_CHART_VERSION"] == "0.16.1"  # a chart upgrade replaces the Job: gated again
    assert env["WAIT_SECONDS"] == str(metallb.WEBHOOK_WAIT_SECONDS)
    assert job["spec"]["activeDeadlineSeconds"] > metallb.WEBHOOK_WAIT_SECONDS
    # Kubernetes expands $(NAME) in command for defined env vars: the script must not trip on that.
    assert not any(f"$({name})" in script for name in env)


def test_webhook_gate_reruns_when_the_values_change() -> None:
    # A values change can roll the controller (a new webhook server) without a version bump.
    def env(cfg_overrides: dict[str, Any] | None) -> dict[str, str]:
        job = metallb.webhook_gate_job(metallb.MetalLBArgs.from_config(homelab(cfg_overrides)))
        return {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}

    same, tainted = env(None), env({"platform:nodes": TAINTED})
    assert same == env(None)
    assert same["METALLB_VALUES_SHA256"] != tainted["METALLB_VALUES_SHA256"]
    assert same["METALLB_CHART_VERSION"] == tainted["METALLB_CHART_VERSION"]


def test_webhook_gate_script_is_posix_sh_and_runs_under_busybox_semantics(tmp_path: Path) -> None:
    script = metallb.webhook_gate_script()
    assert script.startswith("#!/bin/sh\n")
    assert "SECONDS" not in script.replace("WAIT_SECONDS", "")  # bash-only variable: not in busybox sh
    path = tmp_path / "gate.sh"
    path.write_text(script)
    shell = shutil.which("dash") or "sh"
    assert subprocess.run([shell, "-n", str(path)], check=False).returncode == 0
    if shutil.which("shellcheck"):
        assert subprocess.run(["shellcheck", "-s", "sh", str(path)], check=False).returncode == 0


def test_webhook_gate_script_retries_then_succeeds(tmp_path: Path) -> None:
    # A fake kubectl that fails twice (webhook not up) and then answers; sleep is a no-op.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    counter = tmp_path / "calls"
    (bin_dir / "kubectl").write_text(
        f'#!/bin/sh\ncat >/dev/null\nn=$(cat {counter} 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > {counter}\n'
        'if [ "$n" -lt 3 ]; then echo "failed calling webhook" >&2; exit 1; fi\n'
        'echo l2advertisement.metallb.io/pulumi-webhook-probe created\n')
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("kubectl", "sleep"):
        (bin_dir / tool).chmod(0o755)
    shell = shutil.which("dash") or "sh"
    result = subprocess.run(
        [shell, "-c", metallb.webhook_gate_script()], capture_output=True, text=True, check=False,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "PROBE": "{}", "WAIT_SECONDS": "60"},
    )
    assert result.returncode == 0, result.stderr
    assert counter.read_text().strip() == "3"
    assert "the MetalLB webhook answers" in result.stdout


def test_webhook_gate_may_only_create_l2advertisements() -> None:
    sa, role, binding = metallb.webhook_gate_rbac()
    assert sa["kind"] == "ServiceAccount" and role["kind"] == "Role" and binding["kind"] == "RoleBinding"
    assert role["rules"] == [{"apiGroups": ["metallb.io"], "resources": ["l2advertisements"], "verbs": ["create"]}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": "metallb-system"}]


def test_webhook_probe_is_valid_for_any_pools(conformance: Path) -> None:
    probe = metallb.webhook_probe()
    assert probe["spec"] == {}  # selects every pool: the webhook accepts it whatever exists
    names = {r["metadata"]["name"] for r in metallb.custom_resources(metallb.MetalLBArgs.from_config(homelab(BGP)))}
    assert probe["metadata"]["name"] not in names
    assert schema.validate_custom_resource(probe, conformance) == []


def test_release_is_pinned() -> None:
    args = metallb.release_args(metallb.MetalLBArgs.from_config(homelab()))
    assert (args.chart, args.version, args.namespace) == ("metallb", "0.16.1", "metallb-system")
    assert args.repository_opts.repo == "https://metallb.github.io/metallb"


def test_metallb_is_skipped_without_pools_when_disabled_and_on_gardener() -> None:
    assert metallb.applies(homelab())
    assert not metallb.applies(homelab({"platform:metallb": {"enabled": False}}))
    assert not metallb.applies(homelab({"platform:metallb": {"pools": []}}))
    assert not metallb.applies(cleura())


# -- conformance ----------------------------------------------------------------------------

CONFIGS = {"homelab": {}, "bgp-tainted": {**BGP, "platform:nodes": TAINTED}}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_custom_resources_validate_against_their_crds(conformance: Path, name: str) -> None:
    for resource in metallb.custom_resources(metallb.MetalLBArgs.from_config(homelab(CONFIGS[name]))):
        assert schema.validate_custom_resource(resource, conformance) == []


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_values_exist_in_the_pinned_chart_and_its_schema(conformance: Path, name: str) -> None:
    spec = metallb.release_spec(metallb.MetalLBArgs.from_config(homelab(CONFIGS[name])))
    found = schema.check_values(spec.pin.chart, spec.pin.version, spec.values, conformance)
    assert found.errors == [] and found.warnings == []


def test_a_failed_webhook_gate_job_is_replaced_by_the_next_up() -> None:
    job = metallb.webhook_gate_job(metallb.MetalLBArgs.from_config(homelab()))
    assert job["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true"}
