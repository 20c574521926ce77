//! Personal data in the event log (DESIGN.md "Personal data and erasure"): the personal fields
//! of an event are sealed with AES-256-GCM under a data key per person; the keys are wrapped by
//! the master key and kept in `person_keys`, outside the log. Destroying a key (erasure) makes
//! everything sealed under it read `"[erased]"`, while the log and its hash chain (which covers
//! the ciphertext) stay as they were.
//!
//! Everything that reads events opens them through [`Keyring::open`]: the write path's event
//! store, the projections' log reader, history, `as_of`, replay and exports.

pub mod cipher;
pub mod keyring;
pub mod rules;

pub use cipher::{CipherError, DataKey, MasterKey};
pub use keyring::{actor_of, install, is_sealed, keyring, sealed, Db, EventView, Keyring};

/// What a value sealed under a destroyed key reads as.
pub const ERASED: &str = "[erased]";
/// The key of a sealed value's one-field object: `{"$enc": "v1:<person>:<base64>"}`.
pub const SEALED_TAG: &str = "$enc";
/// The aggregate type of the `person` stream (`DataKeyIssued`, `PersonErased`).
pub const PERSON: &str = "person";
