"""Entry point the Pulumi CLI runs for `--policy-pack policy` (starts the policy server)."""

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from rules import (  # type: ignore[import-not-found]  # run from this directory by the CLI
    ha_replicas,
    helm_pinned,
    images_pinned,
    metallb_private_pools,
    no_plaintext_secrets,
    protect_stateful,
)

MANDATORY = EnforcementLevel.MANDATORY

PolicyPack(
    name="platform-policies",
    enforcement_level=MANDATORY,
    policies=[
        ResourceValidationPolicy(name="helm-pinned-versions", validate=helm_pinned,
                                 description="Helm releases and charts pin an exact chart version."),
        ResourceValidationPolicy(name="images-pinned", validate=images_pinned,
                                 description="No latest or untagged container images."),
        ResourceValidationPolicy(name="metallb-private-pools", validate=metallb_private_pools,
                                 description="MetalLB pools only in private or documentation ranges."),
        ResourceValidationPolicy(name="no-plaintext-secrets", validate=no_plaintext_secrets,
                                 description="No secret material in plaintext command inputs, ConfigMaps or metadata."),
        # Advisory until the program protects the shoot in non-ephemeral stacks (it does not yet):
        # switch to MANDATORY then.
        ResourceValidationPolicy(name="protect-stateful", validate=protect_stateful,
                                 enforcement_level=EnforcementLevel.ADVISORY,
                                 config_schema=PolicyConfigSchema({"ephemeral": {"type": "boolean"}}),
                                 description="The shoot and stateful volumes are protected outside ephemeral stacks."),
        StackValidationPolicy(name="ha-replicas", validate=ha_replicas,
                              config_schema=PolicyConfigSchema({"dev": {"type": "boolean"}}),
                              description="3 etcd servers and 3 Vault replicas outside dev stacks."),
    ],
)
