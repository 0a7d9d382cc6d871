-- wrk script for scripts/bench.sh: counts response statuses and prints one parseable line at the end:
--   WRK_RESULT {"requests":N,"duration_us":N,"bytes":N,"rps":F,"p50_us":N,"p90_us":N,"p99_us":N,
--               "max_us":N,"mean_us":F,"errors":{...},"non_2xx":N}
-- Latency percentiles come from wrk's own HdrHistogram (microseconds).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   statuses = {}
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local non_2xx = 0
   local by_status = {}
   for _, t in ipairs(threads) do
      local s = t:get("statuses")
      if s then
         for code, n in pairs(s) do
            by_status[code] = (by_status[code] or 0) + n
            if code < 200 or code > 299 then non_2xx = non_2xx + n end
         end
      end
   end
   local parts = {}
   for code, n in pairs(by_status) do
      table.insert(parts, string.format('"%d":%d', code, n))
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.2f,'
         .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"non_2xx":%d,"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout,
      non_2xx, table.concat(parts, ",")))
end
