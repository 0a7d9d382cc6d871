#!/usr/bin/env bash
# The test command (README "Test it"; CI runs it through .ci/run).
#
# Provisions what the tests need (redis-server, curl, promtool), then: cargo fmt --check, cargo clippy
# -D warnings, the workspace tests against real redis-server processes and github-sim, and finally
# the whole stack (github-sim, fetcher, views, gateway, Redis) checked end to end by smoke.sh and
# by PyGithub (installed from PyPI into a virtualenv under target/) through the gateway, and the
# gateway's status page rendered in headless Chromium (scripts/status-page-check.sh).
# Exits non-zero on any failure and leaves no process behind.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$HUBCACHE_ROOT"

RUN_DIR="$(mktemp -d -t hubcache-test.XXXXXX)"
cleanup() {
  local status=$?
  stop_all
  if [ $status -ne 0 ]; then
    warn "failed; logs kept in $RUN_DIR"
  else
    rm -rf "$RUN_DIR"
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# redis-server also runs the Redis Sentinels of the failover test (redis-server --sentinel).
# chromium: the status page is checked in a real browser (headless) and screenshotted.
ensure_commands redis-server:redis-server redis-cli:redis-tools curl:curl python3:python3 promtool:prometheus nginx:nginx chromium:chromium

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "workspace tests (real redis-server, github-sim)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

log "end-to-end: the whole stack against github-sim"
cargo build --workspace --bins --locked
(
  unset GITHUB_API_TOKEN GITHUB_API_URL REDIS_URL
  # Two organisations: the seed's endpoints serve the first (Netflix); acme is served under
  # /orgs/acme/... (issue 16).
  export PORT="$(free_port)" REFRESH_INTERVAL_SECS=2 GITHUB_ORG=Netflix GITHUB_ORGS=Netflix,acme
  export SECOND_ORG=acme
  # The gateway's own URL: Link headers and upstream URLs in bodies point at it, as PyGithub
  # (which follows URLs found in bodies) needs.
  export PUBLIC_URL="http://127.0.0.1:$PORT"
  start_stack "$HUBCACHE_ROOT/target/debug" "$RUN_DIR"
  trap stop_all EXIT
  "$HUBCACHE_ROOT/scripts/smoke.sh" "$HUBCACHE_BASE_URL"
  log "PyGithub through the gateway, compared with github-sim"
  venv="$(python_venv "${PYGITHUB_VENV:-$HUBCACHE_ROOT/target/pygithub-venv}" \
    "$HUBCACHE_ROOT/scripts/pygithub-requirements.txt")"
  for org in "$GITHUB_ORG" "$SECOND_ORG"; do
    log "  org $org"
    "$venv/bin/python" "$HUBCACHE_ROOT/scripts/pygithub-check.py" "$HUBCACHE_BASE_URL" "$GITHUB_API_URL" "$org"
  done
  log "metrics of the running stack parse and lint cleanly (promtool)"
  for url in "$HUBCACHE_BASE_URL/metrics" "http://127.0.0.1:$FETCHER_METRICS_PORT/metrics" \
    "http://127.0.0.1:$VIEWS_METRICS_PORT/metrics"; do
    curl -fsS --max-time 5 "$url" | promtool check metrics || die "invalid metrics at $url"
  done
  # Last: it makes github-sim fail (and clears the fault after). Screenshots go to docs/ (committed,
  # shown in README); in CI to the run directory, only checked.
  log "status page in headless Chromium: green, then red with github-sim failing"
  shots="$HUBCACHE_ROOT/docs"
  [ "${CI:-}" = "true" ] && shots="$RUN_DIR/screenshots"
  "$HUBCACHE_ROOT/scripts/status-page-check.sh" "$HUBCACHE_BASE_URL" "$GITHUB_API_URL" "$shots"
)

log "Kubernetes manifests (offline schema validation)"
scripts/k8s-validate.sh

if [ -x scripts/compose-test.sh ] && docker info >/dev/null 2>&1; then
  log "docker compose stack (docker engine found)"
  scripts/compose-test.sh
fi

log "all checks passed"
