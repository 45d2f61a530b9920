"""Dynamic resources with their own type tokens.

`pulumi-python:dynamic/cleura:Shoot`, `.../cleura:ShootKubeconfig` and
`.../cleura:ProjectBootstrap` (instead of the shared `pulumi-python:dynamic:Resource`) let
policies, tests and the offline render find each kind. Output attributes are seeded with None
so they exist as typed `Output`s on the instance.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi import dynamic

from components.gardener.provider import (
    KUBECONFIG_OUTPUTS,
    SHOOT_OUTPUT_KEYS,
    ProjectBootstrapProvider,
    ShootClaimProvider,
    ShootKubeconfigProvider,
    ShootProvider,
)
from components.gardener.spec import ShootSpec, Timeouts

SHOOT_ATTRIBUTE_INPUTS = ("name", "cloud", "region", "project_id", "kubernetes_version")


class Shoot(dynamic.Resource, module="cleura", name="Shoot"):  # type: ignore[misc,call-arg]
    """A Gardener shoot. Inputs mirror `cleura_gardener_shoot` (snake_case) plus adopt/timeouts."""

    name: pulumi.Output[str]
    cloud: pulumi.Output[str]
    region: pulumi.Output[str]
    project_id: pulumi.Output[str]
    kubernetes_version: pulumi.Output[str]
    uid: pulumi.Output[str]
    cloud_profile_name: pulumi.Output[str]
    gardener_region: pulumi.Output[str]
    nodes_cidr: pulumi.Output[str]
    current_kubernetes_version: pulumi.Output[str]
    hibernated: pulumi.Output[bool]
    last_operation: pulumi.Output[dict[str, Any]]
    status: pulumi.Output[dict[str, Any]]
    reported: pulumi.Output[dict[str, Any]]

    def __init__(self, resource_name: str, spec: ShootSpec, *, adopt: bool | str = False,
                 timeouts: Timeouts | None = None, owner: str | None = None,
                 resource_urn: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        # Optional inputs read back as attributes (`cloud` feeds the kubeconfig) are seeded too:
        # `to_inputs` drops None, and a key missing from props is no attribute at all.
        props: dict[str, Any] = {
            **{k: None for k in SHOOT_ATTRIBUTE_INPUTS},
            **{k: None for k in SHOOT_OUTPUT_KEYS},
            **spec.to_inputs(),  # after the seeded outputs: `hibernated` is both (desired in, observed out)
            "adopt": adopt,
            "timeouts": (timeouts or Timeouts()).to_inputs(),
            "owner": owner,
            "resource_urn": resource_urn,  # progress on this resource's row (see `progress`)
        }
        super().__init__(ShootProvider(), resource_name, props, opts)


class ShootKubeconfig(dynamic.Resource, module="cleura", name="ShootKubeconfig"):  # type: ignore[misc,call-arg]
    """The shoot's kubeconfig: server, CA and an exec credential plugin (no secret, never expires)."""

    kubeconfig: pulumi.Output[str]
    server: pulumi.Output[str]
    certificate_authority_data: pulumi.Output[str]
    issued_at: pulumi.Output[str]

    def __init__(self, resource_name: str, *, shoot_name: pulumi.Input[str], region: pulumi.Input[str],
                 project_id: pulumi.Input[str], cloud: pulumi.Input[str] | None = None,
                 shoot_uid: pulumi.Input[str] | None = None, shoot_id: pulumi.Input[str] | None = None,
                 expiration_seconds: int = 86400, renew_before_expiry_seconds: int = 0,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "cloud": cloud,
            "region": region,
            "project_id": project_id,
            "shoot_name": shoot_name,
            "shoot_uid": shoot_uid,
            "shoot_id": shoot_id,
            "expiration_seconds": expiration_seconds,
            "renew_before_expiry_seconds": renew_before_expiry_seconds,
            **{k: None for k in KUBECONFIG_OUTPUTS},
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=["kubeconfig"])
        super().__init__(ShootKubeconfigProvider(), resource_name, props, pulumi.ResourceOptions.merge(secret, opts))


class ProjectBootstrap(dynamic.Resource, module="cleura", name="ProjectBootstrap"):  # type: ignore[misc,call-arg]
    """Prepares an OpenStack project for Gardener; safe to repeat, cannot be undone."""

    def __init__(self, resource_name: str, *, region: str, project_id: str, cloud: str | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {"cloud": cloud, "region": region, "project_id": project_id}
        super().__init__(ProjectBootstrapProvider(), resource_name, props, opts)


class ShootClaim(dynamic.Resource, module="cleura", name="ShootClaim"):  # type: ignore[misc,call-arg]
    """This stack's claim on a shoot name: lets `destroy` remove a shoot a failed create left behind."""

    def __init__(self, resource_name: str, *, name: str, region: str, project_id: str, owner: str,
                 cloud: str | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {"cloud": cloud, "region": region, "project_id": project_id, "name": name,
                                 "owner": owner}
        super().__init__(ShootClaimProvider(), resource_name, props, opts)
