# shellcheck shell=bash disable=SC2153 # SC2153: TARGET, LABELS, TAINTS come from the values block
# platform:k3s: Body of a node's labels step (on the first server, after the node registered):
# K3s applies node-taint only at registration and merges node-label, so the stack's labels and
# taints are applied here through the API: set what is wanted, remove what this step set before
# and the stack no longer wants (remembered in two annotations), with no restart.
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

LABEL_ANNOTATION=platform.k3s/managed-labels
TAINT_ANNOTATION=platform.k3s/managed-taints

registered() { kubectl_local get node "$TARGET" -o name >/dev/null 2>&1; }

annotation() {
  kubectl_local get node "$TARGET" -o "jsonpath={.metadata.annotations.${1//./\\.}}" 2>/dev/null || true
}

# apply VERB ARGS...: run kubectl VERB on the node; count a change unless kubectl reports none.
apply() {
  local out
  out=$(kubectl_local "$1" node "$TARGET" "${@:2}" 2>&1) || die "kubectl $1 ${*:2} on node $TARGET failed: $out"
  if [[ $out != *"not labeled"* && $out != *"not annotated"* && $out != *"not modified"* ]]; then
    changed "$1 $TARGET ${*:2}"
  fi
}

api_local_ready || die "no API on this server: cannot apply the labels and taints of $TARGET; re-run"
wait_until "node $TARGET to be registered" "$READY_TIMEOUT" registered || die "node $TARGET is not registered"
label_keys=() taint_keys=()
for item in ${LABELS[@]+"${LABELS[@]}"}; do label_keys+=("${item%%=*}"); done
for item in ${TAINTS[@]+"${TAINTS[@]}"}; do
  key=${item%%:*}
  taint_keys+=("${key%%=*}:${item##*:}")
done
IFS=, read -r -a had_labels <<<"$(annotation "$LABEL_ANNOTATION")" || true
IFS=, read -r -a had_taints <<<"$(annotation "$TAINT_ANNOTATION")" || true
for key in ${had_labels[@]+"${had_labels[@]}"}; do
  if [ -n "$key" ] && ! in_list "$key" ${label_keys[@]+"${label_keys[@]}"}; then apply label "$key-"; fi
done
for key in ${had_taints[@]+"${had_taints[@]}"}; do
  if [ -n "$key" ] && ! in_list "$key" ${taint_keys[@]+"${taint_keys[@]}"}; then apply taint "$key-"; fi
done
if [ "${#LABELS[@]}" -gt 0 ]; then apply label --overwrite "${LABELS[@]}"; fi
current_taints=$(kubectl_local get node "$TARGET" \
  -o 'jsonpath={range .spec.taints[*]}{.key}{"="}{.value}{":"}{.effect}{"\n"}{end}' 2>/dev/null || true)
for item in ${TAINTS[@]+"${TAINTS[@]}"}; do
  normal=$item
  if [[ ${item%%:*} != *=* ]]; then normal="${item%%:*}=:${item##*:}"; fi
  if ! grep -qxF -- "$normal" <<<"$current_taints"; then apply taint --overwrite "$item"; fi
done
joined_labels=$(IFS=,; printf '%s' "${label_keys[*]-}")
joined_taints=$(IFS=,; printf '%s' "${taint_keys[*]-}")
apply annotate --overwrite "$LABEL_ANNOTATION=$joined_labels" "$TAINT_ANNOTATION=$joined_taints"
finish
