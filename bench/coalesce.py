#!/usr/bin/env python3
"""coalesce.py URL[,URL...] N: N truly concurrent GETs of one path (bench.sh's coalescing measurement).

With several comma-separated URLs (the same path on several gateway replicas), the requests are
spread over them round-robin: the fleet figure (upstream requests per key for N replicas).

Opens all N connections first, then sends every request at once (one asyncio loop, raw HTTP/1.1,
Connection: close), waits for every answer and prints one JSON line:
  {"requests": N, "ok": ..., "statuses": {...}, "cache_status": {...}, "distinct_bodies": ...,
   "connect_errors": ..., "elapsed_s": ..., "p50_ms": ..., "max_ms": ...}
Only loopback URLs are accepted.
"""
import asyncio
import hashlib
import json
import resource
import sys
import time
from urllib.parse import urlsplit


def dechunk(data: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return bytes(out)
        size = int(data[pos:end].split(b";")[0] or b"0", 16)
        if size == 0:
            return bytes(out)
        out += data[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2


READY = [0]


async def one(host, port, request, start: asyncio.Event, timeout):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except Exception as e:  # noqa: BLE001 - reported, not raised
        READY[0] += 1
        return {"error": f"connect: {type(e).__name__}"}
    READY[0] += 1
    await start.wait()
    t0 = time.monotonic()
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    except Exception as e:  # noqa: BLE001
        writer.close()
        return {"error": f"io: {type(e).__name__}"}
    elapsed = time.monotonic() - t0
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or len(lines[0].split()) < 2:
        return {"error": "bad response"}
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = dechunk(body)
    return {
        "status": status,
        "cache_status": headers.get("cache-status", headers.get("x-cache-status", "-")),
        "body": hashlib.sha256(body).hexdigest(),
        "ms": elapsed * 1000,
    }


def target(url: str):
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("coalesce.py: only loopback URLs")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: hubcache-bench\r\n"
               f"Accept: application/vnd.github+json\r\nConnection: close\r\n\r\n").encode()
    return parts.hostname, parts.port or 80, request


async def main(urls: str, n: int, timeout: float):
    targets = [target(url) for url in urls.split(",")]
    start = asyncio.Event()
    tasks = [asyncio.create_task(one(*targets[i % len(targets)], start, timeout)) for i in range(n)]
    # Let every connection get established before the requests go out together.
    deadline = time.monotonic() + timeout
    while READY[0] < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    start.set()
    results = await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    statuses, cache, bodies, errors, lat = {}, {}, set(), {}, []
    for r in results:
        if "error" in r:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
            continue
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
        cache[r["cache_status"]] = cache.get(r["cache_status"], 0) + 1
        bodies.add(r["body"])
        lat.append(r["ms"])
    lat.sort()
    print(json.dumps({
        "requests": n,
        "ok": statuses.get("200", 0),
        "statuses": statuses,
        "cache_status": cache,
        "distinct_bodies": len(bodies),
        "errors": errors,
        "elapsed_s": round(elapsed, 3),
        "p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
        "max_ms": round(lat[-1], 1) if lat else None,
    }))


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * int(sys.argv[2]) + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 30.0))
