# shellcheck shell=bash
# platform:k3s: Body of an agent's prepare delete: the last step of an agent's removal (after its
# install step stopped the agent and its node step deleted the Node): uninstall K3s.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

UNINSTALL=/usr/local/bin/k3s-agent-uninstall.sh
if [ -x "$UNINSTALL" ]; then
  timeout 900 "$UNINSTALL" >&2 || die "$UNINSTALL failed on $NODE; check the host and re-run"
  changed "uninstalled K3s"
else
  log "K3s is not installed here: nothing to uninstall"
fi
rm -f /usr/local/bin/k3s-install.sh
rm -rf "$STATE_DIR"
finish
