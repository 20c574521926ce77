//! One error for every use case: what went wrong, in terms a caller can act on.
//! `http` renders it in the API.md format (`{"detail", "code"}`, 422 `{"detail": [{loc, msg, type}]}`);
//! the CLI prints it.

use serde::Serialize;
use serde_json::{json, Value};

/// One entry of a 422 answer.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FieldError {
    /// Where the problem is: `["body", "title"]`, `["query", "page"]`, `["path", "id"]`,
    /// `["body", "steps", 0, "name"]`: names as strings, positions in a list as integers.
    #[schema(value_type = Vec<LocSegment>)]
    pub loc: Vec<Value>,
    /// What is wrong, for people.
    pub msg: String,
    /// What is wrong, for programs (`missing`, `value_error`, `type_error`, ...).
    #[serde(rename = "type")]
    pub kind: String,
}

/// One step of a `FieldError.loc` path (documentation only: `loc` is built as JSON values).
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
pub enum LocSegment {
    /// `body`, `query`, `path`, `header`, or a field name.
    Name(String),
    /// A position in a list.
    Index(u64),
}

impl FieldError {
    /// A problem with a body field.
    pub fn body(field: &str, msg: impl Into<String>, kind: &str) -> Self {
        FieldError {
            loc: vec![json!("body"), json!(field)],
            msg: msg.into(),
            kind: kind.into(),
        }
    }

    /// A problem with a query parameter.
    pub fn query(field: &str, msg: impl Into<String>) -> Self {
        FieldError {
            loc: vec![json!("query"), json!(field)],
            msg: msg.into(),
            kind: "value_error".into(),
        }
    }
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{detail}")]
    Conflict {
        detail: String,
        extra: Option<Value>,
    },
    #[error("{0}")]
    PreconditionFailed(String),
    /// A change that needs `If-Match` came without one (RFC 6585 428).
    #[error("{0}")]
    PreconditionRequired(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{detail}")]
    RateLimited { detail: String, retry_after: u64 },
    #[error("{detail}")]
    Unavailable { detail: String, retry_after: u64 },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// 422 on one body field.
    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::body(field, msg, "value_error")])
    }

    /// 404 with the given noun ("Ticket not found").
    pub fn not_found(what: &str) -> Self {
        Error::NotFound(format!("{what} not found"))
    }

    /// 409 with a message.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Error::Conflict {
            detail: detail.into(),
            extra: None,
        }
    }

    /// 500 whose cause goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Error::Internal(cause.to_string())
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Error::Unavailable {
                    detail: "The service is temporarily unavailable".into(),
                    retry_after: 1,
                }
            }
            _ => Error::Internal(format!("database: {e}")),
        }
    }
}

/// A boxed error for start-up and command-line code, where the message is all that counts.
pub mod any {
    /// Any error, boxed.
    pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;
    /// A result with a boxed error.
    pub type Result<T> = std::result::Result<T, Error>;
}

/// Collects semantic validation errors for one request.
#[derive(Default)]
pub struct Validator(Vec<FieldError>);

impl Validator {
    /// Records a failed check on a body field.
    pub fn check(&mut self, ok: bool, field: &str, msg: &str) {
        if !ok {
            self.0.push(FieldError::body(field, msg, "value_error"));
        }
    }

    /// Records a missing body field.
    pub fn missing(&mut self, field: &str, msg: &str) {
        self.0.push(FieldError::body(field, msg, "missing"));
    }

    /// Records a bad query parameter.
    pub fn check_query(&mut self, ok: bool, field: &str, msg: &str) {
        if !ok {
            self.0.push(FieldError::query(field, msg));
        }
    }

    /// Ok when every check passed, else one 422 with all of them.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.0))
        }
    }
}

/// A domain error's message as a sentence ("not pending" → "Not pending").
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
