"""Pure renderers of every script the K3s component runs on a host.

Each script is ``PROLOGUE + values + LIBRARY + body``:

* the *prologue* (static) insists on bash, turns on ``set -euo pipefail``, re-executes
  itself through ``sudo -n`` when the SSH user is not root (the script text is in
  ``$BASH_EXECUTION_STRING``; stdin, which carries secrets, is inherited), sets ``umask 077``
  and a PATH that contains ``/usr/local/bin`` (where k3s lives; not in sshd's default PATH
  on RHEL);
* the *values* block is the only place configuration appears: one ``NAME=<quoted>`` line
  per value, rendered by `quoting.assign`, each value re-validated by `K3sClusterArgs`;
* the *library* and *body* are static text that only refer to ``"$NAME"``: real shell files in
  ``components/k3s/sh/`` (``prologue.sh``, ``lib.sh`` + ``version-rules.sh``, one body per step),
  shipped as package data and read by `shell.shell_text`.

Every script is complete (``#!/usr/bin/env bash``), passes ``bash -n`` and ``shellcheck``,
and is idempotent: it changes the host only where it differs from the wanted state, counts
the changes, and ends with ``done: N change(s)`` on stderr. Every wait is bounded
(`Timeouts`). Secrets never appear here: config.yaml (token, agent token, S3 key),
registries.yaml (registry passwords, identity tokens) and the registry client keys arrive on
stdin (`render.install_stdin`) and are written with mode 0600; the delete scripts read nothing
from stdin.

What the install step does, in order (servers one at a time, agents in parallel):

1. refuse a downgrade or minor skip against the installed ``k3s --version`` (`upgrade.py`);
2. write config.yaml and registries.yaml (stdin, 0600), the registry TLS files (CA and client
   certificates from the values, client keys from stdin, 0600) and, on servers with a VIP, the
   kube-vip manifest into K3s's auto-deploy directory *before* K3s first starts;
3. keep the installer on the node (``/usr/local/bin/k3s-install.sh``, downloaded from the
   commit pinned in `versions.K3S_INSTALLER` and refused unless its sha256 matches; staged
   when airgapped) and run it only when the unit is missing or the
   installed version differs, always with ``INSTALL_K3S_SKIP_START=true``;
4. ``systemctl start --no-block`` (fresh) or ``restart --no-block`` (new version, or the
   sha256 of config.yaml + registries.yaml + the registry TLS files differs from the last
   applied one), wait for a new unit invocation, then wait, bounded, until the node reports the
   wanted version
   (servers: ``/readyz`` answers and the node carries the etcd role, i.e. it is a member).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from components.k3s import render
from components.k3s.args import AIRGAP_IMAGE_SUFFIXES, K3sClusterArgs, NodeSpec
from components.k3s.quoting import assign
from components.k3s.shell import shell_text
from components.k3s.upgrade import shell_functions

STATE_DIR = "/var/lib/platform/k3s"
SNAPSHOT_DIR = "/var/lib/platform/k3s-snapshots"  # outside K3s's data dir and STATE_DIR: uninstall keeps it
SNAPSHOT_KEEP = 5
STAGE_DIR = f"{STATE_DIR}/staging"  # airgap uploads when the SSH user is root
# ... and, relative to the user's home (where SFTP starts), when it is not: the upload runs
# without sudo, so a root-owned directory cannot receive it.
HOME_STAGE_DIR = ".platform-k3s-staging"
STAGE_NAMES = {"binary": "k3s", "installer": "install.sh"}
BASE_MODULES = ("overlay", "br_netfilter")
BASE_SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv6.conf.all.forwarding", "1"),
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
)
MULTIPATH_BLACKLIST = 'blacklist {\n    devnode "^sd[a-z0-9]+"\n}\n'
# Calico's documented NetworkManager exclusions (RHEL family).
NM_CALICO_CONF = (
    "[keyfile]\nunmanaged-devices=interface-name:cali*;interface-name:tunl*;interface-name:vxlan.calico;"
    "interface-name:vxlan-v6.calico;interface-name:wireguard.cali;interface-name:wg-v6.cali\n"
)


@dataclass(frozen=True)
class FirewallRules:
    """What `firewall: managed` opens on one node (firewalld: trusted zone + default zone)."""

    trusted_sources: tuple[str, ...]
    ports: tuple[str, ...]
    protocols: tuple[str, ...]


def staged_images_name(args: K3sClusterArgs) -> str:
    """File name of the airgap images tarball on the host (keeps the compression suffix)."""
    if not args.airgap.images:
        return ""
    name = PurePosixPath(args.airgap.images).name
    suffix = next(s for s in sorted(AIRGAP_IMAGE_SUFFIXES, key=len, reverse=True) if name.endswith(s))
    return f"platform-airgap-images{suffix}"


def stage_dir(node: NodeSpec) -> str:
    """Where `node`'s airgap artefacts are uploaded (relative: in the SSH user's home)."""
    return STAGE_DIR if node.ssh_user == "root" else HOME_STAGE_DIR


def stage_path(args: K3sClusterArgs, node: NodeSpec, artefact: str) -> str:
    name = staged_images_name(args) if artefact == "images" else STAGE_NAMES[artefact]
    return f"{stage_dir(node)}/{name}"


def host_modules(args: K3sClusterArgs, node: NodeSpec) -> tuple[str, ...]:
    modules = list(BASE_MODULES)
    if "iscsi" in args.storage.prerequisites:
        modules.append("iscsi_tcp")
    if "nvme-tcp" in args.storage.prerequisites:
        modules.append("nvme_tcp")
    return tuple(modules)


def host_sysctls(args: K3sClusterArgs, node: NodeSpec) -> tuple[tuple[str, str], ...]:
    values = list(BASE_SYSCTLS)
    if "hugepages" in args.storage.prerequisites and node.storage:
        values.append(("vm.nr_hugepages", str(args.storage.hugepages)))
    return tuple(values)


def firewall_rules(args: K3sClusterArgs, node: NodeSpec) -> FirewallRules:
    """The exact ports for K3s, etcd, kubelet, the CNI and the storage choice."""
    ports = ["10250/tcp"]  # kubelet (metrics-server, logs/exec)
    protocols: list[str] = []
    if node.role == "server":
        ports += ["6443/tcp", "2379-2380/tcp"]  # API, etcd client+peer between servers
    if args.calico:
        ports += ["179/tcp", "5473/tcp"]  # BGP, Typha
        if args.calico_encapsulation.startswith("IPIP"):
            protocols.append("4")  # IP-in-IP
        if args.calico_encapsulation.startswith("VXLAN"):
            ports.append("4789/udp")
    else:
        ports.append("8472/udp")  # flannel VXLAN
    prereqs = args.storage.prerequisites
    if "iscsi" in prereqs:  # Longhorn
        ports.append("3260/tcp")
        if args.storage.longhorn_rwx:
            ports.append("2049/tcp")
    if "nvme-tcp" in prereqs:  # OpenEBS Mayastor: NVMe-oF and io-engine gRPC
        ports += ["4421/tcp", "8420/tcp", "10124/tcp"]
    ports += list(args.extra_ports)
    return FirewallRules(
        (args.pod_cidr, args.service_cidr), tuple(dict.fromkeys(ports)), tuple(dict.fromkeys(protocols)),
    )


# ---------------------------------------------------------------------------------------
# Static shell text: real shell files in components/k3s/sh/ (package data)
# ---------------------------------------------------------------------------------------

PROLOGUE = shell_text("prologue.sh")
LIBRARY = shell_text("lib.sh") + shell_functions()
DETECT_OS = shell_text("detect-os.sh")
PREPARE_BODY = shell_text("prepare.sh")
INSTALL_BODY = shell_text("install.sh")
REMOVE_BODY = shell_text("remove.sh")
PREFLIGHT_BODY = shell_text("preflight.sh")
API_READY_BODY = shell_text("api-ready.sh")
MEMBER_CREATE_BODY = shell_text("member-create.sh")
MEMBER_DELETE_BODY = shell_text("member-delete.sh")
NODE_CREATE_BODY = shell_text("node-create.sh")
NODE_DELETE_BODY = shell_text("node-delete.sh")
UNINSTALL_BODY = shell_text("uninstall.sh")
GONE_BODY = shell_text("gone.sh")
LABELS_BODY = shell_text("labels.sh")
CA_HASH_BODY = shell_text("ca-hash.sh")
KUBECONFIG_BODY = shell_text("kubeconfig.sh")


# ---------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------

Values = dict[str, "str | int | Sequence[str]"]


class Script(str):
    """A rendered script (plain text); `values` is what its values block assigns, for tests."""

    values: Values


def assemble(purpose: str, values: Values, body: str, *, library: bool = True) -> Script:
    """A complete script: shebang, static prologue, the quoted values, static library and body."""
    if "\n" in purpose or not purpose.isprintable():
        raise ValueError("purpose must be one printable line")
    header = "\n".join(assign(name, value) for name, value in values.items())
    parts = [
        "#!/usr/bin/env bash",
        f"# platform:k3s: {purpose}",
        "# Rendered by components/k3s/scripts.py. Values are only in the assignments below;",
        "# everything after them is static text.",
        PROLOGUE,
        "# --- values ---",
        header,
        "# --- end of values ---",
    ]
    if library:
        parts.append(LIBRARY)
    parts.append(body.strip("\n"))
    script = Script("\n".join(parts) + "\n")
    script.values = dict(values)
    return script


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _other_server_urls(args: K3sClusterArgs, node: NodeSpec) -> list[str]:
    return [render.api_url(s.address) for s in args.live_servers if s.name != node.name]


def _common(args: K3sClusterArgs, node: NodeSpec, other_server_urls: Sequence[str] = ()) -> Values:
    """The values the library itself refers to; every script defines them."""
    return {"NODE": node.name, "POLL": args.timeouts.poll, "OTHER_SERVER_URLS": list(other_server_urls)}


def prepare_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    """Host preparation (idempotent): modules, sysctls, swap, SELinux, firewall, storage."""
    fw = firewall_rules(args, node)
    values: Values = {
        **_common(args, node),
        "AIRGAP": _bool(args.airgap.enabled),
        "SELINUX": _bool(args.selinux),
        "FIREWALL": args.firewall,
        "MODULES": host_modules(args, node),
        "SYSCTLS": [f"{k}={v}" for k, v in host_sysctls(args, node)],
        "FW_SOURCES": fw.trusted_sources,
        "FW_PORTS": fw.ports,
        "FW_PROTOCOLS": fw.protocols,
        "STORAGE": sorted(p for p in args.storage.prerequisites if p != "hugepages" or node.storage),
        "HOSTPATH_DIR": args.storage.hostpath_dir or "",
        "DEDICATED_MOUNTS": [path for name, path in args.storage.dedicated_mounts if name == node.name],
        "MULTIPATH_BLACKLIST": MULTIPATH_BLACKLIST,
        "CALICO": _bool(args.calico),
        "NM_CALICO_CONF": NM_CALICO_CONF,
    }
    return assemble("prepare the host for K3s", values, DETECT_OS + PREPARE_BODY)


def install_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    """Install, reconfigure or upgrade K3s on one node; config.yaml, registries.yaml and the registry
    client keys arrive on stdin (`render.install_stdin`)."""
    is_first = node.role == "server" and node.name == args.first_server.name
    values: Values = {
        # Server 1: no second bootstrap next to them; every server: the health gate before a restart.
        **_common(args, node, _other_server_urls(args, node) if node.role == "server" else ()),
        "VERSION": args.version,
        "STATE_DIR": STATE_DIR,
        "ROLE": node.role,
        "CLUSTER_INIT": _bool(is_first),
        "INSTALLER_URL": args.installer.url,
        "INSTALLER_SHA256": args.installer.sha256,
        "AIRGAP": _bool(args.airgap.enabled),
        "STAGE_DIR": stage_dir(node),
        "STAGE_USER": node.ssh_user,
        "IMAGES_NAME": staged_images_name(args),
        "SELINUX": _bool(args.selinux),
        "READY_TIMEOUT": args.timeouts.server_ready if node.role == "server" else args.timeouts.agent_ready,
        "DRAIN_TIMEOUT": args.timeouts.drain,
        "STDIN_SEPARATOR": render.STDIN_SEPARATOR,
        "REGISTRY_TLS_DIR": render.REGISTRY_TLS_DIR,
        "REGISTRY_CERT_PATHS": [path for path, _ in render.registry_cert_files(args)],
        "REGISTRY_CERTS": [pem for _, pem in render.registry_cert_files(args)],
        "REGISTRY_KEY_PATHS": render.registry_key_paths(args),
        "KUBE_VIP_PATH": render.KUBE_VIP_MANIFEST_PATH,
        "KUBE_VIP_MANIFEST": (render.kube_vip_manifest(args) or "") if node.role == "server" else "",
        "PROXY_ENV": render.proxy_env(args),
        "ETCD_S3_CA_PATH": render.ETCD_S3_CA_PATH,
        "ETCD_S3_CA": (args.etcd.s3.endpoint_ca or "") if args.etcd.s3 and node.role == "server" else "",
        "SNAPSHOT_DIR": SNAPSHOT_DIR,
        "SNAPSHOT_KEEP": SNAPSHOT_KEEP,
        "VIP_ADDRESS": args.vip.address if args.vip and node.role == "server" else "",
        "VIP_INTERFACE": (args.vip.interface or "") if args.vip and node.role == "server" else "",
    }
    return assemble(f"install or upgrade K3s ({node.role})", values, INSTALL_BODY)


def remove_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    """Delete step of a node's install. A server: drain, stop, delete its Node through a surviving
    server, wait until etcd drops it, uninstall (failing before the uninstall). An agent: stop."""
    values: Values = {
        **_common(args, node, _other_server_urls(args, node) if node.role == "server" else ()),
        "STATE_DIR": STATE_DIR,
        "ROLE": node.role,
        "NODE_PEER": render.url_host(node.address),
        "DRAIN_TIMEOUT": args.timeouts.drain,
        "SNAPSHOT_DIR": SNAPSHOT_DIR,
        "SNAPSHOT_KEEP": SNAPSHOT_KEEP,
    }
    return assemble(f"remove K3s from a {node.role}", values, REMOVE_BODY)


def uninstall_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    """Delete step of an agent's prepare: uninstall, once its Node is gone (the last removal step)."""
    values: Values = {**_common(args, node), "STATE_DIR": STATE_DIR}
    return assemble("uninstall K3s from an agent", values, UNINSTALL_BODY)


def node_create_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    first = args.first_server
    values: Values = {
        **_common(args, first), "TARGET": node.name, "TARGET_ADDRESS": node.address, "VERSION": args.version,
        "DRAIN_TIMEOUT": args.timeouts.drain,
    }
    return assemble("check an agent's node name is free; drain it before an upgrade", values, NODE_CREATE_BODY)


def node_delete_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    first = args.first_server
    values: Values = {**_common(args, first), "TARGET": node.name, "DRAIN_TIMEOUT": args.timeouts.drain}
    return assemble("delete a stopped agent's node object", values, NODE_DELETE_BODY)


def preflight_script(args: K3sClusterArgs) -> Script:
    """Runs first, on server 1: refuses downgrades, minor skips and majority removals."""
    first = args.first_server
    values: Values = {
        **_common(args, first, _other_server_urls(args, first)),
        "VERSION": args.version,
        # A gone server is a removal (counted by the majority rule); gone nodes are not version-checked.
        "SERVER_NAMES": [n.name for n in args.live_servers],
        "NODE_NAMES": [n.name for n in args.nodes if not n.gone],
    }
    return assemble("preflight checks against the running cluster", values, PREFLIGHT_BODY)


def api_ready_script(args: K3sClusterArgs) -> Script:
    first = args.first_server
    values: Values = {
        **_common(args, first),
        "API_URL": render.api_url(args.api_endpoint),
        "READY_TIMEOUT": args.timeouts.api_ready,
        "KUBE_VIP": _bool(args.vip is not None),  # off: kube-vip's objects are deleted once every server is done
    }
    return assemble("wait for the API endpoint", values, API_READY_BODY)


def member_create_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    first = args.first_server
    values: Values = {
        **_common(args, first),
        "TARGET": node.name,
        "TARGET_ADDRESS": node.address,
        "VERSION": args.version,
        "READY_TIMEOUT": args.timeouts.agent_ready,
    }
    return assemble("check an agent is registered; uncordon it after an upgrade", values, MEMBER_CREATE_BODY)


def member_delete_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    first = args.first_server
    values: Values = {
        **_common(args, first),
        "TARGET": node.name,
        "DRAIN_TIMEOUT": args.timeouts.drain,
    }
    return assemble("drain an agent before it is stopped and removed", values, MEMBER_DELETE_BODY)


def renewal_period(day: dt.date) -> str:
    """The calendar quarter of `day` (``2026-Q4``): the kubeconfig is re-read once per quarter."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def kubeconfig_script(args: K3sClusterArgs, today: dt.date | None = None) -> Script:
    first = args.first_server
    values: Values = {
        **_common(args, first),
        # Changes with every rolling change, so the kubeconfig is read again afterwards, and every
        # quarter: K3s client certificates last a year and K3s renews them (at start) in their last
        # 90 days, so the exported kubeconfig is re-read well before the one it holds expires.
        "GENERATION": f"{args.version} {args.api_endpoint} {renewal_period(today or dt.date.today())}",
    }
    return assemble("print the admin kubeconfig", values, KUBECONFIG_BODY)


def ca_hash_script(args: K3sClusterArgs) -> Script:
    """On the first server: the cluster CA's sha256 (stdout), which the secure join token carries."""
    return assemble("print the cluster CA hash", {**_common(args, args.first_server)}, CA_HASH_BODY)


def labels_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    """On the first server: the node's labels and taints, applied through the API (no restart)."""
    first = args.first_server
    values: Values = {
        **_common(args, first),
        "TARGET": node.name,
        "LABELS": render.node_labels(args, node),
        "TAINTS": list(node.taints),
        "READY_TIMEOUT": args.timeouts.agent_ready,
    }
    return assemble("apply a node's labels and taints", values, LABELS_BODY)


def gone_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    """On the first server: delete a dead node's Node and wait until etcd drops its member."""
    first = args.first_server
    values: Values = {
        **_common(args, first),
        "TARGET": node.name,
        "TARGET_ROLE": node.role,
        "TARGET_PEER": render.url_host(node.address),
        "DRAIN_TIMEOUT": args.timeouts.drain,
    }
    return assemble("remove a dead node from the cluster", values, GONE_BODY)


def all_scripts(args: K3sClusterArgs) -> dict[str, Script]:
    """Every script of the stack, by a stable name (for tests, shellcheck and the render)."""
    out: dict[str, Script] = {
        "preflight.sh": preflight_script(args),
        "api-ready.sh": api_ready_script(args),
        "kubeconfig.sh": kubeconfig_script(args),
        "ca-hash.sh": ca_hash_script(args),
    }
    for node in args.gone_nodes:
        out[f"{node.name}-gone.sh"] = gone_script(args, node)
    for node in args.nodes:
        out[f"{node.name}-labels.sh"] = labels_script(args, node)
        out[f"{node.name}-prepare.sh"] = prepare_script(args, node)
        out[f"{node.name}-install.sh"] = install_script(args, node)
        out[f"{node.name}-remove.sh"] = remove_script(args, node)
        if node.role == "agent":
            out[f"{node.name}-member.sh"] = member_create_script(args, node)
            out[f"{node.name}-member-delete.sh"] = member_delete_script(args, node)
            out[f"{node.name}-node.sh"] = node_create_script(args, node)
            out[f"{node.name}-node-delete.sh"] = node_delete_script(args, node)
            out[f"{node.name}-uninstall.sh"] = uninstall_script(args, node)
    return out

