"""The Vault component: config rules, rendered HCL and chart values, and the program under mocks."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import hcl2
import pytest
import yaml

from components import vault
from components.config import ConfigError, StackConfig, parse_stack_config
from components.offline.runner import Recording, Resource
from components.vault import HA_RELEASE, TRANSIT_RELEASE, VaultArgs
from components.vault_auth import VaultAuthRole
from tests.addons import schema
from tests.addons.conftest import SSH_KEY, cleura_stack, homelab, homelab_raw

RELEASE = "kubernetes:helm.sh/v3:Release"
ROLE = VaultAuthRole("argocd-vault-plugin", ("argocd-repo-server",), ("argocd",), "argocd-read",
                     'path "kv/data/*" {\n  capabilities = ["read"]\n}\n')


def args(overrides: dict[str, Any] | None = None, roles: tuple[VaultAuthRole, ...] = ()) -> VaultArgs:
    return VaultArgs.from_config(homelab(overrides), "longhorn", roles)


def errors(overrides: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        homelab(overrides)
    return info.value.errors


# -- config ----------------------------------------------------------------------------------


def test_defaults_on_both_kinds() -> None:
    assert homelab().vault.enabled and homelab().vault.replicas == 3
    shoot = cleura_stack()
    assert shoot.vault.enabled and shoot.vault.node_selector is None
    assert VaultArgs.from_config(shoot, "default").placement.node_selector == {}
    assert args().placement.node_selector == {"example.com/role": "control"}


def test_two_replicas_rejected_naming_the_key() -> None:
    [message] = errors({"platform:vault": {"replicas": 2}})
    assert message.startswith("platform:vault.replicas: 2 is not an odd number >= 3")


@pytest.mark.parametrize(("value", "needle"), [
    ({"replicas": 4}, "platform:vault.replicas: 4 is not an odd number"),
    ({"replicas": 1}, "platform:vault.replicas: 1 replica has no failover"),
    ({"replicas": 5}, "platform:vault.replicas: 5 replicas need 5 nodes (one replica per node), but the control tier"),
    ({"replicas": 3, "nodeSelector": {"example.com/role": "worker"}, "storageSize": "10GB"},
     "platform:vault.storageSize: '10GB' does not match a size like 10Gi"),
    ({"tolerations": [{"key": "a", "effect": "Sometimes"}]}, "platform:vault.tolerations[0].effect"),
    ({"resources": {"requests": {"cpu": "lots"}}}, "platform:vault.resources.requests.cpu: 'lots' is not a Kubernetes"),
    ({"replica": 3}, "platform:vault.replica: unknown key; did you mean 'replicas'?"),
    ({"namespace": "Vault_Core"}, "platform:vault.namespace"),
    ({"ui": {"ingressClassName": "traefik"}}, "platform:vault.ui.ingressClassName: has no effect without"),
])
def test_bad_values_get_precise_messages(value: dict[str, Any], needle: str) -> None:
    assert any(needle in e for e in errors({"platform:vault": value})), errors({"platform:vault": value})


def test_one_replica_only_with_dev_and_a_warning() -> None:
    cfg = homelab({"platform:vault": {"replicas": 1, "dev": True}})
    assert cfg.vault.replicas == 1
    assert any("platform:vault.replicas: 1 replica (dev: true)" in w for w in cfg.warnings)


def test_chart_version_is_one_pin() -> None:
    assert args().chart.version == "0.34.1"
    cfg = homelab({"platform:versions": {"charts": {"vault": "0.34.0"}}})
    assert VaultArgs.from_config(cfg, "longhorn").chart.version == "0.34.0"


# -- rendered server configuration -------------------------------------------------------------


def parsed(a: VaultArgs, release: str) -> dict[str, Any]:
    text = vault.values(a, release)["server"]["ha"]["raft"]["config"]
    assert "tls_disable" not in text
    result: dict[str, Any] = hcl2.loads(text)
    return result


def strip(value: Any) -> Any:
    """python-hcl2 keeps string quotes; compare unquoted."""
    return value.strip('"') if isinstance(value, str) else value


@pytest.mark.parametrize("replicas", [3, 5])
def test_ha_config_parses_with_a_retry_join_per_peer_matching_pods_and_sans(replicas: int) -> None:
    nodes = [{"name": f"c{i}", "address": f"192.0.2.{60 + i}", "role": "server" if i < 3 else "agent",
              "labels": {"example.com/role": "control"}} for i in range(replicas)]
    a = args({"platform:vault": {"replicas": replicas}, "platform:nodes": nodes})
    config = parsed(a, HA_RELEASE)
    [storage] = config["storage"]
    raft = storage['"raft"'] if '"raft"' in storage else storage["raft"]
    joins = [strip(j["leader_api_addr"]) for j in raft["retry_join"]]
    pods = [f"{HA_RELEASE}-{i}.{HA_RELEASE}-internal.vault-core.svc" for i in range(replicas)]
    assert joins == [f"https://{p}:8200" for p in pods]
    sans = vault.tls_dns_names(a, HA_RELEASE)
    assert all(p in sans for p in pods)
    assert all(strip(j["leader_ca_cert_file"]) == "/vault/userconfig/vault-ha-tls/ca.crt" for j in raft["retry_join"])
    [listener] = config["listener"]
    tcp = next(iter(listener.values()))
    assert strip(tcp["tls_cert_file"]).endswith("vault-ha-tls/tls.crt") and "tls_disable" not in tcp
    [seal] = config["seal"]
    transit = next(iter(seal.values()))
    assert strip(transit["address"]) == "https://vault-transit.vault-core.svc:8200"
    assert strip(transit["key_name"]) == "autounseal" and strip(transit["mount_path"]) == "transit/"
    assert "token" not in transit  # from VAULT_TOKEN (a Secret), never in the config
    host = strip(transit["address"]).split("//")[1].split(":")[0]
    assert host in vault.tls_dns_names(a, TRANSIT_RELEASE)


def test_mlock_off_for_integrated_storage() -> None:
    for release in (HA_RELEASE, TRANSIT_RELEASE):
        assert parsed(args(), release)["disable_mlock"] is True


def test_transit_config_has_no_seal_and_its_own_tls() -> None:
    config = parsed(args(), TRANSIT_RELEASE)
    assert "seal" not in config
    raft = next(iter(config["storage"][0].values()))
    assert "retry_join" not in raft
    tcp = next(iter(config["listener"][0].values()))
    assert strip(tcp["tls_cert_file"]).endswith("vault-transit-tls/tls.crt")


def test_sans_are_valid_dns_names() -> None:
    for release in (HA_RELEASE, TRANSIT_RELEASE):
        for name in vault.tls_dns_names(args({"platform:vault": {"ui": {"host": "vault.example.com"}}}), release):
            assert all(part and len(part) < 64 for part in name.split("."))
            with pytest.raises(ValueError):
                ipaddress.ip_address(name)


# -- chart values ----------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [
    None,
    {"platform:vault": {"injector": True, "ui": {"host": "vault.example.com", "ingressClassName": "traefik"}}},
    {"platform:vault": {"replicas": 1, "dev": True, "nodeSelector": {}, "tolerations": []}},
])
def test_values_conform_to_the_pinned_chart(reference: Any, overrides: dict[str, Any] | None) -> None:
    a = args(overrides)
    for release in (TRANSIT_RELEASE, HA_RELEASE):
        found = schema.check_values("vault", a.chart.version, vault.values(a, release), reference)
        assert found.ok, found.errors


def test_ha_values() -> None:
    server = vault.values(args(), HA_RELEASE)["server"]
    assert server["ha"]["replicas"] == 3 and server["ha"]["raft"]["setNodeId"] is True
    assert server["ha"]["disruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
    assert server["dataStorage"]["storageClass"] == "longhorn"
    assert server["readinessProbe"]["path"] == "/v1/sys/health?standbyok=true"
    assert server["extraSecretEnvironmentVars"] == [
        {"envName": "VAULT_TOKEN", "secretName": "vault-transit-seal-token", "secretKey": "token"}]
    affinity = yaml.safe_load(server["affinity"])["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert affinity[0]["topologyKey"] == "kubernetes.io/hostname"
    assert server["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"
    assert server["nodeSelector"] == {"example.com/role": "control"}
    top = vault.values(args(), HA_RELEASE)
    assert top["injector"]["enabled"] == "false" and top["global"]["tlsDisable"] is False
    assert "ingress" not in server and top["ui"]["enabled"] is False
    transit = vault.values(args(), TRANSIT_RELEASE)["server"]
    assert transit["ha"]["replicas"] == 1 and transit["dataStorage"]["size"] == "1Gi"
    assert "extraSecretEnvironmentVars" not in transit
    assert server["service"] == {"publishNotReadyAddresses": False} and "service" not in transit
    env = {e["name"]: e["value"] for e in
           vault.bootstrap_job(args(), "ha")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HA_ADDR"] == "https://vault-ha-active.vault-core.svc:8200"
    assert env["HA_INIT_ADDR"] == "https://vault-ha-0.vault-ha-internal.vault-core.svc:8200"
    assert env["TRANSIT_ADDR"] == "https://vault-transit.vault-core.svc:8200"


def test_ui_ingress_speaks_tls_to_vault() -> None:
    server = vault.values(args({"platform:vault": {"ui": {"host": "vault.example.com"}}}), HA_RELEASE)["server"]
    assert server["ingress"]["hosts"] == [{"host": "vault.example.com", "paths": []}]
    assert server["ingress"]["activeService"] is True
    assert server["service"]["active"]["annotations"]["traefik.ingress.kubernetes.io/service.serversscheme"] == "https"
    assert "vault.example.com" in vault.tls_dns_names(args({"platform:vault": {"ui": {"host": "vault.example.com"}}}),
                                                      HA_RELEASE)


def test_release_does_not_wait_for_sealed_pods() -> None:
    release = vault.release_args(args(), HA_RELEASE)
    assert release.skip_await is True


# -- bootstrap objects -----------------------------------------------------------------------


def test_rbac_is_scoped_to_named_secrets() -> None:
    manifests = vault.bootstrap_rbac(args())
    roles = {m["metadata"]["name"]: m["rules"] for m in manifests if m["kind"] == "Role"}
    readable = {
        name: {n for r in rules if "get" in r["verbs"] for n in r.get("resourceNames", ["*"])}
        for name, rules in roles.items()
    }
    assert readable["vault-unsealer"] == {"vault-transit-unseal", "vault-transit-root", "vault-transit-seal-token"}
    # The Transit unseal key: only the unsealer may read it (the bootstrap creates it, blind).
    assert "vault-transit-unseal" not in readable["vault-bootstrap"]
    assert [r["verbs"] for r in roles["vault-unsealer"] if r["resources"] == ["pods"]] == [["list", "delete"]]
    env = {e["name"]: e["value"] for e in
           vault.unsealer_deployment(args())["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HA_POD_SELECTOR"] == "app.kubernetes.io%2Finstance%3Dvault-ha%2Ccomponent%3Dserver"
    assert "*" not in readable["vault-bootstrap"]
    assert all(r["resources"] == ["secrets"] for r in roles["vault-bootstrap"])


def test_network_policy_admits_only_ha_bootstrap_and_unsealer() -> None:
    policy = vault.transit_network_policy(args())
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == TRANSIT_RELEASE
    [rule] = policy["spec"]["ingress"]
    peers = [p["podSelector"]["matchLabels"] for p in rule["from"]]
    assert peers == [vault.server_labels(HA_RELEASE), {"app.kubernetes.io/name": "vault-bootstrap"},
                     {"app.kubernetes.io/name": "vault-unsealer"}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8200}]
    job_labels = vault.bootstrap_job(args(), "ha")["spec"]["template"]["metadata"]["labels"]
    unsealer_labels = vault.unsealer_deployment(args())["spec"]["template"]["metadata"]["labels"]
    assert peers[1].items() <= job_labels.items() and peers[2].items() <= unsealer_labels.items()


def test_jobs_rerun_only_when_their_inputs_change() -> None:
    digest = lambda a: vault.bootstrap_job(a, "ha")["spec"]["template"]["metadata"]["annotations"]  # noqa: E731
    assert digest(args()) == digest(args())
    assert digest(args()) != digest(args(roles=(ROLE,)))


def test_roles_reach_the_bootstrap() -> None:
    import json

    [role] = json.loads(vault.roles_json(args(roles=(ROLE,))))
    assert role["name"] == "argocd-vault-plugin" and role["policy_name"] == "argocd-read"
    with pytest.raises(ValueError, match="duplicate"):
        args(roles=(ROLE, ROLE))


def test_tools_pods_are_locked_down() -> None:
    pod = vault.bootstrap_job(args(), "transit")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}} in pod["volumes"]
    assert container["command"] == ["/bin/bash", "/scripts/bootstrap-transit.sh"]


def test_root_token_decoding() -> None:
    assert vault.decode_root_token(None) is None
    assert vault.decode_root_token({"root_token": base64.b64encode(b"hvs.x").decode()}) == "hvs.x"


# -- the program under mocks -------------------------------------------------------------------


def by_name(rec: Recording, suffix: str) -> Resource:
    [found] = [r for r in rec if r.name.endswith(suffix)]
    return found


@pytest.fixture(scope="module")
def homelab_run() -> Recording:
    from components.offline.render import render_secrets
    from components.offline.runner import run_program

    return run_program("homelab", None, render_secrets("homelab"))


def test_order_storage_transit_bootstrap_ha(homelab_run: Recording) -> None:
    rec = homelab_run
    storage = by_name(rec, "-storage-chart")
    transit = by_name(rec, "-vault-transit")
    boot_transit = by_name(rec, "-vault-bootstrap-transit")
    ha = by_name(rec, "-vault-ha")
    boot_ha = by_name(rec, "-vault-bootstrap-ha")
    assert rec.depends_on(transit, storage)
    assert rec.depends_on(transit, by_name(rec, "-calico-operator"))
    assert rec.depends_on(boot_transit, transit)
    assert rec.depends_on(ha, boot_transit)
    assert rec.depends_on(boot_ha, ha)
    assert not rec.depends_on(transit, ha)


def test_every_secret_input_is_secret(homelab_run: Recording) -> None:
    rec = homelab_run
    for release in (TRANSIT_RELEASE, HA_RELEASE):
        secret = by_name(rec, f"-vault-{release}-tls")
        assert secret.is_secret("stringData.tls.key") or secret.is_secret("stringData")
    for key in [r for r in rec if r.type == "tls:index/privateKey:PrivateKey"]:
        assert "privateKeyPem" in key.options["additional_secret_outputs"]
    assert "vaultRootToken" in rec.stack_output_secrets
    assert "vaultCaCert" in rec.stack_outputs and "vaultAddress" in rec.stack_outputs
    assert rec.stack_outputs["vaultAddress"] == "https://vault-ha.vault-core.svc:8200"


def test_nothing_lands_on_the_worker_tier(homelab_run: Recording) -> None:
    rec = homelab_run
    for suffix in ("-vault-transit", "-vault-ha"):
        values = by_name(rec, suffix).inputs["values"]
        assert values["server"]["nodeSelector"] == {"example.com/role": "control"}
    for suffix in ("-vault-bootstrap-transit", "-vault-bootstrap-ha", "-vault-unsealer"):
        pod = by_name(rec, suffix).inputs["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"example.com/role": "control"}


def test_namespace_is_baseline(homelab_run: Recording) -> None:
    labels = by_name(homelab_run, "-vault-namespace").inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"


def test_worker_tier_only_when_configured(program: Any) -> None:
    rec = program("homelab", {"platform:vault": {"nodeSelector": {"example.com/role": "worker"}}})
    assert by_name(rec, "-vault-ha").inputs["values"]["server"]["nodeSelector"] == {"example.com/role": "worker"}


def test_cleura_renders_without_a_selector(program: Any) -> None:
    rec = program("cleura")
    ha = by_name(rec, "-vault-ha")
    assert "nodeSelector" not in ha.inputs["values"]["server"]
    assert ha.inputs["values"]["server"]["dataStorage"]["storageClass"] == "default"
    assert by_name(rec, "-vault-bootstrap-ha")


def test_disabled_registers_nothing(program: Any) -> None:
    rec = program("homelab", {"platform:vault": {"enabled": False}})
    assert not [r for r in rec if "vault" in r.name]
    assert "vaultRootToken" not in rec.stack_outputs


def test_bad_config_registers_nothing(program: Any) -> None:
    from components.offline.runner import ProgramFailed

    with pytest.raises(ProgramFailed) as info:
        program("homelab", {"platform:vault": {"replicas": 2}})
    assert info.value.registered == []
    assert "platform:vault.replicas" in str(info.value.__cause__ or info.value)


def test_stack_config_field() -> None:
    raw = homelab_raw({"platform:vault": {"namespace": "secrets"}})
    cfg: StackConfig = parse_stack_config(raw, frozenset({SSH_KEY}), stack="homelab")
    assert cfg.vault.namespace == "secrets"
    assert VaultArgs.from_config(cfg, "longhorn").address == "https://vault-ha.secrets.svc:8200"


def test_default_replicas_on_a_small_cluster_warn() -> None:
    node = {"name": "solo", "address": "192.0.2.51", "role": "server"}
    storage = {"kind": "longhorn", "longhorn": {"replicaCount": 1}}
    cfg = homelab({"platform:nodes": [node], "platform:storage": storage})
    assert any("platform:vault.replicas: 3 replicas need 3 nodes" in w for w in cfg.warnings)
    assert any("platform:vault.replicas: 3 replicas need 3 nodes" in e
               for e in errors({"platform:nodes": [node], "platform:storage": storage,
                                "platform:vault": {"replicas": 3}}))


def under_vault(rec: Recording) -> list[Resource]:
    [root] = [r for r in rec if r.type == "platform:vault:Vault"]
    return [r for r in rec if any(a.urn == root.urn for a in rec.ancestors(r))]


def test_preview_has_no_side_effect(homelab_run: Recording) -> None:
    """Only declarative objects: nothing runs on `pulumi preview` (the Jobs run in the cluster on `up`)."""
    types = {r.type for r in under_vault(homelab_run)}
    assert not [t for t in types if t.startswith(("command:", "pulumi-python:dynamic"))]
    assert {"kubernetes:batch/v1:Job", "kubernetes:apps/v1:Deployment", "tls:index/locallySignedCert:LocallySignedCert"
            } <= types


def test_render_shows_both_releases_and_the_bootstrap_with_no_secret(homelab_run: Recording, tmp_path: Any,
                                                                     reference: Any) -> None:
    from components.offline.render import render

    files = render(homelab_run, tmp_path / "homelab")
    names = {p.name for p in files}
    assert {"platform-vault-transit.yaml", "platform-vault-ha.yaml",
            "Job-platform-vault-bootstrap-transit.yaml", "Job-platform-vault-bootstrap-ha.yaml",
            "Deployment-platform-vault-unsealer.yaml",
            "NetworkPolicy-platform-vault-transit-netpol.yaml"} <= names
    tls_secret = yaml.safe_load((tmp_path / "homelab/manifests/Secret-platform-vault-vault-ha-tls.yaml")
                                .read_text())
    assert tls_secret["stringData"] == "[secret]"
    found = schema.check_render_dir(tmp_path / "homelab", reference)
    assert found.errors == []


def test_config_stays_frozen_and_hashable() -> None:
    cfg = homelab({"platform:vault": {"nodeSelector": {"example.com/role": "control"}, "tolerations": [
        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}], "resources": {"limits": {"cpu": "1"}}}})
    assert hash(cfg) == hash(homelab({"platform:vault": {"nodeSelector": {"example.com/role": "control"},
                                      "tolerations": [{"key": "dedicated", "operator": "Exists",
                                                       "effect": "NoSchedule"}],
                                      "resources": {"limits": {"cpu": "1"}}}}))
    assert cfg.vault.tolerations == [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    assert cfg.vault.resources == {"limits": {"cpu": "1"}}
    placement = VaultArgs.from_config(cfg, "longhorn").placement
    assert placement.tolerations == [{"effect": "NoSchedule", "key": "dedicated", "operator": "Exists"}]


def test_a_failed_bootstrap_job_is_replaced_by_the_next_up() -> None:
    for phase in ("transit", "ha"):
        assert vault.bootstrap_job(args(), phase)["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true"}
