"""The platform layer under mocks: what is registered, in which order, on which provider."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import identity, platform
from components.config import StackConfig, parse_stack_config
from components.offline.runner import Recording, Resource
from components.platform import PlatformLayer
from tests.addons import schema
from tests.addons.conftest import PROVIDER_TYPE, SSH_KEY, cleura, cleura_stack, homelab, homelab_raw, record

RELEASE = "kubernetes:helm.sh/v3:Release"
CRD_CHART = "kubernetes:helm.sh/v4:Chart"
LAYER = "platform:platform:Layer"
BGP = {
    "platform:calico": {"encapsulation": "VXLANCrossSubnet"},  # MetalLB BGP needs Calico without BIRD
    "platform:metallb": {
        "pools": [{"name": "ingress-vip-pool", "addresses": ["192.0.2.50/32"]},
                  {"name": "services", "addresses": ["198.51.100.0/28"], "advertise": "bgp"}],
        "bgpPeers": [{"name": "core-router", "address": "192.0.2.1", "asn": 64513}],
    },
}


def layer(cfg: StackConfig, captured: dict[str, Any] | None = None) -> Recording:
    # The base add-ons alone: Vault (on by default, after them) has its own tests in tests/vault.
    cfg = dataclasses.replace(cfg, vault=dataclasses.replace(cfg.vault, enabled=False))

    def build(provider: pulumi.ProviderResource) -> None:
        built = PlatformLayer(identity.LAYER, cfg, pulumi.ResourceOptions(providers=[provider]))
        if captured is not None:
            built.ready.apply(lambda value: captured.__setitem__("ready", value))
            captured["storage_class"] = built.storage.storage_class
    return record(build)


@pytest.fixture(scope="module")
def homelab_run() -> Recording:
    return layer(homelab())


def one(rec: Recording, type_: str, suffix: str) -> Resource:
    matches = [r for r in rec if r.type == type_ and r.name.endswith(suffix)]
    assert len(matches) == 1, [r.name for r in rec if r.type == type_]
    return matches[0]


def releases(rec: Recording) -> dict[str, Resource]:
    return {r.inputs["chart"]: r for r in rec.of_type(RELEASE)}


def builtin_api(api_version: str) -> bool:
    """Kubernetes' own API groups (core, batch, apps, *.k8s.io): never custom resources."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def custom_resources(rec: Recording) -> list[Resource]:
    return [r for r in rec if r.custom and r.type.startswith("kubernetes:") and "spec" in r.inputs
            and "apiVersion" in r.inputs and not builtin_api(r.inputs["apiVersion"])]


# -- what is installed ----------------------------------------------------------------------


def test_homelab_gets_calico_metallb_longhorn_snapshots_traefik_and_cert_manager(homelab_run: Recording) -> None:
    components = sorted(r.type for r in homelab_run if r.type.startswith("platform:"))
    assert components == ["platform:argocd:ArgoCD", "platform:calico:Calico", "platform:certs:CertManager",
                          "platform:ingress:Traefik", "platform:metallb:MetalLB", LAYER, "platform:snapshots:Snapshots",
                          "platform:storage:Longhorn"]
    assert sorted(releases(homelab_run)) == ["argo-cd", "cert-manager", "longhorn", "metallb", "tigera-operator",
                                             "traefik"]
    (crds,) = homelab_run.of_type(CRD_CHART)
    assert (crds.inputs["chart"], crds.inputs["version"]) == ("crd.projectcalico.org.v1", "v3.32.1")
    kinds = sorted(r.inputs["kind"] for r in custom_resources(homelab_run) if "-argocd-" not in r.name)
    assert kinds == ["APIServer", "Certificate", "ClusterIssuer", "ClusterIssuer", "IPAddressPool", "Installation",
                     "L2Advertisement"]


def test_plan_matches_what_is_built() -> None:
    extras = ("snapshots", "traefik", "cert-manager", "vault")
    assert platform.plan(homelab()) == ("calico", "metallb", "longhorn", *extras, "argocd")
    assert platform.plan(homelab({"platform:calico": {"enabled": False}})) == ("metallb", "longhorn", *extras,
                                                                                "argocd")
    assert platform.plan(homelab({"platform:argocd": None})) == ("calico", "metallb", "longhorn", *extras)
    assert platform.plan(homelab({"platform:vault": {"enabled": False}})) == (
        "calico", "metallb", "longhorn", "snapshots", "traefik", "cert-manager", "argocd")
    assert platform.plan(cleura()) == ("cinder", "traefik", "cert-manager", "vault")
    off = {"platform:ingress": {"enabled": False}, "platform:certs": {"enabled": False}}
    assert platform.plan(homelab(off)) == ("calico", "metallb", "longhorn", "snapshots", "vault", "argocd")


def test_nothing_is_installed_twice(homelab_run: Recording) -> None:
    charts = [r.inputs["chart"] for r in homelab_run.of_type(RELEASE)] + [
        r.inputs["chart"] for r in homelab_run.of_type(CRD_CHART)]
    assert len(charts) == len(set(charts))
    objects = [(r.inputs.get("apiVersion", r.type), r.inputs.get("kind"), r.inputs["metadata"].get("namespace"),
                r.inputs["metadata"]["name"]) for r in homelab_run if "metadata" in r.inputs]
    assert len(objects) == len(set(objects)), objects
    names = [r.name for r in homelab_run]
    assert len(names) == len(set(names))


def test_every_kubernetes_resource_uses_the_layer_provider(homelab_run: Recording) -> None:
    (provider,) = homelab_run.of_type(PROVIDER_TYPE)
    kube = [r for r in homelab_run if r.type.startswith("kubernetes:")]
    assert kube
    for resource in kube:
        assert resource.provider is not None and resource.provider.startswith(provider.urn), resource.name


def test_children_are_parented_and_named_after_their_component(homelab_run: Recording) -> None:
    (root,) = homelab_run.of_type(LAYER)
    for resource in homelab_run:
        if resource.type in (LAYER, PROVIDER_TYPE):
            continue
        parent = homelab_run.by_urn(resource.parent or "")
        assert resource.name.startswith(f"{parent.name}-"), (resource.name, parent.name)
        assert root in homelab_run.ancestors(resource)


# -- ordering -------------------------------------------------------------------------------


def test_calico_crds_then_operator_then_installation(homelab_run: Recording) -> None:
    crds = one(homelab_run, CRD_CHART, "-calico-crds")
    operator = one(homelab_run, RELEASE, "-calico-operator")
    installation = one(homelab_run, "kubernetes:operator.tigera.io/v1:Installation", "-installation")
    assert homelab_run.depends_on(operator, crds)
    assert homelab_run.depends_on(installation, operator)


def test_metallb_and_storage_wait_for_a_working_cni_not_for_each_other(homelab_run: Recording) -> None:
    installation = one(homelab_run, "kubernetes:operator.tigera.io/v1:Installation", "-installation")
    metallb_chart = releases(homelab_run)["metallb"]
    longhorn_chart = releases(homelab_run)["longhorn"]
    namespace = one(homelab_run, "kubernetes:core/v1:Namespace", "-metallb-namespace")
    for resource in (metallb_chart, longhorn_chart, namespace):
        assert homelab_run.depends_on(resource, installation), resource.name
    assert not homelab_run.depends_on(metallb_chart, longhorn_chart)
    assert not homelab_run.depends_on(longhorn_chart, metallb_chart)


def test_metallb_custom_resources_follow_the_chart_and_their_pools() -> None:
    rec = layer(homelab(BGP))
    chart = releases(rec)["metallb"]
    pools = rec.of_type("kubernetes:metallb.io/v1beta1:IPAddressPool")
    assert len(pools) == 2
    dependents = [r for r in custom_resources(rec) if r.inputs["apiVersion"].startswith("metallb.io")]
    assert {r.inputs["kind"] for r in dependents} == {"IPAddressPool", "L2Advertisement", "BGPAdvertisement", "BGPPeer"}
    for resource in dependents:
        assert rec.depends_on(resource, chart), resource.name
        if resource.inputs["kind"] != "IPAddressPool":
            assert all(rec.depends_on(resource, pool) for pool in pools), resource.name
    (peer,) = rec.of_type("kubernetes:metallb.io/v1beta2:BGPPeer")
    assert peer.inputs["spec"] == {"myASN": 64512, "peerASN": 64513, "peerAddress": "192.0.2.1"}


def test_metallb_custom_resources_wait_for_the_webhook_gate() -> None:
    # Helm's wait ends when the controller pod is Ready (a plain ping), before its webhook serves:
    # every MetalLB object must wait for the gate Job, which waits for the chart and its RBAC.
    rec = layer(homelab(BGP))
    chart = releases(rec)["metallb"]
    (gate,) = rec.of_type("kubernetes:batch/v1:Job")
    binding = one(rec, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "-webhook-gate-binding")
    assert rec.depends_on(gate, chart) and rec.depends_on(gate, binding)
    dependents = [r for r in custom_resources(rec) if r.inputs["apiVersion"].startswith("metallb.io")]
    assert len(dependents) == 5
    for resource in dependents:
        assert rec.depends_on(resource, gate), resource.name
    assert gate.options["delete_before_replace"] is True
    assert gate.options["custom_timeouts"]["create"] == "15m"
    (container,) = gate.inputs["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["command"][0]) == ("docker.io/rancher/k3s:v1.34.2-k3s1", "/bin/sh")
    assert gate.inputs["spec"]["template"]["spec"]["serviceAccountName"] == binding.inputs["subjects"][0]["name"]


def test_installation_waits_for_calico_to_be_ready(homelab_run: Recording) -> None:
    installation = one(homelab_run, "kubernetes:operator.tigera.io/v1:Installation", "-installation")
    assert installation.inputs["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}
    assert installation.options["custom_timeouts"]["create"] == "20m"


def test_layer_ready_resolves_and_names_the_default_class() -> None:
    captured: dict[str, Any] = {}
    layer(homelab(), captured)
    assert captured == {"ready": True, "storage_class": "longhorn"}


# -- cluster kinds and choices --------------------------------------------------------------


SHOOT_COMPONENTS = [LAYER, "platform:storage:Cinder", "platform:ingress:Traefik", "platform:certs:CertManager"]


def test_gardener_shoot_gets_cinder_traefik_and_cert_manager_only() -> None:
    captured: dict[str, Any] = {}
    rec = layer(cleura(), captured)
    assert sorted(r.type for r in rec if r.type.startswith("platform:")) == sorted(SHOOT_COMPONENTS)
    # Nothing of the shoot's own (CNI, load balancers, snapshots, StorageClasses) is applied.
    applied = [r for r in rec if r.type.startswith("kubernetes:")]
    assert all("-ingress-" in r.name or "-certs-" in r.name for r in applied), [r.name for r in applied]
    assert captured == {"ready": True, "storage_class": "default"}
    traefik = releases(rec)["traefik"]
    # Octavia assigns the address: no MetalLB annotation on the shoot.
    assert traefik.inputs["values"]["service"] == {"enabled": True, "spec": {"type": "LoadBalancer"}}


def test_the_repositorys_cleura_stack_builds_cinder_traefik_and_cert_manager() -> None:
    cfg = cleura_stack()
    rec = layer(cfg)
    assert sorted(r.type for r in rec if r.type.startswith("platform:")) == sorted(
        [*SHOOT_COMPONENTS, "platform:argocd:ArgoCD"])


def test_without_calico_nothing_waits_for_a_cni() -> None:
    rec = layer(homelab({"platform:calico": {"enabled": False}}))
    assert not [r for r in rec if "calico" in r.name or "tigera" in r.type]
    metallb_chart = releases(rec)["metallb"]
    assert [d for d in metallb_chart.dependencies if "calico" in d] == []


def storage_subtree(rec: Recording) -> set[str]:
    # The storage component and the snapshot class of its CSI driver.
    roots = {r.urn for r in rec if r.type.startswith(("platform:storage:", "platform:snapshots:"))}
    return {r.urn for r in rec if r.urn in roots or any(a.urn in roots for a in rec.ancestors(r))}


def argocd_subtree(rec: Recording) -> set[str]:
    """Argo CD waits for the storage component, whose URN names the engine: its dependencies differ."""
    return {r.urn for r in rec if r.name == "platform-argocd" or r.name.startswith("platform-argocd-")}


def fingerprint(rec: Recording, exclude: set[str]) -> list[str]:
    return sorted(json.dumps([r.type, r.name, r.parent, sorted(r.dependencies), r.redacted_inputs()],
                             sort_keys=True, default=str) for r in rec if r.urn not in exclude)


def test_switching_longhorn_to_openebs_changes_only_the_storage_component() -> None:
    before = layer(homelab())
    after = layer(homelab({"platform:storage": {"kind": "openebs", "openebs": {"engine": "hostpath"}}}))
    assert fingerprint(before, storage_subtree(before) | argocd_subtree(before)) == fingerprint(
        after, storage_subtree(after) | argocd_subtree(after))
    assert sorted(releases(after)) == ["argo-cd", "cert-manager", "metallb", "openebs", "tigera-operator", "traefik"]
    assert "platform:storage:OpenEBS" in {r.type for r in after}


@pytest.mark.parametrize("engine", ["lvm", "zfs", "mayastor"])
def test_openebs_engine_classes_follow_the_release(engine: str) -> None:
    rec = layer(homelab({"platform:storage": {"kind": "openebs", "openebs": {"engine": engine}}}))
    (sc,) = rec.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert rec.depends_on(sc, releases(rec)["openebs"])
    assert sc.inputs["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}


def test_longhorn_backup_credentials_are_a_secret_created_before_the_release() -> None:
    key = "platform:longhornBackupSecretKey"
    raw = homelab_raw({"platform:storage": {"kind": "longhorn", "longhorn": {
        "backup": {"target": "s3://backups@eu-north-1/", "accessKeyId": "AKIAEXAMPLE"}}}})
    raw[key] = "backup-secret-value"
    rec = layer(parse_stack_config(raw, frozenset({SSH_KEY, key}), stack="homelab"))
    (secret,) = [s for s in rec.of_type("kubernetes:core/v1:Secret") if "-argocd-" not in s.name]
    assert secret.is_secret("stringData.AWS_SECRET_ACCESS_KEY")
    assert "backup-secret-value" not in json.dumps(secret.redacted_inputs())
    assert rec.depends_on(releases(rec)["longhorn"], secret)
    assert "backup-secret-value" not in json.dumps(releases(rec)["longhorn"].inputs)


# -- conformance of what is actually registered ---------------------------------------------


@pytest.mark.parametrize("overrides", [
    {}, BGP,
    {"platform:calico": {"encapsulation": "VXLAN", "goldmane": True, "whisker": True}},
    {"platform:storage": {"kind": "openebs", "openebs": {"engine": "mayastor"}}},
    {"platform:certs": {"issuer": {"type": "acmeHttp01", "email": "ops@example.com"}},
     "platform:ingress": {"dashboard": True, "defaultClass": False, "replicas": 1}},
])
def test_registered_releases_and_custom_resources_conform(conformance: Path, overrides: dict[str, Any]) -> None:
    rec = layer(homelab(overrides))
    checked = 0
    for resource in rec.of_type(RELEASE):
        found = schema.check_values(resource.inputs["chart"], resource.inputs["version"], resource.inputs["values"],
                                    conformance)
        assert found.errors == [] and found.warnings == [], resource.name
        checked += 1
    for resource in custom_resources(rec):
        assert schema.has_crd(resource.inputs["apiVersion"], resource.inputs["kind"], conformance), resource.name
        assert schema.validate_custom_resource(resource.inputs, conformance) == [], resource.name
        checked += 1
    assert checked >= 5


# -- issue 16: typed args, and what later add-ons get from the layer ------------------------


def test_each_addon_takes_its_own_frozen_args_not_the_stack_config() -> None:
    import dataclasses
    import inspect

    from components import calico, certs, ingress, metallb, snapshots, storage

    cfg = homelab()
    for component, args_type in [
        (calico.Calico, calico.CalicoArgs), (metallb.MetalLB, metallb.MetalLBArgs),
        (storage.Longhorn, storage.StorageArgs), (storage.OpenEBS, storage.StorageArgs),
        (storage.Cinder, storage.StorageArgs), (snapshots.Snapshots, snapshots.SnapshotArgs),
        (ingress.Traefik, ingress.IngressArgs), (certs.CertManager, certs.CertsArgs),
    ]:
        params = inspect.signature(component.__init__).parameters
        assert params["args"].annotation == args_type.__name__, component
        assert "cfg" not in params, component
        built = args_type.from_config(cfg)
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.__setattr__(dataclasses.fields(built)[0].name, None)


def test_args_can_be_built_without_a_stack_config() -> None:
    from components import calico
    from components.config import Calico as CalicoConfig
    from components.versions import CHARTS

    conf = CalicoConfig(True, "VXLAN", True, 26, 0, "kubernetes", "NodeInternalIP", False, False)
    args = calico.CalicoArgs(conf, "10.244.0.0/16", (), CHARTS["calicoCrds"], CHARTS["tigeraOperator"])
    (pool,) = calico.installation_spec(args)["calicoNetwork"]["ipPools"]
    assert (pool["cidr"], pool["encapsulation"]) == ("10.244.0.0/16", "VXLAN")


def test_layer_names_the_ingress_class_and_cluster_issuer_for_later_ui_ingresses() -> None:
    seen: dict[str, Any] = {}

    def build(provider: pulumi.ProviderResource) -> None:
        on = PlatformLayer("on", homelab(), pulumi.ResourceOptions(providers=[provider]))
        off = PlatformLayer("off", homelab({"platform:ingress": {"enabled": False},
                                            "platform:certs": {"enabled": False}}),
                            pulumi.ResourceOptions(providers=[provider]))
        seen.update(on=(on.ingress_class, on.cluster_issuer), off=(off.ingress_class, off.cluster_issuer),
                    base=[type(c).__name__ for c in on.after_base()])
    record(build)
    assert seen["on"] == ("traefik", "homelab-ca")
    assert seen["off"] == (None, None)
    assert seen["base"] == ["Calico", "MetalLB", "Longhorn"]


def test_traefik_waits_for_metallb_and_cert_manager_for_traefik(homelab_run: Recording) -> None:
    traefik, cert_manager = releases(homelab_run)["traefik"], releases(homelab_run)["cert-manager"]
    pool = one(homelab_run, "kubernetes:metallb.io/v1beta1:IPAddressPool", "-ingress-vip-pool")
    assert homelab_run.depends_on(traefik, pool)
    assert homelab_run.depends_on(cert_manager, traefik)
    assert traefik.inputs["values"]["service"]["annotations"] == {"metallb.io/loadBalancerIPs": "192.0.2.50"}
    issuer = one(homelab_run, "kubernetes:cert-manager.io/v1:ClusterIssuer", "-homelab-ca")
    assert homelab_run.depends_on(issuer, cert_manager)


def test_longhorn_node_disks_are_annotated_before_the_release() -> None:
    rec = layer(homelab({"platform:storage": {"kind": "longhorn", "longhorn": {
        "nodeDataPaths": {"k3s-worker-01": "/mnt/nvme0"}}}}))
    (patch,) = rec.of_type("kubernetes:core/v1:NodePatch")
    assert patch.inputs["metadata"]["name"] == "k3s-worker-01"
    assert patch.inputs["metadata"]["annotations"] == {
        "node.longhorn.io/default-disks-config": '[{"path":"/mnt/nvme0","allowScheduling":true}]'}
    assert rec.depends_on(releases(rec)["longhorn"], patch)
