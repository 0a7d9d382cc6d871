#!/usr/bin/env bash
# dev.sh: run the whole hubcache stack locally (README "Run it").
#
# Builds in release mode, starts (or reuses) a redis-server, starts github-sim unless
# GITHUB_API_TOKEN is set and GITHUB_API_URL is left at GitHub, then fetcher, views and gateway.
# Prints the URLs to try and stops everything on Ctrl-C. Settings come from the environment
# (README "Settings"); logs go to .dev/logs/.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$HUBCACHE_ROOT"

RUN_DIR="$HUBCACHE_ROOT/.dev/logs"
mkdir -p "$RUN_DIR"
trap 'stop_all; log "stopped"' EXIT
trap 'exit 0' INT TERM

ensure_commands redis-server:redis-server redis-cli:redis-tools curl:curl python3:python3

log "building (release)"
cargo build --release --workspace --bins

# Reuse a Redis already answering on REDIS_URL or on 127.0.0.1:6379; otherwise start one there.
if [ -z "${REDIS_URL:-}" ]; then
  if [ "$(redis-cli -p 6379 ping 2>/dev/null)" = "PONG" ]; then
    export REDIS_URL="redis://127.0.0.1:6379"
    log "reusing the redis-server on 127.0.0.1:6379"
  else
    export REDIS_PORT=6379
  fi
fi
export SIM_PORT="${SIM_PORT:-3001}"

start_stack "$HUBCACHE_ROOT/target/release" "$RUN_DIR"

org="$GITHUB_ORG"
# A repo of the org, for the pass-through example (not a cached key: it goes to GitHub once).
repo="$(curl -fsS --max-time 5 "$HUBCACHE_BASE_URL/orgs/$org/repos?per_page=1" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["name"])' 2>/dev/null || true)"
cat <<MSG

hubcache is running (upstream: $GITHUB_API_URL, Redis: $REDIS_URL). Try:
  curl $HUBCACHE_BASE_URL/healthcheck
  curl $HUBCACHE_BASE_URL/orgs/$org
  curl $HUBCACHE_BASE_URL/orgs/$org/repos
  curl '$HUBCACHE_BASE_URL/orgs/$org/repos?per_page=5&page=2' -i
  curl $HUBCACHE_BASE_URL/view/top/10/stars
  curl $HUBCACHE_BASE_URL/view/bottom/5/forks
  curl -i $HUBCACHE_BASE_URL/repos/$org/${repo:-REPO}   (pass-through, coalesced and cached)
  scripts/smoke.sh $HUBCACHE_BASE_URL
Logs: $RUN_DIR. Press Ctrl-C to stop.
MSG

# Stay in the foreground until Ctrl-C or until a service exits on its own.
while true; do
  for pid in "${HUBCACHE_PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      warn "a process (pid $pid) exited; stopping the stack (see logs in $RUN_DIR)"
      exit 1
    fi
  done
  sleep 1
done
