"""CSI snapshots: the controller as upstream's pinned manifests define it, the CRDs, the class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components import snapshots, versions
from components.config import ConfigError, parse_stack_config
from tests.addons import schema
from tests.addons.conftest import cleura, homelab, record

MANIFESTS = "manifests/external-snapshotter-v8.6.0"
ROOT = Path(__file__).resolve().parents[2]


def upstream(reference: Path, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    docs = yaml.safe_load_all((reference / MANIFESTS / name).read_text())
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}


def args(overrides: dict[str, Any] | None = None) -> snapshots.SnapshotArgs:
    return snapshots.SnapshotArgs.from_config(homelab(overrides))


def test_rbac_is_upstreams(conformance: Path) -> None:
    rbac = upstream(conformance, "rbac-snapshot-controller.yaml")
    assert snapshots.cluster_role_rules() == rbac[("ClusterRole", "snapshot-controller-runner")]["rules"]
    assert snapshots.leader_election_rules() == rbac[("Role", "snapshot-controller-leaderelection")]["rules"]


def test_deployment_is_upstreams_on_the_control_tier(conformance: Path) -> None:
    (deployment,) = [d for (kind, _), d in upstream(conformance, "setup-snapshot-controller.yaml").items()
                     if kind == "Deployment"]
    theirs, ours = deployment["spec"], snapshots.deployment_spec(args())
    assert ours["template"]["spec"]["containers"][0]["image"] == theirs["template"]["spec"]["containers"][0]["image"]
    assert ours["template"]["spec"]["containers"][0]["args"] == theirs["template"]["spec"]["containers"][0]["args"]
    for key in ("replicas", "selector", "minReadySeconds", "strategy"):
        assert ours[key] == theirs[key], key
    assert ours["template"]["spec"]["nodeSelector"] == {"example.com/role": "control"}
    assert deployment["metadata"]["namespace"] == snapshots.NAMESPACE


def test_crds_come_from_the_pinned_tag(conformance: Path) -> None:
    urls = args().crd_urls
    assert len(urls) == 3 and all(f"/{versions.EXTERNAL_SNAPSHOTTER_VERSION}/client/config/crd/" in u for u in urls)
    for url in urls:
        assert (conformance / "crds" / url.rsplit("/", 1)[1]).exists(), url  # the same files, by name


@pytest.mark.parametrize(("storage", "driver"), [
    ({"kind": "longhorn"}, "driver.longhorn.io"),
    ({"kind": "openebs", "openebs": {"engine": "lvm"}}, "local.csi.openebs.io"),
    ({"kind": "openebs", "openebs": {"engine": "zfs"}}, "zfs.csi.openebs.io"),
])
def test_the_default_snapshot_class_is_the_storage_drivers(conformance: Path, storage: dict[str, Any],
                                                           driver: str) -> None:
    cls = snapshots.snapshot_class(args({"platform:storage": storage}))
    assert cls is not None and cls["driver"] == driver
    assert cls["metadata"]["annotations"] == {"snapshot.storage.kubernetes.io/is-default-class": "true"}
    assert schema.validate_custom_resource(cls, conformance) == []


def test_hostpath_has_no_snapshot_class_and_shoots_and_opt_outs_get_nothing() -> None:
    assert snapshots.snapshot_class(args({"platform:storage": {"kind": "openebs"}})) is None
    assert not snapshots.applies(cleura())
    assert not snapshots.applies(homelab({"platform:storage": {"kind": "longhorn", "snapshots": False}}))


def test_the_controller_waits_for_the_crds_and_its_rbac() -> None:
    def build(provider: pulumi.ProviderResource) -> None:
        snapshots.Snapshots("s", args(), pulumi.ResourceOptions(providers=[provider]))

    rec = record(build)
    crds = rec.of_type("kubernetes:yaml/v2:ConfigFile")
    assert sorted(c.inputs["file"].rsplit("_", 1)[1] for c in crds) == [
        "volumesnapshotclasses.yaml", "volumesnapshotcontents.yaml", "volumesnapshots.yaml"]
    (controller,) = rec.of_type("kubernetes:apps/v1:Deployment")
    assert all(rec.depends_on(controller, crd) for crd in crds)
    for binding in (*rec.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"),
                    *rec.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")):
        assert rec.depends_on(controller, binding)
    (group,) = rec.of_type("kubernetes:yaml/v2:ConfigGroup")
    assert all(rec.depends_on(group, crd) for crd in crds)
    assert group.inputs["objs"][0]["kind"] == "VolumeSnapshotClass"


def test_a_manifests_mirror_url_replaces_the_upstream_base() -> None:
    urls = args({"platform:manifests": {"mirror": "https://mirror.example.com/csi/"}}).crd_urls
    assert urls == tuple(f"https://mirror.example.com/csi/snapshot.storage.k8s.io_{p}.yaml"
                         for p in versions.SNAPSHOT_CRD_PLURALS)


def test_a_local_manifests_mirror_is_checked_file_by_file(conformance: Path, tmp_path: Path) -> None:
    folder = conformance / "crds"  # the reference CRDs: the upstream files under their own names
    urls = args({"platform:manifests": {"mirror": str(folder)}}).crd_urls
    assert all(Path(u).is_file() for u in urls)
    (tmp_path / "snapshot.storage.k8s.io_volumesnapshots.yaml").write_text("{}\n")
    with pytest.raises(ConfigError, match=r"platform:manifests\.mirror: .*volumesnapshotclasses\.yaml is missing "
                                          r"\(2 of the 3 CSI snapshot CRDs"):
        args({"platform:manifests": {"mirror": str(tmp_path)}})
    # A stack without snapshots needs none of them.
    no_snapshots = {"platform:manifests": {"mirror": str(tmp_path)}, "platform:storage": {"snapshots": False}}
    assert homelab(no_snapshots).manifests_mirror == str(tmp_path)


def test_a_manifests_mirror_on_a_shoot_is_refused() -> None:
    raw = {**yaml.safe_load((ROOT / "Pulumi.cleura.yaml").read_text())["config"],
           "platform:manifests": {"mirror": "https://mirror.example.com"}}
    with pytest.raises(ConfigError, match=r"platform:manifests: does not apply to clusterKind 'cleura'"):
        parse_stack_config(raw, frozenset(), stack="cleura")


def test_the_render_lists_the_crd_files_and_writes_the_class(tmp_path: Path) -> None:
    from components.offline.render import render

    def build(provider: pulumi.ProviderResource) -> None:
        snapshots.Snapshots("s", args(), pulumi.ResourceOptions(providers=[provider]))

    render(record(build), tmp_path / "out")
    listed = (tmp_path / "out" / "manifest-files.txt").read_text().splitlines()
    assert listed == [f"s-crd-{p}\t{versions.SNAPSHOT_CRD_BASE_URL}/snapshot.storage.k8s.io_{p}.yaml"
                      for p in sorted(versions.SNAPSHOT_CRD_PLURALS)]
    (cls,) = (tmp_path / "out" / "manifests").glob("VolumeSnapshotClass-*.yaml")
    assert yaml.safe_load(cls.read_text())["driver"] == "driver.longhorn.io"
