"""Kubeconfig for the `kubernetes` provider whose credential is minted when the provider connects.

Why (issue 10): the engine configures the `kubernetes` provider from *stored state* on
`pulumi refresh`, `up --refresh`, `destroy` and drift jobs, without running the program. A
kubeconfig that embeds a 24-hour admin credential is dead there a day later, and a kubeconfig
that is rotated by replacement is *unknown* in every preview inside the renewal window, which
pulumi-kubernetes' `DiffConfig` answers with a replacement of the provider and of everything
behind it.

So the kubeconfig the provider gets holds no credential at all: the shoot's API server and CA
(stable for the life of the shoot; both change only when the shoot is replaced) and a
client-go `exec` credential plugin. Every time pulumi-kubernetes connects, client-go runs

    sh -c 'exec "${CLEURA_CREDENTIAL_PYTHON:-python3}" -m components.gardener.credential ...'

in the provider's working directory (the project directory), which mints a short-lived admin
credential from the v3 `admin-kubeconfig` endpoint with the Cleura credentials of *that* run's
environment and prints it as an `ExecCredential`. The kubeconfig is therefore identical across
runs and rotations (previews stay quiet), contains nothing secret, and works days later.

This module is standard-library only on purpose: the `python3` that client-go starts need not be
the project's virtualenv.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

EXEC_API_VERSION = "client.authentication.k8s.io/v1"
MODULE = "components.gardener.credential"
PYTHON_ENV = "CLEURA_CREDENTIAL_PYTHON"
DEFAULT_CREDENTIAL_SECONDS = 3600
MIN_CREDENTIAL_SECONDS = 600  # the v3 endpoint rejects less
LAUNCHER = f'exec "${{{PYTHON_ENV}:-python3}}" -m {MODULE} "$@"'


class KubeconfigFormatError(ValueError):
    """The API's kubeconfig lacks a field we need (the message names it, never its value)."""


_FIELD_RE = r"^\s*-?\s*{key}:\s*(?P<value>\S+)\s*$"


def _field(text: str, key: str) -> str | None:
    m = re.search(_FIELD_RE.format(key=re.escape(key)), text, re.MULTILINE)
    if m is None:
        return None
    return m.group("value").strip("'\"")


def cluster_of(kubeconfig: str) -> tuple[str, str | None]:
    """(server, certificate-authority-data) from an admin kubeconfig (YAML or JSON)."""
    data = _json(kubeconfig)
    if data is not None:
        clusters = data.get("clusters") or []
        cluster = (clusters[0].get("cluster") if clusters and isinstance(clusters[0], Mapping) else None) or {}
        server, ca = cluster.get("server"), cluster.get("certificate-authority-data")
    else:
        server, ca = _field(kubeconfig, "server"), _field(kubeconfig, "certificate-authority-data")
    if not isinstance(server, str) or not server.startswith("https://"):
        raise KubeconfigFormatError("the admin kubeconfig has no https:// cluster server")
    return server, ca if isinstance(ca, str) and ca else None


def user_of(kubeconfig: str) -> dict[str, str]:
    """The credential of an admin kubeconfig as `ExecCredential.status` fields (PEM decoded)."""
    data = _json(kubeconfig)
    if data is not None:
        users = data.get("users") or []
        user = (users[0].get("user") if users and isinstance(users[0], Mapping) else None) or {}
        token, cert, key = user.get("token"), user.get("client-certificate-data"), user.get("client-key-data")
    else:
        token = _field(kubeconfig, "token")
        cert, key = _field(kubeconfig, "client-certificate-data"), _field(kubeconfig, "client-key-data")
    if isinstance(cert, str) and isinstance(key, str):
        return {"clientCertificateData": base64.b64decode(cert).decode(),
                "clientKeyData": base64.b64decode(key).decode()}
    if isinstance(token, str) and token:
        return {"token": token}
    raise KubeconfigFormatError("the admin kubeconfig has neither a token nor a client certificate and key")


def _json(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def exec_args(*, cloud: str, region: str, project_id: str, shoot_name: str, seconds: int) -> list[str]:
    return ["-c", LAUNCHER, "cleura-credential", "--cloud", cloud, "--region", region, "--project-id", project_id,
            "--shoot", shoot_name, "--expiration-seconds", str(seconds)]


def render_exec_kubeconfig(*, server: str, ca_data: str | None, cloud: str, region: str, project_id: str,
                           shoot_name: str, seconds: int) -> str:
    """The provider's kubeconfig (JSON, which client-go loads like YAML): no secret, stable text."""
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": shoot_name, "cluster": cluster}],
        "contexts": [{"name": shoot_name, "context": {"cluster": shoot_name, "user": "cleura-exec"}}],
        "current-context": shoot_name,
        "users": [{"name": "cleura-exec", "user": {"exec": {
            "apiVersion": EXEC_API_VERSION,
            "command": "sh",
            "args": exec_args(cloud=cloud, region=region, project_id=project_id, shoot_name=shoot_name,
                              seconds=seconds),
            "interactiveMode": "Never",
            "provideClusterInfo": False,
            "installHint": ("needs python3 (standard library only) and this project's directory as the working "
                            f"directory; set {PYTHON_ENV} to use another interpreter. Cleura credentials come "
                            "from CLEURA_API_USERNAME + CLEURA_API_TOKEN/PASSWORD or the `cleura` CLI."),
        }}}],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def exec_credential(status: Mapping[str, str], expires_at: datetime) -> dict[str, Any]:
    stamp = expires_at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {"apiVersion": EXEC_API_VERSION, "kind": "ExecCredential", "status": {**status,
                                                                               "expirationTimestamp": stamp}}


def _expiry(data: Mapping[str, Any], asked: int, issued: datetime) -> datetime:
    raw = data.get("expires_at")
    if isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        except ValueError:
            pass
    return issued + timedelta(seconds=asked)


def mint(cloud: str, region: str, project_id: str, shoot_name: str, seconds: int) -> dict[str, Any]:
    """One ExecCredential for the shoot, from the environment's Cleura credentials."""
    from components.gardener.client import client_from_env
    from components.gardener.operations import Location, ProviderError, ShootOps

    loc = Location(cloud, region, project_id)
    client = client_from_env(cloud, report=lambda m: sys.stderr.write(f"[cleura] {m}\n"))
    ops = ShootOps(client, loc)
    try:
        shoot = ops.get(shoot_name)
        if shoot is None:
            raise ProviderError(f"shoot {shoot_name!r} does not exist in project {project_id} ({region}, cloud "
                                f"{cloud}); if it was deleted on purpose, see README 'Day 2' for tearing down "
                                "its state")
        if (shoot.get("status") or {}).get("is_hibernated"):
            raise ProviderError(f"shoot {shoot_name!r} is hibernated: its API server is down. Wake it "
                                "(platform:cleura.hibernated: false, then pulumi up) or retry after the "
                                "hibernation schedule ends")
        issued = datetime.now(UTC)
        data = ops.mint_kubeconfig(shoot_name, max(MIN_CREDENTIAL_SECONDS, seconds), timeout=120)
        return exec_credential(user_of(str(data["kubeconfig"])), _expiry(data, seconds, issued))
    finally:
        client.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python3 -m {MODULE}",
                                     description="client-go exec credential plugin for a Cleura shoot")
    parser.add_argument("--cloud", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--project-id", required=True)
    parser.add_argument("--shoot", required=True)
    parser.add_argument("--expiration-seconds", type=int, default=DEFAULT_CREDENTIAL_SECONDS)
    args = parser.parse_args(argv)
    try:
        cred = mint(args.cloud, args.region, args.project_id, args.shoot, args.expiration_seconds)
    except Exception as exc:  # client-go shows our stderr; a traceback helps nobody
        sys.stderr.write(f"cleura credential for shoot {args.shoot}: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(cred) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
