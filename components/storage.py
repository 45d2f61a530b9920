"""Persistent storage, chosen per stack: Longhorn or OpenEBS on K3s, Cinder on Gardener shoots.

One source of truth, `cfg.storage`: it picks the component here, the host preparation
(`Storage.host_prerequisites`: iSCSI/NFS for Longhorn, nvme-tcp and hugepages for Mayastor)
and the node labels the engines select on (`Storage.node_labels`). The config model also
enforces exactly one default StorageClass: ours, or K3s's ``local-path`` (never both, never
none), and replica counts that the storage nodes can hold.

- Longhorn: replicated block storage (heavier: ~1.5 GB of RAM on a small cluster).
- OpenEBS: only the chosen engine is enabled. LocalPV hostpath (light default, ~180 MB), LVM
  or ZFS LocalPV (the volume group or pool must exist on the storage nodes), or Mayastor
  (replicated NVMe-oF; needs >= 3 storage nodes, 2 MiB hugepages and ``nvme_tcp``). Mayastor
  DiskPools name per-node block devices, which the config does not describe yet: create them
  after install (``kubectl mayastor create pool`` or DiskPool resources).
- Cinder: Gardener's OpenStack extension already ships the ``default`` StorageClass
  (cinder.csi.openstack.org) as the only default and reconciles it; nothing is installed.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components.config import Longhorn as LonghornConfig
from components.config import LonghornBackup, Secret, StackConfig
from components.config import OpenEBS as OpenEBSConfig

LONGHORN_NAMESPACE = "longhorn-system"
OPENEBS_NAMESPACE = "openebs"
LONGHORN_RELEASE = "longhorn"
OPENEBS_RELEASE = "openebs"
BACKUP_SECRET = "longhorn-backup-credentials"  # noqa: S105 - a Secret name, not a value
KUBELET_DIR = "/var/lib/kubelet"  # K3s's kubelet root
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
CINDER_CLASS = "default"  # created and reconciled by Gardener's provider-openstack
# openebs 4.2.0 still references two Bitnami images that Docker Hub stopped serving in 2025
# (docker.io/bitnami/*: 404). The pre-upgrade hook runs on every `helm upgrade`, so without the
# kubectl override every later `pulumi up` that changes these values hangs on the hook Job; the
# etcd image is Mayastor's control-plane store. Same tags, from repositories that still serve them.
OPENEBS_PRE_UPGRADE_HOOK_REPO = "bitnamilegacy/kubectl"  # tag 1.25.15, as pinned by the chart
MAYASTOR_ETCD_REPOSITORY = "openebs/etcd"  # tag 3.5.6-debian-11-r10, as pinned by mayastor 2.8.0
OPENEBS_CLASSES = {
    "hostpath": "openebs-hostpath",
    "lvm": "openebs-lvmpv",
    "zfs": "openebs-zfspv",
    "mayastor": "openebs-mayastor",
}
# Credential keys Longhorn reads from the backup target secret, by target scheme.
BACKUP_SECRET_KEYS = {
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    "cifs": ("CIFS_USERNAME", "CIFS_PASSWORD"),
    "azblob": ("AZBLOB_ACCOUNT_NAME", "AZBLOB_ACCOUNT_KEY"),
}


def default_storage_class(cfg: StackConfig) -> str:
    """The name of the cluster's single default StorageClass."""
    storage = cfg.storage
    if storage.kind == "cinder":
        return CINDER_CLASS
    if storage.kind == "longhorn" and storage.longhorn and storage.longhorn.default_class:
        return "longhorn"
    if storage.kind == "openebs" and storage.openebs and storage.openebs.default_class:
        return OPENEBS_CLASSES[storage.openebs.engine]
    return "local-path"  # K3s's own, kept when our class is not the default (config-validated)


# -- Longhorn -------------------------------------------------------------------------------


def _longhorn(cfg: StackConfig) -> LonghornConfig:
    if cfg.storage.kind != "longhorn" or cfg.storage.longhorn is None:
        raise ValueError("storage.kind is not longhorn")
    return cfg.storage.longhorn


def backup_secret_keys(backup: LonghornBackup) -> tuple[str, str] | None:
    """The (id, secret) key names Longhorn expects for this target, or None (e.g. NFS)."""
    scheme = backup.target.split("://", 1)[0]
    if backup.access_key_id is None or scheme not in BACKUP_SECRET_KEYS:
        return None
    return BACKUP_SECRET_KEYS[scheme]


def longhorn_values(cfg: StackConfig) -> dict[str, Any]:
    longhorn = _longhorn(cfg)
    control = kube.control_tier(cfg.nodes)
    every = kube.everywhere(cfg.nodes)
    replicas = str(longhorn.replica_count)
    settings: dict[str, Any] = {
        "defaultDataPath": longhorn.data_path,
        "defaultReplicaCount": json.dumps({"v1": replicas, "v2": replicas}, separators=(",", ":")),
        # Disks only on the storage nodes (labelled by Storage.node_labels) when some opt out.
        "createDefaultDiskLabeledNodes": any(not n.storage for n in cfg.nodes),
    }
    taints = kube.taint_toleration_setting(cfg.nodes)
    if taints:
        settings["taintToleration"] = taints  # instance managers, CSI plugin, engine images
    values: dict[str, Any] = {
        "persistence": {
            "defaultClass": longhorn.default_class,
            "defaultClassReplicaCount": longhorn.replica_count,
        },
        "defaultSettings": settings,
        "csi": {"kubeletRootDir": KUBELET_DIR},
        # The chart's own advice: no pre-upgrade checker Job when a GitOps tool applies it.
        "preUpgradeChecker": {"jobEnabled": not longhorn.gitops_managed},
        # The manager DaemonSet runs on every node that may mount a volume.
        "longhornManager": every.values(),
        "longhornDriver": control.values(),
        "longhornUI": control.values(),
    }
    if longhorn.backup is not None:
        store: dict[str, Any] = {"backupTarget": longhorn.backup.target}
        if backup_secret_keys(longhorn.backup):
            store["backupTargetCredentialSecret"] = BACKUP_SECRET
        values["defaultBackupStore"] = store
    return {k: v for k, v in values.items() if v}


def longhorn_release_spec(cfg: StackConfig) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(LONGHORN_RELEASE, cfg.charts["longhorn"], LONGHORN_NAMESPACE, longhorn_values(cfg))


def longhorn_release_args(cfg: StackConfig) -> k8s.helm.v3.ReleaseArgs:
    return longhorn_release_spec(cfg).args()


def longhorn_backup_secret(cfg: StackConfig) -> dict[str, Any] | None:
    """The backup credentials Secret manifest (the secret value as a `Secret` config object)."""
    backup = _longhorn(cfg).backup
    keys = backup_secret_keys(backup) if backup else None
    if backup is None or keys is None or backup.secret_access_key is None:
        return None
    data: dict[str, Any] = {keys[0]: backup.access_key_id, keys[1]: backup.secret_access_key}
    if backup.endpoint and keys[0] == "AWS_ACCESS_KEY_ID":
        data["AWS_ENDPOINTS"] = backup.endpoint
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": BACKUP_SECRET, "namespace": LONGHORN_NAMESPACE},
        "stringData": data,
    }


class Longhorn(pulumi.ComponentResource):  # type: ignore[misc]
    """Longhorn (and its backup credentials). `ready` resolves when the release is deployed."""

    ready: pulumi.Output[bool]
    storage_class: str

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:storage:Longhorn", name, None, opts)
        self.storage_class = default_storage_class(cfg)
        ns = kube.namespace(f"{name}-namespace", LONGHORN_NAMESPACE, kube.child_options(self, opts))
        after: list[pulumi.Resource] = []
        manifest = longhorn_backup_secret(cfg)
        if manifest is not None:
            string_data = {
                k: pulumi.Output.secret(v.value) if isinstance(v, Secret) else v
                for k, v in manifest["stringData"].items()
            }
            after.append(k8s.core.v1.Secret(
                f"{name}-backup-secret", metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=manifest["metadata"]["name"], namespace=ns.metadata.name),
                type=manifest["type"], string_data=string_data, opts=kube.child_options(self, opts),
            ))
        chart = kube.release(f"{name}-chart", longhorn_release_spec(cfg), ns, kube.child_options(self, opts, *after))
        self.ready = kube.ready_when(chart.status)
        self.register_outputs({"ready": self.ready, "storageClass": self.storage_class})


# -- OpenEBS --------------------------------------------------------------------------------


def _openebs(cfg: StackConfig) -> OpenEBSConfig:
    if cfg.storage.kind != "openebs" or cfg.storage.openebs is None:
        raise ValueError("storage.kind is not openebs")
    return cfg.storage.openebs


def mayastor_hugepages(openebs: OpenEBSConfig) -> str:
    """The io-engine's hugepage request: all ``mayastorHugepages`` 2 MiB pages of a node."""
    return f"{openebs.mayastor_hugepages * 2}Mi"


def openebs_values(cfg: StackConfig) -> dict[str, Any]:
    """openebs umbrella values: the chosen engine only, no telemetry, tiers for placement."""
    openebs = _openebs(cfg)
    engine = openebs.engine
    control = kube.control_tier(cfg.nodes)
    every = kube.everywhere(cfg.nodes)
    values: dict[str, Any] = {
        "engines": {
            "local": {"lvm": {"enabled": engine == "lvm"}, "zfs": {"enabled": engine == "zfs"}},
            "replicated": {"mayastor": {"enabled": engine == "mayastor"}},
        },
        # The provisioner is always installed (Mayastor's etcd uses hostpath volumes too); its
        # openebs-hostpath class only with the hostpath engine.
        "localpv-provisioner": {
            "localpv": control.values(),
            "hostpathClass": {
                "enabled": engine == "hostpath",
                "isDefaultClass": engine == "hostpath" and openebs.default_class,
                "basePath": openebs.hostpath_base_path,
            },
            "analytics": {"enabled": False},
        },
        "preUpgradeHook": {"image": {"repo": OPENEBS_PRE_UPGRADE_HOOK_REPO}},
    }
    if engine == "lvm":
        values["lvm-localpv"] = {
            "lvmController": control.values(), "lvmNode": every.values(), "analytics": {"enabled": False},
        }
    if engine == "zfs":
        values["zfs-localpv"] = {
            "zfsController": control.values(), "zfsNode": every.values(), "analytics": {"enabled": False},
        }
    if engine == "mayastor":
        assert cfg.network is not None
        hugepages = mayastor_hugepages(openebs)
        mayastor: dict[str, Any] = {
            "etcd": {"clusterDomain": cfg.network.cluster_domain, "image": {"repository": MAYASTOR_ETCD_REPOSITORY}},
            "io_engine": {
                "resources": {"limits": {"hugepages2Mi": hugepages}, "requests": {"hugepages2Mi": hugepages}},
            },
            "storageClass": {"enabled": False},  # ours: a known name and the configured replicas
            # Loki, NATS eventing and call-home are extras a small cluster does without.
            "loki-stack": {"enabled": False},
            "eventing": {"enabled": False},
            "obs": {"callhome": {"enabled": False}},
        }
        if every.tolerations:
            mayastor["tolerations"] = every.tolerations
        values["mayastor"] = mayastor
    return values


def openebs_release_spec(cfg: StackConfig) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(OPENEBS_RELEASE, cfg.charts["openebs"], OPENEBS_NAMESPACE, openebs_values(cfg))


def openebs_release_args(cfg: StackConfig) -> k8s.helm.v3.ReleaseArgs:
    return openebs_release_spec(cfg).args()


def storage_classes(cfg: StackConfig) -> list[dict[str, Any]]:
    """StorageClasses the engine charts do not create (LVM, ZFS, Mayastor), as manifests."""
    openebs = _openebs(cfg)
    engine = openebs.engine
    if engine == "hostpath":
        return []  # the chart's openebs-hostpath class
    provisioner, parameters, binding = {
        "lvm": ("local.csi.openebs.io", {"storage": "lvm", "volgroup": openebs.lvm_volume_group, "fsType": "ext4"},
                "WaitForFirstConsumer"),
        "zfs": ("zfs.csi.openebs.io", {"poolname": openebs.zfs_pool, "fstype": "zfs", "recordsize": "128k",
                                       "compression": "off", "dedup": "off"}, "WaitForFirstConsumer"),
        "mayastor": ("io.openebs.csi-mayastor", {"protocol": "nvmf", "repl": str(openebs.mayastor_replicas),
                                                 "fsType": "ext4"}, "Immediate"),
    }[engine]
    return [{
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {
            "name": OPENEBS_CLASSES[engine],
            "annotations": {DEFAULT_CLASS_ANNOTATION: "true" if openebs.default_class else "false"},
        },
        "provisioner": provisioner,
        "parameters": parameters,
        "reclaimPolicy": "Delete",
        "allowVolumeExpansion": True,
        "volumeBindingMode": binding,
    }]


class OpenEBS(pulumi.ComponentResource):  # type: ignore[misc]
    """OpenEBS with the configured engine. `ready` resolves when the release and classes exist."""

    ready: pulumi.Output[bool]
    storage_class: str

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:storage:OpenEBS", name, None, opts)
        self.storage_class = default_storage_class(cfg)
        ns = kube.namespace(f"{name}-namespace", OPENEBS_NAMESPACE, kube.child_options(self, opts))
        chart = kube.release(f"{name}-chart", openebs_release_spec(cfg), ns, kube.child_options(self, opts))
        created: list[pulumi.Output[Any]] = [chart.status]
        for sc in storage_classes(cfg):
            created.append(k8s.storage.v1.StorageClass(
                f"{name}-class-{sc['metadata']['name']}",
                metadata=sc["metadata"], provisioner=sc["provisioner"], parameters=sc["parameters"],
                reclaim_policy=sc["reclaimPolicy"], allow_volume_expansion=sc["allowVolumeExpansion"],
                volume_binding_mode=sc["volumeBindingMode"], opts=kube.child_options(self, opts, chart),
            ).id)
        self.ready = kube.ready_when(*created)
        self.register_outputs({"ready": self.ready, "storageClass": self.storage_class})


# -- Cinder ---------------------------------------------------------------------------------


class Cinder(pulumi.ComponentResource):  # type: ignore[misc]
    """Cinder on a Gardener shoot: the extension's ``default`` class is already the single default.

    Nothing is applied: Gardener reconciles its StorageClasses (a second default here would
    make two), so this only records the class for the components that need its name.
    """

    ready: pulumi.Output[bool]
    storage_class: str

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:storage:Cinder", name, None, opts)
        self.storage_class = default_storage_class(cfg)
        self.ready = pulumi.Output.from_input(True)
        self.register_outputs({"ready": self.ready, "storageClass": self.storage_class})


StorageComponent = Longhorn | OpenEBS | Cinder


def storage_component(name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> StorageComponent:
    """The storage component for `cfg.storage.kind`."""
    kinds: dict[str, type[Longhorn] | type[OpenEBS] | type[Cinder]] = {
        "longhorn": Longhorn, "openebs": OpenEBS, "cinder": Cinder,
    }
    return kinds[cfg.storage.kind](name, cfg, opts)
