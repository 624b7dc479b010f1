#!/usr/bin/env bash
# Validates the deployment files offline:
# - the Kubernetes manifest against the API's schemas (kubernetes-validate,
#   which ships them; installed once into target/tools),
# - the config it carries with `scope-wasm config check`,
# - the systemd unit with `systemd-analyze verify`, warnings included.
#   deploy/validate.sh path/to/scope-wasm
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:?usage: deploy/validate.sh path/to/scope-wasm}
TOOLS=${SCOPE_WASM_TOOLS:-target/tools}
VENV=$TOOLS/k8s-venv
K8S_VERSION=1.31.0
VALIDATE_VERSION=1.31.0

if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "kubernetes-validate==$VALIDATE_VERSION" pyyaml
fi
"$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$K8S_VERSION" deploy/kubernetes/scope-wasm.yaml

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/python" - deploy/kubernetes/scope-wasm.yaml "$tmp/config.toml" <<'PY'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "scope-wasm-config":
        open(sys.argv[2], "w").write(doc["data"]["config.toml"])
PY
"$BIN" config check "$tmp/config.toml"
"$BIN" config check config/bundled.toml

# The unit as installed, but pointing at this build of the binary.
sed "s|/usr/local/bin/scope-wasm|$(realpath "$BIN")|" deploy/systemd/scope-wasm.service >"$tmp/scope-wasm.service"
if ! out=$(systemd-analyze verify "$tmp/scope-wasm.service" 2>&1) || [ -n "$out" ]; then
    echo "systemd-analyze verify: $out" >&2
    exit 1
fi
echo "deployment files valid"
