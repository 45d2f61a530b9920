# shellcheck shell=bash
# platform:k3s: Body of the install step's delete: leave the cluster, then uninstall.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

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
