"""The platform program: load the stack's config, build its cluster, then the platform layer.

Kept thin on purpose: every decision lives in `components/`, where it is typed and tested.
"""

import pulumi
import pulumi_kubernetes as k8s

from components import identity
from components.config import ConfigError, load_stack_config
from components.gardener.cluster import ShootCluster
from components.k3s import K3sCluster, K3sClusterArgs
from components.platform import PlatformLayer, chart_mirror_problems

try:
    cfg = load_stack_config()
    # Component args re-check what reaches scripts (e.g. airgap files exist here): still config.
    k3s_args = K3sClusterArgs.from_config(cfg) if cfg.cluster_kind == "k3s" else None
    if mirror_problems := chart_mirror_problems(cfg):
        raise ConfigError(mirror_problems)
except ConfigError as err:
    # A clean message and a non-zero exit, before any resource is registered.
    raise pulumi.RunError(err.render()) from None
for warning in cfg.warnings:
    pulumi.log.warn(warning)

# clusterKind existing builds no cluster: the platform layer goes onto the kubeconfig's cluster.
# Fixed names (components/identity.py): every child is named after its parent, so a name holding
# clusterName would make a rename replace every node, the shoot and every in-cluster object.
# Stacks from before, named after clusterName, are aliased.
cluster: K3sCluster | ShootCluster | None = None
if k3s_args is not None:
    cluster = K3sCluster(identity.K3S, k3s_args, opts=identity.legacy_aliases(identity.K3S, cfg.cluster_name),
                         previous_names=(cfg.cluster_name,))
elif cfg.cluster_kind == "cleura":
    # The shoot's own name at Cleura is platform:cleura.name, never this resource name.
    cluster = ShootCluster(identity.SHOOT, cfg.cleura, opts=identity.legacy_aliases(identity.SHOOT, cfg.cluster_name))
kubeconfig: pulumi.Input[str] = (
    cluster.kubeconfig if cluster is not None
    else pulumi.Output.secret(cfg.existing.kubeconfig.value if cfg.existing is not None else "")
)
# deleteUnreachable is explicit (never None): None would let the SDK copy an ambient
# PULUMI_K8S_DELETE_UNREACHABLE into state, and a refresh with an expired or hibernated
# cluster would then drop the whole platform layer from state. True only as a teardown switch.
provider = k8s.Provider(identity.PROVIDER, kubeconfig=kubeconfig, delete_unreachable=cfg.delete_unreachable,
                        opts=identity.legacy_aliases(identity.PROVIDER, cfg.cluster_name))
# deleted_with: destroying the cluster skips every in-cluster object (Longhorn's uninstall Job,
# webhooks, finalizers) instead of deleting each through an API that is about to disappear.
platform = PlatformLayer(identity.LAYER, cfg, opts=identity.legacy_aliases(identity.LAYER, cfg.cluster_name).merge(
    pulumi.ResourceOptions(providers=[provider], deleted_with=cluster)))

pulumi.export("clusterName", cfg.cluster_name)
pulumi.export("clusterKind", cfg.cluster_kind)
if cluster is not None:
    pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig))
pulumi.export("platformReady", platform.ready)
if platform.argocd is not None:
    pulumi.export("argocdAdminPassword", platform.argocd.admin_password)
if platform.vault is not None:
    pulumi.export("vaultAddress", platform.vault.address)
    pulumi.export("vaultCaCert", platform.vault.ca_cert)
    pulumi.export("vaultRootToken", pulumi.Output.secret(platform.vault.root_token))
if isinstance(cluster, K3sCluster):
    # Secret: a restore from an etcd snapshot needs the cluster token (README, "K3s recovery").
    pulumi.export("k3sToken", cluster.token)
