//! Every server of a site takes connections: one that stands by forwards each request,
//! WebSocket upgrades included, to the server that serves the site, so a load balancer
//! may send anyone to any server.
//!
//! A standby passes each request on over HTTP/1.1 to the serving server's site address
//! (the `host:port` it named itself with on its lease connection), as it came, and the
//! answer back: over TLS when the servers speak HTTPS themselves (the serving one is then
//! expected to show a certificate for the site's name, or this one's own: see
//! `tls::site_client_config`), in plain HTTP otherwise. Ordinary requests go over a small
//! pool of kept-alive connections, an upgrade over a connection of its own that then
//! becomes two byte pipes, one each way.
//! A pipe ends when either side closes, when another server is seen to serve the site
//! (a serving machine that vanished without closing its sockets), when the connection to
//! the serving server goes quiet past its TCP keepalives (about 11 s), or when this
//! standby takes the site over itself (see `serve::serve_and_drop`); the clients then
//! reconnect and resume as after a restart.
//!
//! The serving server must see each client's own address (for the per-address caps and
//! rate limits): the standby names it in [`CLIENT_HEADER`], replacing whatever the client
//! sent, and proves it is one of the site's servers with the site's key ([`KEY_HEADER`],
//! made once and kept in PostgreSQL). The serving server believes the header only with
//! the key ([`trust_forwarded`]), and strips both from every request either way. A
//! forwarded request is never forwarded again: two servers that both believe the other
//! serves answer `503` instead of looping.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::site::{Waiting, unavailable};

/// The site's key, on a request one of its servers forwards.
pub const KEY_HEADER: HeaderName = HeaderName::from_static("x-tandem-site-key");
/// The address of the client a forwarded request came from.
pub const CLIENT_HEADER: HeaderName = HeaderName::from_static("x-tandem-client-address");
/// How long a standby waits for the serving server to take a forwarded connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long it waits for the answer's head (a WebSocket's `101` included).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `/readyz` waits for the serving server's own `/readyz`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The site's key: kept out of logs and debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct SiteKey(Arc<str>);

impl SiteKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SiteKey {
    fn from(key: &str) -> Self {
        SiteKey(key.into())
    }
}

impl std::fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SiteKey(…)")
    }
}

/// Headers that belong to one hop (RFC 9110 §7.6.1), besides those `Connection` names;
/// an upgrade keeps `Connection` and `Upgrade`.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// Take out the hop-by-hop headers, and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
}

/// What a standby forwards with: whom it waits for (and their address and the key), its
/// own site address, connections to the serving server, and a token cancelled when it
/// stops forwarding, which ends every forwarded WebSocket.
#[derive(Clone)]
pub struct Forwarding {
    waiting: Waiting,
    stop: CancellationToken,
    own: String,
    /// `https` or `http`: how the serving server is reached.
    scheme: &'static str,
    connector: Connector,
    pool: Client<Connector, Body>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Stream = hyper_rustls::MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// The connector to the serving server, with one deadline ([`CONNECT_TIMEOUT`]) over the
/// TCP connection and the TLS handshake together: a frozen serving process whose kernel
/// still takes connections, but which never answers the handshake, counts as unreached
/// (so `503`, tried elsewhere) rather than hanging.
#[derive(Clone)]
struct Connector(HttpsConnector<HttpConnector>);

impl tower::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .map_err(|_| -> BoxError {
                    format!(
                        "no connection and handshake within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )
                    .into()
                })?
        })
    }
}

impl std::fmt::Debug for Forwarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding")
            .field("own", &self.own)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

/// How a standby that speaks HTTPS itself reaches the serving server: over TLS with
/// `config`, expecting a certificate for `name` (the site's host name, see
/// `Config::site_name`), or, without one, for the host of the serving server's site
/// address.
#[derive(Debug)]
pub struct SiteTls {
    pub name: Option<rustls::pki_types::ServerName<'static>>,
    pub config: rustls::ClientConfig,
}

impl Forwarding {
    /// `own`: this server's site address (a serving server by that name is a mistake in
    /// the setup, e.g. servers on several machines all bound to 127.0.0.1). `tls`: when
    /// the site's servers speak HTTPS themselves.
    pub fn new(
        waiting: Waiting,
        stop: CancellationToken,
        own: String,
        tls: Option<SiteTls>,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        // A serving machine that vanishes without closing its sockets is noticed as
        // PostgreSQL notices it (5 s idle, 3 probes 2 s apart; 11 s with data in flight).
        http.set_keepalive(Some(Duration::from_secs(5)));
        http.set_keepalive_interval(Some(Duration::from_secs(2)));
        http.set_keepalive_retries(Some(3));
        http.set_tcp_user_timeout(Some(Duration::from_secs(11)));
        let (scheme, connector) = match tls {
            Some(tls) => {
                let builder = HttpsConnectorBuilder::new()
                    .with_tls_config(tls.config)
                    .https_only();
                let builder = match tls.name {
                    Some(name) => {
                        builder.with_server_name_resolver(FixedServerNameResolver::new(name))
                    }
                    None => builder,
                };
                ("https", builder.enable_http1().wrap_connector(http))
            }
            // Plain HTTP: the TLS settings are never used, and would trust nobody.
            None => ("http", HttpsConnector::from((http, trusting_nobody()))),
        };
        let connector = Connector(connector);
        // Shorter than the serving server's 10 s wait for a kept-alive connection's next
        // request, so the pool never sends on a connection that is being closed.
        let pool = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(8))
            .pool_max_idle_per_host(32)
            .build(connector.clone());
        Forwarding {
            waiting,
            stop,
            own,
            scheme,
            connector,
            pool,
        }
    }

    /// Whether this standby can forward now; if not, why (for `/readyz`). It asks the
    /// serving server's own `/readyz`, so a server that is gone, stopped, or that names
    /// this one's address is not taken for ready.
    pub async fn ready(&self) -> Result<String, String> {
        let standing = self.waiting.borrow().clone();
        let Some(serving) = standing.serving else {
            return Err(standing.why);
        };
        if serving == self.own {
            return Err(format!(
                "the server that serves this site named itself {serving}, which is this \
                 server's own address: give each server a site_address the others reach it at"
            ));
        }
        match tokio::time::timeout(PROBE_TIMEOUT, probe(self, &serving)).await {
            Ok(Ok(())) => Ok(serving),
            Ok(Err(e)) if self.scheme == "https" => Err(format!(
                "cannot forward to {serving}, which serves this site, over TLS: {e} (does \
                 it speak HTTPS, with a certificate this server trusts? See \
                 docs/self-hosting.md, \"Several servers\")"
            )),
            Ok(Err(e)) => Err(format!(
                "cannot forward to {serving}, which serves this site: {e}"
            )),
            Err(_) => Err(format!(
                "cannot forward to {serving}, which serves this site: it did not answer \
                 within {} s",
                PROBE_TIMEOUT.as_secs()
            )),
        }
    }
}

/// TLS settings that trust no certificate at all.
fn trusting_nobody() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|config| {
            config
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
        .expect("ring supports TLS 1.2 and 1.3")
}

/// Ask `serving`'s `/readyz`; fine when it says it serves (`200 ready`).
async fn probe(forwarding: &Forwarding, serving: &str) -> Result<(), String> {
    let uri: Uri = format!("{}://{serving}/readyz", forwarding.scheme)
        .parse()
        .map_err(|e: axum::http::uri::InvalidUri| e.to_string())?;
    let request = Request::get(uri)
        .body(Body::empty())
        .map_err(|e| e.to_string())?;
    let answer = forwarding
        .pool
        .request(request)
        .await
        .map_err(|e| describe(&e))?;
    let status = answer.status();
    let body = axum::body::to_bytes(Body::new(answer.into_body()), 4096)
        .await
        .map_err(|e| e.to_string())?;
    if status == StatusCode::OK && body.as_ref() == b"ready\n" {
        Ok(())
    } else {
        Err(format!(
            "it answered {status}: {:?}",
            String::from_utf8_lossy(&body).trim()
        ))
    }
}

/// A client error with its causes (a TLS failure is the cause of a connect error).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Does `request` carry the site's `key`? Compared as hashes, so the time taken says
/// nothing of how much of a guess was right.
fn has_key(request: &Request, key: &SiteKey) -> bool {
    request.headers().get(&KEY_HEADER).is_some_and(|given| {
        Sha256::digest(given.as_bytes()) == Sha256::digest(key.as_str().as_bytes())
    })
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
        .as_ref()
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
    if has_key(&request, &key) || serving == forwarding.own {
        // Forwarded to us by a server that thinks we serve: we do not (any more). (A
        // client's own guess at the header is replaced below.)
        return unavailable(
            "This Tandem server was forwarded a request but does not serve the site. Try \
             again in a few seconds.\n"
                .to_owned(),
        );
    }
    match pass_on(forwarding, &serving, &key, client.ip(), request).await {
        Ok(response) => response,
        Err(Failed::Unreached(e)) => {
            tracing::warn!("could not forward a request to {serving}: {e:#}");
            unavailable(format!(
                "This Tandem server could not reach the server that serves the site \
                 ({serving}). Try again in a few seconds.\n"
            ))
        }
        // The request may have been acted on: not 503, which a proxy may try elsewhere.
        Err(Failed::Unanswered(e)) => {
            tracing::warn!("a request forwarded to {serving} got no answer: {e:#}");
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

fn unanswered(e: impl Into<anyhow::Error>) -> Failed {
    Failed::Unanswered(e.into())
}

async fn pass_on(
    forwarding: &Forwarding,
    serving: &str,
    key: &SiteKey,
    client: IpAddr,
    mut request: Request,
) -> Result<Response, Failed> {
    let upgrading = request.headers().contains_key(header::UPGRADE);
    let client_upgrade = upgrading.then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    let uri: Uri = format!(
        "{}://{serving}{}",
        forwarding.scheme,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    )
    .parse()
    .map_err(unreached)?;
    // HTTP/2 sends each cookie in a field of its own; HTTP/1.1 wants one line.
    if parts.version == Version::HTTP_2 && parts.headers.get_all(header::COOKIE).iter().count() > 1
    {
        let joined = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join("; ");
        parts.headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&joined).map_err(unreached)?,
        );
    }
    parts.version = Version::HTTP_11;
    let upgrade_headers = (
        parts.headers.get(header::CONNECTION).cloned(),
        parts.headers.get(header::UPGRADE).cloned(),
    );
    strip_hop_by_hop(&mut parts.headers);
    if upgrading && let (Some(connection), Some(upgrade)) = upgrade_headers {
        parts.headers.insert(header::CONNECTION, connection);
        parts.headers.insert(header::UPGRADE, upgrade);
    }
    // Whatever the client sent in these is replaced.
    parts.headers.insert(
        KEY_HEADER,
        HeaderValue::from_str(key.as_str()).map_err(unreached)?,
    );
    parts.headers.insert(
        CLIENT_HEADER,
        HeaderValue::from_str(&client.to_string()).map_err(unreached)?,
    );

    let Some(client_upgrade) = client_upgrade else {
        // An ordinary request: over the pool.
        parts.uri = uri;
        let answer = tokio::time::timeout(
            ANSWER_TIMEOUT,
            forwarding.pool.request(Request::from_parts(parts, body)),
        )
        .await
        .map_err(|_| unanswered(anyhow::anyhow!("no answer within {ANSWER_TIMEOUT:?}")))?;
        let response = answer.map_err(|e| {
            if e.is_connect() {
                unreached(e)
            } else {
                unanswered(e)
            }
        })?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        return Ok(Response::from_parts(parts, Body::new(body)));
    };

    // An upgrade: a connection of its own, which becomes the pipe.
    let io = tower::ServiceExt::oneshot(forwarding.connector.clone(), uri.clone())
        .await
        .map_err(|e| unreached(anyhow::anyhow!(describe(e.as_ref()))))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, Body>(io)
        .await
        .map_err(unreached)?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!("a forwarded connection ended: {e}");
        }
    });
    parts.uri = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(unreached)?;
    let mut response = tokio::time::timeout(
        ANSWER_TIMEOUT,
        sender.send_request(Request::from_parts(parts, body)),
    )
    .await
    .map_err(|_| unanswered(anyhow::anyhow!("no answer within {ANSWER_TIMEOUT:?}")))?
    .map_err(unanswered)?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Refused (not signed in, a standby, …): the answer as it is.
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    let server_upgrade = hyper::upgrade::on(&mut response);
    let stop = forwarding.stop.clone();
    let mut waiting = forwarding.waiting.clone();
    let target = serving.to_owned();
    tokio::spawn(async move {
        let (client, server) = match tokio::join!(client_upgrade, server_upgrade) {
            (Ok(client), Ok(server)) => (client, server),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!("a forwarded upgrade failed: {e}");
                return;
            }
        };
        let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
        // Another server serving means this one is gone, whether or not its socket said
        // so.
        let moved = waiting.wait_for(|standing| {
            standing
                .serving
                .as_deref()
                .is_some_and(|serving| serving != target)
        });
        tokio::select! {
            piped = tokio::io::copy_bidirectional(&mut client, &mut server) => {
                if let Err(e) = piped {
                    tracing::debug!("a forwarded WebSocket ended: {e}");
                }
            }
            _ = moved => {}
            () = stop.cancelled() => {}
        }
    });
    let (parts, _) = response.into_parts();
    Ok(Response::from_parts(parts, Body::empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A serving process frozen after its kernel took the connection (the TCP handshake
    /// completes, the TLS one never does): a request to a standby forwarding over TLS is
    /// answered `503` (not reached, so a proxy may try elsewhere), not held until the 30 s
    /// answer deadline and then `502`.
    #[tokio::test]
    async fn a_serving_server_that_never_answers_the_tls_handshake_counts_as_unreached() {
        let frozen = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let serving = frozen.local_addr().expect("addr").to_string();
        // Takes connections and holds them, saying nothing.
        let held = tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Ok((stream, _)) = frozen.accept().await {
                kept.push(stream);
            }
        });
        let dir = tempfile::tempdir().expect("dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let files = crate::tls::TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&files.cert, cert.pem()).expect("cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("key");
        let (_standing, waiting) = tokio::sync::watch::channel(crate::site::Standing {
            why: format!("{serving} serves this site"),
            serving: Some(serving.clone()),
            key: Some(SiteKey::from("site-key")),
        });
        let forwarding = Forwarding::new(
            waiting,
            CancellationToken::new(),
            "127.0.0.1:1".to_owned(),
            Some(SiteTls {
                name: Some(
                    rustls::pki_types::ServerName::try_from("localhost")
                        .expect("name")
                        .to_owned(),
                ),
                config: crate::tls::site_client_config(&files).expect("TLS settings"),
            }),
        );
        let request = Request::get("/api/me")
            .body(Body::empty())
            .expect("request");
        let client: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let answer = tokio::time::timeout(
            Duration::from_secs(20),
            forward(&forwarding, client, request),
        )
        .await
        .expect("an answer well before the 30 s answer deadline");
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        // Nor is the standby ready.
        let ready = forwarding.ready().await.expect_err("not ready");
        assert!(
            ready.contains(&format!("cannot forward to {serving}")),
            "{ready}"
        );
        held.abort();
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_do_not_go_on() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-hop"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::COOKIE, HeaderValue::from_static("tandem_session=x"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["cookie"]);
    }

    #[test]
    fn the_site_key_never_shows_in_debug_output() {
        let key = SiteKey::from("secret-site-key");
        assert_eq!(format!("{key:?}"), "SiteKey(…)");
        assert_eq!(format!("{:?}", Some(key)), "Some(SiteKey(…))");
    }
}
