"""The platform program: load the stack's config, build its cluster, then the platform layer.

Kept thin on purpose: every decision lives in `components/`, where it is typed and tested.
"""

import pulumi
import pulumi_kubernetes as k8s

from components.config import ConfigError, load_stack_config
from components.gardener.cluster import ShootCluster
from components.k3s import K3sCluster, K3sClusterArgs
from components.platform import PlatformLayer

try:
    cfg = load_stack_config()
    # Component args re-check what reaches scripts (e.g. airgap files exist here): still config.
    k3s_args = K3sClusterArgs.from_config(cfg) if cfg.cluster_kind == "k3s" else None
except ConfigError as err:
    # A clean message and a non-zero exit, before any resource is registered.
    raise pulumi.RunError(err.render()) from None
for warning in cfg.warnings:
    pulumi.log.warn(warning)

# The K3s component's name is fixed ("k3s"): its children's names must not change with clusterName
# (a rename would replace, i.e. uninstall, every node). Stacks from before are aliased.
cluster: K3sCluster | ShootCluster = (
    K3sCluster("k3s", k3s_args, opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name=cfg.cluster_name)]),
               previous_names=(cfg.cluster_name,))
    if k3s_args is not None else ShootCluster(cfg.cluster_name, cfg.cleura)
)
provider = k8s.Provider(f"{cfg.cluster_name}-k8s", kubeconfig=cluster.kubeconfig, delete_unreachable=True)
platform = PlatformLayer(f"{cfg.cluster_name}-platform", cfg, opts=pulumi.ResourceOptions(providers=[provider]))

pulumi.export("clusterName", cfg.cluster_name)
pulumi.export("clusterKind", cfg.cluster_kind)
pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig))
pulumi.export("platformReady", platform.ready)
if isinstance(cluster, K3sCluster):
    # Secret: a restore from an etcd snapshot needs the cluster token (README, "K3s recovery").
    pulumi.export("k3sToken", cluster.token)
