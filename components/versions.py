"""Pinned versions: the one place to bump K3s, kube-vip and every Helm chart.

Each stack may override any of them under ``platform:versions`` (see README); these are the
defaults when it does not. Chart versions match the upstream values files the conformance
tests read from ``../shared/reference/charts``.
"""

from __future__ import annotations

from dataclasses import dataclass

K3S_VERSION = "v1.34.2+k3s1"
KUBE_VIP_VERSION = "v0.9.2"
# The Vault bootstrap Jobs and the Transit unsealer: bash, curl, jq and coreutils in one image.
VAULT_TOOLS_IMAGE = "alpine/k8s:1.34.2"


@dataclass(frozen=True)
class ChartPin:
    """A Helm chart pinned by exact version in a named repository."""

    chart: str
    version: str
    repo: str


CHARTS: dict[str, ChartPin] = {
    # Calico: since v3.32 the CRDs ship as their own chart, installed before the operator.
    "calicoCrds": ChartPin("crd.projectcalico.org.v1", "v3.32.1", "https://docs.tigera.io/calico/charts"),
    "tigeraOperator": ChartPin("tigera-operator", "v3.32.1", "https://docs.tigera.io/calico/charts"),
    "metallb": ChartPin("metallb", "0.16.1", "https://metallb.github.io/metallb"),
    "longhorn": ChartPin("longhorn", "1.12.1", "https://charts.longhorn.io"),
    "openebs": ChartPin("openebs", "4.2.0", "https://openebs.github.io/openebs"),
    "vault": ChartPin("vault", "0.34.1", "https://helm.releases.hashicorp.com"),
    "argocd": ChartPin("argo-cd", "10.1.1", "https://argoproj.github.io/argo-helm"),
}
