# Shared by bootstrap-transit.sh, bootstrap-ha.sh and unsealer.sh (sourced, never run alone).
#
# Secrets never reach a command line, a log line or a file outside $WORK (an in-memory
# emptyDir in the pod): tokens go to curl as a header file (-H @file), request bodies on
# stdin, and values into jq through the environment or stdin. Responses land in $WORK/resp
# and are read with jq; nothing here prints a response body.
# shellcheck shell=bash

set -euo pipefail
shopt -s lastpipe  # `jq ... | vault PUT ...` runs `vault` in this shell, so HTTP_STATUS survives
umask 077

: "${NAMESPACE:?NAMESPACE is required}"
: "${VAULT_CACERT:?VAULT_CACERT is required (the CA of the Vault listeners)}"
K8S_API=${K8S_API:-https://kubernetes.default.svc}
K8S_TOKEN_FILE=${K8S_TOKEN_FILE:-/var/run/secrets/kubernetes.io/serviceaccount/token}
K8S_CA_FILE=${K8S_CA_FILE:-/var/run/secrets/kubernetes.io/serviceaccount/ca.crt}
TRANSIT_UNSEAL_SECRET=${TRANSIT_UNSEAL_SECRET:-vault-transit-unseal}
TRANSIT_ROOT_SECRET=${TRANSIT_ROOT_SECRET:-vault-transit-root}
UNSEALER_NAME=${UNSEALER_NAME:-vault-unsealer}
SEAL_TOKEN_SECRET=${SEAL_TOKEN_SECRET:-vault-transit-seal-token}
SEAL_KEY_NAME=${SEAL_KEY_NAME:-autounseal}
SEAL_POLICY_NAME=${SEAL_POLICY_NAME:-autounseal}
SEAL_TOKEN_PERIOD=${SEAL_TOKEN_PERIOD:-768h}
# Renew the seal token when less than this many seconds are left (the period is 32 days).
SEAL_TOKEN_RENEW_BELOW=${SEAL_TOKEN_RENEW_BELOW:-1382400}
WAIT_SECONDS=${WAIT_SECONDS:-900}
STORE_ATTEMPTS=${STORE_ATTEMPTS:-20}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vault-bootstrap.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
HTTP_STATUS=000
RESP_BODY=""

log() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# _curl AUTH_HEADER_LINE METHOD URL [CACERT]: request body on stdin for writes; sets
# HTTP_STATUS and RESP_BODY. The header line (it holds a token) is written to a 0600 file.
_curl() {
  local header=$1 method=$2 url=$3 cacert=${4:-$VAULT_CACERT}
  local -a args=(--silent --show-error --max-time 20 --cacert "$cacert" -X "$method" -o "$WORK/resp"
                 -w '%{http_code}' -H 'Content-Type: application/json')
  : > "$WORK/resp"
  if [ -n "$header" ]; then
    printf '%s\n' "$header" > "$WORK/hdr"
    args+=(-H "@$WORK/hdr")
  fi
  if [ "$method" != GET ] && [ "$method" != DELETE ]; then
    args+=(--data-binary @-)
  fi
  HTTP_STATUS=$(curl "${args[@]}" "$url" 2>"$WORK/err") || HTTP_STATUS=000
  rm -f "$WORK/hdr"
  RESP_BODY=$(cat "$WORK/resp")
  if [ "$HTTP_STATUS" = 000 ]; then log "no answer from ${url%%\?*}: $(head -c 300 "$WORK/err")"; fi
  return 0
}

# vault METHOD ADDR PATH [TOKEN] (body on stdin for writes)
vault() {
  local token=${4-}
  _curl "${token:+X-Vault-Token: $token}" "$1" "$2/v1/$3"
}

# k8s METHOD PATH (body on stdin for writes), with the pod's ServiceAccount token.
k8s() {
  local token
  token=$(cat "$K8S_TOKEN_FILE")
  _curl "Authorization: Bearer $token" "$1" "$K8S_API$2" "$K8S_CA_FILE"
}

# json FILTER: jq over the last response body (read from stdin, never from argv).
json() { printf '%s' "$RESP_BODY" | jq -r "$1"; }

# secret_get NAME: HTTP_STATUS 200 (RESP_BODY holds it) or 404.
secret_get() { k8s GET "/api/v1/namespaces/$NAMESPACE/secrets/$1"; }

# secret_value KEY: one data field of the Secret in RESP_BODY, decoded (empty if absent).
secret_value() { printf '%s' "$RESP_BODY" | jq -r --arg k "$1" '.data[$k] // empty' | base64 -d; }

# secret_store NAME CREATE|REPLACE: write the stringData object in $WORK/data as Secret NAME.
# Retried, because the data may be keys that exist nowhere else yet.
secret_store() {
  local name=$1 mode=$2 attempt
  if ! jq -e 'length > 0 and all(.[]; type == "string" and length > 0)' < "$WORK/data" > /dev/null; then
    rm -f "$WORK/data"
    return 1
  fi
  jq --arg name "$name" --arg ns "$NAMESPACE" '{apiVersion: "v1", kind: "Secret", type: "Opaque",
      metadata: {name: $name, namespace: $ns, labels: {"app.kubernetes.io/managed-by": "vault-bootstrap"}},
      stringData: .}' < "$WORK/data" > "$WORK/body"
  for attempt in $(seq 1 "$STORE_ATTEMPTS"); do
    if [ "$mode" = CREATE ]; then
      k8s POST "/api/v1/namespaces/$NAMESPACE/secrets" < "$WORK/body"
    else
      k8s PUT "/api/v1/namespaces/$NAMESPACE/secrets/$name" < "$WORK/body"
    fi
    case $HTTP_STATUS in
      200|201) rm -f "$WORK/body" "$WORK/data"; return 0 ;;
      409) rm -f "$WORK/body" "$WORK/data"; die "Secret $NAMESPACE/$name appeared while this run was writing it" ;;
    esac
    log "storing Secret $NAMESPACE/$name failed (HTTP $HTTP_STATUS, attempt $attempt/$STORE_ATTEMPTS)"
    sleep "${STORE_RETRY_SECONDS:-3}"
  done
  rm -f "$WORK/body" "$WORK/data"
  return 1
}

# wait_for_api ADDR: until sys/seal-status answers (a sealed or uninitialised Vault does).
wait_for_api() {
  local addr=$1 deadline=$((SECONDS + WAIT_SECONDS))
  until vault GET "$addr" sys/seal-status && [ "$HTTP_STATUS" = 200 ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "$addr did not answer sys/seal-status within ${WAIT_SECONDS}s"
    log "waiting for $addr (HTTP $HTTP_STATUS)"
    sleep "${POLL_SECONDS:-5}"
  done
}

# unseal_transit ADDR KEY: submit the unseal key if ADDR is initialised and sealed (then UNSEALED=1).
UNSEALED=0
# shellcheck disable=SC2034  # UNSEALED is read by unsealer.sh
unseal_transit() {
  local addr=$1 key=$2
  vault GET "$addr" sys/seal-status
  [ "$HTTP_STATUS" = 200 ] || { log "$addr: no seal status (HTTP $HTTP_STATUS)"; return 1; }
  if [ "$(json .initialized)" != true ] || [ "$(json .sealed)" != true ]; then return 0; fi
  KEY=$key jq -n '{key: env.KEY}' | vault PUT "$addr" sys/unseal
  [ "$HTTP_STATUS" = 200 ] || { log "$addr: unseal failed (HTTP $HTTP_STATUS)"; return 1; }
  if [ "$(json .sealed)" = false ]; then log "$addr: unsealed"; UNSEALED=1; else log "$addr: still sealed"; return 1; fi
}

# ensure_seal_token ADDR ROOT: the HA Vault's transit token exists, is valid and has time left.
# Renewed when its TTL is below SEAL_TOKEN_RENEW_BELOW; re-issued (and the Secret replaced) when
# it is missing, revoked or expired. Sets SEAL_TOKEN_ACTION to kept, renewed, issued or reissued.
ensure_seal_token() {
  local addr=$1 root=$2 token="" ttl mode=CREATE
  SEAL_TOKEN_ACTION=kept
  secret_get "$SEAL_TOKEN_SECRET"
  case $HTTP_STATUS in
    200) token=$(secret_value token); mode=REPLACE ;;
    404) ;;
    *) die "cannot read Secret $NAMESPACE/$SEAL_TOKEN_SECRET (HTTP $HTTP_STATUS)" ;;
  esac
  if [ -n "$token" ]; then
    TOKEN=$token jq -n '{token: env.TOKEN}' | vault POST "$addr" auth/token/lookup "$root"
    if [ "$HTTP_STATUS" = 200 ]; then
      ttl=$(json '.data.ttl // 0')
      if [ "$(json '.data.renewable // false')" = true ] && [ "$ttl" -ge "$SEAL_TOKEN_RENEW_BELOW" ]; then
        log "seal token valid (ttl ${ttl}s)"
        return 0
      fi
      if [ "$(json '.data.renewable // false')" = true ]; then
        TOKEN=$token PERIOD=$SEAL_TOKEN_PERIOD jq -n '{token: env.TOKEN, increment: env.PERIOD}' \
          | vault POST "$addr" auth/token/renew "$root"
        if [ "$HTTP_STATUS" = 200 ]; then
          SEAL_TOKEN_ACTION=renewed
          log "seal token renewed (ttl was ${ttl}s, now $(json '.auth.lease_duration')s)"
          return 0
        fi
      fi
      log "seal token cannot be renewed (HTTP $HTTP_STATUS); issuing a new one"
    elif [ "$HTTP_STATUS" = 403 ] || [ "$HTTP_STATUS" = 400 ]; then
      log "seal token is revoked or expired; issuing a new one"
    else
      die "cannot look up the seal token (HTTP $HTTP_STATUS)"
    fi
  fi
  PERIOD=$SEAL_TOKEN_PERIOD POLICY=$SEAL_POLICY_NAME jq -n '{policies: [env.POLICY], no_parent: true,
      no_default_policy: true, renewable: true, period: env.PERIOD, display_name: "vault-ha-autounseal",
      meta: {purpose: "vault-ha transit seal"}}' | vault POST "$addr" auth/token/create "$root"
  [ "$HTTP_STATUS" = 200 ] || die "cannot create the seal token (HTTP $HTTP_STATUS)"
  json '{token: .auth.client_token}' > "$WORK/data"
  secret_store "$SEAL_TOKEN_SECRET" "$mode" || die "cannot store Secret $NAMESPACE/$SEAL_TOKEN_SECRET"
  if [ "$mode" = CREATE ]; then SEAL_TOKEN_ACTION=issued; else SEAL_TOKEN_ACTION=reissued; fi
  log "seal token $SEAL_TOKEN_ACTION (orphan, periodic $SEAL_TOKEN_PERIOD, policy $SEAL_POLICY_NAME)"
}
