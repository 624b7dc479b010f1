#!/usr/bin/env bash
# A private Docker Engine for the tests: `start` installs it if needed (Debian's
# docker.io and busybox-static), runs dockerd on its own data, exec and socket
# paths (the packaged service does not run on these machines), and imports a
# busybox image (no registry is reachable); `stop` ends it and removes it all.
#
#   tests/docker/dockerd.sh start   # prints nothing; the socket is $ROOT/docker.sock
#   tests/docker/dockerd.sh stop
set -euo pipefail

ROOT=${SCOPE_WASM_DOCKER_ROOT:-/tmp/scope-wasm-dockerd}
SOCKET=$ROOT/docker.sock
IMAGE=scope-test/busybox:latest

install() {
    if command -v dockerd >/dev/null && [ -x /bin/busybox ]; then return; fi
    echo "installing docker.io and busybox-static" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends docker.io busybox-static >/dev/null
}

docker_cli() { docker -H "unix://$SOCKET" "$@"; }

start() {
    install
    stop_quietly
    mkdir -p "$ROOT"
    # No iptables: nothing here leaves the host; the default bridge still gives
    # every container its own network namespace with an eth0.
    dockerd --data-root "$ROOT/data" --exec-root "$ROOT/exec" -H "unix://$SOCKET" \
        --pidfile "$ROOT/dockerd.pid" --iptables=false >"$ROOT/dockerd.log" 2>&1 &
    for _ in $(seq 1 150); do
        if docker_cli version >/dev/null 2>&1; then break; fi
        sleep 0.2
    done
    docker_cli version >/dev/null || { cat "$ROOT/dockerd.log" >&2; echo "dockerd did not start" >&2; exit 1; }
    if ! docker_cli image inspect "$IMAGE" >/dev/null 2>&1; then
        local rootfs=$ROOT/rootfs
        mkdir -p "$rootfs/bin"
        cp /bin/busybox "$rootfs/bin/busybox"
        for applet in sh sleep ls cat true; do ln -sf busybox "$rootfs/bin/$applet"; done
        tar -C "$rootfs" -c . | docker_cli import - "$IMAGE" >/dev/null
    fi
}

stop_quietly() {
    if [ -f "$ROOT/dockerd.pid" ]; then
        local pid
        pid=$(cat "$ROOT/dockerd.pid")
        if kill -0 "$pid" 2>/dev/null; then
            docker_cli ps -aq 2>/dev/null | xargs -r docker -H "unix://$SOCKET" rm -f >/dev/null 2>&1 || true
            kill "$pid"
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$ROOT/dockerd.pid"
    fi
}

stop() {
    stop_quietly
    # Container mounts may linger briefly after dockerd exits.
    umount -R "$ROOT/exec" 2>/dev/null || true
    rm -rf "$ROOT" 2>/dev/null || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
