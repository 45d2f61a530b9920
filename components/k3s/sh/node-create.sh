# shellcheck shell=bash
# platform:k3s: Body of an agent's node step (on the first server, before the agent installs): the
# node name is free, or already this host's.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

addresses=$(kubectl_local get node "$TARGET" \
  -o 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}' 2>/dev/null || true)
read -r -a found <<<"$addresses" || true
if [ "${#found[@]}" -gt 0 ] && ! in_list "$TARGET_ADDRESS" "${found[@]}"; then
  die "a node named $TARGET already exists at '${addresses}', not $TARGET_ADDRESS: two hosts share one node name?"
fi
log "node name $TARGET is free or already $TARGET_ADDRESS's"
finish
