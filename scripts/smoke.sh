#!/usr/bin/env bash
# smoke.sh BASE_URL: checks a running hubcache gateway end to end, as a client would.
#
# Used by scripts/test.sh (local stack), by hand against scripts/dev.sh, and against the docker
# compose stack. Needs curl and python3. GITHUB_ORG (default Netflix) names the first cached org
# (the one the seed's /view/... routes serve); SECOND_ORG, if set, names another cached org,
# checked through its org-qualified routes.
set -euo pipefail
BASE="${1:?usage: scripts/smoke.sh BASE_URL (e.g. http://127.0.0.1:3000)}"
BASE="${BASE%/}"
ORG="${GITHUB_ORG:-Netflix}"
SECOND_ORG="${SECOND_ORG:-}"
TMP="$(mktemp -d -t hubcache-smoke.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
failures=0
checks=0

pass() { checks=$((checks + 1)); printf '  ok   %s\n' "$1"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); printf '  FAIL %s\n' "$1" >&2; }

# fetch NAME PATH [curl args...]: GET BASE+PATH into $TMP/NAME.{body,headers}; prints the status.
fetch() {
  local name="$1" path="$2"; shift 2
  curl -s --max-time 20 -o "$TMP/$name.body" -D "$TMP/$name.headers" -w '%{http_code}' "$@" "$BASE$path" || echo 000
}
header() { grep -i "^$2:" "$TMP/$1.headers" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }
# pyjson NAME EXPR: evaluates a Python expression over the parsed body `b`; prints the result.
pyjson() { python3 -c "import json,sys; b=json.load(open(sys.argv[1])); print($2)" "$TMP/$1.body"; }
expect() { # expect DESCRIPTION ACTUAL WANTED
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1 (got '$2', want '$3')"; fi
}

echo "smoke test against $BASE (org $ORG)"

expect "GET /livez is 200" "$(fetch livez /livez)" 200

status=000
for _ in $(seq 1 60); do
  status=$(fetch health /healthcheck)
  [ "$status" = 200 ] && break
  sleep 1
done
expect "GET /healthcheck is 200 (every cached key and view loaded)" "$status" 200

expect "GET /orgs/$ORG is 200" "$(fetch org "/orgs/$ORG")" 200
expect "  it is the org object" "$(pyjson org "b['login'].lower()")" "$(echo "$ORG" | tr '[:upper:]' '[:lower:]')"
expect "  content type is JSON" "$(header org content-type)" "application/json; charset=utf-8"
etag="$(header org etag)"
[ -n "$etag" ] && pass "  it has an ETag" || fail "  it has an ETag"
expect "  If-None-Match answers 304" "$(fetch org304 "/orgs/$ORG" -H "If-None-Match: $etag")" 304

expect "GET /orgs/$ORG/repos is 200" "$(fetch repos "/orgs/$ORG/repos")" 200
total="$(pyjson repos "len(b)")"
[ "$total" -gt 100 ] && pass "  all pages merged ($total repos)" || fail "  all pages merged (only $total repos)"
expect "  repos are the org's" "$(pyjson repos "all(r['owner']['login'].lower()=='$ORG'.lower() for r in b)")" True

expect "GET /orgs/$ORG/repos?per_page=10&page=2 is 200" "$(fetch page "/orgs/$ORG/repos?per_page=10&page=2")" 200
expect "  it holds 10 repos" "$(pyjson page "len(b)")" 10
expect "  they are repos 11-20 of the merged list" \
  "$(python3 -c "import json,sys; a=json.load(open(sys.argv[1])); p=json.load(open(sys.argv[2])); print(a[10:20]==p)" "$TMP/repos.body" "$TMP/page.body")" True
link="$(header page link)"
case "$link" in *"$BASE/"*'rel="next"'*) pass "  Link header points at the gateway" ;; *) fail "  Link header points at the gateway (got '$link')" ;; esac

expect "GET /orgs/$ORG/members is 200" "$(fetch members "/orgs/$ORG/members")" 200
expect "  it is a list of users" "$(pyjson members "len(b)>0 and all('login' in u for u in b)")" True

expect "GET / is 200" "$(fetch root /)" 200
expect "  it is the API root" "$(pyjson root "'current_user_url' in b")" True

expect "GET /view/top/5/stars is 200" "$(fetch top /view/top/5/stars)" 200
expect "  5 entries, stars descending" "$(pyjson top "len(b)==5 and [e[1] for e in b]==sorted([e[1] for e in b], reverse=True)")" True
expect "  the seed's text format" "$(head -c 3 "$TMP/top.body")" '[["'
expect "  top star count matches the repos" "$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); t=json.load(open(sys.argv[2])); print(max(x['stargazers_count'] for x in r)==t[0][1])" "$TMP/repos.body" "$TMP/top.body")" True
expect "GET /view/bottom/3/forks is 200" "$(fetch bottom /view/bottom/3/forks)" 200
expect "  3 entries" "$(pyjson bottom "len(b)")" 3
for v in forks open_issues last_updated watchers; do
  expect "GET /view/top/10/$v is 200" "$(fetch "v_$v" "/view/top/10/$v")" 200
done
expect "GET /view/top/0/stars is 400" "$(fetch bad /view/top/0/stars)" 400
expect "  with a JSON message" "$(pyjson bad "'message' in b")" True
expect "GET /view/top/5/nope is 404" "$(fetch unknown /view/top/5/nope)" 404

repo="$(pyjson repos "b[0]['full_name']")"
expect "pass-through GET /repos/$repo is 200" "$(fetch pt1 "/repos/$repo")" 200
expect "  it is that repo" "$(pyjson pt1 "b['full_name']")" "$repo"
# Behind a load balancer the second GET may land on another gateway replica (each has its own
# pass-through cache): ask a few times; one replica that already holds it answers a hit.
for _ in 1 2 3 4 5; do
  fetch pt2 "/repos/$repo" >/dev/null
  [ "$(header pt2 cache-status)" = "hubcache; hit" ] && break
done
expect "  a repeated GET is a cache hit" "$(header pt2 cache-status)" "hubcache; hit"
expect "pass-through of an unknown path is 404" "$(fetch pt404 "/repos/$ORG/does-not-exist-$$")" 404
expect "POST without credentials is 405" "$(fetch post /repos/x/y -X POST)" 405

expect "GET /orgs/$ORG/view/top/5/stars is the seed's /view/top/5/stars" \
  "$(fetch q_top "/orgs/$ORG/view/top/5/stars" >/dev/null; cmp -s "$TMP/q_top.body" "$TMP/top.body" && echo same)" same
expect "GET /orgs/not-cached-org/view/top/5/stars is 404" "$(fetch q404 /orgs/not-cached-org/view/top/5/stars)" 404
expect "  with a JSON message" "$(pyjson q404 "'message' in b")" True
if [ -n "$SECOND_ORG" ]; then
  expect "GET /orgs/$SECOND_ORG/repos is 200" "$(fetch repos2 "/orgs/$SECOND_ORG/repos")" 200
  expect "  repos are $SECOND_ORG's" "$(pyjson repos2 "len(b)>0 and all(r['owner']['login'].lower()=='$SECOND_ORG'.lower() for r in b)")" True
  expect "GET /orgs/$SECOND_ORG/view/top/5/stars is 200" "$(fetch top2 "/orgs/$SECOND_ORG/view/top/5/stars")" 200
  expect "  ranks $SECOND_ORG's repos" "$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); t=json.load(open(sys.argv[2])); print(len(t)==5 and t[0][0].lower().startswith('$SECOND_ORG/'.lower()) and max(x['stargazers_count'] for x in r)==t[0][1])" "$TMP/repos2.body" "$TMP/top2.body")" True
  expect "  differs from $ORG's view" "$(cmp -s "$TMP/top2.body" "$TMP/top.body" && echo same || echo different)" different
fi

echo "smoke: $((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
