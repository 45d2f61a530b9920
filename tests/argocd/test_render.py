"""Pure renderers: chart values, roots, projects, repository Secret, Vault role (no mocks)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import argocd
from components.config.reader import Secret
from tests.addons import schema
from tests.argocd.conftest import DEPLOY_KEY, KNOWN_HOSTS, TOKEN, argocd_section, args, plugin_args

SSO = {"url": "https://argocd.example.com",
       "oidc": {"name": "Keycloak", "issuer": "https://id.example.com/realms/platform", "clientID": "argocd",
                "clientSecret": "$oidc.keycloak.clientSecret"}}


def roots(a: argocd.ArgoCDArgs) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in argocd.custom_resources(a) if m["kind"] == "Application"}


def test_roots_carry_waves_0_1_2_and_wait_for_health() -> None:
    apps = roots(args())
    assert list(apps) == ["root-bootstrap", "root-platform", "root-apps"]
    for (name, app), wave in zip(apps.items(), ("0", "1", "2"), strict=True):
        ann = app["metadata"]["annotations"]
        assert ann["argocd.argoproj.io/sync-wave"] == wave
        assert ann["pulumi.com/waitFor"] == "jsonpath={.status.health.status}=Healthy"
        assert ann["pulumi.com/timeoutSeconds"] == "1800"
        assert app["spec"]["project"] == name
        assert app["spec"]["source"]["path"] == f"argo/{name.removeprefix('root-')}"
        assert app["spec"]["source"]["targetRevision"] == "main"


def test_roots_sync_automatically_with_prune_self_heal_and_retry() -> None:
    for app in roots(args()).values():
        policy = app["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}
        assert policy["syncOptions"] == ["CreateNamespace=true", "ServerSideApply=true"]
        assert policy["retry"]["backoff"]["factor"] == 2 and policy["retry"]["limit"] == 10


def test_prune_switch_is_per_root() -> None:
    apps = roots(args(argocd_section(prune={"platform": False})))
    assert [a["spec"]["syncPolicy"]["automated"]["prune"] for a in apps.values()] == [True, False, True]


def test_roots_have_no_cascading_finalizer_unless_asked() -> None:
    assert all("finalizers" not in a["metadata"] for a in roots(args()).values())
    fg = roots(args(argocd_section(rootFinalizer="foreground")))
    assert {tuple(a["metadata"]["finalizers"]) for a in fg.values()} == {("resources-finalizer.argocd.argoproj.io",)}
    bg = roots(args(argocd_section(rootFinalizer="background")))
    background = ["resources-finalizer.argocd.argoproj.io/background"]
    assert all(a["metadata"]["finalizers"] == background for a in bg.values())


def test_root_projects_allow_only_child_applications_from_the_gitops_repo() -> None:
    a = args()
    for root in ("bootstrap", "platform", "apps"):
        spec = argocd.root_project(a, root)["spec"]
        assert spec["sourceRepos"] == [a.gitops.repo_url]
        assert spec["destinations"] == [{"server": "https://kubernetes.default.svc", "namespace": "argocd"}]
        assert spec["clusterResourceWhitelist"] == []
        assert spec["namespaceResourceWhitelist"] == [{"group": "argoproj.io", "kind": "Application"}]


def test_layer_projects_scope_what_children_may_deploy() -> None:
    a = args()
    boot = argocd.layer_project(a, "bootstrap")["spec"]
    assert boot["sourceRepos"] == [a.gitops.repo_url, "https://traefik.github.io/charts"]
    apps = argocd.layer_project(a, "apps")["spec"]
    assert apps["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    denied = [d["namespace"] for d in apps["destinations"] if d["namespace"].startswith("!")]
    assert denied == ["!kube-system", "!kube-public", "!kube-node-lease", "!argocd"]


def test_application_health_check_is_restored_in_argocd_cm() -> None:
    cm = argocd.values(args())["configs"]["cm"]
    lua = cm["resource.customizations.health.argoproj.io_Application"]
    assert "obj.status.health.status" in lua and lua.strip().endswith("return hs")
    assert cm["admin.enabled"] is True and cm["users.anonymous.enabled"] is False


def test_single_replica_without_ha() -> None:
    v = argocd.values(args(argocd_section(ha=False)))
    assert "redis-ha" not in v
    assert v["server"]["replicas"] == v["repoServer"]["replicas"] == v["applicationSet"]["replicas"] == 1
    assert v["controller"]["replicas"] == 1 and v["server"]["pdb"]["enabled"] is False


def test_ha_uses_redis_ha_with_a_haproxy_rollout_that_fits_three_nodes() -> None:
    v = argocd.values(args())
    ha = v["redis-ha"]
    assert ha["enabled"] is True and ha["auth"] is True and ha["hardAntiAffinity"] is True
    strategy = ha["haproxy"]["deploymentStrategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    assert v["server"]["replicas"] == v["repoServer"]["replicas"] == v["applicationSet"]["replicas"] == 2
    assert v["server"]["pdb"] == {"enabled": True, "minAvailable": "1"}
    # HAProxy follows the control tier through a required node affinity (it has no nodeSelector value).
    terms = ha["haproxy"]["additionalAffinities"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "example.com/role", "operator": "In", "values": ["control"]}]
    assert ha["nodeSelector"] == {"example.com/role": "control"} == v["global"]["nodeSelector"]


def test_controller_sharding_is_off_or_configured() -> None:
    assert "params" not in argocd.values(args())["configs"]
    v = argocd.values(args(argocd_section(controllerShards=3)))
    assert v["controller"]["replicas"] == 3
    assert v["configs"]["params"]["controller.sharding.algorithm"] == "round-robin"


def test_redis_auth_and_network_policies_stay_on() -> None:
    v = argocd.values(args())
    assert v["redisSecretInit"]["enabled"] is True
    assert v["redis"]["networkPolicy"]["create"] is True and v["repoServer"]["networkPolicy"]["create"] is True
    assert v["global"]["networkPolicy"]["create"] is True and v["redis-ha"]["networkPolicy"]["enabled"] is True


def test_known_hosts_go_to_the_ssh_config_and_nothing_is_insecure() -> None:
    v = argocd.values(args())
    assert v["configs"]["ssh"]["extraHosts"] == KNOWN_HOSTS + "\n"
    secret = argocd.repository_secret(args())
    assert "insecure" not in secret["stringData"] and "insecure" not in str(v)


def test_repository_secret_for_ssh_and_for_a_token() -> None:
    s = argocd.repository_secret(args())
    assert s["metadata"]["labels"] == {"argocd.argoproj.io/secret-type": "repository"}
    assert s["stringData"] == {"type": "git", "url": "ssh://git@git.example.com/platform/gitops.git",
                               "sshPrivateKey": DEPLOY_KEY}
    https = args(argocd_section(gitops={"repoUrl": "https://git.example.com/p/g.git", "username": "oauth2"}),
                 secrets={"argocdRepoToken": TOKEN})
    assert argocd.repository_secret(https)["stringData"] == {
        "type": "git", "url": "https://git.example.com/p/g.git", "username": "oauth2", "password": TOKEN}


def test_admin_hash_and_mtime_go_where_the_chart_reads_them() -> None:
    secret = argocd.values(args(), "$2a$10$hash", "2026-12-02T06:00:00Z")["configs"]["secret"]
    assert secret["argocdServerAdminPassword"] == "$2a$10$hash"
    assert secret["argocdServerAdminPasswordMtime"] == "2026-12-02T06:00:00Z"


def test_sso_is_passed_through_and_admin_can_be_disabled() -> None:
    v = argocd.values(args(argocd_section(adminEnabled=False, sso=SSO)))
    cm = v["configs"]["cm"]
    assert cm["admin.enabled"] is False and cm["url"] == SSO["url"]
    assert yaml.safe_load(cm["oidc.config"]) == SSO["oidc"]
    assert v["dex"]["enabled"] is False
    dex = argocd.values(args(argocd_section(sso={"url": SSO["url"], "dex": {"connectors": [{"type": "github"}]}})))
    assert dex["dex"]["enabled"] is True and "connectors" in dex["configs"]["cm"]["dex.config"]


def test_no_plugin_sidecar_without_vault() -> None:
    v = argocd.values(args())
    assert "extraContainers" not in v["repoServer"] and "cmp" not in v["configs"]
    assert argocd.vault_auth_role(args()) is None
    with pytest.raises(ValueError, match="needs the platform's Vault"):
        replace(args(), vault_plugin=True, vault_enabled=False)


def test_plugin_sidecars_authenticate_to_vault_through_kubernetes_auth() -> None:
    a = plugin_args()
    v = argocd.values(a)
    sidecars = {c["name"]: c for c in v["repoServer"]["extraContainers"]}
    assert list(sidecars) == ["avp-helm", "avp-kustomize"]
    for name, c in sidecars.items():
        env = {e["name"]: e["value"] for e in c["env"]}
        assert env["AVP_AUTH_TYPE"] == "k8s" and env["AVP_K8S_ROLE"] == "argocd-repo-server"
        assert env["VAULT_ADDR"] == "http://vault.vault.svc:8200"
        assert c["image"] == a.plugin_image and c["command"] == ["/var/run/argocd/argocd-cmp-server"]
        assert {"name": "argocd-cmp-cm", "mountPath": "/home/argocd/cmp-server/config/plugin.yaml",
                "subPath": f"{name}.yaml"} in c["volumeMounts"]
        # Nothing is downloaded at pod start: no init containers, the binary is in the image.
    assert "initContainers" not in v["repoServer"]
    plugins = v["configs"]["cmp"]["plugins"]
    assert plugins["avp-helm"]["generate"]["command"][-1] == "helm"
    assert plugins["avp-kustomize"]["generate"]["command"][-1] == "kustomize"
    assert all("discover" not in p for p in plugins.values())  # runs only where an Application names it
    (scripts,) = v["extraObjects"]
    assert scripts["data"]["avp-generate.sh"] == argocd.plugin_script()


def test_vault_auth_role_is_read_only_on_the_argocd_path() -> None:
    role = argocd.vault_auth_role(plugin_args())
    assert role is not None
    assert role.service_accounts == ("argocd-repo-server",) and role.namespaces == ("argocd",)
    assert role.policy_hcl == 'path "kv/data/argocd/*" {\n  capabilities = ["read"]\n}\n'
    assert role.policy_name == "argocd-read"


def test_self_management_points_at_its_values_in_git_and_never_prunes() -> None:
    a = args(argocd_section(selfManage=True))
    app = next(m for m in argocd.custom_resources(a)
               if m["kind"] == "Application" and m["metadata"]["name"] == "argocd")
    chart, values_ref = app["spec"]["sources"]
    assert chart["chart"] == "argo-cd" and chart["targetRevision"] == "10.1.1"
    assert chart["helm"]["valueFiles"] == ["$values/argo/argocd/values.yaml"]
    assert values_ref == {"repoURL": a.gitops.repo_url, "targetRevision": "main", "ref": "values"}
    assert app["spec"]["syncPolicy"]["automated"]["prune"] is False
    assert "Prune=false" in app["spec"]["syncPolicy"]["syncOptions"]
    assert "argocd" not in {m["metadata"]["name"] for m in argocd.custom_resources(args())}


# -- conformance: upstream CRDs and the pinned chart -----------------------------------------------

VARIANTS = {
    "homelab": lambda: args(),
    "single": lambda: args(argocd_section(ha=False)),
    "self-managed-finalized": lambda: args(argocd_section(selfManage=True, rootFinalizer="foreground",
                                                          prune={"apps": False})),
    "sso": lambda: args(argocd_section(adminEnabled=False, sso=SSO, controllerShards=2)),
    "plugin": lambda: plugin_args(),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_custom_resources_validate_against_the_upstream_crds(variant: str, conformance: Path) -> None:
    manifests = argocd.custom_resources(VARIANTS[variant]())
    assert {m["kind"] for m in manifests} >= {"Application", "AppProject"}
    for m in manifests:
        assert schema.validate_custom_resource(m, conformance) == [], m["metadata"]["name"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_values_conform_to_the_pinned_chart(variant: str, conformance: Path) -> None:
    a = VARIANTS[variant]()
    found = schema.check_values("argo-cd", a.pin.version, argocd.values(a, "$2a$10$x", "2026-01-01T00:00:00Z"),
                                conformance)
    assert found.errors == [] and found.warnings == []


def test_crd_check_rejects_an_unknown_field(conformance: Path) -> None:
    bad = roots(args())["root-apps"]
    bad["spec"]["syncPolicy"]["automated"]["prunee"] = True
    assert any("prunee" in e for e in schema.validate_custom_resource(bad, conformance))


def test_secret_values_never_reach_the_repr() -> None:
    assert DEPLOY_KEY not in repr(args()) and "Secret('argocdRepoSshKey')" in repr(args())
    assert repr(Secret("k", TOKEN)) == "Secret('k')"
