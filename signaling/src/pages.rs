//! The web console's pages and static files, embedded in the binary (no build step).
//! Rep and admin pages are only served to a logged-in rep or admin.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::AppState;
use crate::auth::account_from_headers;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Web;

fn file(path: &str) -> Response {
    if path.contains("..") || path.starts_with('/') || path.contains('\\') {
        return not_found();
    }
    match Web::get(path) {
        Some(file) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            (
                [
                    (header::CONTENT_TYPE, mime.as_ref().to_owned()),
                    (header::CACHE_CONTROL, "no-cache".to_owned()),
                ],
                Body::from(file.data.into_owned()),
            )
                .into_response()
        }
        None => not_found(),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// For a page that needs a login: an HTML 401 that sends the browser to the login page.
fn login_first() -> Response {
    let html = "<!doctype html><meta charset=utf-8><title>Log in</title>\
                <link rel=stylesheet href=/assets/style.css>\
                <main class=card><h1>Please log in</h1>\
                <p>This page is for support reps. <a href=/login>Log in</a>.</p></main>\
                <script type=module src=/assets/js/login-redirect.js></script>";
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

pub async fn index() -> Response {
    file("index.html")
}

pub async fn login() -> Response {
    file("login.html")
}

pub async fn join() -> Response {
    file("join.html")
}

pub async fn join_link(Path(_secret): Path<String>) -> Response {
    file("join.html")
}

pub async fn asset(Path(path): Path<String>) -> Response {
    file(&path)
}

async fn rep_page(state: &AppState, headers: &HeaderMap, page: &str, admin_only: bool) -> Response {
    match account_from_headers(state, headers).await {
        Ok(Some(account)) if !admin_only || account.is_admin => file(page),
        Ok(Some(_)) => (
            StatusCode::FORBIDDEN,
            "only administrators can open this page",
        )
            .into_response(),
        Ok(None) => login_first(),
        Err(e) => e.into_response(),
    }
}

/// The agent for customers (Linux x86-64), from the configured path only.
pub async fn agent_download(State(state): State<AppState>) -> Response {
    let unavailable = || {
        (
            StatusCode::NOT_FOUND,
            "The agent download is not set up on this server. Ask your support rep how to get \
             tandem-agent.",
        )
            .into_response()
    };
    let Some(path) = &state.config.agent_binary else {
        return unavailable();
    };
    match tokio::fs::read(path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"tandem-agent\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("cannot read the agent binary {}: {e}", path.display());
            unavailable()
        }
    }
}

pub async fn dashboard(State(state): State<AppState>, headers: HeaderMap) -> Response {
    rep_page(&state, &headers, "dashboard.html", false).await
}

pub async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(_number): Path<String>,
) -> Response {
    rep_page(&state, &headers, "session.html", false).await
}

pub async fn admin(State(state): State<AppState>, headers: HeaderMap) -> Response {
    rep_page(&state, &headers, "admin.html", true).await
}
