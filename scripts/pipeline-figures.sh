#!/usr/bin/env bash
# pipeline-figures.sh: measures the refresh pipeline's figures (issue 3) on a real stack.
#
# Starts Redis, github-sim with a generated org (SIM_REPOS, default 1000), two fetchers, views and
# a gateway (release build; FIGURES_BIN=target/debug to use a debug build), then measures:
#   1. change-to-view latency: a repo changed through github-sim's control API, timed until the
#      gateway's /view/top/1/stars shows it (ROUNDS times, at REFRESH_INTERVAL_SECS, default 10);
#   2. steady-state rate-limit spend: github-sim's counters over STEADY_SECS (default 60) with no
#      upstream change, extrapolated to one hour;
#   3. webhooks (issue 18): github-sim's org webhook registered to the gateway's
#      /webhooks/github; delivery-to-view latency over WEBHOOK_ROUNDS changes (default 50;
#      median and p99, goal p99 <= 1 s), then upstream requests over STEADY_SECS while
#      deliveries keep webhooks live (hinted endpoints at WEBHOOK_SAFETY_POLL_SECS, default
#      600), per hour next to the polling-only figure of step 2;
#   4. lease takeover: the polling fetcher killed with SIGKILL, timed until the other one holds the
#      lease (its hubcache_fetcher_lease_held gauge), with LEASE_SECS (default 15);
#   5. many organisations (issue 16): a new stack caching ORG_COUNT orgs (default 30) of
#      ORG_REPOS repositories (default 300) with 3 fetcher replicas: the cold refresh (time to
#      /healthcheck 200, upstream requests and rate-limit units per org), how the orgs' leases
#      spread over the fetchers, the steady state over STEADY_SECS (requests and units per org:
#      all 304s, 0 units), and the gateway's memory per org (its RSS next to a gateway caching
#      the first org only, on the same Redis).
# FIGURES_ONLY=orgs runs step 5 alone. Prints a markdown summary (also to FIGURES_OUT if set). Not
# part of CI; leaves no process behind.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$HUBCACHE_ROOT"

ensure_commands redis-server:redis-server redis-cli:redis-tools curl:curl python3:python3

BIN="${FIGURES_BIN:-$HUBCACHE_ROOT/target/release}"
ROUNDS="${ROUNDS:-5}"
WEBHOOK_ROUNDS="${WEBHOOK_ROUNDS:-50}"
STEADY_SECS="${STEADY_SECS:-60}"
RUN_DIR="$(mktemp -d -t hubcache-figures.XXXXXX)"
trap 'stop_all; rm -rf "$RUN_DIR"' EXIT
trap 'exit 130' INT TERM

if [ -z "${FIGURES_BIN:-}" ]; then
  log "building (release)"
  cargo build --release --locked --bins
fi

unset GITHUB_API_TOKEN GITHUB_API_URL REDIS_URL PUBLIC_URL SIM_WEBHOOK_URL SIM_WEBHOOK_SECRET
# The gateway accepts deliveries from the start; github-sim sends none until step 3 registers
# its hook, so steps 1 and 2 measure polling alone.
export GITHUB_WEBHOOK_SECRET="figures-$RANDOM-$RANDOM"
export SIM_REPOS="${SIM_REPOS:-1000}" GITHUB_ORG=Netflix RUST_LOG=warn PORT="$(free_port)"
export REFRESH_INTERVAL_SECS="${REFRESH_INTERVAL_SECS:-10}" LEASE_SECS="${LEASE_SECS:-15}"
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }
# FIGURES_ONLY=orgs measures step 5 alone.
if [ "${FIGURES_ONLY:-}" != orgs ]; then
start_stack "$BIN" "$RUN_DIR"
BASE="$HUBCACHE_BASE_URL"
SIM="$GITHUB_API_URL"
FIRST_FETCHER_PID="${HUBCACHE_PIDS[2]}"
SECOND_METRICS_PORT="$(free_port)"
start_bg fetcher-2 "$RUN_DIR/fetcher-2.log" env METRICS_PORT="$SECOND_METRICS_PORT" "$BIN/fetcher"

lease_held() { # lease_held PORT: the fetcher's hubcache_fetcher_lease_held gauge (or "?")
  curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk '$1 ~ /^hubcache_fetcher_lease_held([{]|$)/ { print $2; found=1; exit } END { if (!found) print "?" }'
}

REPO="$(curl -fsS "$SIM/orgs/Netflix/repos?per_page=1&page=7" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')"

log "change-to-view latency ($ROUNDS rounds, refresh interval ${REFRESH_INTERVAL_SECS}s)"
LATENCIES=()
for ((round = 1; round <= ROUNDS; round++)); do
  stars=$((50000000 + round))
  # Start at a random point of the fetcher's cycle, as a real change would.
  sleep "$(python3 -c "import random; print(round(random.uniform(0, $REFRESH_INTERVAL_SECS), 2))")"
  start=$(now_ms)
  curl -fsS -o /dev/null -X PATCH "$SIM/_sim/repos/Netflix/$REPO" -d "{\"stargazers_count\": $stars}"
  want="[[\"Netflix/$REPO\", $stars]]"
  deadline=$((start + (REFRESH_INTERVAL_SECS + 30) * 1000))
  while [ "$(curl -s --max-time 2 "$BASE/view/top/1/stars")" != "$want" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || die "round $round: the view did not change within $((REFRESH_INTERVAL_SECS + 30)) s"
    sleep 0.02
  done
  LATENCIES+=($(($(now_ms) - start)))
  log "  round $round: ${LATENCIES[-1]} ms"
done

log "steady state: ${STEADY_SECS}s with no upstream change"
sleep 2
curl -fsS -o /dev/null -X POST "$SIM/_sim/stats/reset"
sleep "$STEADY_SECS"
STATS="$(curl -fsS "$SIM/_sim/stats")"

log "webhooks: github-sim's org webhook to $BASE/webhooks/github"
HOOK_ID="$(curl -fsS -X POST "$SIM/_sim/orgs/Netflix/hooks" \
  -d "{\"config\": {\"url\": \"$BASE/webhooks/github\", \"secret\": \"$GITHUB_WEBHOOK_SECRET\"}}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
ping_deadline=$(($(now_ms) + 10000))
until curl -fsS "$SIM/_sim/orgs/Netflix/hooks/$HOOK_ID/deliveries" | grep -q '"status_code":200'; do
  [ "$(now_ms)" -lt "$ping_deadline" ] || die "github-sim's ping did not reach the gateway"
  sleep 0.1
done
log "delivery-to-view latency ($WEBHOOK_ROUNDS changes, refresh interval ${REFRESH_INTERVAL_SECS}s)"
HOOK_LATENCIES=()
for ((round = 1; round <= WEBHOOK_ROUNDS; round++)); do
  stars=$((60000000 + round))
  sleep "$(python3 -c "import random; print(round(random.uniform(0.2, 1.0), 2))")"
  start=$(now_ms)
  curl -fsS -o /dev/null -X PATCH "$SIM/_sim/repos/Netflix/$REPO" -d "{\"stargazers_count\": $stars}"
  want="[[\"Netflix/$REPO\", $stars]]"
  deadline=$((start + (REFRESH_INTERVAL_SECS + 30) * 1000))
  while [ "$(curl -s --max-time 2 "$BASE/view/top/1/stars")" != "$want" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || die "webhook round $round: the view did not change"
    sleep 0.01
  done
  HOOK_LATENCIES+=($(($(now_ms) - start)))
done
log "  delivery-to-view: ${HOOK_LATENCIES[*]} ms"
log "webhooks live: ${STEADY_SECS}s with no upstream change"
curl -fsS -o /dev/null -X POST "$SIM/_sim/stats/reset"
sleep "$STEADY_SECS"
HOOK_STATS="$(curl -fsS "$SIM/_sim/stats")"

log "lease takeover: SIGKILL the polling fetcher"
if [ "$(lease_held "$FETCHER_METRICS_PORT")" = 1 ]; then
  HOLDER_PID="$FIRST_FETCHER_PID"; OTHER_PORT="$SECOND_METRICS_PORT"
else
  HOLDER_PID="${HUBCACHE_PIDS[-1]}"; OTHER_PORT="$FETCHER_METRICS_PORT"
fi
[ "$(lease_held "$OTHER_PORT")" = 0 ] || die "expected exactly one fetcher holding the lease"
killed=$(now_ms)
kill -KILL "$HOLDER_PID"
until [ "$(lease_held "$OTHER_PORT")" = 1 ]; do
  [ $(($(now_ms) - killed)) -lt $(((LEASE_SECS + 10) * 1000)) ] || die "no takeover within $((LEASE_SECS + 10)) s"
  sleep 0.05
done
TAKEOVER_MS=$(($(now_ms) - killed))

SUMMARY="$(python3 - "$STEADY_SECS" "$TAKEOVER_MS" "$LEASE_SECS" "$REFRESH_INTERVAL_SECS" "$SIM_REPOS" "$STATS" "$HOOK_STATS" "${HOOK_LATENCIES[*]}" "${LATENCIES[@]}" <<'EOF'
import json, statistics, sys
steady, takeover, lease, interval, repos, stats, hook_stats, hook_lat = sys.argv[1:9]
lat = [int(x) for x in sys.argv[9:]]
hook_lat = sorted(int(x) for x in hook_lat.split())
stats = json.loads(stats)
hook_stats = json.loads(hook_stats)
steady = int(steady)
units = stats.get("rate_limit_used", 0)
total = stats.get("total", 0)
nm = stats.get("not_modified", stats.get("not_modified_total", "?"))
print(f"## Refresh pipeline figures ({repos} repositories, refresh interval {interval} s, lease {lease} s)\n")
print(f"- change-to-view latency (github-sim change to the gateway's /view/top/1/stars), {len(lat)} rounds: "
      f"min {min(lat)} ms, median {statistics.median(lat):.0f} ms, max {max(lat)} ms (bound: interval + 1 s = {int(interval) * 1000 + 1000} ms)")
print(f"- steady state over {steady} s: {total} upstream requests ({nm} x 304), {units} rate-limit units "
      f"= {units * 3600 / steady:.0f} units per hour")
p99 = hook_lat[min(len(hook_lat) - 1, int(round(0.99 * (len(hook_lat) - 1))))]
print(f"- webhooks: delivery-to-view latency (github-sim change, its signed delivery to the gateway, "
      f"to /view/top/1/stars), {len(hook_lat)} changes: median {statistics.median(hook_lat):.0f} ms, "
      f"p99 {p99} ms, max {hook_lat[-1]} ms (goal p99 <= 1000 ms; polling alone: median "
      f"{statistics.median(lat):.0f} ms above)")
hook_total = hook_stats.get("total", 0)
print(f"- upstream requests per hour with no upstream change: polling alone {total * 3600 / steady:.0f} "
      f"({units * 3600 / steady:.0f} units); with webhooks live {hook_total * 3600 / steady:.0f} "
      f"({hook_stats.get('rate_limit_used', 0) * 3600 / steady:.0f} units): the endpoints the deliveries named "
      f"(the repos list, for star events) poll at the safety interval, the others at the refresh interval")
print(f"- lease takeover after SIGKILL of the polling fetcher: {int(takeover) / 1000:.2f} s (lease {lease} s)")
EOF
)"
printf '\n%s\n' "$SUMMARY"
[ -z "${FIGURES_OUT:-}" ] || printf '%s\n' "$SUMMARY" >"$FIGURES_OUT"
else
  [ -z "${FIGURES_OUT:-}" ] || : >"$FIGURES_OUT"
fi

# --- 5. many organisations ---------------------------------------------------------------------
ORG_COUNT="${ORG_COUNT:-30}"
ORG_REPOS="${ORG_REPOS:-300}"
log "many organisations: $ORG_COUNT orgs of $ORG_REPOS repos on 3 fetchers (a new stack)"
stop_all
unset REDIS_URL GITHUB_API_URL GITHUB_ORG
ORG_LIST="Netflix"
for ((i = 2; i <= ORG_COUNT; i++)); do ORG_LIST+=",$(printf 'org-%02d' "$i")"; done
export GITHUB_ORGS="$ORG_LIST" SIM_REPOS="$ORG_REPOS" FETCHER_REPLICAS=3 PORT="$(free_port)"
cold_start=$(now_ms)
start_stack "$BIN" "$RUN_DIR/orgs"
COLD_MS=$(($(now_ms) - cold_start))
COLD_STATS="$(curl -fsS "$GITHUB_API_URL/_sim/stats")"
ORG_IDS="$(for org in ${ORG_LIST//,/ }; do
  printf '%s %s\n' "$org" "$(curl -fsS "$GITHUB_API_URL/orgs/$org" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
done)"
HELD=""
for port in $FETCHER_METRICS_PORTS; do
  HELD+="$(curl -fsS --max-time 2 "http://127.0.0.1:$port/metrics" |
    awk '$1 == "hubcache_fetcher_orgs_held" { print $2 }') "
done
log "  cold refresh: ${COLD_MS} ms; orgs held per fetcher: $HELD"
log "  steady state: ${STEADY_SECS}s with no upstream change"
curl -fsS -o /dev/null -X POST "$GITHUB_API_URL/_sim/stats/reset"
sleep "$STEADY_SECS"
ORG_STEADY_STATS="$(curl -fsS "$GITHUB_API_URL/_sim/stats")"
# Where the leases settled once every replica had joined (the first one up takes every org at a
# cold start, then hands each over to the replica rendezvous hashing prefers).
HELD_STEADY=""
for port in $FETCHER_METRICS_PORTS; do
  HELD_STEADY+="$(curl -fsS --max-time 2 "http://127.0.0.1:$port/metrics" |
    awk '$1 == "hubcache_fetcher_orgs_held" { print $2 }') "
done
# What the gateway's copies hold (snapshots with their compressed copies and pages, views).
SERVED_BYTES="$(curl -fsS --max-time 5 "$HUBCACHE_BASE_URL/metrics" |
  awk '$1 ~ /^hubcache_gateway_org_served_bytes[{]/ { sum += $2 } END { printf "%d", sum }')"
GATEWAY_PID="${HUBCACHE_PIDS[-1]}"
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
RSS_ALL="$(rss_kib "$GATEWAY_PID")"
ONE_PORT="$(free_port)"
start_bg gateway-one-org "$RUN_DIR/orgs/gateway-one.log" env GITHUB_ORGS=Netflix PORT="$ONE_PORT" "$BIN/gateway"
wait_for_http "http://127.0.0.1:$ONE_PORT/healthcheck" 60 || die "the one-org gateway did not become healthy"
RSS_ONE="$(rss_kib "${HUBCACHE_PIDS[-1]}")"

ORG_SUMMARY="$(python3 - "$ORG_COUNT" "$ORG_REPOS" "$COLD_MS" "$STEADY_SECS" "$RSS_ALL" "$RSS_ONE" "$HELD" "$COLD_STATS" "$ORG_STEADY_STATS" "$ORG_IDS" "$HELD_STEADY" "$SERVED_BYTES" <<'EOF'
import json, statistics, sys
count, repos, cold_ms, steady, rss_all, rss_one, held, cold, warm, ids, held_steady, served = sys.argv[1:13]
count, steady, rss_all, rss_one = int(count), int(steady), int(rss_all), int(rss_one)
cold, warm = json.loads(cold), json.loads(warm)
owner = {}
for line in ids.strip().splitlines():
    org, org_id = line.split()
    owner[f"/orgs/{org}".lower()] = org
    owner[f"/organizations/{org_id}"] = org
def per_org(stats):
    counts = {org: 0 for org in owner.values()}
    other = 0
    for path, n in stats.get("by_path", {}).items():
        key = "/".join(path.lower().split("/")[:3])
        if key in owner:
            counts[owner[key]] += n
        else:
            other += n
    return counts, other
cold_org, cold_other = per_org(cold)
warm_org, warm_other = per_org(warm)
def spread(values):
    values = sorted(values)
    return f"min {values[0]}, median {statistics.median(values):.0f}, max {values[-1]}"
units_cold = cold.get("rate_limit_used", 0)
units_warm = warm.get("rate_limit_used", 0)
print(f"## Many organisations ({count} orgs of {repos} repositories, 3 fetcher replicas)\n")
print(f"- cold refresh (start to /healthcheck 200): {int(cold_ms) / 1000:.1f} s; upstream requests per org: "
      f"{spread(cold_org.values())} ({cold.get('total', 0)} in all, {cold_other} not of one org: the root document); "
      f"rate-limit units {units_cold} in all = {units_cold / count:.1f} per org")
print(f"- orgs held per fetcher replica (hubcache_fetcher_orgs_held): {', '.join(held.split())} when the "
      f"gateway turned ready; {', '.join(held_steady.split())} after the steady state")
print(f"- steady state over {steady} s with no upstream change: upstream requests per org {spread(warm_org.values())} "
      f"({warm.get('not_modified', 0)} of {warm.get('total', 0)} answered 304), rate-limit units "
      f"{units_warm} in all ({units_warm / count:.1f} per org)")
per_org_kib = (rss_all - rss_one) / max(count - 1, 1)
print(f"- gateway memory: RSS {rss_all / 1024:.1f} MiB caching {count} orgs, {rss_one / 1024:.1f} MiB caching one: "
      f"about {per_org_kib / 1024:.2f} MiB per org of {repos} repositories; the copies themselves "
      f"(hubcache_gateway_org_served_bytes, summed) {int(served) / 1048576:.1f} MiB = "
      f"{int(served) / count / 1048576:.2f} MiB per org")
EOF
)"
printf '\n%s\n' "$ORG_SUMMARY"
[ -z "${FIGURES_OUT:-}" ] || printf '\n%s\n' "$ORG_SUMMARY" >>"$FIGURES_OUT"
