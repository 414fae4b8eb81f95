//! The web console's pages and static files, embedded in the binary (no build step).
//! Rep and admin pages are only served to a logged-in rep or admin.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use tower_http::services::ServeFile;

use crate::AppState;
use crate::auth::account_from_headers;

/// The pages, by route. Rep and admin pages go out only through their routes' login checks,
/// so no page is reachable under `/assets/`.
mod html {
    pub const INDEX: &str = include_str!("../web/index.html");
    pub const LOGIN: &str = include_str!("../web/login.html");
    pub const JOIN: &str = include_str!("../web/join.html");
    pub const DASHBOARD: &str = include_str!("../web/dashboard.html");
    pub const SESSION: &str = include_str!("../web/session.html");
    pub const ADMIN: &str = include_str!("../web/admin.html");
}

/// The one stylesheet, at `/assets/style.css`.
const STYLE: &str = include_str!("../web/style.css");

/// The pages' scripts, at `/assets/js/…`. Only `web/js/` is embedded: the console's Node
/// tests (`web/tests/`) and the pages stay out of `/assets/`.
#[derive(RustEmbed)]
#[folder = "web/js/"]
struct Scripts;

/// What a page may load from `/assets/js/`: code, styles, images and fonts, never markup.
const ASSET_TYPES: &[&str] = &[
    "js", "mjs", "css", "png", "svg", "ico", "jpg", "webp", "woff", "woff2",
];

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

fn served(mime: &str, body: impl Into<Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
        ],
        body.into(),
    )
        .into_response()
}

fn script(path: &str) -> Response {
    let allowed = std::path::Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ASSET_TYPES.contains(&e));
    if !allowed || path.contains("..") || path.starts_with('/') || path.contains('\\') {
        return not_found();
    }
    match Scripts::get(path) {
        Some(file) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            served(mime.as_ref(), file.data.into_owned())
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

/// The site's home page: join a session, or log in as a rep.
#[utoipa::path(
    get,
    path = "/",
    tag = "pages",
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
    )
)]
pub async fn index() -> Response {
    page(html::INDEX)
}

/// The reps' login page (it posts to `/api/login`).
#[utoipa::path(
    get,
    path = "/login",
    tag = "pages",
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
    )
)]
pub async fn login() -> Response {
    page(html::LOGIN)
}

/// The customer's page to join by typing the session number (`join_by_number`).
#[utoipa::path(
    get,
    path = "/join",
    tag = "pages",
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
    )
)]
pub async fn join() -> Response {
    page(html::JOIN)
}

/// A join link. The page reads `<secret>` from its own address and sends
/// `{"type":"join_by_link","secret":"<secret>","name":...}`; the server answers every
/// secret with the same page (a wrong one is refused on the WebSocket).
#[utoipa::path(
    get,
    path = "/j/{secret}",
    tag = "pages",
    params(("secret" = String, Path, description = "The session's join secret: `join_by_link`'s `secret`")),
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
    )
)]
pub async fn join_link(Path(_secret): Path<String>) -> Response {
    page(html::JOIN)
}

/// `/assets/style.css` and `/assets/js/…`; nothing else.
#[utoipa::path(
    get,
    path = "/assets/{path}",
    tag = "pages",
    params(("path" = String, Path, description = "`style.css` or `js/<file>`; the route takes the rest of the path (axum `{*path}`)")),
    responses(
        (status = 200, description = "The stylesheet or a script module"),
        (status = 404, description = "Anything else", content_type = "text/plain"),
    )
)]
pub async fn asset(Path(path): Path<String>) -> Response {
    match path.split_once('/') {
        None if path == "style.css" => served("text/css; charset=utf-8", STYLE),
        Some(("js", script_path)) => script(script_path),
        _ => not_found(),
    }
}

async fn rep_page(
    state: &AppState,
    headers: &HeaderMap,
    markup: &'static str,
    admin_only: bool,
) -> Response {
    match account_from_headers(state, headers).await {
        Ok(Some(account)) if !admin_only || account.is_admin => page(markup),
        Ok(Some(_)) => (
            StatusCode::FORBIDDEN,
            "only administrators can open this page",
        )
            .into_response(),
        Ok(None) => login_first(),
        Err(e) => e.into_response(),
    }
}

/// The agent for customers (Linux x86-64), from the configured path only. Streamed from
/// disk (ServeFile), so a slow or stalled download holds a small buffer, not the binary;
/// ServeFile also answers Range, HEAD and If-Modified-Since requests.
#[utoipa::path(
    get,
    path = "/download/tandem-agent",
    tag = "pages",
    responses(
        (status = 200, description = "The agent binary (Linux x86-64), as an attachment named tandem-agent", content_type = "application/octet-stream"),
        (status = 206, description = "A byte range of it (Range requests)", content_type = "application/octet-stream"),
        (status = 404, description = "The server has no agent binary configured, or it is unreadable", content_type = "text/plain"),
    )
)]
pub async fn agent_download(State(state): State<AppState>, request: Request) -> Response {
    let agent = Download {
        path: state.config.agent_binary.as_deref(),
        disposition: "attachment; filename=\"tandem-agent\"",
        mime: mime_guess::mime::APPLICATION_OCTET_STREAM,
        not_set_up: "The agent download is not set up on this server. Ask your support rep \
                     how to get tandem-agent.",
    };
    agent.serve(request).await
}

/// The agent for customers on Windows (x86-64), served as the Linux one is. The page asks
/// for it with HEAD first, to say so when it is not set up instead of offering a dead link.
#[utoipa::path(
    get,
    path = "/download/tandem-agent.exe",
    tag = "pages",
    responses(
        (status = 200, description = "The agent (Windows x86-64), as an attachment named tandem-agent.exe", content_type = "application/vnd.microsoft.portable-executable"),
        (status = 206, description = "A byte range of it (Range requests)", content_type = "application/vnd.microsoft.portable-executable"),
        (status = 404, description = "The server has no Windows agent configured, or it is unreadable", content_type = "text/plain"),
    )
)]
pub async fn agent_download_windows(State(state): State<AppState>, request: Request) -> Response {
    let agent = Download {
        path: state.config.agent_binary_windows.as_deref(),
        disposition: "attachment; filename=\"tandem-agent.exe\"",
        mime: PORTABLE_EXECUTABLE
            .parse()
            .unwrap_or(mime_guess::mime::APPLICATION_OCTET_STREAM),
        not_set_up: "The Windows agent download is not set up on this server. Ask your \
                     support rep how to get tandem-agent.exe.",
    };
    agent.serve(request).await
}

/// IANA's media type for Windows executables.
const PORTABLE_EXECUTABLE: &str = "application/vnd.microsoft.portable-executable";

/// One agent binary offered for download: a configured path, or a message saying there
/// is none.
struct Download<'a> {
    path: Option<&'a std::path::Path>,
    /// The Content-Disposition: an attachment with the name the customer's commands use.
    disposition: &'static str,
    mime: mime_guess::Mime,
    not_set_up: &'static str,
}

impl Download<'_> {
    async fn serve(self, request: Request) -> Response {
        let unavailable = || (StatusCode::NOT_FOUND, self.not_set_up).into_response();
        let Some(path) = self.path else {
            return unavailable();
        };
        match ServeFile::new_with_mime(path, &self.mime)
            .try_call(request)
            .await
        {
            Ok(response) if response.status() == StatusCode::NOT_FOUND => {
                tracing::error!(
                    "the agent binary {} is missing or unreadable",
                    path.display()
                );
                unavailable()
            }
            Ok(response) => {
                let mut response = response.map(Body::new);
                response.headers_mut().insert(
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static(self.disposition),
                );
                response
            }
            Err(e) => {
                tracing::error!("cannot read the agent binary {}: {e}", path.display());
                unavailable()
            }
        }
    }
}

/// The rep's dashboard: start a session, assist one, WebACD offers.
#[utoipa::path(
    get,
    path = "/dashboard",
    tag = "pages",
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 401, description = "Not logged in: an HTML page sending the browser to /login", content_type = "text/html"),
    )
)]
pub async fn dashboard(State(state): State<AppState>, headers: HeaderMap) -> Response {
    rep_page(&state, &headers, html::DASHBOARD, false).await
}

/// The session page (the primary rep must keep it open, R2; it sends `open_session` or `assist`).
#[utoipa::path(
    get,
    path = "/session/{number}",
    tag = "pages",
    params(("number" = String, Path, description = "The session number")),
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 401, description = "Not logged in: an HTML page sending the browser to /login", content_type = "text/html"),
    )
)]
pub async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(_number): Path<String>,
) -> Response {
    rep_page(&state, &headers, html::SESSION, false).await
}

/// The admin page.
#[utoipa::path(
    get,
    path = "/admin",
    tag = "pages",
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 401, description = "Not logged in: an HTML page sending the browser to /login", content_type = "text/html"),
        (status = 403, description = "Logged in, but not an administrator", content_type = "text/plain"),
    )
)]
pub async fn admin(State(state): State<AppState>, headers: HeaderMap) -> Response {
    rep_page(&state, &headers, html::ADMIN, true).await
}
