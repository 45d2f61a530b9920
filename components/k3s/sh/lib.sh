# shellcheck shell=bash
# platform:k3s: Shared library of every script: logging, change counting, idempotent file writes, bounded waits.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

log() { printf '[platform:k3s %s] %s\n' "${NODE:-?}" "$*" >&2; }
die() { printf '[platform:k3s %s] ERROR: %s\n' "${NODE:-?}" "$*" >&2; exit 1; }
CHANGES=0
changed() { CHANGES=$((CHANGES + 1)); log "changed: $*"; }
finish() { log "done: ${CHANGES} change(s)"; }

TMP_FILES=()
cleanup() {
  local f
  for f in ${TMP_FILES[@]+"${TMP_FILES[@]}"}; do rm -f -- "$f"; done
}
trap cleanup EXIT

# tmp_beside DEST: sets TMP to a new empty file (mode 0600) in DEST's directory, creating it.
tmp_beside() {
  local dir
  dir=$(dirname -- "$1")
  if [ ! -d "$dir" ]; then
    install -d -m 0755 -- "$dir"
    changed "created $dir"
  fi
  TMP=$(mktemp -- "$dir/.platform.XXXXXX")
  TMP_FILES+=("$TMP")
}

# commit_file DEST MODE: move TMP over DEST unless content and mode are already the same.
commit_file() {
  chmod "$2" -- "$TMP"
  if [ -f "$1" ] && cmp -s -- "$TMP" "$1" && [ "$(stat -c '%a' -- "$1")" = "${2#0}" ]; then
    rm -f -- "$TMP"
    return 0
  fi
  mv -f -- "$TMP" "$1"
  changed "wrote $1"
}

# put_file DEST MODE < content
put_file() {
  tmp_beside "$1"
  cat >"$TMP"
  commit_file "$1" "$2"
}

# put_text DEST MODE TEXT: TEXT is written by the printf builtin, never a process argument.
put_text() {
  tmp_beside "$1"
  printf '%s' "$3" >"$TMP"
  commit_file "$1" "$2"
}

remove_file() {
  if [ -e "$1" ]; then
    rm -f -- "$1"
    changed "removed $1"
  fi
}

in_list() {
  local want=$1 item
  shift
  for item in "$@"; do
    if [ "$item" = "$want" ]; then return 0; fi
  done
  return 1
}

# wait_until DESCRIPTION TIMEOUT COMMAND...: poll COMMAND until it succeeds; fail after TIMEOUT s.
wait_until() {
  local what=$1 timeout=$2 deadline
  shift 2
  deadline=$((SECONDS + timeout))
  log "waiting (at most ${timeout}s) for ${what}"
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "gave up waiting for ${what} after ${timeout}s"
      return 1
    fi
    sleep "$POLL"
  done
}

installed_version() {
  local out
  if [ -x /usr/local/bin/k3s ]; then
    out=$(/usr/local/bin/k3s --version 2>/dev/null || true)
    out=${out#k3s version }
    printf '%s\n' "${out%%[[:space:]]*}"
  fi
}

kubectl_local() { k3s kubectl --kubeconfig /etc/rancher/k3s/k3s.yaml --request-timeout=10s "$@"; }

api_local_ready() {
  [ -r /etc/rancher/k3s/k3s.yaml ] && kubectl_local get --raw=/readyz >/dev/null 2>&1
}

# etcd_members_json HOST: etcd's member list (asked at HOST:2379 with this server's etcd client
# certificate) as JSON, or nothing when it cannot be read.
etcd_members_json() {
  local tls=/var/lib/rancher/k3s/server/tls/etcd
  command -v curl >/dev/null 2>&1 || return 0
  curl -s --connect-timeout 3 --max-time 10 --cacert "$tls/server-ca.crt" --cert "$tls/client.crt" \
    --key "$tls/client.key" -X POST -d '{}' "https://$1:2379/v3/cluster/member/list" 2>/dev/null || true
}

# unhealthy_servers [ETCD_HOST]: prints each other server that is an etcd member (per the member list
# at ETCD_HOST, default this server) whose API does not answer /readyz. K3s's API server on each server
# talks to that server's own etcd member, so /readyz there (it includes the etcd checks) answers for the
# member too. A configured server that is not a member (not joined yet, or already removed) is skipped;
# when the member list cannot be read, every configured server is checked.
unhealthy_servers() {
  local url members host
  [ -r /etc/rancher/k3s/k3s.yaml ] || return 0
  members=$(etcd_members_json "${1:-127.0.0.1}")
  for url in ${OTHER_SERVER_URLS[@]+"${OTHER_SERVER_URLS[@]}"}; do
    host=$(url_hostport "$url")
    if [[ $members == *'"members"'* && $members != *"//$host:2380"* ]]; then continue; fi
    k3s kubectl --kubeconfig /etc/rancher/k3s/k3s.yaml --server "$url" --request-timeout=5s \
      get --raw=/readyz >/dev/null 2>&1 || printf '%s\n' "$url"
  done
}

url_hostport() {
  local host=${1#https://}
  printf '%s\n' "${host%:*}"
}

# health_gate WHAT: before a disruptive step (WHAT) on this server, every other server and its
# etcd member must be healthy; one already down means this step would be a second disruption.
health_gate() {
  local down
  down=$(unhealthy_servers 127.0.0.1)
  if [ -n "$down" ]; then
    die "refusing to $1 on $NODE: the server(s) at ${down//$'\n'/ } do not answer /readyz (an etcd member is" \
      "already down or unhealthy; another disruption could lose quorum). Bring it back (or mark a dead server" \
      "'gone: true'), then re-run; nothing was changed on $NODE"
  fi
  log "health gate passed: every other server answers /readyz"
}

# etcd_lists_member NAME PEER HOST: 0 when etcd (asked at HOST:2379 with this server's etcd client
# certificate) still lists node NAME, 1 when not, 2 when it cannot tell. K3s names a member
# "<node name>-<8 hex>"; its peer URL carries the node's address (PEER, bracketed when IPv6).
etcd_lists_member() {
  local tls=/var/lib/rancher/k3s/server/tls/etcd out
  out=$(curl -s --connect-timeout 3 --max-time 10 --cacert "$tls/server-ca.crt" --cert "$tls/client.crt" \
    --key "$tls/client.key" -X POST -d '{}' "https://$3:2379/v3/cluster/member/list" 2>/dev/null) || return 2
  [[ $out == *'"members"'* ]] || return 2
  if [[ $out =~ \"name\":\"${1}-[0-9a-f]{8}\" || $out == *"//$2:2380"* ]]; then return 0; fi
  return 1
}

etcd_member_gone() {
  local rc=0
  etcd_lists_member "$@" || rc=$?
  [ "$rc" -eq 1 ]
}

# snapshot_before NAME WHAT: an on-demand etcd snapshot before WHAT (K3s also uploads it to S3 when
# etcd-s3 is configured), copied to SNAPSHOT_DIR, outside K3s's data dir, so an uninstall keeps it.
# The newest SNAPSHOT_KEEP copies are kept.
snapshot_before() {
  local src=/var/lib/rancher/k3s/server/db/snapshots f newest=""
  log "taking the etcd snapshot $1 before $2"
  k3s etcd-snapshot save --name "$1" >&2 ||
    die "the etcd snapshot before $2 failed, so nothing was changed on $NODE; fix it (disk space?) and re-run"
  for f in "$src/$1"-*; do
    if [ -f "$f" ] && { [ -z "$newest" ] || [ "$f" -nt "$newest" ]; }; then newest=$f; fi
  done
  [ -n "$newest" ] || die "K3s reported the snapshot $1 but it is not in $src"
  install -d -m 0700 "$SNAPSHOT_DIR"
  install -p -m 0600 "$newest" "$SNAPSHOT_DIR/${newest##*/}"
  changed "etcd snapshot $SNAPSHOT_DIR/${newest##*/}"
  find "$SNAPSHOT_DIR" -maxdepth 1 -type f -name 'pre-*' -printf '%T@ %p\n' | sort -rn |
    tail -n +"$((SNAPSHOT_KEEP + 1))" | cut -d' ' -f2- | while IFS= read -r old; do
    if [ -n "$old" ]; then rm -f -- "$old"; fi
  done
}

# refuse_second_bootstrap: a fresh first server must never start a second cluster next to a live one.
refuse_second_bootstrap() {
  local url answer
  if ! command -v curl >/dev/null 2>&1; then
    log "WARNING: curl is missing; cannot check the other servers for a running cluster"
    return 0
  fi
  for url in ${OTHER_SERVER_URLS[@]+"${OTHER_SERVER_URLS[@]}"}; do
    answer=$(curl -ks --connect-timeout 3 --max-time 5 "$url/ping" 2>/dev/null || true)
    if [ "$answer" = pong ]; then
      die "$url already runs K3s but the first server ${NODE} has none. The first server in the" \
        "stack must be an existing member (cluster-init on it would start a separate cluster):" \
        "put an existing server first in platform:nodes."
    fi
  done
}
