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
- Cinder: Gardener's OpenStack extension creates the shoot's StorageClasses from the cloud
  profile and reconciles them; nothing is installed. The stack names the class it relies on
  (``storage.cinder.storageClass``/``provisioner``, default ``default``/cinder.csi.openstack.org),
  and `Cinder` reads that class from the shoot's API at deploy time and fails, naming the key,
  when it is missing, has another provisioner or is not the default.

Teardown: Longhorn's pre-delete Job refuses to uninstall unless ``deletingConfirmationFlag`` is
set (``storage.longhorn.allowUninstall``, README "Removing Longhorn"). Destroying the whole
cluster does not need it: every in-cluster object is ``deleted_with`` the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components.config import Cinder as CinderConfig
from components.config import Longhorn as LonghornConfig
from components.config import LonghornBackup, Node, Secret, StackConfig, Storage
from components.config import OpenEBS as OpenEBSConfig
from components.versions import IMAGES, ChartPin, ImagePin

LONGHORN_NAMESPACE = "longhorn-system"
OPENEBS_NAMESPACE = "openebs"
LONGHORN_RELEASE = "longhorn"
OPENEBS_RELEASE = "openebs"
BACKUP_SECRET = "longhorn-backup-credentials"  # noqa: S105 - a Secret name, not a value
KUBELET_DIR = "/var/lib/kubelet"  # K3s's kubelet root
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
LONGHORN_DISKS_ANNOTATION = "node.longhorn.io/default-disks-config"
# openebs 4.2.0 still references two Bitnami images that Docker Hub stopped serving in 2025
# (docker.io/bitnami/*: 404). The pre-upgrade hook runs on every `helm upgrade`, so without the
# kubectl override every later `pulumi up` that changes these values hangs on the hook Job; the
# etcd image is Mayastor's control-plane store. Same tags, from bitnamilegacy, where Bitnami moved
# every existing versioned tag (versions.IMAGES records both).
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


@dataclass(frozen=True)
class StorageArgs:
    """Everything the storage components read: the storage section, the nodes, the chosen chart."""

    storage: Storage
    nodes: tuple[Node, ...] = ()
    chart: ChartPin | None = None  # longhorn or openebs; None for Cinder
    cluster_domain: str = "cluster.local"

    @classmethod
    def from_config(cls, cfg: StackConfig) -> StorageArgs:
        chart = {"longhorn": "longhorn", "openebs": "openebs"}.get(cfg.storage.kind)
        return cls(cfg.storage, cfg.nodes, cfg.charts[chart] if chart else None,
                   cfg.network.cluster_domain if cfg.network is not None else "cluster.local")

    def pin(self) -> ChartPin:
        if self.chart is None:
            raise ValueError(f"storage.kind {self.storage.kind} installs no chart")
        return self.chart


def _image_values(pin: ImagePin, repo_key: str = "repository") -> dict[str, str]:
    """``{registry, repository|repo, tag}`` chart values for an image pin (``docker.io/a/b`` form)."""
    registry, repository = pin.repository.split("/", 1)
    return {"registry": registry, repo_key: repository, "tag": pin.tag}


def default_storage_class(args: StorageArgs) -> str:
    """The name of the cluster's single default StorageClass."""
    storage = args.storage
    if storage.kind == "cinder":
        return (storage.cinder or CinderConfig()).storage_class
    if storage.kind == "provided" and storage.provided is not None:
        return storage.provided.storage_class
    if storage.kind == "longhorn" and storage.longhorn and storage.longhorn.default_class:
        return "longhorn"
    if storage.kind == "openebs" and storage.openebs and storage.openebs.default_class:
        return OPENEBS_CLASSES[storage.openebs.engine]
    return "local-path"  # K3s's own, kept when our class is not the default (config-validated)


# -- Longhorn -------------------------------------------------------------------------------


def _longhorn(args: StorageArgs) -> LonghornConfig:
    if args.storage.kind != "longhorn" or args.storage.longhorn is None:
        raise ValueError("storage.kind is not longhorn")
    return args.storage.longhorn


def backup_secret_keys(backup: LonghornBackup) -> tuple[str, str] | None:
    """The (id, secret) key names Longhorn expects for this target, or None (e.g. NFS)."""
    scheme = backup.target.split("://", 1)[0]
    if backup.access_key_id is None or scheme not in BACKUP_SECRET_KEYS:
        return None
    return BACKUP_SECRET_KEYS[scheme]


def longhorn_values(args: StorageArgs) -> dict[str, Any]:
    longhorn = _longhorn(args)
    control = kube.control_tier(args.nodes)
    every = kube.everywhere(args.nodes)
    replicas = str(longhorn.replica_count)
    settings: dict[str, Any] = {
        "defaultDataPath": longhorn.data_path,
        "defaultReplicaCount": json.dumps({"v1": replicas, "v2": replicas}, separators=(",", ":")),
        # Disks only on the storage nodes (labelled by Storage.node_labels) when some opt out,
        # or when a node's disk comes from its default-disks-config annotation (label "config").
        "createDefaultDiskLabeledNodes": any(not n.storage for n in args.nodes) or bool(longhorn.node_data_paths),
        # Longhorn's pre-delete Job uninstalls only with this flag; an intended teardown sets it.
        "deletingConfirmationFlag": longhorn.allow_uninstall,
    }
    taints = kube.taint_toleration_setting(args.nodes)
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


def longhorn_release_spec(args: StorageArgs) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(LONGHORN_RELEASE, args.pin(), LONGHORN_NAMESPACE, longhorn_values(args))


def longhorn_release_args(args: StorageArgs) -> k8s.helm.v3.ReleaseArgs:
    return longhorn_release_spec(args).args()


def longhorn_node_disks(args: StorageArgs) -> dict[str, str]:
    """Node name -> ``default-disks-config`` annotation, for the nodes with their own disk path.

    Those nodes carry ``node.longhorn.io/create-default-disk=config`` (`Storage.node_labels`),
    so Longhorn creates exactly the disk the annotation names, instead of ``dataPath``.
    """
    longhorn = _longhorn(args)
    storage_nodes = {n.name for n in args.nodes if n.storage}
    return {
        node: json.dumps([{"path": path, "allowScheduling": True}], separators=(",", ":"))
        for node, path in longhorn.node_data_paths if node in storage_nodes
    }


def longhorn_backup_secret(args: StorageArgs) -> dict[str, Any] | None:
    """The backup credentials Secret manifest (the secret value as a `Secret` config object)."""
    backup = _longhorn(args).backup
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

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:storage:Longhorn", name, None, opts)
        self.storage_class = default_storage_class(args)
        ns = kube.namespace(f"{name}-namespace", LONGHORN_NAMESPACE, kube.child_options(self, opts))
        after: list[pulumi.Resource] = []
        for node, disks in longhorn_node_disks(args).items():
            # Before the chart: Longhorn reads the annotation when it first registers the node.
            after.append(k8s.core.v1.NodePatch(
                f"{name}-disks-{node}",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=node, annotations={LONGHORN_DISKS_ANNOTATION: disks}),
                opts=kube.child_options(self, opts),
            ))
        manifest = longhorn_backup_secret(args)
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
        chart = kube.release(f"{name}-chart", longhorn_release_spec(args), ns, kube.child_options(self, opts, *after))
        self.ready = kube.ready_when(chart.status)
        self.register_outputs({"ready": self.ready, "storageClass": self.storage_class})


# -- OpenEBS --------------------------------------------------------------------------------


def _openebs(args: StorageArgs) -> OpenEBSConfig:
    if args.storage.kind != "openebs" or args.storage.openebs is None:
        raise ValueError("storage.kind is not openebs")
    return args.storage.openebs


def mayastor_hugepages(openebs: OpenEBSConfig) -> str:
    """The io-engine's hugepage request: all ``mayastorHugepages`` 2 MiB pages of a node."""
    return f"{openebs.mayastor_hugepages * 2}Mi"


def openebs_values(args: StorageArgs) -> dict[str, Any]:
    """openebs umbrella values: the chosen engine only, no telemetry, tiers for placement."""
    openebs = _openebs(args)
    engine = openebs.engine
    control = kube.control_tier(args.nodes)
    every = kube.everywhere(args.nodes)
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
        "preUpgradeHook": {"image": _image_values(IMAGES["openebsPreUpgradeHook"], "repo")},
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
        hugepages = mayastor_hugepages(openebs)
        mayastor: dict[str, Any] = {
            "etcd": {"clusterDomain": args.cluster_domain, "image": _image_values(IMAGES["mayastorEtcd"])},
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


def openebs_release_spec(args: StorageArgs) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(OPENEBS_RELEASE, args.pin(), OPENEBS_NAMESPACE, openebs_values(args))


def openebs_release_args(args: StorageArgs) -> k8s.helm.v3.ReleaseArgs:
    return openebs_release_spec(args).args()


def storage_classes(args: StorageArgs) -> list[dict[str, Any]]:
    """StorageClasses the engine charts do not create (LVM, ZFS, Mayastor), as manifests."""
    openebs = _openebs(args)
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

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:storage:OpenEBS", name, None, opts)
        self.storage_class = default_storage_class(args)
        ns = kube.namespace(f"{name}-namespace", OPENEBS_NAMESPACE, kube.child_options(self, opts))
        chart = kube.release(f"{name}-chart", openebs_release_spec(args), ns, kube.child_options(self, opts))
        created: list[pulumi.Output[Any]] = [chart.status]
        for sc in storage_classes(args):
            created.append(k8s.storage.v1.StorageClass(
                f"{name}-class-{sc['metadata']['name']}",
                metadata=sc["metadata"], provisioner=sc["provisioner"], parameters=sc["parameters"],
                reclaim_policy=sc["reclaimPolicy"], allow_volume_expansion=sc["allowVolumeExpansion"],
                volume_binding_mode=sc["volumeBindingMode"], opts=kube.child_options(self, opts, chart),
            ).id)
        self.ready = kube.ready_when(*created)
        self.register_outputs({"ready": self.ready, "storageClass": self.storage_class})


# -- Cinder ---------------------------------------------------------------------------------


def check_cluster_class(key: str, storage_class: str, expected_provisioner: str | None, owner: str,
                        provisioner: str | None, annotations: dict[str, str] | None, why: str = "") -> None:
    """Raise, naming the config key, when the cluster's class is not what the stack relies on.

    A StorageClass always has a provisioner (the API requires it), so None means the class was
    not read (an offline run under mocks): nothing to compare.
    """
    if provisioner is None:
        return
    if expected_provisioner is not None and provisioner != expected_provisioner:
        raise ValueError(f"{key}.provisioner: {owner} StorageClass {storage_class!r} is provisioned by "
                         f"{provisioner!r}, not {expected_provisioner!r}; set {key}.provisioner to {provisioner!r} "
                         "or name the right class in storageClass")
    if (annotations or {}).get(DEFAULT_CLASS_ANNOTATION) != "true":
        raise ValueError(f"{key}.storageClass: {storage_class!r} is not {owner} default StorageClass{why}; name the "
                         "default class, which PVCs without a class get")


def check_cinder_class(cinder: CinderConfig, provisioner: str | None, annotations: dict[str, str] | None) -> None:
    """The shoot's class against ``storage.cinder`` (Gardener's cloud profile decides the default)."""
    check_cluster_class("platform:storage.cinder", cinder.storage_class, cinder.provisioner, "the shoot's",
                        provisioner, annotations, " (the cloud profile decides)")


def _read_and_check(parent: pulumi.Resource, name: str, storage_class: str,
                    check: Callable[[str | None, dict[str, str] | None], None]) -> pulumi.Output[bool]:
    """Read the cluster's StorageClass (``StorageClass.get``, during preview too) and check it."""
    read = k8s.storage.v1.StorageClass.get(f"{name}-class", storage_class, opts=pulumi.ResourceOptions(parent=parent))

    def checked(values: list[Any]) -> bool:
        provisioner, metadata = values
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else getattr(
            metadata, "annotations", None)
        check(provisioner, annotations)
        return True

    return pulumi.Output.all(read.provisioner, read.metadata).apply(checked)


class Cinder(pulumi.ComponentResource):  # type: ignore[misc]
    """Cinder on a Gardener shoot: the class the stack names, read from the shoot and checked.

    Nothing is applied: Gardener reconciles its StorageClasses from the cloud profile (a second
    default here would make two). `ready` fails when the class is missing, has another
    provisioner or is not the default.
    """

    ready: pulumi.Output[bool]
    storage_class: str

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:storage:Cinder", name, None, opts)
        cinder = args.storage.cinder or CinderConfig()
        self.storage_class = default_storage_class(args)
        self.ready = _read_and_check(self, name, cinder.storage_class,
                                     lambda provisioner, notes: check_cinder_class(cinder, provisioner, notes))
        self.register_outputs({"ready": self.ready, "storageClass": self.storage_class})


class Provided(pulumi.ComponentResource):  # type: ignore[misc]
    """clusterKind existing: the cluster's own default StorageClass, read and checked, never changed."""

    ready: pulumi.Output[bool]
    storage_class: str

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:storage:Provided", name, None, opts)
        provided = args.storage.provided
        assert provided is not None  # config: storage.kind provided carries its class
        self.storage_class = provided.storage_class
        self.ready = _read_and_check(self, name, provided.storage_class, lambda provisioner, notes: check_cluster_class(
            "platform:storage.provided", provided.storage_class, provided.provisioner, "the cluster's", provisioner,
            notes))
        self.register_outputs({"ready": self.ready, "storageClass": self.storage_class})


StorageComponent = Longhorn | OpenEBS | Cinder | Provided


def storage_component(name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> StorageComponent:
    """The storage component for `args.storage.kind`."""
    kinds: dict[str, type[Longhorn] | type[OpenEBS] | type[Cinder] | type[Provided]] = {
        "longhorn": Longhorn, "openebs": OpenEBS, "cinder": Cinder, "provided": Provided,
    }
    return kinds[args.storage.kind](name, args, opts)
