#!/usr/bin/env bash
# Validate rendered Kubernetes manifests offline: schema (kubernetes-validate --strict, unknown
# fields are errors) and policy (checkov with the explicit check set below, zero failures).
# Usage: deploy/k8s/validate.sh FILE.yaml...   (make manifests renders the overlays and calls it)
# Tools come from the separate virtualenv that `make install` creates (MANIFESTS_VENV).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${MANIFESTS_VENV:-$here/../../.venv-manifests}"
kube_version="${KUBE_VERSION:-1.33.0}"
checks="$(grep -v '^#' "$here/checkov-checks.txt" | grep -v '^[[:space:]]*$' | cut -d' ' -f1 | paste -sd, -)"
[ "$#" -gt 0 ] || { echo "usage: $0 FILE.yaml..." >&2; exit 2; }
"$venv/bin/kubernetes-validate" --strict --quiet -k "$kube_version" "$@"
args=()
for f in "$@"; do args+=(-f "$f"); done
# --skip-download: fully offline (no guideline or policy download).
"$venv/bin/checkov" "${args[@]}" --framework kubernetes --check "$checks" \
  --skip-download --compact --quiet
