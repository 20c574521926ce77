//! Access tokens: JWT HS256, valid for 15 minutes, signed with the configured key.

use aggregates::Role;
use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::service::error::Error;

/// Lifetime of an access token.
pub const ACCESS_TOKEN_SECONDS: i64 = 15 * 60;

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    /// Always `access`: nothing else is ever accepted as a bearer token.
    pub typ: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// The sign-in session (refresh-token family) the token belongs to: revoking the session
    /// makes the token fail at once.
    pub sid: Uuid,
}

impl Claims {
    /// The user id in `sub`, which must be its canonical decimal form: `"01"`, `"+1"` or
    /// `" 1"` would parse as 1 but are not what this server issues.
    pub fn user_id(&self) -> Result<i64, Error> {
        self.sub
            .parse::<i64>()
            .ok()
            .filter(|id| id.to_string() == self.sub)
            .ok_or_else(|| Error::Unauthorized("Invalid or expired token".into()))
    }
}

/// The HS256 keys, held in the application state.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    /// Keys from the configured secret.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Issues an access token for a user in sign-in session `session`.
    pub fn issue(&self, user_id: i64, role: Role, session: Uuid) -> Result<String, Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            typ: "access".into(),
            iat: now,
            nbf: now,
            exp: now + ACCESS_TOKEN_SECONDS,
            jti: Uuid::new_v4().to_string(),
            sid: session,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(Error::internal)
    }

    /// Validates an access token.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| Error::Unauthorized("Invalid or expired token".into()))?;
        if data.claims.typ != "access" {
            return Err(Error::Unauthorized("Invalid or expired token".into()));
        }
        Ok(data.claims)
    }
}
