-- wrk script: POST a ticket with the bearer token from $TOKEN.
wrk.method = "POST"
wrk.path = "/api/v1/tickets/"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"title":"Load test ticket","description":"created by wrk","priority":"medium","type":"issue"}'

done = function(summary, latency, requests)
  io.write(string.format("requests=%d errors=%d rps=%.1f p50=%.2fms p95=%.2fms p99=%.2fms\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
