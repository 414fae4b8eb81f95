//! The plain-HTTP listener beside HTTPS (`--http-redirect-port`): every request, whatever
//! its method or path, is answered with a permanent redirect to the same host and path
//! on HTTPS, and nothing else is served there but ACME's HTTP-01 challenges. A standby
//! of a site serves it too (the challenges then come from the database).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use crate::AppState;

/// Where the redirect points.
#[derive(Debug, Clone)]
struct Target {
    /// The HTTPS listener's port (left out of the URL when it is 443).
    https_port: u16,
    /// The configured public origin, `https://host[:port]`, when there is one: then the
    /// request's Host header is not needed.
    public_origin: Option<String>,
}

/// Serve the redirect on `listener` until `shutdown` completes, within the same
/// connection caps and timeouts as the server itself.
pub async fn run(
    listener: TcpListener,
    state: &AppState,
    https_port: u16,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(https_port, state.config.public_url.as_deref());
    crate::serve::serve(listener, app, state.caps.clone(), shutdown).await
}

/// The redirecting router: `https_port` is where HTTPS listens; `public_url` is the
/// configured public URL, used when it is an https one.
pub fn app(https_port: u16, public_url: Option<&str>) -> Router {
    let public_origin = public_url.and_then(|url| {
        let rest = url.strip_prefix("https://")?;
        let authority = rest.split('/').next().unwrap_or(rest);
        Some(format!("https://{authority}"))
    });
    Router::new()
        .route(
            "/.well-known/acme-challenge/{token}",
            axum::routing::get(crate::acme::challenge),
        )
        .fallback(to_https)
        .with_state(Arc::new(Target {
            https_port,
            public_origin,
        }))
}

async fn to_https(State(target): State<Arc<Target>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let origin = match &target.public_origin {
        Some(origin) => origin.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(host_name)
                .or_else(|| uri.host().and_then(host_name));
            let Some(host) = host else {
                return (
                    StatusCode::BAD_REQUEST,
                    "This server answers over HTTPS only; the request named no host to send you to.",
                )
                    .into_response();
            };
            match target.https_port {
                443 => format!("https://{host}"),
                port => format!("https://{host}:{port}"),
            }
        }
    };
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, format!("{origin}{path}"))],
    )
        .into_response()
}

/// The host part of a Host header (no port), if it looks like a host name or an IP
/// address: anything else never reaches a Location header.
fn host_name(host: &str) -> Option<&str> {
    let name = if host.starts_with('[') {
        &host[..=host.find(']')?]
    } else {
        host.split(':').next().unwrap_or(host)
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':');
    (!name.is_empty() && name.len() <= 255 && name.chars().all(allowed)).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port_and_odd_ones_are_refused() {
        assert_eq!(host_name("example.com:80"), Some("example.com"));
        assert_eq!(host_name("example.com"), Some("example.com"));
        assert_eq!(host_name("[::1]:8080"), Some("[::1]"));
        assert_eq!(host_name("127.0.0.1:80"), Some("127.0.0.1"));
        assert_eq!(host_name("evil.com/x"), None);
        assert_eq!(host_name("a b"), None);
        assert_eq!(host_name(""), None);
        assert_eq!(host_name("[::1"), None);
    }
}
