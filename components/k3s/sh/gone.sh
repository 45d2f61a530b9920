# shellcheck shell=bash disable=SC2153 # SC2153: TARGET_* come from the values block
# platform:k3s: Body of a gone node's step (on the first server): a node dead for good (k3s
# nodes[].gone) loses its Node and, for a server, its etcd member, without any SSH to it.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

node_gone() {
  local out
  out=$(kubectl_local get node "$TARGET" -o name 2>&1 || true)
  [[ $out == *NotFound* || $out == *"not found"* ]]
}

if [ ! -x /usr/local/bin/k3s ]; then
  log "no cluster on $NODE yet: nothing to remove for $TARGET"
  finish
  exit 0
fi
api_local_ready || die "the API on $NODE does not answer: cannot remove the dead node $TARGET; re-run once it does"
if ! node_gone; then
  kubectl_local delete node "$TARGET" --wait=false >&2 || die "could not delete the dead node $TARGET; re-run"
  changed "deleted the dead node $TARGET"
fi
wait_until "node $TARGET to be gone" "$DRAIN_TIMEOUT" node_gone || die "node $TARGET is still listed"
if [ "$TARGET_ROLE" = server ]; then
  command -v curl >/dev/null 2>&1 || die "curl is needed to check the etcd member list; install it on $NODE"
  wait_until "etcd to drop the dead member $TARGET" "$DRAIN_TIMEOUT" etcd_member_gone "$TARGET" "$TARGET_PEER" 127.0.0.1 ||
    die "etcd still lists the dead member $TARGET; see 'Recovery' in the README (etcdctl member remove)"
  log "etcd no longer lists $TARGET"
fi
finish
