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
        .layer(axum::middleware::map_response(json_errors))
}

/// Rejections of axum's extractors (a body that is not the JSON a route takes, a bad
/// path parameter) come as plain text quoting what was sent: answer them like every other
/// error, `{"error": "..."}`, with at most a short excerpt.
async fn json_errors(response: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !response.status().is_client_error() || !plain {
        return response;
    }
    let status = response.status();
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let message = if text.trim().is_empty() {
        "the request could not be read".to_owned()
    } else {
        tandem_protocol::excerpt(text.trim(), 160)
    };
    crate::error::AppError::new(status, message).into_response()
}
