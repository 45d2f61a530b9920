"""The ArgoCD component under mocks: order, secrets, stability, HA and the plugin switch."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from pulumi.runtime import mocks as pulumi_mocks

from components import argocd
from components.offline.runner import ProgramFailed, Recording, Resource, default_command_stdout
from tests.addons.conftest import record
from tests.argocd.conftest import DEPLOY_KEY, argocd_section, args, plugin_args
from tests.conftest import RunProgram, secrets_for

PREFIX = "platform-argocd"
MTIME = "2026-12-02T06:00:00Z"
SECRETS = {**secrets_for("homelab"), "platform:argocdRepoSshKey": DEPLOY_KEY}
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
CR_APPLICATION = "kubernetes:argoproj.io/v1alpha1:Application"


def stdout(args: pulumi_mocks.MockResourceArgs) -> str:
    return MTIME + "\n" if args.name.endswith("-admin-password-mtime") else default_command_stdout(args)


@pytest.fixture
def homelab(program: RunProgram) -> Recording:
    return program("homelab", secrets=SECRETS, command_stdout=stdout)


def chart_values(rec: Recording) -> dict[str, Any]:
    values: dict[str, Any] = rec.named(f"{PREFIX}-chart").inputs["values"]
    return values


def roots(rec: Recording) -> list[Resource]:
    return [rec.named(f"{PREFIX}-application-root-{r}") for r in ("bootstrap", "platform", "apps")]


def test_component_wraps_everything_it_registers(homelab: Recording) -> None:
    (component,) = homelab.of_type("platform:argocd:ArgoCD")
    assert component.name == PREFIX
    for r in homelab:
        if r.name.startswith(PREFIX + "-"):
            assert component in homelab.ancestors(r), r.name


def test_roots_wait_for_the_release_its_crds_and_each_other(homelab: Recording) -> None:
    release = homelab.named(f"{PREFIX}-chart")
    boot, plat, apps = roots(homelab)
    for root in (boot, plat, apps):
        assert root.type == CR_APPLICATION
        assert homelab.depends_on(root, release)  # the release installs the Application CRD
        assert homelab.depends_on(root, homelab.named(f"{PREFIX}-repository"))
        assert homelab.depends_on(root, homelab.named(f"{PREFIX}-appproject-root-{root.name.rsplit('-', 1)[1]}"))
        assert root.options["custom_timeouts"] == {"create": "1800s", "update": "1800s", "delete": ""}
    assert homelab.depends_on(plat, boot) and homelab.depends_on(apps, plat)
    assert not homelab.depends_on(boot, plat)
    waves = [r.inputs["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] for r in (boot, plat, apps)]
    assert waves == ["0", "1", "2"]


def test_namespace_enforces_baseline_and_warns_on_restricted(homelab: Recording) -> None:
    labels = homelab.named(f"{PREFIX}-namespace").inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_argocd_comes_after_the_base_addons(homelab: Recording) -> None:
    release = homelab.named(f"{PREFIX}-chart")
    for base in ("platform-storage", "platform-metallb", "platform-calico"):
        assert homelab.depends_on(release, homelab.named(base)), base


def test_repository_secret_and_admin_password_are_secret(homelab: Recording) -> None:
    repo = homelab.named(f"{PREFIX}-repository")
    assert repo.is_secret("stringData") and repo.redacted_inputs()["stringData"] == "[secret]"
    assert repo.inputs["metadata"]["labels"] == {"argocd.argoproj.io/secret-type": "repository"}
    release = homelab.named(f"{PREFIX}-chart")
    assert release.is_secret("values.configs.secret.argocdServerAdminPassword")
    assert not release.is_secret("values.configs.cm")  # the rest stays reviewable in renders
    assert "argocdAdminPassword" in homelab.stack_output_secrets
    password = homelab.named(f"{PREFIX}-admin-password")
    assert password.type == "random:index/randomPassword:RandomPassword"
    assert set(password.options["additional_secret_outputs"]) == {"result", "bcryptHash"}
    assert DEPLOY_KEY not in str([r.redacted_inputs() for r in homelab])


def test_admin_hash_is_the_random_password_hash_and_stable_across_runs(program: RunProgram) -> None:
    first = program("homelab", secrets=SECRETS, command_stdout=stdout)
    second = program("homelab", secrets=SECRETS, command_stdout=stdout)
    a, b = (chart_values(r)["configs"]["secret"] for r in (first, second))
    assert a == b
    # The chart gets RandomPassword's own bcrypt_hash output (hashed once, kept in state), not
    # a hash computed by the program (a fresh salt every run would be a permanent diff).
    digest = hashlib.sha256(f"random:index/randomPassword:RandomPassword/{PREFIX}-admin-password".encode())
    assert a["argocdServerAdminPassword"] == "$2a$10$" + digest.hexdigest()[:53]
    # The mtime is read once into state (the chart would stamp `now` on every upgrade).
    assert a["argocdServerAdminPasswordMtime"] == MTIME
    mtime = first.named(f"{PREFIX}-admin-password-mtime")
    assert mtime.inputs["create"] == argocd.ADMIN_MTIME_SCRIPT
    assert mtime.inputs["triggers"] == [f"{PREFIX}-admin-password-id"]


def test_homelab_runs_ha_and_a_single_replica_stack_does_not(homelab: Recording, program: RunProgram) -> None:
    assert chart_values(homelab)["redis-ha"]["enabled"] is True
    single = program("homelab", {"platform:argocd": argocd_section(ha=False)}, secrets=SECRETS, command_stdout=stdout)
    assert "redis-ha" not in chart_values(single) and chart_values(single)["server"]["replicas"] == 1


def test_bad_config_registers_nothing(program: RunProgram) -> None:
    with pytest.raises(ProgramFailed) as err:
        program("homelab", {"platform:argocd": argocd_section(gitops={"repoUrl": "http://git.example.com/x.git"})},
                secrets=SECRETS)
    assert err.value.registered == []
    assert "platform:argocd.gitops.repoUrl" in str(err.value.__cause__)


def test_stack_without_argocd_registers_none(program: RunProgram) -> None:
    rec = program("homelab", {"platform:argocd": None})
    assert rec.of_type("platform:argocd:ArgoCD") == [] and "argocdAdminPassword" not in rec.stack_outputs


def test_cleura_stack_gets_argocd_too(program: RunProgram) -> None:
    rec = program("cleura", {"platform:argocd": {"gitops": {"repoUrl": "https://git.example.com/p/g.git"}}},
                  secrets={"platform:argocdRepoToken": "glpat-test-token-0123456789"})
    assert len(rec.of_type("platform:argocd:ArgoCD")) == 1
    assert len(rec.of_type(CR_APPLICATION)) == 3


def _build(a: argocd.ArgoCDArgs) -> Recording:
    def build(provider: k8s.Provider) -> None:
        argocd.ArgoCD("argocd", a, pulumi.ResourceOptions(providers=[provider]))

    return record(build)


def test_plugin_sidecar_only_when_vault_is_on() -> None:
    off = _build(args()).named("argocd-chart").inputs["values"]["repoServer"]
    assert "extraContainers" not in off
    on = _build(plugin_args()).named("argocd-chart").inputs["values"]
    assert [c["name"] for c in on["repoServer"]["extraContainers"]] == ["avp-helm", "avp-kustomize"]
    assert on["extraObjects"][0]["metadata"]["name"] == argocd.PLUGIN_SCRIPTS_CONFIGMAP


def test_self_management_hands_the_release_to_git() -> None:
    rec = _build(args(argocd_section(selfManage=True)))
    assert rec.named("argocd-chart").options["ignore_changes"] == ["values", "version"]
    app = rec.named("argocd-application-argocd")
    assert rec.depends_on(app, rec.named("argocd-appproject-argocd"))
    assert rec.named("argocd-chart").options["ignore_changes"] and _build(args()).named(
        "argocd-chart").options["ignore_changes"] == []


def test_what_argocd_waits_for_reaches_every_child() -> None:
    # How PlatformLayer passes the base add-ons (and Vault, once it lands) in.
    def build(provider: k8s.Provider) -> None:
        vault = k8s.core.v1.ConfigMap("vault-stand-in", opts=pulumi.ResourceOptions(provider=provider))
        argocd.ArgoCD("argocd", args(), pulumi.ResourceOptions(providers=[provider], depends_on=[vault]))

    rec = record(build)
    vault = rec.named("vault-stand-in")
    custom = [r for r in rec if r.custom and r.name.startswith("argocd-") and not r.type.startswith("random:")
              and not r.type.startswith("command:")]
    assert {r.type for r in custom} >= {RELEASE_TYPE, CR_APPLICATION, "kubernetes:core/v1:Secret"}
    for r in custom:
        assert rec.depends_on(r, vault), r.name


def test_render_shows_the_argocd_objects_and_no_credential(homelab: Recording, tmp_path: Path) -> None:
    from components.offline.render import render

    files = render(homelab, tmp_path / "homelab")
    text = {p.relative_to(tmp_path / "homelab").as_posix(): p.read_text() for p in files}
    assert not [name for name, body in text.items() if "deploy-key-for-tests-only" in body]
    secret = yaml.safe_load(text[f"manifests/Secret-{PREFIX}-repository.yaml"])
    assert secret["stringData"] == "[secret]"
    values = yaml.safe_load(text[f"helm/{PREFIX}-chart.yaml"])["values"]
    assert values["configs"]["secret"]["argocdServerAdminPassword"] == "[secret]"
    assert values["redis-ha"]["enabled"] is True  # the rest of the values stays reviewable
    for root, wave in (("bootstrap", "0"), ("platform", "1"), ("apps", "2")):
        app = yaml.safe_load(text[f"manifests/Application-{PREFIX}-application-root-{root}.yaml"])
        assert app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == wave
        assert f"manifests/AppProject-{PREFIX}-appproject-root-{root}.yaml" in text


def test_oidc_client_secret_reaches_argocd_secret_as_a_secret(program: RunProgram) -> None:
    sso = {"url": "https://argocd.example.com",
           "oidc": {"issuer": "https://id.example.com", "clientID": "argocd", "clientSecret": "$oidc.clientSecret"}}
    rec = program("homelab", {"platform:argocd": argocd_section(sso=sso)},
                  secrets={**SECRETS, "platform:argocdOidcClientSecret": "oidc-client-secret-value"},
                  command_stdout=stdout)
    release = rec.named(f"{PREFIX}-chart")
    assert release.is_secret("values.configs.secret.extra.oidc.clientSecret")
    assert release.inputs["values"]["configs"]["secret"]["extra"] == {"oidc.clientSecret": "oidc-client-secret-value"}
    assert "oidc-client-secret-value" not in str(release.redacted_inputs())
    assert not release.is_secret("values.configs.cm")
