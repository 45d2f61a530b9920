"""Pure renderers of every script the K3s component runs on a host.

Each script is ``PROLOGUE + values + LIBRARY + body``:

* the *prologue* (static) insists on bash, turns on ``set -euo pipefail``, re-executes
  itself through ``sudo -n`` when the SSH user is not root (the script text is in
  ``$BASH_EXECUTION_STRING``; stdin, which carries secrets, is inherited), sets ``umask 077``
  and a PATH that contains ``/usr/local/bin`` (where k3s lives; not in sshd's default PATH
  on RHEL);
* the *values* block is the only place configuration appears: one ``NAME=<quoted>`` line
  per value, rendered by `quoting.assign`, each value re-validated by `K3sClusterArgs`;
* the *library* and *body* are static text that only refer to ``"$NAME"``.

Every script is complete (``#!/usr/bin/env bash``), passes ``bash -n`` and ``shellcheck``,
and is idempotent: it changes the host only where it differs from the wanted state, counts
the changes, and ends with ``done: N change(s)`` on stderr. Every wait is bounded
(`Timeouts`). Secrets never appear here: config.yaml (token, agent token, S3 key) arrives on
stdin and is written with mode 0600; the delete scripts read nothing from stdin.

What the install step does, in order (servers one at a time, agents in parallel):

1. refuse a downgrade or minor skip against the installed ``k3s --version`` (`upgrade.py`);
2. write config.yaml (stdin, 0600), registries.yaml and, on servers with a VIP, the
   kube-vip manifest into K3s's auto-deploy directory *before* K3s first starts;
3. keep the installer on the node (``/usr/local/bin/k3s-install.sh``, pinned to the K3s
   version's tag; staged when airgapped) and run it only when the unit is missing or the
   installed version differs, always with ``INSTALL_K3S_SKIP_START=true``;
4. ``systemctl start --no-block`` (fresh) or ``restart --no-block`` (new version, or the
   sha256 of config.yaml + registries.yaml differs from the last applied one), wait for a
   new unit invocation, then wait, bounded, until the node reports the wanted version
   (servers: ``/readyz`` answers and the node carries the etcd role, i.e. it is a member).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from components.k3s import render
from components.k3s.args import AIRGAP_IMAGE_SUFFIXES, K3sClusterArgs, NodeSpec
from components.k3s.quoting import assign
from components.k3s.upgrade import shell_functions

INSTALLER_URL = "https://raw.githubusercontent.com/k3s-io/k3s/{version}/install.sh"
STATE_DIR = "/var/lib/platform/k3s"
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
# Static shell text
# ---------------------------------------------------------------------------------------

PROLOGUE = r"""if [ -z "${BASH_VERSION:-}" ]; then
  echo "platform:k3s: this step needs bash as the SSH user's shell" >&2
  exit 2
fi
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  if [ -n "${BASH_EXECUTION_STRING:-}" ] && command -v sudo >/dev/null 2>&1; then
    exec sudo -n -- bash -c "$BASH_EXECUTION_STRING"
  fi
  echo "platform:k3s: must run as root (or as a user with passwordless sudo)" >&2
  exit 2
fi
umask 077
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
"""

LIBRARY = r"""
log() { printf '[platform:k3s %s] %s\n' "${NODE:-?}" "$*" >&2; }
die() { printf '[platform:k3s %s] ERROR: %s\n' "${NODE:-?}" "$*" >&2; exit 1; }
CHANGES=0
changed() { CHANGES=$((CHANGES + 1)); log "changed: $*"; }
finish() { log "done: ${CHANGES} change(s)"; }

TMP_FILES=()
cleanup() {
  local f
  for f in ${TMP_FILES[@]+"${TMP_FILES[@]}"}; do rm -f -- "$f"; done
}
trap cleanup EXIT

# tmp_beside DEST: sets TMP to a new empty file (mode 0600) in DEST's directory, creating it.
tmp_beside() {
  local dir
  dir=$(dirname -- "$1")
  if [ ! -d "$dir" ]; then
    install -d -m 0755 -- "$dir"
    changed "created $dir"
  fi
  TMP=$(mktemp -- "$dir/.platform.XXXXXX")
  TMP_FILES+=("$TMP")
}

# commit_file DEST MODE: move TMP over DEST unless content and mode are already the same.
commit_file() {
  chmod "$2" -- "$TMP"
  if [ -f "$1" ] && cmp -s -- "$TMP" "$1" && [ "$(stat -c '%a' -- "$1")" = "${2#0}" ]; then
    rm -f -- "$TMP"
    return 0
  fi
  mv -f -- "$TMP" "$1"
  changed "wrote $1"
}

# put_file DEST MODE < content
put_file() {
  tmp_beside "$1"
  cat >"$TMP"
  commit_file "$1" "$2"
}

# put_text DEST MODE TEXT: TEXT is written by the printf builtin, never a process argument.
put_text() {
  tmp_beside "$1"
  printf '%s' "$3" >"$TMP"
  commit_file "$1" "$2"
}

remove_file() {
  if [ -e "$1" ]; then
    rm -f -- "$1"
    changed "removed $1"
  fi
}

in_list() {
  local want=$1 item
  shift
  for item in "$@"; do
    if [ "$item" = "$want" ]; then return 0; fi
  done
  return 1
}

# wait_until DESCRIPTION TIMEOUT COMMAND...: poll COMMAND until it succeeds; fail after TIMEOUT s.
wait_until() {
  local what=$1 timeout=$2 deadline
  shift 2
  deadline=$((SECONDS + timeout))
  log "waiting (at most ${timeout}s) for ${what}"
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "gave up waiting for ${what} after ${timeout}s"
      return 1
    fi
    sleep "$POLL"
  done
}

installed_version() {
  local out
  if [ -x /usr/local/bin/k3s ]; then
    out=$(/usr/local/bin/k3s --version 2>/dev/null || true)
    out=${out#k3s version }
    printf '%s\n' "${out%%[[:space:]]*}"
  fi
}

kubectl_local() { k3s kubectl --kubeconfig /etc/rancher/k3s/k3s.yaml --request-timeout=10s "$@"; }

api_local_ready() {
  [ -r /etc/rancher/k3s/k3s.yaml ] && kubectl_local get --raw=/readyz >/dev/null 2>&1
}

# refuse_second_bootstrap: a fresh first server must never start a second cluster next to a live one.
refuse_second_bootstrap() {
  local url answer
  if ! command -v curl >/dev/null 2>&1; then
    log "WARNING: curl is missing; cannot check the other servers for a running cluster"
    return 0
  fi
  for url in ${OTHER_SERVER_URLS[@]+"${OTHER_SERVER_URLS[@]}"}; do
    answer=$(curl -ks --connect-timeout 3 --max-time 5 "$url/ping" 2>/dev/null || true)
    if [ "$answer" = pong ]; then
      die "$url already runs K3s but the first server ${NODE} has none. The first server in the" \
        "stack must be an existing member (cluster-init on it would start a separate cluster):" \
        "put an existing server first in platform:nodes."
    fi
  done
}
""" + shell_functions()

DETECT_OS = r"""
detect_os() {
  local ID="" ID_LIKE="" VERSION_ID="" major
  [ -r /etc/os-release ] || die "/etc/os-release is missing: cannot tell the distribution"
  # shellcheck disable=SC1091
  . /etc/os-release
  major=${VERSION_ID%%.*}
  [[ $major =~ ^[0-9]+$ ]] || major=0
  case " $ID $ID_LIKE " in
    *" debian "* | *" ubuntu "*) FAMILY=debian ;;
    *" rhel "* | *" fedora "* | *" centos "*) FAMILY=rhel ;;
    *) die "unsupported distribution '$ID' (Debian 11+, Ubuntu 22.04+, RHEL 9+ and rebuilds are supported)" ;;
  esac
  case $ID in
    debian) [ "$major" -ge 11 ] || die "Debian ${VERSION_ID:-?} is too old (11 or later is required)" ;;
    ubuntu) [ "$major" -ge 22 ] || die "Ubuntu ${VERSION_ID:-?} is too old (22.04 or later is required)" ;;
    fedora) ;;
    *)
      if [ "$FAMILY" = rhel ] && [ "$major" -lt 9 ]; then
        die "$ID ${VERSION_ID:-?} is too old (9 or later is required)"
      fi
      ;;
  esac
  log "host family: $FAMILY ($ID ${VERSION_ID:-?})"
}
"""

PREPARE_BODY = r"""
APT_UPDATED=0

pkg_installed() {
  local status
  case $FAMILY in
    debian)
      # shellcheck disable=SC2016
      status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
      [[ $status == *"ok installed"* ]]
      ;;
    rhel) rpm -q --quiet "$1" ;;
  esac
}

# A first boot often has unattended-upgrades holding the dpkg lock: wait for it, bounded.
ensure_packages() {
  local pkg missing=()
  for pkg in "$@"; do
    pkg_installed "$pkg" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  case $FAMILY in
    debian)
      if [ "$APT_UPDATED" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=300 update -q
        APT_UPDATED=1
      fi
      DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y -q \
        --no-install-recommends "${missing[@]}"
      ;;
    rhel) timeout 900 dnf install -y -q "${missing[@]}" ;;
  esac
  changed "installed ${missing[*]}"
}

unit_exists() { systemctl cat "$1" >/dev/null 2>&1; }

ensure_unit_running() {
  if ! systemctl is-enabled --quiet "$1"; then
    systemctl enable --quiet "$1"
    changed "enabled $1"
  fi
  if ! systemctl is-active --quiet "$1"; then
    timeout 120 systemctl start "$1"
    changed "started $1"
  fi
}

ensure_unit_stopped() {
  unit_exists "$1" || return 0
  if systemctl is-enabled --quiet "$1"; then
    systemctl disable --quiet "$1"
    changed "disabled $1"
  fi
  if systemctl is-active --quiet "$1"; then
    timeout 120 systemctl stop "$1"
    changed "stopped $1"
  fi
}

module_present() {
  local name=${1//-/_} builtin
  [ -d "/sys/module/$name" ] && return 0
  builtin="/lib/modules/$(uname -r)/modules.builtin"
  [ -r "$builtin" ] && grep -Eq "/(${name}|${1//_/-})\.ko(\.[a-z]+)?$" "$builtin"
}

ensure_modules() {
  local m
  put_text /etc/modules-load.d/platform-k3s.conf 0644 "$(printf '%s\n' "${MODULES[@]}")"$'\n'
  for m in "${MODULES[@]}"; do
    if ! module_present "$m"; then
      modprobe "$m"
      changed "loaded kernel module $m"
    fi
  done
}

ensure_sysctls() {
  local kv key want file current text=""
  for kv in "${SYSCTLS[@]}"; do
    key=${kv%%=*}
    # '-': systemd-sysctl ignores the key when the kernel lacks it (IPv6 disabled)
    if [[ $key == net.ipv6.* ]]; then text+="-"; fi
    text+="$key = ${kv#*=}"$'\n'
  done
  put_text /etc/sysctl.d/90-platform-k3s.conf 0644 "$text"
  for kv in "${SYSCTLS[@]}"; do
    key=${kv%%=*} want=${kv#*=}
    file=/proc/sys/${key//.//}
    if [ ! -e "$file" ] && [[ $key == net.ipv6.* ]]; then
      log "IPv6 is disabled on this host: skipping $key"
      continue
    fi
    current=$(cat "$file" 2>/dev/null || true)
    if [ "$current" != "$want" ]; then
      sysctl -q -w "$key=$want" >/dev/null
      changed "sysctl $key=$want"
      current=$(cat "$file" 2>/dev/null || true)
      [ "$current" = "$want" ] ||
        die "the kernel kept $key=$current (wanted $want); for vm.nr_hugepages free memory or reboot, then re-run"
    fi
  done
}

disable_swap() {
  local re='^[[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap([[:space:]]|$)'
  if [ -r /proc/swaps ] && [ "$(wc -l </proc/swaps)" -gt 1 ]; then
    swapoff -a
    changed "turned swap off"
  fi
  if [ -f /etc/fstab ] && grep -Eq "$re" /etc/fstab; then
    sed -i -E "s/(${re}.*)$/#platform:k3s swap off# \\1/" /etc/fstab
    systemctl daemon-reload
    changed "commented the swap entries out of /etc/fstab"
  fi
}

configure_selinux() {
  local mode
  if ! command -v getenforce >/dev/null 2>&1; then
    if [ "$SELINUX" = true ]; then die "k3s.selinux is true but this host has no SELinux (getenforce is missing)"; fi
    return 0
  fi
  mode=$(getenforce)
  if [ "$SELINUX" = true ]; then
    [ "$mode" != Disabled ] || die "k3s.selinux is true but SELinux is disabled in the kernel: enable it" \
      "(grubby --update-kernel ALL --remove-args selinux) and reboot, or set k3s.selinux to false"
    if [ "$AIRGAP" = true ] && ! rpm -q --quiet k3s-selinux; then
      die "airgap with SELinux: pre-install the container-selinux and k3s-selinux RPMs on this host"
    fi
    if [ "$mode" != Enforcing ]; then
      setenforce 1
      changed "SELinux enforcing"
    fi
    if [ -f /etc/selinux/config ] && ! grep -q '^SELINUX=enforcing' /etc/selinux/config; then
      sed -i -E 's/^SELINUX=.*/SELINUX=enforcing/' /etc/selinux/config
      changed "SELinux enforcing at boot"
    fi
  else
    if [ "$mode" = Enforcing ]; then
      setenforce 0
      changed "SELinux permissive"
    fi
    if [ -f /etc/selinux/config ] && grep -q '^SELINUX=enforcing' /etc/selinux/config; then
      sed -i -E 's/^SELINUX=enforcing/SELINUX=permissive/' /etc/selinux/config
      changed "SELinux permissive at boot"
    fi
  fi
}

configure_firewall() {
  local item reload=0
  if [ "$FIREWALL" = disabled ]; then
    ensure_unit_stopped firewalld
    ensure_unit_stopped ufw
    return 0
  fi
  ensure_packages firewalld
  ensure_unit_stopped ufw
  ensure_unit_running firewalld
  for item in "${FW_SOURCES[@]}"; do
    if ! firewall-cmd -q --permanent --zone=trusted --query-source="$item"; then
      firewall-cmd -q --permanent --zone=trusted --add-source="$item"
      reload=1
      changed "firewalld: $item trusted"
    fi
  done
  for item in "${FW_PORTS[@]}"; do
    if ! firewall-cmd -q --permanent --query-port="$item"; then
      firewall-cmd -q --permanent --add-port="$item"
      reload=1
      changed "firewalld: port $item open"
    fi
  done
  for item in ${FW_PROTOCOLS[@]+"${FW_PROTOCOLS[@]}"}; do
    if ! firewall-cmd -q --permanent --query-protocol="$item"; then
      firewall-cmd -q --permanent --add-protocol="$item"
      reload=1
      changed "firewalld: IP protocol $item allowed"
    fi
  done
  if [ "$reload" -eq 1 ]; then firewall-cmd -q --reload; fi
}

check_kernel_at_least() {
  local release major rest minor
  release=$(uname -r)
  major=${release%%.*} rest=${release#*.}
  minor=${rest%%[!0-9]*}
  [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || die "cannot read the kernel version from '$release'"
  if [ "$major" -lt "$1" ] || { [ "$major" -eq "$1" ] && [ "$minor" -lt "$2" ]; }; then
    die "$3 needs kernel $1.$2 or later; this host runs $release"
  fi
}

prepare_storage() {
  local want before
  for want in ${STORAGE[@]+"${STORAGE[@]}"}; do
    case $want in
      iscsi)
        if [ "$FAMILY" = debian ]; then ensure_packages open-iscsi; else ensure_packages iscsi-initiator-utils; fi
        ensure_unit_running iscsid
        if unit_exists multipathd; then
          before=$CHANGES
          put_text /etc/multipath/conf.d/platform-longhorn.conf 0644 "$MULTIPATH_BLACKLIST"
          if [ "$CHANGES" -ne "$before" ] && systemctl is-active --quiet multipathd; then
            systemctl reload multipathd
          fi
        fi
        ;;
      nfs)
        if [ "$FAMILY" = debian ]; then ensure_packages nfs-common; else ensure_packages nfs-utils; fi
        ;;
      nvme-tcp)
        check_kernel_at_least 5 13 "OpenEBS Mayastor"
        ;;
      hugepages)
        if [ "$(uname -m)" = x86_64 ] && ! grep -qw sse4_2 /proc/cpuinfo; then
          die "OpenEBS Mayastor needs a CPU with SSE4.2"
        fi
        ;;
      lvm) ensure_packages lvm2 ;;
      zfs)
        command -v zfs >/dev/null 2>&1 ||
          die "OpenEBS ZFS LocalPV needs ZFS on the host: install zfsutils-linux (Debian contrib) or OpenZFS (RHEL)"
        ;;
    esac
  done
  if [ -n "$HOSTPATH_DIR" ] && [ ! -d "$HOSTPATH_DIR" ]; then
    install -d -m 0755 -- "$HOSTPATH_DIR"
    changed "created $HOSTPATH_DIR"
  fi
}

detect_os
if [ "$AIRGAP" != true ] && ! command -v curl >/dev/null 2>&1; then ensure_packages curl; fi
ensure_modules
ensure_sysctls
disable_swap
configure_selinux
if [ "$FAMILY" = rhel ]; then
  ensure_unit_stopped nm-cloud-setup.timer
  ensure_unit_stopped nm-cloud-setup.service
fi
configure_firewall
prepare_storage
finish
"""

INSTALL_BODY = r"""
if [ "$ROLE" = server ]; then SERVICE=k3s; else SERVICE=k3s-agent; fi
UNIT_FILE=/etc/systemd/system/$SERVICE.service
MARKER=$STATE_DIR/applied-config.sha256
# The version the last successful run left running: an upgrade interrupted after the binary
# was replaced but before the restart is finished by the next run.
APPLIED_VERSION=$STATE_DIR/applied-version

check_version() {
  local installed problem
  installed=$(installed_version)
  if [ -n "$installed" ]; then
    problem=$(version_problem "$installed" "$VERSION")
    [ -z "$problem" ] || die "$problem (nothing was changed on this node)"
  fi
}

write_config() {
  local config
  config=$(cat)
  [[ $config == *"node-name:"* ]] || die "stdin did not carry this node's config.yaml"
  put_text /etc/rancher/k3s/config.yaml 0600 "$config"$'\n'
  if [ -n "$REGISTRIES_YAML" ]; then
    put_text /etc/rancher/k3s/registries.yaml 0600 "$REGISTRIES_YAML"
  else
    remove_file /etc/rancher/k3s/registries.yaml
  fi
  if [ "$ROLE" = server ] && [ -n "$KUBE_VIP_MANIFEST" ]; then
    put_text "$KUBE_VIP_PATH" 0600 "$KUBE_VIP_MANIFEST"
  elif [ "$ROLE" = server ]; then
    remove_file "$KUBE_VIP_PATH"
  fi
}

stage_installer() {
  local tmp first kept
  if [ "$AIRGAP" = true ]; then
    [ -f "$STAGE_DIR/install.sh" ] || die "airgap: $STAGE_DIR/install.sh was not staged"
    put_file /usr/local/bin/k3s-install.sh 0755 <"$STAGE_DIR/install.sh"
    return 0
  fi
  kept=$(cat "$STATE_DIR/installer.version" 2>/dev/null || true)
  if [ -f /usr/local/bin/k3s-install.sh ] && [ "$kept" = "$VERSION" ]; then return 0; fi
  tmp=$(mktemp)
  TMP_FILES+=("$tmp")
  curl -sfL --retry 3 --connect-timeout 10 --max-time 120 -o "$tmp" "$INSTALLER_URL" ||
    die "could not download the K3s installer from $INSTALLER_URL"
  first=""
  read -r -n 2 first <"$tmp" || true
  [ "$first" = "#!" ] || die "$INSTALLER_URL did not return a shell script"
  put_file /usr/local/bin/k3s-install.sh 0755 <"$tmp"
  put_text "$STATE_DIR/installer.version" 0644 "$VERSION"$'\n'
}

# resolve_stage_dir: a non-root SSH user's uploads land in its home (SFTP runs without sudo).
resolve_stage_dir() {
  local home
  case $STAGE_DIR in /*) return 0 ;; esac
  home=$(getent passwd "$STAGE_USER" | cut -d: -f6 || true)
  [[ $home == /* ]] || die "airgap: cannot find the home directory of $STAGE_USER, where its uploads land"
  STAGE_DIR=$home/$STAGE_DIR
}

stage_airgap_artefacts() {
  local staged new=/usr/local/bin/k3s.platform-new
  [ -f "$STAGE_DIR/k3s" ] || die "airgap: $STAGE_DIR/k3s was not staged"
  if cmp -s "$STAGE_DIR/k3s" /usr/local/bin/k3s; then
    staged=$(installed_version)
  else
    # copied first and run from /usr/local/bin: the staging directory may be mounted noexec
    install -m 0755 "$STAGE_DIR/k3s" "$new"
    TMP_FILES+=("$new")
    staged=$("$new" --version 2>/dev/null || true)
    staged=${staged#k3s version }
    staged=${staged%%[[:space:]]*}
  fi
  [ "$staged" = "$VERSION" ] || die "airgap: the staged k3s binary is '${staged}', the stack wants $VERSION"
  if [ -f "$new" ]; then
    mv -f "$new" /usr/local/bin/k3s
    changed "installed the staged k3s $VERSION binary"
  fi
  if [ -n "$IMAGES_NAME" ]; then
    [ -f "$STAGE_DIR/$IMAGES_NAME" ] || die "airgap: $STAGE_DIR/$IMAGES_NAME was not staged"
    if ! cmp -s "$STAGE_DIR/$IMAGES_NAME" "/var/lib/rancher/k3s/agent/images/$IMAGES_NAME"; then
      put_file "/var/lib/rancher/k3s/agent/images/$IMAGES_NAME" 0644 <"$STAGE_DIR/$IMAGES_NAME"
    fi
  fi
}

run_installer() {
  local env=(PATH="$PATH" HOME=/root INSTALL_K3S_VERSION="$VERSION" INSTALL_K3S_EXEC="$ROLE"
    INSTALL_K3S_SKIP_START=true)
  if [ "$AIRGAP" = true ]; then env+=(INSTALL_K3S_SKIP_DOWNLOAD=true); fi
  if [ "$SELINUX" != true ] || [ "$AIRGAP" = true ]; then env+=(INSTALL_K3S_SKIP_SELINUX_RPM=true); fi
  if [ "$SELINUX" != true ]; then env+=(INSTALL_K3S_SELINUX_WARN=true); fi
  log "running the K3s installer for $VERSION ($ROLE)"
  timeout 900 env -i "${env[@]}" sh /usr/local/bin/k3s-install.sh >&2 || die "the K3s installer failed"
  changed "installed K3s $VERSION"
}

config_digest() {
  {
    cat /etc/rancher/k3s/config.yaml
    if [ -f /etc/rancher/k3s/registries.yaml ]; then cat /etc/rancher/k3s/registries.yaml; fi
  } | sha256sum | cut -d' ' -f1
}

new_invocation() {
  local now
  now=$(systemctl show -p InvocationID --value "$SERVICE" 2>/dev/null || true)
  [ -n "$now" ] && [ "$now" != "$1" ]
}

server_ready() {
  local got
  api_local_ready || return 1
  got=$(kubectl_local get node "$NODE" 2>/dev/null \
    -o 'jsonpath={.status.nodeInfo.kubeletVersion} {.metadata.labels.node-role\.kubernetes\.io/etcd}') || return 1
  [ "$got" = "$VERSION true" ]
}

agent_ready() {
  local kubeconfig=/var/lib/rancher/k3s/agent/kubelet.kubeconfig got
  [ -r "$kubeconfig" ] || return 1
  got=$(k3s kubectl --kubeconfig "$kubeconfig" --request-timeout=10s get node "$NODE" \
    -o 'jsonpath={.status.nodeInfo.kubeletVersion}' 2>/dev/null) || return 1
  [ "$got" = "$VERSION" ]
}

diagnose() {
  systemctl status --no-pager "$SERVICE" >&2 || true
  journalctl -u "$SERVICE" -n 40 --no-pager >&2 || true
}

check_version
# Read before an airgapped binary is swapped in: a version change always re-runs the installer.
installed=$(installed_version)
write_config
if [ "$ROLE" = server ] && [ "$CLUSTER_INIT" = true ] && [ ! -d /var/lib/rancher/k3s/server/db ]; then
  refuse_second_bootstrap
fi
if [ "$AIRGAP" = true ]; then resolve_stage_dir; fi
stage_installer
if [ "$AIRGAP" = true ]; then stage_airgap_artefacts; fi
applied=$(cat "$APPLIED_VERSION" 2>/dev/null || true)
if [ -z "$applied" ]; then applied=$VERSION; fi  # first run, or a node from before the marker
restart=0
if [ ! -f "$UNIT_FILE" ] || [ "$installed" != "$VERSION" ] || [ "$applied" != "$VERSION" ]; then
  run_installer
  restart=1
fi
digest=$(config_digest)
if [ "$(cat "$MARKER" 2>/dev/null || true)" != "$digest" ]; then restart=1; fi
before=$(systemctl show -p InvocationID --value "$SERVICE" 2>/dev/null || true)
state=$(systemctl is-active "$SERVICE" 2>/dev/null || true)
started=0
if ! systemctl is-enabled --quiet "$SERVICE"; then
  systemctl enable --quiet "$SERVICE"
  changed "enabled $SERVICE"
fi
case $state in
  active | activating | reloading)
    # 'activating' is a K3s stuck in start-up (Type=notify, no start timeout): 'start' would be a
    # no-op and it would never read the new config or binary, so a change restarts it.
    if [ "$restart" -eq 1 ]; then
      systemctl restart --no-block "$SERVICE"
      changed "restarted $SERVICE (was $state)"
      started=1
    elif [ "$state" != active ]; then
      log "$SERVICE is $state and nothing changed: waiting for it"
    fi
    ;;
  *)
    systemctl start --no-block "$SERVICE"
    changed "started $SERVICE"
    started=1
    ;;
esac
if [ "$started" -eq 1 ]; then
  wait_until "a new $SERVICE process" "$READY_TIMEOUT" new_invocation "$before" ||
    { diagnose; die "$SERVICE did not start"; }
fi
if [ "$ROLE" = server ]; then
  wait_until "$NODE to serve the API and be an etcd member at $VERSION" "$READY_TIMEOUT" server_ready ||
    { diagnose; die "$NODE did not become a ready etcd member within ${READY_TIMEOUT}s"; }
else
  wait_until "$NODE to register at $VERSION" "$READY_TIMEOUT" agent_ready ||
    { diagnose; die "$NODE did not register within ${READY_TIMEOUT}s"; }
fi
put_text "$MARKER" 0600 "$digest"$'\n'
put_text "$APPLIED_VERSION" 0600 "$VERSION"$'\n'
finish
"""

REMOVE_BODY = r"""
UNINSTALL=/usr/local/bin/k3s-agent-uninstall.sh
if [ "$ROLE" = server ]; then UNINSTALL=/usr/local/bin/k3s-uninstall.sh; fi

node_gone_elsewhere() {
  local url out
  for url in ${OTHER_SERVER_URLS[@]+"${OTHER_SERVER_URLS[@]}"}; do
    out=$(k3s kubectl --kubeconfig /etc/rancher/k3s/k3s.yaml --server "$url" --request-timeout=5s \
      get node "$NODE" -o name 2>&1 || true)
    if [[ $out == *NotFound* || $out == *"not found"* ]]; then return 0; fi
  done
  return 1
}

leave_cluster() {
  local members member others=0
  if ! systemctl is-active --quiet k3s || ! api_local_ready; then
    log "WARNING: K3s is not running here, so this node cannot remove itself;" \
      "run 'kubectl delete node $NODE' on another server"
    return 0
  fi
  members=$(kubectl_local get nodes -l node-role.kubernetes.io/etcd=true \
    -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null || true)
  while IFS= read -r member; do
    if [ -n "$member" ] && [ "$member" != "$NODE" ]; then others=$((others + 1)); fi
  done <<<"$members"
  if [ "$others" -eq 0 ]; then
    log "$NODE is the last etcd member: nothing to leave"
    return 0
  fi
  log "draining $NODE (at most ${DRAIN_TIMEOUT}s)"
  kubectl_local drain "$NODE" --ignore-daemonsets --delete-emptydir-data --force --timeout="${DRAIN_TIMEOUT}s" >&2 ||
    log "WARNING: the drain did not finish; deleting the node anyway"
  kubectl_local delete node "$NODE" --wait=false >&2 ||
    die "could not delete node $NODE (its etcd member stays); fix the API and re-run"
  changed "deleted node $NODE (removes its etcd member)"
  wait_until "the other servers to drop $NODE" "$DRAIN_TIMEOUT" node_gone_elsewhere ||
    log "WARNING: the other servers still list $NODE; check 'kubectl get nodes' before removing more servers"
}

if [ ! -x /usr/local/bin/k3s ] && [ ! -x "$UNINSTALL" ]; then
  log "K3s is not installed here: nothing to remove"
  finish
  exit 0
fi
if [ "$ROLE" = server ]; then leave_cluster; fi
if [ -x "$UNINSTALL" ]; then
  timeout 900 "$UNINSTALL" >&2 || log "WARNING: $UNINSTALL failed; check the host"
  changed "uninstalled K3s"
fi
rm -f /usr/local/bin/k3s-install.sh
rm -rf "$STATE_DIR"
finish
"""

PREFLIGHT_BODY = r"""
if [ ! -x /usr/local/bin/k3s ] || ! systemctl is-active --quiet k3s || ! api_local_ready; then
  if [ -d /var/lib/rancher/k3s/server/db ]; then
    # An existing member that is down (e.g. a bad config from the last run): the other servers
    # answering is expected, and this run may be the fix, so it must not be refused.
    log "WARNING: K3s on $NODE has its datastore but its API does not answer; skipping the live checks"
  else
    refuse_second_bootstrap
    log "no running cluster on the first server: fresh install"
  fi
  finish
  exit 0
fi
columns='{.metadata.name}{" "}{.status.nodeInfo.kubeletVersion}{" "}{.metadata.labels.node-role\.kubernetes\.io/etcd}'
listing=$(kubectl_local get nodes -o "jsonpath={range .items[*]}${columns}{\"\\n\"}{end}") ||
  die "cannot list the nodes of the running cluster"
problems=()
removed=()
members=0
while read -r name version etcd; do
  if [ -z "$name" ]; then continue; fi
  if [ "$etcd" = true ]; then
    members=$((members + 1))
    if ! in_list "$name" "${SERVER_NAMES[@]}"; then removed+=("$name"); fi
  fi
  if in_list "$name" "${NODE_NAMES[@]}"; then
    problem=$(version_problem "$version" "$VERSION")
    if [ -n "$problem" ]; then problems+=("$name: $problem"); fi
  fi
done <<<"$listing"
if [ "${#removed[@]}" -gt 0 ]; then
  sorted=$(printf '%s\n' "${removed[@]}" | sort)
  mapfile -t removed <<<"$sorted"
  problem=$(removal_problem "$members" "${removed[@]}")
  if [ -n "$problem" ]; then problems+=("$problem"); fi
fi
if [ "${#problems[@]}" -gt 0 ]; then
  for problem in "${problems[@]}"; do log "REFUSED: $problem"; done
  die "refusing to change the cluster; no node was touched"
fi
log "cluster of ${members} etcd member(s) may go to $VERSION with servers: ${SERVER_NAMES[*]}"
finish
"""

API_READY_BODY = r"""
api_answers() {
  k3s kubectl --kubeconfig /etc/rancher/k3s/k3s.yaml --server "$API_URL" --request-timeout=5s \
    get --raw=/readyz >/dev/null 2>&1
}
wait_until "the API at $API_URL" "$READY_TIMEOUT" api_answers ||
  die "the API endpoint $API_URL does not answer: check the VIP (kube-vip pods in kube-system), DNS or load balancer"
log "the API answers at $API_URL"
finish
"""

MEMBER_CREATE_BODY = r"""
registered() { kubectl_local get node "$TARGET" -o name >/dev/null 2>&1; }
wait_until "node $TARGET to be registered" "$READY_TIMEOUT" registered || die "node $TARGET is not registered"
addresses=$(kubectl_local get node "$TARGET" \
  -o 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}' 2>/dev/null || true)
read -r -a found <<<"$addresses" || true
in_list "$TARGET_ADDRESS" ${found[@]+"${found[@]}"} ||
  die "node $TARGET registered with address(es) '${addresses}', not $TARGET_ADDRESS: two hosts share one node name?"
log "node $TARGET is registered at $TARGET_ADDRESS"
finish
"""

MEMBER_DELETE_BODY = r"""
if [ ! -x /usr/local/bin/k3s ] || ! api_local_ready; then
  log "WARNING: no API on this server; node $TARGET was not drained or deleted from the cluster"
  finish
  exit 0
fi
if ! kubectl_local get node "$TARGET" -o name >/dev/null 2>&1; then
  log "node $TARGET is already gone"
  finish
  exit 0
fi
log "draining $TARGET (at most ${DRAIN_TIMEOUT}s)"
kubectl_local drain "$TARGET" --ignore-daemonsets --delete-emptydir-data --force --timeout="${DRAIN_TIMEOUT}s" >&2 ||
  log "WARNING: the drain of $TARGET did not finish; deleting the node anyway"
kubectl_local delete node "$TARGET" >&2 || die "could not delete node $TARGET"
changed "deleted node $TARGET"
finish
"""

KUBECONFIG_BODY = r"""
log "reading the admin kubeconfig (${GENERATION})"
[ -s /etc/rancher/k3s/k3s.yaml ] || die "/etc/rancher/k3s/k3s.yaml is missing on the first server"
cat /etc/rancher/k3s/k3s.yaml
"""


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
    return [render.api_url(s.address) for s in args.servers if s.name != node.name]


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
        "MULTIPATH_BLACKLIST": MULTIPATH_BLACKLIST,
    }
    return assemble("prepare the host for K3s", values, DETECT_OS + PREPARE_BODY)


def install_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    """Install, reconfigure or upgrade K3s on one node; config.yaml arrives on stdin."""
    is_first = node.role == "server" and node.name == args.first_server.name
    values: Values = {
        **_common(args, node, _other_server_urls(args, node) if is_first else ()),
        "VERSION": args.version,
        "STATE_DIR": STATE_DIR,
        "ROLE": node.role,
        "CLUSTER_INIT": _bool(is_first),
        "INSTALLER_URL": INSTALLER_URL.format(version=args.version),
        "AIRGAP": _bool(args.airgap.enabled),
        "STAGE_DIR": stage_dir(node),
        "STAGE_USER": node.ssh_user,
        "IMAGES_NAME": staged_images_name(args),
        "SELINUX": _bool(args.selinux),
        "READY_TIMEOUT": args.timeouts.server_ready if node.role == "server" else args.timeouts.agent_ready,
        "REGISTRIES_YAML": render.registries_yaml(args) or "",
        "KUBE_VIP_PATH": render.KUBE_VIP_MANIFEST_PATH,
        "KUBE_VIP_MANIFEST": (render.kube_vip_manifest(args) or "") if node.role == "server" else "",
    }
    return assemble(f"install or upgrade K3s ({node.role})", values, INSTALL_BODY)


def remove_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    """Delete step of a node's install: servers drain and delete themselves, then uninstall."""
    values: Values = {
        **_common(args, node, _other_server_urls(args, node)),
        "STATE_DIR": STATE_DIR,
        "ROLE": node.role,
        "DRAIN_TIMEOUT": args.timeouts.drain,
    }
    return assemble(f"remove K3s from a {node.role}", values, REMOVE_BODY)


def preflight_script(args: K3sClusterArgs) -> Script:
    """Runs first, on server 1: refuses downgrades, minor skips and majority removals."""
    first = args.first_server
    values: Values = {
        **_common(args, first, _other_server_urls(args, first)),
        "VERSION": args.version,
        "SERVER_NAMES": [n.name for n in args.servers],
        "NODE_NAMES": [n.name for n in args.nodes],
    }
    return assemble("preflight checks against the running cluster", values, PREFLIGHT_BODY)


def api_ready_script(args: K3sClusterArgs) -> Script:
    first = args.first_server
    values: Values = {
        **_common(args, first),
        "API_URL": render.api_url(args.api_endpoint),
        "READY_TIMEOUT": args.timeouts.api_ready,
    }
    return assemble("wait for the API endpoint", values, API_READY_BODY)


def member_create_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    first = args.first_server
    values: Values = {
        **_common(args, first),
        "TARGET": node.name,
        "TARGET_ADDRESS": node.address,
        "READY_TIMEOUT": args.timeouts.agent_ready,
    }
    return assemble("check an agent is registered", values, MEMBER_CREATE_BODY)


def member_delete_script(args: K3sClusterArgs, node: NodeSpec) -> Script:
    first = args.first_server
    values: Values = {
        **_common(args, first),
        "TARGET": node.name,
        "DRAIN_TIMEOUT": args.timeouts.drain,
    }
    return assemble("drain and delete an agent's node object", values, MEMBER_DELETE_BODY)


def kubeconfig_script(args: K3sClusterArgs) -> Script:
    first = args.first_server
    values: Values = {
        **_common(args, first),
        # Changes with every rolling change, so the kubeconfig is read again afterwards.
        "GENERATION": f"{args.version} {args.api_endpoint}",
    }
    return assemble("print the admin kubeconfig", values, KUBECONFIG_BODY)


def all_scripts(args: K3sClusterArgs) -> dict[str, Script]:
    """Every script of the stack, by a stable name (for tests, shellcheck and the render)."""
    out: dict[str, Script] = {
        "preflight.sh": preflight_script(args),
        "api-ready.sh": api_ready_script(args),
        "kubeconfig.sh": kubeconfig_script(args),
    }
    for node in args.nodes:
        out[f"{node.name}-prepare.sh"] = prepare_script(args, node)
        out[f"{node.name}-install.sh"] = install_script(args, node)
        out[f"{node.name}-remove.sh"] = remove_script(args, node)
        if node.role == "agent":
            out[f"{node.name}-member.sh"] = member_create_script(args, node)
            out[f"{node.name}-member-delete.sh"] = member_delete_script(args, node)
    return out

