//! Accepting connections, with the limits an internet-facing server needs: a cap on open
//! connections in all and from one address (an IPv6 address counts by its /64), a time
//! limit for the first byte and for a request's headers, and an idle limit for a
//! connection on which nothing moves.
//! A WebSocket keeps its slot for as long as it is open: the slot travels with the
//! socket through the HTTP upgrade.
//! With HTTPS, each connection's TLS handshake happens in its own task, under its own
//! time limit, inside the same slot and idle limit.
//! With `--redis`, the cap per address holds for the whole site: a connection this
//! server would take is then also counted with the site's other servers (see `shared`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::limits::AddrKey;
use crate::shared::{Admission, SharedCounts};

/// A request's headers must arrive within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A new connection must send its first byte within this time.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection on which nothing moves either way for this long is closed (WebSockets are
/// pinged more often than this, and their answers count).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// A TLS handshake must finish within this time.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// When a standby's listener stops, its open connections have this long to finish the
/// request under way before they are dropped.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection open this short a time is left to send its first request before it is
/// told to close.
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(500);

/// Open connections, in all and by address.
#[derive(Debug)]
pub struct ConnectionCaps {
    max_total: usize,
    max_per_address: usize,
    total: AtomicUsize,
    by_address: Mutex<HashMap<AddrKey, usize>>,
    /// Addresses of the site's other servers, which forward many clients each: the cap
    /// per address does not hold for them (see `forward`).
    site_servers: Mutex<std::collections::HashSet<AddrKey>>,
    /// Told of each address newly found to be one of the site's servers.
    site_server_found: std::sync::OnceLock<SiteServerFound>,
    refused: AtomicUsize,
    /// Of those refused, how many because their address had too many open.
    refused_from_address: AtomicUsize,
    /// The counts shared with the site's other servers, with `--redis`.
    shared: std::sync::OnceLock<Arc<SharedCounts>>,
}

/// The hook of [`ConnectionCaps::when_site_server_found`].
struct SiteServerFound(Box<dyn Fn(IpAddr) + Send + Sync>);

impl std::fmt::Debug for SiteServerFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SiteServerFound")
    }
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Full,
    TooManyFromAddress,
}

impl ConnectionCaps {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total: max_total.max(1),
            max_per_address: max_per_address.max(1),
            total: AtomicUsize::new(0),
            by_address: Mutex::new(HashMap::new()),
            site_servers: Mutex::new(std::collections::HashSet::new()),
            site_server_found: std::sync::OnceLock::new(),
            refused: AtomicUsize::new(0),
            refused_from_address: AtomicUsize::new(0),
            shared: std::sync::OnceLock::new(),
        })
    }

    /// Hold the cap per address across the site, with the counts in `shared`. Set once.
    pub fn share_with(&self, shared: Arc<SharedCounts>) {
        let _ = self.shared.set(shared);
    }

    /// The counts shared with the site's other servers, if any.
    pub fn shared(&self) -> Option<&Arc<SharedCounts>> {
        self.shared.get()
    }

    /// Take a slot for a connection from `ip`, or say why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let key = AddrKey::from(ip);
        let site_server = self
            .site_servers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&key);
        let mut by_address = self
            .by_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let result = if self.total.load(Ordering::Relaxed) >= self.max_total {
            Err(Refused::Full)
        } else if !site_server && by_address.get(&key).copied().unwrap_or(0) >= self.max_per_address
        {
            Err(Refused::TooManyFromAddress)
        } else {
            *by_address.entry(key).or_insert(0) += 1;
            self.total.fetch_add(1, Ordering::Relaxed);
            Ok(Slot {
                caps: self.clone(),
                key,
                site_server,
                shared: false,
            })
        };
        if let Err(why) = &result {
            self.count_refusal(*why);
        }
        result
    }

    fn count_refusal(&self, why: Refused) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if why == Refused::TooManyFromAddress {
            self.refused_from_address.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `ip` is one of the site's servers (it proved so with the site's key): its
    /// connections are not held to the cap per address. The hook set with
    /// [`ConnectionCaps::when_site_server_found`] hears of each new one.
    pub fn trust_site_server(&self, ip: IpAddr) {
        if self.knows_site_server(ip) {
            return;
        }
        if let Some(found) = self.site_server_found.get() {
            (found.0)(ip);
        }
    }

    /// `ip` is one of the site's servers, as known from before (nobody is told).
    pub fn knows_site_server(&self, ip: IpAddr) -> bool {
        !self
            .site_servers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(AddrKey::from(ip))
    }

    /// Call `found` with each address newly found to be one of the site's servers (to
    /// keep it for the server that takes the site over next). Set once.
    pub fn when_site_server_found(&self, found: impl Fn(IpAddr) + Send + Sync + 'static) {
        let _ = self.site_server_found.set(SiteServerFound(Box::new(found)));
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Connections refused since the start.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections refused since the start because the server was full.
    pub fn refused_full(&self) -> usize {
        self.refused().saturating_sub(self.refused_from_address())
    }

    /// Connections refused since the start because their address had too many open.
    pub fn refused_from_address(&self) -> usize {
        self.refused_from_address.load(Ordering::Relaxed)
    }

    /// The cap on all connections.
    pub fn max_total(&self) -> usize {
        self.max_total
    }
}

/// One connection's place; freed when dropped.
#[derive(Debug)]
pub struct Slot {
    caps: Arc<ConnectionCaps>,
    key: AddrKey,
    site_server: bool,
    /// Counted with the site's other servers too.
    shared: bool,
}

impl Slot {
    /// With counts shared across the site, count this connection there too, or say why
    /// not (its address has the cap's worth open on the site's servers together). The
    /// site's own servers are not counted.
    pub async fn share(mut self) -> Result<Slot, Refused> {
        let Some(shared) = self.caps.shared.get().filter(|_| !self.site_server) else {
            return Ok(self);
        };
        match shared.admit(self.key, self.caps.max_per_address).await {
            Admission::Counted => {
                self.shared = true;
                Ok(self)
            }
            Admission::Unchecked => Ok(self),
            Admission::Refused => {
                self.caps.count_refusal(Refused::TooManyFromAddress);
                Err(Refused::TooManyFromAddress)
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.shared {
            if let Some(shared) = self.caps.shared.get() {
                shared.release(self.key);
            }
        }
        let mut by_address = self
            .caps
            .by_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = by_address.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                by_address.remove(&self.key);
            }
        }
        self.caps.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream holding its slot, and closed when nothing has moved either way for too
/// long.
#[derive(Debug)]
pub struct Guarded {
    stream: TcpStream,
    _slot: Slot,
    idle: Pin<Box<Sleep>>,
    idle_for: Duration,
}

impl Guarded {
    fn new(stream: TcpStream, slot: Slot, idle_for: Duration) -> Self {
        Self {
            stream,
            _slot: slot,
            // Until the first byte arrives the shorter first-byte limit applies.
            idle: Box::pin(tokio::time::sleep(FIRST_BYTE_TIMEOUT)),
            idle_for,
        }
    }
}

impl Guarded {
    /// Bytes moved one way or the other: the connection is alive (a slow download whose
    /// client sends nothing is still progressing).
    fn touch(&mut self) {
        let deadline = Instant::now() + self.idle_for;
        self.idle.as_mut().reset(deadline);
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client sent nothing for too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            if *n > 0 {
                self.touch();
            }
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &result {
            if *n > 0 {
                self.touch();
            }
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// HTTP/2 (which browsers choose over HTTPS) names the host in the request's URI (its
/// `:authority`) instead of a Host header; the origin checks and the links handed out
/// read the Host header, so it is filled in from the URI.
fn host_from_authority<B>(request: &mut hyper::Request<B>) {
    if request.headers().contains_key(hyper::header::HOST) {
        return;
    }
    let Some(authority) = request.uri().authority() else {
        return;
    };
    let host = match authority.port_u16() {
        Some(port) => format!("{}:{port}", authority.host()),
        None => authority.host().to_owned(),
    };
    if let Ok(value) = hyper::header::HeaderValue::from_str(&host) {
        request.headers_mut().insert(hyper::header::HOST, value);
    }
}

/// A short answer for a connection that is refused before any request is read.
fn refusal_response(why: Refused) -> &'static [u8] {
    match why {
        Refused::Full => {
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 10\r\n\
              Content-Type: text/plain\r\nContent-Length: 44\r\n\r\n\
              The server is busy. Please try again soon.\r\n"
        }
        Refused::TooManyFromAddress => {
            b"HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 10\r\n\
              Content-Type: text/plain\r\nContent-Length: 41\r\n\r\n\
              Too many connections from your address.\r\n"
        }
    }
}

/// Tell a refused client why, best effort and never waiting: it may not be reading.
fn refuse(stream: &TcpStream, why: Refused) {
    if stream.try_write(refusal_response(why)).is_err() {
        tracing::trace!("refused client did not take the answer");
    }
}

/// Serve `app` on `listener` until `shutdown` completes. New connections stop at once;
/// open ones are left to finish by themselves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    caps: Arc<ConnectionCaps>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with_tls(listener, app, caps, None, shutdown).await
}

/// [`serve`], speaking TLS on every connection when `tls` is given.
pub async fn serve_with_tls(
    listener: TcpListener,
    app: Router,
    caps: Arc<ConnectionCaps>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_connections(listener, app, caps, tls, shutdown, false).await
}

/// [`serve_with_tls`] that also closes every open connection when `shutdown` completes (a
/// standby's: nothing new may reach it once the full server serves the same port). Each
/// one's request under way is still answered (see [`DRAIN_TIMEOUT`]); forwarded
/// WebSockets are ended by the forwarding, not here.
pub async fn serve_and_drop(
    listener: TcpListener,
    app: Router,
    caps: Arc<ConnectionCaps>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_connections(listener, app, caps, tls, shutdown, true).await
}

async fn serve_connections(
    listener: TcpListener,
    app: Router,
    caps: Arc<ConnectionCaps>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drop_open: bool,
) -> io::Result<()> {
    // The open connections, when they end with the serving, and what tells them so.
    let mut open = tokio::task::JoinSet::new();
    let draining = CancellationToken::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(8)
        .max_send_buf_size(64 * 1024);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => {
                if drop_open {
                    drain(open, draining);
                }
                return Ok(());
            }
        };
        while open.try_join_next().is_some() {}
        let slot = match caps.admit(addr.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                tracing::debug!(%addr, ?why, "connection refused");
                refuse(&stream, why);
                continue;
            }
        };
        // Signaling is many small messages: send each at once instead of waiting for the
        // peer's delayed ACK (Nagle), which would add up to 40 ms to a join or an offer.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY not set: {e}");
        }
        let app = app.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        let draining = draining.clone();
        let task = async move {
            let slot = match slot.share().await {
                Ok(slot) => slot,
                Err(why) => {
                    tracing::debug!(%addr, ?why, "connection refused across the site");
                    refuse(&stream, why);
                    return;
                }
            };
            let guarded = Guarded::new(stream, slot, IDLE_TIMEOUT);
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(addr));
                    host_from_authority(&mut request);
                    app.clone().oneshot(request)
                });
            let io = match tls {
                None => Either::Left(guarded),
                Some(tls) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(guarded)).await {
                        Ok(Ok(stream)) => Either::Right(stream),
                        Ok(Err(e)) => {
                            tracing::debug!(%addr, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%addr, "TLS handshake took too long");
                            return;
                        }
                    }
                }
            };
            // After the TLS handshake: from here the client sends its request.
            let accepted = Instant::now();
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = drain_from(&draining, accepted) => {
                    // The request under way is answered, and the connection closes
                    // after it instead of waiting for the next.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%addr, "connection ended: {e}");
            }
        };
        if drop_open {
            open.spawn(task);
        } else {
            tokio::spawn(task);
        }
    }
}

/// A standby's listener stops: each open connection finishes the request under way (so
/// nobody whose request was already in gets a reset for an answer), then closes; any still
/// open after [`DRAIN_TIMEOUT`] is dropped. The new server meanwhile takes the new ones.
fn drain(mut open: tokio::task::JoinSet<()>, draining: CancellationToken) {
    draining.cancel();
    tokio::spawn(async move {
        let drained = async { while open.join_next().await.is_some() {} };
        if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
            tracing::debug!(
                "{} connection(s) to the standby still open after {} s: dropped",
                open.len(),
                DRAIN_TIMEOUT.as_secs()
            );
            open.abort_all();
        }
    });
}

/// Completes when the connection accepted at `accepted` should close: once `draining` is
/// cancelled, and not before [`FIRST_REQUEST_GRACE`] after its accepting, so that a client
/// that has just connected has sent its request (a connection closed before its first
/// bytes are read would be closed with them unread, which a client sees as a reset).
async fn drain_from(draining: &CancellationToken, accepted: Instant) {
    draining.cancelled().await;
    tokio::time::sleep_until(accepted + FIRST_REQUEST_GRACE).await;
}

/// Files the server keeps open besides its connections.
const RESERVED_FILES: u64 = 256;

/// Let the process open as many files as its hard limit allows, and return how many
/// connections fit beside the files the server itself needs, each connection taking
/// `files_each` (a standby's: 2, the client's and the one it forwards over).
pub fn raise_file_limit(wanted_connections: usize, files_each: usize) -> usize {
    let wanted = files_needed(wanted_connections, files_each);
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) if limit < wanted => {
            let fit = connections_fitting(limit, files_each);
            tracing::warn!(
                "this process may open only {limit} files: at most {fit} connections \
                 (raise `ulimit -n` or LimitNOFILE for more)"
            );
            fit
        }
        Ok(_) => wanted_connections,
        Err(e) => {
            tracing::warn!("could not read the open-file limit: {e}");
            wanted_connections
        }
    }
}

fn files_needed(connections: usize, files_each: usize) -> u64 {
    (connections as u64)
        .saturating_mul(files_each.max(1) as u64)
        .saturating_add(RESERVED_FILES)
}

fn connections_fitting(limit: u64, files_each: usize) -> usize {
    let fit = limit.saturating_sub(RESERVED_FILES) / files_each.max(1) as u64;
    usize::try_from(fit).unwrap_or(usize::MAX).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_lowered_to_the_files_they_need() {
        assert_eq!(files_needed(1000, 1), 1256);
        assert_eq!(
            files_needed(1000, 2),
            2256,
            "a standby's take two files each"
        );
        assert_eq!(connections_fitting(1256, 1), 1000);
        assert_eq!(connections_fitting(1256, 2), 500);
        assert_eq!(connections_fitting(100, 2), 16, "never fewer than 16");
    }

    #[test]
    fn caps_hold_per_address_and_in_total_and_free_on_drop() {
        let caps = ConnectionCaps::new(5, 2);
        let a: IpAddr = "127.0.0.2".parse().expect("ip");
        let b: IpAddr = "127.0.0.3".parse().expect("ip");
        let a1 = caps.admit(a).expect("first");
        let _a2 = caps.admit(a).expect("second");
        assert_eq!(caps.admit(a).err(), Some(Refused::TooManyFromAddress));
        let _b1 = caps.admit(b).expect("another address");
        drop(a1);
        let _a3 = caps.admit(a).expect("freed");
        let v6a: IpAddr = "2001:db8::1".parse().expect("ip");
        let v6b: IpAddr = "2001:db8::2".parse().expect("ip");
        let _c1 = caps.admit(v6a).expect("v6");
        let _c2 = caps.admit(v6b).expect("same /64, second");
        assert_eq!(caps.open(), 5);
        assert_eq!(
            caps.admit("127.0.0.9".parse().expect("ip")).err(),
            Some(Refused::Full)
        );
        assert_eq!(caps.refused(), 2);
    }

    #[test]
    fn an_http2_request_gets_its_host_header_from_the_authority() {
        let mut request = hyper::Request::builder()
            .uri("https://user@tandem.test:8443/api/login")
            .body(())
            .expect("request");
        host_from_authority(&mut request);
        assert_eq!(request.headers()["host"], "tandem.test:8443");
        let mut request = hyper::Request::builder()
            .uri("/api/login")
            .header("host", "example.com")
            .body(())
            .expect("request");
        host_from_authority(&mut request);
        assert_eq!(request.headers()["host"], "example.com");
    }

    /// A standby that stops serving answers the request it is working on, and closes its
    /// connections: the one whose request was under way after the answer, an idle one at
    /// once. Nothing is cut with a reset.
    #[tokio::test]
    async fn a_stopping_standby_answers_the_request_under_way_and_closes_the_rest() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let gate = Arc::new(Mutex::new(Some((entered_tx, release_rx))));
        let app = Router::new()
            .route(
                "/slow",
                axum::routing::get(move || {
                    let gate = gate.clone();
                    async move {
                        let taken = gate.lock().expect("gate").take();
                        if let Some((entered, release)) = taken {
                            let _ = entered.send(());
                            let _ = release.await;
                        }
                        "answered after the stop"
                    }
                }),
            )
            .route("/quick", axum::routing::get(|| async { "quick" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(serve_and_drop(
            listener,
            app,
            ConnectionCaps::new(16, 16),
            None,
            async move {
                let _ = stop_rx.await;
            },
        ));
        let deadline = Duration::from_secs(30);
        // An idle keep-alive connection, after one answer.
        let mut idle = TcpStream::connect(addr).await.expect("connect");
        idle.write_all(b"GET /quick HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .expect("write");
        let mut answer = vec![0; 1024];
        let n = tokio::time::timeout(deadline, idle.read(&mut answer))
            .await
            .expect("quick answer in time")
            .expect("read");
        assert!(answer[..n].ends_with(b"quick"), "{:?}", &answer[..n]);
        // A request under way when the stop comes.
        let mut busy = TcpStream::connect(addr).await.expect("connect");
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .expect("write");
        tokio::time::timeout(deadline, entered_rx)
            .await
            .expect("the slow request reached its handler in time")
            .expect("entered");
        stop_tx.send(()).expect("stop");
        served.await.expect("task").expect("served");
        // The idle one is closed without an answer.
        let closed = tokio::time::timeout(deadline, idle.read(&mut answer))
            .await
            .expect("the idle connection closed in time")
            .expect("closed cleanly, not reset");
        assert_eq!(closed, 0, "nothing more on the idle connection");
        release_tx.send(()).expect("release");
        let mut text = Vec::new();
        tokio::time::timeout(deadline, busy.read_to_end(&mut text))
            .await
            .expect("the slow answer came, and the connection closed, in time")
            .expect("read, not reset");
        let text = String::from_utf8_lossy(&text);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("answered after the stop"), "{text}");
    }

    #[test]
    fn refusals_are_complete_http_answers() {
        for why in [Refused::Full, Refused::TooManyFromAddress] {
            let text = std::str::from_utf8(refusal_response(why)).expect("ascii");
            let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .expect("length")
                .parse()
                .expect("number");
            assert_eq!(length, body.len(), "{why:?}");
        }
    }
}
