# shellcheck shell=bash
# platform:k3s: Body of an agent's member step: the node registered with its own address.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

registered() { kubectl_local get node "$TARGET" -o name >/dev/null 2>&1; }
wait_until "node $TARGET to be registered" "$READY_TIMEOUT" registered || die "node $TARGET is not registered"
addresses=$(kubectl_local get node "$TARGET" \
  -o 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}' 2>/dev/null || true)
read -r -a found <<<"$addresses" || true
in_list "$TARGET_ADDRESS" ${found[@]+"${found[@]}"} ||
  die "node $TARGET registered with address(es) '${addresses}', not $TARGET_ADDRESS: two hosts share one node name?"
log "node $TARGET is registered at $TARGET_ADDRESS"
finish
