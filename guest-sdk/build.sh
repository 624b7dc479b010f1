#!/usr/bin/env bash
# Builds one guest written in Python, JavaScript, C or Go into a component,
# with the toolchains that guest-sdk/toolchains.sh installs.
#
#   guest-sdk/build.sh LANG SOURCE_DIR OUT.wasm
#
# python: SOURCE_DIR/app.py defines `Handler` (scope_plugin.export(...)),
#         snapshotted with its imports into a component of its own
# python-shared: the same app, its files attached to the shared Python runtime
#         (guest-sdk/python/shared_runtime: built once, compiled once by the
#         daemon for every such plugin; see docs/plugin-authors.md)
# js:     SOURCE_DIR/app.js exports `handler` (exportPlugin(...))
# c:      every SOURCE_DIR/*.c, implementing plugin_describe/report/control
# go:     SOURCE_DIR is a Go module (go.mod requiring scope-wasm/guest-sdk/go),
#         package main calling scope.Export in init()
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LANG_=${1:?usage: build.sh LANG SOURCE_DIR OUT.wasm}
SRC=$(cd "${2:?source dir}" && pwd)
OUT=$(realpath -m "${3:?output .wasm}")
TOOLS=${SCOPE_WASM_TOOLS:-$ROOT/target/tools}
WIT=$ROOT/wit
SDK=$ROOT/guest-sdk
GUEST_BUILD=${SCOPE_GUEST_BUILD:-$ROOT/target/debug/scope-guest-build}
WORK=$ROOT/target/guest-build/$LANG_-$(basename "$SRC")
mkdir -p "$(dirname "$OUT")"

SDK_LANG=${LANG_%-shared}
"$SDK/toolchains.sh" "$SDK_LANG"
need_guest_build() {
    cargo build -q -p scope-guest-build --manifest-path "$ROOT/Cargo.toml"
}

# Up to date: built the same way (python and python-shared make different
# files from one source), and nothing it is built from is newer than it.
BUILT_AS=$ROOT/target/guest-build/built-as/$(printf '%s' "$OUT" | sha256sum | cut -c1-16)
if [ -f "$OUT" ] && [ "$(cat "$BUILT_AS" 2>/dev/null)" = "$LANG_" ] &&
    [ -z "$(find "$SRC" "$SDK/$SDK_LANG" "$WIT" "$0" -newer "$OUT" -type f -not -path "$SRC/target/*" -print -quit)" ]; then
    exit 0
fi
mkdir -p "$(dirname "$BUILT_AS")"
rm -f "$BUILT_AS"

case $LANG_ in
python)
    # The project's own .venv, if it has one: its packages, and its installed
    # copy of the SDK (`pip install .../guest-sdk/python`) before the clone's.
    paths=(-p "$SRC")
    site=$(ls -d "$SRC"/.venv/lib/python3*/site-packages 2>/dev/null | head -n 1 || true)
    [ -n "$site" ] && paths+=(-p "$site")
    [ -n "$site" ] && [ -d "$site/scope_plugin" ] || paths+=(-p "$SDK/python")
    "$TOOLS/py/bin/componentize-py" -d "$WIT" -w plugin componentize app "${paths[@]}" -o "$OUT" >/dev/null
    ;;
python-shared)
    # The runtime is built once for this SDK and wit/ (named by a hash of them).
    need_guest_build
    stamp=$(find "$SDK/python/scope_plugin" "$SDK/python/shared_runtime" "$WIT" -type f \( -name '*.py' -o -name '*.wit' \) \
        -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)
    runtime=$ROOT/target/guest-build/python-shared-runtime-$stamp.wasm
    if [ ! -f "$runtime" ]; then
        mkdir -p "$(dirname "$runtime")"
        "$TOOLS/py/bin/componentize-py" -d "$WIT" -w plugin componentize scope_shared_runtime \
            -p "$SDK/python/shared_runtime" -p "$SDK/python" -o "$runtime.partial" >/dev/null
        mv "$runtime.partial" "$runtime"
        find "$(dirname "$runtime")" -name 'python-shared-runtime-*.wasm' -not -path "$runtime" -delete
    fi
    # The current runtime by a fixed name, for tools and tests that attach apps to it.
    ln -sf "$(basename "$runtime")" "$(dirname "$runtime")/python-shared-runtime.wasm"
    "$GUEST_BUILD" attach-source "$runtime" "$SRC" -o "$OUT"
    ;;
js)
    entry=$SRC/app.js
    # A project that depends on the SDK as a package (package.json, `npm install`)
    # imports './scope-plugin.js': it is built from a copy of its modules with
    # the installed SDK beside them (componentize-js resolves no package names,
    # and reads only files under the directory it runs in).
    if [ -f "$SRC/package.json" ] && grep -q '"scope-plugin"' "$SRC/package.json"; then
        [ -d "$SRC/node_modules/scope-plugin" ] || (cd "$SRC" && npm install --no-audit --no-fund --silent)
        rm -rf "$WORK" && mkdir -p "$WORK"
        (cd "$SRC" && find . -name '*.js' -not -path './node_modules/*' -not -path './target/*' -exec cp --parents {} "$WORK/" \;)
        cp "$SRC/node_modules/scope-plugin/scope-plugin.js" "$WORK/scope-plugin.js"
        entry=$WORK/app.js
        cd "$WORK"
    fi
    # StarlingMonkey without its HTTP server and fetch: the host offers no wasi:http.
    "$TOOLS/js/node_modules/.bin/componentize-js" "$entry" --wit "$WIT" --world-name plugin \
        -d http -d fetch-event -o "$OUT" >/dev/null
    ;;
c)
    need_guest_build
    rm -rf "$WORK" && mkdir -p "$WORK"
    "$GUEST_BUILD" bindings --lang c --out "$WORK" --wit "$WIT"
    clang-19 --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Werror -Wno-unused-function \
        -I "$WORK" -I "$SDK/c" -o "$WORK/core.wasm" \
        "$SRC"/*.c "$SDK/c/scope_plugin.c" "$WORK/plugin.c" "$WORK/plugin_component_type.o"
    "$GUEST_BUILD" component "$WORK/core.wasm" -o "$OUT"
    ;;
go)
    need_guest_build
    rm -rf "$WORK" && mkdir -p "$WORK"
    # The plugin is a Go module of its own that requires the SDK's module
    # (scope-wasm/guest-sdk/go, by a `replace`); it is built where it is.
    if [ ! -f "$SRC/go.mod" ]; then
        echo "$SRC has no go.mod: a Go plugin is a module requiring scope-wasm/guest-sdk/go (scope-wasm new --lang go makes one)" >&2
        exit 2
    fi
    # -checklinkname=0: the runtime package reaches runtime.sbrk, to allocate
    # before Go's runtime has started. The newest go.bytecodealliance.org/pkg
    # the Go proxy serves here is v0.2.1 (the SDK's go.mod); the SDK keeps Go's
    # collector out of cabi_realloc itself (see scope/gc.go). -mod=mod: go.sum
    # gains what it lacks, as Cargo.lock would.
    (cd "$SRC" && GOOS=wasip1 GOARCH=wasm go build -mod=mod -buildmode=c-shared -ldflags=-checklinkname=0 -o "$WORK/core.wasm" .)
    # No --realloc-via-memory-grow: the runtime package allocates with sbrk
    # until Go has started, so the adapter may use cabi_realloc from the start.
    "$GUEST_BUILD" component "$WORK/core.wasm" --embed --wit "$WIT" -o "$OUT"
    ;;
*)
    echo "unknown language $LANG_ (python, python-shared, js, c, go)" >&2
    exit 2
    ;;
esac
echo "$LANG_" > "$BUILT_AS"
