//! Logging in and out. The cookie is HttpOnly and SameSite=Strict; only its hash is stored.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{LOGIN_COOKIE, LOGIN_LIFETIME_MS, Rep, verify_nothing, verify_password};
use crate::clock::{hash_secret, now_millis, secret};
use crate::error::{AppError, ErrorBody};
use crate::store::{Account, SiteAction};

#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    /// The account name (surrounding spaces are ignored).
    username: String,
    password: String,
}

/// Log in. The answer sets the login cookie every other rep and admin route needs.
#[utoipa::path(
    post,
    path = "/api/login",
    tag = "login",
    request_body = Credentials,
    responses(
        (status = 200, description = "Logged in: the account, and the login cookie \
            `tandem_login` (Path=/; HttpOnly; SameSite=Strict; Secure when the server serves \
            HTTPS; no Max-Age: it lasts the browser session, the server accepts it for 12 h)",
            body = Account,
            headers(("set-cookie" = String, description = "tandem_login=<token>; Path=/; HttpOnly; SameSite=Strict"))),
        (status = 401, description = "Wrong username or password, or a disabled account: one \
            answer for all three", body = ErrorBody),
        (status = 429, description = "Too many logins from this address or on the whole \
            site (no Retry-After), or too many failed logins for this account (Retry-After in \
            seconds; the delay doubles with each failure, up to 5 minutes)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait (account slow-down only)"))),
        (status = 503, description = "Four password checks are running already and none ended \
            within 3 s (a login waits that long for its turn); try again in a moment", body = ErrorBody),
    )
)]

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Json(creds): Json<Credentials>,
) -> Result<Response, AppError> {
    if !state.limits.login(addr.ip()) {
        return Err(AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many login attempts; wait a minute and try again",
        ));
    }
    let username = creds.username.trim();
    let place = format!("{:?}", crate::limits::AddrKey::from(addr.ip()));
    if let Err(wait) = state.lockout.attempt(&place, username, Instant::now()) {
        return Ok(account_held_back(wait));
    }
    // Password hashing is slow on purpose: it runs off the async workers, a few at a
    // time, so a flood of logins cannot starve every session of the server.
    if !state.limits.login_site() {
        return Err(AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many logins on this server right now; wait a moment and try again",
        ));
    }
    // A burst of logins (a team starting its day, a test logging in its people at once)
    // waits its turn briefly; only when none of the running checks ends in that time is
    // the server busy.
    let permit = tokio::time::timeout(
        crate::limits::defaults::HASHING_WAIT,
        state.limits.hashing.clone().acquire_owned(),
    )
    .await;
    let Ok(Ok(_hashing)) = permit else {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is busy; try logging in again in a moment",
        ));
    };
    // One answer, at one cost, for an unknown name, a wrong password and a disabled
    // account: anything else tells a guesser which names exist or which password is right.
    let wrong = || AppError::new(StatusCode::UNAUTHORIZED, "wrong username or password");
    let found = state.store.account_for_login(username).await?;
    let password = creds.password;
    let (account, right) = tokio::task::spawn_blocking(move || match found {
        None => {
            verify_nothing(&password);
            (None, false)
        }
        Some((account, hash)) => {
            let right = verify_password(&hash, &password);
            (Some(account), right)
        }
    })
    .await
    .map_err(|e| AppError::internal(format!("password check failed: {e}")))?;
    let Some(account) = account else {
        return Err(wrong());
    };
    if !right || account.disabled {
        if let Some(unrecorded_before) = state.lockout.refusal_to_record(account.id, Instant::now())
        {
            let reason = if right { "disabled" } else { "wrong_password" };
            state.site_audit(
                None,
                SiteAction::LoginRefused {
                    account: account.username,
                    address: addr.ip().to_string(),
                    reason: reason.to_owned(),
                    unrecorded_before,
                },
            );
        }
        return Err(wrong());
    }
    state.lockout.succeeded(&place, username, Instant::now());
    let token = secret();
    let now = now_millis();
    state
        .store
        .create_login(
            &hash_secret(&token),
            account.id,
            now,
            now + LOGIN_LIFETIME_MS,
        )
        .await?;
    state.site_audit(
        Some(&account),
        SiteAction::LoggedIn {
            account: account.username.clone(),
            address: addr.ip().to_string(),
        },
    );
    let cookie = format!(
        "{LOGIN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}",
        if state.config.cookies_secure() {
            "; Secure"
        } else {
            ""
        }
    );
    Ok(([(header::SET_COOKIE, cookie)], Json(account)).into_response())
}

/// Log out: the login is deleted on the server and the cookie expired.
#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "login",
    responses(
        (status = 204, description = "Logged out (also without a login)",
            headers(("set-cookie" = String, description = "tandem_login=; Max-Age=0"))),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let jar = CookieJar::from_headers(&headers);
    if let Some(cookie) = jar.get(LOGIN_COOKIE) {
        state
            .store
            .delete_login(&hash_secret(cookie.value()))
            .await?;
    }
    let secure = if state.config.cookies_secure() {
        "; Secure"
    } else {
        ""
    };
    let expired = format!("{LOGIN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}");
    Ok(([(header::SET_COOKIE, expired)], StatusCode::NO_CONTENT).into_response())
}

/// The logged-in account.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "login",
    security(("tandem_login" = [])),
    responses(
        (status = 200, description = "The account of the login cookie", body = Account),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
    )
)]
pub async fn me(Rep(account): Rep) -> impl IntoResponse {
    Json(account)
}

/// The per-account slow-down's refusal (`lockout.rs`), the same for every username.
fn account_held_back(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let message = format!(
        "too many failed logins for this account; try again in {seconds} second{}",
        if seconds == 1 { "" } else { "s" }
    );
    let mut response = AppError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}
