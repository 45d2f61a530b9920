#!/usr/bin/env bash
# Bootstrap of the Transit Vault (the HA Vault's auto-unseal backend); idempotent, no human.
#
#   1. initialise it (one unseal key share) unless it is, and store at once the unseal key in
#      Secret $TRANSIT_UNSEAL_SECRET (which only the unsealer may read; this Job may only create
#      it) and the root token in Secret $TRANSIT_ROOT_SECRET (retried; a later run refuses loudly
#      if an earlier one died between init and store, instead of initialising twice);
#   2. unseal it with the key it just created, or, on later runs, wait for the unsealer;
#   3. enable the transit engine and the $SEAL_KEY_NAME key, write the $SEAL_POLICY_NAME policy
#      (encrypt/decrypt on that key only, plus the token's own lookup and renewal);
#   4. make sure the orphan, periodic, renewable seal token in Secret $SEAL_TOKEN_SECRET is valid
#      with time left: renew it, or re-issue it when it was revoked or expired.
# A second run against an initialised, unsealed Transit Vault only reads, unless the token
# needs renewal.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${TRANSIT_ADDR:?TRANSIT_ADDR is required}"
HA_INIT_SECRET=${HA_INIT_SECRET:-vault-ha-init}
unseal_key=""

wait_for_api "$TRANSIT_ADDR"
initialized=$(json .initialized)
secret_get "$TRANSIT_ROOT_SECRET"
root_status=$HTTP_STATUS
case $root_status in 200|404) ;; *) die "cannot read Secret $NAMESPACE/$TRANSIT_ROOT_SECRET (HTTP $root_status)" ;; esac

if [ "$initialized" = false ]; then
  if [ "$root_status" = 200 ]; then
    die "the Transit Vault is not initialised, but Secret $NAMESPACE/$TRANSIT_ROOT_SECRET belongs to an earlier one:" \
        "its storage was lost. Not initialising over it (the HA Vault's seal key lived there). Restore the Transit" \
        "volume from backup (README: 'Transit lost'), or, on a stack whose HA Vault holds nothing yet, delete the" \
        "Secrets $TRANSIT_ROOT_SECRET, $TRANSIT_UNSEAL_SECRET and $HA_INIT_SECRET and re-run."
  fi
  log "initialising the Transit Vault"
  jq -n '{secret_shares: 1, secret_threshold: 1}' | vault PUT "$TRANSIT_ADDR" sys/init
  [ "$HTTP_STATUS" = 200 ] || die "sys/init failed (HTTP $HTTP_STATUS)"
  json '{root_token: .root_token}' > "$WORK/root"
  json '{unseal_key: .keys_base64[0]}' > "$WORK/data"
  unseal_key=$(json '.keys_base64[0]')
  RESP_BODY=""
  if ! secret_store "$TRANSIT_UNSEAL_SECRET" CREATE || ! mv "$WORK/root" "$WORK/data" \
      || ! secret_store "$TRANSIT_ROOT_SECRET" CREATE; then
    die "the Transit Vault was initialised but its keys could not be stored in Secrets $NAMESPACE/$TRANSIT_UNSEAL_SECRET" \
        "and $NAMESPACE/$TRANSIT_ROOT_SECRET; they are gone with this pod. Wipe the Transit Vault (README:" \
        "'Bootstrap interrupted') and re-run."
  fi
  log "Transit keys stored in Secrets $NAMESPACE/$TRANSIT_UNSEAL_SECRET and $NAMESPACE/$TRANSIT_ROOT_SECRET"
  secret_get "$TRANSIT_ROOT_SECRET"
  [ "$HTTP_STATUS" = 200 ] || die "cannot read back Secret $NAMESPACE/$TRANSIT_ROOT_SECRET (HTTP $HTTP_STATUS)"
elif [ "$root_status" = 404 ]; then
  die "the Transit Vault is initialised but Secret $NAMESPACE/$TRANSIT_ROOT_SECRET does not exist: an earlier" \
      "bootstrap stopped between sys/init and storing the keys, or the Secret was deleted. Refusing to go on" \
      "(nothing is initialised twice). If Secret $HA_INIT_SECRET does not exist either, the HA Vault never" \
      "used this Transit: wipe it (README: 'Bootstrap interrupted') and re-run; otherwise restore the Secrets" \
      "from backup."
fi
root=$(secret_value root_token)
[ -n "$root" ] || die "Secret $NAMESPACE/$TRANSIT_ROOT_SECRET lacks root_token"
RESP_BODY=""

deadline=$((SECONDS + WAIT_SECONDS))
while :; do
  if [ -n "$unseal_key" ]; then
    if unseal_transit "$TRANSIT_ADDR" "$unseal_key"; then break; fi
  else
    vault GET "$TRANSIT_ADDR" sys/seal-status
    if [ "$HTTP_STATUS" = 200 ] && [ "$(json .sealed)" = false ]; then break; fi
    log "the Transit Vault is sealed: waiting for the unsealer (Deployment $UNSEALER_NAME)"
  fi
  [ "$SECONDS" -lt "$deadline" ] || die "the Transit Vault stayed sealed for ${WAIT_SECONDS}s (is the unsealer running?)"
  sleep "${POLL_SECONDS:-5}"
done
unseal_key=""

vault GET "$TRANSIT_ADDR" sys/mounts "$root"
[ "$HTTP_STATUS" = 200 ] || die "cannot list mounts (HTTP $HTTP_STATUS)"
if [ "$(json 'has("transit/") or (.data // {} | has("transit/"))')" != true ]; then
  jq -n '{type: "transit", description: "auto-unseal of the HA Vault"}' | vault POST "$TRANSIT_ADDR" sys/mounts/transit "$root"
  [ "$HTTP_STATUS" = 204 ] || [ "$HTTP_STATUS" = 200 ] || die "cannot enable the transit engine (HTTP $HTTP_STATUS)"
  log "transit engine enabled"
fi

vault GET "$TRANSIT_ADDR" "transit/keys/$SEAL_KEY_NAME" "$root"
if [ "$HTTP_STATUS" = 404 ]; then
  jq -n '{type: "aes256-gcm96"}' | vault POST "$TRANSIT_ADDR" "transit/keys/$SEAL_KEY_NAME" "$root"
  [ "$HTTP_STATUS" = 204 ] || [ "$HTTP_STATUS" = 200 ] || die "cannot create key $SEAL_KEY_NAME (HTTP $HTTP_STATUS)"
  log "transit key $SEAL_KEY_NAME created"
elif [ "$HTTP_STATUS" != 200 ]; then
  die "cannot read key $SEAL_KEY_NAME (HTTP $HTTP_STATUS)"
fi

policy=$(cat <<HCL
path "transit/encrypt/$SEAL_KEY_NAME" {
  capabilities = ["update"]
}
path "transit/decrypt/$SEAL_KEY_NAME" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
HCL
)
vault GET "$TRANSIT_ADDR" "sys/policies/acl/$SEAL_POLICY_NAME" "$root"
if [ "$HTTP_STATUS" != 200 ] || [ "$(json '.data.policy // .policy // ""')" != "$policy" ]; then
  POLICY=$policy jq -n '{policy: env.POLICY}' | vault PUT "$TRANSIT_ADDR" "sys/policies/acl/$SEAL_POLICY_NAME" "$root"
  [ "$HTTP_STATUS" = 204 ] || [ "$HTTP_STATUS" = 200 ] || die "cannot write policy $SEAL_POLICY_NAME (HTTP $HTTP_STATUS)"
  log "policy $SEAL_POLICY_NAME written"
fi

ensure_seal_token "$TRANSIT_ADDR" "$root"
log "Transit Vault ready: initialised, unsealed, key $SEAL_KEY_NAME, seal token $SEAL_TOKEN_ACTION"
