"""platform:argocd: every bad value is one precise message, before anything is registered."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import ConfigError
from components.config.argocd import schedulable_control_nodes
from tests.addons.conftest import homelab_raw
from tests.argocd.conftest import DEPLOY_KEY, TOKEN, argocd_section, stack


def errors(section: dict[str, Any], secrets: dict[str, str] | None = None, **kw: Any) -> list[str]:
    with pytest.raises(ConfigError) as err:
        stack(section, secrets, **kw)
    return err.value.errors


def gitops(**changes: Any) -> dict[str, Any]:
    g = dict(argocd_section()["gitops"])
    g.update(changes)
    return argocd_section(gitops=g)


def test_homelab_section_parses_with_defaults() -> None:
    a = stack().argocd
    assert a is not None and a.enabled and a.ha and a.namespace == "argocd"
    assert a.gitops.transport == "ssh" and a.gitops.revision == "main"
    assert dict(a.gitops.paths) == {"bootstrap": "argo/bootstrap", "platform": "argo/platform",
                                    "apps": "argo/apps", "argocd": "argo/argocd"}
    assert dict(a.prune) == {"bootstrap": True, "platform": True, "apps": True}
    assert a.root_finalizer == "none" and a.repo_ssh_key is not None and a.repo_token is None


def test_no_section_means_no_argocd() -> None:
    raw = homelab_raw({"platform:argocd": None})
    from components.config import parse_stack_config

    assert parse_stack_config(raw, frozenset({"platform:sshPrivateKey"}), stack="homelab").argocd is None


@pytest.mark.parametrize("url", [
    "http://git.example.com/platform/gitops.git", "ftp://git.example.com/x.git", "git.example.com/x",
    "https://", "ssh://git@", "file:///srv/git/x.git",
])
def test_repo_url_must_be_https_ssh_or_scp(url: str) -> None:
    msgs = errors(gitops(repoUrl=url))
    assert any(m.startswith("platform:argocd.gitops.repoUrl:") and repr(url) in m for m in msgs), msgs


@pytest.mark.parametrize("url", ["git@git.example.com:platform/gitops.git", "ssh://git@git.example.com:2222/p/g.git"])
def test_scp_form_and_ssh_urls_are_accepted(url: str) -> None:
    a = stack(gitops(repoUrl=url)).argocd
    assert a is not None and a.gitops.transport == "ssh"


def test_https_repo_takes_a_token_not_an_ssh_key() -> None:
    a = stack(gitops(repoUrl="https://git.example.com/p/g.git", knownHosts=None),
              {"argocdRepoToken": TOKEN}).argocd
    assert a is not None and a.repo_token is not None and a.gitops.transport == "https"
    (msg,) = errors(gitops(repoUrl="https://git.example.com/p/g.git"), {"argocdRepoSshKey": DEPLOY_KEY})
    assert msg.startswith("platform:argocdRepoSshKey:") and "argocdRepoToken" in msg


def test_token_with_ssh_url_and_both_credentials_are_rejected() -> None:
    assert any(e.startswith("platform:argocdRepoToken: is a token") for e in errors(argocd_section(),
                                                                                   {"argocdRepoToken": TOKEN}))
    both = errors(argocd_section(), {"argocdRepoToken": TOKEN, "argocdRepoSshKey": DEPLOY_KEY})
    assert any("set only one of" in e for e in both)


def test_credentials_in_plain_text_are_refused() -> None:
    raw = homelab_raw()
    raw["platform:argocdRepoToken"] = TOKEN
    from components.config import parse_stack_config

    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw, frozenset({"platform:sshPrivateKey"}), stack="homelab")
    plain = "platform:argocdRepoToken: is a secret but was set in plain text"
    assert any(e.startswith(plain) for e in err.value.errors)
    assert TOKEN not in err.value.render()


def test_ssh_key_that_is_not_a_key_is_rejected_without_echoing_it() -> None:
    msgs = errors(argocd_section(), {"argocdRepoSshKey": "hunter2-not-a-key"})
    assert any(e.startswith("platform:argocdRepoSshKey: is not a PEM") for e in msgs)
    assert not any("hunter2" in e for e in msgs)


def test_ssh_repo_requires_known_hosts_never_insecure() -> None:
    (msg,) = errors(gitops(knownHosts=None))
    assert msg.startswith("platform:argocd.gitops.knownHosts: is required") and "insecure" in msg
    (msg,) = errors(gitops(knownHosts="git.example.com"))
    assert "ssh-keyscan" in msg


@pytest.mark.parametrize("revision", ["main branch", "-rf", "$(id)", "a;b"])
def test_revision_with_spaces_or_shell_characters_is_rejected(revision: str) -> None:
    (msg,) = errors(gitops(revision=revision))
    assert msg.startswith("platform:argocd.gitops.revision:") and repr(revision) in msg


@pytest.mark.parametrize(("path", "why"), [("/argo/bootstrap", "relative"), ("argo/../etc", "'..'"),
                                           ("../outside", "'..'"), ("argo/my apps", "whitespace")])
def test_absolute_and_dotdot_paths_are_rejected(path: str, why: str) -> None:
    (msg,) = errors(gitops(paths={"apps": path}))
    assert msg.startswith("platform:argocd.gitops.paths.apps:") and why in msg


def test_roots_need_three_distinct_directories() -> None:
    (msg,) = errors(gitops(paths={"apps": "argo/platform"}))
    assert msg.startswith("platform:argocd.gitops.paths:") and "three different" in msg


def test_ha_on_a_small_tier_is_a_validation_error() -> None:
    nodes = homelab_raw()["platform:nodes"]
    # Three etcd servers, but only two of them in the control tier Argo CD is placed on.
    small = [{**n, "labels": {"example.com/role": "worker"}} if n["name"] == "k3s-control-03" else n for n in nodes]
    msgs = errors(argocd_section(ha=True), overrides={"platform:nodes": small})
    assert any(e.startswith("platform:argocd.ha: needs at least 3 schedulable nodes") and "has 2" in e for e in msgs)
    a = stack(argocd_section(ha=False), overrides={"platform:nodes": small}).argocd
    assert a is not None and not a.ha


def test_schedulable_nodes_count_the_control_tier_or_untainted_nodes() -> None:
    cfg = stack()
    assert schedulable_control_nodes(cfg.nodes) == 3
    from dataclasses import replace

    from components.config import Taint

    unlabelled = tuple(replace(n, labels=()) for n in cfg.nodes)
    assert schedulable_control_nodes(unlabelled) == 6
    tainted = tuple(replace(n, taints=(Taint("dedicated", "x", "NoSchedule"),)) if n.role == "agent" else n
                    for n in unlabelled)
    assert schedulable_control_nodes(tainted) == 3


def test_vault_plugin_needs_vault() -> None:
    section = argocd_section(vaultPlugin=True, vaultPluginImage="registry.example.com/p/avp:1")
    msgs = errors(section, overrides={"platform:vault": {"enabled": False}})
    assert any(e.startswith("platform:argocd.vaultPlugin: needs the platform's Vault") for e in msgs)
    assert stack(section).argocd is not None  # Vault is on by default: the plugin pairs with it


def test_vault_plugin_image_must_be_pinned() -> None:
    msgs = errors(argocd_section(vaultPluginImage="avp:latest latest"))
    assert any(e.startswith("platform:argocd.vaultPluginImage:") for e in msgs)


def test_disabling_admin_needs_sso() -> None:
    (msg,) = errors(argocd_section(adminEnabled=False))
    assert msg.startswith("platform:argocd.adminEnabled:") and "lock everyone out" in msg
    sso = {"url": "https://argocd.example.com", "oidc": {"name": "Keycloak", "issuer": "https://id.example.com",
                                                         "clientID": "argocd", "clientSecret": "$oidc.clientSecret"}}
    a = stack(argocd_section(adminEnabled=False, sso=sso)).argocd
    assert a is not None and not a.admin_enabled and a.sso.oidc is not None


def test_sso_needs_a_url_and_one_provider() -> None:
    msgs = errors(argocd_section(sso={"oidc": {"issuer": "x"}, "dex": {"connectors": []}}))
    assert any("oidc or dex, not both" in e for e in msgs)
    assert any(e.startswith("platform:argocd.sso.url: is required") for e in msgs)


def test_unknown_keys_and_typos_are_reported() -> None:
    (msg,) = errors(argocd_section(hA=True))
    assert msg.startswith("platform:argocd.hA: unknown key") and "'ha'" in msg
    (msg,) = errors(argocd_section(prune={"bootstrap": False, "app": False}))
    assert msg.startswith("platform:argocd.prune.app: unknown key")


def test_root_finalizer_and_source_repos_are_checked() -> None:
    (msg,) = errors(argocd_section(rootFinalizer="cascade"))
    assert msg.startswith("platform:argocd.rootFinalizer:") and "foreground" in msg
    (msg,) = errors(argocd_section(sourceRepos={"bootstrap": ["traefik.github.io/charts"]}))
    assert msg.startswith("platform:argocd.sourceRepos.bootstrap[0]:")


def test_credentials_without_the_section_are_rejected() -> None:
    raw = homelab_raw({"platform:argocd": None})
    raw["platform:argocdRepoSshKey"] = DEPLOY_KEY
    from components.config import parse_stack_config

    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw, frozenset({"platform:sshPrivateKey", "platform:argocdRepoSshKey"}), stack="homelab")
    msgs = err.value.errors
    assert any(e.startswith("platform:argocdRepoSshKey: is set but platform:argocd is not") for e in msgs)


def test_cleura_stack_counts_untainted_worker_minimums() -> None:
    import yaml

    from components.config import parse_stack_config
    from components.offline.runner import PROJECT_ROOT

    raw = dict(yaml.safe_load((PROJECT_ROOT / "Pulumi.cleura.yaml").read_text())["config"])
    raw["platform:argocd"] = {"ha": True, "gitops": {"repoUrl": "https://git.example.com/p/g.git"}}
    cfg = parse_stack_config(raw, frozenset(), stack="cleura")
    assert cfg.argocd is not None and cfg.argocd.ha
    workers = raw["platform:cleura"]["shootProvider"]["workers"]
    raw["platform:cleura"]["shootProvider"]["workers"] = [{**workers[0], "minimum": 2}]
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw, frozenset(), stack="cleura")
    assert any(e.startswith("platform:argocd.ha: needs at least 3") for e in err.value.errors)


def test_ha_auto_follows_the_tier_size() -> None:
    nodes = homelab_raw()["platform:nodes"]
    small = [{**n, "labels": {"example.com/role": "worker"}} if n["name"] == "k3s-control-03" else n for n in nodes]
    big = stack(argocd_section(ha="auto")).argocd
    assert big is not None and big.ha
    little = stack(argocd_section(ha="auto"), overrides={"platform:nodes": small}).argocd
    assert little is not None and not little.ha
    (msg,) = errors(argocd_section(ha="sometimes"))
    assert msg.startswith("platform:argocd.ha: expected true, false or auto")


def test_oidc_client_secret_is_a_secret_key_never_inline() -> None:
    sso = {"url": "https://argocd.example.com", "oidc": {"issuer": "https://id.example.com", "clientID": "argocd",
                                                         "clientSecret": "s3cr3t-inline"}}
    msgs = errors(argocd_section(sso=sso))
    assert any(e.startswith("platform:argocd.sso.oidc.clientSecret: must not be inline") for e in msgs)
    assert not any("s3cr3t-inline" in e for e in msgs)
    sso["oidc"]["clientSecret"] = "$oidc.clientSecret"
    a = stack(argocd_section(sso=sso), {"argocdRepoSshKey": DEPLOY_KEY, "argocdOidcClientSecret": "s3cr3t"}).argocd
    assert a is not None and a.oidc_client_secret is not None
    msgs = errors(argocd_section(), {"argocdRepoSshKey": DEPLOY_KEY, "argocdOidcClientSecret": "s3cr3t"})
    unused = "platform:argocdOidcClientSecret: is set but platform:argocd.sso.oidc is not"
    assert any(e.startswith(unused) for e in msgs)
