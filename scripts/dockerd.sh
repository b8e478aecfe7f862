#!/usr/bin/env bash
# Start a Docker engine unless one already answers on its socket; print its DOCKER_HOST.
#
#   scripts/dockerd.sh                       the machine's engine on /var/run/docker.sock
#   scripts/dockerd.sh --private NAME INDEX  a private engine for one test run or parallel suite:
#                                            its own socket, data, pid file and bridge (iotdINDEX,
#                                            172.31.INDEX.0/24), no iptables rules, so it never
#                                            touches the containers or the docker0 bridge of
#                                            the machine's engine (INDEX 1..150)
#   scripts/dockerd.sh --stop-private NAME   stop a private engine started this way
#
# Whether an engine runs is decided by its socket answering, not by looking for any dockerd
# process (another engine may run beside it); a pid file left by a crashed engine whose process
# is gone (or whose pid now belongs to another program) is removed before starting. Needs root
# to start anything. The engine's log: /var/log/iotistic-dockerd.log (machine) or
# <data root>/dockerd.log (private).
set -euo pipefail

WAIT_SECONDS="${IOTISTIC_DOCKER_WAIT_SECONDS:-60}"
PRIVATE_ROOT=/var/lib/iotistic-dockerd
PRIVATE_RUN=/run/iotistic-dockerd

log() { printf 'dockerd.sh: %s\n' "$*" >&2; }
die() { printf 'dockerd.sh: ERROR: %s\n' "$*" >&2; exit 1; }

# `timeout` guards against a client hanging on a half-started daemon.
answers() { timeout 15 docker --host "$1" info >/dev/null 2>&1; }

pid_is_dockerd() { [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ]; }

# 0 when a live dockerd owns the pid file (it is starting: wait for it), 1 otherwise, after
# removing a stale file: dockerd refuses to start while its pid file names a running process.
pidfile_owned() {
    local pidfile=$1 pid
    [ -f "$pidfile" ] || return 1
    pid="$(tr -dc '0-9' <"$pidfile" 2>/dev/null || true)"
    pid_is_dockerd "$pid" && return 0
    log "removing stale pid file $pidfile (process ${pid:-none} is not a running dockerd)"
    rm -f "$pidfile"
    return 1
}

# start_engine HOST PIDFILE LOGFILE DOCKERD_ARGS...
start_engine() {
    local host=$1 pidfile=$2 logfile=$3
    shift 3
    if answers "$host"; then
        echo "$host"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "the Docker engine at $host does not answer, and starting one needs root"
    if pidfile_owned "$pidfile"; then
        log "dockerd (pid $(cat "$pidfile")) is starting; waiting for $host"
    else
        log "starting dockerd for $host (log: $logfile)"
        # No systemd here: run it detached so that it outlives this script.
        nohup setsid dockerd --pidfile "$pidfile" "$@" >"$logfile" 2>&1 </dev/null &
    fi
    local deadline=$((SECONDS + WAIT_SECONDS))
    until answers "$host"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "no answer from $host after ${WAIT_SECONDS}s; last lines of $logfile:"
            tail -n 30 "$logfile" >&2 2>/dev/null || true
            die "the Docker engine did not come up"
        fi
        sleep 0.5
    done
    echo "$host"
}

private_engine() {
    local name=$1 index=$2
    [[ "$name" =~ ^[A-Za-z0-9_-]{1,40}$ ]] || die "NAME must be 1-40 letters, digits, - or _"
    [[ "$index" =~ ^[0-9]+$ ]] && [ "$index" -ge 1 ] && [ "$index" -le 150 ] ||
        die "INDEX must be a number from 1 to 150"
    local root="$PRIVATE_ROOT/$name" run="$PRIVATE_RUN/$name" bridge="iotd$index"
    mkdir -p "$root" "$run"
    if ! answers "unix://$run/docker.sock" && ! ip link show "$bridge" >/dev/null 2>&1; then
        ip link add name "$bridge" type bridge
        ip addr add "172.31.$index.1/24" dev "$bridge"
        ip link set "$bridge" up
    fi
    # Without iptables the engine adds no FORWARD rules, and the FORWARD DROP policy the
    # machine's engine sets would drop traffic between this engine's containers.
    local net
    for net in "10.$((100 + index)).0.0/16" "172.31.$index.0/24"; do
        iptables -C FORWARD -s "$net" -d "$net" -j ACCEPT 2>/dev/null ||
            iptables -I FORWARD -s "$net" -d "$net" -j ACCEPT
    done
    # --bridge: dockerd deletes a docker0 it did not create when told --bridge none, so a
    # second engine gets a bridge of its own instead.
    start_engine "unix://$run/docker.sock" "$run/dockerd.pid" "$root/dockerd.log" \
        --host "unix://$run/docker.sock" --data-root "$root/data" --exec-root "$run/exec" \
        --bridge "$bridge" --iptables=false --ip6tables=false \
        --default-address-pool "base=10.$((100 + index)).0.0/16,size=24"
}

stop_private() {
    local name=$1 pidfile="$PRIVATE_RUN/$1/dockerd.pid" pid
    [ -f "$pidfile" ] || return 0
    pid="$(tr -dc '0-9' <"$pidfile")"
    pid_is_dockerd "$pid" || { rm -f "$pidfile"; return 0; }
    kill -TERM "$pid"
    local deadline=$((SECONDS + WAIT_SECONDS))
    while kill -0 "$pid" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || die "dockerd $pid did not stop within ${WAIT_SECONDS}s"
        sleep 0.2
    done
}

case "${1:-}" in
    "")
        start_engine unix:///var/run/docker.sock /var/run/docker.pid /var/log/iotistic-dockerd.log
        ;;
    --private)
        [ $# -eq 3 ] || die "usage: $0 --private NAME INDEX"
        private_engine "$2" "$3"
        ;;
    --stop-private)
        [ $# -eq 2 ] || die "usage: $0 --stop-private NAME"
        stop_private "$2"
        ;;
    *)
        die "usage: $0 [--private NAME INDEX | --stop-private NAME]"
        ;;
esac
