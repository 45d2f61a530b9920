# shellcheck shell=bash disable=SC2153 # SC2153: the values (VERSION, STATE_DIR, VIP_*) come from the values block
# platform:k3s: Body of the install step: config from stdin, installer, start/restart, bounded readiness wait.
# stdin: config.yaml, registries.yaml (empty: none) and each registry client key (REGISTRY_KEY_PATHS
# order), separated by STDIN_SEPARATOR lines; they hold secrets and are never echoed.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

if [ "$ROLE" = server ]; then SERVICE=k3s; else SERVICE=k3s-agent; fi
UNIT_FILE=/etc/systemd/system/$SERVICE.service
ENV_FILE=$UNIT_FILE.env
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

# read_stdin: splits stdin into STDIN_PARTS (config.yaml, registries.yaml, the client keys).
read_stdin() {
  local line
  STDIN_PARTS=("")
  while IFS= read -r line || [ -n "$line" ]; do
    if [ "$line" = "$STDIN_SEPARATOR" ]; then
      STDIN_PARTS+=("")
    else
      STDIN_PARTS[${#STDIN_PARTS[@]} - 1]+=$line$'\n'
    fi
  done
  if [ "${#STDIN_PARTS[@]}" -ne $((2 + ${#REGISTRY_KEY_PATHS[@]})) ] || [[ ${STDIN_PARTS[0]} != *"node-name:"* ]]; then
    die "stdin did not carry this node's config.yaml, registries.yaml and ${#REGISTRY_KEY_PATHS[@]} registry client key(s)"
  fi
}

# write_registry_tls: k3s.registries.configs' CA and client certificates (values) and client keys
# (stdin, 0600) under REGISTRY_TLS_DIR; files of registries no longer configured are removed.
write_registry_tls() {
  local i f found wanted=()
  for ((i = 0; i < ${#REGISTRY_CERT_PATHS[@]}; i++)); do
    put_text "${REGISTRY_CERT_PATHS[i]}" 0644 "${REGISTRY_CERTS[i]}"
    wanted+=("${REGISTRY_CERT_PATHS[i]}")
  done
  for ((i = 0; i < ${#REGISTRY_KEY_PATHS[@]}; i++)); do
    put_text "${REGISTRY_KEY_PATHS[i]}" 0600 "${STDIN_PARTS[i + 2]}"
    wanted+=("${REGISTRY_KEY_PATHS[i]}")
  done
  [ -d "$REGISTRY_TLS_DIR" ] || return 0
  # (paths are the program's own: no newlines; no process substitution: /dev/fd may be missing)
  found=$(find "$REGISTRY_TLS_DIR" -type f)
  while IFS= read -r f; do
    if [ -n "$f" ] && ! in_list "$f" ${wanted[@]+"${wanted[@]}"}; then remove_file "$f"; fi
  done <<<"$found"
  found=$(find "$REGISTRY_TLS_DIR" -depth -type d -empty -print -delete)
  while IFS= read -r f; do
    if [ -n "$f" ]; then changed "removed $f"; fi
  done <<<"$found"
}

write_config() {
  read_stdin
  put_text /etc/rancher/k3s/config.yaml 0600 "${STDIN_PARTS[0]}"
  if [ -n "${STDIN_PARTS[1]}" ]; then
    put_text /etc/rancher/k3s/registries.yaml 0600 "${STDIN_PARTS[1]}"
  else
    remove_file /etc/rancher/k3s/registries.yaml
  fi
  write_registry_tls
  if [ -n "$ETCD_S3_CA" ]; then
    put_text "$ETCD_S3_CA_PATH" 0644 "$ETCD_S3_CA"
  else
    remove_file "$ETCD_S3_CA_PATH"
  fi
  if [ "$ROLE" = server ] && [ -n "$KUBE_VIP_MANIFEST" ]; then
    put_text "$KUBE_VIP_PATH" 0600 "$KUBE_VIP_MANIFEST"
  elif [ "$ROLE" = server ]; then
    remove_file "$KUBE_VIP_PATH"
  fi
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

stage_installer() {
  local tmp first sum
  if [ "$AIRGAP" = true ]; then
    [ -f "$STAGE_DIR/install.sh" ] || die "airgap: $STAGE_DIR/install.sh was not staged"
    put_file /usr/local/bin/k3s-install.sh 0755 <"$STAGE_DIR/install.sh"
    return 0
  fi
  # Kept while it is the pinned script; a new pin (or a tampered copy) is fetched again.
  if [ -f /usr/local/bin/k3s-install.sh ] && [ "$(sha256_of /usr/local/bin/k3s-install.sh)" = "$INSTALLER_SHA256" ]; then
    return 0
  fi
  tmp=$(mktemp)
  TMP_FILES+=("$tmp")
  env ${PROXY_ENV[@]+"${PROXY_ENV[@]}"} curl -sfL --retry 3 --connect-timeout 10 --max-time 120 -o "$tmp" "$INSTALLER_URL" ||
    die "could not download the K3s installer from $INSTALLER_URL"
  first=""
  read -r -n 2 first <"$tmp" || true
  [ "$first" = "#!" ] || die "$INSTALLER_URL did not return a shell script"
  sum=$(sha256_of "$tmp")
  [ "$sum" = "$INSTALLER_SHA256" ] ||
    die "the K3s installer from $INSTALLER_URL has sha256 $sum, not the pinned $INSTALLER_SHA256: refusing to run" \
      "it (a proxy rewriting downloads, or a wrong pin in platform:versions.k3sInstaller / components/versions.py)"
  put_file /usr/local/bin/k3s-install.sh 0755 <"$tmp"
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
  env+=(${PROXY_ENV[@]+"${PROXY_ENV[@]}"})  # the installer's downloads, and it copies them to the unit's env file
  log "running the K3s installer for $VERSION ($ROLE)"
  timeout 900 env -i "${env[@]}" sh /usr/local/bin/k3s-install.sh >&2 || die "the K3s installer failed"
  changed "installed K3s $VERSION"
}

# short_tokens: config.yaml with secure tokens (K10<CA hash>::<user>:<password>) in their short form
# (the password): the same credentials, so switching a node to the secure form restarts nothing.
short_tokens() {
  local line re='^(token|agent-token): K10[0-9a-f]+::[a-z]+:(.*)$'
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ $re ]]; then line="${BASH_REMATCH[1]}: ${BASH_REMATCH[2]}"; fi
    printf '%s\n' "$line"
  done </etc/rancher/k3s/config.yaml
}

# without_registration_keys: config.yaml minus node-label / node-taint. K3s reads those only when
# the node registers; later changes are applied through the API (the labels step), not by a restart.
without_registration_keys() {
  local line skip=0
  short_tokens | while IFS= read -r line; do
    if [[ $line == node-label:* || $line == node-taint:* ]]; then
      skip=1
      continue
    fi
    if [ "$skip" -eq 1 ] && [[ $line == "- "* ]]; then continue; fi
    skip=0
    printf '%s\n' "$line"
  done
}

# config_digest [full]: what a restart depends on; 'full' is the digest of the whole config.yaml
# (how runs before the labels step computed it: a marker of either kind means "applied").
config_digest() {
  local f
  {
    if [ "${1:-}" = full ]; then short_tokens; else without_registration_keys; fi
    if [ -f /etc/rancher/k3s/registries.yaml ]; then cat /etc/rancher/k3s/registries.yaml; fi
    # the unit's environment (k3s.proxy); empty on nodes without a proxy, so their digest is unchanged
    if [ -s "$ENV_FILE" ]; then cat "$ENV_FILE"; fi
    if [ -s "$ETCD_S3_CA_PATH" ]; then cat "$ETCD_S3_CA_PATH"; fi
    # k3s.registries.configs' TLS files (none: the digest of a node without them is unchanged)
    for f in ${REGISTRY_CERT_PATHS[@]+"${REGISTRY_CERT_PATHS[@]}"} ${REGISTRY_KEY_PATHS[@]+"${REGISTRY_KEY_PATHS[@]}"}; do
      cat -- "$f"
    done
  } | sha256sum | cut -d' ' -f1
}

# write_unit_env: the K3s unit's EnvironmentFile holds exactly k3s.proxy's variables (K3s and
# containerd read them); a proxy change alone restarts K3s through the config digest.
write_unit_env() {
  if [ "${#PROXY_ENV[@]}" -eq 0 ] && [ ! -s "$ENV_FILE" ]; then return 0; fi
  if [ "${#PROXY_ENV[@]}" -eq 0 ]; then
    put_text "$ENV_FILE" 0600 ""
  else
    put_text "$ENV_FILE" 0600 "$(printf '%s\n' "${PROXY_ENV[@]}")"$'\n'
  fi
}

new_invocation() {
  local now
  now=$(systemctl show -p InvocationID --value "$SERVICE" 2>/dev/null || true)
  [ -n "$now" ] && [ "$now" != "$1" ]
}

READY_FIELDS='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}'

# fresh_ready STATUS HEARTBEAT: when the node was Ready before its restart (READY_REQUIRED), it is
# Ready again and its kubelet has reported since the restart at SINCE (not the old Node object).
# A first start is not held to Ready: with Calico, nodes are NotReady until the platform layer runs.
fresh_ready() {
  [ "$READY_REQUIRED" -eq 1 ] || return 0
  [ "$1" = True ] || return 1
  [ -z "$SINCE" ] || [[ ! $2 < $SINCE ]]
}

server_ready() {
  local got version etcd status beat
  api_local_ready || return 1
  got=$(kubectl_local get node "$NODE" 2>/dev/null \
    -o "jsonpath={.status.nodeInfo.kubeletVersion} {.metadata.labels.node-role\\.kubernetes\\.io/etcd} $READY_FIELDS") ||
    return 1
  read -r version etcd status beat <<<"$got" || true
  [ "$version $etcd" = "$VERSION true" ] && fresh_ready "$status" "${beat:-}"
}

agent_ready() {
  local kubeconfig=/var/lib/rancher/k3s/agent/kubelet.kubeconfig got version status beat
  [ -r "$kubeconfig" ] || return 1
  got=$(k3s kubectl --kubeconfig "$kubeconfig" --request-timeout=10s get node "$NODE" \
    -o "jsonpath={.status.nodeInfo.kubeletVersion} $READY_FIELDS" 2>/dev/null) || return 1
  read -r version status beat <<<"$got" || true
  [ "$version" = "$VERSION" ] && fresh_ready "$status" "${beat:-}"
}

node_kubectl() {
  if [ "$ROLE" = server ]; then
    kubectl_local "$@"
  else
    k3s kubectl --kubeconfig /var/lib/rancher/k3s/agent/kubelet.kubeconfig --request-timeout=10s "$@"
  fi
}

ready_now() {
  local got
  got=$(node_kubectl get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) ||
    return 1
  [ "$got" = True ]
}

# drain_self: a running server about to restart moves its pods away first (bounded; evictions
# respect PodDisruptionBudgets); it stays cordoned until it is back, then is uncordoned.
drain_self() {
  local count
  count=$(kubectl_local get nodes -o name 2>/dev/null | wc -l)
  if [ "$count" -le 1 ]; then return 0; fi
  log "cordoning and draining $NODE before the restart (at most ${DRAIN_TIMEOUT}s)"
  kubectl_local drain "$NODE" --ignore-daemonsets --delete-emptydir-data --timeout="${DRAIN_TIMEOUT}s" >&2 ||
    log "WARNING: the drain of $NODE did not finish within ${DRAIN_TIMEOUT}s (a PodDisruptionBudget?); restarting anyway"
  changed "drained $NODE"
  DRAINED=1
}

# dev_of LINE: the word after 'dev' in a line of `ip -o route` output.
dev_of() {
  local words i
  read -r -a words <<<"$1" || true
  for ((i = 0; i + 1 < ${#words[@]}; i++)); do
    if [ "${words[i]}" = dev ]; then
      printf '%s\n' "${words[i + 1]}"
      return 0
    fi
  done
}

# route_interface ADDRESS: the interface of this host's route to ADDRESS (the one holding it when local).
route_interface() {
  local dev words
  dev=$(dev_of "$(ip -o route get "$1" 2>/dev/null | head -n 1 || true)")
  if [ "$dev" = lo ]; then
    # the VIP is on this host already (kube-vip leads here): the interface that carries it
    read -r -a words <<<"$(ip -o addr show to "$1" 2>/dev/null | head -n 1 || true)" || true
    dev=${words[1]:-}
  fi
  printf '%s\n' "$dev"
}

default_interface() {
  local family=-4
  if [[ $1 == *:* ]]; then family=-6; fi
  dev_of "$(ip "$family" -o route show default 2>/dev/null | head -n 1 || true)"
}

# vip_answers: another host already answers for the VIP (ARP duplicate detection, else ping).
vip_answers() {
  local rc=0
  if [[ $VIP_ADDRESS != *:* ]] && command -v arping >/dev/null 2>&1; then
    arping -q -D -c 2 -w 3 -I "$VIP_IFACE" "$VIP_ADDRESS" >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 1 ]
    return
  fi
  command -v ping >/dev/null 2>&1 && ping -c 2 -W 1 -q "$VIP_ADDRESS" >/dev/null 2>&1
}

# check_vip: before K3s starts, the interface kube-vip will use exists here and, on a fresh
# cluster, nothing else already answers for the VIP (kube-vip would fight it for the address).
check_vip() {
  local route default have
  route=$(route_interface "$VIP_ADDRESS")
  have=$(cd /sys/class/net 2>/dev/null && printf '%s ' *)
  if [ -n "$VIP_INTERFACE" ]; then
    VIP_IFACE=$VIP_INTERFACE
    [ -e "/sys/class/net/$VIP_IFACE" ] || die "k3s.vip.interface is '$VIP_IFACE' but server $NODE has no such" \
      "interface (it has: ${have% }); set k3s.vip.interface to the interface of" \
      "the VIP's network${route:+ (here: $route)}, or remove it to use the interface of the route to the VIP"
  else
    [ -n "$route" ] || die "server $NODE has no route to the VIP $VIP_ADDRESS: set k3s.vip.interface"
    [ -e "/sys/class/net/$route" ] || die "server $NODE routes the VIP $VIP_ADDRESS via '$route', which is not an interface"
    default=$(default_interface "$VIP_ADDRESS")
    # kube-vip without vip_interface takes the default-route interface: it must be the VIP's
    [ "$route" = "$default" ] || die "server $NODE reaches the VIP $VIP_ADDRESS via $route but its default route" \
      "uses ${default:-no interface}; kube-vip would announce the VIP on the wrong interface: set k3s.vip.interface: $route"
    VIP_IFACE=$route
  fi
  log "kube-vip interface on $NODE: $VIP_IFACE"
  if [ "$CLUSTER_INIT" = true ] && [ ! -d /var/lib/rancher/k3s/server/db ] && vip_answers; then
    die "the VIP $VIP_ADDRESS already answers on $VIP_IFACE before this cluster exists: another host uses it." \
      "Choose a free address for k3s.vip.address (nothing was changed on $NODE)"
  fi
}

diagnose() {
  systemctl status --no-pager "$SERVICE" >&2 || true
  journalctl -u "$SERVICE" -n 40 --no-pager >&2 || true
}

check_version
if [ "$ROLE" = server ] && [ -n "$VIP_ADDRESS" ]; then check_vip; fi
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
gated=0
DRAINED=0
READY_REQUIRED=0
SINCE=""
if [ ! -f "$UNIT_FILE" ] || [ "$installed" != "$VERSION" ] || [ "$applied" != "$VERSION" ]; then
  if [ "$ROLE" = server ] && [ -f "$UNIT_FILE" ] && systemctl is-active --quiet "$SERVICE"; then
    health_gate "upgrade K3s to $VERSION"
    gated=1
    snapshot_before pre-upgrade "the upgrade of $NODE to $VERSION"
  fi
  run_installer
  restart=1
fi
write_unit_env
digest=$(config_digest)
marker=$(cat "$MARKER" 2>/dev/null || true)
if [ "$marker" != "$digest" ] && [ "$marker" != "$(config_digest full)" ]; then restart=1; fi
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
      if [ "$ROLE" = server ] && [ "$gated" -eq 0 ] && [ "$state" = active ]; then health_gate "restart K3s"; fi
      if [ "$state" = active ] && ready_now; then READY_REQUIRED=1; fi
      if [ "$ROLE" = server ] && [ "$state" = active ]; then drain_self; fi
      SINCE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
      systemctl restart --no-block "$SERVICE"
      changed "restarted $SERVICE (was $state)"
      started=1
    elif [ "$state" != active ]; then
      log "$SERVICE is $state and nothing changed: waiting for it"
    fi
    ;;
  *)
    SINCE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
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
if [ "$DRAINED" -eq 1 ]; then
  kubectl_local uncordon "$NODE" >&2 || die "$NODE is back but could not be uncordoned; run 'kubectl uncordon $NODE'"
  changed "uncordoned $NODE"
fi
put_text "$MARKER" 0600 "$digest"$'\n'
put_text "$APPLIED_VERSION" 0600 "$VERSION"$'\n'
finish
