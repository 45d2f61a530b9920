# shellcheck shell=bash
# platform:k3s: Version and removal rules, the bash twins of components/k3s/upgrade.py (appended to lib.sh).
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

# version_problem OLD NEW: prints why OLD -> NEW is refused (same rule as upgrade.py), or nothing.
version_problem() {
  local old=$1 new=$2 re='^v([0-9]+)\.([0-9]+)\.([0-9]+)\+k3s([0-9]+)$'
  local o1 o2 o3 o4 n1 n2 n3 n4
  if ! [[ $old =~ $re ]]; then printf 'cannot parse the installed version %s\n' "$old"; return 0; fi
  o1=${BASH_REMATCH[1]} o2=${BASH_REMATCH[2]} o3=${BASH_REMATCH[3]} o4=${BASH_REMATCH[4]}
  if ! [[ $new =~ $re ]]; then printf 'cannot parse the wanted version %s\n' "$new"; return 0; fi
  n1=${BASH_REMATCH[1]} n2=${BASH_REMATCH[2]} n3=${BASH_REMATCH[3]} n4=${BASH_REMATCH[4]}
  if [ "$old" = "$new" ]; then return 0; fi
  if [ "$((10#$n1))" -ne "$((10#$o1))" ]; then
    printf 'changing the major version (%s -> %s) is not supported\n' "$old" "$new"; return 0
  fi
  local ok=0
  if [ "$((10#$n2))" -ne "$((10#$o2))" ]; then [ "$((10#$n2))" -gt "$((10#$o2))" ] && ok=1
  elif [ "$((10#$n3))" -ne "$((10#$o3))" ]; then [ "$((10#$n3))" -gt "$((10#$o3))" ] && ok=1
  elif [ "$((10#$n4))" -gt "$((10#$o4))" ]; then ok=1
  fi
  if [ "$ok" -eq 0 ]; then
    printf '%s %s\n' "downgrade from $old to $new refused: Kubernetes and etcd data cannot be downgraded;" \
      "restore an etcd snapshot taken on $new instead"
    return 0
  fi
  if [ "$((10#$n2))" -gt "$((10#$o2 + 1))" ]; then
    printf '%s %s\n' "upgrade from $old to $new skips minor version(s) refused:" \
      "upgrade one minor version at a time (next: the latest v$((10#$o1)).$((10#$o2 + 1)).x+k3sN)"
  fi
  return 0
}

# removal_problem TOTAL REMOVED...: prints why removing REMOVED of TOTAL live servers is refused, or nothing.
removal_problem() {
  local total=$1; shift
  local removed=$#
  if [ $((2 * removed)) -gt "$total" ]; then
    local keep=$(((total - 1) / 2)) names
    names=$(printf '%s, ' "$@")
    printf '%s %s\n' "removing $removed of $total servers at once (${names%, }) refused:" \
      "that is a majority of the etcd members; remove at most $keep per update"
  fi
  return 0
}
