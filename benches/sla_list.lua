-- wrk script: GET ticket list pages sorted by SLA due time (first pages, the queue's usual
-- filters) with the bearer token from $TOKEN; $AGENT is an agent's id.
local agent = os.getenv("AGENT") or "1"
local paths = {
  "/api/v1/tickets/?size=50&sort=sla_due",
  "/api/v1/tickets/?size=50&sort=sla_due&page=2",
  "/api/v1/tickets/?size=50&sort=sla_due&status=open,in_progress,pending",
  "/api/v1/tickets/?size=50&sort=sla_due&assignee_id=" .. agent .. "&status=open,in_progress,pending",
  "/api/v1/tickets/?size=50&sort=sla_due&assignee_id=none&status=open,in_progress,pending",
  "/api/v1/tickets/?size=50&sort=sla_due&sla=breached&priority=critical",
  "/api/v1/tickets/?size=50&sort=sla_due&sla=warning",
  "/api/v1/tickets/?size=50&sort=sla_due&priority=high&status=open",
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
