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
# An upgrade of a running agent: cordon and drain it first (bounded; evictions respect
# PodDisruptionBudgets); its member step uncordons it once it is back at VERSION.
if [ "${#found[@]}" -gt 0 ]; then
  running=$(kubectl_local get node "$TARGET" -o 'jsonpath={.status.nodeInfo.kubeletVersion}' 2>/dev/null || true)
  if [ -n "$running" ] && [ "$running" != "$VERSION" ]; then
    log "draining $TARGET before its upgrade from $running to $VERSION (at most ${DRAIN_TIMEOUT}s)"
    kubectl_local annotate node "$TARGET" --overwrite "platform.k3s/drained-for=$VERSION" >&2 ||
      die "could not mark node $TARGET; nothing was drained"
    kubectl_local drain "$TARGET" --ignore-daemonsets --delete-emptydir-data --timeout="${DRAIN_TIMEOUT}s" >&2 ||
      log "WARNING: the drain of $TARGET did not finish within ${DRAIN_TIMEOUT}s (a PodDisruptionBudget?); upgrading anyway"
    changed "drained $TARGET for the upgrade to $VERSION"
  fi
fi
finish
