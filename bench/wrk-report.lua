-- wrk script for scripts/bench.sh: prints one parseable line at the end:
--   WRK_RESULT {"requests":N,"duration_us":N,"bytes":N,"rps":F,"p50_us":N,"p90_us":N,"p99_us":N,
--               "p999_us":N,"max_us":N,"mean_us":F,"errors":{...},"error_statuses":N}
-- Latency percentiles come from wrk's own HdrHistogram (microseconds); error_statuses is wrk's own
-- count of answers with a status of 400 or more.
--
-- Deliberately no `response` hook: with one, wrk copies every body into a Lua string, and on the
-- 5 MB list wrk itself becomes the bottleneck (about 260 instead of 950 req/s against the same
-- gateway), so the run would measure the client, not the servers.

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.2f,'
         .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"error_statuses":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
      latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout,
      e.status))
end
