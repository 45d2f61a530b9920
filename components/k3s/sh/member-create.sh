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
drained=$(kubectl_local get node "$TARGET" -o 'jsonpath={.metadata.annotations.platform\.k3s/drained-for}' \
  2>/dev/null || true)
if [ -n "$drained" ]; then
  back() {
    local got
    got=$(kubectl_local get node "$TARGET" \
      -o 'jsonpath={.status.nodeInfo.kubeletVersion} {.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) ||
      return 1
    [ "$got" = "$VERSION True" ]
  }
  wait_until "node $TARGET to be Ready at $VERSION" "$READY_TIMEOUT" back || die "node $TARGET is not Ready at $VERSION"
  kubectl_local uncordon "$TARGET" >&2 || die "could not uncordon node $TARGET"
  kubectl_local annotate node "$TARGET" platform.k3s/drained-for- >&2 || true
  changed "uncordoned $TARGET"
fi
finish
