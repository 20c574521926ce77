//! `ticketd privacy erase|export USER_ID`: the same erasure and export as the API's
//! `POST /users/{id}/erase` and `GET /users/{id}/export`, for an operator at the console.

use crate::cli::out;
use crate::service::erasure;
use crate::service::error::any::Result;
use crate::service::Services;

/// `ticketd privacy ...`
#[derive(Debug, clap::Subcommand)]
pub enum PrivacyCmd {
    /// Erase a person's personal data (destroys their data key; the log stays verifiable).
    /// Lists the log entries that keep their data in plaintext (written before encryption).
    Erase {
        /// The user id.
        user_id: i64,
    },
    /// Print everything ticketd holds about a person, as JSON.
    Export {
        /// The user id.
        user_id: i64,
    },
}

/// Runs `ticketd privacy ...` on a state built without projections.
pub async fn run(services: &Services, command: PrivacyCmd) -> Result<()> {
    match command {
        PrivacyCmd::Erase { user_id } => {
            let (report, _) = erasure::erase(services, None, user_id)
                .await
                .map_err(|e| e.to_string())?;
            out(&format!(
                "erased user {user_id}: data key {}, {} file(s) deleted",
                if report.key_destroyed {
                    "destroyed"
                } else {
                    "absent (nothing was sealed)"
                },
                report.files_deleted
            ));
            if report.plaintext_entries.is_empty() {
                out("no log entry keeps their data in plaintext");
            } else {
                out(&format!(
                    "{} log entries keep their data in plaintext (written before encryption; every read model and response redacts them):",
                    report.plaintext_entries.len()
                ));
                for e in &report.plaintext_entries {
                    out(&format!(
                        "  {}/{} #{} {}",
                        e.aggregate_type, e.aggregate_id, e.sequence, e.event_type
                    ));
                }
            }
            Ok(())
        }
        PrivacyCmd::Export { user_id } => {
            let data = erasure::export(&services.pool, user_id)
                .await
                .map_err(|e| e.to_string())?;
            out(&serde_json::to_string_pretty(&data)?);
            Ok(())
        }
    }
}
