# shellcheck shell=bash
# platform:k3s: Body of the prepare step: packages, modules, sysctls, swap, SELinux, firewall, storage.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

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
  # storage.longhorn.dedicatedDisk: Longhorn's data must not land on the root filesystem.
  local path
  for path in ${DEDICATED_MOUNTS[@]+"${DEDICATED_MOUNTS[@]}"}; do
    mountpoint -q -- "$path" ||
      die "node $NODE: Longhorn's disk path $path is not a separate mount (storage.longhorn.dedicatedDisk);" \
        "mount the dedicated disk there (and in /etc/fstab), or set storage.longhorn.nodeDataPaths.$NODE"
  done
}

detect_os
if [ "$AIRGAP" != true ] && ! command -v curl >/dev/null 2>&1; then ensure_packages curl; fi
# Minimal installs lack the CA bundle (--no-install-recommends curl does not pull it): without it
# the installer download and K3s's own image pulls fail TLS. Same package name on RHEL.
if [ "$AIRGAP" != true ]; then ensure_packages ca-certificates; fi
ensure_modules
ensure_sysctls
disable_swap
configure_selinux
if [ "$FAMILY" = rhel ]; then
  ensure_unit_stopped nm-cloud-setup.timer
  ensure_unit_stopped nm-cloud-setup.service
  if [ "$CALICO" = true ]; then
    # NetworkManager must leave Calico's interfaces alone (it would otherwise manage and break them).
    before=$CHANGES
    put_text /etc/NetworkManager/conf.d/platform-calico.conf 0644 "$NM_CALICO_CONF"
    if [ "$CHANGES" -ne "$before" ] && systemctl is-active --quiet NetworkManager; then
      systemctl reload NetworkManager
    fi
  fi
fi
configure_firewall
prepare_storage
finish
