//! The cipher: AES-256-GCM with a random 96-bit nonce per value. A person's data key is wrapped
//! (sealed) by the master key; a personal value is sealed by its person's data key. The person's
//! id is the associated data of both, so a value or a wrapped key moved to another person does not
//! open.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;

/// Why a master key or a sealed value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    #[error("TICKETD_MASTER_KEY is not valid base64")]
    NotBase64,
    #[error("TICKETD_MASTER_KEY must decode to 32 bytes, not {0}")]
    WrongLength(usize),
    #[error("the value cannot be opened with this key")]
    Unopenable,
}

/// The master key (`TICKETD_MASTER_KEY`): wraps the data keys, never stored in the database.
#[derive(Clone)]
pub struct MasterKey {
    cipher: Aes256Gcm,
    development: bool,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("development", &self.development)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// The key from its base64 form (32 random bytes).
    pub fn from_base64(text: &str) -> Result<Self, CipherError> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|_| CipherError::NotBase64)?;
        if bytes.len() != 32 {
            return Err(CipherError::WrongLength(bytes.len()));
        }
        Ok(MasterKey {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
            development: false,
        })
    }

    /// The development key: derived from a fixed phrase, never accepted in production.
    pub fn development() -> Self {
        let bytes = Sha256::digest(b"ticketd development master key - not for production");
        MasterKey {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
            development: true,
        }
    }

    /// Whether this is the derived development key.
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// A fresh data key for `person`, and its wrapped form for `person_keys`.
    pub fn issue(&self, person: i64) -> (DataKey, Vec<u8>) {
        let key = Aes256Gcm::generate_key(OsRng);
        let wrapped = seal_bytes(&self.cipher, &wrap_aad(person), &key);
        (
            DataKey {
                cipher: Aes256Gcm::new(&key),
            },
            wrapped,
        )
    }

    /// Unwraps `person`'s data key.
    pub fn unwrap(&self, person: i64, wrapped: &[u8]) -> Result<DataKey, CipherError> {
        let bytes = open_bytes(&self.cipher, &wrap_aad(person), wrapped)?;
        if bytes.len() != 32 {
            return Err(CipherError::Unopenable);
        }
        Ok(DataKey {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }
}

fn wrap_aad(person: i64) -> Vec<u8> {
    format!("ticketd person key {person}").into_bytes()
}

fn value_aad(person: i64) -> Vec<u8> {
    format!("ticketd person {person}").into_bytes()
}

/// A person's data key.
#[derive(Clone)]
pub struct DataKey {
    cipher: Aes256Gcm,
}

impl DataKey {
    /// `text` sealed for `person`, as base64 of nonce and ciphertext.
    pub fn seal(&self, person: i64, text: &str) -> String {
        B64.encode(seal_bytes(
            &self.cipher,
            &value_aad(person),
            text.as_bytes(),
        ))
    }

    /// The text of a value [`DataKey::seal`]ed for `person`.
    pub fn open(&self, person: i64, sealed: &str) -> Result<String, CipherError> {
        let bytes = B64.decode(sealed).map_err(|_| CipherError::Unopenable)?;
        let plain = open_bytes(&self.cipher, &value_aad(person), &bytes)?;
        String::from_utf8(plain).map_err(|_| CipherError::Unopenable)
    }
}

fn seal_bytes(cipher: &Aes256Gcm, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let nonce = Aes256Gcm::generate_nonce(OsRng);
    let sealed = cipher
        .encrypt(&nonce, Payload { msg: plain, aad })
        // Only fails for messages beyond GCM's 64 GiB limit.
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

fn open_bytes(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
    if sealed.len() < NONCE_LEN {
        return Err(CipherError::Unopenable);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
        .map_err(|_| CipherError::Unopenable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_person() {
        let master = MasterKey::development();
        let (key, wrapped) = master.issue(7);
        let sealed = key.seal(7, "Grüße von Alice");
        assert!(!sealed.contains("Alice"));
        let again = master.unwrap(7, &wrapped).expect("unwraps");
        assert_eq!(again.open(7, &sealed).as_deref(), Ok("Grüße von Alice"));
        assert_eq!(again.open(8, &sealed), Err(CipherError::Unopenable));
        assert!(master.unwrap(8, &wrapped).is_err());
        let (other, _) = master.issue(7);
        assert_eq!(other.open(7, &sealed), Err(CipherError::Unopenable));
    }

    #[test]
    fn master_keys_must_be_32_bytes_of_base64() {
        assert_eq!(
            MasterKey::from_base64("not base64!").err(),
            Some(CipherError::NotBase64)
        );
        assert_eq!(
            MasterKey::from_base64(&B64.encode([1u8; 16])).err(),
            Some(CipherError::WrongLength(16))
        );
        let key = MasterKey::from_base64(&B64.encode([1u8; 32])).expect("valid");
        let (_, wrapped) = key.issue(1);
        assert!(MasterKey::development().unwrap(1, &wrapped).is_err());
    }
}
