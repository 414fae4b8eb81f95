//! The server's clock and random secrets, in one place so the rest never asks the OS.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tandem_protocol::Timestamp;

pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn now() -> Timestamp {
    Timestamp(u64::try_from(now_millis()).unwrap_or(0))
}

/// A high-entropy secret for links, cookies and tokens: 256 bits, URL-safe.
pub fn secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored instead of a secret, so a leaked database opens nothing.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
