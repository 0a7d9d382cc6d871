#!/usr/bin/env bash
# compose-test.sh: the docker compose stack (deploy/), tested for real on this machine's engine.
#
# Run by scripts/test.sh when `docker info` works; runs on its own too. Steps, each timed:
#   1. base images: where no registry can be reached, scripts/lib/images.sh creates the images the
#      committed files name (cached between runs);
#   2. build the four images from deploy/Dockerfile with the demo setup (deploy/demo.env);
#   3. up -d --scale gateway=3, wait until the load balancer answers /healthcheck 200;
#   4. scripts/smoke.sh through the load balancer;
#   5. every gateway replica answers the same bytes and ETags for the cached keys and views;
#      then the fleet cache: 60 concurrent misses for one pass-through path through lb (spread
#      over the 3 replicas), 500 ms of upstream latency, cost github-sim exactly 1 request;
#   5c. webhooks: a change made in github-sim is delivered by its org webhook through the load
#      balancer (202 in its delivery log) and reaches the views;
#   6. one replica stopped under a stream of requests through the load balancer: none may fail;
#   7. Redis restarted: the stack recovers (healthy, and a change made in github-sim afterwards
#      reaches the views through fetcher -> Redis -> views -> gateway);
#   7b. as a GitHub App: deploy/docker-compose.github-app.yml mounts a generated key as a
#      read-only secret; every org is polled with its own installation token, a pass-through read
#      of the second org's repo carries that org's, and no log shows a token or the key;
#   8. down -v --remove-orphans, and nothing of the project is left (also on failure or Ctrl-C).
# Only loopback addresses are used from the host; the load balancer is published on 127.0.0.1.
# Env: COMPOSE_TEST_PORT (default: a free port), COMPOSE_TEST_KEEP_IMAGES=0 to remove the built
# images at the end (default: keep them, they are the build cache of the next run),
# COMPOSE_TEST_CARGO_PROFILE (default image-test: unoptimised, fast to build; release: the
# images exactly as a user builds them).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=scripts/lib/images.sh
source "$HUBCACHE_ROOT/scripts/lib/images.sh"
cd "$HUBCACHE_ROOT"

PROJECT=hubcache-test
ORG=Netflix
# deploy/demo.env's second organisation.
SECOND_ORG=acme
T_START=$SECONDS
TIMINGS=()
phase_start=$SECONDS
phase() { # phase NAME: records the time since the previous phase ended
  TIMINGS+=("$(printf '%-34s %4d s' "$1" $((SECONDS - phase_start)))")
  phase_start=$SECONDS
}
print_timings() {
  local t
  log "timings:"
  for t in "${TIMINGS[@]}"; do printf '    %s\n' "$t" >&2; done
  printf '    %-34s %4d s\n' "total" $((SECONDS - T_START)) >&2
}

ensure_commands curl:curl python3:python3 flock:util-linux openssl:openssl
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info)"
if docker compose version >/dev/null 2>&1; then
  COMPOSE_CMD=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE_CMD=(docker-compose)
else
  die "neither 'docker compose' nor 'docker-compose' is installed"
fi

# The settings a user would have are cleared: the test runs the offline demo exactly as the
# README's command does (deploy/demo.env selects the demo profile and github-sim as upstream).
unset GITHUB_API_TOKEN GITHUB_API_URL GITHUB_ORGS REDIS_URL REDIS_SENTINELS REDIS_SENTINEL_MASTER REDIS_CLUSTER_NODES PUBLIC_URL KEY_PREFIX CACHED_ENDPOINTS \
  COMPOSE_PROFILES COMPOSE_FILE COMPOSE_PROJECT_NAME HUBCACHE_CONFIG METRICS_PORT WORKERS \
  CLIENT_RATE_LIMIT_PER_SEC MAX_UPSTREAM_FETCHES MAX_CONNECTIONS OTEL_EXPORTER_OTLP_ENDPOINT PORT \
  GITHUB_WEBHOOK_SECRET WEBHOOK_DELIVERY_WINDOW_SECS WEBHOOK_MAX_BODY_BYTES WEBHOOK_SAFETY_POLL_SECS \
  GITHUB_APP_ID GITHUB_APP_PRIVATE_KEY GITHUB_APP_PRIVATE_KEY_FILE GITHUB_APP_PRIVATE_KEY_PATH \
  STATUS_PAGE STATUS_PAGE_ALLOW
PORT_HOST="${COMPOSE_TEST_PORT:-$(free_port)}"
export HUBCACHE_PORT="127.0.0.1:$PORT_HOST" GITHUB_ORG="$ORG" REFRESH_INTERVAL_SECS=2 \
  HUBCACHE_IMAGE_PREFIX=hubcache-test HUBCACHE_TAG=ci RUST_LOG=info
BASE="http://127.0.0.1:$PORT_HOST"
COMPOSE=("${COMPOSE_CMD[@]}" -p "$PROJECT" -f "$HUBCACHE_ROOT/deploy/docker-compose.yml"
  --env-file "$HUBCACHE_ROOT/deploy/demo.env")
RUN_DIR="$(mktemp -d -t hubcache-compose-test.XXXXXX)"

compose() { "${COMPOSE[@]}" "$@"; }

leftovers() { # prints what is left of the project (containers, volumes, networks)
  docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"
  docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"
  docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ $status -ne 0 ]; then
    warn "compose test failed; the last logs of each service:"
    compose logs --no-color --tail=40 >"$RUN_DIR/compose.log" 2>&1 || true
    tail -n 200 "$RUN_DIR/compose.log" >&2 || true
  fi
  if [ -n "$(leftovers)" ]; then
    log "docker compose down -v --remove-orphans"
    timeout 120 "${COMPOSE[@]}" down -v --remove-orphans --timeout 20 >/dev/null 2>&1 || true
  fi
  if [ -n "$(leftovers)" ]; then
    warn "removing leftovers of $PROJECT"
    docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
    docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker network rm >/dev/null 2>&1 || true
  fi
  if [ "${COMPOSE_TEST_KEEP_IMAGES:-1}" = 0 ]; then
    docker image ls -q "hubcache-test/*:ci" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  fi
  rm -rf "$RUN_DIR"
  [ $status -eq 0 ] && print_timings
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One run at a time per Docker engine: runs share the project name, the image tags and the CPU.
exec 9>"${TMPDIR:-/tmp}/hubcache-compose-test.lock"
if ! flock -n 9; then
  log "another compose test is running on this machine; waiting for it (at most 40 min)"
  flock -w 2400 9 || die "another compose test held the lock for 40 min"
fi

# A stack of a previous, interrupted run would hold the names and the volume.
[ -z "$(leftovers)" ] || timeout 120 "${COMPOSE[@]}" down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true

# --- 1. base images ----------------------------------------------------------------------------
ensure_base_images
phase "base images"

# --- 2. build --------------------------------------------------------------------------------
old_images="$(docker image ls -q 'hubcache-test/*:ci' | sort -u)"
# CARGO_PROFILE (deploy/Dockerfile): this test checks the deployment, not speed, so by default it
# builds unoptimised images (profile image-test), several times faster than release;
# COMPOSE_TEST_CARGO_PROFILE=release tests exactly the images a user builds.
export CARGO_PROFILE="${COMPOSE_TEST_CARGO_PROFILE:-image-test}"
log "building the images (Cargo profile $CARGO_PROFILE; slow on a cold cache)"
if ! nice "${COMPOSE[@]}" build --force-rm >"$RUN_DIR/build.log" 2>&1; then
  tail -n 60 "$RUN_DIR/build.log" >&2
  die "docker compose build failed"
fi
# Superseded images of earlier runs (their layers stay as cache while still used).
for id in $old_images; do
  docker image ls -q 'hubcache-test/*:ci' | grep -q "^$id" || docker rmi "$id" >/dev/null 2>&1 || true
done
phase "build (4 images)"

# --- 3. up, 3 gateways -----------------------------------------------------------------------
log "up -d --scale gateway=3 (load balancer on $BASE)"
compose up -d --scale gateway=3 >"$RUN_DIR/up.log" 2>&1 || { cat "$RUN_DIR/up.log" >&2; die "docker compose up failed"; }
wait_for_http "$BASE/healthcheck" 180 || die "the stack did not become healthy within 180 s"
phase "up until /healthcheck 200 (lb)"
TIME_TO_HEALTHY="$(echo "${TIMINGS[-1]}" | awk '{print $(NF-1)}')"

mapfile -t GATEWAYS < <(compose ps -q gateway)
[ "${#GATEWAYS[@]}" -eq 3 ] || die "expected 3 gateway containers, found ${#GATEWAYS[@]}"

# --- 4. smoke through the load balancer ------------------------------------------------------
log "smoke test through the load balancer"
GITHUB_ORG="$ORG" SECOND_ORG="$SECOND_ORG" scripts/smoke.sh "$BASE"
phase "smoke.sh through lb"

# --- 5. the replicas agree -------------------------------------------------------------------
# replica_digest CONTAINER PATH: status, ETag and body digest of PATH as that replica serves it.
replica_digest() {
  docker exec "$1" curl -s --max-time 10 -D - -o /tmp/body "http://127.0.0.1:3000$2" >"$RUN_DIR/headers" \
    && docker exec "$1" sha256sum /tmp/body >"$RUN_DIR/sum" || return 1
  printf '%s %s %s\n' "$(head -n1 "$RUN_DIR/headers" | awk '{print $2}')" \
    "$(grep -i '^etag:' "$RUN_DIR/headers" | tr -d '\r' | cut -d' ' -f2-)" "$(cut -d' ' -f1 "$RUN_DIR/sum")"
}
log "each of the 3 replicas serves identical data"
for path in "/orgs/$ORG" "/orgs/$ORG/repos" "/orgs/$ORG/members" "/" "/view/top/10/stars" "/view/bottom/5/forks" \
  "/orgs/$SECOND_ORG/repos" "/orgs/$SECOND_ORG/view/top/10/stars"; do
  first=""
  for cid in "${GATEWAYS[@]}"; do
    d="$(replica_digest "$cid" "$path")" || die "replica ${cid:0:12} did not answer $path"
    case "$d" in 200\ ?*\ ?*) ;; *) die "replica ${cid:0:12} answered $path with '$d' (want 200, an ETag, a body)" ;; esac
    if [ -z "$first" ]; then first="$d"; elif [ "$d" != "$first" ]; then
      die "replicas disagree on $path: '$first' vs '$d' (${cid:0:12})"
    fi
  done
  printf '  ok   %-24s identical on 3 replicas (%s)\n' "$path" "${first:0:40}"
done
phase "replicas identical"

# --- 5b. the fleet cache: 3 replicas cost GitHub one request per key -----------------------
# sim_control METHOD PATH [JSON]: github-sim's control API, from inside its container.
sim_control() {
  compose exec -T github-sim curl -s -f --max-time 10 -X "$1" -H 'content-type: application/json' \
    ${3:+-d "$3"} "http://127.0.0.1:3001/_sim/$2"
}
fleet_repo="$(curl -s --max-time 10 "$BASE/view/top/1/forks" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][0].split("/")[1])')"
[ -n "$fleet_repo" ] || die "could not read /view/top/1/forks"
fleet_path="/repos/$ORG/$fleet_repo"
# upstream_count: requests github-sim received for $fleet_path so far.
upstream_count() {
  sim_control GET stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["by_path"].get(sys.argv[1], 0))' "$fleet_path"
}
before="$(upstream_count)" || die "could not read github-sim's stats"
sim_control POST latency '{"ms": 500}' >/dev/null || die "could not set github-sim's latency"
log "fleet cache: 60 concurrent misses for $fleet_path through lb, 500 ms upstream latency"
# A query no earlier step used: a cold key on every replica (github-sim counts the path alone).
for ((i = 0; i < 60; i++)); do
  curl -s --max-time 30 -D - -o /dev/null "$BASE$fleet_path?fleet=compose" 2>/dev/null |
    tr -d '\r' | awk 'NR==1{code=$2} tolower($1)=="cache-status:"{sub(/^[^:]*: */,""); cs=$0} END{print code" "cs}' \
    >"$RUN_DIR/fleet.$i" &
done
wait
sim_control POST latency '{"ms": 0}' >/dev/null || true
FLEET_UPSTREAM=$(($(upstream_count) - before))
cat "$RUN_DIR"/fleet.* | sort | uniq -c | sed 's/^/  /'
FLEET_FAILED=$(cat "$RUN_DIR"/fleet.* | grep -vc '^200 ' || true)
[ "$FLEET_FAILED" -eq 0 ] || die "$FLEET_FAILED of 60 fleet requests were not answered 200"
[ "$FLEET_UPSTREAM" -eq 1 ] || die "60 concurrent misses on 3 replicas cost $FLEET_UPSTREAM upstream requests (want 1)"
grep -qE 'detail=(fleet|l2)' "$RUN_DIR"/fleet.* ||
  die "no answer came from another replica's fetch (no detail=fleet or detail=l2): did lb spread them?"
echo "  60 concurrent misses on 3 replicas: $FLEET_UPSTREAM upstream request"
phase "fleet cache (1 upstream request)"

# --- 5c. webhooks through the load balancer ----------------------------------------------------
# sim_get PATH: github-sim's control API from inside its container (not published on the host).
sim_get() { compose exec -T github-sim curl -s -f --max-time 10 "http://127.0.0.1:3001$1"; }
log "github-sim's org webhook delivers a change through lb"
hook="$(sim_get "/_sim/orgs/$ORG/hooks" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')" \
  || die "github-sim has no org webhook (deploy/docker-compose.yml: --webhook-url)"
repo="$(curl -s --max-time 10 "$BASE/view/bottom/1/forks" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][0].split("/")[1])')"
compose exec -T github-sim curl -s -f -o /dev/null -X PATCH -H 'content-type: application/json' \
  -d '{"stargazers_count": 876543210}' "http://127.0.0.1:3001/_sim/repos/$ORG/$repo" \
  || die "could not change $ORG/$repo in github-sim"
hook_t0=$SECONDS
delivered=""
for ((i = 0; i < 100; i++)); do
  delivered="$(sim_get "/_sim/orgs/$ORG/hooks/$hook/deliveries" | python3 -c '
import json, sys
log = json.load(sys.stdin)
star = [d for d in log if d["event"] == "star"]
print(star[0]["status_code"] if star and star[0]["status_code"] else "")')" || true
  [ -n "$delivered" ] && break
  sleep 0.1
done
[ "$delivered" = 202 ] || die "the star delivery through lb was answered '${delivered:-nothing}' (want 202)"
for ((i = 0; i < 100; i++)); do
  top="$(curl -s --max-time 5 "$BASE/view/top/1/stars" || true)"
  case "$top" in *"/$repo\","*876543210*) break ;; esac
  sleep 0.1
done
case "$top" in *"/$repo\","*876543210*) ;; *) die "the delivered change did not reach /view/top/1/stars (got: ${top:0:200})" ;; esac
accepted=0
for cid in "${GATEWAYS[@]}"; do
  n="$(docker exec "$cid" curl -s --max-time 5 http://127.0.0.1:3000/healthcheck |
    python3 -c 'import json,sys; print((json.load(sys.stdin).get("webhooks") or {}).get("accepted", 0))')" || n=0
  accepted=$((accepted + n))
done
[ "$accepted" -ge 1 ] || die "no gateway replica counted an accepted delivery"
echo "  star delivery answered 202 through lb; change in the views after $((SECONDS - hook_t0)) s; replicas accepted $accepted deliveries"
phase "webhook through lb"

# --- 6. one replica stopped while requests flow ----------------------------------------------
# load SECONDS OUTFILE: sequential GETs of the merged repos list through lb, one status per line.
load() {
  local until=$((SECONDS + $1))
  while [ $SECONDS -lt $until ]; do
    curl -s -o /dev/null --max-time 10 -w '%{http_code}\n' "$BASE/orgs/$ORG/repos" || echo 000
  done >"$2"
}
victim="${GATEWAYS[0]}"
log "stopping gateway replica ${victim:0:12} under load (20 s of requests through lb)"
load 20 "$RUN_DIR/stop.codes" &
load_pid=$!
sleep 4
stop_t0=$SECONDS
docker stop --time 20 "$victim" >/dev/null
STOP_SECS=$((SECONDS - stop_t0))
wait "$load_pid"
total=$(wc -l <"$RUN_DIR/stop.codes")
STOP_FAILED=$(grep -vc '^200$' "$RUN_DIR/stop.codes" || true)
[ "$(docker inspect -f '{{.State.Running}}' "$victim")" = false ] || die "the stopped replica is still running"
echo "  $total requests while a replica stopped (docker stop took $STOP_SECS s): $STOP_FAILED failed"
[ "$total" -ge 50 ] || die "too few requests went through the load balancer ($total)"
[ "$STOP_FAILED" -eq 0 ] || die "$STOP_FAILED of $total requests failed while a replica stopped: $(sort "$RUN_DIR/stop.codes" | uniq -c | tr '\n' ' ')"
expect_code="$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$BASE/healthcheck")"
[ "$expect_code" = 200 ] || die "/healthcheck is $expect_code after a replica stopped"
phase "replica stop (0 failures)"

# --- 7. Redis restarted ----------------------------------------------------------------------
[ "$(compose exec -T redis redis-cli config get appendonly | tail -n1 | tr -d '\r')" = yes ] \
  || die "Redis runs without AOF"
log "restarting redis"
load 300 "$RUN_DIR/redis.codes" & # stopped below
load_pid=$!
restart_t0=$SECONDS
compose restart redis >/dev/null 2>&1 || die "docker compose restart redis failed"
# Redis back and answering, then the stack healthy through lb.
for ((i = 0; i < 300; i++)); do
  [ "$(compose exec -T redis redis-cli ping 2>/dev/null | tr -d '\r')" = PONG ] && break
  sleep 0.2
done
wait_for_http "$BASE/healthcheck" 120 || die "/healthcheck did not come back within 120 s of the Redis restart"
REDIS_HEALTHY_SECS=$((SECONDS - restart_t0))
# The pipeline works again end to end: a change made in github-sim now must reach the views.
repo="$(curl -s --max-time 10 "$BASE/view/bottom/1/stars" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][0].split("/")[1])')"
[ -n "$repo" ] || die "could not read /view/bottom/1/stars"
compose exec -T github-sim curl -s -f -o /dev/null -X PATCH -H 'content-type: application/json' \
  -d '{"stargazers_count": 987654321}' "http://127.0.0.1:3001/_sim/repos/$ORG/$repo" \
  || die "could not change $ORG/$repo in github-sim"
recovered=0
for ((i = 0; i < 60; i++)); do
  top="$(curl -s --max-time 5 "$BASE/view/top/1/stars" || true)"
  case "$top" in *"/$repo\","*987654321*) recovered=1; break ;; esac
  sleep 1
done
REDIS_RECOVERY_SECS=$((SECONDS - restart_t0))
kill "$load_pid" 2>/dev/null || true
wait "$load_pid" 2>/dev/null || true
redis_total=$(wc -l <"$RUN_DIR/redis.codes")
REDIS_FAILED=$(grep -vc '^200$' "$RUN_DIR/redis.codes" || true)
[ "$recovered" = 1 ] || die "a change in github-sim did not reach /view/top/1/stars within 60 s of Redis coming back (got: ${top:0:200})"
echo "  healthy again $REDIS_HEALTHY_SECS s after the restart began; a new upstream change served after $REDIS_RECOVERY_SECS s"
echo "  requests through lb during the Redis restart: $redis_total, non-200: $REDIS_FAILED"
phase "redis restart + recovery"

# --- 7b. as a GitHub App, the key a compose secret (deploy/docker-compose.github-app.yml) ------
# The committed override as README says to use it: the App's key outside the repository, readable
# by the services' user only. github-sim learns the App's public key from a test-only override.
log "as a GitHub App: the key mounted read-only by deploy/docker-compose.github-app.yml"
openssl genrsa -out "$RUN_DIR/app.pem" 2048 2>/dev/null || die "openssl genrsa failed"
openssl rsa -in "$RUN_DIR/app.pem" -pubout -out "$RUN_DIR/app-public.pem" 2>/dev/null ||
  die "openssl rsa -pubout failed"
chown 10001 "$RUN_DIR/app.pem" && chmod 0400 "$RUN_DIR/app.pem"
chmod 0444 "$RUN_DIR/app-public.pem"
cat >"$RUN_DIR/sim-app.yml" <<YAML
services:
  github-sim:
    environment:
      SIM_APP_ID: "4242"
      SIM_APP_PUBLIC_KEY: /run/app-public.pem
    volumes:
      - $RUN_DIR/app-public.pem:/run/app-public.pem:ro
YAML
APP_COMPOSE=("${COMPOSE[@]}" -f "$HUBCACHE_ROOT/deploy/docker-compose.github-app.yml" -f "$RUN_DIR/sim-app.yml")
GITHUB_APP_ID=4242 GITHUB_APP_PRIVATE_KEY_PATH="$RUN_DIR/app.pem" \
  "${APP_COMPOSE[@]}" up -d --scale gateway=3 >"$RUN_DIR/app-up.log" 2>&1 ||
  { cat "$RUN_DIR/app-up.log" >&2; die "up -d with the GitHub App override failed"; }
# installation_polls: requests github-sim saw with each org's installation token ("org=N ...").
installation_polls() {
  sim_control GET installations >"$RUN_DIR/installations.json" || return 1
  sim_control GET stats | python3 "$HUBCACHE_ROOT/scripts/lib/installation_polls.py" "$RUN_DIR/installations.json"
}
app_ok=0
polls=""
for ((i = 0; i < 120; i++)); do
  polls="$(installation_polls 2>/dev/null || true)"
  case " $polls " in
    *" $ORG=0 "* | *" ${SECOND_ORG}=0 "*) ;;
    *" $ORG="*" ${SECOND_ORG}="*) app_ok=1; break ;;
  esac
  sleep 1
done
[ "$app_ok" = 1 ] || die "the fetcher did not poll each org with its installation's token within 120 s (got: $polls)"
wait_for_http "$BASE/healthcheck" 120 || die "/healthcheck did not turn 200 as a GitHub App"
# A pass-through read of the second org's own resource carries its installation token (scope orgs).
app_repo="$(curl -s --max-time 10 "$BASE/orgs/$SECOND_ORG/view/top/1/forks" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][0].split("/")[1])')"
[ -n "$app_repo" ] || die "could not read /orgs/$SECOND_ORG/view/top/1/forks"
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$BASE/repos/$SECOND_ORG/$app_repo?app=compose")"
[ "$code" = 200 ] || die "GET /repos/$SECOND_ORG/$app_repo through lb as a GitHub App answered $code"
carried="$(sim_control GET stats | python3 "$HUBCACHE_ROOT/scripts/lib/installation_polls.py" \
  "$RUN_DIR/installations.json" "/repos/$SECOND_ORG/$app_repo")"
case " $carried " in
  *" ${SECOND_ORG}=0 "* | "  ") die "the pass-through read of /repos/$SECOND_ORG/$app_repo did not carry ${SECOND_ORG}'s installation token ($carried)" ;;
esac
# Neither an installation token nor the key in any service's log.
compose logs --no-color fetcher gateway views >"$RUN_DIR/app-services.log" 2>&1 ||
  die "docker compose logs failed"
if grep -qE 'ghs_|PRIVATE KEY' "$RUN_DIR/app-services.log"; then
  die "a service logged an installation token or the App's key"
fi
echo "  requests with each org's installation token: $polls; /repos/$SECOND_ORG/$app_repo: $carried"
phase "GitHub App (compose secret)"

# --- 8. down -------------------------------------------------------------------------------
log "docker compose down -v --remove-orphans"
compose down -v --remove-orphans --timeout 20 >/dev/null 2>&1 || die "docker compose down failed"
[ -z "$(leftovers)" ] || die "containers, volumes or networks of $PROJECT were left behind"
phase "down -v (nothing left)"

echo "compose: time to healthy ${TIME_TO_HEALTHY} s; replica stop: $STOP_FAILED of $total requests failed;" \
  "Redis restart: healthy after $REDIS_HEALTHY_SECS s, pipeline recovered after $REDIS_RECOVERY_SECS s"
echo "compose: 7 passed, 0 failed"
