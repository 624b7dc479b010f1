#!/usr/bin/env bash
# Installs the pinned toolchains that build guests in each language, once:
# Python and JavaScript tools under $SCOPE_WASM_TOOLS (default target/tools),
# C's from Debian, Go's modules through the Go proxy when a guest builds.
#
#   guest-sdk/toolchains.sh [python] [js] [c] [go]   # none: all of them
#
# Prints nothing when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${SCOPE_WASM_TOOLS:-$PWD/target/tools}
COMPONENTIZE_PY=0.25.1
COMPONENTIZE_JS=0.23.0
mkdir -p "$TOOLS"

python() {
    if [ -x "$TOOLS/py/bin/componentize-py" ] && "$TOOLS/py/bin/componentize-py" --version | grep -q "$COMPONENTIZE_PY"; then return; fi
    echo "installing componentize-py $COMPONENTIZE_PY" >&2
    python3 -m venv "$TOOLS/py"
    "$TOOLS/py/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY"
}

js() {
    if [ -f "$TOOLS/js/node_modules/@bytecodealliance/componentize-js/package.json" ] &&
        grep -q "\"version\": \"$COMPONENTIZE_JS\"" "$TOOLS/js/node_modules/@bytecodealliance/componentize-js/package.json"; then return; fi
    echo "installing @bytecodealliance/componentize-js $COMPONENTIZE_JS" >&2
    mkdir -p "$TOOLS/js"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS/js" "@bytecodealliance/componentize-js@$COMPONENTIZE_JS" >/dev/null
}

debian() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return
    echo "installing ${missing[*]} from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

c() {
    # clang for wasm32-wasi, its linker, compiler-rt builtins and the WASI libc.
    debian clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc
}

go_() {
    command -v go >/dev/null || { echo "Go is not installed (guests in Go need Go 1.24 or later)" >&2; exit 1; }
}

[ $# -eq 0 ] && set -- python js c go
for lang in "$@"; do
    case $lang in
        python) python ;;
        js) js ;;
        c) c ;;
        go) go_ ;;
        *) echo "unknown language $lang (python, js, c, go)" >&2; exit 2 ;;
    esac
done
