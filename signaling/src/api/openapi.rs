//! The OpenAPI description of every HTTP route, generated from the handlers'
//! `#[utoipa::path]` attributes and served at `GET /api/openapi.json`. docs/http-api.md
//! explains it in prose; `tests/openapi.rs` checks that every route the router registers
//! is described here.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, login, recordings, sessions};
use crate::auth::LOGIN_COOKIE;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tandem HTTP API",
        description = "Accounts, starting support sessions and administration over HTTP. \
            The live session itself runs on the WebSocket at `/ws` (docs/protocol.md). \
            Request bodies are JSON (`Content-Type: application/json`); error answers are \
            `{\"error\": \"...\"}`, the refusals of a body that cannot be read (400, 413, \
            415, 422), a wrong method (405) and an unknown path under `/api` (404) too. \
            A POST, PUT, PATCH or DELETE whose `Origin` header \
            names another site is refused with 403."
    ),
    paths(
        login::login,
        login::logout,
        login::me,
        sessions::start,
        sessions::mine,
        sessions::one,
        sessions::invitations,
        sessions::webacd_directory,
        admin::reps,
        admin::create_rep,
        admin::update_rep,
        admin::settings,
        admin::save_settings,
        admin::queues,
        admin::create_queue,
        admin::delete_queue,
        admin::update_queue,
        admin::set_members,
        admin::mail,
        admin::save_mail,
        admin::delete_mail,
        admin::audit,
        admin::audit_verify,
        admin::end_all_sessions,
        recordings::list,
        recordings::video,
        recordings::events,
        recordings::delete,
        spec,
        crate::pages::index,
        crate::pages::login,
        crate::pages::join,
        crate::pages::join_link,
        crate::pages::dashboard,
        crate::pages::session,
        crate::pages::admin,
        crate::pages::asset,
        crate::pages::agent_download,
        crate::pages::agent_download_windows,
        crate::ws::upgrade,
        crate::health::healthz,
        crate::health::readyz,
        crate::telemetry::scrape,
        crate::acme::challenge,
    ),
    modifiers(&LoginCookie),
    tags(
        (name = "login", description = "Logging in and out (reps and admins)"),
        (name = "sessions", description = "Starting and finding live sessions (R1, R3, R10)"),
        (name = "admin", description = "Reps, site settings, queues, mail, audit (admins only)"),
        (name = "recordings", description = "Session recordings: listed, played, deleted"),
        (name = "pages", description = "HTML pages and downloads a client links to"),
        (name = "websocket", description = "The session protocol (docs/protocol.md)"),
        (name = "operations", description = "Health, readiness and metrics for operators"),
        (name = "meta", description = "This description"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The login cookie as a security scheme: routes marked with it need a logged-in rep.
struct LoginCookie;

impl Modify for LoginCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            LOGIN_COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                LOGIN_COOKIE,
                "Set by POST /api/login: HttpOnly, SameSite=Strict, Path=/ (and Secure when \
                 the server serves HTTPS). Valid for 12 hours, until logout, or until the \
                 account is disabled.",
            ))),
        );
    }
}

/// The document as JSON, built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|e| format!(r#"{{"error":"the OpenAPI description failed: {e}"}}"#))
});

/// This description (no login needed).
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 description of the HTTP API", content_type = "application/json"),
    )
)]
pub async fn spec() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}
