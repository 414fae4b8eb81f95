//! Every server of a site takes connections: one that stands by forwards each request,
//! WebSocket upgrades included, to the server that serves the site, so a load balancer
//! (or DNS naming every server) may send anyone anywhere.
//!
//! A standby opens a plain HTTP/1.1 connection to the serving server's site address (the
//! `host:port` it named itself with on its lease connection) per request, passes the
//! request on as it came, and the answer back. An upgraded connection (a WebSocket) is
//! then two byte pipes, one each way, until either side closes: when the serving server
//! dies, its forwarded connections close, and their clients reconnect and resume as after
//! a restart. A standby that takes the site over drops what it forwards (see
//! `serve::serve_and_drop`).
//!
//! The serving server must see each client's own address (for the per-address caps and
//! rate limits): the standby names it in [`CLIENT_HEADER`] and proves it is one of the
//! site's servers with the site's key ([`KEY_HEADER`], made once and kept in PostgreSQL).
//! The serving server believes the header only with the key ([`trust_forwarded`]), and
//! strips both from every request either way. A forwarded request is never forwarded
//! again: two servers that both believe the other serves answer `503` instead of looping.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::site::Waiting;

/// The site's key, on a request one of its servers forwards.
pub const KEY_HEADER: HeaderName = HeaderName::from_static("x-tandem-site-key");
/// The address of the client a forwarded request came from.
pub const CLIENT_HEADER: HeaderName = HeaderName::from_static("x-tandem-client-address");
/// How long a standby waits for the serving server to take a forwarded connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Headers that belong to one hop; an upgrade keeps `Connection` and `Upgrade`.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::PROXY_AUTHORIZATION,
];

/// What a standby forwards with: whom it waits for (and their address and the key), and
/// a token cancelled when it stops forwarding, which ends every forwarded WebSocket.
#[derive(Debug, Clone)]
pub struct Forwarding {
    pub waiting: Waiting,
    pub stop: CancellationToken,
}

/// Does `request` carry the site's `key`? Compared as hashes, so the time taken says
/// nothing of how much of a guess was right.
fn has_key(request: &Request, key: &str) -> bool {
    request
        .headers()
        .get(&KEY_HEADER)
        .is_some_and(|given| Sha256::digest(given.as_bytes()) == Sha256::digest(key.as_bytes()))
}

/// The serving server's side: a request forwarded by one of the site's servers (it
/// carries the key) is taken as from the client it names; the headers are stripped from
/// every request, so nobody else can claim an address.
pub async fn trust_forwarded(
    State(state): State<AppState>,
    mut request: Request,
    next: axum::middleware::Next,
) -> Response {
    let vouched = state
        .config
        .site_key
        .as_deref()
        .is_some_and(|key| has_key(&request, key));
    let client = request
        .headers()
        .get(&CLIENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<IpAddr>().ok());
    request.headers_mut().remove(&KEY_HEADER);
    request.headers_mut().remove(&CLIENT_HEADER);
    if vouched {
        if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
            // The forwarding server's own connections count against the site's total, not
            // against one address's cap: it carries many clients.
            state.caps.trust_site_server(peer.ip());
        }
        if let Some(client) = client {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, 0)));
        }
    }
    next.run(request).await
}

/// The standby's side: forward `request`, from `client`, to the server that serves.
pub async fn forward(forwarding: &Forwarding, client: SocketAddr, request: Request) -> Response {
    let standing = forwarding.waiting.borrow().clone();
    let (Some(serving), Some(key)) = (standing.serving, standing.key) else {
        return unavailable(format!(
            "This Tandem server is on standby ({}). Try again in a few seconds.\n",
            standing.why
        ));
    };
    if request.headers().contains_key(&KEY_HEADER) {
        // Forwarded to us by a server that thinks we serve: we do not (any more).
        return unavailable(
            "This Tandem server was forwarded a request but does not serve the site. Try \
             again in a few seconds.\n"
                .to_owned(),
        );
    }
    match pass_on(&serving, &key, client.ip(), request, &forwarding.stop).await {
        Ok(response) => response,
        Err(Failed::Unreached(e)) => {
            tracing::warn!("could not forward a request to {serving}: {e}");
            unavailable(format!(
                "This Tandem server could not reach the server that serves the site \
                 ({serving}). Try again in a few seconds.\n"
            ))
        }
        // The request may have been acted on: not 503, which a proxy may try elsewhere.
        Err(Failed::Unanswered(e)) => {
            tracing::warn!("a request forwarded to {serving} got no answer: {e}");
            (
                StatusCode::BAD_GATEWAY,
                format!(
                    "The server that serves the site ({serving}) did not answer this \
                     request; it may or may not have been carried out.\n"
                ),
            )
                .into_response()
        }
    }
}

/// Why a request was not passed on: before anything was sent (it may be tried anywhere
/// else), or after (it may have been carried out).
enum Failed {
    Unreached(anyhow::Error),
    Unanswered(anyhow::Error),
}

fn unreached(e: impl Into<anyhow::Error>) -> Failed {
    Failed::Unreached(e.into())
}

async fn pass_on(
    serving: &str,
    key: &str,
    client: IpAddr,
    mut request: Request,
    stop: &CancellationToken,
) -> Result<Response, Failed> {
    let upgrading = request.headers().contains_key(header::UPGRADE);
    let client_upgrade = upgrading.then(|| hyper::upgrade::on(&mut request));
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(serving))
        .await
        .map_err(|_| {
            unreached(anyhow::anyhow!(
                "no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(unreached)?;
    stream.set_nodelay(true).map_err(unreached)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream))
            .await
            .map_err(unreached)?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!("a forwarded connection ended: {e}");
        }
    });

    let (mut parts, body) = request.into_parts();
    parts.version = Version::HTTP_11;
    parts.uri = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse::<Uri>()
        .map_err(unreached)?;
    let upgrade_headers = (
        parts.headers.get(header::CONNECTION).cloned(),
        parts.headers.get(header::UPGRADE).cloned(),
    );
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    if upgrading && let (Some(connection), Some(upgrade)) = upgrade_headers {
        parts.headers.insert(header::CONNECTION, connection);
        parts.headers.insert(header::UPGRADE, upgrade);
    }
    parts
        .headers
        .insert(KEY_HEADER, HeaderValue::from_str(key).map_err(unreached)?);
    parts.headers.insert(
        CLIENT_HEADER,
        HeaderValue::from_str(&client.to_string()).map_err(unreached)?,
    );
    let mut response = sender
        .send_request(Request::from_parts(parts, body))
        .await
        .map_err(|e| Failed::Unanswered(e.into()))?;

    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let server_upgrade = hyper::upgrade::on(&mut response);
        let stop = stop.clone();
        tokio::spawn(async move {
            let (client, server) = match tokio::join!(client_upgrade, server_upgrade) {
                (Ok(client), Ok(server)) => (client, server),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!("a forwarded upgrade failed: {e}");
                    return;
                }
            };
            let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
            tokio::select! {
                piped = tokio::io::copy_bidirectional(&mut client, &mut server) => {
                    if let Err(e) = piped {
                        tracing::debug!("a forwarded WebSocket ended: {e}");
                    }
                }
                () = stop.cancelled() => {}
            }
        });
        let (parts, _) = response.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (mut parts, body) = response.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

fn unavailable(text: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::RETRY_AFTER, HeaderValue::from_static("5")),
            (header::CONNECTION, HeaderValue::from_static("close")),
        ],
        text,
    )
        .into_response()
}
