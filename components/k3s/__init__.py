"""K3s with embedded etcd on existing hosts over SSH: `K3sCluster` and its typed arguments.

Modules: `args` (the typed, re-validated input), `render` (config.yaml, registries.yaml,
kube-vip manifest, kubeconfig rewrite), `scripts` (every remote script), `quoting` (the one
shell-quoting helper), `upgrade` (version and removal rules, Python and bash), `plan` (the
install graph), `cluster` (the ComponentResource).
"""

from components.k3s.args import DeployedState, K3sClusterArgs, NodeSpec, StorageHost, Timeouts, VipSpec
from components.k3s.cluster import K3sCluster
from components.k3s.upgrade import TransitionRefusedError, check_removal, check_upgrade

__all__ = [
    "DeployedState",
    "K3sCluster",
    "K3sClusterArgs",
    "NodeSpec",
    "StorageHost",
    "Timeouts",
    "TransitionRefusedError",
    "VipSpec",
    "check_removal",
    "check_upgrade",
]

