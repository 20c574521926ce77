-- wrk script: GET /api/v1/reports/dashboard with the bearer token from $TOKEN.
-- With VARY=1 every request asks for a different at_risk_minutes, so (almost) every request
-- misses the dashboard cache and measures the uncached computation.
local vary = os.getenv("VARY") == "1"
local i = 0
request = function()
  i = i + 1
  local path = "/api/v1/reports/dashboard"
  if vary then
    path = path .. "?at_risk_minutes=" .. tostring(1 + (i * 7919 + math.random(0, 9999)) % 10080)
  end
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. os.getenv("TOKEN") })
end

done = function(summary, latency, requests)
  io.write(string.format("requests=%d errors=%d rps=%.1f p50=%.2fms p95=%.2fms p99=%.2fms\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
