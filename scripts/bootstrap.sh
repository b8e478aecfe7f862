#!/usr/bin/env bash
# Prepare this machine for running and testing Iotistic: system packages and the
# Docker engine (as root), then the Python workspace in .venv. Idempotent; when
# everything is already in place it only checks and returns quickly.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

UV_VERSION="0.13.9"
UV_BOOT="$ROOT/.cache/uv-bootstrap"
DOCKER_WAIT_SECONDS="${IOTISTIC_DOCKER_WAIT_SECONDS:-60}"

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# `timeout` guards against a client hanging on a half-started daemon.
docker_ok() { command -v docker >/dev/null 2>&1 && timeout 15 docker info >/dev/null 2>&1; }

# The test images are built from Debian's static busybox: a dynamically linked
# one (package `busybox`) would not run inside an otherwise empty image.
busybox_static_ok() {
    [ -x /bin/busybox ] || return 1
    dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'
}

# ensurepip is what Debian splits off into python3-venv.
python_venv_ok() {
    command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1
}

# The cloud's tests start a throwaway PostgreSQL cluster from the server binaries (initdb,
# postgres); the system cluster Debian creates is not used and need not run.
postgres_server_ok() {
    local bin
    for bin in /usr/lib/postgresql/*/bin; do
        [ -x "$bin/initdb" ] && [ -x "$bin/postgres" ] && [ -x "$bin/pg_isready" ] && return 0
    done
    return 1
}

# The broker with its dynamic-security plugin, and the command-line clients the tests use.
mosquitto_ok() {
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || return 1
    command -v mosquitto_pub >/dev/null 2>&1 || return 1
    ls /usr/lib/*/mosquitto_dynamic_security.so >/dev/null 2>&1
}

system_packages_missing() {
    local missing=()
    command -v docker >/dev/null 2>&1 || missing+=(docker)
    command -v dockerd >/dev/null 2>&1 || missing+=(dockerd)
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    busybox_static_ok || missing+=(busybox-static)
    python_venv_ok || missing+=(python3-venv)
    postgres_server_ok || missing+=(postgresql)
    mosquitto_ok || missing+=(mosquitto)
    # `ip`: scripts/dockerd.sh gives a private engine (a test's) a bridge of its own.
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    printf '%s\n' "${missing[@]}"
}

install_system_packages() {
    local missing
    missing="$(system_packages_missing)"
    [ -z "$missing" ] && return 0
    log "missing: $(echo "$missing" | tr '\n' ' ')-> installing Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # Without an init system (containers) invoke-rc.d does not start PostgreSQL's cluster.
    apt-get install -y --no-install-recommends \
        docker.io docker-registry busybox-static python3-venv ca-certificates postgresql \
        mosquitto mosquitto-clients iproute2
    missing="$(system_packages_missing)"
    [ -z "$missing" ] || die "still missing after apt-get install: $(echo "$missing" | tr '\n' ' ')"
}

# The engine the tests and the agent use: one named by DOCKER_HOST is taken as it is (a private
# engine, say); otherwise the machine's engine on the default socket, started if it does not
# answer (scripts/dockerd.sh: decided by the socket, not by whether any dockerd process runs).
start_docker() {
    if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "unix:///var/run/docker.sock" ]; then
        docker_ok || die "the Docker engine at DOCKER_HOST=$DOCKER_HOST does not answer"
        return 0
    fi
    IOTISTIC_DOCKER_WAIT_SECONDS="$DOCKER_WAIT_SECONDS" scripts/dockerd.sh >/dev/null
    log "docker engine is up"
}

setup_python() {
    python_venv_ok || die "python3 with the venv module is required (Debian: python3-venv)"
    if [ ! -x "$UV_BOOT/bin/uv" ] || [ "$("$UV_BOOT/bin/uv" --version 2>/dev/null | awk '{print $2}')" != "$UV_VERSION" ]; then
        log "installing uv $UV_VERSION into $UV_BOOT"
        rm -rf "$UV_BOOT"
        python3 -m venv "$UV_BOOT"
        "$UV_BOOT/bin/pip" install --quiet "uv==$UV_VERSION"
    fi
    # Use the machine's python3; never download an interpreter.
    export UV_PYTHON=python3
    export UV_PYTHON_DOWNLOADS=never
    # Compile bytecode at install: otherwise the first runs of iotctl and the agent pay for
    # it (and every run does where PYTHONDONTWRITEBYTECODE is set).
    export UV_COMPILE_BYTECODE=1
    if [ -f uv.lock ]; then
        "$UV_BOOT/bin/uv" sync --frozen --quiet
    else
        "$UV_BOOT/bin/uv" sync --quiet
    fi
}

if is_root; then
    install_system_packages
    start_docker
else
    # Without root we cannot install or start anything system-wide.
    docker_ok || log "WARNING: docker is not available; integration tests and the agent need a running Docker engine"
    command -v docker-registry >/dev/null 2>&1 || log "WARNING: docker-registry is not installed (Debian package docker-registry)"
    busybox_static_ok || log "WARNING: /bin/busybox from busybox-static is missing; integration test images cannot be built"
    postgres_server_ok || log "WARNING: PostgreSQL server binaries are missing (Debian package postgresql); the cloud tests need them"
fi

setup_python
