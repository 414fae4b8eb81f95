//! The JSON API under `/api`: logins, starting sessions, administration.

mod admin;
mod login;
mod sessions;

use axum::Router;
use axum::routing::{get, post, put};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
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
        .route("/admin/queues/{id}/members", put(admin::set_members))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/audit/verify", get(admin::audit_verify))
}
