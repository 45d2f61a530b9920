"""The Pulumi names of the program's top-level resources: fixed, so `clusterName` is only a label.

A URN holds a resource's own name and its ancestors' *types*, never their names. Every child in
this project is named ``<parent's name>-<role>`` (the house style), so these four names decide
every URN of a stack. None of them contains ``platform:clusterName``: renaming the cluster
registers the very same URNs, and only what is meant to follow the cluster's name changes (the
kubeconfig's cluster, user and context name, an in-place update of the provider, see below).

Stacks deployed before the names were fixed used ``<clusterName>`` (the K3s component and the
shoot component), ``<clusterName>-k8s`` (the Kubernetes provider) and ``<clusterName>-platform``
(the platform layer). `legacy_aliases` gives each top-level resource its old name as an alias,
and that is enough for the whole tree, because the engine derives a child's old URN from its
parent's: once a parent is matched through an alias, a child whose name starts with the parent's
new name is also looked up under the parent's old name in its place (``platform-calico`` ->
``homelab-platform-calico``), under the parent's old type chain; grandchildren follow from their
matched parent the same way (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``,
``generateAliases``/``inheritedChildAlias``; the Python SDK's ``all_aliases`` does the same for
engines without alias specs). That covers the children that remote components (the Calico CRD
``helm.v4.Chart``, the snapshot ``yaml.v2`` ConfigFiles and ConfigGroup) register inside the
Kubernetes provider, whose names start with the component's name.

* Resources that used the provider keep it: the engine compares provider references by URN and
  treats one whose provider was matched through an alias as unchanged (``providerChanged``), so
  nothing is replaced for "provider changed".
* The kubeconfig's names following ``clusterName`` do not replace the provider: pulumi-kubernetes
  plans a replacement only when the active cluster entry (server, CA) changes, not its name.
* Read-only lookups (``StorageClass.get``, ``Secret.get``) carry no aliases; after a rename of
  their old URN the engine forgets the old read and reads again (no call deletes anything).

The aliases match only while the old prefix is the current ``clusterName``: run one ``pulumi up``
with the new code before renaming the cluster (README, "Renaming the cluster").
"""

from __future__ import annotations

import pulumi

K3S = "k3s"  # platform:k3s:Cluster (clusterKind k3s)
SHOOT = "cleura"  # platform:gardener:ShootCluster (clusterKind cleura)
PROVIDER = "k8s"  # pulumi:providers:kubernetes (every kind)
LAYER = "platform"  # platform:platform:Layer (every kind)

# The name each of them had before, as a function of clusterName.
_LEGACY_SUFFIX = {K3S: "", SHOOT: "", PROVIDER: "-k8s", LAYER: "-platform"}


def legacy_name(name: str, cluster_name: str) -> str:
    """The name `name` was registered under when resource names followed `cluster_name`."""
    return f"{cluster_name}{_LEGACY_SUFFIX[name]}"


def legacy_aliases(name: str, cluster_name: str) -> pulumi.ResourceOptions:
    """Options aliasing the fixed `name` to its old, clusterName-derived name (none when equal)."""
    old = legacy_name(name, cluster_name)
    return pulumi.ResourceOptions(aliases=[pulumi.Alias(name=old)] if old != name else None)
