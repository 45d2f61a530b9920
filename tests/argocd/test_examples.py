"""examples/gitops-repo: what the roots sync validates upstream and fits the homelab."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import argocd
from components.offline.runner import PROJECT_ROOT
from tests.addons import schema
from tests.argocd.conftest import args

REPO = PROJECT_ROOT / "examples" / "gitops-repo"


def documents(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(directory.glob("*.yaml")):
        out += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return out


@pytest.mark.parametrize("layer", ["bootstrap", "platform", "apps"])
def test_each_root_directory_holds_only_valid_child_applications(layer: str, conformance: Path) -> None:
    a = args()
    docs = documents(REPO / a.gitops.paths[layer])
    assert docs, f"{layer} has no child Application"
    allowed = argocd.root_project(a, layer)["spec"]["namespaceResourceWhitelist"]
    for path, doc in docs:
        assert schema.validate_custom_resource(doc, conformance) == [], path
        assert {"group": doc["apiVersion"].split("/")[0], "kind": doc["kind"]} in allowed, path
        assert doc["metadata"]["namespace"] == a.namespace
        assert doc["spec"]["project"] == layer  # the layer's project, defined by the program
        for source in doc["spec"].get("sources") or [doc["spec"]["source"]]:
            assert source["repoURL"] in argocd.layer_project(a, layer)["spec"]["sourceRepos"], path


def test_traefik_takes_the_metallb_ingress_address(conformance: Path) -> None:
    (_, app), = documents(REPO / "argo" / "bootstrap")
    chart = app["spec"]["sources"][0]
    values = yaml.safe_load((REPO / "apps" / "helm" / "traefik" / "values.yaml").read_text())
    found = schema.check_values("traefik", chart["targetRevision"], values, conformance)
    assert found.errors == []
    address = ipaddress.ip_address(values["service"]["annotations"]["metallb.io/loadBalancerIPs"])
    homelab = yaml.safe_load((PROJECT_ROOT / "Pulumi.homelab.yaml").read_text())["config"]
    (pool,) = [p for p in homelab["platform:metallb"]["pools"]
               if p["name"] == values["service"]["annotations"]["metallb.io/address-pool"]]
    assert any(address in ipaddress.ip_network(cidr) for cidr in pool["addresses"])


def test_app_example_reads_its_secret_through_the_plugin() -> None:
    (_, app), = documents(REPO / "argo" / "apps")
    source = app["spec"]["source"]
    assert source["plugin"]["name"] in argocd.PLUGINS and "helm" not in source
    assert {"name": "HELM_ARGS", "value": "--values values.yaml"} in source["plugin"]["env"]
    chart_dir = REPO / source["path"]
    assert (chart_dir / "Chart.yaml").is_file() and not (chart_dir / "kustomization.yaml").exists()
    password = yaml.safe_load((chart_dir / "values.yaml").read_text())["password"]
    assert password.startswith("<path:kv/data/argocd/") and password.endswith(">")


def test_self_management_values_keep_the_admin_secret_with_pulumi() -> None:
    values = yaml.safe_load((REPO / "argo" / "argocd" / "values.yaml").read_text())
    assert values["configs"]["secret"]["createSecret"] is False
    assert values["configs"]["cm"][argocd.HEALTH_KEY] == argocd.APPLICATION_HEALTH_LUA
