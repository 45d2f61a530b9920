"""`ShootCluster`: a Cleura shoot plus its admin kubeconfig, as one component.

Thin wiring only: ProjectBootstrap (optional) -> Shoot -> ShootKubeconfig, all parented to the
component. The kubeconfig follows the shoot's `id` and `uid`, so a replaced shoot (same name,
new cluster) also gets a fresh kubeconfig, while an in-place change previews no change at all
(see `ShootKubeconfigProvider` and `credential`).
"""

from __future__ import annotations

import pulumi

from components.gardener.progress import child_urn
from components.gardener.resources import ProjectBootstrap, Shoot, ShootClaim, ShootKubeconfig
from components.gardener.spec import CleuraConfig

COMPONENT_TYPE = "platform:gardener:ShootCluster"
SHOOT_TYPE = "pulumi-python:dynamic/cleura:Shoot"


class ShootCluster(pulumi.ComponentResource):  # type: ignore[misc]
    """A Gardener shoot on Cleura; `kubeconfig` (secret) feeds the `kubernetes` provider."""

    kubeconfig: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(self, name: str, cfg: CleuraConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        """`name` should not change with the cluster's name (`__main__` passes ``cleura``): the
        children are ``<name>-shoot`` etc. and the ownership marker names it, so a new name would
        create a second shoot and delete the first. The shoot's name at Cleura is ``cfg.shoot.name``
        (``platform:cleura.name``), independent of it."""
        super().__init__(COMPONENT_TYPE, name, None, opts)
        spec = cfg.shoot
        depends: list[pulumi.Resource] = []
        if cfg.bootstrap_project:
            depends.append(ProjectBootstrap(f"{name}-bootstrap", cloud=spec.cloud, region=spec.region,
                                            project_id=spec.project_id, opts=pulumi.ResourceOptions(parent=self)))
        # Stable for the life of the stack (the component's name is fixed), never clusterName.
        owner = f"{pulumi.get_project()}/{pulumi.get_stack()}/{name}"
        if not cfg.adopt:
            # Only a shoot this stack creates gets a claim: destroy never deletes an adopted one
            # through it (observe mode never deletes at all).
            depends.append(ShootClaim(f"{name}-claim", name=spec.name, cloud=spec.cloud, region=spec.region,
                                      project_id=spec.project_id, owner=owner,
                                      opts=pulumi.ResourceOptions(parent=self)))
        # A plain string, not `self.urn.apply(...)`: an input that depends on the parent component
        # would make the shoot depend on its own parent. Only for a top-level component, where the
        # URN is certain; elsewhere progress falls back to stderr.
        shoot_urn = (child_urn(f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{COMPONENT_TYPE}::{name}",
                               SHOOT_TYPE, f"{name}-shoot") if opts is None or opts.parent is None else None)
        shoot = Shoot(f"{name}-shoot", spec, adopt=cfg.adopt, timeouts=cfg.timeouts, owner=owner,
                      resource_urn=shoot_urn,
                      # No delete_before_replace option: the provider's diff asks for it only when
                      # the name is reused; a rename creates the new shoot before deleting the old.
                      opts=pulumi.ResourceOptions(parent=self, depends_on=depends))
        kubeconfig = ShootKubeconfig(
            f"{name}-kubeconfig",
            cloud=shoot.cloud,
            region=shoot.region,
            project_id=shoot.project_id,
            shoot_name=shoot.name,
            shoot_uid=shoot.uid,
            shoot_id=shoot.id,  # known in previews of in-place changes, unknown when the shoot is replaced
            expiration_seconds=cfg.kubeconfig_expiration_seconds,
            renew_before_expiry_seconds=cfg.renew_before_expiry_seconds,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[shoot], additional_secret_outputs=["kubeconfig"]),
        )
        self.shoot = shoot
        self.kubeconfig = pulumi.Output.secret(kubeconfig.kubeconfig)
        self.name = shoot.name
        self.register_outputs({"kubeconfig": self.kubeconfig, "name": self.name})
