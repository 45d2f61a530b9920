"""Pinned versions: the one place to bump K3s (and its installer), kube-vip and every Helm chart.

Each stack may override any of them under ``platform:versions`` (see README); these are the
defaults when it does not. Chart versions match the upstream values files the conformance
tests read from ``../shared/reference/charts``.
"""

from __future__ import annotations

from dataclasses import dataclass

K3S_VERSION = "v1.34.2+k3s1"
KUBE_VIP_VERSION = "v0.9.2"


@dataclass(frozen=True)
class InstallerPin:
    """K3s's install.sh at one commit of k3s-io/k3s, and its sha256.

    The installer is version-agnostic (it installs ``INSTALL_K3S_VERSION`` and checks the binary
    against that release's ``sha256sum-<arch>.txt``), so it is pinned on its own: the sha256 is the
    one k3s-io/k3s keeps next to the script (``install.sh.sha256sum``, k3s PR 8312) at the same
    commit. The install step downloads the script from this exact commit and refuses it unless the
    sha256 matches. Bump both together: copy ``install.sh.sha256sum`` of the commit you move to.
    """

    commit: str
    sha256: str

    @property
    def url(self) -> str:
        return f"https://raw.githubusercontent.com/k3s-io/k3s/{self.commit}/install.sh"


K3S_INSTALLER = InstallerPin(
    commit="019b0afdd830e36f5e4b7a5b237e6a4339e6a6be",
    sha256="68ae766b4c4fd2c8032f712cdd346c8f9d1ae60eaeb4736a1155effda44ea23d",
)


@dataclass(frozen=True)
class ChartPin:
    """A Helm chart pinned by exact version in a named repository."""

    chart: str
    version: str
    repo: str

    @property
    def local_archive(self) -> str | None:
        """The archive's path when the chart comes from a local mirror folder (``file://<dir>``)."""
        if self.repo.startswith(LOCAL_MIRROR_SCHEME):
            return f"{self.repo[len(LOCAL_MIRROR_SCHEME):].rstrip('/')}/{self.archive_name}"
        return None

    @property
    def archive_name(self) -> str:
        """``<chart>-<version>.tgz``, as `helm package` names it and a Helm repository serves it."""
        return f"{self.chart}-{self.version}.tgz"

    def helm_source(self) -> tuple[str, str | None]:
        """``(chart, repository)`` for Helm: a local archive is a chart path with no repository."""
        local = self.local_archive
        return (local, None) if local is not None else (self.chart, self.repo)


LOCAL_MIRROR_SCHEME = "file://"

CHARTS: dict[str, ChartPin] = {
    # Calico: since v3.32 the CRDs ship as their own chart, installed before the operator.
    "calicoCrds": ChartPin("crd.projectcalico.org.v1", "v3.32.1", "https://docs.tigera.io/calico/charts"),
    "tigeraOperator": ChartPin("tigera-operator", "v3.32.1", "https://docs.tigera.io/calico/charts"),
    "metallb": ChartPin("metallb", "0.16.1", "https://metallb.github.io/metallb"),
    "longhorn": ChartPin("longhorn", "1.12.1", "https://charts.longhorn.io"),
    "openebs": ChartPin("openebs", "4.2.0", "https://openebs.github.io/openebs"),
    "vault": ChartPin("vault", "0.34.1", "https://helm.releases.hashicorp.com"),
    "argocd": ChartPin("argo-cd", "10.1.1", "https://argoproj.github.io/argo-helm"),
    # The write-up's entry point: Traefik (ingress) and cert-manager (certificates).
    "traefik": ChartPin("traefik", "41.3.0", "https://traefik.github.io/charts"),
    "certManager": ChartPin("cert-manager", "v1.21.1", "https://charts.jetstack.io"),
}


# -- images the program adds itself (not through a chart's own values) ----------------------


@dataclass(frozen=True)
class ImagePin:
    """A container image the program runs, with the facts of its upstream build definition.

    `shell` is the path of the shell the image really contains (None: none at all). A
    container that runs a script must use an image whose recorded `shell` is that script's
    interpreter; tests/addons/test_images.py enforces it for every container the program adds.
    """

    repository: str
    tag: str
    build_file: str  # upstream build definition the facts below were read from
    base: str  # base of the final stage
    shell: str | None
    tools: tuple[str, ...] = ()  # the commands the program's scripts use, as the build provides them

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


IMAGES: dict[str, ImagePin] = {
    # Vault's bootstrap Jobs and unsealer (bash scripts using curl, jq and kubectl): alpine-docker/k8s
    # Dockerfile: FROM alpine; `apk add curl ca-certificates bash git`, later `apk add jq`; kubectl
    # of the tag's version in /usr/bin. The tag follows the K3s minor's kubectl.
    "vaultTools": ImagePin(
        "docker.io/alpine/k8s", "1.34.2", "alpine-docker/k8s:Dockerfile", "alpine", "/bin/bash",
        ("kubectl", "curl", "jq", "bash"),
    ),
    # MetalLB's webhook gate: the K3s image of the cluster's own version. k3s-io/k3s
    # package/Dockerfile: final stage FROM scratch, filled from k3s-root's busybox userland
    # (its `collect` stage runs RUN steps, so /bin/sh exists; root's shell is /bin/sh);
    # scripts/build links bin/kubectl -> k3s. So kubectl, sh, printf, sleep and date are there.
    # k3s's kubectl (pkg/kubectl/main.go) only prefers /etc/rancher/k3s/k3s.yaml when it exists;
    # in a pod it does not, so kubectl uses the pod's ServiceAccount (in-cluster config).
    "webhookGate": ImagePin(
        "docker.io/rancher/k3s", K3S_VERSION.replace("+", "-"), "k3s-io/k3s:package/Dockerfile",
        "scratch + k3s-root (busybox)", "/bin/sh", ("kubectl", "printf", "sleep", "date"),
    ),
    # Recorded so nobody goes back to it for a script: distroless, no shell, no printf/sleep
    # (kubernetes/release images/build/kubectl: gcr.io/distroless/static base, kubectl only).
    "kubectl": ImagePin(
        "registry.k8s.io/kubectl", K3S_VERSION.split("+", 1)[0], "kubernetes/release:images/build/kubectl",
        "distroless/static", None, ("kubectl",),
    ),
    # Mayastor's etcd (openebs 4.2.0's mayastor pins bitnami/etcd:3.5.6-debian-11-r10, which
    # Docker Hub stopped serving in 2025). Bitnami moved every existing versioned tag to
    # docker.io/bitnamilegacy unchanged (bitnami/charts#35164); OpenEBS itself switched to it
    # (openebs/mayastor-extensions#718), and etcd-io/discovery.etcd.io#83 (2026) restored service
    # with bitnamilegacy/etcd:3.5.4-debian-11-r3, an older debian-11 tag of the same series. The
    # previous override, openebs/etcd, is OpenEBS's re-push for mayastor 2.10's newer etcd tag
    # (mayastor-extensions#723): that it carries 3.5.6-debian-11-r10 is not verifiable.
    "mayastorEtcd": ImagePin(
        "docker.io/bitnamilegacy/etcd", "3.5.6-debian-11-r10",
        "bitnami/containers:bitnami/etcd/3.5/debian-11/Dockerfile", "bitnami/minideb:bullseye", "/bin/bash",
    ),
    "openebsPreUpgradeHook": ImagePin(
        "docker.io/bitnamilegacy/kubectl", "1.25.15", "bitnami/containers:bitnami/kubectl/1.25/debian-11/Dockerfile",
        "bitnami/minideb:bullseye", "/bin/bash",
    ),
    # The CSI snapshot controller: the tag the v8.6.0 deploy manifest itself runs
    # (deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml at v8.6.0 says v8.5.0).
    "snapshotController": ImagePin(
        "registry.k8s.io/sig-storage/snapshot-controller", "v8.5.0",
        "kubernetes-csi/external-snapshotter:cmd/snapshot-controller/Dockerfile", "distroless/static", None,
    ),
}

# The snapshot CRDs, applied from the pinned upstream tag (plain manifests, no chart).
EXTERNAL_SNAPSHOTTER_VERSION = "v8.6.0"
SNAPSHOT_CRD_BASE_URL = (
    f"https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter/{EXTERNAL_SNAPSHOTTER_VERSION}"
    "/client/config/crd"
)
SNAPSHOT_CRD_FILE = "snapshot.storage.k8s.io_{plural}.yaml"  # the same name in a `manifests.mirror`
SNAPSHOT_CRD_PLURALS = ("volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots")
# Argo CD: the application version the argo-cd chart above ships (its appVersion), and the
# Argo CD Vault Plugin baked into the config-management-plugin sidecar image
# (images/argocd-vault-plugin/Dockerfile: built FROM the same Argo CD image, so helm and
# kustomize match the repo-server's; the plugin is built from its Go module, checked against
# this module sum (go.sum form, as the Go module proxy and sum.golang.org record it).
ARGOCD_VERSION = "v3.4.4"
ARGOCD_IMAGE = "quay.io/argoproj/argocd"
ARGOCD_VAULT_PLUGIN_VERSION = "1.18.1"
ARGOCD_VAULT_PLUGIN_MODULE_SUM = "h1:ArGngsSoej0J7qPmXWkf/GlBmCC7gPMVQXdredOUZKk="


VAULT_TOOLS_IMAGE = IMAGES["vaultTools"].ref
