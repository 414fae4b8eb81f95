//! Accounts and logins: argon2id password hashes, an HttpOnly SameSite=Strict login cookie,
//! and the extractors that guard rep and admin routes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;

use crate::AppState;
use crate::clock::{hash_secret, now_millis};
use crate::error::AppError;
use crate::store::Account;

pub const LOGIN_COOKIE: &str = "tandem_login";
/// A login lasts a working day.
pub const LOGIN_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("could not hash the password: {e}"))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Spend the same time as a real verification, so a wrong username is not told apart
/// from a wrong password by timing.
pub fn verify_nothing(password: &str) {
    // Hashing costs what verifying does; the result is thrown away on purpose.
    let _timing_only = hash_password(password);
}

pub fn validate_password(password: &str) -> Result<(), AppError> {
    if password.chars().count() < 8 {
        return Err(AppError::bad_request(
            "a password needs at least 8 characters",
        ));
    }
    if password.len() > 1024 {
        return Err(AppError::bad_request("that password is too long"));
    }
    Ok(())
}

pub fn validate_username(username: &str) -> Result<(), AppError> {
    let ok = (1..=32).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "a username has 1 to 32 letters, digits, dots, dashes or underscores",
        ))
    }
}

/// The account of the login cookie in these headers, if it is valid.
pub async fn account_from_headers(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Account>, AppError> {
    let jar = CookieJar::from_headers(headers);
    let Some(cookie) = jar.get(LOGIN_COOKIE) else {
        return Ok(None);
    };
    let hash = hash_secret(cookie.value());
    Ok(state.store.login(&hash, now_millis()).await?)
}

/// A logged-in rep (any enabled account).
#[derive(Debug, Clone)]
pub struct Rep(pub Account);

impl FromRequestParts<AppState> for Rep {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        account_from_headers(state, &parts.headers)
            .await?
            .map(Rep)
            .ok_or_else(AppError::unauthorized)
    }
}

/// A logged-in admin.
#[derive(Debug, Clone)]
pub struct Admin(pub Account);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Rep(account) = Rep::from_request_parts(parts, state).await?;
        if account.is_admin {
            Ok(Admin(account))
        } else {
            Err(AppError::forbidden("only administrators can do this"))
        }
    }
}

/// Browsers send `Origin` on cross-site requests; refuse any whose host is not ours.
/// Non-browser clients (the agent, curl) send none and are judged by their credentials.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get("host").and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horse!"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn origin_must_match_host_when_present() {
        let mut h = HeaderMap::new();
        h.insert("host", "127.0.0.1:8080".parse().expect("header"));
        assert!(same_origin(&h), "no Origin: not a browser");
        h.insert("origin", "http://127.0.0.1:8080".parse().expect("header"));
        assert!(same_origin(&h));
        h.insert("origin", "http://evil.example".parse().expect("header"));
        assert!(!same_origin(&h));
        h.insert("origin", "null".parse().expect("header"));
        assert!(!same_origin(&h));
    }
}
