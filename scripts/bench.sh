#!/usr/bin/env bash
# bench.sh: hubcache's gateway side by side with nginx proxy_cache (issue 8), on one machine and
# one data set; regenerates bench/results.md. Not part of CI's pass/fail.
#
# What it does (everything on 127.0.0.1, everything bounded in time, every process it starts is
# stopped on exit):
#   1. builds the release binaries (skip with BENCH_SKIP_BUILD=1) and installs wrk and nginx
#      through apt when run as root and they are missing;
#   2. starts Redis, github-sim with a generated org of BENCH_REPOS (1,000) repositories, fetcher,
#      views and gateway (scripts/lib/common.sh start_stack) and records the fetcher's cold fill
#      (time, requests, rate-limit units), then several unchanged refresh cycles;
#   3. copies the exact bytes the gateway serves for the benchmarked paths (identity and gzip)
#      into a docroot and starts nginx (bench/nginx.conf.template, own prefix in a temp dir):
#      an origin server for that docroot, the comparison cache (proxy_cache + proxy_cache_lock,
#      `gzip on`, pass-through paths proxied to github-sim), and a precompressed variant;
#   4. loads gateway and nginx alternately with wrk (same threads, connections, duration), with
#      and without `Accept-Encoding: gzip`, sampling the gateway's RSS; on the pass-through path
#      also a second replica whose in-process cache stores nothing (CACHE_MAX_BYTES=1024), so
#      every answer is an L2 hit (the fleet cache in Redis, L1 cold);
#   5. measures coalescing: BENCH_COALESCE_N (1,000) concurrent misses on one path with 500 ms of
#      upstream latency, counted by github-sim; and the fleet figure: the same spread over three
#      gateway replicas on one Redis (upstream requests per key, goal 1);
#   6. writes bench/results.md (bench/render_results.py) with a PASS/FAIL line per target.
#
# Knobs (environment): BENCH_DURATION (10 s per run), BENCH_WARMUP (3 s), BENCH_THREADS (one
# per client CPU: two wrk threads time-sharing one CPU add their own scheduling delays to the
# latencies they measure),
# BENCH_CONNECTIONS (64), BENCH_ROUNDS (3; the gateway/nginx order flips every run),
# BENCH_PIN (split: servers on the first half of the CPUs, wrk on the rest; none: no pinning),
# BENCH_REPOS (1000), BENCH_COALESCE_N (1000), BENCH_TIMEOUT (2400 s for the whole script),
# BENCH_LOGS (on: per-request logs as deployed, gateway RUST_LOG=info and nginx access_log in
# the combined format; off: gateway RUST_LOG=warn and nginx access_log off),
# BENCH_QUIET_WAIT (300 s: how long to wait for a 1-minute load average below 1.0 before starting),
# BENCH_KEEP=1 keeps the run directory, BENCH_SKIP_BUILD=1, BENCH_OUT (bench/results.md).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$HUBCACHE_ROOT"

DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-3}"
THREADS="${BENCH_THREADS:-}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
ROUNDS="${BENCH_ROUNDS:-3}"
PIN="${BENCH_PIN:-split}"
REPOS="${BENCH_REPOS:-1000}"
COALESCE_N="${BENCH_COALESCE_N:-1000}"
TIMEOUT="${BENCH_TIMEOUT:-2400}"
LOGS="${BENCH_LOGS:-on}"
OUT="${BENCH_OUT:-$HUBCACHE_ROOT/bench/results.md}"
ORG="Netflix"
REFRESH_SECS=5
UNCHANGED_CYCLES=3
BENCH_DIR="$HUBCACHE_ROOT/bench"

RUN_DIR="$(mktemp -d -t hubcache-bench.XXXXXX)"
# nginx's workers run as an unprivileged user (nobody) when started by root: they must reach the
# docroot and the cache directory inside.
chmod 755 "$RUN_DIR"
MEASURE="$RUN_DIR/measurements.jsonl"
: >"$MEASURE"
BENCH_PIDS=()   # the watchdog and the RSS sampler (the stack and nginx are in HUBCACHE_PIDS)

cleanup() {
  local status=$?
  local pid
  for pid in "${BENCH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  stop_all
  for pid in "${BENCH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ $status -ne 0 ] || [ "${BENCH_KEEP:-0}" = 1 ]; then
    warn "run directory kept: $RUN_DIR"
  else
    rm -rf "$RUN_DIR"
  fi
  exit $status
}
trap cleanup EXIT
trap 'warn "interrupted"; exit 130' INT TERM

# Watchdog: the whole script is bounded; it TERMs the script, whose trap cleans up.
(
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep "$TIMEOUT" &
  sleeper=$!
  wait "$sleeper"
  printf 'bench.sh: time limit of %s s reached\n' "$TIMEOUT" >&2
  kill -TERM $$
) &
BENCH_PIDS+=("$!")

ensure_commands redis-server:redis-server redis-cli:redis-tools curl:curl python3:python3 \
  wrk:wrk nginx:nginx taskset:util-linux gzip:gzip

# record KIND JSON: appends one measurement line for render_results.py.
record() { printf '{"kind":"%s","data":%s}\n' "$1" "$2" >>"$MEASURE"; }
now_ms() { date +%s%3N; }
sim_stats() { curl -sf --max-time 5 "$GITHUB_API_URL/_sim/stats"; }
sim_post() { curl -sf --max-time 5 -X POST "$GITHUB_API_URL/_sim/$1" ${2:+-d "$2"} >/dev/null; }

# ---------------------------------------------------------------------------------------------
# 1. Build, CPU plan.
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  timeout 1800 cargo build --release --workspace --bins
fi
BIN="$HUBCACHE_ROOT/target/release"
for b in github-sim fetcher views gateway; do [ -x "$BIN/$b" ] || die "missing $BIN/$b"; done

# Measurements on a busy machine are meaningless: wait (bounded) for the 1-minute load to settle.
quiet_wait="${BENCH_QUIET_WAIT:-300}"
for ((i = 0; i < quiet_wait; i += 5)); do
  awk '{exit !($1 < 1.0)}' /proc/loadavg && break
  [ $i -eq 0 ] && log "waiting up to ${quiet_wait}s for the load average to drop below 1.0 ($(cut -d' ' -f1 /proc/loadavg) now)"
  sleep 5
done
awk '{exit !($1 < 1.0)}' /proc/loadavg || warn "the machine is busy (load $(cut -d' ' -f1-3 /proc/loadavg)): figures will be noisy"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
NCPU="$(nproc)"
ALL_CPUS="0-$((NCPU - 1))"
if [ "$PIN" = split ] && [ "$NCPU" -ge 2 ]; then
  SERVER_CORES=$((NCPU / 2))
  SERVER_CPUS="0-$((SERVER_CORES - 1))"
  CLIENT_CPUS="$SERVER_CORES-$((NCPU - 1))"
  PIN_NOTE="servers (gateway, nginx and the rest of the stack) pinned to CPU $SERVER_CPUS, wrk and the coalescing client to CPU $CLIENT_CPUS (taskset); $SERVER_CORES worker(s) each for gateway (WORKERS) and nginx (worker_processes)"
else
  PIN=none
  SERVER_CORES="$NCPU"
  SERVER_CPUS="$ALL_CPUS"
  CLIENT_CPUS="$ALL_CPUS"
  PIN_NOTE="no CPU pinning: wrk and the servers share all $NCPU CPUs; $NCPU worker(s) each for gateway (WORKERS) and nginx (worker_processes)"
fi
log "CPU plan: $PIN_NOTE"
if [ -z "$THREADS" ]; then
  if [ "$PIN" = split ]; then THREADS=$((NCPU - SERVER_CORES)); else THREADS="$NCPU"; fi
fi

# ---------------------------------------------------------------------------------------------
# 2. The stack, cold fill, unchanged cycles.
unset GITHUB_API_TOKEN GITHUB_API_URL REDIS_URL PUBLIC_URL
export GITHUB_ORG="$ORG" SIM_REPOS="$REPOS" REFRESH_INTERVAL_SECS="$REFRESH_SECS"
if [ "$LOGS" = on ]; then
  export RUST_LOG=info
  ACCESS_LOG="$RUN_DIR/nginx-access.log"
  LOG_NOTE="per-request logs on both sides, as deployed: gateway RUST_LOG=info (one JSON line per request), nginx access_log (combined format) to a file"
else
  export RUST_LOG=warn,fetcher=info   # the fetcher (not under load) still reports its cold fill
  ACCESS_LOG=off
  LOG_NOTE="per-request logs off on both sides: gateway RUST_LOG=warn, nginx access_log off (the fetcher keeps info)"
fi
export WORKERS="$SERVER_CORES"
export PORT="$(free_port)"
CACHE_MAX_BYTES="${CACHE_MAX_BYTES:-$((64 * 1024 * 1024))}"
CACHE_TTL_SECS="${CACHE_TTL_SECS:-60}"
export CACHE_MAX_BYTES CACHE_TTL_SECS

# Children started from now on inherit the servers' CPUs.
[ "$PIN" = split ] && taskset -p -c "$SERVER_CPUS" $$ >/dev/null
stack_started_ms=$(now_ms)
start_stack "$BIN" "$RUN_DIR"
healthy_ms=$(now_ms)
GW="$HUBCACHE_BASE_URL"
SIM="$GITHUB_API_URL"
cold_stats="$(sim_stats)"
GATEWAY_PID="${HUBCACHE_PIDS[$((${#HUBCACHE_PIDS[@]} - 1))]}"
[ "$(cat "/proc/$GATEWAY_PID/comm" 2>/dev/null)" = gateway ] || die "cannot find the gateway's pid"
log "stack healthy after $((healthy_ms - stack_started_ms)) ms (gateway pid $GATEWAY_PID)"
# Two more replicas on the same Redis: GW2 as deployed, GW_L2 with an in-process cache too small
# for any answer (every pass-through request is then answered from the fleet cache, L2).
GW2_PORT="$(free_port)"
start_bg gateway2 "$RUN_DIR/gateway2.log" env PORT="$GW2_PORT" "$BIN/gateway"
GW_L2_PORT="$(free_port)"
until [ "$GW_L2_PORT" != "$GW2_PORT" ]; do GW_L2_PORT="$(free_port)"; done
start_bg gateway-l2 "$RUN_DIR/gateway-l2.log" env PORT="$GW_L2_PORT" CACHE_MAX_BYTES=1024 "$BIN/gateway"
GW2="http://127.0.0.1:$GW2_PORT"
GW_L2="http://127.0.0.1:$GW_L2_PORT"
wait_for_http "$GW2/healthcheck" 60 || die "the second gateway did not become healthy (see $RUN_DIR/gateway2.log)"
wait_for_http "$GW_L2/healthcheck" 60 || die "the L1-cold gateway did not become healthy (see $RUN_DIR/gateway-l2.log)"
record cold "$(python3 -c 'import json,sys; print(json.dumps({"stats": json.loads(sys.argv[1]), "stack_to_healthy_ms": int(sys.argv[2]), "fetcher_log": sys.argv[3], "refresh_interval_secs": int(sys.argv[4])}))' \
  "$cold_stats" "$((healthy_ms - stack_started_ms))" "$RUN_DIR/fetcher.log" "$REFRESH_SECS")"

log "unchanged refreshes: $UNCHANGED_CYCLES cycles of $REFRESH_SECS s"
sim_post stats/reset
sleep $((UNCHANGED_CYCLES * REFRESH_SECS + 1))
record unchanged "$(python3 -c 'import json,sys; print(json.dumps({"stats": json.loads(sys.argv[1]), "seconds": int(sys.argv[2]), "cycles": int(sys.argv[3])}))' \
  "$(sim_stats)" "$((UNCHANGED_CYCLES * REFRESH_SECS + 1))" "$UNCHANGED_CYCLES")"

# ---------------------------------------------------------------------------------------------
# 3. Docroot with the gateway's bytes; nginx.
DOCROOT="$RUN_DIR/docroot"
CACHED_PATHS=("/orgs/$ORG" "/orgs/$ORG/repos" "/view/top/10/stars")
for p in "${CACHED_PATHS[@]}"; do
  mkdir -p "$DOCROOT$(dirname "$p")"
  curl -sf --max-time 30 -o "$DOCROOT$p.json" "$GW$p" || die "gateway GET $p failed"
  curl -sf --max-time 30 -o "$RUN_DIR/again.json" "$GW$p"
  cmp -s "$DOCROOT$p.json" "$RUN_DIR/again.json" || die "gateway body of $p changed between two reads"
  # The gateway's own gzip bytes when it sends gzip, else gzip -6 (recorded in the results).
  enc="$(curl -sf --max-time 30 -H 'Accept-Encoding: gzip' -o "$DOCROOT$p.json.gz" -D - "$GW$p" |
    tr -d '\r' | awk -F': *' 'tolower($1)=="content-encoding"{print tolower($2)}')"
  if [ "$enc" != gzip ]; then
    warn "gateway sent no gzip for $p; the precompressed nginx variant uses gzip -6"
    gzip -6 -n -c "$DOCROOT$p.json" >"$DOCROOT$p.json.gz"
  fi
  record body "$(printf '{"path":"%s","bytes":%s,"gzip_bytes":%s,"gateway_gzip":%s}' "$p" \
    "$(stat -c %s "$DOCROOT$p.json")" "$(stat -c %s "$DOCROOT$p.json.gz")" \
    "$([ "$enc" = gzip ] && echo true || echo false)")"
done
# The warm pass-through path: a repository of the org (not one of the cached keys).
PT_REPO="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["full_name"])' "$DOCROOT/orgs/$ORG/repos.json")"
PT_PATH="/repos/$PT_REPO"

ORIGIN_PORT="$(free_port)"; FRONT_PORT="$(free_port)"; FRONT_GZS_PORT="$(free_port)"
until [ "$FRONT_PORT" != "$ORIGIN_PORT" ] && [ "$FRONT_GZS_PORT" != "$ORIGIN_PORT" ] &&
  [ "$FRONT_GZS_PORT" != "$FRONT_PORT" ]; do FRONT_GZS_PORT="$(free_port)"; FRONT_PORT="$(free_port)"; done
mkdir -p "$RUN_DIR/nginx-tmp" "$RUN_DIR/nginx-cache"
sed -e "s|@RUN_DIR@|$RUN_DIR|g" -e "s|@DOCROOT@|$DOCROOT|g" -e "s|@WORKERS@|$SERVER_CORES|g" \
  -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" -e "s|@FRONT_PORT@|$FRONT_PORT|g" \
  -e "s|@FRONT_GZS_PORT@|$FRONT_GZS_PORT|g" -e "s|@SIM_PORT@|${SIM##*:}|g" \
  -e "s|@PT_TTL@|$CACHE_TTL_SECS|g" -e "s|@ACCESS_LOG@|$ACCESS_LOG|g" "$BENCH_DIR/nginx.conf.template" >"$RUN_DIR/nginx.conf"
nginx -t -q -p "$RUN_DIR" -e "$RUN_DIR/nginx-error.log" -c "$RUN_DIR/nginx.conf" ||
  die "nginx rejected $RUN_DIR/nginx.conf"
start_bg nginx "$RUN_DIR/nginx.out" nginx -p "$RUN_DIR" -e "$RUN_DIR/nginx-error.log" -c "$RUN_DIR/nginx.conf"
NGX="http://127.0.0.1:$FRONT_PORT"
NGX_GZS="http://127.0.0.1:$FRONT_GZS_PORT"
wait_for_http "$NGX/orgs/$ORG" 10 || die "nginx did not start (see $RUN_DIR/nginx-error.log)"
# Everything the benchmark starts from here on (wrk, the coalescing client) runs on the client CPUs.
[ "$PIN" = split ] && taskset -p -c "$ALL_CPUS" $$ >/dev/null

# check_same BASE PATH: nginx serves the gateway's bytes (identity and, decompressed, gzip), and
# the second request is a cache hit.
check_same() {
  local base="$1" p="$2" ae h
  for ae in identity gzip; do
    curl -sf --max-time 30 -H "Accept-Encoding: $ae" -o "$RUN_DIR/warm.body" "$base$p" ||
      die "nginx GET $p failed"
    h="$(curl -sf --max-time 30 -H "Accept-Encoding: $ae" -D - -o "$RUN_DIR/check.body" "$base$p" | tr -d '\r')"
    grep -qi '^x-cache-status: HIT' <<<"$h" || die "nginx did not cache $p ($ae): $(grep -i cache-status <<<"$h")"
    if [ "$ae" = gzip ]; then
      grep -qi '^content-encoding: gzip' <<<"$h" || die "nginx sent no gzip for $p"
      gzip -dc "$RUN_DIR/check.body" >"$RUN_DIR/check.plain"
    else
      mv "$RUN_DIR/check.body" "$RUN_DIR/check.plain"
    fi
    if [ -f "$DOCROOT$p.json" ]; then
      cmp -s "$RUN_DIR/check.plain" "$DOCROOT$p.json" || die "nginx's bytes for $p differ from the gateway's"
    fi
  done
}
for p in "${CACHED_PATHS[@]}"; do check_same "$NGX" "$p"; check_same "$NGX_GZS" "$p"; done
check_same "$NGX" "$PT_PATH"
# Warm the gateway's pass-through entry and check it is a hit.
for ae in identity gzip; do
  curl -sf --max-time 30 -H "Accept-Encoding: $ae" -o /dev/null "$GW$PT_PATH" || die "gateway GET $PT_PATH failed"
done
cs="$(curl -sf --max-time 30 -D - -o "$RUN_DIR/pt.body" "$GW$PT_PATH" | tr -d '\r' | awk -F': *' 'tolower($1)=="cache-status"{print $2}')"
[[ "$cs" == *hit* ]] || warn "gateway pass-through second GET is not a hit (Cache-Status: '$cs')"
cs_l2="$(curl -sf --max-time 30 -D - -o /dev/null "$GW_L2$PT_PATH" | tr -d '\r' | awk -F': *' 'tolower($1)=="cache-status"{print $2}')"
[[ "$cs_l2" == *detail=l2* ]] || warn "the L1-cold gateway's GET is not an L2 hit (Cache-Status: '$cs_l2')"
cmp -s "$RUN_DIR/pt.body" "$RUN_DIR/check.plain" ||
  warn "gateway and nginx pass-through bodies for $PT_PATH differ (sizes $(stat -c %s "$RUN_DIR/pt.body") vs $(stat -c %s "$RUN_DIR/check.plain"))"
record body "$(printf '{"path":"%s","bytes":%s,"gzip_bytes":null,"gateway_gzip":null,"passthrough":true,"cache_status":"%s"}' \
  "$PT_PATH" "$(stat -c %s "$RUN_DIR/pt.body")" "$cs")"

# ---------------------------------------------------------------------------------------------
# 4. wrk, alternating.
RSS_LOG="$RUN_DIR/rss.log"
PHASE_FILE="$RUN_DIR/phase"
echo idle >"$PHASE_FILE"
(
  trap 'exit 0' TERM
  while kill -0 "$GATEWAY_PID" 2>/dev/null; do
    printf '%s %s %s\n' "$(cat "$PHASE_FILE")" \
      "$(awk '/^VmRSS:/{print $2}' "/proc/$GATEWAY_PID/status")" \
      "$(awk '/^VmHWM:/{print $2}' "/proc/$GATEWAY_PID/status")" >>"$RSS_LOG" 2>/dev/null || true
    sleep 0.25
  done
) &
BENCH_PIDS+=("$!")

# run_wrk SERVER BASE PATH GZIP ROUND: warm-up, then the measured run; records one line.
run_wrk() {
  local server="$1" base="$2" p="$3" gz="$4" round="$5" args=() out
  [ "$gz" = true ] && args=(-H 'Accept-Encoding: gzip')
  taskset -c "$CLIENT_CPUS" timeout $((WARMUP + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" --timeout 10s \
    "${args[@]}" "$base$p" >/dev/null 2>&1 || true
  echo "$server $p gzip=$gz" >"$PHASE_FILE"
  out="$(taskset -c "$CLIENT_CPUS" timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
    --timeout 10s --latency -s "$BENCH_DIR/wrk-report.lua" "${args[@]}" "$base$p" 2>&1)" || true
  echo idle >"$PHASE_FILE"
  # Keep the request logs from filling the disk (both writers append or write sparse).
  truncate -s 0 "$RUN_DIR/gateway.log" 2>/dev/null || true
  [ "$ACCESS_LOG" = off ] || truncate -s 0 "$ACCESS_LOG" 2>/dev/null || true
  local line
  line="$(grep '^WRK_RESULT ' <<<"$out" | head -n1 | cut -d' ' -f2-)"
  if [ -z "$line" ]; then
    warn "wrk gave no result for $server $p: $(tail -n 3 <<<"$out")"
    line='null'
  fi
  record wrk "$(printf '{"server":"%s","path":"%s","gzip":%s,"round":%s,"result":%s}' "$server" "$p" "$gz" "$round" "$line")"
  printf '  %-18s %-28s gzip=%-5s %s\n' "$server" "$p" "$gz" \
    "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("no result" if r is None else "%.0f req/s p50 %.2f ms p99 %.2f ms" % (r["rps"], r["p50_us"]/1000, r["p99_us"]/1000))' "$line")" >&2
}

BENCH_PATHS=("${CACHED_PATHS[@]}" "$PT_PATH")
log "wrk: $THREADS threads, $CONNECTIONS connections, ${DURATION}s per run after ${WARMUP}s warm-up, $ROUNDS round(s)"
flip=0
for ((round = 1; round <= ROUNDS; round++)); do
  for p in "${BENCH_PATHS[@]}"; do
    for gz in false true; do
      servers=(gateway nginx)
      [ $flip -eq 1 ] && servers=(nginx gateway)
      flip=$((1 - flip))
      for s in "${servers[@]}"; do
        case "$s" in
          gateway) run_wrk gateway "$GW" "$p" "$gz" "$round" ;;
          nginx) run_wrk nginx "$NGX" "$p" "$gz" "$round" ;;
        esac
      done
      # The same pass-through answer from the fleet cache (L2) with L1 cold, in the same round.
      [ "$p" = "$PT_PATH" ] && run_wrk gateway_l2 "$GW_L2" "$p" "$gz" "$round"
      if [ "$gz" = true ] && [ "$p" != "$PT_PATH" ]; then
        run_wrk nginx_gzip_static "$NGX_GZS" "$p" "$gz" "$round"
      fi
    done
  done
done
record rss "$(python3 - "$RSS_LOG" "$CACHE_MAX_BYTES" <<'PY'
import json, sys
loaded, idle, hwm = [], [], 0
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) < 3 or not parts[-1].isdigit():
        continue
    rss, h = int(parts[-2]), int(parts[-1])
    hwm = max(hwm, h)
    (idle if parts[0] == "idle" else loaded).append((" ".join(parts[:-2]), rss))
peak = max(loaded, key=lambda x: x[1]) if loaded else ("-", 0)
print(json.dumps({"max_rss_kb_under_load": peak[1], "at": peak[0], "vmhwm_kb": hwm,
                  "samples": len(loaded), "cache_max_bytes": int(sys.argv[2])}))
PY
)"

# ---------------------------------------------------------------------------------------------
# 5. Coalescing: COALESCE_N concurrent misses on one uncached path, 500 ms of upstream latency.
members="$(curl -sf --max-time 30 "$GW/orgs/$ORG/members")"
read -r CO_GW CO_NGX < <(python3 -c 'import json,sys; m=json.loads(sys.argv[1]); print("/users/"+m[-1]["login"], "/users/"+m[-2]["login"])' "$members")
log "coalescing: $COALESCE_N concurrent GETs of $CO_GW (gateway) and $CO_NGX (nginx), upstream latency 500 ms"
sim_post latency '{"ms": 500}'
for target in gateway nginx; do
  if [ $target = gateway ]; then url="$GW$CO_GW"; p="$CO_GW"; else url="$NGX$CO_NGX"; p="$CO_NGX"; fi
  sim_post stats/reset
  res="$(taskset -c "$CLIENT_CPUS" timeout 120 python3 "$BENCH_DIR/coalesce.py" "$url" "$COALESCE_N" 60)" ||
    res='null'
  sleep 1
  record coalesce "$(python3 -c 'import json,sys; s=json.loads(sys.argv[3]); print(json.dumps({"server": sys.argv[1], "path": sys.argv[2], "upstream": s["by_path"].get(sys.argv[2], 0), "client": json.loads(sys.argv[4])}))' \
    "$target" "$p" "$(sim_stats)" "$res")"
done
# The fleet figure: the same misses spread over three replicas (GW, GW2, GW_L2) on one Redis.
CO_FLEET="$(python3 -c 'import json,sys; m=json.loads(sys.argv[1]); print("/users/"+m[-3]["login"])' "$members")"
log "fleet: $COALESCE_N concurrent GETs of $CO_FLEET spread over 3 gateway replicas"
sim_post stats/reset
res="$(taskset -c "$CLIENT_CPUS" timeout 120 python3 "$BENCH_DIR/coalesce.py" \
  "$GW$CO_FLEET,$GW2$CO_FLEET,$GW_L2$CO_FLEET" "$COALESCE_N" 60)" || res='null'
sleep 1
record coalesce "$(python3 -c 'import json,sys; s=json.loads(sys.argv[3]); print(json.dumps({"server": sys.argv[1], "path": sys.argv[2], "upstream": s["by_path"].get(sys.argv[2], 0), "replicas": 3, "client": json.loads(sys.argv[4])}))' \
  gateway_fleet3 "$CO_FLEET" "$(sim_stats)" "$res")"
sim_post latency '{"ms": 0}'

# ---------------------------------------------------------------------------------------------
# 6. Facts and the report.
record facts "$(python3 -c 'import json,sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' \
  date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  nproc "$NCPU" \
  cpu "$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)" \
  kernel "$(uname -r)" \
  wrk "$(wrk --version 2>&1 | head -n1 | awk '{print $2}')" \
  nginx "$(nginx -v 2>&1 | sed 's|.*nginx/||')" \
  commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+dirty')" \
  pin "$PIN_NOTE" logs "$LOG_NOTE" \
  duration "$DURATION" warmup "$WARMUP" threads "$THREADS" connections "$CONNECTIONS" rounds "$ROUNDS" \
  repos "$REPOS" coalesce_n "$COALESCE_N" cache_ttl "$CACHE_TTL_SECS" \
  loadavg_start "$LOAD_START" loadavg "$(cut -d' ' -f1-3 /proc/loadavg)")"
python3 "$BENCH_DIR/render_results.py" "$MEASURE" "$OUT"
log "wrote $OUT"
