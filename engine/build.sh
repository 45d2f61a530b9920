#!/usr/bin/env bash
# Builds the real-engine tier from Go modules, once, into a cache outside the repository:
#   ${PLATFORM_ENGINE_DIR:-$HOME/.cache/platform-engine}/<hash of the pins>/
# and is a no-op when that build is complete. Each binary is built in a small wrapper module
# generated here (never committed), with progress and its duration printed per binary.
# A binary whose module the Go module proxy does not serve is recorded as `unavailable` in
# status.tsv (with the reason) instead of failing the build: tests that need it skip and say so.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
pins="$here/pins.env"
# shellcheck source=pins.env
source "$pins"

root=${PLATFORM_ENGINE_DIR:-$HOME/.cache/platform-engine}
hash=$(sha256sum < "$pins" | cut -c1-16)  # bump ENGINE_BUILD_REVISION in pins.env when this script changes
out="$root/$hash"
bin="$out/bin"
status="$out/status.tsv"

if [ -f "$out/.complete" ] && [ "${FORCE:-}" != 1 ]; then
  echo "engine: up to date in $out"
  exit 0
fi
mkdir -p "$bin" "$out/src" "$out/pulumi-home"
: > "$status"
export GOFLAGS=-mod=mod CGO_ENABLED=0

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$status"; }

served() {  # served MODULE@VERSION: does the Go module proxy serve it? (fails fast on a refusal)
  (cd "$out/src" && timeout 120 go list -m "$1" >/dev/null 2>"$out/src/.served.err")
}

step() {  # step NAME FUNCTION: run one build with its duration, record the result
  local name=$1 fn=$2 start rc
  start=$(date +%s)
  echo "engine: building $name ..."
  rc=0
  # In the background so that `set -e` holds inside the step (it is off in a `||` list).
  "$fn" > "$out/src/$name.log" 2>&1 &
  wait $! || rc=$?
  local took=$(( $(date +%s) - start ))
  if [ "$rc" = 0 ]; then
    echo "engine: $name built in ${took}s"
    record "$name" built "$took" ""
  elif [ "$rc" = 42 ]; then
    local why
    why=$(tr '\n\t' '  ' < "$out/src/$name.log" | cut -c1-300)
    echo "engine: $name UNAVAILABLE: $why"
    record "$name" unavailable "$took" "$why"
  else
    echo "engine: $name FAILED after ${took}s; last lines of $out/src/$name.log:" >&2
    tail -20 "$out/src/$name.log" >&2
    record "$name" failed "$took" "see $out/src/$name.log"
    return 1
  fi
}

build_pulumi() {
  local src="$out/src/pulumi" clip_mod clip_ver
  clip_mod=${PULUMI_CLIPBOARD_REPLACE%@*}
  clip_ver=${PULUMI_CLIPBOARD_REPLACE#*@}
  served "github.com/pulumi/pulumi/pkg/v3@$PULUMI_PKG_VERSION" || { cat "$out/src/.served.err"; return 42; }
  mkdir -p "$src" && cd "$src"
  cat > go.mod <<MOD
module platform.local/engine/pulumi

go 1.26

require (
	github.com/pulumi/pulumi/pkg/v3 $PULUMI_PKG_VERSION
	github.com/pulumi/pulumi/sdk/v3 $PULUMI_SDK_VERSION
)

replace github.com/atotto/clipboard => $clip_mod $clip_ver
MOD
  go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_PKG_VERSION"
  go build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_PKG_VERSION" \
    -o "$bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  # The Python shims (exec wrapper, dynamic-provider launcher) ship in the sdk/v3 module.
  local sdkdir
  sdkdir=$(go list -m -f '{{.Dir}}' "github.com/pulumi/pulumi/sdk/v3")
  install -m 0755 "$sdkdir/python/cmd/pulumi-language-python-exec" "$bin/"
  install -m 0755 "$sdkdir/python/dist/pulumi-resource-pulumi-python" "$bin/"
  "$bin/pulumi" version
}

build_language_python() {
  local mod=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
  if [ -z "$PULUMI_LANGUAGE_PYTHON_VERSION" ]; then
    echo "the Go module proxy serves no version of $mod (it has no tags and the proxy refuses every"
    echo "pseudo-version of the release commits tried); without it no Python program runs under the CLI"
    return 42
  fi
  served "$mod@$PULUMI_LANGUAGE_PYTHON_VERSION" || { cat "$out/src/.served.err"; return 42; }
  GOBIN="$bin" go install -trimpath \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_SDK_VERSION" \
    "$mod@$PULUMI_LANGUAGE_PYTHON_VERSION"
}

provider_unless_served() {  # provider MODULE VERSION: refuse early when the proxy does not serve it
  served "$1@$2" || { echo "$1@$2 is not served by the Go module proxy:"; cat "$out/src/.served.err"; return 42; }
  echo "$1@$2 is served, but building it is not wired yet (schema-embed generation)"
  return 42
}
build_provider_kubernetes() { provider_unless_served github.com/pulumi/pulumi-kubernetes/provider/v4 "$PROVIDER_KUBERNETES_VERSION"; }
build_provider_command() { provider_unless_served github.com/pulumi/pulumi-command/provider "$PROVIDER_COMMAND_VERSION"; }
build_provider_random() { provider_unless_served github.com/pulumi/pulumi-random/provider/v4 "$PROVIDER_RANDOM_VERSION"; }

build_kubernetes() {
  local src="$out/src/kubernetes" minor
  served "k8s.io/kubernetes@$KUBERNETES_VERSION" || { cat "$out/src/.served.err"; return 42; }
  minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  mkdir -p "$src" && cd "$src"
  {
    printf 'module platform.local/engine/kubernetes\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBERNETES_VERSION"
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
    # folders; a dependent module replaces each with its published v0.<minor>.<patch>.
    curl -fsS "$(go env GOPROXY | cut -d, -f1)/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod" \
      | sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' \
      | while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "v0.${KUBERNETES_VERSION#v1.}"; done
    printf ')\n'
  } > go.mod
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBERNETES_VERSION" \
    "k8s.io/kubernetes/cmd/kubectl@$KUBERNETES_VERSION"
  local v=k8s.io/component-base/version
  go build -trimpath -tags providerless \
    -ldflags "-X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z" \
    -o "$bin/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl
  "$bin/kube-apiserver" --version
}

build_helm() {  # renders the pinned chart archives for the API-server tests (what pulumi-kubernetes embeds)
  served "helm.sh/helm/v3@$HELM_VERSION" || { cat "$out/src/.served.err"; return 42; }
  GOBIN="$bin" go install -trimpath \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  "$bin/helm" version --short
}

build_kine() {
  served "github.com/k3s-io/kine@$KINE_VERSION" || { cat "$out/src/.served.err"; return 42; }
  GOBIN="$bin" go install -trimpath "github.com/k3s-io/kine@$KINE_VERSION"
}

total_start=$(date +%s)
targets=${ENGINE_TARGETS:-pulumi language_python provider_kubernetes provider_command provider_random kubernetes kine helm}
for t in $targets; do
  step "$t" "build_$t"
done
echo "engine: done in $(( $(date +%s) - total_start ))s; status in $status"
touch "$out/.complete"
ln -sfn "$out" "$root/current"
