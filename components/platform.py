"""The platform layer: the cluster add-ons on one Kubernetes provider, in dependency order.

```
K3s:     Calico ──► MetalLB ──► Traefik ──► cert-manager + ClusterIssuer
                ├─► storage      (Longhorn | OpenEBS)
                └─► snapshots    (CRDs, controller, VolumeSnapshotClass)
Gardener:           storage      (Cinder, read from the shoot), Traefik ──► cert-manager
both:    after_base() ──► Vault  (Transit + Raft HA in vault-core; `vault_auth_roles` go to its bootstrap)
                      └─► Argo CD (after Vault when it is on; it then syncs the GitOps roots)
```
The provider arrives through ``opts`` (``providers=[k8s_provider]``) and reaches every child
by inheritance; so does ``deleted_with`` (the cluster), forwarded by `kube.child_options`.
Each add-on takes its own frozen args type, built here from the stack config
(``CalicoArgs.from_config(cfg)``, ...), and exposes ``ready``; the layer's ``ready`` resolves
once all of them have. Later add-ons (Vault, Argo CD) go after `after_base` the same way:
``ResourceOptions(parent=self, depends_on=self.after_base())``, and use `ingress_class` and
`cluster_issuer` for their UI ingresses. The layer's name (``platform`` in `__main__`) never
holds the cluster's name: every child is ``<layer>-<add-on>-...``, so a name that changed with
``clusterName`` would replace everything in the cluster (see `components.identity`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pulumi

from components import argocd, calico, certs, ingress, metallb, snapshots, storage
from components import vault as vault_component
from components.config import StackConfig
from components.vault_auth import VaultAuthRole

C = TypeVar("C", bound=pulumi.ComponentResource)


def plan(cfg: StackConfig) -> tuple[str, ...]:
    """The add-ons this stack gets, in install order (pure: what `PlatformLayer` will build)."""
    steps: list[str] = []
    if calico.applies(cfg):
        steps.append("calico")
    if metallb.applies(cfg):
        steps.append("metallb")
    steps.append(cfg.storage.kind)
    if snapshots.applies(cfg):
        steps.append("snapshots")
    if ingress.applies(cfg):
        steps.append("traefik")
    if certs.applies(cfg):
        steps.append("cert-manager")
    if cfg.vault.enabled:
        steps.append("vault")
    if argocd.applies(cfg):
        steps.append("argocd")
    return tuple(steps)


# The charts each step of `plan` installs (keys of `StackConfig.charts`).
CHARTS_OF_STEP: dict[str, tuple[str, ...]] = {
    "calico": ("calicoCrds", "tigeraOperator"),
    "metallb": ("metallb",),
    "longhorn": ("longhorn",),
    "openebs": ("openebs",),
    "traefik": ("traefik",),
    "cert-manager": ("certManager",),
    "argocd": ("argocd",),
    "vault": ("vault",),
}


def charts_in_use(cfg: StackConfig) -> tuple[str, ...]:
    """The chart pins this stack installs, in install order (pure)."""
    return tuple(chart for step in plan(cfg) for chart in CHARTS_OF_STEP.get(step, ()))


def chart_mirror_problems(cfg: StackConfig) -> list[str]:
    """A local chart mirror must hold every archive the stack installs (checked before any registration)."""
    problems = []
    for name in charts_in_use(cfg):
        archive = cfg.charts[name].local_archive
        if archive is not None and not Path(archive).is_file():
            problems.append(f"platform:charts.mirror: {archive} is missing (chart {name}, "
                            f"{cfg.charts[name].version}); add it to the mirror or pin a version it holds")
    return problems


class PlatformLayer(pulumi.ComponentResource):  # type: ignore[misc]
    """Calico, MetalLB, storage, snapshots, Traefik and cert-manager on the cluster behind ``opts``."""

    ready: pulumi.Output[bool]
    cni: calico.Calico | None
    load_balancer: metallb.MetalLB | None
    storage: storage.StorageComponent
    snapshots: snapshots.Snapshots | None
    ingress: ingress.Traefik | None
    certs: certs.CertManager | None
    # For the UI ingresses of later add-ons: None when the stack switches ingress/certs off.
    ingress_class: str | None
    cluster_issuer: str | None
    argocd: argocd.ArgoCD | None
    vault: vault_component.Vault | None

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None,
                 vault_auth_roles: tuple[VaultAuthRole, ...] = ()) -> None:
        super().__init__("platform:platform:Layer", name, None, opts)
        self._deleted_with = opts.deleted_with if opts is not None else None
        self.addons: dict[str, pulumi.ComponentResource] = {}
        self.cni = None
        self.load_balancer = None
        self.snapshots = None
        self.ingress = None
        self.certs = None
        self.ingress_class = None
        self.cluster_issuer = None
        if calico.applies(cfg):
            self.cni = self._add("calico", calico.Calico(
                f"{name}-calico", calico.CalicoArgs.from_config(cfg), self._after()))
        # Everything else needs pod networking; MetalLB and storage do not need each other.
        if metallb.applies(cfg):
            self.load_balancer = self._add("metallb", metallb.MetalLB(
                f"{name}-metallb", metallb.MetalLBArgs.from_config(cfg), self._after(self.cni)))
        self.storage = self._add("storage", storage.storage_component(
            f"{name}-storage", storage.StorageArgs.from_config(cfg), self._after(self.cni)))
        if snapshots.applies(cfg):
            self.snapshots = self._add("snapshots", snapshots.Snapshots(
                f"{name}-snapshots", snapshots.SnapshotArgs.from_config(cfg), self._after(self.cni)))
        if ingress.applies(cfg):
            # After MetalLB: its address pool must exist before the Service asks for the address.
            self.ingress = self._add("ingress", ingress.Traefik(
                f"{name}-ingress", ingress.IngressArgs.from_config(cfg), self._after(self.cni, self.load_balancer)))
            self.ingress_class = self.ingress.ingress_class
        if certs.applies(cfg):
            # After Traefik: HTTP-01 challenges are served through its ingress class.
            self.certs = self._add("certs", certs.CertManager(
                f"{name}-certs", certs.CertsArgs.from_config(cfg), self._after(self.cni, self.ingress)))
            self.cluster_issuer = self.certs.cluster_issuer
        self.vault = None
        self.argocd = None
        vault_args = (vault_component.VaultArgs.from_config(cfg, self.storage.storage_class, vault_auth_roles)
                      if cfg.vault.enabled else None)
        argocd_args = (argocd.ArgoCDArgs.from_config(cfg, vault_args is not None,
                                                     vault_args.address if vault_args else None)
                       if argocd.applies(cfg) else None)
        if vault_args is not None:
            # The Argo CD Vault Plugin's read-only role is written by Vault's bootstrap.
            role = argocd.vault_auth_role(argocd_args) if argocd_args is not None else None
            if role is not None:
                vault_args = vault_component.VaultArgs.from_config(cfg, self.storage.storage_class,
                                                                   (*vault_auth_roles, role))
            self.vault = self._add("vault", vault_component.Vault(
                f"{name}-vault", vault_args, self._after(*self.after_base())))
        if argocd_args is not None:
            # After the base add-ons and Vault (the plugin authenticates to it).
            self.argocd = self._add("argocd", argocd.ArgoCD(
                f"{name}-argocd", argocd_args, self._after(*self.after_base(), self.vault)))
        self.ready = pulumi.Output.all(*[a.ready for a in self.addons.values()]).apply(
            lambda flags: all(flags)
        )
        self.register_outputs({"ready": self.ready, "storageClass": self.storage.storage_class})

    def _add(self, key: str, component: C) -> C:
        self.addons[key] = component
        return component

    def _after(self, *components: pulumi.ComponentResource | None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=[c for c in components if c is not None],
                                      deleted_with=self._deleted_with)

    def after_base(self) -> list[pulumi.Resource]:
        """What an add-on that needs networking, load balancing and volumes waits for."""
        return [c for c in (self.cni, self.load_balancer, self.storage) if c is not None]
