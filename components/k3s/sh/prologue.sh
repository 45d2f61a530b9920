# shellcheck shell=bash
# platform:k3s: Prologue of every script: bash only, strict mode, re-exec through sudo -n, umask, PATH.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---
if [ -z "${BASH_VERSION:-}" ]; then
  echo "platform:k3s: this step needs bash as the SSH user's shell" >&2
  exit 2
fi
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  if [ -n "${BASH_EXECUTION_STRING:-}" ] && command -v sudo >/dev/null 2>&1; then
    exec sudo -n -- bash -c "$BASH_EXECUTION_STRING"
  fi
  echo "platform:k3s: must run as root (or as a user with passwordless sudo)" >&2
  exit 2
fi
umask 077
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
