# shellcheck shell=bash
# platform:k3s: Body of the kubeconfig step: print the admin kubeconfig.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

log "reading the admin kubeconfig (${GENERATION})"
[ -s /etc/rancher/k3s/k3s.yaml ] || die "/etc/rancher/k3s/k3s.yaml is missing on the first server"
cat /etc/rancher/k3s/k3s.yaml
