#!/usr/bin/env bash
# status-page-check.sh BASE_URL SIM_URL OUT_DIR: the operator's status page (issue 19) of a
# running stack, seen in a real browser (Debian's headless Chromium):
#   1. waits for a green verdict in /status.json, renders /status (--dump-dom) and checks the text
#      for the verdict, every org and the figures; screenshots OUT_DIR/status-green.png; lets the
#      page's script run 7 s (virtual time) and checks it refreshed the page from /status.json;
#   2. makes github-sim fail every request (its fault API), waits for the red verdict, checks the
#      rendered reason; screenshots OUT_DIR/status-red.png; then clears the fault.
# test.sh writes the screenshots to docs/ (committed, shown in README), or to its run directory
# when CI=true (checked only).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

base="$1" sim="$2" out="$3"
mkdir -p "$out"
work="$(mktemp -d -t hubcache-status.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# wait_for_level LEVEL SECONDS: until /status.json's verdict is LEVEL.
wait_for_level() {
  local want="$1" secs="$2" level i
  for ((i = 0; i < secs; i++)); do
    level="$(curl -fsS --max-time 5 "$base/status.json" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["verdict"]["level"])' 2>/dev/null || true)"
    [ "$level" = "$want" ] && return 0
    sleep 1
  done
  curl -sS --max-time 5 "$base/status.json" >&2 || true
  die "the status verdict did not turn $want within ${secs}s"
}

# chromium_run ARGS...: headless Chromium on a throwaway profile (no sandbox: CI runs as root).
chromium_run() {
  chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
    --no-first-run --user-data-dir="$work/profile" --virtual-time-budget=3000 "$@" 2>>"$work/chromium.log"
}

# check_rendered NAME WORDS...: the DOM Chromium rendered contains every WORD.
check_rendered() {
  local name="$1" word
  shift
  chromium_run --dump-dom "$base/status" >"$work/$name.html"
  for word in "$@"; do
    if ! grep -qF -- "$word" "$work/$name.html"; then
      cp "$work/$name.html" "$out/$name.dom.html"
      die "the rendered status page ($name) lacks '$word' (DOM kept in $out/$name.dom.html)"
    fi
  done
}

# screenshot FILE: a PNG of /status, checked to be one.
screenshot() {
  rm -f "$1"
  chromium_run --window-size=1280,1250 --screenshot="$1" "$base/status" >/dev/null
  [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] ||
    die "no PNG screenshot at $1 (see $work/chromium.log)"
}

log "status page: green verdict, rendered in headless Chromium"
wait_for_level green 90
check_rendered green '<span id="level">GREEN</span>' 'Organisation Netflix' 'Organisation acme' \
  'Requests/s' 'Hit ratio: cached keys' 'Upstream requests' 'Coalesced waiters' 'Shed requests' \
  "Fetcher's GitHub budget" '/orgs/acme/repos'
screenshot "$out/status-green.png"

# The page refreshes itself from /status.json every 5 s: with 7 s of (virtual) time the inline
# script has run under the page's Content-Security-Policy, fetched the JSON and applied it.
log "status page: the inline script refreshes it from /status.json (CSP allows exactly that)"
chromium_live() {
  chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
    --no-first-run --user-data-dir="$work/profile" --virtual-time-budget=7000 --dump-dom \
    "$base/status" 2>>"$work/chromium.log"
}
chromium_live >"$work/live.html"
grep -qE 'id="live">[^<]*Live: last refreshed 20[0-9-]+T[0-9:]+Z' "$work/live.html" || {
  cp "$work/live.html" "$out/live.dom.html"
  die "the status page did not refresh itself from /status.json (DOM kept in $out/live.dom.html; CSP errors in $work/chromium.log)"
}

log "status page: github-sim failing turns it red, with its reason"
curl -fsS --max-time 5 -X POST -H 'content-type: application/json' -d '{"status": 500}' \
  "$sim/_sim/faults" >/dev/null
trap 'curl -fsS --max-time 5 -X DELETE "$sim/_sim/faults" >/dev/null || true; rm -rf "$work"' EXIT
wait_for_level red 90
check_rendered red '<span id="level">RED</span>' "every endpoint's latest poll failed" '500'
screenshot "$out/status-red.png"
curl -fsS --max-time 5 -X DELETE "$sim/_sim/faults" >/dev/null
log "status page: screenshots in $out (status-green.png, status-red.png)"
