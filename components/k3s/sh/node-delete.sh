# shellcheck shell=bash
# platform:k3s: Body of an agent's node delete (on the first server, after the agent was stopped):
# delete its Node and wait until it is gone; a failure fails the delete before anything is uninstalled.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

node_gone() {
  local out
  out=$(kubectl_local get node "$TARGET" -o name 2>&1 || true)
  [[ $out == *NotFound* || $out == *"not found"* ]]
}

api_local_ready || die "no API on this server: node $TARGET was not deleted and nothing was uninstalled; re-run"
kubectl_local delete node "$TARGET" --ignore-not-found --wait=false >&2 ||
  die "could not delete node $TARGET (nothing was uninstalled); fix the API and re-run"
wait_until "node $TARGET to be gone" "$DRAIN_TIMEOUT" node_gone ||
  die "node $TARGET is still listed (nothing was uninstalled); a running kubelet re-registers it: is it stopped?"
changed "deleted node $TARGET"
finish
