//! The JSON API under `/api`: logins, starting sessions, administration.

mod admin;
mod login;
pub mod openapi;
mod recordings;
mod sessions;

use axum::Router;
use axum::routing::{get, post, put};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::spec))
        .route("/login", post(login::login))
        .route("/logout", post(login::logout))
        .route("/me", get(login::me))
        .route("/sessions", post(sessions::start).get(sessions::mine))
        .route("/sessions/{number}", get(sessions::one))
        .route("/sessions/{number}/invitations", get(sessions::invitations))
        .route(
            "/admin/mail",
            get(admin::mail)
                .put(admin::save_mail)
                .delete(admin::delete_mail),
        )
        .route("/admin/reps", get(admin::reps).post(admin::create_rep))
        .route("/admin/reps/{id}", axum::routing::patch(admin::update_rep))
        .route(
            "/admin/settings",
            get(admin::settings).put(admin::save_settings),
        )
        .route(
            "/admin/queues",
            get(admin::queues).post(admin::create_queue),
        )
        .route(
            "/admin/queues/{id}",
            axum::routing::delete(admin::delete_queue).patch(admin::update_queue),
        )
        .route("/webacd", get(sessions::webacd_directory))
        .route("/recordings", get(recordings::list))
        .route(
            "/recordings/{id}",
            axum::routing::delete(recordings::delete),
        )
        .route("/recordings/{id}/video", get(recordings::video))
        .route("/recordings/{id}/events", get(recordings::events))
        .route("/admin/queues/{id}/members", put(admin::set_members))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/audit/verify", get(admin::audit_verify))
        .route("/admin/sessions/end-all", post(admin::end_all_sessions))
        .fallback(no_such_route)
        .layer(axum::middleware::map_response(json_errors))
}

/// A path under `/api` that names no route: answered like every other error.
async fn no_such_route() -> crate::error::AppError {
    crate::error::AppError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no such API route (docs/http-api.md lists them)",
    )
}

/// Rejections of axum's extractors (a body that is not the JSON a route takes, a bad
/// path parameter) come as plain text quoting what was sent, and a wrong method as an
/// empty 405: answer them like every other error, `{"error": "..."}`, with at most a
/// short excerpt (an empty one says what its status means; `Allow` is kept).
async fn json_errors(response: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !response.status().is_client_error() || !plain {
        return response;
    }
    let status = response.status();
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let message = match (text.trim(), status) {
        ("", axum::http::StatusCode::METHOD_NOT_ALLOWED) => {
            "this API route does not take that method".to_owned()
        }
        ("", _) => status
            .canonical_reason()
            .unwrap_or("the request could not be read")
            .to_lowercase(),
        (text, _) => tandem_protocol::excerpt(text, 160),
    };
    let mut answer = crate::error::AppError::new(status, message).into_response();
    if let Some(allow) = allow {
        answer
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow);
    }
    answer
}
