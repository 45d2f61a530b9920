"""Every stack's Kubernetes objects, applied to a real API server: schemas, SSA, idempotence, teardown.

The offline render (`components.offline.render`) writes each Helm release (chart, version,
namespace, values) and every other object the program registers. Here each release is
rendered by real Helm from the pinned chart archive (`../shared/reference/chart-archives`,
the same chart sources pulumi-kubernetes installs) and, with the program's own objects,
server-side applied to the local kube-apiserver, so the real server checks what mocks and
JSON-schema checks can only model: CRD structural schemas and defaulting, custom resources
against their CRDs, RBAC objects, field managers.

Not applied, because a server without nodes cannot serve them (said here so nobody thinks
they were checked): admission webhook configurations and aggregated `APIService`s (their
backends are pods that never run; a Fail-policy webhook would reject every later object)
and Helm hooks (lifecycle Jobs that Helm runs around install/delete, not desired state).
Nothing waits for pods, Deployments or Jobs to become ready: there are no nodes.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.offline.runner import SECRET
from tests.conftest import stack_files
from tests.e2e.apiserver import LocalCluster
from tests.e2e.engine import REPO, binary

NOT_SERVABLE = {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService"}
FIELD_MANAGER = "platform-e2e"


def render(stack: str, out: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "components.offline.render", stack, "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out / stack


def manifest_files(out: Path) -> list[tuple[str, str]]:
    """(resource, file or URL) of each ConfigFile the render lists."""
    listing = out / "manifest-files.txt"
    lines = listing.read_text().splitlines() if listing.is_file() else []
    return [(name, file) for name, file in (line.split("\t", 1) for line in lines)]


@pytest.fixture(scope="module")
def chart_repo(reference: Path) -> Iterator[str]:
    """The pinned chart archives as a Helm repository over HTTP on 127.0.0.1 (its index.yaml)."""
    folder = reference / "chart-archives"
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """No line per request: Helm fetches the index and an archive per release."""

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def helm_objects(release: dict[str, Any], archives: Path, repo: str, cluster: LocalCluster,
                 workdir: Path) -> list[dict[str, Any]]:
    """Real Helm renders the release from the mirror, as pulumi-kubernetes would with `charts.mirror`.

    ``--validate`` makes Helm read the server's capabilities by discovery, as an install does
    (charts choose API versions by ``.Capabilities.APIVersions.Has "policy/v1/..."``).
    """
    archive = archives / f"{release['chart']}-{release['version']}.tgz"
    if not archive.exists():
        pytest.skip(f"no archive {archive.name} in {archives} (the reference carries no such chart)")
    values = workdir / f"{release['name']}-values.yaml"
    values.write_text(yaml.safe_dump(release.get("values") or {}))
    # A v4 Chart of cluster-scoped objects (Calico's CRDs) has no namespace: Helm's default.
    namespace = release.get("namespace") or "default"
    done = subprocess.run(
        [str(binary("helm")), "template", release["name"], release["chart"], "--repo", repo,
         "--version", str(release["version"]), "--namespace", namespace,
         "--values", str(values), "--include-crds", "--no-hooks", "--validate", "--kubeconfig",
         str(cluster.kubeconfig)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HELM_CACHE_HOME": str(workdir / "helm-cache"),
                                                         "HELM_CONFIG_HOME": str(workdir / "helm-config")},
    )
    assert done.returncode == 0, f"helm template {release['chart']} failed:\n{done.stderr[-3000:]}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if isinstance(doc, dict) and doc.get("kind")]


def as_engine_sends(value: Any) -> Any:
    """Numbers as pulumi-kubernetes puts them on the wire.

    Resource inputs travel as protobuf Struct doubles, and the provider marshals them with Go's
    encoding/json, which writes an integral float64 as ``720``, not ``720.0``; the offline
    render keeps Python's float, and the API server treats the two differently in managed
    fields, so send what the engine sends.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: as_engine_sends(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_engine_sends(v) for v in value]
    return value


# Keys the API server requires in a Secret of each type (it checks their presence, and JSON for
# dockerconfigjson, never the key material itself).
REQUIRED_SECRET_KEYS = {
    "kubernetes.io/tls": {"tls.crt": "redacted", "tls.key": "redacted"},
    "kubernetes.io/ssh-auth": {"ssh-privatekey": "redacted"},
    "kubernetes.io/dockerconfigjson": {".dockerconfigjson": "{}"},
}


def unredacted(value: Any, key: str = "", secret_type: str = "") -> Any:
    """The render writes every secret as ``[secret]``; send a harmless stand-in of the right shape.

    A whole ``data``/``stringData`` block that was secret becomes placeholder entries (the keys
    the Secret's type requires, else one entry); a single secret string becomes a placeholder
    (base64 inside ``data``). The server checks shapes and names, never these values.
    """
    if value == SECRET:
        if key in ("stringData", "data"):
            entries = REQUIRED_SECRET_KEYS.get(secret_type, {"e2e-placeholder": "redacted"})
            if key == "data":
                return {k: base64.b64encode(v.encode()).decode() for k, v in entries.items()}
            return dict(entries)
        return "cmVkYWN0ZWQ=" if key == "data-value" else "redacted"
    if isinstance(value, dict):
        kind_type = str(value.get("type", "")) if value.get("kind") == "Secret" else secret_type
        return {k: unredacted(v, "data-value" if key == "data" else k, kind_type) for k, v in value.items()}
    if isinstance(value, list):
        return [unredacted(v, key, secret_type) for v in value]
    return value


def apply(cluster: LocalCluster, objects: list[dict[str, Any]], namespace: str | None) -> None:
    if not objects:
        return
    # kubectl refuses an object whose own namespace differs from -n (cert-manager puts its
    # leader-election Role in kube-system): one call per effective namespace.
    groups: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        groups.setdefault(obj.get("metadata", {}).get("namespace") or namespace or "", []).append(
            as_engine_sends(unredacted(obj)))
    for ns, group in groups.items():
        args = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts=false", "-f", "-"]
        if ns:
            args = ["-n", ns, *args]
        cluster.kubectl(*args, stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": group}))


def identity(obj: dict[str, Any], namespace: str | None) -> tuple[str, str, str, str]:
    meta = obj.get("metadata", {})
    return (obj["apiVersion"], obj["kind"], meta.get("namespace") or namespace or "", meta["name"])


def live_state(cluster: LocalCluster, ids: list[tuple[str, str, str, str]]) -> dict[tuple[str, ...], Any]:
    """Each object as the server holds it, less what changes without a change of content.

    ``resourceVersion`` and managed-field timestamps move on a no-op write (the server
    normalises a freshly created Job once), and ``status`` belongs to controllers.
    """
    out: dict[tuple[str, ...], Any] = {}
    for api, kind, ns, name in ids:
        args = ["get", f"{kind}.{api.split('/')[0]}" if "/" in api else kind, name, "-o", "json",
                "--show-managed-fields"]
        if ns:
            args = ["-n", ns, *args]
        done = cluster.kubectl(*args, check=False)
        if done.returncode != 0:
            out[(api, kind, ns, name)] = f"missing: {done.stderr.strip()}"
            continue
        obj = json.loads(done.stdout)
        obj.pop("status", None)
        obj["metadata"].pop("resourceVersion", None)
        for entry in obj["metadata"].get("managedFields", []):
            entry.pop("time", None)
        out[(api, kind, ns, name)] = obj
    return out


def split(objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    crds, rest, skipped = [], [], []
    for obj in objects:
        if obj["kind"] in NOT_SERVABLE:
            skipped.append(f"{obj['kind']}/{obj['metadata']['name']}")
        elif obj["kind"] == "CustomResourceDefinition":
            crds.append(obj)
        else:
            rest.append(obj)
    return crds, rest, skipped


Objects = list[dict[str, Any]]


def converge(cluster: LocalCluster, namespaces: Objects, crds: Objects, per_release: list[tuple[str, Objects]],
             others: Objects) -> list[tuple[str, str, str, str]]:
    """Apply in Pulumi's order, then apply again and require that nothing changed."""
    apply(cluster, namespaces, None)
    apply(cluster, crds, None)
    if crds:
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=120s",
                        *[f"crd/{c['metadata']['name']}" for c in crds])
    for namespace, objects in per_release:
        apply(cluster, objects, namespace)
    apply(cluster, others, None)

    ids = [identity(o, None) for o in namespaces + crds + others]
    ids += [identity(o, ns) for ns, objs in per_release for o in objs]
    before = live_state(cluster, ids)
    assert not [k for k, v in before.items() if isinstance(v, str)], before

    # Converged: applying the same objects again changes nothing on the server.
    for namespace, objects in per_release:
        apply(cluster, objects, namespace)
    apply(cluster, others, None)
    apply(cluster, crds, None)
    after = live_state(cluster, ids)
    changed = sorted(k for k in ids if before[k] != after[k])
    assert not changed, f"a second apply changed objects: {changed}"
    return ids


def tear_down(cluster: LocalCluster, namespaces: Objects, crds: Objects, per_release: list[tuple[str, Objects]],
              others: Objects, *, check: bool) -> None:
    """The program's objects, the releases, CRDs, then the namespaces (through the real controller)."""
    for group in (others, *[objs for _, objs in reversed(per_release)]):
        if group:
            items = [unredacted(o) for o in group]
            cluster.kubectl("delete", "--wait=true", "--ignore-not-found", "-f", "-", check=check,
                            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    if crds:
        cluster.kubectl("delete", "--wait=true", "--ignore-not-found", "--timeout=120s",
                        *[f"crd/{c['metadata']['name']}" for c in crds], check=check)
    for ns in namespaces:
        cluster.kubectl("delete", "namespace", ns["metadata"]["name"], "--ignore-not-found", "--wait=true",
                        "--timeout=180s", check=check)


@pytest.mark.parametrize("stack", stack_files())
def test_stack_objects_apply_converge_and_tear_down(stack: str, cluster: LocalCluster, tmp_path: Path,
                                                    reference: Path, chart_repo: str) -> None:
    out = render(stack, tmp_path / "render")
    archives = reference / "chart-archives"
    releases = [yaml.safe_load(p.read_text()) for p in sorted((out / "helm").glob("*.yaml"))] \
        if (out / "helm").is_dir() else []
    program_objects = [yaml.safe_load(p.read_text()) for p in sorted((out / "manifests").glob("*.yaml"))] \
        if (out / "manifests").is_dir() else []
    namespaces = [o for o in program_objects if o["kind"] == "Namespace"]
    others = [o for o in program_objects if o["kind"] != "Namespace"]

    # What Pulumi does, in its order: namespaces, releases (CRDs first, as Helm does), then
    # the program's own objects, which depend on those releases.
    per_release: list[tuple[str, list[dict[str, Any]]]] = []
    crds: list[dict[str, Any]] = []
    skipped: list[str] = []
    # The ConfigFile CRDs (CSI snapshots) from the reference's copy, as `manifests.mirror` would serve them.
    crds += [doc for _, file in manifest_files(out) for doc in yaml.safe_load_all(
        (reference / "crds" / file.rsplit("/", 1)[-1]).read_text()) if doc]
    for release in releases:
        rel_crds, rest, rel_skipped = split(helm_objects(release, archives, chart_repo, cluster, tmp_path))
        crds += rel_crds
        skipped += rel_skipped
        per_release.append((release.get("namespace") or "default", rest))
    try:
        ids = converge(cluster, namespaces, crds, per_release, others)
    except BaseException:
        tear_down(cluster, namespaces, crds, per_release, others, check=False)  # leave nothing to the next stack
        raise
    tear_down(cluster, namespaces, crds, per_release, others, check=True)
    left = cluster.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert not [n for n in left if n.split("/")[-1] in {o["metadata"]["name"] for o in namespaces}], left
    print(f"{stack}: {len(ids)} objects applied, converged and deleted; not applied (need pods): {sorted(skipped)}")
