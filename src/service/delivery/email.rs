//! E-mail notifications over SMTP (`lettre`): the e-mail channel's sender.
//!
//! The notifications projection decides who hears about what (a public reply, a status change —
//! "pending" is a request for information — and an approval waiting on someone reach the people
//! concerned; assignments and mentions reach agents) and records an e-mail row beside the in-app
//! notification when the recipient wants that kind by e-mail. Here each row is rendered at send
//! time from the event (opened through the keyring, so an erased person reads `"[erased]"`) in
//! the recipient's language: a multipart text + HTML message with a stable `Message-ID` per
//! event and recipient, and `In-Reply-To`/`References` naming the ticket's thread. Checked again
//! at send time: the recipient is active, still wants the kind, and is staff if the event is an
//! internal note (never an internal note to a requester).

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{context, Environment};
use serde_json::Value;
use sqlx::PgPool;

use super::{Channel, Claimed, Outcome};

const TEXT_EN: &str = "Hello {{ name }},

{% if kind == 'comment' %}{{ actor }} replied on {{ ticket_ref }}:

{{ content }}
{% elif kind == 'mention' %}{{ actor }} mentioned you on {{ ticket_ref }}:

{{ content }}
{% elif kind == 'status_changed' and to == 'pending' %}{{ actor }} needs more information from you on {{ ticket_ref }}. Please reply to continue.
{% elif kind == 'status_changed' %}{{ actor }} changed the status of {{ ticket_ref }} from {{ from_label }} to {{ to_label }}.
{% elif kind == 'assigned' %}{{ actor }} assigned {{ ticket_ref }} to you.
{% elif kind == 'approval_requested' %}An approval for {{ ticket_ref }} waits on your decision.
{% endif %}
{{ ticket_ref }}: {{ title }}
{{ link }}

--
You get this e-mail because of your notification settings in ticketd ({{ profile }}).
";

const HTML_EN: &str = "<!doctype html><html lang=\"en\"><body style=\"font-family: sans-serif\">
<p>Hello {{ name }},</p>
{% if kind == 'comment' %}<p>{{ actor }} replied on {{ ticket_ref }}:</p><blockquote>{{ content_html|safe }}</blockquote>
{% elif kind == 'mention' %}<p>{{ actor }} mentioned you on {{ ticket_ref }}:</p><blockquote>{{ content_html|safe }}</blockquote>
{% elif kind == 'status_changed' and to == 'pending' %}<p>{{ actor }} needs more information from you on {{ ticket_ref }}. Please reply to continue.</p>
{% elif kind == 'status_changed' %}<p>{{ actor }} changed the status of {{ ticket_ref }} from <strong>{{ from_label }}</strong> to <strong>{{ to_label }}</strong>.</p>
{% elif kind == 'assigned' %}<p>{{ actor }} assigned {{ ticket_ref }} to you.</p>
{% elif kind == 'approval_requested' %}<p>An approval for {{ ticket_ref }} waits on your decision.</p>
{% endif %}<p><a href=\"{{ link }}\">{{ ticket_ref }}: {{ title }}</a></p>
<p style=\"color:#555;font-size:small\">You get this e-mail because of your <a href=\"{{ profile }}\">notification settings</a> in ticketd.</p>
</body></html>";

const TEXT_DE: &str = "Hallo {{ name }},

{% if kind == 'comment' %}{{ actor }} hat auf {{ ticket_ref }} geantwortet:

{{ content }}
{% elif kind == 'mention' %}{{ actor }} hat Sie in {{ ticket_ref }} erwähnt:

{{ content }}
{% elif kind == 'status_changed' and to == 'pending' %}{{ actor }} benötigt für {{ ticket_ref }} weitere Informationen von Ihnen. Bitte antworten Sie, damit es weitergeht.
{% elif kind == 'status_changed' %}{{ actor }} hat den Status von {{ ticket_ref }} von {{ from_label }} auf {{ to_label }} geändert.
{% elif kind == 'assigned' %}{{ actor }} hat Ihnen {{ ticket_ref }} zugewiesen.
{% elif kind == 'approval_requested' %}Eine Genehmigung für {{ ticket_ref }} wartet auf Ihre Entscheidung.
{% endif %}
{{ ticket_ref }}: {{ title }}
{{ link }}

--
Sie erhalten diese E-Mail wegen Ihrer Benachrichtigungseinstellungen in ticketd ({{ profile }}).
";

const HTML_DE: &str = "<!doctype html><html lang=\"de\"><body style=\"font-family: sans-serif\">
<p>Hallo {{ name }},</p>
{% if kind == 'comment' %}<p>{{ actor }} hat auf {{ ticket_ref }} geantwortet:</p><blockquote>{{ content_html|safe }}</blockquote>
{% elif kind == 'mention' %}<p>{{ actor }} hat Sie in {{ ticket_ref }} erwähnt:</p><blockquote>{{ content_html|safe }}</blockquote>
{% elif kind == 'status_changed' and to == 'pending' %}<p>{{ actor }} benötigt für {{ ticket_ref }} weitere Informationen von Ihnen. Bitte antworten Sie, damit es weitergeht.</p>
{% elif kind == 'status_changed' %}<p>{{ actor }} hat den Status von {{ ticket_ref }} von <strong>{{ from_label }}</strong> auf <strong>{{ to_label }}</strong> geändert.</p>
{% elif kind == 'assigned' %}<p>{{ actor }} hat Ihnen {{ ticket_ref }} zugewiesen.</p>
{% elif kind == 'approval_requested' %}<p>Eine Genehmigung für {{ ticket_ref }} wartet auf Ihre Entscheidung.</p>
{% endif %}<p><a href=\"{{ link }}\">{{ ticket_ref }}: {{ title }}</a></p>
<p style=\"color:#555;font-size:small\">Sie erhalten diese E-Mail wegen Ihrer <a href=\"{{ profile }}\">Benachrichtigungseinstellungen</a> in ticketd.</p>
</body></html>";

/// A status in the recipient's language.
fn status_label(locale: &str, status: &str) -> String {
    let de = locale == "de";
    match status {
        "open" if de => "Offen",
        "open" => "Open",
        "in_progress" if de => "In Bearbeitung",
        "in_progress" => "In progress",
        "pending" if de => "Wartet auf Rückmeldung",
        "pending" => "Waiting for your reply",
        "resolved" if de => "Gelöst",
        "resolved" => "Resolved",
        "closed" if de => "Geschlossen",
        "closed" => "Closed",
        "cancelled" if de => "Storniert",
        "cancelled" => "Cancelled",
        other => other,
    }
    .to_string()
}

/// The subject of every message of a ticket's thread.
fn subject(ticket_id: i64, title: &str) -> String {
    format!("[TKT-{ticket_id}] {title}")
}

/// The recipient, as sending needs them.
#[derive(Debug, sqlx::FromRow)]
struct Recipient {
    id: i64,
    email: String,
    full_name: String,
    role: String,
    is_active: bool,
    locale: String,
    notify: sqlx::types::Json<Value>,
}

/// The e-mail channel's sender.
pub struct EmailSender {
    pool: PgPool,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
    public_url: String,
    installation: uuid::Uuid,
    templates: Environment<'static>,
}

impl EmailSender {
    /// A sender through the SMTP server at `url`.
    pub fn new(
        pool: PgPool,
        url: &str,
        config: &super::config::DeliveryConfig,
        installation: uuid::Uuid,
    ) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("TICKETD_SMTP_URL: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| format!("TICKETD_MAIL_FROM: {e}"))?;
        let domain = from.email.domain().to_string();
        let mut templates = Environment::new();
        for (name, source) in [
            ("en.txt", TEXT_EN),
            ("en.html", HTML_EN),
            ("de.txt", TEXT_DE),
            ("de.html", HTML_DE),
        ] {
            templates
                .add_template(name, source)
                .map_err(|e| format!("e-mail template {name}: {e}"))?;
        }
        Ok(EmailSender {
            pool,
            transport,
            from,
            domain,
            public_url: config.public_url.trim_end_matches('/').to_string(),
            installation,
            templates,
        })
    }

    /// The `Message-ID` of the message about `position` to `user`.
    pub fn message_id(&self, position: i64, user: i64) -> String {
        format!(
            "<{position}.{user}.{}@{}>",
            self.installation.simple(),
            self.domain
        )
    }

    /// The id every message of a ticket's thread refers to.
    pub fn thread_id(&self, ticket_id: i64) -> String {
        format!(
            "<ticket-{ticket_id}.{}@{}>",
            self.installation.simple(),
            self.domain
        )
    }

    /// What the templates of `row` see (`None`: an internal note to a requester, never sent).
    fn template_context(
        &self,
        row: &Claimed,
        recipient: &Recipient,
        event: &projections::StoredEvent,
        names: &HashMap<i64, String>,
        titles: &HashMap<i64, String>,
    ) -> Option<(i64, String, minijinja::Value)> {
        let ticket_id: i64 = row
            .order_key
            .as_deref()
            .and_then(|k| k.parse().ok())
            .unwrap_or_default();
        let payload = event
            .payload
            .get(&event.event_type)
            .cloned()
            .unwrap_or(Value::Null);
        let internal = payload.get("is_internal").and_then(Value::as_bool) == Some(true);
        if internal && recipient.role == "requester" {
            return None;
        }
        let text = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or_default();
        let content = text("content").to_string();
        let to = match event.event_type.as_str() {
            "TicketDeleted" => "cancelled",
            _ => text("to"),
        };
        let locale = if recipient.locale == "de" { "de" } else { "en" };
        let actor = event
            .actor_id()
            .and_then(|a| names.get(&a).cloned())
            .unwrap_or_else(|| "ticketd".into());
        let title = titles.get(&ticket_id).cloned().unwrap_or_default();
        let ctx = context! {
            name => recipient.full_name,
            kind => row.kind,
            actor => actor,
            ticket_ref => format!("TKT-{ticket_id}"),
            title => title,
            content_html => crate::service::markdown::render(&content),
            content => content,
            from_label => status_label(locale, text("from")),
            to_label => status_label(locale, to),
            to => to,
            link => format!("{}/tickets/{ticket_id}", self.public_url),
            profile => format!("{}/profile", self.public_url),
        };
        Some((ticket_id, title, ctx))
    }

    fn compose(
        &self,
        row: &Claimed,
        recipient: &Recipient,
        event: &projections::StoredEvent,
        names: &HashMap<i64, String>,
        titles: &HashMap<i64, String>,
    ) -> Result<Option<Message>, String> {
        let Some((ticket_id, title, ctx)) =
            self.template_context(row, recipient, event, names, titles)
        else {
            return Ok(None);
        };
        let locale = if recipient.locale == "de" { "de" } else { "en" };
        let render = |name: String| {
            self.templates
                .get_template(&name)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| format!("template {name}: {e}"))
        };
        let text = render(format!("{locale}.txt"))?;
        let html = render(format!("{locale}.html"))?;
        let to_box = Mailbox::new(
            Some(recipient.full_name.clone()),
            recipient
                .email
                .parse()
                .map_err(|_| "the recipient's address is not valid".to_string())?,
        );
        let thread = self.thread_id(ticket_id);
        Message::builder()
            .from(self.from.clone())
            .to(to_box)
            .subject(subject(ticket_id, &title))
            .message_id(Some(self.message_id(row.event_position, recipient.id)))
            .in_reply_to(thread.clone())
            .references(thread)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map(Some)
            .map_err(|e| e.to_string())
    }

    async fn send_one(
        &self,
        row: &Claimed,
        recipients: &HashMap<i64, Recipient>,
        events: &HashMap<i64, projections::StoredEvent>,
        names: &HashMap<i64, String>,
        titles: &HashMap<i64, String>,
    ) -> Outcome {
        let Some(recipient) = row.recipient.and_then(|r| recipients.get(&r)) else {
            return Outcome::Skipped("the recipient is gone".into());
        };
        if !recipient.is_active || recipient.email == privacy::ERASED {
            return Outcome::Skipped("the recipient is inactive".into());
        }
        let wanted = recipient
            .notify
            .0
            .get("email")
            .and_then(Value::as_array)
            .is_some_and(|kinds| kinds.iter().any(|k| k.as_str() == Some(row.kind.as_str())));
        if !wanted {
            return Outcome::Skipped("the recipient turned these e-mails off".into());
        }
        let Some(event) = events.get(&row.event_position) else {
            return Outcome::Skipped("the event is not in the log".into());
        };
        let message = match self.compose(row, recipient, event, names, titles) {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Outcome::Skipped("an internal note never goes to a requester".into())
            }
            Err(e) => {
                return Outcome::Failed {
                    status: None,
                    error: e,
                }
            }
        };
        match self.transport.send(message).await {
            Ok(_) => Outcome::Delivered(None),
            Err(e) if e.is_permanent() => Outcome::Failed {
                status: None,
                error: "the mail server refused the message".into(),
            },
            Err(e) => Outcome::Retry {
                status: None,
                error: if e.is_timeout() {
                    "the mail server did not answer in time".into()
                } else {
                    "the mail server could not be reached".into()
                },
            },
        }
    }
}

impl Channel for EmailSender {
    fn name(&self) -> &'static str {
        projections::delivery::EMAIL
    }

    fn batch(&self) -> i64 {
        100
    }

    fn send<'a>(&'a self, rows: &'a [Claimed]) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            match self.context(rows).await {
                Ok((recipients, events, names, titles)) => {
                    // Eight at once over the transport's connection pool, outcomes in order.
                    let sends: Vec<_> = rows
                        .iter()
                        .map(|row| self.send_one(row, &recipients, &events, &names, &titles))
                        .collect();
                    futures::stream::iter(sends).buffered(8).collect().await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "e-mail sender");
                    rows.iter()
                        .map(|_| Outcome::Retry {
                            status: None,
                            error: "ticketd could not read the message; it will try again".into(),
                        })
                        .collect()
                }
            }
        })
    }
}

type Context = (
    HashMap<i64, Recipient>,
    HashMap<i64, projections::StoredEvent>,
    HashMap<i64, String>,
    HashMap<i64, String>,
);

impl EmailSender {
    /// What a round's messages need: recipients, events, actors' names, tickets' titles.
    async fn context(&self, rows: &[Claimed]) -> Result<Context, sqlx::Error> {
        let users: Vec<i64> = rows.iter().filter_map(|r| r.recipient).collect();
        let positions: Vec<i64> = rows.iter().map(|r| r.event_position).collect();
        let tickets: Vec<i64> = rows
            .iter()
            .filter_map(|r| r.order_key.as_deref()?.parse().ok())
            .collect();
        let recipients: Vec<Recipient> = sqlx::query_as(
            "select id, email, full_name, role, is_active, locale, notify from users
              where id = any($1)",
        )
        .bind(&users)
        .fetch_all(&self.pool)
        .await?;
        let events = super::load_events(&self.pool, &positions).await?;
        let actors: Vec<i64> = events.values().filter_map(|e| e.actor_id()).collect();
        let names: Vec<(i64, String)> =
            sqlx::query_as("select id, full_name from users where id = any($1)")
                .bind(&actors)
                .fetch_all(&self.pool)
                .await?;
        let titles: Vec<(i64, String)> =
            sqlx::query_as("select id, title from rm_tickets where id = any($1)")
                .bind(&tickets)
                .fetch_all(&self.pool)
                .await?;
        Ok((
            recipients.into_iter().map(|r| (r.id, r)).collect(),
            events,
            names.into_iter().collect(),
            titles.into_iter().collect(),
        ))
    }
}
