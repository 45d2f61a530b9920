# shellcheck shell=bash
# platform:k3s: Body of the api-ready step: wait, bounded, for the API endpoint.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

api_answers() {
  k3s kubectl --kubeconfig /etc/rancher/k3s/k3s.yaml --server "$API_URL" --request-timeout=5s \
    get --raw=/readyz >/dev/null 2>&1
}
wait_until "the API at $API_URL" "$READY_TIMEOUT" api_answers ||
  die "the API endpoint $API_URL does not answer: check the VIP (kube-vip pods in kube-system), DNS or load balancer"
log "the API answers at $API_URL"
finish
