# shellcheck shell=bash
# platform:k3s: Body of an agent's member delete, the first step of its removal: drain it while it
# still runs (its install step then stops it, its node step deletes the Node).
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

if [ ! -x /usr/local/bin/k3s ] || ! api_local_ready; then
  die "no API on this server: $TARGET was not drained; fix the API and re-run (nothing was changed)"
fi
if ! kubectl_local get node "$TARGET" -o name >/dev/null 2>&1; then
  log "node $TARGET is already gone"
  finish
  exit 0
fi
log "draining $TARGET (at most ${DRAIN_TIMEOUT}s; PodDisruptionBudgets are respected)"
kubectl_local drain "$TARGET" --ignore-daemonsets --delete-emptydir-data --force --timeout="${DRAIN_TIMEOUT}s" >&2 ||
  log "WARNING: the drain of $TARGET did not finish within ${DRAIN_TIMEOUT}s; removing it anyway"
changed "drained $TARGET"
finish
