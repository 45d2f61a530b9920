# shellcheck shell=bash disable=SC2153 # SC2153: the values (VERSION, STATE_DIR) come from the values block
# platform:k3s: Body of the preflight step on server 1: version and removal rules against the live cluster.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

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
