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
if [ "$KUBE_VIP" != true ]; then
  # No VIP: every server's install removed the kube-vip manifest, but K3s never deletes what a removed
  # manifest created, so kube-vip (and its ARP announcements of the old VIP) would keep running.
  selector=app.kubernetes.io/name=kube-vip,app.kubernetes.io/managed-by=platform
  for kinds in "daemonset,serviceaccount -n kube-system" "clusterrole,clusterrolebinding"; do
    read -r -a what <<<"$kinds"
    out=$(kubectl_local delete "${what[@]}" -l "$selector" --ignore-not-found 2>&1) ||
      die "could not delete kube-vip's ${what[0]} objects: $out"
    if [[ $out == *deleted* ]]; then changed "kube-vip: $out"; fi
  done
  out=$(kubectl_local delete addons.k3s.cattle.io platform-kube-vip -n kube-system --ignore-not-found 2>&1) ||
    die "could not delete K3s's Addon object for the kube-vip manifest: $out"
  if [[ $out == *deleted* ]]; then changed "kube-vip: $out"; fi
fi
finish
