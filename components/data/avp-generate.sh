#!/usr/bin/env bash
# The avp-helm / avp-kustomize config-management plugin: render, decode, inject.
#
#   helm dependency update + helm template   (mode "helm": a directory with Chart.yaml)
#   kustomize build --enable-helm            (mode "kustomize": a directory with kustomization.yaml)
#     -> URL-decode the <path:...> placeholders the renderer escaped
#     -> argocd-vault-plugin generate -      (reads Vault through the repo-server's Kubernetes auth role)
#
# Argo CD runs it in the application's directory with ARGOCD_APP_NAME, ARGOCD_APP_NAMESPACE and
# KUBE_VERSION set; values for a Helm app come through the Application's plugin env as HELM_ARGS
# (Argo CD exposes it as ARGOCD_ENV_HELM_ARGS), since the built-in Helm options cannot be combined
# with a plugin. Installed by components/argocd.py; tested in tests/argocd/test_plugin_script.py.
set -euo pipefail

mode="${1:-auto}"

fail() {
  printf 'avp-generate: %s\n' "$*" >&2
  exit 1
}

detect() {
  if [[ -f Chart.yaml && -f kustomization.yaml ]]; then
    fail "both Chart.yaml and kustomization.yaml in $(pwd); keep exactly one"
  elif [[ -f Chart.yaml ]]; then
    echo helm
  elif [[ -f kustomization.yaml ]]; then
    echo kustomize
  else
    fail "neither Chart.yaml nor kustomization.yaml in $(pwd)"
  fi
}

render_helm() {
  local -a extra=()
  # Split HELM_ARGS on whitespace only: no globbing, no command substitution.
  read -r -a extra <<<"${ARGOCD_ENV_HELM_ARGS:-}"
  if [[ -n "${KUBE_VERSION:-}" ]]; then
    extra=(--kube-version "$KUBE_VERSION" "${extra[@]}")
  fi
  if grep -q '^dependencies:' Chart.yaml; then
    helm dependency update >&2
  fi
  helm template "${ARGOCD_APP_NAME:?}" . \
    --namespace "${ARGOCD_APP_NAMESPACE:?}" \
    --include-crds \
    "${extra[@]}"
}

render_kustomize() {
  kustomize build --enable-helm .
}

# Renderers escape the angle brackets and separators of <path:kv/data/x#key>: Helm's URL
# encoding gives %3Cpath%3Akv%2Fdata%2Fx%23key%3E, Go's JSON encoding \u003cpath:...\u003e.
# Only placeholders are decoded; every other byte of the manifest passes through unchanged.
decode_placeholders() {
  sed -E \
    -e 's/\\u003cpath:([^\\[:space:]]*)\\u003e/<path:\1>/g' \
    -e ':open' \
    -e 's/%3Cpath%3A((%([0-24-9A-Fa-f][0-9A-Fa-f]|3[0-9A-Da-df])|[^%<>[:space:]"'"'"'])*)%3E/<path:\1>/I' \
    -e 't open' \
    -e ':inner' \
    -e 's/(<path:[^>]*)%2F/\1\//I' \
    -e 's/(<path:[^>]*)%23/\1#/I' \
    -e 's/(<path:[^>]*)%3A/\1:/I' \
    -e 's/(<path:[^>]*)%2C/\1,/I' \
    -e 's/(<path:[^>]*)%7C/\1|/I' \
    -e 's/(<path:[^>]*)%20/\1 /I' \
    -e 's/(<path:[^>]*)%2B/\1+/I' \
    -e 't inner'
}

if [[ "$mode" == auto ]]; then
  mode="$(detect)"
fi
case "$mode" in
  helm) render_helm ;;
  kustomize) render_kustomize ;;
  *) fail "unknown mode '$mode' (expected helm, kustomize or auto)" ;;
esac | decode_placeholders | argocd-vault-plugin generate -
