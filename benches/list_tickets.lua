-- wrk script: GET ticket list pages (first pages, varied filters) with the bearer token from $TOKEN.
local paths = {
  "/api/v1/tickets/?size=20",
  "/api/v1/tickets/?size=20&page=2",
  "/api/v1/tickets/?size=20&status=open",
  "/api/v1/tickets/?size=20&priority=high",
  "/api/v1/tickets/?size=20&sort=-updated_at",
  "/api/v1/tickets/?size=20&status=in_progress&priority=critical",
}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], { ["Authorization"] = "Bearer " .. os.getenv("TOKEN") })
end

done = function(summary, latency, requests)
  io.write(string.format("requests=%d errors=%d rps=%.1f p50=%.2fms p95=%.2fms p99=%.2fms\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
