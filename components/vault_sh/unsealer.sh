#!/usr/bin/env bash
# The Transit Vault's unsealer: runs in the cluster for as long as the Transit Vault does.
#
# Every $INTERVAL seconds it unseals every Transit pod in $TRANSIT_PODS that is initialised and
# sealed (a restart, a node loss, a power cut), with the unseal key from Secret
# $TRANSIT_UNSEAL_SECRET, which only it may read. Every $TOKEN_CHECK_SECONDS
# it also checks the HA Vault's seal token and renews or re-issues it (ensure_seal_token), so an
# expiring or revoked token never leaves the HA Vault unable to unseal after its next restart.
# Right after it unseals Transit it deletes the HA pods in CrashLoopBackOff (they exited because
# Transit was sealed), so a cold start does not wait out the kubelet's back-off (up to 5 min).
# ONESHOT=1 runs one round and exits with its status (used by the tests).
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${TRANSIT_PODS:?TRANSIT_PODS is required (space-separated pod addresses)}"
: "${TRANSIT_ADDR:?TRANSIT_ADDR is required}"
# URL-encoded label selector of the HA Vault's server pods.
HA_POD_SELECTOR=${HA_POD_SELECTOR:-app.kubernetes.io%2Finstance%3Dvault-ha%2Ccomponent%3Dserver}
INTERVAL=${INTERVAL:-10}
TOKEN_CHECK_SECONDS=${TOKEN_CHECK_SECONDS:-3600}
next_token_check=0

restart_crashlooping_ha() {
  local pod
  k8s GET "/api/v1/namespaces/$NAMESPACE/pods?labelSelector=$HA_POD_SELECTOR"
  [ "$HTTP_STATUS" = 200 ] || { log "cannot list the HA pods (HTTP $HTTP_STATUS)"; return 0; }
  for pod in $(json '.items[] | select([.status.containerStatuses[]?.state.waiting.reason] | index("CrashLoopBackOff"))
                     | .metadata.name'); do
    k8s DELETE "/api/v1/namespaces/$NAMESPACE/pods/$pod"
    log "restarted $pod (was in CrashLoopBackOff while Transit was sealed): HTTP $HTTP_STATUS"
  done
}

round() {
  local addr unseal_key root ok=0
  local name
  for name in "$TRANSIT_UNSEAL_SECRET" "$TRANSIT_ROOT_SECRET"; do
    secret_get "$name"
    case $HTTP_STATUS in
      200) ;;
      404) log "Secret $NAMESPACE/$name does not exist yet (the bootstrap creates it)"; return 1 ;;
      *) log "cannot read Secret $NAMESPACE/$name (HTTP $HTTP_STATUS)"; return 1 ;;
    esac
    if [ "$name" = "$TRANSIT_UNSEAL_SECRET" ]; then unseal_key=$(secret_value unseal_key); else root=$(secret_value root_token); fi
  done
  RESP_BODY=""
  UNSEALED=0
  for addr in $TRANSIT_PODS; do
    unseal_transit "$addr" "$unseal_key" || ok=1
  done
  if [ "$UNSEALED" = 1 ]; then restart_crashlooping_ha; fi
  if [ "$ok" = 0 ] && [ "$SECONDS" -ge "$next_token_check" ]; then
    # A subshell: a failed check is logged and retried next round, it does not stop the loop.
    if (ensure_seal_token "$TRANSIT_ADDR" "$root"); then
      next_token_check=$((SECONDS + TOKEN_CHECK_SECONDS))
    else
      ok=1
    fi
  fi
  return "$ok"
}

while :; do
  if round; then status=0; else status=1; fi
  if [ "${ONESHOT:-0}" = 1 ]; then exit "$status"; fi
  sleep "$INTERVAL"
done
