//! The delivery channels' configuration (`TICKETD_SMTP_URL`, `TICKETD_NATS_URL`, the webhooks'
//! deny-list...), read from the environment with the rest of `app::config::Config`.

use clap::Args;

/// The channels that deliver events outside (docs/integrations.md).
#[derive(Debug, Clone, Args)]
pub struct DeliveryConfig {
    /// SMTP server for e-mail notifications (`smtp://host:port`, `smtps://user:pass@host`,
    /// `smtp://host?tls=required`); unset: no e-mail.
    #[arg(long = "smtp-url", env = "TICKETD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of e-mail notifications.
    #[arg(
        long = "mail-from",
        env = "TICKETD_MAIL_FROM",
        default_value = "ticketd <ticketd@localhost>"
    )]
    pub mail_from: String,
    /// Where people open the desk: links in e-mails point here.
    #[arg(
        long = "public-url",
        env = "TICKETD_PUBLIC_URL",
        default_value = "http://localhost:8080"
    )]
    pub public_url: String,
    /// NATS server for the event feed on JetStream (`nats://127.0.0.1:4222`); unset: no feed.
    #[arg(long = "nats-url", env = "TICKETD_NATS_URL")]
    pub nats_url: Option<String>,
    /// Subjects are `<prefix>.<aggregate>.<event_type>`.
    #[arg(
        long = "nats-prefix",
        env = "TICKETD_NATS_PREFIX",
        default_value = "ticketd"
    )]
    pub nats_prefix: String,
    /// The JetStream stream that holds the feed.
    #[arg(
        long = "nats-stream",
        env = "TICKETD_NATS_STREAM",
        default_value = "TICKETD"
    )]
    pub nats_stream: String,
    /// Let webhooks reach loopback and private addresses (`true`: tests and closed networks).
    #[arg(long = "webhook-allow-loopback", env = "TICKETD_WEBHOOK_ALLOW_LOOPBACK",
          action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    pub webhook_allow_loopback: bool,
    /// Comma-separated CIDR ranges webhooks may never reach (default: loopback, private,
    /// link-local, carrier-grade NAT, unique-local and unspecified ranges).
    #[arg(long = "webhook-deny", env = "TICKETD_WEBHOOK_DENY", default_value = DEFAULT_WEBHOOK_DENY)]
    pub webhook_deny: String,
    /// Seconds a webhook receiver may take to answer.
    #[arg(
        long = "webhook-timeout-secs",
        env = "TICKETD_WEBHOOK_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub webhook_timeout_secs: u64,
    /// Milliseconds between two looks at an empty outbox.
    #[arg(
        long = "delivery-poll-ms",
        env = "TICKETD_DELIVERY_POLL_MS",
        default_value_t = 50
    )]
    pub poll_ms: u64,
}

/// The ranges webhooks never reach unless told otherwise.
pub const DEFAULT_WEBHOOK_DENY: &str = "0.0.0.0/8,10.0.0.0/8,100.64.0.0/10,127.0.0.0/8,\
169.254.0.0/16,172.16.0.0/12,192.0.0.0/24,192.168.0.0/16,198.18.0.0/15,224.0.0.0/4,240.0.0.0/4,\
::/128,::1/128,::ffff:0:0/96,64:ff9b::/96,fc00::/7,fe80::/10,ff00::/8";

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            smtp_url: None,
            mail_from: "ticketd <ticketd@localhost>".into(),
            public_url: "http://localhost:8080".into(),
            nats_url: None,
            nats_prefix: "ticketd".into(),
            nats_stream: "TICKETD".into(),
            webhook_allow_loopback: false,
            webhook_deny: DEFAULT_WEBHOOK_DENY.into(),
            webhook_timeout_secs: 10,
            poll_ms: 50,
        }
    }
}

impl DeliveryConfig {
    /// The deny-list as networks (empty when loopback is allowed).
    pub fn deny_list(&self) -> Result<Vec<ipnet::IpNet>, String> {
        if self.webhook_allow_loopback {
            return Ok(Vec::new());
        }
        self.webhook_deny
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .map_err(|_| format!("TICKETD_WEBHOOK_DENY: {s} is not a CIDR range"))
            })
            .collect()
    }

    /// A set value (an empty variable counts as unset).
    pub fn set(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
}
