"""A real Kubernetes API server on 127.0.0.1 for tests: kine (SQLite) + kube-apiserver + kube-controller-manager.

Built by `make engine` from `k8s.io/kubernetes` at the K3s minor version. It binds loopback
only, authenticates one static admin token (group ``system:masters``) under RBAC, serves a
certificate from a throwaway CA, and runs the namespace and garbage-collector controllers
so that deleting a namespace really empties and removes it. There are no nodes: pods stay
Pending, so tests never wait for workloads to become ready.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.engine import binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(d: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1/localhost, and the service-account key pair."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=e2e-ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
             "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))
    (d / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n"
    )
    _openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
             "-CAcreateserial", "-days", "2", "-extfile", str(d / "san.ext"), "-out", str(d / "server.crt"))
    _openssl("genrsa", "-out", str(d / "sa.key"), "2048")
    _openssl("rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub"))


@dataclass
class LocalCluster:
    url: str
    token: str
    ca_file: Path
    kubeconfig: Path
    workdir: Path

    def kubeconfig_text(self) -> str:
        return self.kubeconfig.read_text()

    def open(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        """GET `path` with the admin token, verifying the server against the throwaway CA."""
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})  # noqa: S310
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:  # noqa: S310 (https on loopback)
            return int(resp.status), bytes(resp.read())

    def get(self, path: str) -> dict[str, object]:
        return dict(json.loads(self.open(path)[1]))

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(binary("kubectl")), "--kubeconfig", str(self.kubeconfig), *args]
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done


def _wait_ready(cluster: LocalCluster, procs: list[subprocess.Popen[bytes]], deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    last = ""
    while time.monotonic() < end:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args!r} exited with {p.returncode}; see {cluster.workdir}/*.log")
        try:
            if cluster.open("/readyz", timeout=5)[0] == 200:
                return
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.5)
    raise RuntimeError(f"kube-apiserver not ready after {deadline_s}s: {last}; see {cluster.workdir}/*.log")


@contextlib.contextmanager
def local_cluster(workdir: Path) -> Iterator[LocalCluster]:
    """Start kine, kube-apiserver and kube-controller-manager; stop them (and only them) on exit."""
    kine, apiserver, kcm = binary("kine"), binary("kube-apiserver"), binary("kube-controller-manager")
    workdir.mkdir(parents=True, exist_ok=True)
    make_pki(workdir)
    token = secrets.token_hex(16)
    (workdir / "tokens.csv").write_text(f'{token},e2e-admin,e2e-admin,"system:masters"\n')
    kine_port, api_port = free_port(), free_port()
    url = f"https://127.0.0.1:{api_port}"
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
        "clusters": [{"name": "e2e", "cluster": {"server": url, "certificate-authority": str(workdir / "ca.crt")}}],
        "users": [{"name": "e2e", "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}],
    }))
    cluster = LocalCluster(url, token, workdir / "ca.crt", kubeconfig, workdir)
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, cmd: list[str]) -> None:
        log = (workdir / f"{name}.log").open("wb")
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir))

    try:
        # SQLite under ./db of the workdir; no metrics listener (it would bind every interface).
        start("kine", [str(kine), f"--listen-address=127.0.0.1:{kine_port}", "--metrics-bind-address=0"])
        start("kube-apiserver", [
            str(apiserver), f"--etcd-servers=http://127.0.0.1:{kine_port}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
            f"--tls-cert-file={workdir}/server.crt", f"--tls-private-key-file={workdir}/server.key",
            f"--client-ca-file={workdir}/ca.crt",
            f"--token-auth-file={workdir}/tokens.csv", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={workdir}/sa.pub", f"--service-account-signing-key-file={workdir}/sa.key",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--enable-priority-and-fairness=false", "--profiling=false",
            "--allow-privileged=true",  # as K3s runs it: CNI, MetalLB speaker and storage need it
        ])
        _wait_ready(cluster, procs, 120)
        start("kube-controller-manager", [
            str(kcm), f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--secure-port=0",
            "--controllers=namespace,garbagecollector,serviceaccount",
            f"--root-ca-file={workdir}/ca.crt",
        ])
        yield cluster
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
