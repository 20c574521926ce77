//! Where the use cases read the time that SLA states are judged at (`ok` until the due time,
//! `breached` after it): the system clock in production, a fixed one in tests.

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time, at PostgreSQL's precision (microseconds).
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        crate::service::now()
    }
}
