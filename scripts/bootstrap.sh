#!/usr/bin/env bash
# Makes this machine ready to run ridedb: services reachable, dependencies installed,
# TypeScript built. Used by `npm start` and `npm test`; safe to run again (it only does
# what is missing). On Debian as root it installs and starts missing services from
# Debian's packages; anywhere else it says exactly what to run.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}"
ZK_HOSTS="${ZK_HOSTS:-127.0.0.1:2181}"
DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# host:port of a URL (or of the first entry of a ZooKeeper connection string).
url_hostport() { node -e 'const u=new URL(process.argv[1]); console.log(`${u.hostname}:${u.port||process.argv[2]}`)' "$1" "$2"; }

PG_AT=$(url_hostport "$DATABASE_URL" 5432)
ZK_AT=$(printf '%s' "${ZK_HOSTS%%,*}" | sed 's#/.*##')

reachable() { # host:port
  local host=${1%:*} port=${1##*:}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}
# AMQP_URL may list a cluster's nodes (comma-separated): the first that answers, else the first.
amqp_at() {
  local first="" node at
  local -a nodes
  IFS=',' read -ra nodes <<<"$AMQP_URL"
  for node in "${nodes[@]}"; do
    node=$(printf '%s' "$node" | tr -d ' ')
    [ -n "$node" ] || continue
    at=$(url_hostport "$node" 5672)
    [ -n "$first" ] || first=$at
    if reachable "$at"; then printf '%s\n' "$at"; return; fi
  done
  printf '%s\n' "$first"
}
AMQP_AT=$(amqp_at)
is_local() { case ${1%:*} in 127.*|localhost|::1) return 0 ;; *) return 1 ;; esac; }
can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

APT_UPDATED=0
apt_install() { # package...
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update (once)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  say "installing $* from Debian's packages (this can take a minute)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # name host:port seconds
  local name=$1 at=$2 limit=$3 waited=0
  until reachable "$at"; do
    sleep 1
    waited=$((waited + 1))
    [ $((waited % 10)) = 0 ] && say "still waiting for $name at $at (${waited}s)"
    [ "$waited" -ge "$limit" ] && die "$name did not come up at $at within ${limit}s"
  done
  say "$name is up at $at"
}

ensure_service() { # name host:port manual-hint install-fn start-fn
  local name=$1 at=$2 hint=$3 install=$4 start=$5
  if reachable "$at"; then say "$name reachable at $at"; return; fi
  is_local "$at" || die "$name is not reachable at $at (a remote address: start it there, or fix the setting)"
  can_install || die "$name is not reachable at $at. Start it yourself: $hint"
  $install
  say "starting $name"
  $start
  wait_for "$name" "$at" 120
}

install_rabbitmq() { command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server; }
# Shared services start in a session of their own (setsid, stdin closed): a Ctrl-C or
# SIGTERM to `npm start`'s process group must never reach them.
detached() { setsid -w "$@" </dev/null; }
start_rabbitmq() { detached rabbitmq-server -detached >/dev/null 2>&1 || true; }

ZK_BIN=/usr/share/zookeeper/bin/zkServer.sh
# ZK_CONFIG: the zoo.cfg a ZooKeeper started here runs with (absolute path; zkServer.sh
# takes it as its argument). Unset: Debian's /etc/zookeeper/conf/zoo.cfg (port 2181).
ZK_CONFIG="${ZK_CONFIG:-}"
case "$ZK_CONFIG" in ''|/*) ;; *) die "ZK_CONFIG must be an absolute path (got $ZK_CONFIG)" ;; esac
install_zookeeper() { [ -x "$ZK_BIN" ] || apt_install zookeeper; }
start_zookeeper() { detached "$ZK_BIN" start ${ZK_CONFIG:+"$ZK_CONFIG"} >/dev/null 2>&1; }

install_postgres() {
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
    # A fresh Debian cluster asks for passwords on TCP; ridedb's default URL expects
    # trust on loopback, as on the machines it is developed on.
    local hba; hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -1)
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
}
start_postgres() { detached pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start; }

ensure_service RabbitMQ "$AMQP_AT" "rabbitmq-server -detached" install_rabbitmq start_rabbitmq
ensure_service ZooKeeper "$ZK_AT" "apt-get install zookeeper && $ZK_BIN start $ZK_CONFIG" install_zookeeper start_zookeeper
ensure_service PostgreSQL "$PG_AT" "pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" install_postgres start_postgres

# npm dependencies, when missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Build, when any source is newer than the last build.
STAMP=dist/.build-stamp
if [ ! -f "$STAMP" ] || [ -n "$(find $(grep -v '^#' scripts/build-sources) -newer "$STAMP" -print -quit)" ]; then
  say "building (tsc)"
  rm -rf dist
  npx tsc -p .
  touch "$STAMP"
fi
# Docker, for WORKER_RUNTIME=docker (and for the test suite, which tests that runtime).
start_dockerd() { # extra dockerd flags...
  say "starting dockerd $*"
  mkdir -p /var/log
  setsid nohup dockerd --iptables=false --bridge=none "$@" >>/var/log/ridedb-dockerd.log 2>&1 < /dev/null &
  DOCKERD_PID=$! # dockerd itself: without job control setsid and nohup exec it, no fork
  for _ in $(seq 1 30); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  return 1
}
ensure_docker() {
  if docker info >/dev/null 2>&1; then say "Docker daemon reachable"; return; fi
  if ! command -v dockerd >/dev/null; then
    can_install || die "Docker is needed (WORKER_RUNTIME=docker or tests) but not installed: apt-get install docker.io, then start dockerd"
    apt_install docker.io
  fi
  [ "$(id -u)" = 0 ] || die "the Docker daemon is not running: start it (dockerd --iptables=false --bridge=none) as root"
  if ! start_dockerd; then
    # Only the dockerd started above, by its pid: never another daemon on the machine.
    kill "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    start_dockerd --storage-driver=vfs || die "dockerd did not start; see /var/log/ridedb-dockerd.log"
  fi
  say "Docker daemon is up"
}
# WORKER_STORAGE=dedicated (the docker runtime's default) runs a PostgreSQL per worker:
# from this host's binaries under the process runtime, from copies of them in the worker
# image under docker. They are there when the shared server was installed here, not when
# DATABASE_URL names another host.
if [ "${WORKER_STORAGE:-}" = dedicated ] || [ "${WORKER_RUNTIME:-process}" = docker ] || [ "${RIDEDB_DOCKER:-0}" = 1 ]; then
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    can_install || die "WORKER_STORAGE=dedicated needs PostgreSQL's server binaries: apt-get install postgresql"
    apt_install postgresql
  fi
fi
if [ "${WORKER_RUNTIME:-process}" = docker ] || [ "${RIDEDB_DOCKER:-0}" = 1 ]; then
  ensure_docker
  bash scripts/build-worker-image.sh
fi
# test:multinode reaches one of its Docker daemons over TLS with certificates it makes with openssl.
if [ "${RIDEDB_DOCKER:-0}" = 1 ] && ! command -v openssl >/dev/null; then
  can_install || die "the multinode test needs openssl: apt-get install openssl"
  apt_install openssl
fi
# The test suite validates compose/docker-compose.yml with Debian's docker-compose.
if [ "${RIDEDB_DOCKER:-0}" = 1 ] && ! command -v docker-compose >/dev/null; then
  can_install || die "docker-compose is needed by the tests: apt-get install docker-compose"
  apt_install docker-compose
fi
# Headless Chromium for the explorer's browser test.
if [ "${RIDEDB_BROWSER:-0}" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  can_install || die "the browser test needs Chromium at /usr/bin/chromium: apt-get install chromium"
  apt_install chromium
fi
say "ready"
