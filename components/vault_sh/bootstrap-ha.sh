#!/usr/bin/env bash
# Bootstrap of the HA Vault (Raft, auto-unsealed through Transit); idempotent, no human.
#
#   1. initialise it with recovery keys unless it is, and store the root token and recovery
#      keys in Secret $HA_INIT_SECRET at once (retried; refuses loudly on a later run when an
#      earlier one died between init and store, instead of initialising twice);
#   2. wait until it auto-unseals through Transit and has a leader;
#   3. enable the Kubernetes auth method and a KV v2 engine at kv/ unless they exist, and point
#      auth/kubernetes/config at the cluster's API;
#   4. write each role in $ROLES_FILE: its policy and auth/kubernetes/role/<name>;
#   5. set Raft autopilot (cleanup_dead_servers, min_quorum = $HA_REPLICAS) and wait until all
#      $HA_REPLICAS peers are voters.
# Every write is skipped when the live value already matches, so a second run changes nothing.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${HA_INIT_ADDR:?HA_INIT_ADDR is required (the first pod)}"
: "${HA_ADDR:?HA_ADDR is required (the service)}"
: "${HA_REPLICAS:?HA_REPLICAS is required}"
HA_INIT_SECRET=${HA_INIT_SECRET:-vault-ha-init}
ROLES_FILE=${ROLES_FILE:-/config/roles.json}
KUBERNETES_HOST=${KUBERNETES_HOST:-https://kubernetes.default.svc}
RECOVERY_SHARES=${RECOVERY_SHARES:-5}
RECOVERY_THRESHOLD=${RECOVERY_THRESHOLD:-3}

# written WHAT: die unless the last write succeeded (Vault's error text names fields, never values).
written() {
  if [ "$HTTP_STATUS" != 204 ] && [ "$HTTP_STATUS" != 200 ]; then
    die "$1 failed (HTTP $HTTP_STATUS): $(json '(.errors // []) | join("; ")' 2>/dev/null | head -c 500)"
  fi
}

wait_for_api "$HA_INIT_ADDR"
initialized=$(json .initialized)
secret_get "$HA_INIT_SECRET"
init_status=$HTTP_STATUS
case $init_status in 200|404) ;; *) die "cannot read Secret $NAMESPACE/$HA_INIT_SECRET (HTTP $init_status)" ;; esac

if [ "$initialized" = false ]; then
  if [ "$init_status" = 200 ]; then
    die "the HA Vault is not initialised, but Secret $NAMESPACE/$HA_INIT_SECRET holds the root token of an" \
        "earlier one: its Raft storage was lost. Not initialising over it. Restore a Raft snapshot (README:" \
        "'HA Raft quorum lost'), or move the Secret aside (kubectl -n $NAMESPACE delete secret $HA_INIT_SECRET" \
        "after saving it) to start empty."
  fi
  log "initialising the HA Vault ($RECOVERY_SHARES recovery key shares, threshold $RECOVERY_THRESHOLD)"
  SHARES=$RECOVERY_SHARES THRESHOLD=$RECOVERY_THRESHOLD \
    jq -n '{recovery_shares: (env.SHARES | tonumber), recovery_threshold: (env.THRESHOLD | tonumber)}' \
    | vault PUT "$HA_INIT_ADDR" sys/init
  [ "$HTTP_STATUS" = 200 ] || die "sys/init failed (HTTP $HTTP_STATUS)"
  json '{root_token: .root_token, recovery_keys_base64: (.recovery_keys_base64 | join(","))}' > "$WORK/data"
  RESP_BODY=""
  if ! secret_store "$HA_INIT_SECRET" CREATE; then
    die "the HA Vault was initialised but its root token and recovery keys could not be stored in Secret" \
        "$NAMESPACE/$HA_INIT_SECRET; they are gone with this pod. Wipe the HA Vault (README: 'Bootstrap" \
        "interrupted') and re-run."
  fi
  log "root token and recovery keys stored in Secret $NAMESPACE/$HA_INIT_SECRET"
  secret_get "$HA_INIT_SECRET"
  [ "$HTTP_STATUS" = 200 ] || die "cannot read back Secret $NAMESPACE/$HA_INIT_SECRET (HTTP $HTTP_STATUS)"
elif [ "$init_status" = 404 ]; then
  die "the HA Vault is initialised but Secret $NAMESPACE/$HA_INIT_SECRET does not exist: an earlier bootstrap" \
      "stopped between sys/init and storing the root token, or the Secret was deleted. Refusing to go on" \
      "(nothing is initialised twice). Wipe the HA Vault if it holds nothing yet (README: 'Bootstrap" \
      "interrupted'), or recreate the Secret with a new root token (vault operator generate-root with the" \
      "recovery keys)."
fi
root=$(secret_value root_token)
[ -n "$root" ] || die "Secret $NAMESPACE/$HA_INIT_SECRET lacks root_token"
RESP_BODY=""

deadline=$((SECONDS + WAIT_SECONDS))
while :; do
  vault GET "$HA_INIT_ADDR" sys/seal-status
  if [ "$HTTP_STATUS" = 200 ] && [ "$(json .sealed)" = false ]; then break; fi
  [ "$SECONDS" -lt "$deadline" ] || die "the HA Vault did not auto-unseal through Transit within ${WAIT_SECONDS}s" \
      "(check the Transit Vault, the unsealer and Secret $SEAL_TOKEN_SECRET)"
  log "waiting for the HA Vault to auto-unseal (HTTP $HTTP_STATUS)"
  sleep "${POLL_SECONDS:-5}"
done
until vault GET "$HA_ADDR" sys/leader "$root" && [ "$HTTP_STATUS" = 200 ] && [ -n "$(json '.leader_address // ""')" ]; do
  [ "$SECONDS" -lt "$deadline" ] || die "the HA Vault elected no leader within ${WAIT_SECONDS}s"
  log "waiting for a leader (HTTP $HTTP_STATUS)"
  sleep "${POLL_SECONDS:-5}"
done
log "HA Vault unsealed; leader $(json .leader_address)"

vault GET "$HA_ADDR" sys/auth "$root"
if [ "$HTTP_STATUS" = 403 ]; then
  die "the root token in Secret $NAMESPACE/$HA_INIT_SECRET was refused (revoked?): generate a new one with the" \
      "recovery keys and store it there (README: 'Root token'), then run the bootstrap again"
fi
[ "$HTTP_STATUS" = 200 ] || die "cannot list auth methods (HTTP $HTTP_STATUS)"
if [ "$(json 'has("kubernetes/") or (.data // {} | has("kubernetes/"))')" != true ]; then
  jq -n '{type: "kubernetes", description: "service accounts of this cluster"}' \
    | vault POST "$HA_ADDR" sys/auth/kubernetes "$root"
  written "enabling the Kubernetes auth method"
  log "Kubernetes auth method enabled"
fi
vault GET "$HA_ADDR" auth/kubernetes/config "$root"
if [ "$HTTP_STATUS" != 200 ] || [ "$(json '.data.kubernetes_host // ""')" != "$KUBERNETES_HOST" ] \
    || [ "$(json '.data.kubernetes_ca_cert // ""')" != "$(cat "$K8S_CA_FILE")" ]; then
  # The cluster CA is this pod's own ServiceAccount CA. No reviewer JWT: Vault reviews login
  # tokens with its own ServiceAccount (the chart binds it to system:auth-delegator).
  HOST=$KUBERNETES_HOST jq -n --rawfile ca "$K8S_CA_FILE" '{kubernetes_host: env.HOST, kubernetes_ca_cert: $ca}' \
    | vault POST "$HA_ADDR" auth/kubernetes/config "$root"
  written "writing auth/kubernetes/config"
  log "auth/kubernetes/config points at $KUBERNETES_HOST"
fi

vault GET "$HA_ADDR" sys/mounts "$root"
[ "$HTTP_STATUS" = 200 ] || die "cannot list mounts (HTTP $HTTP_STATUS)"
if [ "$(json 'has("kv/") or (.data // {} | has("kv/"))')" != true ]; then
  jq -n '{type: "kv", options: {version: "2"}, description: "platform secrets (KV v2)"}' \
    | vault POST "$HA_ADDR" sys/mounts/kv "$root"
  written "enabling kv/"
  log "KV v2 enabled at kv/"
fi

count=0
if [ -s "$ROLES_FILE" ]; then count=$(jq 'length' < "$ROLES_FILE"); fi
for i in $(seq 0 $((count - 1))); do
  jq ".[$i]" < "$ROLES_FILE" > "$WORK/role"
  name=$(jq -r .name < "$WORK/role")
  policy_name=$(jq -r .policy_name < "$WORK/role")
  policy=$(jq -r .policy_hcl < "$WORK/role")
  vault GET "$HA_ADDR" "sys/policies/acl/$policy_name" "$root"
  if [ "$HTTP_STATUS" != 200 ] || [ "$(json '.data.policy // .policy // ""')" != "$policy" ]; then
    POLICY=$policy jq -n '{policy: env.POLICY}' | vault PUT "$HA_ADDR" "sys/policies/acl/$policy_name" "$root"
    written "writing policy $policy_name"
    log "policy $policy_name written"
  fi
  jq '{bound_service_account_names: .service_accounts, bound_service_account_namespaces: .namespaces,
       token_policies: [.policy_name], token_ttl: .token_ttl}' < "$WORK/role" > "$WORK/want"
  vault GET "$HA_ADDR" "auth/kubernetes/role/$name" "$root"
  same=false
  if [ "$HTTP_STATUS" = 200 ]; then
    same=$(json '.data' | jq --slurpfile want "$WORK/want" '
      def secs: if type == "number" then . else (tostring | capture("^(?<n>[0-9]+)(?<u>[smhd]?)$")
        | (.n | tonumber) * ({"": 1, s: 1, m: 60, h: 3600, d: 86400}[.u])) end;
      $want[0] as $w
      | (.bound_service_account_names | sort) == ($w.bound_service_account_names | sort)
        and (.bound_service_account_namespaces | sort) == ($w.bound_service_account_namespaces | sort)
        and (.token_policies | sort) == ($w.token_policies | sort)
        and ((.token_ttl // 0) | secs) == ($w.token_ttl | secs)')
  fi
  if [ "$same" != true ]; then
    vault POST "$HA_ADDR" "auth/kubernetes/role/$name" "$root" < "$WORK/want"
    written "writing auth/kubernetes/role/$name"
    log "role auth/kubernetes/role/$name written"
  fi
done

vault GET "$HA_ADDR" sys/storage/raft/autopilot/configuration "$root"
if [ "$HA_REPLICAS" -lt 3 ]; then
  log "autopilot: left at its defaults (dead-server cleanup needs min_quorum >= 3; this is a $HA_REPLICAS-node dev Vault)"
elif [ "$HTTP_STATUS" != 200 ] || [ "$(json '.data.cleanup_dead_servers')" != true ] \
    || [ "$(json '.data.min_quorum')" != "$HA_REPLICAS" ]; then
  N=$HA_REPLICAS jq -n '{cleanup_dead_servers: true, min_quorum: (env.N | tonumber),
      dead_server_last_contact_threshold: "24h"}' \
    | vault POST "$HA_ADDR" sys/storage/raft/autopilot/configuration "$root"
  written "writing the Raft autopilot configuration"
  log "autopilot: cleanup_dead_servers, min_quorum $HA_REPLICAS"
fi

while :; do
  vault GET "$HA_ADDR" sys/storage/raft/configuration "$root"
  if [ "$HTTP_STATUS" = 200 ]; then
    servers=$(json '.data.config.servers | length')
    voters=$(json '[.data.config.servers[] | select(.voter)] | length')
    if [ "$servers" = "$HA_REPLICAS" ] && [ "$voters" = "$HA_REPLICAS" ]; then break; fi
    log "Raft peers: $servers, voters: $voters (want $HA_REPLICAS): $(json '[.data.config.servers[] | "\(.node_id)=\(if .voter then "voter" else "non-voter" end)"] | join(" ")')"
  fi
  [ "$SECONDS" -lt "$deadline" ] || die "the HA Vault does not have $HA_REPLICAS voting Raft peers after ${WAIT_SECONDS}s"
  sleep "${POLL_SECONDS:-5}"
done
log "HA Vault ready: $HA_REPLICAS voters, kubernetes auth, kv/, $count role(s)"
