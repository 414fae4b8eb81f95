//! The web console's pages and static files, embedded in the binary (no build step).
//! Rep and admin pages are only served to a logged-in rep or admin.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use rust_embed::RustEmbed;
use tandem_protocol::launch::{self, Launch};
use tokio::io::AsyncReadExt;
use tower_http::services::ServeFile;

use crate::AppState;
use crate::auth::account_from_headers;
use crate::error::AppError;

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

/// The console's translations, at `/assets/locales/<lang>/<file>.ftl` (Fluent; read by
/// `web/js/i18n.js`, see docs/i18n.md). Only `.ftl` files are served from here.
#[derive(RustEmbed)]
#[folder = "web/locales/"]
struct Locales;

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

/// A catalogue, `<lang>/<file>.ftl`: nothing else lives under `/assets/locales/`.
fn catalogue(path: &str) -> Response {
    let well_formed = path.split_once('/').is_some_and(|(lang, file)| {
        plain_name(lang) && file.strip_suffix(".ftl").is_some_and(plain_name)
    });
    if !well_formed {
        return not_found();
    }
    match Locales::get(path) {
        Some(file) => served("text/plain; charset=utf-8", file.data.into_owned()),
        None => not_found(),
    }
}

/// Letters, digits, `-` and `_` only: no separators, no dots, nothing to climb out with.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// Whether the browser prefers Norwegian Bokmål to English (`Accept-Language`, in its
/// order; `nb`, `no` and `nn` read as Bokmål, the console's only Norwegian): for the few
/// answers the server words itself, before any script can pick the language.
fn prefers_norwegian(headers: &HeaderMap) -> bool {
    let Some(accepted) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut ranked: Vec<(f32, usize, &str)> = accepted
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.trim();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse().ok())?;
            Some((q, i, tag))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked
        .iter()
        .filter(|(q, ..)| *q > 0.0)
        .map(|(.., tag)| tag.split('-').next().unwrap_or("").to_ascii_lowercase())
        .find(|lang| ["en", "nb", "no", "nn"].contains(&lang.as_str()))
        .is_some_and(|lang| lang != "en")
}

/// For a page that needs a login: an HTML 401 that sends the browser to the login page,
/// in the browser's language.
fn login_first(headers: &HeaderMap) -> Response {
    let html = if prefers_norwegian(headers) {
        "<!doctype html><html lang=nb><meta charset=utf-8><title>Logg inn</title>\
         <link rel=stylesheet href=/assets/style.css>\
         <main class=card><h1>Logg inn først</h1>\
         <p>Denne siden er for kundestøtte. <a href=/login>Logg inn</a>.</p></main>\
         <script type=module src=/assets/js/login-redirect.js></script>"
    } else {
        "<!doctype html><html lang=en><meta charset=utf-8><title>Log in</title>\
         <link rel=stylesheet href=/assets/style.css>\
         <main class=card><h1>Please log in</h1>\
         <p>This page is for support reps. <a href=/login>Log in</a>.</p></main>\
         <script type=module src=/assets/js/login-redirect.js></script>"
    };
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::VARY, "Accept-Language"),
        ],
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

/// `/assets/style.css`, `/assets/js/…` and `/assets/locales/<lang>/<file>.ftl`; nothing else.
#[utoipa::path(
    get,
    path = "/assets/{path}",
    tag = "pages",
    params(("path" = String, Path, description = "`style.css`, `js/<file>` or `locales/<lang>/<file>.ftl`; the route takes the rest of the path (axum `{*path}`)")),
    responses(
        (status = 200, description = "The stylesheet, a script module or a translation catalogue (Fluent)"),
        (status = 404, description = "Anything else", content_type = "text/plain"),
    )
)]
pub async fn asset(Path(path): Path<String>) -> Response {
    match path.split_once('/') {
        None if path == "style.css" => served("text/css; charset=utf-8", STYLE),
        Some(("js", script_path)) => script(script_path),
        Some(("locales", catalogue_path)) => catalogue(catalogue_path),
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
            [(header::VARY, "Accept-Language")],
            if prefers_norwegian(headers) {
                "bare administratorer kan åpne denne siden"
            } else {
                "only administrators can open this page"
            },
        )
            .into_response(),
        Ok(None) => login_first(headers),
        Err(e) => e.into_response(),
    }
}

/// A download's query: with the customer's agent token, the agent is built for them.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// The agent token the customer's join page holds (`agt_…`, protocol.md
    /// `agent_token`). The download is then the agent with a launch trailer (the server's
    /// address, this token and the session number) appended, so opening the file attaches
    /// it to the customer without a command. Without it: the plain agent.
    token: Option<String>,
}

/// The agent for customers (Linux x86-64), from the configured path only. Without a
/// token: the plain binary, streamed from disk (ServeFile), so a slow or stalled download
/// holds a small buffer, not the binary; ServeFile also answers Range, HEAD and
/// If-Modified-Since requests. With `?token=`: the same binary followed by the launch
/// trailer, streamed, as `tandem-support-<session number>` (no Range).
#[utoipa::path(
    get,
    path = "/download/tandem-agent",
    tag = "pages",
    params(DownloadQuery),
    responses(
        (status = 200, description = "The agent binary (Linux x86-64), as an attachment named tandem-agent; with a token, followed by its launch trailer (docs/agent.md, \"Double-click launch\"), as an attachment named tandem-support-<session number>, Cache-Control: no-store", content_type = "application/octet-stream"),
        (status = 206, description = "A byte range of the plain binary (Range requests without a token)", content_type = "application/octet-stream"),
        (status = 400, description = "With a token, when the server's address comes from the request (no `public_url`): a Host header the agent could not use as the server's address (over 1024 characters, spaces or control characters)", content_type = "text/plain"),
        (status = 404, description = "The server has no agent binary configured, or it is unreadable", content_type = "text/plain"),
        (status = 410, description = "The token is not a live agent token (unknown, used or expired; the answer is the same): a page in the browser's language (Accept-Language) asking the customer to open the join page again, with a link to /join", content_type = "text/html"),
    )
)]
pub async fn agent_download(
    State(state): State<AppState>,
    Query(query): Query<DownloadQuery>,
    request: Request,
) -> Response {
    let agent = Download {
        path: state.config.agent_binary.as_deref(),
        disposition: "attachment; filename=\"tandem-agent\"",
        extension: "",
        mime: mime_guess::mime::APPLICATION_OCTET_STREAM,
        not_set_up: "The agent download is not set up on this server. Ask your support rep \
                     how to get tandem-agent.",
    };
    agent.serve(&state, query.token, request).await
}

/// The agent for customers on Windows (x86-64), served as the Linux one is (with
/// `?token=`: as `tandem-support-<session number>.exe`, launch trailer appended). The page
/// asks for the plain one with HEAD first, to say so when it is not set up instead of
/// offering a dead link.
#[utoipa::path(
    get,
    path = "/download/tandem-agent.exe",
    tag = "pages",
    params(DownloadQuery),
    responses(
        (status = 200, description = "The agent (Windows x86-64), as an attachment named tandem-agent.exe; with a token, followed by its launch trailer, as an attachment named tandem-support-<session number>.exe, Cache-Control: no-store", content_type = "application/vnd.microsoft.portable-executable"),
        (status = 206, description = "A byte range of the plain binary (Range requests without a token)", content_type = "application/vnd.microsoft.portable-executable"),
        (status = 400, description = "With a token, when the server's address comes from the request (no `public_url`): a Host header the agent could not use as the server's address (over 1024 characters, spaces or control characters)", content_type = "text/plain"),
        (status = 404, description = "The server has no Windows agent configured, or it is unreadable", content_type = "text/plain"),
        (status = 410, description = "The token is not a live agent token (unknown, used or expired; the answer is the same): a page in the browser's language (Accept-Language) asking the customer to open the join page again, with a link to /join", content_type = "text/html"),
    )
)]
pub async fn agent_download_windows(
    State(state): State<AppState>,
    Query(query): Query<DownloadQuery>,
    request: Request,
) -> Response {
    let agent = Download {
        path: state.config.agent_binary_windows.as_deref(),
        disposition: "attachment; filename=\"tandem-agent.exe\"",
        extension: ".exe",
        mime: PORTABLE_EXECUTABLE
            .parse()
            .unwrap_or(mime_guess::mime::APPLICATION_OCTET_STREAM),
        not_set_up: "The Windows agent download is not set up on this server. Ask your \
                     support rep how to get tandem-agent.exe.",
    };
    agent.serve(&state, query.token, request).await
}

/// IANA's media type for Windows executables.
const PORTABLE_EXECUTABLE: &str = "application/vnd.microsoft.portable-executable";

/// One agent binary offered for download: a configured path, or a message saying there
/// is none.
struct Download<'a> {
    path: Option<&'a std::path::Path>,
    /// The Content-Disposition: an attachment with the name the customer's commands use.
    disposition: &'static str,
    /// How the personal download's name ends (`.exe`, or nothing).
    extension: &'static str,
    mime: mime_guess::Mime,
    not_set_up: &'static str,
}

/// The answer to a download whose token is not live, the same whether it never existed,
/// was used, or expired: a page in the browser's language with the way back to the join
/// page (a customer clicked an old link, or one from another device).
fn token_gone(headers: &HeaderMap) -> Response {
    let html = if prefers_norwegian(headers) {
        "<!doctype html><html lang=nb><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width\">\
         <title>Lenken er utløpt</title><link rel=stylesheet href=/assets/style.css>\
         <main class=card><h1>Lenken er utløpt</h1>\
         <p>Denne nedlastingslenken er ikke gyldig lenger. Åpne siden for støtteøkten \
         igjen (eller gå tilbake til den) og last ned agenten derfra.</p>\
         <p><a href=/join>Åpne siden for å bli med</a></p></main>"
    } else {
        "<!doctype html><html lang=en><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width\">\
         <title>Link expired</title><link rel=stylesheet href=/assets/style.css>\
         <main class=card><h1>This link has expired</h1>\
         <p>This download link is no longer valid. Open your support session's join page \
         again (or go back to it) and download the agent from there.</p>\
         <p><a href=/join>Open the join page</a></p></main>"
    };
    (
        StatusCode::GONE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::VARY, "Accept-Language"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// How much of the binary a personal download reads at a time.
const CHUNK_BYTES: usize = 64 * 1024;

impl Download<'_> {
    async fn serve(self, state: &AppState, token: Option<String>, request: Request) -> Response {
        let unavailable = || (StatusCode::NOT_FOUND, self.not_set_up).into_response();
        let Some(path) = self.path else {
            return unavailable();
        };
        if let Some(token) = token {
            return self.personal(state, path, token, request.headers()).await;
        }
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

    /// The binary with the customer's launch trailer after it, streamed: the file in
    /// chunks, then the trailer. Content-Length is both together.
    async fn personal(
        &self,
        state: &AppState,
        path: &std::path::Path,
        token: String,
        headers: &HeaderMap,
    ) -> Response {
        let Some(seat) = state.registry.agent_token_seat(&token) else {
            return token_gone(headers);
        };
        let launch = Launch {
            server: state.base_url(headers),
            token,
            session: Some(seat.number),
        };
        if let Err(e) = launch::check(&launch) {
            if state.config.public_url.is_some() {
                // The configured address itself: the server's own fault.
                return AppError::internal(format!("the launch trailer would not be read: {e}"))
                    .into_response();
            }
            // The address came from the request's Host, which the agent could not use.
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "This request's Host header cannot be the server's address in the download \
                     ({e}). Open the join page at the address the server is reached at."
                ),
            )
                .into_response();
        }
        let opened = async {
            let file = tokio::fs::File::open(path).await?;
            let meta = file.metadata().await?;
            if !meta.is_file() {
                return Err(std::io::Error::other("not a file"));
            }
            Ok((file, meta.len()))
        };
        let (file, len) = match opened.await {
            Ok(opened) => opened,
            Err(e) => {
                tracing::error!("cannot read the agent binary {}: {e}", path.display());
                return (StatusCode::NOT_FOUND, self.not_set_up).into_response();
            }
        };
        let trailer = launch::encode(&launch);
        let total = len + trailer.len() as u64;
        // At most `len` bytes of the file, whatever happens to it meanwhile, so the
        // trailer is where the Content-Length says the end is.
        let binary = futures_util::stream::try_unfold(file.take(len), |mut file| async move {
            let mut chunk = vec![0u8; CHUNK_BYTES];
            let read = file.read(&mut chunk).await?;
            if read == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            chunk.truncate(read);
            Ok(Some((Bytes::from(chunk), file)))
        });
        let body = binary.chain(futures_util::stream::once(async move {
            Ok(Bytes::from(trailer))
        }));
        let name = format!(
            "attachment; filename=\"tandem-support-{}{}\"",
            seat.number.digits(),
            self.extension
        );
        let mut response = Response::new(Body::from_stream(body));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(self.mime.as_ref())
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
        if let Ok(name) = HeaderValue::from_str(&name) {
            headers.insert(header::CONTENT_DISPOSITION, name);
        }
        // It carries a credential: no cache keeps a copy.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
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

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_LANGUAGE,
            value.parse().expect("a header value"),
        );
        headers
    }

    #[test]
    fn the_login_page_speaks_the_browsers_first_known_language() {
        assert!(prefers_norwegian(&accepting("nb-NO,nb;q=0.9,en;q=0.8")));
        assert!(prefers_norwegian(&accepting("de-DE, no;q=0.7, en;q=0.5")));
        assert!(prefers_norwegian(&accepting("en;q=0.3, nn;q=0.8")));
        assert!(!prefers_norwegian(&accepting("en-GB,en;q=0.9,nb;q=0.8")));
        assert!(!prefers_norwegian(&accepting("nb;q=0, en;q=0.1")));
        assert!(!prefers_norwegian(&accepting("de, fr")));
        assert!(!prefers_norwegian(&accepting("nb;q=nonsense")));
        assert!(!prefers_norwegian(&HeaderMap::new()));
        let page = login_first(&accepting("nb"));
        assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            page.headers().get(header::VARY).map(|v| v.as_bytes()),
            Some(&b"Accept-Language"[..])
        );
    }

    #[tokio::test]
    async fn a_dead_download_link_answers_in_the_browsers_language_with_the_way_back()
    -> anyhow::Result<()> {
        for (accepted, words) in [
            (
                "nb-NO,nb;q=0.9",
                "Denne nedlastingslenken er ikke gyldig lenger",
            ),
            ("en-GB", "This download link is no longer valid"),
        ] {
            let page = token_gone(&accepting(accepted));
            assert_eq!(page.status(), StatusCode::GONE);
            assert_eq!(
                page.headers().get(header::VARY).map(|v| v.as_bytes()),
                Some(&b"Accept-Language"[..])
            );
            let body = axum::body::to_bytes(page.into_body(), 64 * 1024).await?;
            let body = String::from_utf8(body.to_vec())?;
            assert!(body.contains(words), "{accepted}: {body}");
            assert!(body.contains("<a href=/join>"), "{accepted}: {body}");
        }
        Ok(())
    }

    #[test]
    fn every_language_has_its_console_catalogue_served_as_text() {
        for lang in ["en", "nb"] {
            let r = catalogue(&format!("{lang}/console.ftl"));
            assert_eq!(r.status(), StatusCode::OK, "{lang}");
            let mime = r.headers()[header::CONTENT_TYPE].to_str().expect("ascii");
            assert!(mime.starts_with("text/plain"), "{lang}: {mime}");
        }
    }

    #[test]
    fn only_catalogues_are_served_under_locales() {
        for path in [
            "",
            "en",
            "en/",
            "en/console",
            "en/console.txt",
            "en/../en/console.ftl",
            "../js/i18n.js",
            "/en/console.ftl",
            "en/sub/console.ftl",
            "en\\console.ftl",
            "xx/console.ftl",
            "en/.ftl",
        ] {
            assert_eq!(catalogue(path).status(), StatusCode::NOT_FOUND, "{path:?}");
        }
    }
}
