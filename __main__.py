"""The platform program: load the stack's config, build its cluster, then the platform layer.

Kept thin on purpose: every decision lives in `components/`, where it is typed and tested.
"""

import pulumi
import pulumi_kubernetes as k8s

from components.config import ConfigError, load_stack_config

try:
    cfg = load_stack_config()
except ConfigError as err:
    # A clean message and a non-zero exit, before any resource is registered.
    raise pulumi.RunError(err.render()) from None
for warning in cfg.warnings:
    pulumi.log.warn(warning)

if cfg.cluster_kind == "k3s":
    from components.k3s import K3sCluster, K3sClusterArgs

    cluster = K3sCluster(cfg.cluster_name, K3sClusterArgs.from_config(cfg))
else:
    from components.gardener.cluster import ShootCluster

    cluster = ShootCluster(cfg.cluster_name, cfg.cleura)

provider = k8s.Provider(
    f"{cfg.cluster_name}-k8s",
    kubeconfig=cluster.kubeconfig,
    delete_unreachable=True,
)

from components.platform import PlatformLayer  # noqa: E402 - imported where it is used

platform = PlatformLayer(
    f"{cfg.cluster_name}-platform", cfg, opts=pulumi.ResourceOptions(providers=[provider])
)

pulumi.export("clusterName", cfg.cluster_name)
pulumi.export("clusterKind", cfg.cluster_kind)
pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig))
pulumi.export("platformReady", platform.ready)
