#!/bin/sh
# MetalLB webhook gate: retry a server-side dry-run create of $PROBE (an always-valid
# L2Advertisement) until the validating webhook answers, for at most $WAIT_SECONDS.
# POSIX sh: it runs under the busybox shell of the rancher/k3s image (components/versions.py).
set -u
deadline=$(( $(date +%s) + WAIT_SECONDS ))
until out=$(printf '%s' "$PROBE" | kubectl create --dry-run=server -o name -f - 2>&1); do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "the MetalLB webhook did not answer within ${WAIT_SECONDS}s: $out" >&2
    exit 1
  fi
  echo "waiting for the MetalLB webhook: $out"
  sleep 5
done
echo "the MetalLB webhook answers: $out"
