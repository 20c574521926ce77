//! Prometheus metrics: request latency by route, commands, projection positions and lag.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectionLabels {
    projection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

struct Metrics {
    registry: Registry,
    delivery_sent: Family<ChannelLabels, Counter>,
    delivery_failed: Family<ChannelLabels, Counter>,
    delivery_queued: Family<ChannelLabels, Gauge>,
    delivery_failed_now: Family<ChannelLabels, Gauge>,
    delivery_oldest: Family<ChannelLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    latency: Family<RouteLabels, Histogram>,
    position: Family<ProjectionLabels, Gauge>,
    lag_events: Family<ProjectionLabels, Gauge>,
    transient_errors: Family<ProjectionLabels, Gauge>,
    commands: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("ticketd");
    let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
        Histogram::new(exponential_buckets(0.0005, 2.0, 16))
    });
    registry.register(
        "http_request_duration_seconds",
        "HTTP request latency",
        latency.clone(),
    );
    let position = Family::<ProjectionLabels, Gauge>::default();
    registry.register(
        "projection_position",
        "Global position of the last applied event",
        position.clone(),
    );
    let lag_events = Family::<ProjectionLabels, Gauge>::default();
    registry.register(
        "projection_lag_events",
        "Events in the log not yet applied",
        lag_events.clone(),
    );
    let transient_errors = Family::<ProjectionLabels, Gauge>::default();
    registry.register(
        "projection_transient_errors",
        "Transient errors retried since start",
        transient_errors.clone(),
    );
    let commands = Counter::default();
    registry.register(
        "commands",
        "Commands that appended events",
        commands.clone(),
    );
    let delivery_sent = Family::<ChannelLabels, Counter>::default();
    registry.register(
        "deliveries_sent",
        "Messages delivered by this process",
        delivery_sent.clone(),
    );
    let delivery_failed = Family::<ChannelLabels, Counter>::default();
    registry.register(
        "deliveries_given_up",
        "Deliveries this process gave up on after their retries",
        delivery_failed.clone(),
    );
    let delivery_queued = Family::<ChannelLabels, Gauge>::default();
    registry.register(
        "deliveries_queued",
        "Deliveries waiting to be sent (whole installation)",
        delivery_queued.clone(),
    );
    let delivery_failed_now = Family::<ChannelLabels, Gauge>::default();
    registry.register(
        "deliveries_failed",
        "Deliveries that failed for good and wait for a manual retry (whole installation)",
        delivery_failed_now.clone(),
    );
    let delivery_oldest =
        Family::<ChannelLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    registry.register(
        "deliveries_oldest_pending_seconds",
        "Age of the oldest delivery still waiting",
        delivery_oldest.clone(),
    );
    Metrics {
        registry,
        delivery_sent,
        delivery_failed,
        delivery_queued,
        delivery_failed_now,
        delivery_oldest,
        latency,
        position,
        lag_events,
        transient_errors,
        commands,
    }
});

/// Counts one committed command.
pub fn command_committed() {
    METRICS.commands.inc();
}

/// Records one answered request's latency under its route pattern.
pub fn observe_request(method: String, route: String, status: u16, seconds: f64) {
    METRICS
        .latency
        .get_or_create(&RouteLabels {
            method,
            route,
            status,
        })
        .observe(seconds);
}

/// Records a projection's position and lag.
pub fn set_projection(name: &str, position: i64, lag: i64, transient: u64) {
    let labels = ProjectionLabels {
        projection: name.to_string(),
    };
    METRICS.position.get_or_create(&labels).set(position);
    METRICS.lag_events.get_or_create(&labels).set(lag);
    METRICS
        .transient_errors
        .get_or_create(&labels)
        .set(transient as i64);
}

fn channel(name: &str) -> ChannelLabels {
    ChannelLabels {
        channel: name.to_string(),
    }
}

/// Counts one delivered message.
pub fn delivery_sent(name: &str) {
    METRICS.delivery_sent.get_or_create(&channel(name)).inc();
}

/// Counts one delivery given up on.
pub fn delivery_failed(name: &str) {
    METRICS.delivery_failed.get_or_create(&channel(name)).inc();
}

/// Records what a channel's outbox holds.
pub fn set_outbox(name: &str, pending: i64, failed: i64, oldest_seconds: f64) {
    let labels = channel(name);
    METRICS.delivery_queued.get_or_create(&labels).set(pending);
    METRICS
        .delivery_failed_now
        .get_or_create(&labels)
        .set(failed);
    METRICS
        .delivery_oldest
        .get_or_create(&labels)
        .set(oldest_seconds);
}

/// The text exposition.
pub fn render() -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &METRICS.registry).is_err() {
        out.clear();
    }
    out
}
