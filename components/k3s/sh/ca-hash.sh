# shellcheck shell=bash
# platform:k3s: Body of the ca-hash step (on the first server, after it installed): prints the
# sha256 of the cluster CA certificate (PEM, as on disk), for the secure join token form.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

ca=/var/lib/rancher/k3s/server/tls/server-ca.crt
[ -s "$ca" ] || die "$ca is missing on the first server: is K3s running there?"
hash=$(sha256sum "$ca" | cut -d' ' -f1)
[[ $hash =~ ^[0-9a-f]{64}$ ]] || die "could not hash $ca"
log "cluster CA sha256 $hash"
printf '%s\n' "$hash"
finish
