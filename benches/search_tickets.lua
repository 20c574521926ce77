-- wrk script: search-as-you-type queries (words, prefixes, a typo) with the token from $TOKEN.
local queries = { "printer", "vpn disc", "passw", "payroll system", "badge reader", "firewal", "certificate", "monit", "backup job", "sso" }
local i = 0
request = function()
  i = i + 1
  local q = queries[(i % #queries) + 1]:gsub(" ", "%%20")
  return wrk.format("GET", "/api/v1/tickets/search?q=" .. q, { ["Authorization"] = "Bearer " .. os.getenv("TOKEN") })
end

done = function(summary, latency, requests)
  io.write(string.format("requests=%d errors=%d rps=%.1f p50=%.2fms p95=%.2fms p99=%.2fms\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
