# shellcheck shell=bash
# platform:k3s: Body of an agent's member delete: drain and delete its Node.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

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
