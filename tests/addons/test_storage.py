"""Storage: Longhorn and OpenEBS values, extra StorageClasses, the single default, conformance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import storage
from components.config import Cinder, ConfigError, Secret, StackConfig, Storage, parse_stack_config
from tests.addons import schema
from tests.addons.conftest import SSH_KEY, cleura, homelab, homelab_raw

NODES: list[dict[str, Any]] = homelab_raw()["platform:nodes"]
TAINTED = [{**n, "taints": ["node-role.kubernetes.io/control-plane=true:NoSchedule"]} if n["role"] == "server" else n
           for n in NODES]
BACKUP_KEY = "platform:longhornBackupSecretKey"


def openebs(engine: str, **extra: Any) -> StackConfig:
    return homelab({"platform:storage": {"kind": "openebs", "openebs": {"engine": engine, **extra}}})


def with_backup(target: str, **extra: Any) -> StackConfig:
    raw = homelab_raw({"platform:storage": {"kind": "longhorn", "longhorn": {
        "replicaCount": 3, "backup": {"target": target, "accessKeyId": "AKIAEXAMPLE", **extra}}}})
    raw[BACKUP_KEY] = "backup-secret-value"
    return parse_stack_config(raw, frozenset({SSH_KEY, BACKUP_KEY}), stack="homelab")


# -- Longhorn -------------------------------------------------------------------------------


def test_homelab_longhorn_values() -> None:
    values = storage.longhorn_values(storage.StorageArgs.from_config(homelab()))
    assert values["persistence"] == {"defaultClass": True, "defaultClassReplicaCount": 3}
    settings = values["defaultSettings"]
    assert settings["defaultDataPath"] == "/var/lib/longhorn"
    assert json.loads(settings["defaultReplicaCount"]) == {"v1": "3", "v2": "3"}
    assert settings["createDefaultDiskLabeledNodes"] is False  # every node carries a disk
    assert values["preUpgradeChecker"] == {"jobEnabled": True}
    assert values["csi"] == {"kubeletRootDir": "/var/lib/kubelet"}
    assert values["longhornUI"] == {"nodeSelector": {"example.com/role": "control"}}
    assert "defaultBackupStore" not in values


def test_disks_only_on_storage_nodes_when_some_opt_out() -> None:
    nodes = [{**n, "storage": n["role"] == "server"} for n in NODES]
    values = storage.longhorn_values(storage.StorageArgs.from_config(homelab({"platform:nodes": nodes})))
    assert values["defaultSettings"]["createDefaultDiskLabeledNodes"] is True


def test_replica_count_and_data_path_follow_config() -> None:
    cfg = homelab({"platform:storage": {"kind": "longhorn", "longhorn": {"replicaCount": 2, "dataPath": "/data/lh"}}})
    values = storage.longhorn_values(storage.StorageArgs.from_config(cfg))
    assert values["persistence"]["defaultClassReplicaCount"] == 2
    assert values["defaultSettings"]["defaultDataPath"] == "/data/lh"


def test_gitops_managed_longhorn_has_no_pre_upgrade_job() -> None:
    cfg = homelab({"platform:storage": {"kind": "longhorn", "longhorn": {"gitopsManaged": True}}})
    assert storage.longhorn_values(storage.StorageArgs.from_config(cfg))["preUpgradeChecker"] == {"jobEnabled": False}


def test_daemonsets_tolerate_every_taint() -> None:
    values = storage.longhorn_values(storage.StorageArgs.from_config(homelab({"platform:nodes": TAINTED})))
    toleration = {"key": "node-role.kubernetes.io/control-plane", "operator": "Equal", "value": "true",
                  "effect": "NoSchedule"}
    assert values["longhornManager"] == {"tolerations": [toleration]}
    assert values["defaultSettings"]["taintToleration"] == "node-role.kubernetes.io/control-plane=true:NoSchedule"
    assert values["longhornDriver"]["tolerations"] == [toleration]


def test_not_default_when_local_path_stays_default() -> None:
    k3s = {**homelab_raw()["platform:k3s"], "disableLocalStorage": False}
    cfg = homelab({"platform:k3s": k3s, "platform:storage": {"kind": "longhorn", "longhorn": {"defaultClass": False}}})
    assert storage.longhorn_values(storage.StorageArgs.from_config(cfg))["persistence"]["defaultClass"] is False
    assert storage.default_storage_class(storage.StorageArgs.from_config(cfg)) == "local-path"


def test_s3_backup_target_with_credentials_secret() -> None:
    cfg = with_backup("s3://backups@eu-north-1/", endpoint="https://s3.example.com")
    values = storage.longhorn_values(storage.StorageArgs.from_config(cfg))
    assert values["defaultBackupStore"] == {
        "backupTarget": "s3://backups@eu-north-1/", "backupTargetCredentialSecret": "longhorn-backup-credentials",
    }
    secret = storage.longhorn_backup_secret(storage.StorageArgs.from_config(cfg))
    assert secret is not None
    assert secret["metadata"] == {"name": "longhorn-backup-credentials", "namespace": "longhorn-system"}
    data = secret["stringData"]
    assert data["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE"
    assert data["AWS_ENDPOINTS"] == "https://s3.example.com"
    assert isinstance(data["AWS_SECRET_ACCESS_KEY"], Secret)  # stays wrapped until Pulumi marks it secret


def test_cifs_backup_uses_cifs_keys() -> None:
    secret = storage.longhorn_backup_secret(storage.StorageArgs.from_config(with_backup("cifs://nas/backups")))
    assert secret is not None and set(secret["stringData"]) == {"CIFS_USERNAME", "CIFS_PASSWORD"}


def test_nfs_backup_needs_no_secret() -> None:
    cfg = homelab({"platform:storage": {"kind": "longhorn", "longhorn": {"backup": {"target": "nfs://nas:/backups"}}}})
    assert storage.longhorn_backup_secret(storage.StorageArgs.from_config(cfg)) is None
    assert storage.longhorn_values(storage.StorageArgs.from_config(cfg))["defaultBackupStore"] == {"backupTarget": "nfs://nas:/backups"}


def test_longhorn_release_is_pinned() -> None:
    args = storage.longhorn_release_args(storage.StorageArgs.from_config(homelab()))
    assert (args.chart, args.version, args.namespace) == ("longhorn", "1.12.1", "longhorn-system")
    assert args.repository_opts.repo == "https://charts.longhorn.io"


# -- OpenEBS --------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["hostpath", "lvm", "zfs", "mayastor"])
def test_only_the_chosen_engine_is_enabled(engine: str) -> None:
    values = storage.openebs_values(storage.StorageArgs.from_config(openebs(engine)))
    enabled = {
        "lvm": values["engines"]["local"]["lvm"]["enabled"],
        "zfs": values["engines"]["local"]["zfs"]["enabled"],
        "mayastor": values["engines"]["replicated"]["mayastor"]["enabled"],
        "hostpath": values["localpv-provisioner"]["hostpathClass"]["enabled"],
    }
    assert [k for k, v in enabled.items() if v] == [engine]
    assert {"lvm-localpv", "zfs-localpv", "mayastor"} & set(values) <= {f"{engine}-localpv", engine}


def test_hostpath_is_the_light_default() -> None:
    cfg = homelab({"platform:storage": {"kind": "openebs"}})
    assert cfg.storage.openebs is not None and cfg.storage.openebs.engine == "hostpath"
    hostpath = storage.openebs_values(storage.StorageArgs.from_config(cfg))["localpv-provisioner"]["hostpathClass"]
    assert hostpath == {"enabled": True, "isDefaultClass": True, "basePath": "/var/openebs/local"}
    assert storage.storage_classes(storage.StorageArgs.from_config(cfg)) == []
    assert storage.default_storage_class(storage.StorageArgs.from_config(cfg)) == "openebs-hostpath"


def test_no_telemetry() -> None:
    values = storage.openebs_values(storage.StorageArgs.from_config(openebs("mayastor")))
    assert values["localpv-provisioner"]["analytics"] == {"enabled": False}
    assert values["mayastor"]["obs"]["callhome"] == {"enabled": False}


def test_mayastor_hugepages_and_extras() -> None:
    args = storage.StorageArgs.from_config(openebs("mayastor", mayastorHugepages=2048))
    values = storage.openebs_values(args)["mayastor"]
    assert values["io_engine"]["resources"] == {
        "limits": {"hugepages2Mi": "4096Mi"}, "requests": {"hugepages2Mi": "4096Mi"},
    }
    assert values["etcd"]["clusterDomain"] == "cluster.local"
    assert values["loki-stack"] == {"enabled": False} and values["eventing"] == {"enabled": False}
    assert values["storageClass"] == {"enabled": False}


@pytest.mark.parametrize("engine", ["hostpath", "lvm", "zfs", "mayastor"])
def test_no_image_comes_from_the_retired_bitnami_repositories(conformance: Path, engine: str) -> None:
    # Docker Hub stopped serving docker.io/bitnami/* tags in 2025; openebs 4.2.0 still points its
    # pre-upgrade hook (run by every helm upgrade) and Mayastor's etcd there. Same tags, live repos.
    values = storage.openebs_values(storage.StorageArgs.from_config(openebs(engine)))
    chart = conformance / "charts" / "openebs-4.2.0"
    hook = {**yaml.safe_load((chart / "values.yaml").read_text())["preUpgradeHook"]["image"],
            **values["preUpgradeHook"]["image"]}
    assert (hook["registry"], hook["repo"], hook["tag"]) == ("docker.io", "bitnamilegacy/kubectl", "1.25.15")
    if engine == "mayastor":
        etcd_file = chart / "subcharts" / "mayastor-2.7.1" / "subcharts" / "etcd-8.6.0" / "values.yaml"
        etcd = {**yaml.safe_load(etcd_file.read_text())["image"], **values["mayastor"]["etcd"]["image"]}
        # bitnamilegacy holds every versioned Bitnami tag unchanged (openebs/etcd at that tag is
        # unverified); the tag stays the one the chart pins, so only the repository moves.
        pinned = yaml.safe_load(etcd_file.read_text())["image"]["tag"]
        assert (etcd["registry"], etcd["repository"], etcd["tag"]) == ("docker.io", "bitnamilegacy/etcd", pinned)


@pytest.mark.parametrize(("engine", "name", "provisioner", "parameter"), [
    ("lvm", "openebs-lvmpv", "local.csi.openebs.io", ("volgroup", "vg-data")),
    ("zfs", "openebs-zfspv", "zfs.csi.openebs.io", ("poolname", "tank")),
    ("mayastor", "openebs-mayastor", "io.openebs.csi-mayastor", ("repl", "3")),
])
def test_engine_storage_classes(engine: str, name: str, provisioner: str, parameter: tuple[str, str]) -> None:
    cfg = openebs(engine, lvmVolumeGroup="vg-data", zfsPool="tank")
    (sc,) = storage.storage_classes(storage.StorageArgs.from_config(cfg))
    assert sc["metadata"]["name"] == name == storage.default_storage_class(storage.StorageArgs.from_config(cfg))
    assert sc["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert sc["provisioner"] == provisioner
    assert sc["parameters"][parameter[0]] == parameter[1]


def test_openebs_release_is_pinned() -> None:
    args = storage.openebs_release_args(storage.StorageArgs.from_config(openebs("hostpath")))
    assert (args.chart, args.version, args.namespace) == ("openebs", "4.2.0", "openebs")
    assert args.repository_opts.repo == "https://openebs.github.io/openebs"


def test_cinder_class_is_gardeners_default() -> None:
    assert storage.default_storage_class(storage.StorageArgs.from_config(cleura())) == "default"


# -- conformance ----------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [
    {}, {"platform:nodes": TAINTED},
    {"platform:storage": {"kind": "longhorn", "longhorn": {"gitopsManaged": True, "backup": {"target": "nfs://n:/b"}}}},
])
def test_longhorn_values_exist_in_the_pinned_chart(conformance: Path, overrides: dict[str, Any]) -> None:
    spec = storage.longhorn_release_spec(storage.StorageArgs.from_config(homelab(overrides)))
    found = schema.check_values(spec.pin.chart, spec.pin.version, spec.values, conformance)
    assert found.errors == [] and found.warnings == []


def test_longhorn_backup_values_exist_in_the_pinned_chart(conformance: Path) -> None:
    spec = storage.longhorn_release_spec(storage.StorageArgs.from_config(with_backup("s3://backups@eu-north-1/")))
    assert schema.check_values(spec.pin.chart, spec.pin.version, spec.values, conformance).errors == []


@pytest.mark.parametrize("engine", ["hostpath", "lvm", "zfs", "mayastor"])
@pytest.mark.parametrize("tainted", [False, True])
def test_openebs_values_exist_in_the_pinned_chart(conformance: Path, engine: str, tainted: bool) -> None:
    cfg = homelab({"platform:nodes": TAINTED if tainted else NODES,
                   "platform:storage": {"kind": "openebs", "openebs": {"engine": engine}}})
    spec = storage.openebs_release_spec(storage.StorageArgs.from_config(cfg))
    found = schema.check_values(spec.pin.chart, spec.pin.version, spec.values, conformance)
    # Subchart reference files are not the exact pinned versions: misses there are warnings,
    # but none are expected for the keys this program sets.
    assert found.errors == [] and found.warnings == []


# -- teardown, disks, Cinder ------------------------------------------------------------------


def longhorn_args(**longhorn: Any) -> storage.StorageArgs:
    return storage.StorageArgs.from_config(homelab({"platform:storage": {"kind": "longhorn", "longhorn": longhorn}}))


def test_longhorn_uninstall_needs_the_deleting_confirmation_flag() -> None:
    # Without the flag the chart's pre-delete Job fails and the release never deletes.
    assert storage.longhorn_values(longhorn_args())["defaultSettings"]["deletingConfirmationFlag"] is False
    values = storage.longhorn_values(longhorn_args(allowUninstall=True))
    assert values["defaultSettings"]["deletingConfirmationFlag"] is True


def test_longhorn_data_path_and_per_node_disks() -> None:
    args = longhorn_args(dataPath="/var/lib/longhorn-disk", nodeDataPaths={"k3s-worker-01": "/mnt/nvme0"})
    values = storage.longhorn_values(args)
    assert values["defaultSettings"]["defaultDataPath"] == "/var/lib/longhorn-disk"
    assert values["defaultSettings"]["createDefaultDiskLabeledNodes"] is True  # the "config" label needs it
    assert storage.longhorn_node_disks(args) == {
        "k3s-worker-01": json.dumps([{"path": "/mnt/nvme0", "allowScheduling": True}], separators=(",", ":")),
    }
    nodes = {n.name: n for n in args.nodes}
    assert args.storage.node_labels(nodes["k3s-worker-01"]) == {"node.longhorn.io/create-default-disk": "config"}
    assert args.storage.node_labels(nodes["k3s-worker-02"]) == {"node.longhorn.io/create-default-disk": "true"}


def test_dedicated_disk_is_exposed_for_the_host_check() -> None:
    args = longhorn_args(dataPath="/var/lib/longhorn-disk", dedicatedDisk=True,
                         nodeDataPaths={"k3s-worker-01": "/mnt/nvme0"})
    mounts = dict(args.storage.longhorn_mounts(args.nodes))
    assert mounts["k3s-worker-01"] == "/mnt/nvme0"
    assert mounts["k3s-control-01"] == "/var/lib/longhorn-disk"
    assert len(mounts) == len([n for n in args.nodes if n.storage])
    assert longhorn_args(dataPath="/var/lib/longhorn-disk").storage.longhorn_mounts(args.nodes) == ()


@pytest.mark.parametrize(("longhorn", "key", "fragment"), [
    ({"dedicatedDisk": True}, "storage.longhorn.dedicatedDisk", "root filesystem"),
    ({"nodeDataPaths": {"nope": "/mnt/x"}}, "storage.longhorn.nodeDataPaths.nope", "not a node"),
    ({"nodeDataPaths": {"k3s-worker-01": "mnt/x"}}, "storage.longhorn.nodeDataPaths.k3s-worker-01", "absolute"),
])
def test_longhorn_disk_config_errors_name_the_key(longhorn: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        homelab({"platform:storage": {"kind": "longhorn", "longhorn": longhorn}})
    assert any(key in e and fragment in e for e in err.value.errors), err.value.errors


def test_cinder_class_is_the_stacks_explicit_choice() -> None:
    assert storage.default_storage_class(storage.StorageArgs(Storage("cinder", cinder=Cinder("premium")))) == "premium"
    storage.check_cinder_class(Cinder(), "cinder.csi.openstack.org",
                               {"storageclass.kubernetes.io/is-default-class": "true"})
    storage.check_cinder_class(Cinder(), None, None)  # not read (offline): nothing to compare
    with pytest.raises(ValueError, match=r"storage\.cinder\.provisioner.*'other\.csi'"):
        storage.check_cinder_class(Cinder(), "other.csi", {"storageclass.kubernetes.io/is-default-class": "true"})
    with pytest.raises(ValueError, match=r"storage\.cinder\.storageClass.*not the shoot's default"):
        storage.check_cinder_class(Cinder(), "cinder.csi.openstack.org", {})
