#!/usr/bin/env bash
# Runs a local Prometheus scraping a running Sluice (by default `make dev`'s API on 127.0.0.1:3000) every
# 5 s, with deploy/prometheus's alert rules loaded; its UI is on 127.0.0.1:9090 (Graph, Alerts). Data goes
# to a temporary directory, removed on exit. Installs Debian's prometheus package when missing (as root).
#
#   make dev                        # in one terminal
#   scripts/prometheus.sh           # in another; or: scripts/prometheus.sh TARGET [LISTEN]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-127.0.0.1:3000}
listen=${2:-127.0.0.1:9090}
if ! command -v prometheus >/dev/null 2>&1; then
  echo "prometheus: installing Debian's prometheus package" >&2
  rcd=/usr/sbin/policy-rc.d made=""
  if [ ! -e "$rcd" ]; then printf '#!/bin/sh\nexit 101\n' >"$rcd" && chmod +x "$rcd" && made=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -n "$made" ]; then rm -f "$rcd"; fi
fi
dir=$(mktemp -d /tmp/sluice-prometheus.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/prometheus.yml" <<YML
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: ["$root/deploy/prometheus/alerts.yml", "$root/deploy/prometheus/thresholds.yml"]
scrape_configs:
  - job_name: sluice-dev
    static_configs: [{targets: ["$target"]}]
YML
echo "Prometheus on http://$listen scraping http://$target/metrics (Ctrl-C stops it)" >&2
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --web.listen-address="$listen" --log.level=warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
wait $pid
