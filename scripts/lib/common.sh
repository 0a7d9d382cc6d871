# Shared shell functions for scripts/*.sh. Source it; do not run it.
# shellcheck shell=bash

# The repository root, whatever the caller's working directory.
HUBCACHE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# ensure_commands CMD:PACKAGE ...: installs the Debian package of each missing command when run as
# root (apt-get update first, once), or says exactly what to install.
ensure_commands() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd="${pair%%:*}"; pkg="${pair#*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing ${missing[*]}: install with 'sudo apt-get install ${missing[*]}' (or your system's equivalent)"
  fi
}

# free_port: prints a loopback TCP port that is free right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for_http URL SECONDS [STATUS]: waits until URL answers STATUS (default 200).
wait_for_http() {
  local url="$1" secs="$2" want="${3:-200}" code i
  for ((i = 0; i < secs * 5; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
    [ "$code" = "$want" ] && return 0
    sleep 0.2
  done
  return 1
}

# wait_for_redis PORT SECONDS: waits until redis-server on PORT answers PING.
wait_for_redis() {
  local port="$1" secs="$2" i
  for ((i = 0; i < secs * 10; i++)); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ] && return 0
    sleep 0.1
  done
  return 1
}

# python_venv DIR REQUIREMENTS: makes (or reuses) a virtualenv in DIR with the packages of the
# pip requirements file installed from PyPI; reinstalls when the file changed. Prints DIR.
python_venv() {
  local dir="$1" requirements="$2" stamp
  stamp="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.requirements-sha256" 2>/dev/null)" = "$stamp" ]; then
    echo "$dir"
    return 0
  fi
  rm -rf "$dir"
  if ! python3 -m venv "$dir" >/dev/null 2>&1; then
    # Debian's python3 needs its venv package for ensurepip.
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing python3-venv (apt-get)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
    rm -rf "$dir"
    python3 -m venv "$dir" >&2 || die "cannot create a Python virtualenv in $dir (install python3-venv)"
  fi
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2 ||
    die "pip could not install $requirements into $dir"
  echo "$stamp" >"$dir/.requirements-sha256"
  echo "$dir"
}

# Processes started with start_bg, stopped by stop_all (children first, then redis).
HUBCACHE_PIDS=()

# start_bg NAME LOGFILE CMD...: starts CMD in the background, remembering its pid.
start_bg() {
  local name="$1" logfile="$2"; shift 2
  "$@" >"$logfile" 2>&1 &
  HUBCACHE_PIDS+=("$!")
  log "started $name (pid $!, log $logfile)"
}

# stop_all: SIGTERM every started process, wait up to 10 s, then SIGKILL what is left.
stop_all() {
  local pid i
  [ ${#HUBCACHE_PIDS[@]} -eq 0 ] && return 0
  for ((i = ${#HUBCACHE_PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${HUBCACHE_PIDS[$i]}" 2>/dev/null || true
  done
  for ((i = 0; i < 100; i++)); do
    local alive=0
    for pid in "${HUBCACHE_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${HUBCACHE_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  HUBCACHE_PIDS=()
}

# start_stack BIN_DIR RUN_DIR: starts redis-server (unless REDIS_URL is given), github-sim
# (unless real GitHub is configured), fetcher, views and gateway, and waits for /healthcheck.
# Reads GITHUB_ORGS (or GITHUB_ORG), GITHUB_API_URL, GITHUB_API_TOKEN, PORT, SIM_REPOS (and whatever else the
# services read, e.g. PUBLIC_URL) from the environment, and FETCHER_REPLICAS (default 1); exports
# what the services need. Sets HUBCACHE_BASE_URL, FETCHER_METRICS_PORT (the first fetcher's),
# FETCHER_METRICS_PORTS (every fetcher's, space-separated) and VIEWS_METRICS_PORT.
start_stack() {
  local bin="$1" run="$2"
  mkdir -p "$run"
  export GITHUB_ORG="${GITHUB_ORG:-Netflix}"
  # github-sim generates every org the services cache.
  local sim_orgs="${GITHUB_ORGS:-$GITHUB_ORG}"
  export RUST_LOG="${RUST_LOG:-info}"

  if [ -z "${REDIS_URL:-}" ]; then
    local redis_port="${REDIS_PORT:-$(free_port)}"
    start_bg redis-server "$run/redis.log" redis-server --port "$redis_port" --bind 127.0.0.1 \
      --save "" --appendonly no --dir "$run"
    wait_for_redis "$redis_port" 10 || die "redis-server did not start (see $run/redis.log)"
    export REDIS_URL="redis://127.0.0.1:$redis_port"
  fi

  if [ -n "${GITHUB_API_TOKEN:-}" ] && [ "${GITHUB_API_URL:-https://api.github.com}" = "https://api.github.com" ]; then
    export GITHUB_API_URL="https://api.github.com"
    log "using real GitHub for org(s) $sim_orgs"
  elif [ -z "${GITHUB_API_URL:-}" ] || [ "${GITHUB_API_URL}" = "https://api.github.com" ]; then
    local sim_port="${SIM_PORT:-$(free_port)}"
    start_bg github-sim "$run/github-sim.log" "$bin/github-sim" --port "$sim_port" \
      --org "$sim_orgs" --generate-repos "${SIM_REPOS:-150}"
    export GITHUB_API_URL="http://127.0.0.1:$sim_port"
    wait_for_http "$GITHUB_API_URL/_sim/stats" 20 || die "github-sim did not start (see $run/github-sim.log)"
  fi

  export PORT="${PORT:-3000}"
  # Admin listeners (/metrics, /livez) on free ports: the defaults (9100, 9101) may be taken.
  export FETCHER_METRICS_PORT="${FETCHER_METRICS_PORT:-$(free_port)}"
  export VIEWS_METRICS_PORT="${VIEWS_METRICS_PORT:-$(free_port)}"
  start_bg fetcher "$run/fetcher.log" env METRICS_PORT="$FETCHER_METRICS_PORT" "$bin/fetcher"
  FETCHER_METRICS_PORTS="$FETCHER_METRICS_PORT"
  local replica port
  for ((replica = 2; replica <= ${FETCHER_REPLICAS:-1}; replica++)); do
    port="$(free_port)"
    start_bg "fetcher-$replica" "$run/fetcher-$replica.log" env METRICS_PORT="$port" "$bin/fetcher"
    FETCHER_METRICS_PORTS+=" $port"
  done
  export FETCHER_METRICS_PORTS
  start_bg views "$run/views.log" env METRICS_PORT="$VIEWS_METRICS_PORT" "$bin/views"
  start_bg gateway "$run/gateway.log" "$bin/gateway"
  HUBCACHE_BASE_URL="http://127.0.0.1:$PORT"
  export HUBCACHE_BASE_URL
  if ! wait_for_http "$HUBCACHE_BASE_URL/healthcheck" 60; then
    tail -n 20 "$run"/*.log >&2 || true
    die "the stack did not become healthy within 60 s (logs in $run)"
  fi
}
