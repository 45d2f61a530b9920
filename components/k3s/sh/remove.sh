# shellcheck shell=bash disable=SC2153 # SC2153: the values (NODE_PEER, STATE_DIR) come from the values block
# platform:k3s: Body of the install step's delete. A server leaves etcd in the order K3s documents
# (stop and disable K3s here, delete its Node through a surviving server, wait until etcd no longer
# lists it, then uninstall); any failure fails the delete with K3s still installed. An agent only
# stops here: its Node is deleted by its node step, then its prepare step's delete uninstalls.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

UNINSTALL=/usr/local/bin/k3s-agent-uninstall.sh
SERVICE=k3s-agent
if [ "$ROLE" = server ]; then UNINSTALL=/usr/local/bin/k3s-uninstall.sh SERVICE=k3s; fi

kubectl_at() {
  local url=$1
  shift
  k3s kubectl --kubeconfig /etc/rancher/k3s/k3s.yaml --server "$url" --request-timeout=10s "$@"
}

# find_survivor: sets SURVIVOR to the first other server whose API answers this server's credentials.
find_survivor() {
  local url
  SURVIVOR=""
  [ -r /etc/rancher/k3s/k3s.yaml ] || return 1
  for url in ${OTHER_SERVER_URLS[@]+"${OTHER_SERVER_URLS[@]}"}; do
    if kubectl_at "$url" get --raw=/readyz >/dev/null 2>&1; then
      SURVIVOR=$url
      return 0
    fi
  done
  return 1
}

# k3s_runs_elsewhere: another server's K3s supervisor answers at all (even if its API does not).
k3s_runs_elsewhere() {
  local url
  command -v curl >/dev/null 2>&1 || return 1
  for url in ${OTHER_SERVER_URLS[@]+"${OTHER_SERVER_URLS[@]}"}; do
    if [ "$(curl -ks --connect-timeout 3 --max-time 5 "$url/ping" 2>/dev/null || true)" = pong ]; then return 0; fi
  done
  return 1
}

local_other_members() {
  local members member others=0
  members=$(kubectl_local get nodes -l node-role.kubernetes.io/etcd=true \
    -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null || true)
  while IFS= read -r member; do
    if [ -n "$member" ] && [ "$member" != "$NODE" ]; then others=$((others + 1)); fi
  done <<<"$members"
  printf '%s\n' "$others"
}

member_gone() { etcd_member_gone "$NODE" "$NODE_PEER" "$(url_hostport "$SURVIVOR")"; }

stop_service() {
  if systemctl is-enabled --quiet "$SERVICE" 2>/dev/null; then
    systemctl disable --quiet "$SERVICE"
    changed "disabled $SERVICE"
  fi
  if systemctl is-active --quiet "$SERVICE" 2>/dev/null; then
    timeout 300 systemctl stop "$SERVICE" || die "could not stop $SERVICE on $NODE"
    changed "stopped $SERVICE"
  fi
}

# snapshot_on_survivor NAME: the same snapshot taken by the surviving server itself (K3s's etcd-snapshot
# --etcd-server), so a copy stays on a host that remains in the cluster when this one is wiped. The
# token travels in a 0600 config file, never on the command line. Best effort: the local copy exists.
snapshot_on_survivor() {
  local cfg token
  token=$(cat /var/lib/rancher/k3s/server/token 2>/dev/null || true)
  if [ -z "$token" ]; then
    log "WARNING: no server token on $NODE: no second snapshot on $SURVIVOR"
    return 0
  fi
  cfg=$(mktemp)
  TMP_FILES+=("$cfg")
  printf '%s: "%s"\n' etcd-server "$SURVIVOR" etcd-token "$token" >"$cfg"
  if k3s etcd-snapshot save --config "$cfg" --name "$1" >&2; then
    changed "etcd snapshot $1 on $SURVIVOR (its K3s snapshot dir; 'k3s etcd-snapshot ls' there)"
  else
    log "WARNING: $SURVIVOR did not take the snapshot $1 (K3s older than v1.29?); the copy on $NODE is in" \
      "$SNAPSHOT_DIR"
  fi
}

leave_cluster() {
  local down
  if ! find_survivor; then
    if k3s_runs_elsewhere; then
      die "K3s runs on another server but no other server's API answers; $NODE stays a member and" \
        "nothing was changed here. Fix the API (or mark dead servers 'gone: true') and re-run"
    fi
    if api_local_ready && [ "$(local_other_members)" -gt 0 ]; then
      die "$NODE sees other etcd members but none of them answers; nothing was changed here. Re-run" \
        "once they do (or mark dead servers 'gone: true')"
    fi
    log "no other server runs K3s: $NODE is the last etcd member, nothing to leave"
    return 0
  fi
  command -v curl >/dev/null 2>&1 || die "curl is needed to check the etcd member list; install it on $NODE and re-run"
  down=$(unhealthy_servers "$(url_hostport "$SURVIVOR")")
  if [ -n "$down" ]; then
    die "refusing to remove $NODE: the server(s) at ${down//$'\n'/ } do not answer /readyz; removing a" \
      "healthy member while another is down can lose quorum. Bring it back (or mark a dead server 'gone: true')" \
      "and re-run; nothing was changed on $NODE"
  fi
  if systemctl is-active --quiet "$SERVICE" && api_local_ready; then
    snapshot_before pre-removal "removing $NODE"
    snapshot_on_survivor "pre-removal-$NODE"
  else
    log "WARNING: K3s is not running on $NODE (an earlier attempt stopped it): no new snapshot; earlier ones are in" \
      "$SNAPSHOT_DIR"
  fi
  log "leaving the cluster through $SURVIVOR"
  log "draining $NODE (at most ${DRAIN_TIMEOUT}s; PodDisruptionBudgets are respected)"
  kubectl_at "$SURVIVOR" drain "$NODE" --ignore-daemonsets --delete-emptydir-data --force --timeout="${DRAIN_TIMEOUT}s" >&2 ||
    log "WARNING: the drain of $NODE did not finish within ${DRAIN_TIMEOUT}s; removing it anyway"
  stop_service
  kubectl_at "$SURVIVOR" delete node "$NODE" --ignore-not-found >&2 ||
    die "could not delete node $NODE through $SURVIVOR. K3s is stopped on $NODE but it is still an etcd" \
      "member and nothing was uninstalled: fix the API and re-run, or undo with 'systemctl enable --now k3s' on $NODE"
  changed "deleted node $NODE through $SURVIVOR (K3s removes its etcd member)"
  wait_until "etcd on $SURVIVOR to drop $NODE" "$DRAIN_TIMEOUT" member_gone ||
    die "etcd at $SURVIVOR still lists $NODE (or cannot be asked); nothing was uninstalled. Check" \
      "'k3s etcd-snapshot list' / the K3s log on $SURVIVOR, then re-run"
  log "etcd no longer lists $NODE"
}

uninstall_k3s() {
  if [ -x "$UNINSTALL" ]; then
    timeout 900 "$UNINSTALL" >&2 || die "$UNINSTALL failed on $NODE; check the host and re-run"
    changed "uninstalled K3s"
  fi
  rm -f /usr/local/bin/k3s-install.sh
  rm -rf "$STATE_DIR"
}

if [ ! -x /usr/local/bin/k3s ] && [ ! -x "$UNINSTALL" ]; then
  log "K3s is not installed here: nothing to remove"
  finish
  exit 0
fi
if [ "$ROLE" = server ]; then
  leave_cluster
  stop_service
  uninstall_k3s
else
  stop_service
  log "$SERVICE is stopped; its node step deletes the Node next, then its prepare step uninstalls K3s"
fi
finish
