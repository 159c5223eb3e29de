#!/usr/bin/env bash
# Starts (or stops) the real services the tests run against, on loopback, in a private directory:
# MariaDB, Redis and the SQS emulator (npm local-aws-sqs). Installs what is missing.
#
#   scripts/services.sh up DIR     start; writes DIR/env (export lines) for the tests
#   scripts/services.sh down DIR   stop everything started in DIR
set -euo pipefail

cmd=${1:?usage: services.sh up|down DIR}
dir=${2:?usage: services.sh up|down DIR}
root=$(cd "$(dirname "$0")/.." && pwd)

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $(( 20000 + RANDOM % 20000 ))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

wait_for() { # what, seconds, command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "services: $what did not come up in ${secs}s" >&2
  return 1
}

install_missing() {
  local need=()
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  # The deploy tests (go test ./deploy): promtool and a real Prometheus, and Chromium for a screenshot.
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  if [ ${#need[@]} -gt 0 ]; then
    echo "services: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # The packages' own daemons (a system Prometheus on :9090) must not start: the tests run their own.
    local rcd=/usr/sbin/policy-rc.d made=""
    if [ ! -e "$rcd" ]; then printf '#!/bin/sh\nexit 101\n' >"$rcd" && chmod +x "$rcd" && made=1; fi
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    if [ -n "$made" ]; then rm -f "$rcd"; fi
  fi
  if [ ! -d "$root/scripts/sqs/node_modules/local-aws-sqs" ]; then
    echo "services: installing the SQS emulator (npm local-aws-sqs)" >&2
    (cd "$root/scripts/sqs" && npm ci --silent --no-audit --no-fund >/dev/null)
  fi
}

up() {
  install_missing
  mkdir -p "$dir"
  local mport rport sport
  mport=$(free_port); rport=$(free_port); sport=$(free_port)
  export PATH="$PATH:/usr/sbin"

  mkdir -p "$dir/mysql"
  mariadb-install-db --no-defaults --datadir="$dir/mysql" --user=root \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/mariadb-install.log" 2>&1
  mariadbd --no-defaults --user=root --datadir="$dir/mysql" --socket="$dir/mysql.sock" \
    --port="$mport" --bind-address=127.0.0.1 --skip-name-resolve --skip-log-bin \
    --pid-file="$dir/mysql.pid" --innodb-flush-log-at-trx-commit=2 --max-connections=1000 \
    >"$dir/mariadb.log" 2>&1 &
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
  (cd "$root/scripts/sqs" && exec node server.js "$sport") >"$dir/sqs.log" 2>&1 &
  echo $! >"$dir/sqs.pid"

  wait_for MariaDB 30 mariadb-admin --no-defaults --socket="$dir/mysql.sock" -uroot ping
  wait_for Redis 10 redis-cli -p "$rport" ping
  wait_for "SQS emulator" 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$sport"

  cat >"$dir/env" <<ENV
export SLUICE_TEST_MYSQL_DSN='root@tcp(127.0.0.1:$mport)/'
export SLUICE_TEST_REDIS_ADDR='127.0.0.1:$rport'
export SLUICE_TEST_SQS_ENDPOINT='http://127.0.0.1:$sport'
ENV
  echo "services: MariaDB :$mport, Redis :$rport, SQS emulator :$sport ($dir)" >&2
}

down() {
  for f in sqs redis mysql; do
    if [ -f "$dir/$f.pid" ]; then
      pid=$(cat "$dir/$f.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

case "$cmd" in
  up) up ;;
  down) down ;;
  *) echo "usage: services.sh up|down DIR" >&2; exit 2 ;;
esac
