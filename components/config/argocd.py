"""Config for Argo CD and its three GitOps roots: the ``platform:argocd`` section.

`parse_argocd` records every problem with its key path and returns a frozen `ArgoCD`, or
``None`` when the stack has no ``platform:argocd`` section. The repository credential comes
from one of the secret keys ``platform:argocdRepoSshKey`` / ``platform:argocdRepoToken``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from components.config.cluster import Node
from components.config.reader import NAMESPACE, FrozenMap, Reader, Secret, describe, secret_command
from components.netaddr import DNS_LABEL_RE
from components.problems import Problems

ROOTS = ("bootstrap", "platform", "apps")
DEFAULT_PATHS = {"bootstrap": "argo/bootstrap", "platform": "argo/platform", "apps": "argo/apps",
                 "argocd": "argo/argocd"}
SSH_KEY = "argocdRepoSshKey"
TOKEN_KEY = "argocdRepoToken"  # noqa: S105 - a config key name
OIDC_SECRET_KEY = "argocdOidcClientSecret"  # noqa: S105 - a config key name
OIDC_SECRET_REF = "$oidc.clientSecret"  # noqa: S105 - the argocd-secret key oidc.config refers to
HA_MIN_NODES = 3
FINALIZERS = ("none", "background", "foreground")
# Pods of these tiers go to nodes labelled example.com/role=control (components.kube.control_tier).
_ROLE_LABEL = "example.com/role"
_SCP_RE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s/][^\s]*")
_SSH_URL_RE = re.compile(r"ssh://([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(:\d+)?/\S+")
_HTTPS_URL_RE = re.compile(r"https://[A-Za-z0-9.-]+(:\d+)?/\S+")
_REVISION_RE = re.compile(r"[A-Za-z0-9._/+-]+")
_IMAGE_RE = r"[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})"


@dataclass(frozen=True)
class GitOps:
    repo_url: str
    revision: str
    paths: Mapping[str, str]
    known_hosts: str | None
    username: str

    @property
    def transport(self) -> Literal["ssh", "https"]:
        return "https" if self.repo_url.startswith("https://") else "ssh"


@dataclass(frozen=True)
class Sso:
    """Passed through to ``argocd-cm``: ``url``, and ``oidc.config`` or ``dex.config`` (YAML)."""

    url: str | None = None
    oidc: Mapping[str, Any] | None = None
    dex: Mapping[str, Any] | None = None

    @property
    def configured(self) -> bool:
        return self.oidc is not None or self.dex is not None


@dataclass(frozen=True)
class ArgoCD:
    enabled: bool
    namespace: str
    ha: bool
    gitops: GitOps
    prune: Mapping[str, bool]
    admin_enabled: bool = True
    sso: Sso = field(default_factory=Sso)
    controller_shards: int = 1
    vault_plugin: bool = False
    self_manage: bool = False
    root_finalizer: Literal["none", "background", "foreground"] = "none"
    root_timeout_seconds: int = 1800
    repo_ssh_key: Secret | None = None
    repo_token: Secret | None = None
    oidc_client_secret: Secret | None = None
    source_repos: Mapping[str, tuple[str, ...]] = field(default_factory=FrozenMap)
    vault_plugin_image: str | None = None


def schedulable_control_nodes(nodes: tuple[Node, ...]) -> int:
    """How many nodes Argo CD's pods can land on (its placement is `components.kube.control_tier`).

    With a control tier the pods select it and tolerate its taints, so every member counts;
    without one they go anywhere untainted (no tolerations are added).
    """
    tier = [n for n in nodes if dict(n.labels).get(_ROLE_LABEL) == "control"]
    if tier:
        return len(tier)
    return sum(1 for n in nodes if not any(t.effect in ("NoSchedule", "NoExecute") for t in n.taints))


def schedulable_shoot_nodes(cleura: Any) -> int:
    """The guaranteed node count of a Gardener shoot: the minimum of every untainted worker group."""
    total = 0
    shoot = getattr(cleura, "shoot", None)
    for worker in getattr(shoot, "workers", ()) or ():
        if any(getattr(t, "effect", "") in ("NoSchedule", "NoExecute") for t in worker.taints):
            continue
        total += worker.minimum or 0
    return total


def _repo_url_problem(url: str) -> str | None:
    if url.startswith("http://"):
        return f"{describe(url)} is plain http; use https:// (credentials and manifests must not cross in clear text)"
    if _HTTPS_URL_RE.fullmatch(url) or _SSH_URL_RE.fullmatch(url) or _SCP_RE.fullmatch(url):
        return None
    return (f"{describe(url)} is neither an https:// URL, an ssh:// URL nor scp form (git@host:org/repo.git); "
            "e.g. https://git.example.com/platform/gitops.git")


def _path_problem(path: str) -> str | None:
    if not path or path.startswith("/"):
        return f"{describe(path)} must be a relative path inside the repository (no leading '/')"
    if ".." in path.split("/"):
        return f"{describe(path)} must not contain '..' (Argo CD resolves paths inside the repository only)"
    if any(c.isspace() for c in path):
        return f"{describe(path)} contains whitespace"
    return None


def _object(r: Reader, key: str) -> Mapping[str, Any] | None:
    value = r.raw(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        r.error(key, f"expected an object (passed to argocd-cm as YAML), got {describe(value)}")
        return None
    return dict(value)


def parse_argocd(top: Reader, secrets: Mapping[str, Secret], schedulable_nodes: int,
                 vault_enabled: bool) -> ArgoCD | None:
    """The ``platform:argocd`` section, or None when the stack has none.

    `schedulable_nodes` is what the HA check compares against (see `schedulable_control_nodes`,
    `schedulable_shoot_nodes`); `vault_enabled` gates ``vaultPlugin``.
    """
    ssh_key, token, oidc_secret = secrets.get(SSH_KEY), secrets.get(TOKEN_KEY), secrets.get(OIDC_SECRET_KEY)
    if not top.has("argocd"):
        for key, given in ((SSH_KEY, ssh_key), (TOKEN_KEY, token), (OIDC_SECRET_KEY, oidc_secret)):
            if given is not None:
                top.problems.error(f"{NAMESPACE}:{key}", f"is set but {NAMESPACE}:argocd is not; set "
                                   f"{NAMESPACE}:argocd.gitops.repoUrl or remove it (pulumi config rm "
                                   f"{NAMESPACE}:{key})")
        return None
    a = top.obj("argocd")
    problems: Problems = a.problems
    enabled = a.boolean("enabled", True)
    namespace = a.string("namespace", "argocd", pattern=DNS_LABEL_RE.pattern, hint="a DNS-1123 label") or "argocd"
    ha_raw = a.raw("ha")
    if ha_raw == "auto":
        # HA exactly when the tier can hold it (a stack file shared by differently sized clusters).
        ha = schedulable_nodes >= HA_MIN_NODES
    elif isinstance(ha_raw, str) and ha_raw.lower() not in ("true", "false"):
        a.error("ha", f"expected true, false or auto, got {describe(ha_raw)}")
        ha = False
    else:
        ha = a.boolean("ha", False)
    if ha and schedulable_nodes < HA_MIN_NODES:
        a.error("ha", f"needs at least {HA_MIN_NODES} schedulable nodes for Argo CD (redis-ha uses hard "
                      f"anti-affinity), this stack has {schedulable_nodes}; set {NAMESPACE}:argocd.ha to false or "
                      "add nodes to the control tier")

    g = a.obj("gitops")
    repo_url = g.string("repoUrl", required=enabled, hint="the GitOps repository, https:// or ssh://") or ""
    if repo_url:
        why = _repo_url_problem(repo_url)
        if why:
            g.error("repoUrl", why)
    revision = g.string("revision", "main") or "main"
    if not _REVISION_RE.fullmatch(revision) or revision.startswith("-"):
        g.error("revision", f"{describe(revision)} is not a git branch, tag or commit (no spaces or shell "
                            "characters), e.g. main or v1.2.0")
    p = g.obj("paths")
    paths: dict[str, str] = {}
    for key, default in DEFAULT_PATHS.items():
        value = p.string(key, default) or default
        why = _path_problem(value)
        if why:
            p.error(key, why)
        paths[key] = value.rstrip("/")
    p.finish()
    if len({paths[r] for r in ROOTS}) < len(ROOTS):
        g.error("paths", "bootstrap, platform and apps must be three different directories (each root syncs "
                         "exactly one)")
    known_hosts = g.string("knownHosts")
    username = g.string("username", "git") or "git"
    g.finish()
    transport = "https" if repo_url.startswith("https://") else "ssh"
    if enabled and repo_url:
        if transport == "ssh":
            if token is not None:
                problems.error(f"{NAMESPACE}:{TOKEN_KEY}", f"is a token for https:// repositories, but "
                               f"{NAMESPACE}:argocd.gitops.repoUrl is an SSH URL; set {NAMESPACE}:{SSH_KEY} instead")
            if not known_hosts:
                g.error("knownHosts", "is required for an SSH repository (Argo CD never runs with insecure: true); "
                                      "paste the output of: ssh-keyscan <git host>")
            elif not all(len(line.split()) >= 3 for line in known_hosts.strip().splitlines()
                         if line.strip() and not line.startswith("#")):
                g.error("knownHosts", "each line must be '<host> <key type> <key>' (ssh-keyscan output)")
        elif ssh_key is not None:
            problems.error(f"{NAMESPACE}:{SSH_KEY}", f"is an SSH key, but {NAMESPACE}:argocd.gitops.repoUrl is "
                           f"https://; set {NAMESPACE}:{TOKEN_KEY} (e.g. {secret_command(TOKEN_KEY)})")
        if ssh_key is not None and token is not None:
            problems.error(f"{NAMESPACE}:{TOKEN_KEY}", f"set only one of {NAMESPACE}:{SSH_KEY} and "
                           f"{NAMESPACE}:{TOKEN_KEY}")
        if ssh_key is not None and "PRIVATE KEY-----" not in ssh_key.value:
            problems.error(f"{NAMESPACE}:{SSH_KEY}", "is not a PEM/OpenSSH private key; set it from the file: "
                           f"pulumi config set --secret {NAMESPACE}:{SSH_KEY} -- < deploy_key")

    pr = a.obj("prune")
    prune = {root: pr.boolean(root, True) for root in ROOTS}
    pr.finish()
    admin_enabled = a.boolean("adminEnabled", True)
    s = a.obj("sso")
    sso = Sso(url=s.string("url", pattern=r"https://\S+", hint="the https:// URL users open Argo CD at"),
              oidc=_object(s, "oidc"), dex=_object(s, "dex"))
    s.finish()
    if sso.oidc is not None and sso.dex is not None:
        a.error("sso", "set oidc or dex, not both (Argo CD uses one SSO provider)")
    if sso.configured and sso.url is None:
        a.error("sso.url", "is required with SSO (the redirect URL Argo CD registers with the provider)")
    if oidc_secret is not None and sso.oidc is None:
        problems.error(f"{NAMESPACE}:{OIDC_SECRET_KEY}", f"is set but {NAMESPACE}:argocd.sso.oidc is not; configure "
                       f"sso.oidc with clientSecret: {OIDC_SECRET_REF}, or remove it")
    client_secret = sso.oidc.get("clientSecret") if sso.oidc is not None else None
    if client_secret is not None and not (isinstance(client_secret, str) and client_secret.startswith("$")):
        # Not echoed: it is a secret typed into the wrong place.
        a.error("sso.oidc.clientSecret", f"must not be inline (it would sit in plain config and state); use "
                f"{OIDC_SECRET_REF} and {secret_command(OIDC_SECRET_KEY)}")
    if not admin_enabled and not sso.configured:
        a.error("adminEnabled", "false without sso.oidc or sso.dex would lock everyone out; configure SSO first")
    shards = a.integer("controllerShards", 1, minimum=1, maximum=16)
    vault_plugin = a.boolean("vaultPlugin", False)
    if vault_plugin and not vault_enabled:
        a.error("vaultPlugin", f"needs the platform's Vault; enable {NAMESPACE}:vault or set vaultPlugin to false")
    plugin_image = a.string("vaultPluginImage", pattern=_IMAGE_RE, hint="an image reference pinned by tag or digest, "
                            "e.g. registry.example.com/argocd-avp:v3.4.4-avp1.18.1")
    if vault_plugin and plugin_image is None and not a.has("vaultPluginImage"):
        a.error("vaultPluginImage", "is required with vaultPlugin: build images/argocd-vault-plugin (see README, "
                                    "'Argo CD') and push it to a registry the cluster pulls from")
    sr = a.obj("sourceRepos")
    source_repos: dict[str, tuple[str, ...]] = {}
    for root in ROOTS:
        repos = sr.strings(root)
        for i, repo in enumerate(repos):
            if not re.fullmatch(r"(https|oci)://\S+", repo) and not _SCP_RE.fullmatch(repo) \
                    and not _SSH_URL_RE.fullmatch(repo):
                a.problems.error(f"{sr.key_path(root)}[{i}]", f"{describe(repo)} is not a repository URL "
                                 "(https://, oci://, ssh:// or scp form)")
        source_repos[root] = repos
    sr.finish()
    self_manage = a.boolean("selfManage", False)
    finalizer = a.choice("rootFinalizer", FINALIZERS, "none")
    timeout = a.integer("rootTimeoutSeconds", 1800, minimum=60, maximum=4 * 3600)
    a.finish()
    return ArgoCD(
        enabled=enabled, namespace=namespace, ha=ha,
        gitops=GitOps(repo_url, revision, FrozenMap(paths), known_hosts, username),
        prune=FrozenMap(prune), admin_enabled=admin_enabled, sso=sso, controller_shards=shards,
        vault_plugin=vault_plugin,
        self_manage=self_manage, root_finalizer=finalizer,  # type: ignore[arg-type]
        root_timeout_seconds=timeout, repo_ssh_key=ssh_key, repo_token=token, oidc_client_secret=oidc_secret,
        source_repos=FrozenMap(source_repos),
        vault_plugin_image=plugin_image,
    )
