"""The platform layer: the cluster add-ons on one Kubernetes provider, in dependency order.

```
K3s:     Calico ──► MetalLB      (in parallel after the CNI)
                └─► storage      (Longhorn | OpenEBS)
Gardener:           storage      (Cinder; the shoot brings its CNI and load balancers)
both:    after_base() ──► Vault  (Transit + Raft HA in vault-core; `vault_auth_roles` go to its bootstrap)
```
The provider arrives through ``opts`` (``providers=[k8s_provider]``) and reaches every child
by inheritance. Each add-on exposes ``ready``; the layer's ``ready`` resolves once all of
them have. Later add-ons (Vault, Argo CD) go after `storage` and `load_balancer` the same way:
``ResourceOptions(parent=self, depends_on=self.after_base())``.
"""

from __future__ import annotations

from typing import TypeVar

import pulumi

from components import calico, metallb, storage
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
    if cfg.vault.enabled:
        steps.append("vault")
    return tuple(steps)


class PlatformLayer(pulumi.ComponentResource):  # type: ignore[misc]
    """Calico, MetalLB and storage on the cluster behind the provider in ``opts``."""

    ready: pulumi.Output[bool]
    cni: calico.Calico | None
    load_balancer: metallb.MetalLB | None
    storage: storage.StorageComponent
    vault: vault_component.Vault | None

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None,
                 vault_auth_roles: tuple[VaultAuthRole, ...] = ()) -> None:
        super().__init__("platform:platform:Layer", name, None, opts)
        self.addons: dict[str, pulumi.ComponentResource] = {}
        self.cni = None
        self.load_balancer = None
        if calico.applies(cfg):
            self.cni = self._add("calico", calico.Calico(f"{name}-calico", cfg, self._after()))
        # Everything else needs pod networking; MetalLB and storage do not need each other.
        if metallb.applies(cfg):
            self.load_balancer = self._add("metallb", metallb.MetalLB(f"{name}-metallb", cfg, self._after(self.cni)))
        self.storage = self._add(
            "storage", storage.storage_component(f"{name}-storage", cfg, self._after(self.cni))
        )
        self.vault = None
        if cfg.vault.enabled:
            vault_args = vault_component.VaultArgs.from_config(cfg, self.storage.storage_class, vault_auth_roles)
            self.vault = self._add("vault", vault_component.Vault(
                f"{name}-vault", vault_args, pulumi.ResourceOptions(parent=self, depends_on=self.after_base())))
        self.ready = pulumi.Output.all(*[a.ready for a in self.addons.values()]).apply(
            lambda flags: all(flags)
        )
        self.register_outputs({"ready": self.ready, "storageClass": self.storage.storage_class})

    def _add(self, key: str, component: C) -> C:
        self.addons[key] = component
        return component

    def _after(self, *components: pulumi.ComponentResource | None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=[c for c in components if c is not None])

    def after_base(self) -> list[pulumi.Resource]:
        """What an add-on that needs networking, load balancing and volumes waits for."""
        return [c for c in (self.cni, self.load_balancer, self.storage) if c is not None]
