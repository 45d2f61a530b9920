"""Stacks for the K3s tests: the real homelab stack file and generated N+M stacks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from components.config import StackConfig, parse_stack_config
from components.k3s.args import K3sClusterArgs, Timeouts
from components.offline.render import throwaway_ssh_key

ROOT = Path(__file__).resolve().parents[2]
SSH_KEY = throwaway_ssh_key()
S3_SECRET = "s3-secret-Zq8#x'y$(touch /tmp/pwned)"
SECRETS = {"platform:sshPrivateKey": SSH_KEY}


def homelab_raw() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "Pulumi.homelab.yaml").read_text())
    return dict(data["config"])


def parse(raw: dict[str, Any], secrets: dict[str, str] | None = None, stack: str = "test") -> StackConfig:
    values = {**raw, **(SECRETS if secrets is None else secrets)}
    return parse_stack_config(values, frozenset(SECRETS if secrets is None else secrets), stack=stack)


def homelab_config() -> StackConfig:
    return parse(homelab_raw(), stack="homelab")


def homelab_args(**kwargs: Any) -> K3sClusterArgs:
    return K3sClusterArgs.from_config(homelab_config(), **kwargs)


def sized_raw(servers: int, agents: int) -> dict[str, Any]:
    """The homelab stack with `servers` + `agents` nodes (192.0.2.0/24, then 198.51.100.0/24 ...)."""
    raw = copy.deepcopy(homelab_raw())
    nodes = []
    for i in range(servers + agents):
        role = "server" if i < servers else "agent"
        net, host = divmod(i, 200)
        prefix = ("192.0.2", "198.51.100", "203.0.113", "10.77.0")[net]
        name = f"s{i + 1}" if role == "server" else f"a{i - servers + 1}"
        nodes.append({"name": f"node-{name}", "address": f"{prefix}.{host + 10}", "role": role,
                      "labels": {"example.com/role": "control" if role == "server" else "worker"}})
    raw["platform:nodes"] = nodes
    raw["platform:network"] = {"podCidr": "10.42.0.0/16", "serviceCidr": "10.43.0.0/16"}
    raw["platform:k3s"] = {**raw["platform:k3s"], "vip": {"address": "192.0.2.5", "interface": "eth0"},
                           "apiEndpoint": "192.0.2.5"}
    raw["platform:metallb"] = {"pools": [{"name": "ingress", "addresses": ["192.0.2.250/32"]}]}
    raw["platform:storage"] = {"kind": "longhorn", "longhorn": {"replicaCount": min(3, servers + agents)}}
    return raw


def sized_args(servers: int, agents: int, **kwargs: Any) -> K3sClusterArgs:
    return K3sClusterArgs.from_config(parse(sized_raw(servers, agents)), **kwargs)


def rich_raw(tmp: Path) -> dict[str, Any]:
    """3 servers + 5 agents exercising every option: managed firewall, Mayastor, SELinux,
    registries, etcd S3, bastion, pinned host keys, taints, airgap."""
    raw = sized_raw(3, 5)
    files = {}
    tmp.mkdir(parents=True, exist_ok=True)
    for name in ("k3s", "install.sh", "k3s-airgap-images-amd64.tar.zst"):
        files[name] = tmp / name
        files[name].write_text(f"fake {name}\n")
    raw["platform:nodes"][3]["taints"] = ["dedicated=gpu:NoSchedule"]
    raw["platform:nodes"][4]["storage"] = False
    raw["platform:nodes"][5]["user"] = "deploy"
    raw["platform:nodes"][5]["port"] = 2222
    raw["platform:ssh"] = {
        "user": "root", "port": 22,
        "hostKeys": {"node-s1": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq3lyvYx1o2Xr4eYtWpL0Yb2q0"},
        "bastion": {"host": "bastion.example.com", "user": "jump", "port": 2200,
                    "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHb4sT1onKeyForTheJumpHost0000"},
    }
    raw["platform:k3s"] = {
        **raw["platform:k3s"], "firewall": "managed", "selinux": True, "tlsSans": ["api.example.com"],
        "registries": {"mirrors": {"docker.io": ["https://mirror.example.com:5000/v2"]}},
        "airgap": {"enabled": True, "binary": str(files["k3s"]), "installScript": str(files["install.sh"]),
                   "images": str(files["k3s-airgap-images-amd64.tar.zst"])},
        "etcd": {"heartbeatIntervalMs": 500, "electionTimeoutMs": 5000, "snapshotSchedule": "0 */6 * * *",
                 "snapshotRetention": 12,
                 "s3": {"endpoint": "s3.example.com", "bucket": "etcd-backups", "region": "eu-north-1",
                        "folder": "homelab", "accessKey": "AKIAEXAMPLE"}},
    }
    raw["platform:calico"] = {"encapsulation": "VXLAN"}
    raw["platform:storage"] = {"kind": "openebs", "openebs": {"engine": "mayastor", "mayastorHugepages": 1024}}
    return raw


def rich_args(tmp: Path, **kwargs: Any) -> K3sClusterArgs:
    secrets = {**SECRETS, "platform:etcdS3SecretKey": S3_SECRET}
    return K3sClusterArgs.from_config(parse(rich_raw(tmp), secrets), **kwargs)


FAST = Timeouts(server_ready=20, agent_ready=20, api_ready=20, drain=5, poll=1)
