#!/usr/bin/env python3
"""render_results.py MEASUREMENTS.jsonl OUT.md: bench.sh's report writer.

Reads the measurement lines bench.sh recorded ({"kind": ..., "data": ...}) and writes the markdown
report with one PASS/FAIL line per target of issue 8, each computed from the measurements.
"""
import json
import re
import statistics
import sys
from datetime import datetime

MIB = 1024 * 1024
BASE_RSS_BUDGET = 64 * MIB


def load(path):
    by_kind = {}
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        rec = json.loads(line)
        by_kind.setdefault(rec["kind"], []).append(rec["data"])
    return by_kind


def ts(value):
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def fetcher_cold(log_path, endpoints=4):
    """Cold fill from the fetcher's JSON log: first line to the last first "snapshot changed"."""
    start, changes, seen = None, [], set()
    try:
        lines = open(log_path).read().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        t = ts(obj.get("timestamp"))
        # tracing's JSON layer nests event fields under "fields" unless flattened.
        fields = obj.get("fields") or obj
        msg = fields.get("message", "")
        if start is None and t is not None:
            start = t
        if "lease acquired" in msg and t is not None:
            start = t
        if msg == "snapshot changed" and t is not None:
            path = fields.get("path") or (obj.get("span") or {}).get("path")
            for span in obj.get("spans") or []:
                path = path or span.get("path") or span.get("endpoint")
            key = path or f"#{len(changes)}"
            if key in seen:
                continue
            seen.add(key)
            changes.append({"t": t, "path": path, "units": fields.get("units"),
                            "pages": fields.get("pages"), "bytes": fields.get("bytes")})
            if len(changes) == endpoints:
                break
    if start is None or not changes:
        return None
    return {"seconds": (changes[-1]["t"] - start).total_seconds(), "changes": changes,
            "complete": len(changes) == endpoints}


def fmt_ms(us):
    return f"{us / 1000:.2f}" if us is not None else "-"


def fmt_rps(v):
    return f"{v:,.0f}" if v is not None else "-"


def verdict(ok):
    return "PASS" if ok else "FAIL"


def main(meas_path, out_path):
    m = load(meas_path)
    facts = (m.get("facts") or [{}])[-1]
    org = "Netflix"
    bodies = {b["path"]: b for b in m.get("body", [])}
    pt_path = next((p for p, b in bodies.items() if b.get("passthrough")), None)

    # Aggregate wrk runs: mean over rounds.
    runs = {}
    for w in m.get("wrk", []):
        runs.setdefault((w["server"], w["path"], w["gzip"]), []).append(w["result"])

    def agg(server, path, gz):
        rs = runs.get((server, path, gz), [])
        ok = [r for r in rs if r]
        if not ok:
            return None
        errors = sum(sum(r["errors"][k] for k in ("connect", "read", "write", "timeout")) for r in ok)
        return {
            "rps": statistics.mean(r["rps"] for r in ok),
            "p50": statistics.mean(r["p50_us"] for r in ok),
            "p99": statistics.mean(r["p99_us"] for r in ok),
            "bytes_per": statistics.mean(r["bytes"] / r["requests"] for r in ok if r["requests"]),
            "error_statuses": sum(r["error_statuses"] for r in ok),
            "errors": errors,
            "rounds": [r["rps"] for r in ok],
            "missing": len(rs) - len(ok),
        }

    paths = [p for p in bodies]
    targets = []  # (name, ok, detail)
    rows = []
    for path in paths:
        for gz in (False, True):
            g, n = agg("gateway", path, gz), agg("nginx", path, gz)
            if g is None and n is None:
                continue
            ratio = g["rps"] / n["rps"] if g and n and n["rps"] else None
            is_pt = path == pt_path
            is_large = path == f"/orgs/{org}/repos"
            need = 0.8 if is_pt else (3.0 if (is_large and gz) else 1.0)
            check_p99 = not is_pt
            problems = []
            for who, r in (("gateway", g), ("nginx", n)):
                if r is None:
                    problems.append(f"no {who} result")
                elif r["error_statuses"] or r["errors"] or r["missing"]:
                    problems.append(f"{who}: {r['error_statuses']} answers >= 400, {r['errors']} socket errors")
            ok = ratio is not None and ratio >= need and not problems
            p99_ok = True
            if check_p99 and g and n:
                p99_ok = g["p99"] <= n["p99"]
                ok = ok and p99_ok
            kind = "pass-through hit" if is_pt else ("view" if path.startswith("/view/") else "cached key")
            target_text = f"≥ {need:.1f}×" + (" and p99 ≤ nginx" if check_p99 else "")
            rows.append((path, kind, gz, g, n, ratio, target_text, ok, problems))
            detail = (f"{fmt_rps(g and g['rps'])} vs {fmt_rps(n and n['rps'])} req/s = "
                      f"{ratio:.2f}× (need {need:.1f}×)" if ratio is not None else "no ratio")
            if check_p99 and g and n:
                detail += f"; p99 {fmt_ms(g['p99'])} vs {fmt_ms(n['p99'])} ms"
            if problems:
                detail += "; " + "; ".join(problems)
            enc = "gzip" if gz else "identity"
            targets.append((f"{kind} `{path}` ({enc}): gateway {target_text} nginx proxy_cache", ok, detail))

    # Coalescing.
    co = {c["server"]: c for c in m.get("coalesce", [])}
    g_co = co.get("gateway")
    if g_co:
        client = g_co.get("client") or {}
        ok = (g_co["upstream"] == 1 and client.get("ok") == client.get("requests")
              and client.get("distinct_bodies") == 1)
        targets.append((f"{client.get('requests', '?')} concurrent misses → exactly 1 upstream request", ok,
                        f"upstream requests {g_co['upstream']}; {client.get('ok')} × 200 of "
                        f"{client.get('requests')}, {client.get('distinct_bodies')} distinct body, "
                        f"errors {client.get('errors')}"))
    else:
        targets.append(("concurrent misses → exactly 1 upstream request", False, "not measured"))
    f_co = co.get("gateway_fleet3")
    if f_co:
        client = f_co.get("client") or {}
        ok = (f_co["upstream"] == 1 and client.get("ok") == client.get("requests")
              and client.get("distinct_bodies") == 1)
        targets.append((f"fleet: {client.get('requests', '?')} concurrent misses spread over 3 gateway "
                        f"replicas → 1 upstream request per key", ok,
                        f"upstream requests {f_co['upstream']}; {client.get('ok')} × 200 of "
                        f"{client.get('requests')}, {client.get('distinct_bodies')} distinct body, "
                        f"cache status {client.get('cache_status')}, errors {client.get('errors')}"))
    else:
        targets.append(("fleet: concurrent misses on 3 replicas → 1 upstream request per key", False,
                        "not measured"))

    # Refresh cost.
    cold = (m.get("cold") or [None])[0]
    cold_fetch = None
    if cold:
        stats = cold["stats"]
        repo_re = re.compile(rf"^/(orgs/{org}|organizations/\d+)/repos$", re.I)
        repo_reqs = sum(v for k, v in stats["by_path"].items() if repo_re.match(k))
        cold_fetch = fetcher_cold(cold["fetcher_log"])
        targets.append(("cold refresh of the 1,000-repo list: 10 requests (100 per page)", repo_reqs == 10,
                        f"{repo_reqs} requests for the repos list; whole cold fill {stats['total']} requests, "
                        f"{stats['rate_limit_used']} rate-limit units"))
    unchanged = (m.get("unchanged") or [None])[0]
    if unchanged:
        s = unchanged["stats"]
        ok = s["rate_limit_used"] == 0 and s["not_modified"] > 0
        targets.append((f"unchanged refresh: 0 rate-limit units ({unchanged['cycles']} cycles)", ok,
                        f"{s['rate_limit_used']} units over {unchanged['seconds']} s; {s['total']} requests, "
                        f"{s['not_modified']} × 304"))

    # RSS.
    rss = (m.get("rss") or [None])[0]
    if rss:
        budget = BASE_RSS_BUDGET + rss["cache_max_bytes"]
        peak = rss["max_rss_kb_under_load"] * 1024
        targets.append(("gateway RSS under load ≤ 64 MiB + configured cache size", 0 < peak <= budget,
                        f"max VmRSS under load {peak / MIB:.1f} MiB (during {rss['at']}), VmHWM "
                        f"{rss['vmhwm_kb'] / 1024:.1f} MiB; budget {budget / MIB:.0f} MiB "
                        f"(64 + CACHE_MAX_BYTES {rss['cache_max_bytes'] / MIB:.0f} MiB)"))

    # ----- markdown
    o = []
    w = o.append
    w("# hubcache gateway vs nginx proxy_cache\n")
    w("Generated by `scripts/bench.sh` (do not edit by hand; rerun the script).\n")
    w(f"- Date: {facts.get('date', '?')}; commit {facts.get('commit', '?')}")
    w(f"- Machine: {facts.get('nproc', '?')} CPUs ({facts.get('cpu', '?')}), Linux {facts.get('kernel', '?')}; "
      f"load average before the stack started: {facts.get('loadavg_start', '?')}, at the end: {facts.get('loadavg', '?')}")
    w(f"- Tools: wrk {facts.get('wrk', '?')}, nginx {facts.get('nginx', '?')} (Debian package)")
    w(f"- Data: github-sim with a generated org `{org}` of {facts.get('repos', '?')} repositories; "
      f"fetcher, views, gateway and Redis from this commit (release build)")
    w(f"- Load: wrk {facts.get('threads')} thread(s) (one per client CPU), {facts.get('connections')} connections, "
      f"{facts.get('duration')} s per run after a {facts.get('warmup')} s warm-up of the same server and path, "
      f"{facts.get('rounds')} round(s); gateway and nginx runs alternate and the order flips for every "
      f"path/encoding; figures are means over rounds. wrk runs without a Lua `response` hook (with one it "
      f"copies every body into Lua and becomes the bottleneck on the 5 MB list); error statuses are wrk's own count")
    w(f"- CPUs: {facts.get('pin', '?')}")
    w(f"- Logging: {facts.get('logs', '?')}")
    w("- nginx (bench/nginx.conf.template): `proxy_cache` + `proxy_cache_lock on` in front of an nginx origin "
      "serving a static copy of exactly the bytes the gateway served for each path (checked byte for byte, "
      "and every measured nginx path was a cache HIT before loading). Compression as a platform team would "
      "configure it: the cache asks the origin for identity bodies (`proxy_set_header Accept-Encoding \"\"`) "
      "and compresses per response with `gzip on` (`gzip_types application/json`, level 1, `gzip_proxied any`). "
      "The pass-through path is proxied to github-sim with the same TTL as the gateway's pass-through cache "
      f"({facts.get('cache_ttl', '?')} s), `proxy_cache_revalidate`, `proxy_cache_background_update`, "
      "`proxy_cache_use_stale updating`.")
    w("- Informative extra column: nginx's best case with precompressed bodies: origin `gzip_static on` "
      "(the gateway's own gzip bytes as `.gz` files), cache key including \"accepts gzip\", no per-request gzip.")
    w("- p50/p99 are wrk's latency percentiles (ms); bytes/resp is wrk's bytes read per response "
      "(headers included), which shows the encoding actually served.\n")

    w("## Throughput and latency\n")
    w("| path | kind | Accept-Encoding | gateway req/s | nginx req/s | gateway/nginx | gateway p50 / p99 ms "
      "| nginx p50 / p99 ms | bytes/resp gw / nginx | target | result |")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for path, kind, gz, g, n, ratio, target_text, ok, problems in rows:
        w(f"| `{path}` | {kind} | {'gzip' if gz else '-'} | {fmt_rps(g and g['rps'])} | {fmt_rps(n and n['rps'])} "
          f"| {f'{ratio:.2f}×' if ratio else '-'} | {fmt_ms(g and g['p50'])} / {fmt_ms(g and g['p99'])} "
          f"| {fmt_ms(n and n['p50'])} / {fmt_ms(n and n['p99'])} "
          f"| {g and round(g['bytes_per']):,} / {n and round(n['bytes_per']):,} | {target_text} "
          f"| {verdict(ok)}{' (' + '; '.join(problems) + ')' if problems else ''} |")
    w("")
    gzs_rows = [(p, agg("gateway", p, True), agg("nginx_gzip_static", p, True)) for p in paths]
    gzs_rows = [r for r in gzs_rows if r[2]]
    if gzs_rows:
        w("Informative: gzip accepted, nginx with precompressed bodies (gzip_static origin, cached per encoding):\n")
        w("| path | gateway req/s | nginx precompressed req/s | ratio | gateway p50 / p99 ms | nginx p50 / p99 ms |")
        w("|---|---:|---:|---:|---:|---:|")
        for p, g, n in gzs_rows:
            ratio = f"{g['rps'] / n['rps']:.2f}×" if g and n["rps"] else "-"
            w(f"| `{p}` | {fmt_rps(g and g['rps'])} | {fmt_rps(n['rps'])} | {ratio} "
              f"| {fmt_ms(g and g['p50'])} / {fmt_ms(g and g['p99'])} | {fmt_ms(n['p50'])} / {fmt_ms(n['p99'])} |")
        w("")
    l2_rows = [(gz, agg("gateway_l2", pt_path, gz), agg("gateway", pt_path, gz), agg("nginx", pt_path, gz))
               for gz in (False, True)] if pt_path else []
    l2_rows = [r for r in l2_rows if r[1]]
    if l2_rows:
        w("Informative: the pass-through path answered from the fleet cache (L2, Redis) by a replica whose "
          "in-process cache (L1) stores nothing (`CACHE_MAX_BYTES=1024`), against nginx proxy_cache and the "
          "L1 hit in the same rounds:\n")
        w("| path | Accept-Encoding | L2 hit req/s | L1 hit req/s | nginx req/s | L2 / nginx | L2 p50 / p99 ms "
          "| nginx p50 / p99 ms |")
        w("|---|---|---:|---:|---:|---:|---:|---:|")
        for gz, l2, g, n in l2_rows:
            ratio = f"{l2['rps'] / n['rps']:.2f}×" if n and n["rps"] else "-"
            w(f"| `{pt_path}` | {'gzip' if gz else '-'} | {fmt_rps(l2['rps'])} | {fmt_rps(g and g['rps'])} "
              f"| {fmt_rps(n and n['rps'])} | {ratio} | {fmt_ms(l2['p50'])} / {fmt_ms(l2['p99'])} "
              f"| {fmt_ms(n and n['p50'])} / {fmt_ms(n and n['p99'])} |")
        w("")
    w("Per-round req/s (gateway; nginx):\n")
    for path in paths:
        for gz in (False, True):
            g, n = agg("gateway", path, gz), agg("nginx", path, gz)
            if g or n:
                w(f"- `{path}` {'gzip' if gz else 'identity'}: "
                  f"{', '.join(f'{x:,.0f}' for x in (g['rounds'] if g else []))}; "
                  f"{', '.join(f'{x:,.0f}' for x in (n['rounds'] if n else []))}")
    w("")

    w("## Bodies\n")
    for p, b in bodies.items():
        if b.get("passthrough"):
            w(f"- `{p}` (pass-through): {b['bytes']:,} bytes; gateway Cache-Status on the warm read: "
              f"`{b.get('cache_status') or '-'}`")
        else:
            src = "the gateway's gzip bytes" if b["gateway_gzip"] else "gzip -6 (the gateway sent no gzip)"
            w(f"- `{p}`: {b['bytes']:,} bytes identity, {b['gzip_bytes']:,} bytes gzip ({src})")
    w("")

    w("## Coalescing\n")
    for name in ("gateway", "nginx", "gateway_fleet3"):
        c = co.get(name)
        if not c:
            continue
        cl = c.get("client") or {}
        who = {"gateway_fleet3": "3 gateway replicas on one Redis (requests round-robin)"}.get(name, name)
        w(f"- {who}: {cl.get('requests')} concurrent GETs of `{c['path']}` (connections opened first, requests "
          f"sent together; github-sim latency 500 ms) → **{c['upstream']} upstream request(s)**; statuses "
          f"{cl.get('statuses')}, cache status {cl.get('cache_status')}, {cl.get('distinct_bodies')} distinct "
          f"body, errors {cl.get('errors')}, all answered in {cl.get('elapsed_s')} s "
          f"(p50 {cl.get('p50_ms')} ms, max {cl.get('max_ms')} ms)")
    w("")

    w("## Fetcher refresh (github-sim counters)\n")
    if cold:
        s = cold["stats"]
        w(f"- Cold fill (first start, empty Redis): {s['total']} requests, {s['rate_limit_used']} rate-limit units, "
          f"{s['not_modified']} × 304; by path: " + ", ".join(f"`{k}` {v}" for k, v in sorted(s["by_path"].items())))
        if cold_fetch:
            w(f"- Cold fill time (fetcher log, start to the last of the first snapshot writes): "
              f"{cold_fetch['seconds']:.2f} s; writes: " + "; ".join(
                  f"{c['path'] or '?'}: {c['pages']} page(s), {c['units']} unit(s), {c['bytes']} bytes"
                  for c in cold_fetch["changes"]) + ("" if cold_fetch["complete"] else " (incomplete)"))
        w(f"- Stack start to gateway /healthcheck 200 (includes views and process start): "
          f"{cold['stack_to_healthy_ms'] / 1000:.2f} s; refresh interval {cold['refresh_interval_secs']} s")
    if unchanged:
        s = unchanged["stats"]
        w(f"- Unchanged ({unchanged['cycles']} cycles, {unchanged['seconds']} s): {s['total']} requests, "
          f"{s['not_modified']} × 304, {s['rate_limit_used']} rate-limit units; by path: "
          + ", ".join(f"`{k}` {v}" for k, v in sorted(s["by_path"].items())))
    w("")

    if rss:
        w("## Gateway memory\n")
        w(f"- Max VmRSS sampled every 0.25 s during the measured runs: {rss['max_rss_kb_under_load'] / 1024:.1f} MiB "
          f"(during {rss['at']}); VmHWM (peak since start): {rss['vmhwm_kb'] / 1024:.1f} MiB; "
          f"CACHE_MAX_BYTES {rss['cache_max_bytes'] / MIB:.0f} MiB\n")

    w("## Targets (issue 8)\n")
    for name, ok, detail in targets:
        w(f"- **{verdict(ok)}** {name}: {detail}")
    passed = sum(1 for _, ok, _ in targets if ok)
    w(f"\n{passed} of {len(targets)} targets met.")
    open(out_path, "w").write("\n".join(o) + "\n")
    print(f"{passed} of {len(targets)} targets met", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
