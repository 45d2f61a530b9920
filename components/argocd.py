"""Argo CD and the three-layer app-of-apps: Pulumi installs it, git drives everything after.

```
Helm release argo-cd (CRDs, argocd-cm with the Application health check, admin hash, known_hosts)
  ├─► repository Secret (label argocd.argoproj.io/secret-type=repository)
  ├─► AppProjects  root-bootstrap, root-platform, root-apps   (roots: only child Applications)
  │               bootstrap, platform, apps                 (what the children may deploy)
  └─► root-bootstrap (wave 0) ══Healthy══► root-platform (wave 1) ══Healthy══► root-apps (wave 2)
```
**How the order holds.** A sync-wave annotation orders resources only inside one parent
Application's sync; the three roots have no parent (Pulumi creates them), so their
``argocd.argoproj.io/sync-wave`` annotations 0/1/2 document the layer but order nothing on
their own. The order comes from Pulumi: each root `depends_on` the previous one, and Pulumi only
finishes creating a root once ``pulumi.com/waitFor`` sees ``status.health.status`` Healthy
(bounded by ``pulumi.com/timeoutSeconds``; on timeout `pulumi up` fails naming the root). A root
is only Healthy once its child Applications are, because ``argocd-cm`` gets the Application
health check back (Argo CD dropped it in 1.8, argoproj/argo-cd#3781); inside a root the
children's own sync-waves then order them, which that health check makes real.

**Finalizers.** Roots carry no ``resources-finalizer.argocd.argoproj.io`` by default: deleting a
root (or `pulumi destroy` of it) leaves its child Applications and everything they deployed
running. ``platform:argocd.rootFinalizer: foreground|background`` opts into cascading deletes.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from components import kube
from components.config import StackConfig
from components.config.argocd import OIDC_SECRET_REF, ROOTS, GitOps, Sso
from components.config.reader import Secret
from components.vault_auth import VaultAuthRole
from components.versions import ChartPin

API = "argoproj.io/v1alpha1"
RELEASE_NAME = "argocd"
IN_CLUSTER = "https://kubernetes.default.svc"
WAVES = {"bootstrap": 0, "platform": 1, "apps": 2}
REPO_SECRET_NAME = "gitops-repository"  # noqa: S105 - a resource name
REPO_SERVER_SA = "argocd-repo-server"
VAULT_ROLE = "argocd-repo-server"
VAULT_POLICY = "argocd-read"
VAULT_KV_PATH = "kv/data/argocd/*"
PLUGINS = ("avp-helm", "avp-kustomize")
PLUGIN_SCRIPT = "avp-generate.sh"
PLUGIN_SCRIPTS_CONFIGMAP = "argocd-avp-scripts"
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
# The health check Argo CD removed in 1.8 (argo-cd#3781), stricter than the documented one: a
# child only counts as Healthy once it is also Synced (a just-created child is briefly Healthy
# with nothing deployed, argo-cd#6708), and any *Error condition (ComparisonError,
# InvalidSpecError, SyncError: a wrong repoURL or path) is Degraded, never Healthy (argo-cd#10088).
APPLICATION_HEALTH_LUA = """hs = {}
hs.status = "Progressing"
hs.message = "waiting for the Application to report its health"
if obj.status ~= nil then
  if obj.status.conditions ~= nil then
    for _, condition in ipairs(obj.status.conditions) do
      if condition.type ~= nil and string.find(condition.type, "Error$") ~= nil then
        hs.status = "Degraded"
        hs.message = condition.message or condition.type
        return hs
      end
    end
  end
  if obj.status.health ~= nil and obj.status.health.status ~= nil then
    hs.status = obj.status.health.status
    hs.message = obj.status.health.message or ""
    if hs.status == "Healthy" and (obj.status.sync == nil or obj.status.sync.status ~= "Synced") then
      hs.status = "Progressing"
      hs.message = "healthy but not yet synced"
    end
  end
end
return hs
"""
FINALIZER_NAMES = {
    "foreground": "resources-finalizer.argocd.argoproj.io",
    "background": "resources-finalizer.argocd.argoproj.io/background",
}
RETRY = {"limit": 10, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}}
SYNC_OPTIONS = ["CreateNamespace=true", "ServerSideApply=true"]
# Namespaces an `apps` child may never deploy into.
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
ADMIN_MTIME_SCRIPT = "date -u +%Y-%m-%dT%H:%M:%SZ"
# Every Argo CD pod (chart defaults: non-root, read-only root, no capabilities, RuntimeDefault
# seccomp) passes `restricted`; enforce `baseline` so a plugin sidecar or redis-ha upgrade that
# drifts is reported (audit, warn) rather than left Pending.
NAMESPACE_LABELS = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}


@dataclass(frozen=True)
class ArgoCDArgs:
    """Everything `ArgoCD` builds from, typed and validated (`from_config`)."""

    namespace: str
    pin: ChartPin
    gitops: GitOps
    prune: Mapping[str, bool]
    placement: kube.Placement = field(default_factory=kube.Placement)
    ha: bool = False
    admin_enabled: bool = True
    sso: Sso = field(default_factory=Sso)
    controller_shards: int = 1
    vault_plugin: bool = False
    vault_enabled: bool = False
    vault_address: str | None = None
    plugin_image: str = ""
    self_manage: bool = False
    root_finalizer: str = "none"
    root_timeout_seconds: int = 1800
    repo_credential: Secret | None = None
    oidc_client_secret: Secret | None = None
    source_repos: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vault_plugin and not self.vault_enabled:
            raise ValueError("platform:argocd.vaultPlugin needs the platform's Vault (vault_enabled)")
        if self.vault_plugin and not self.vault_address:
            raise ValueError("platform:argocd.vaultPlugin needs the Vault address (vault_address)")
        if self.vault_plugin and not self.plugin_image:
            raise ValueError("platform:argocd.vaultPlugin needs platform:argocd.vaultPluginImage")

    @classmethod
    def from_config(cls, cfg: StackConfig, vault_enabled: bool = False,
                    vault_address: str | None = None) -> ArgoCDArgs:
        a = cfg.argocd
        if a is None:
            raise ValueError("ArgoCD needs a platform:argocd section")
        return cls(
            namespace=a.namespace, pin=cfg.charts["argocd"], gitops=a.gitops, prune=a.prune,
            placement=kube.control_tier(cfg.nodes), ha=a.ha, admin_enabled=a.admin_enabled, sso=a.sso,
            controller_shards=a.controller_shards, vault_plugin=a.vault_plugin, vault_enabled=vault_enabled,
            vault_address=vault_address, self_manage=a.self_manage, root_finalizer=a.root_finalizer,
            root_timeout_seconds=a.root_timeout_seconds, repo_credential=a.repo_ssh_key or a.repo_token,
            oidc_client_secret=a.oidc_client_secret,
            source_repos=a.source_repos, plugin_image=a.vault_plugin_image or "",
        )

    @property
    def plugin_on(self) -> bool:
        return self.vault_plugin and self.vault_enabled


def applies(cfg: StackConfig) -> bool:
    return cfg.argocd is not None and cfg.argocd.enabled


# -- the Helm release ---------------------------------------------------------------------


def plugin_script() -> str:
    """The generate pipeline (package data, shellcheck-clean), as the sidecars run it."""
    return (importlib.resources.files("components") / "data" / PLUGIN_SCRIPT).read_text()


def plugin_config(name: str) -> dict[str, Any]:
    """One ConfigManagementPlugin (``plugin.yaml`` of one sidecar): named, no discovery.

    Without ``discover`` the plugin runs only for Applications that name it
    (``spec.source.plugin.name: avp-helm``), never by accident.
    """
    mode = name.removeprefix("avp-")
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "ConfigManagementPlugin",
        "metadata": {"name": name},
        "spec": {
            "generate": {"command": ["bash", f"/home/argocd/cmp-scripts/{PLUGIN_SCRIPT}", mode]},
            "preserveFileMode": False,
        },
    }


def _sidecar(args: ArgoCDArgs, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": args.plugin_image,
        "command": ["/var/run/argocd/argocd-cmp-server"],
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": 999, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "env": [
            {"name": "AVP_TYPE", "value": "vault"},
            {"name": "AVP_AUTH_TYPE", "value": "k8s"},
            {"name": "AVP_K8S_ROLE", "value": VAULT_ROLE},
            {"name": "AVP_K8S_MOUNT_PATH", "value": "auth/kubernetes"},
            {"name": "VAULT_ADDR", "value": args.vault_address},
            # The root filesystem is read-only; /tmp is the sidecar's own emptyDir.
            {"name": "HELM_CACHE_HOME", "value": "/tmp/helm/cache"},  # noqa: S108
            {"name": "HELM_CONFIG_HOME", "value": "/tmp/helm/config"},  # noqa: S108
            {"name": "HELM_DATA_HOME", "value": "/tmp/helm/data"},  # noqa: S108
        ],
        "volumeMounts": [
            {"name": "var-files", "mountPath": "/var/run/argocd"},
            {"name": "plugins", "mountPath": "/home/argocd/cmp-server/plugins"},
            {"name": "argocd-cmp-cm", "mountPath": "/home/argocd/cmp-server/config/plugin.yaml",
             "subPath": f"{name}.yaml"},
            {"name": "avp-scripts", "mountPath": "/home/argocd/cmp-scripts"},
            {"name": f"{name}-tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
        ],
    }


def _scripts_configmap(args: ArgoCDArgs) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": PLUGIN_SCRIPTS_CONFIGMAP, "namespace": args.namespace},
        "data": {PLUGIN_SCRIPT: plugin_script()},
    }


def _cm(args: ArgoCDArgs) -> dict[str, Any]:
    cm: dict[str, Any] = {
        "admin.enabled": args.admin_enabled,
        HEALTH_KEY: APPLICATION_HEALTH_LUA,
        # The platform never logs in anonymously.
        "users.anonymous.enabled": False,
    }
    if args.sso.url:
        cm["url"] = args.sso.url
    if args.sso.oidc is not None:
        cm["oidc.config"] = yaml.safe_dump(dict(args.sso.oidc), sort_keys=True)
    if args.sso.dex is not None:
        cm["dex.config"] = yaml.safe_dump(dict(args.sso.dex), sort_keys=True)
    return cm


def _haproxy_placement(placement: kube.Placement) -> dict[str, Any]:
    """redis-ha's HAProxy has no nodeSelector value: the tier becomes a required node affinity."""
    out: dict[str, Any] = {}
    if placement.tolerations:
        out["tolerations"] = [dict(t) for t in placement.tolerations]
    if placement.node_selector:
        out["additionalAffinities"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": k, "operator": "In", "values": [v]} for k, v in sorted(placement.node_selector.items())
            ]}],
        }}}
    return out


def values(args: ArgoCDArgs, admin_hash: Any = None, admin_mtime: Any = None) -> dict[str, Any]:
    """argo-cd chart values. `admin_hash`/`admin_mtime` are the RandomPassword and Command outputs."""
    replicas = 2 if args.ha else 1
    placed = args.placement.values()
    out: dict[str, Any] = {
        "crds": {"install": True, "keep": True},
        "global": {
            **placed,
            # Chart default, made explicit: policies for every component, Redis and repo-server included.
            "networkPolicy": {"create": True},
        },
        "configs": {
            "cm": _cm(args),
            "secret": {
                "createSecret": True,
                "argocdServerAdminPassword": admin_hash if admin_hash is not None else "",
                "argocdServerAdminPasswordMtime": admin_mtime if admin_mtime is not None else "",
            },
        },
        "dex": {"enabled": args.sso.dex is not None},
        "controller": {"replicas": args.controller_shards},
        "server": {"replicas": replicas, "pdb": {"enabled": args.ha, "minAvailable": "1"}},
        "repoServer": {
            "replicas": replicas, "pdb": {"enabled": args.ha, "minAvailable": "1"},
            "networkPolicy": {"create": True},
        },
        "applicationSet": {"replicas": replicas, "pdb": {"enabled": args.ha, "minAvailable": "1"}},
        # Redis caches rendered manifests (with plugin-injected secrets): password auth always on.
        "redisSecretInit": {"enabled": True},
        "redis": {"networkPolicy": {"create": True}},
    }
    if args.oidc_client_secret is not None:
        # argocd-secret key `oidc.clientSecret`, which oidc.config names as $oidc.clientSecret.
        out["configs"]["secret"]["extra"] = {
            OIDC_SECRET_REF.removeprefix("$"): pulumi.Output.secret(args.oidc_client_secret.value)}
    if args.gitops.known_hosts:
        out["configs"]["ssh"] = {"extraHosts": args.gitops.known_hosts.strip() + "\n"}
    if args.controller_shards > 1:
        out["configs"]["params"] = {"controller.sharding.algorithm": "round-robin"}
    if args.ha:
        out["redis-ha"] = {
            "enabled": True,
            "auth": True,
            "hardAntiAffinity": True,
            **placed,
            "networkPolicy": {"enabled": True},
            "haproxy": {
                "hardAntiAffinity": True,
                **_haproxy_placement(args.placement),
                # Three replicas with hard anti-affinity on three nodes: a surge pod has nowhere to go.
                "deploymentStrategy": {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            },
        }
    if args.plugin_on:
        out["configs"]["cmp"] = {"create": True, "plugins": {p: plugin_config(p)["spec"] for p in PLUGINS}}
        out["repoServer"].update({
            "extraContainers": [_sidecar(args, p) for p in PLUGINS],
            "volumes": [
                {"name": "argocd-cmp-cm", "configMap": {"name": "argocd-cmp-cm"}},
                {"name": "avp-scripts", "configMap": {"name": PLUGIN_SCRIPTS_CONFIGMAP}},
                *({"name": f"{p}-tmp", "emptyDir": {}} for p in PLUGINS),
            ],
            "serviceAccount": {"create": True, "name": REPO_SERVER_SA, "automountServiceAccountToken": True},
        })
        out["extraObjects"] = [_scripts_configmap(args)]
    return out


def release_spec(args: ArgoCDArgs, admin_hash: Any = None, admin_mtime: Any = None) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(RELEASE_NAME, args.pin, args.namespace, values(args, admin_hash, admin_mtime))


# -- Vault -----------------------------------------------------------------------------------


def vault_auth_role(args: ArgoCDArgs) -> VaultAuthRole | None:
    """The Kubernetes-auth role the plugin logs in with: read-only on ``kv/data/argocd/*``."""
    if not args.plugin_on:
        return None
    return VaultAuthRole(
        name=VAULT_ROLE, service_accounts=(REPO_SERVER_SA,), namespaces=(args.namespace,),
        policy_name=VAULT_POLICY,
        policy_hcl=f'path "{VAULT_KV_PATH}" {{\n  capabilities = ["read"]\n}}\n',
        token_ttl="15m",  # noqa: S106 - a duration
    )


# -- repository, projects, roots ----------------------------------------------------------------


def repository_secret(args: ArgoCDArgs) -> dict[str, Any]:
    """The declarative repository: URL plus the credential (never ``insecure``)."""
    # No `project` key: a global repository; each AppProject's sourceRepos decides who may use it.
    data: dict[str, str] = {"type": "git", "url": args.gitops.repo_url}
    cred = args.repo_credential
    if cred is not None and args.gitops.transport == "ssh":
        data["sshPrivateKey"] = cred.value
    elif cred is not None:
        data["username"] = args.gitops.username
        data["password"] = cred.value
    return {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": REPO_SECRET_NAME, "namespace": args.namespace,
                     "labels": {"argocd.argoproj.io/secret-type": "repository"}},
        "type": "Opaque",
        "stringData": data,
    }


def _meta(args: ArgoCDArgs, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": args.namespace, **extra}


def root_project(args: ArgoCDArgs, root: str) -> dict[str, Any]:
    """What a root may do: read the GitOps repo and create Applications in Argo CD's namespace."""
    return {
        "apiVersion": API, "kind": "AppProject", "metadata": _meta(args, f"root-{root}"),
        "spec": {
            "description": f"The {root} root: only child Applications, only from the GitOps repository",
            "sourceRepos": [args.gitops.repo_url],
            "destinations": [{"server": IN_CLUSTER, "namespace": args.namespace}],
            "clusterResourceWhitelist": [],
            "namespaceResourceWhitelist": [{"group": "argoproj.io", "kind": "Application"}],
        },
    }


def layer_project(args: ArgoCDArgs, root: str) -> dict[str, Any]:
    """What the children of a root may do: bootstrap/platform run cluster-wide, apps do not."""
    spec: dict[str, Any] = {
        "description": f"Children of root-{root}",
        "sourceRepos": [args.gitops.repo_url, *args.source_repos.get(root, ())],
    }
    if root == "apps":
        spec["destinations"] = [
            *({"server": IN_CLUSTER, "namespace": f"!{ns}"} for ns in (*SYSTEM_NAMESPACES, args.namespace)),
            {"server": IN_CLUSTER, "namespace": "*"},
        ]
        spec["clusterResourceWhitelist"] = [{"group": "", "kind": "Namespace"}]
    else:
        spec["destinations"] = [{"server": IN_CLUSTER, "namespace": "*"}]
        spec["clusterResourceWhitelist"] = [{"group": "*", "kind": "*"}]
    return {"apiVersion": API, "kind": "AppProject", "metadata": _meta(args, root), "spec": spec}


def sync_policy(prune: bool) -> dict[str, Any]:
    return {"automated": {"prune": prune, "selfHeal": True}, "syncOptions": list(SYNC_OPTIONS),
            "retry": json.loads(json.dumps(RETRY))}


def root_application(args: ArgoCDArgs, root: str) -> dict[str, Any]:
    """``root-<layer>``: the directory of child Applications, waited for until Healthy."""
    meta = _meta(args, f"root-{root}", annotations={
        "argocd.argoproj.io/sync-wave": str(WAVES[root]),
        "pulumi.com/waitFor": "jsonpath={.status.health.status}=Healthy",
        "pulumi.com/timeoutSeconds": str(args.root_timeout_seconds),
    }, labels={"app.kubernetes.io/part-of": "platform-gitops", "platform.example.com/layer": root})
    if args.root_finalizer in FINALIZER_NAMES:
        meta["finalizers"] = [FINALIZER_NAMES[args.root_finalizer]]
    return {
        "apiVersion": API, "kind": "Application", "metadata": meta,
        "spec": {
            "project": f"root-{root}",
            "source": {"repoURL": args.gitops.repo_url, "targetRevision": args.gitops.revision,
                       "path": args.gitops.paths[root], "directory": {"recurse": False}},
            "destination": {"server": IN_CLUSTER, "namespace": args.namespace},
            "syncPolicy": sync_policy(args.prune[root]),
        },
    }


def self_project(args: ArgoCDArgs) -> dict[str, Any]:
    return {
        "apiVersion": API, "kind": "AppProject", "metadata": _meta(args, "argocd"),
        "spec": {
            "description": "Argo CD managing itself from the GitOps repository",
            "sourceRepos": [args.gitops.repo_url, args.pin.repo],
            "destinations": [{"server": IN_CLUSTER, "namespace": args.namespace}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    }


def self_application(args: ArgoCDArgs) -> dict[str, Any]:
    """The ``argocd`` Application: this chart with the values in git, never pruning itself."""
    values_file = f"$values/{args.gitops.paths['argocd']}/values.yaml"
    return {
        "apiVersion": API, "kind": "Application", "metadata": _meta(args, "argocd"),
        "spec": {
            "project": "argocd",
            "sources": [
                {"repoURL": args.pin.repo, "chart": args.pin.chart, "targetRevision": args.pin.version,
                 "helm": {"releaseName": RELEASE_NAME, "valueFiles": [values_file]}},
                {"repoURL": args.gitops.repo_url, "targetRevision": args.gitops.revision, "ref": "values"},
            ],
            "destination": {"server": IN_CLUSTER, "namespace": args.namespace},
            "syncPolicy": {
                "automated": {"prune": False, "selfHeal": True},
                "syncOptions": [*SYNC_OPTIONS, "Prune=false"],
                "retry": json.loads(json.dumps(RETRY)),
            },
        },
    }


def custom_resources(args: ArgoCDArgs) -> list[dict[str, Any]]:
    """Every AppProject and Application the program registers, in creation order."""
    out = [root_project(args, r) for r in ROOTS] + [layer_project(args, r) for r in ROOTS]
    if args.self_manage:
        out += [self_project(args), self_application(args)]
    return out + [root_application(args, r) for r in ROOTS]


# -- the component ------------------------------------------------------------------------------


def _cr(name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        name, api_version=manifest["apiVersion"], kind=manifest["kind"], metadata=manifest["metadata"],
        spec=manifest["spec"], opts=opts,
    )


class ArgoCD(pulumi.ComponentResource):  # type: ignore[misc]
    """Argo CD, its GitOps repository and the three roots. `ready` resolves once root-apps is Healthy.

    ``opts.depends_on`` (the base add-ons, Vault when it is on) reaches every child.
    """

    ready: pulumi.Output[bool]
    admin_password: pulumi.Output[str]
    roots: dict[str, k8s.apiextensions.CustomResource]

    def __init__(self, name: str, args: ArgoCDArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:argocd:ArgoCD", name, None, opts)
        ns = kube.namespace(f"{name}-namespace", args.namespace, kube.child_options(self, opts), NAMESPACE_LABELS)
        password = random.RandomPassword(
            f"{name}-admin-password", length=32, special=False,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result", "bcryptHash"]),
        )
        # Argo CD invalidates sessions older than this; the chart would stamp `now` on every
        # upgrade. Read once and kept in state, re-read only when the password is replaced.
        mtime = command.local.Command(
            f"{name}-admin-password-mtime", create=ADMIN_MTIME_SCRIPT, triggers=[password.id],
            opts=pulumi.ResourceOptions(parent=self),
        )
        spec = release_spec(args, password.bcrypt_hash, mtime.stdout.apply(lambda s: s.strip()))
        release_opts = kube.child_options(self, opts, ns)
        if args.self_manage:
            # Once the `argocd` Application owns the chart, upgrades come from git, not from here.
            release_opts = release_opts.merge(pulumi.ResourceOptions(ignore_changes=["version", "values"]))
        release = kube.release(f"{name}-chart", spec, ns, release_opts)
        repo = repository_secret(args)
        repo_secret = k8s.core.v1.Secret(
            f"{name}-repository", metadata=repo["metadata"], type=repo["type"],
            # Secret whether or not a credential is set: one rule for every key in it.
            string_data=pulumi.Output.secret(repo["stringData"]),
            opts=kube.child_options(self, opts, release),
        )
        after_release = kube.child_options(self, opts, release, repo_secret)
        projects: list[pulumi.Resource] = []
        previous: list[pulumi.Resource] = []
        self.roots = {}
        for manifest in custom_resources(args):
            rname = f"{name}-{manifest['kind'].lower()}-{manifest['metadata']['name']}"
            if manifest["kind"] == "AppProject":
                projects.append(_cr(rname, manifest, after_release))
                continue
            if manifest["metadata"]["name"] == "argocd":
                _cr(rname, manifest, kube.child_options(self, opts, release, repo_secret, *projects))
                continue
            root = manifest["metadata"]["labels"]["platform.example.com/layer"]
            timeout = f"{args.root_timeout_seconds}s"
            cr = _cr(rname, manifest, kube.child_options(self, opts, release, repo_secret, *projects, *previous)
                     .merge(pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create=timeout,
                                                                                          update=timeout))))
            self.roots[root] = cr
            previous = [cr]
        self.admin_password = pulumi.Output.secret(password.result)
        self.ready = kube.ready_when(*(r.id for r in self.roots.values()))
        self.register_outputs({"ready": self.ready, "adminPassword": self.admin_password})
