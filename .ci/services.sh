#!/usr/bin/env bash
# PostgreSQL 15 and Redis on loopback for the test suite.
#
#   eval "$(.ci/services.sh)"        install when missing, start both, export their URLs
#   .ci/services.sh stop             stop what the line above started
#
# Debian's packages are installed when missing (as root, or through sudo).
# PostgreSQL runs as the `postgres` user from a throw-away cluster (trust auth,
# no fsync: the data is for one run); Redis keeps nothing on disk. Each gets a
# free loopback port unless AICP_CI_PG_PORT / AICP_CI_REDIS_PORT say otherwise.
# Only the `export` lines go to stdout; progress goes to stderr.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
STATE_VAR=AICP_CI_SERVICES_DIR

say() { echo "services: $*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root (or sudo) to run: $*"; fi
}

install_missing() {
    local wanted=()
    [ -x "$PG_BIN/pg_ctl" ] || wanted+=(postgresql-15)
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null || wanted+=(redis-server)
    [ ${#wanted[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing ${wanted[*]} and no apt-get to install them"
    say "installing ${wanted[*]}"
    # The packages' own services are not ours: keep them from starting where an
    # init system would (a container has none, and this is a no-op there).
    local policy=/usr/sbin/policy-rc.d placed=""
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy" && placed=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${wanted[@]}" >&2
    [ -z "$placed" ] || as_root rm -f "$policy"
    [ -x "$PG_BIN/pg_ctl" ] || die "postgresql-15 is installed but $PG_BIN/pg_ctl is not there"
}

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return
    fi
    local port
    for _ in $(seq 1 50); do  # no python yet: a random port nobody answers on
        port=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
    die "no free port found"
}

wait_for() {  # wait_for WHAT COMMAND...: up to 30 s
    local what=$1; shift
    for _ in $(seq 1 150); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    die "$what did not answer within 30 s"
}

start() {
    install_missing
    local dir pg_port redis_port
    # /tmp, not $TMPDIR: the postgres user must be able to reach it.
    dir=$(mktemp -d /tmp/aicp-services.XXXXXX)
    # Half-started services are stopped again when anything below fails.
    trap 'AICP_CI_SERVICES_DIR=$dir stop' EXIT
    pg_port=${AICP_CI_PG_PORT:-$(free_port)}
    redis_port=${AICP_CI_REDIS_PORT:-$(free_port)}

    # PostgreSQL refuses to run as root: as root, run it as `postgres` (the package
    # creates that user); as anyone else, run it as yourself.
    local run=()
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
        chown postgres "$dir"
        run=(runuser -u postgres --)
    fi
    say "PostgreSQL on 127.0.0.1:$pg_port ($dir)"
    "${run[@]}" "$PG_BIN/initdb" -D "$dir/pg" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    local opts="-p $pg_port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    "${run[@]}" "$PG_BIN/pg_ctl" -D "$dir/pg" -l "$dir/postgres.log" -s -w -t 30 -o "$opts" start \
        || { cat "$dir/postgres.log" >&2; die "PostgreSQL did not start"; }
    wait_for PostgreSQL "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$pg_port" -U postgres

    say "Redis on 127.0.0.1:$redis_port"
    redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
        || die "Redis did not start"
    wait_for Redis sh -c "redis-cli -h 127.0.0.1 -p $redis_port ping | grep -q PONG"

    trap - EXIT
    echo "export $STATE_VAR=$dir"
    echo "export AICP_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$pg_port/postgres"
    echo "export AICP_TEST_REDIS_URL=redis://127.0.0.1:$redis_port/0"
}

stop() {
    local dir=${!STATE_VAR:-}
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    if [ -f "$dir/pg/postmaster.pid" ]; then
        local run=()
        [ "$(id -u)" -ne 0 ] || run=(runuser -u postgres --)
        "${run[@]}" "$PG_BIN/pg_ctl" -D "$dir/pg" -s -m immediate stop || true
    fi
    if [ -f "$dir/redis.pid" ]; then
        local pid
        pid=$(cat "$dir/redis.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$dir"
    say "stopped"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 [start|stop]" ;;
esac
