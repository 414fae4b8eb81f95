//! The embedded STUN/TURN service, built on the webrtc-rs `turn` crate (0.17.2).
//!
//! What `turn` gives us: the whole RFC 5389/5766 state machine (Binding, Allocate,
//! Refresh, CreatePermission, ChannelBind, Send/Data indications, ChannelData, nonces,
//! MESSAGE-INTEGRITY, lifetimes) over anything implementing `webrtc_util::Conn`.
//! What we add here (glue only, no TURN protocol code):
//!   * a `Conn` that multiplexes all TCP (or TLS) client connections of one listener, with
//!     RFC 5766 §2.1 / §11.5 framing (STUN length + 20, ChannelData padded to 4);
//!   * an `AuthHandler` for coturn's `use-auth-secret` REST credentials;
//!   * a `RelayAddressGenerator` that enforces allocation caps (→ 508) and hands out relay
//!     sockets wrapped in a `Conn` that polices bandwidth (token buckets, per participant and
//!     total) and refuses loopback/private peers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::turn::{IceConfig, TurnAuth};
use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use turn::auth::{AuthHandler, generate_auth_key};
use turn::relay::RelayAddressGenerator;
use turn::server::Server;
use turn::server::config::{ConnConfig, ServerConfig};
use webrtc_util::Conn;

/// Configuration of the embedded server.
#[derive(Clone, Debug)]
pub struct TurnConfig {
    pub realm: String,
    /// coturn `static-auth-secret`.
    pub shared_secret: String,
    /// UDP and TCP listen on this address (same port, like coturn's listening-port).
    pub listen: SocketAddr,
    /// TURN over TLS (`turns:`), when the server has a certificate.
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    /// Address relay sockets bind to, and the address advertised in XOR-RELAYED-ADDRESS.
    pub relay_bind_ip: IpAddr,
    pub relay_public_ip: IpAddr,
    /// Relay port range (inclusive); `None` = OS-chosen ephemeral ports.
    pub relay_ports: Option<(u16, u16)>,
    pub max_allocations_total: usize,
    pub max_allocations_per_user: usize,
    /// Relay bandwidth caps in bytes/second, applied to each direction separately
    /// (client->peer and peer->client); 0 = unlimited.
    pub bandwidth_total: u64,
    pub bandwidth_per_user: u64,
    /// Max simultaneous TCP/TLS client connections per listener.
    pub max_stream_connections: usize,
    /// Which peer addresses the relay may send to and receive from.
    pub peers: PeerPolicy,
}

/// A running embedded server; drop-safe, but call `shutdown` for an orderly stop.
pub struct EmbeddedTurn {
    servers: Vec<Server>,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
    /// Where it listens: UDP and TCP, and TLS.
    pub listen: SocketAddr,
    pub tls_listen: Option<SocketAddr>,
}

impl std::fmt::Debug for EmbeddedTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedTurn")
            .field("listen", &self.listen)
            .field("tls_listen", &self.tls_listen)
            .finish_non_exhaustive()
    }
}

/// The embedded service as the server runs it: started from the configuration, with the
/// URLs and the credential scheme participants are given.
pub async fn start(config: &crate::Config) -> anyhow::Result<Option<(EmbeddedTurn, IceConfig)>> {
    let Some(settings) = &config.embedded_turn else {
        return Ok(None);
    };
    let secret = match &config.ice.auth {
        TurnAuth::SharedSecret { secret, .. } => secret.clone(),
        _ => stored_secret(&config.data_dir)?,
    };
    let ttl_secs = settings.credential_ttl_secs;
    let public_ip = settings
        .public_ip
        .unwrap_or_else(|| reachable_address(settings.bind));
    if public_ip.is_loopback() {
        tracing::warn!(
            %public_ip,
            "the STUN/TURN service is reachable only on this machine: set turn_public_ip to \
             the address customers and reps reach this server at"
        );
    }
    // Relay sockets on every address of the family clients are told about.
    let relay_bind_ip = match public_ip {
        IpAddr::V4(_) => IpAddr::from([0, 0, 0, 0]),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    };
    // A certificate names the server, not its address: TURN over TLS needs the name.
    let tls_name = config
        .acme
        .as_ref()
        .and_then(|a| a.domains.first().cloned())
        .or_else(|| config.public_url.as_deref().and_then(host_of));
    let tls = match (&config.tls, &tls_name) {
        (Some(files), Some(_)) => Some((
            SocketAddr::new(settings.bind, settings.tls_port),
            crate::tls::server_config(files)?,
        )),
        _ => None,
    };
    let turn = EmbeddedTurn::start(TurnConfig {
        realm: "tandem".into(),
        shared_secret: secret.clone(),
        listen: SocketAddr::new(settings.bind, settings.port),
        tls,
        relay_bind_ip,
        relay_public_ip: public_ip,
        relay_ports: settings.relay_ports,
        max_allocations_total: settings.max_allocations,
        max_allocations_per_user: settings.max_allocations_per_participant,
        bandwidth_total: settings.max_kbit_total * 1000 / 8,
        bandwidth_per_user: settings.max_kbit_per_participant * 1000 / 8,
        max_stream_connections: 1024,
        peers: PeerPolicy {
            allow_loopback: settings.allow_loopback_peers,
            allow_private: settings.allow_private_peers,
        },
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "could not start the STUN/TURN service on port {}: {e} (another TURN server \
             running? set turn_port, or embedded_turn = false)",
            settings.port
        )
    })?;
    let host = match public_ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let port = turn.listen.port();
    let mut urls = vec![
        format!("stun:{host}:{port}"),
        format!("turn:{host}:{port}?transport=udp"),
        format!("turn:{host}:{port}?transport=tcp"),
    ];
    if let (Some(name), Some(tls)) = (tls_name, turn.tls_listen) {
        urls.push(format!("turns:{name}:{}?transport=tcp", tls.port()));
    }
    let mut ice = config.ice.clone();
    ice.urls.extend(urls);
    ice.auth = TurnAuth::SharedSecret { secret, ttl_secs };
    tracing::info!(listen = %turn.listen, tls = ?turn.tls_listen, relay = %public_ip, "STUN/TURN service started");
    Ok(Some((turn, ice)))
}

/// The embedded service's shared secret, made once and kept in the data directory (so
/// credentials stay good across a restart).
fn stored_secret(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("turn-secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        let secret = secret.trim().to_owned();
        if secret.len() >= 16 {
            return Ok(secret);
        }
    }
    let secret = crate::clock::secret();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options
        .open(&path)
        .and_then(|mut f| f.write_all(secret.as_bytes()))
        .map_err(|e| anyhow::anyhow!("could not write {}: {e}", path.display()))?;
    Ok(secret)
}

/// The address clients reach this machine at: the bind address, or when binding to all,
/// the source address of the default route (found without sending anything).
fn reachable_address(bind: IpAddr) -> IpAddr {
    if !bind.is_unspecified() {
        return bind;
    }
    let probe = |local: &str, remote: &str| {
        let socket = std::net::UdpSocket::bind(local).ok()?;
        socket.connect(remote).ok()?;
        Some(socket.local_addr().ok()?.ip())
    };
    probe("0.0.0.0:0", "192.0.2.1:9")
        .or_else(|| probe("[::]:0", "[2001:db8::1]:9"))
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty() && host.parse::<IpAddr>().is_err()).then(|| host.to_owned())
}

impl EmbeddedTurn {
    pub async fn start(cfg: TurnConfig) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let limits = Arc::new(Limits::new(&cfg));
        let mut servers = Vec::new();

        // One `turn::server::Server` per listener: `Server` handles the requests of one
        // listener sequentially, so the username the auth handler saw last is the one whose
        // Allocate reaches `allocate_conn` (which the crate calls without the username).
        // UDP and TCP on one port; with port 0, the port UDP got (tried a few times, as
        // TCP may find it taken).
        let (udp, tcp) = bind_pair(cfg.listen).await?;
        let listen = udp.local_addr()?;
        let udp = Arc::new(PolicedUdp::new(udp, limits.counters.clone()));
        servers.push(new_server(&cfg, &limits, &shutdown, udp, None).await?);

        let (conn, gone) = StreamMux::start(
            tcp,
            None,
            cfg.max_stream_connections,
            limits.counters.clone(),
            shutdown.clone(),
        )?;
        servers.push(new_server(&cfg, &limits, &shutdown, conn, Some(gone)).await?);

        let mut tls_listen = None;
        if let Some((addr, tls)) = &cfg.tls {
            let tcp = TcpListener::bind(addr).await?;
            tls_listen = Some(tcp.local_addr()?);
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
            let (conn, gone) = StreamMux::start(
                tcp,
                Some(acceptor),
                cfg.max_stream_connections,
                limits.counters.clone(),
                shutdown.clone(),
            )?;
            servers.push(new_server(&cfg, &limits, &shutdown, conn, Some(gone)).await?);
        }
        Ok(Self {
            servers,
            limits,
            shutdown,
            listen,
            tls_listen,
        })
    }

    /// What the service has done since it started, for `/metrics`.
    pub fn usage(&self) -> TurnUsage {
        let c = &self.limits.counters;
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        TurnUsage {
            allocations: *self
                .limits
                .total
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            allocations_refused: read(&c.allocations_refused),
            relayed_to_peer: read(&c.relayed_to_peer),
            relayed_to_client: read(&c.relayed_to_client),
            dropped_over_bandwidth: read(&c.dropped_over_bandwidth),
            dropped_peer_not_allowed: read(&c.dropped_peer_not_allowed),
            requests_over_rate: read(&c.requests_over_rate),
        }
    }

    /// Allocations currently held (total, by participant id).
    pub fn allocation_counts(&self) -> (usize, HashMap<String, usize>) {
        let users = self
            .limits
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (
            *self
                .limits
                .total
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            users
                .iter()
                .map(|(k, v)| (k.clone(), v.allocations))
                .collect(),
        )
    }

    /// Drop every allocation made with `username` (e.g. when a session ends).
    pub async fn revoke(&self, username: &str) {
        for s in &self.servers {
            let _ = s.delete_allocations_by_username(username.to_owned()).await;
        }
    }

    pub async fn shutdown(self) {
        self.shutdown.cancel(); // stops TCP/TLS accept loops and connections
        for s in &self.servers {
            let _ = s.close().await; // closes read loops and every allocation
        }
    }
}

async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

async fn new_server(
    cfg: &TurnConfig,
    limits: &Arc<Limits>,
    shutdown: &CancellationToken,
    conn: Arc<dyn Conn + Send + Sync>,
    stream_gone: Option<ConnGone>,
) -> anyhow::Result<Server> {
    let last_auth: Arc<Mutex<Option<(String, SocketAddr)>>> = Arc::default();
    Ok(Server::new(ServerConfig {
        conn_configs: vec![ConnConfig {
            conn,
            relay_addr_generator: Box::new(QuotaRelayGen {
                cfg: cfg.clone(),
                limits: limits.clone(),
                last_auth: last_auth.clone(),
                stream_gone,
                shutdown: shutdown.clone(),
            }),
        }],
        realm: cfg.realm.clone(),
        auth_handler: Arc::new(RestAuth {
            secret: cfg.shared_secret.clone(),
            last_auth,
        }),
        channel_bind_timeout: Duration::from_secs(0), // crate default (10 min)
        alloc_close_notify: None,
    })
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Authentication: coturn `use-auth-secret`.

/// Participant id of a REST username ("<expiry>:<id>"); quotas are keyed by it so that
/// re-issued credentials do not reset a participant's quota.
fn participant_of(username: &str) -> &str {
    username.split_once(':').map_or(username, |(_, id)| id)
}

#[derive(Debug)]
struct RestAuth {
    secret: String,
    last_auth: Arc<Mutex<Option<(String, SocketAddr)>>>,
}

impl AuthHandler for RestAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        // Called for every authenticated request (Allocate, Refresh, CreatePermission,
        // ChannelBind), so an expired username also stops refreshes: the allocation then
        // dies at the end of its current lifetime (<= 1 h, the crate's maximum).
        let expiry: u64 = username
            .split_once(':')
            .map_or(username, |(t, _)| t)
            .parse()
            .map_err(|_| turn::Error::Other("bad username".into()))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if expiry < now {
            return Err(turn::Error::Other("expired credentials".into())); // -> 400
        }
        *self
            .last_auth
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((username.to_owned(), src));
        // Long-term key = MD5(username ":" realm ":" password)
        Ok(generate_auth_key(
            username,
            realm,
            &crate::turn::shared_secret_credential(&self.secret, username),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Quotas and bandwidth.

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        let rate = rate as f64;
        // one second of burst, at least a few full-size packets
        let burst = rate.max(16.0 * 1500.0);
        Self {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }
    fn take(&mut self, n: usize) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= n as f64 {
            self.tokens -= n as f64;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct UserUse {
    allocations: usize,
    up: Bucket,   // client -> peer
    down: Bucket, // peer -> client
}

/// What the service did, since it started (see [`TurnUsage`]).
#[derive(Debug, Default)]
struct Counters {
    allocations_refused: AtomicU64,
    relayed_to_peer: AtomicU64,
    relayed_to_client: AtomicU64,
    dropped_over_bandwidth: AtomicU64,
    dropped_peer_not_allowed: AtomicU64,
    requests_over_rate: AtomicU64,
}

impl Counters {
    fn add(n: &AtomicU64, by: usize) {
        n.fetch_add(u64::try_from(by).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// The embedded service's use, as `/metrics` shows it: allocations held now, and counts
/// since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnUsage {
    pub allocations: usize,
    /// Refused at the caps on allocations (answered 508).
    pub allocations_refused: u64,
    /// Bytes relayed each way (application data, not TURN framing).
    pub relayed_to_peer: u64,
    pub relayed_to_client: u64,
    /// Packets dropped over a bandwidth cap, or to or from a peer address not allowed.
    pub dropped_over_bandwidth: u64,
    pub dropped_peer_not_allowed: u64,
    /// STUN requests dropped over an address's (or a TCP/TLS connection's) rate.
    pub requests_over_rate: u64,
}

#[derive(Debug)]
struct Limits {
    max_total: usize,
    max_per_user: usize,
    per_user_rate: u64,
    total: Mutex<usize>,
    total_up: Mutex<Bucket>,
    total_down: Mutex<Bucket>,
    users: Mutex<HashMap<String, UserUse>>,
    counters: Arc<Counters>,
}

impl Limits {
    fn new(cfg: &TurnConfig) -> Self {
        Self {
            max_total: cfg.max_allocations_total,
            max_per_user: cfg.max_allocations_per_user,
            per_user_rate: cfg.bandwidth_per_user,
            total: Mutex::new(0),
            total_up: Mutex::new(Bucket::new(cfg.bandwidth_total)),
            total_down: Mutex::new(Bucket::new(cfg.bandwidth_total)),
            users: Mutex::default(),
            counters: Arc::default(),
        }
    }
    fn acquire(&self, user: &str) -> bool {
        let mut total = self.total.lock().unwrap_or_else(PoisonError::into_inner);
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let u = users.entry(user.to_owned()).or_insert_with(|| UserUse {
            allocations: 0,
            up: Bucket::new(self.per_user_rate),
            down: Bucket::new(self.per_user_rate),
        });
        if *total >= self.max_total || u.allocations >= self.max_per_user {
            if u.allocations == 0 {
                users.remove(user);
            }
            self.counters
                .allocations_refused
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        *total += 1;
        u.allocations += 1;
        true
    }
    fn release(&self, user: &str) {
        let mut total = self.total.lock().unwrap_or_else(PoisonError::into_inner);
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        *total -= 1;
        if let Some(u) = users.get_mut(user) {
            u.allocations -= 1;
            if u.allocations == 0 {
                users.remove(user);
            }
        }
    }
    /// Policing, not shaping: a packet over budget is dropped (never delays the shared
    /// listener loop).
    /// One bucket per direction: with a shared one, the client->peer leg of a relay-to-relay
    /// path would take every token and the peer->client leg would drop everything.
    /// Counted: relayed or dropped.
    fn allow(&self, user: &str, up: bool, n: usize) -> bool {
        let ok = self
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(user)
            .is_none_or(|u| if up { u.up.take(n) } else { u.down.take(n) });
        let ok = ok
            && if up { &self.total_up } else { &self.total_down }
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(n);
        let c = &self.counters;
        match (ok, up) {
            (true, true) => Counters::add(&c.relayed_to_peer, n),
            (true, false) => Counters::add(&c.relayed_to_client, n),
            (false, _) => Counters::add(&c.dropped_over_bandwidth, 1),
        }
        ok
    }

    /// Whether the relay may reach `peer` (counted when not).
    fn peer_allowed(&self, peer: &SocketAddr, policy: PeerPolicy) -> bool {
        let ok = peer_allowed(peer, policy);
        if !ok {
            Counters::add(&self.counters.dropped_peer_not_allowed, 1);
        }
        ok
    }
}

#[derive(Debug)]
struct QuotaRelayGen {
    cfg: TurnConfig,
    limits: Arc<Limits>,
    last_auth: Arc<Mutex<Option<(String, SocketAddr)>>>,
    stream_gone: Option<ConnGone>,
    shutdown: CancellationToken,
}

#[async_trait]
impl RelayAddressGenerator for QuotaRelayGen {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    // Any Err here is answered with 508 (Insufficient Capacity).
    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        let (username, src) = self
            .last_auth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| turn::Error::Other("allocate without auth".into()))?;
        if use_ipv4 != self.cfg.relay_bind_ip.is_ipv4() {
            return Err(turn::Error::Other("address family not served".into()));
        }
        let user = participant_of(&username).to_owned();
        if !self.limits.acquire(&user) {
            tracing::info!("TURN allocation refused for {user}: quota");
            return Err(turn::Error::Other("allocation quota reached".into()));
        }
        let guard = QuotaGuard {
            limits: self.limits.clone(),
            user: user.clone(),
        };
        let sock = bind_relay(self.cfg.relay_bind_ip, self.cfg.relay_ports, requested_port).await?;
        let port = sock.local_addr()?.port();
        // A TCP/TLS client's allocation must die with its connection (RFC 5766 §2.1);
        // the allocation's packet loop ends when our relay's recv_from fails.
        let client_gone = match &self.stream_gone {
            Some(g) => g.token_for(src),
            None => self.shutdown.child_token(),
        };
        let relay = LimitedRelay {
            sock,
            limits: self.limits.clone(),
            user,
            peers: self.cfg.peers,
            client_gone,
            _guard: guard,
        };
        Ok((
            Arc::new(relay),
            SocketAddr::new(self.cfg.relay_public_ip, port),
        ))
    }
}

async fn bind_relay(
    ip: IpAddr,
    range: Option<(u16, u16)>,
    requested: u16,
) -> Result<UdpSocket, turn::Error> {
    if requested != 0 {
        return Ok(UdpSocket::bind((ip, requested)).await?);
    }
    let Some((lo, hi)) = range else {
        return Ok(UdpSocket::bind((ip, 0)).await?);
    };
    for _ in 0..64 {
        let port = lo + (rand::random::<u16>() % (hi - lo + 1));
        if let Ok(s) = UdpSocket::bind((ip, port)).await {
            return Ok(s);
        }
    }
    Err(turn::Error::Other("no free relay port".into()))
}

#[derive(Debug)]
struct QuotaGuard {
    limits: Arc<Limits>,
    user: String,
}
impl Drop for QuotaGuard {
    fn drop(&mut self) {
        self.limits.release(&self.user);
    }
}

/// Where relayed traffic may go. A relay that sends anywhere would let anyone with
/// credentials reach the server's own network (its loopback services, the LAN behind it);
/// so loopback is never a peer outside tests, and private and link-local addresses only
/// when the self-hoster says customers and reps reach each other on such addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerPolicy {
    pub allow_loopback: bool,
    pub allow_private: bool,
}

fn peer_allowed(addr: &SocketAddr, policy: PeerPolicy) -> bool {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() {
                false
            } else if v4.is_loopback() {
                policy.allow_loopback
            } else if v4.is_private() || v4.is_link_local() || v4.octets()[0] == 0 {
                policy.allow_private
            } else {
                true
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_unspecified() || v6.is_multicast() {
                false
            } else if v6.is_loopback() {
                policy.allow_loopback
            } else if v6.is_unique_local() || v6.is_unicast_link_local() {
                policy.allow_private
            } else {
                true
            }
        }
    }
}

/// The relay socket of one allocation.
#[derive(Debug)]
struct LimitedRelay {
    sock: UdpSocket,
    limits: Arc<Limits>,
    user: String,
    peers: PeerPolicy,
    client_gone: CancellationToken,
    _guard: QuotaGuard, // releases the allocation slot when the allocation is dropped
}

#[async_trait]
impl Conn for LimitedRelay {
    async fn connect(&self, _: SocketAddr) -> webrtc_util::Result<()> {
        Err(std::io::Error::other("not supported").into())
    }
    async fn recv(&self, _: &mut [u8]) -> webrtc_util::Result<usize> {
        Err(std::io::Error::other("not supported").into())
    }
    /// Peer -> client direction.
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = tokio::select! {
                r = self.sock.recv_from(buf) => r?,
                _ = self.client_gone.cancelled() =>
                    return Err(std::io::Error::other("client connection closed").into()),
            };
            if self.limits.peer_allowed(&from, self.peers)
                && self.limits.allow(&self.user, false, n)
            {
                return Ok((n, from));
            }
        }
    }
    async fn send(&self, _: &[u8]) -> webrtc_util::Result<usize> {
        Err(std::io::Error::other("not supported").into())
    }
    /// Client -> peer direction. Dropped packets report success so the crate does not log
    /// a short write for every policed packet.
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.limits.peer_allowed(&target, self.peers)
            || !self.limits.allow(&self.user, true, buf.len())
        {
            return Ok(buf.len());
        }
        Ok(self.sock.send_to(buf, target).await?)
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.sock.local_addr()?)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

// ---------------------------------------------------------------------------------------------
// The UDP listener, with STUN requests rate-limited per source address.

/// STUN requests one address may make each second, and its burst. Media (ChannelData and
/// Send indications) is not counted: it is capped by bandwidth instead. The `turn` crate
/// keeps a nonce for every unauthenticated request for up to an hour, so without this a
/// flood of requests would grow its memory without bound.
const STUN_REQUESTS_PER_SECOND: f64 = 50.0;
const STUN_REQUEST_BURST: f64 = 200.0;
/// Addresses tracked at once; past this the oldest are forgotten (a flood from many
/// addresses then gets a fresh budget each, which the per-address cap on nonces cannot stop
/// but the bandwidth of the flood bounds).
const TRACKED_SOURCES: usize = 100_000;

#[derive(Debug)]
struct PolicedUdp {
    socket: UdpSocket,
    budgets: Mutex<HashMap<IpAddr, RequestBudget>>,
    counters: Arc<Counters>,
}

impl PolicedUdp {
    fn new(socket: UdpSocket, counters: Arc<Counters>) -> Self {
        Self {
            socket,
            budgets: Mutex::default(),
            counters,
        }
    }

    /// May this datagram from `from` reach the TURN server?
    fn admit(&self, datagram: &[u8], from: SocketAddr) -> bool {
        if !is_stun_request(datagram) {
            return true;
        }
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        if budgets.len() >= TRACKED_SOURCES && !budgets.contains_key(&from.ip()) {
            let horizon = Instant::now() - Duration::from_secs(10);
            budgets.retain(|_, budget| budget.at > horizon);
            if budgets.len() >= TRACKED_SOURCES {
                budgets.clear();
            }
        }
        let admitted = budgets.entry(from.ip()).or_default().admit(datagram);
        if !admitted {
            Counters::add(&self.counters.requests_over_rate, 1);
        }
        admitted
    }
}

/// A STUN request: the first two bits zero and the class bits (0x0110 of the type) zero.
/// Indications, responses and ChannelData are not.
fn is_stun_request(message: &[u8]) -> bool {
    message.len() >= 20
        && message[0] & 0xc0 == 0
        && u16::from_be_bytes([message[0], message[1]]) & 0x0110 == 0
}

/// STUN requests allowed to one UDP address or one TCP/TLS connection.
#[derive(Debug)]
struct RequestBudget {
    tokens: f64,
    at: Instant,
}

impl Default for RequestBudget {
    fn default() -> Self {
        Self {
            tokens: STUN_REQUEST_BURST,
            at: Instant::now(),
        }
    }
}

impl RequestBudget {
    fn admit(&mut self, message: &[u8]) -> bool {
        if !is_stun_request(message) {
            return true;
        }
        let now = Instant::now();
        self.tokens = (self.tokens
            + now.duration_since(self.at).as_secs_f64() * STUN_REQUESTS_PER_SECOND)
            .min(STUN_REQUEST_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[async_trait]
impl Conn for PolicedUdp {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(self.socket.connect(addr).await?)
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.recv(buf).await?)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            if self.admit(&buf[..n], from) {
                return Ok((n, from));
            }
        }
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.send(buf).await?)
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        Ok(self.socket.send_to(buf, target).await?)
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    /// A no-op, as for the stream listener: the crate calls it whenever an allocation
    /// closes.
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

// ---------------------------------------------------------------------------------------------
// TCP / TLS listener as one packet `Conn`.

/// Per-connection cancellation, so an allocation made over a stream ends with it.
#[derive(Clone, Debug, Default)]
struct ConnGone(Arc<Mutex<HashMap<SocketAddr, CancellationToken>>>);
impl ConnGone {
    fn token_for(&self, src: SocketAddr) -> CancellationToken {
        // connection already gone -> a cancelled token
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&src)
            .cloned()
            .unwrap_or_else(|| {
                let t = CancellationToken::new();
                t.cancel();
                t
            })
    }
}

#[derive(Debug)]
struct StreamMux {
    local: SocketAddr,
    inbound: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    writers: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>,
    shutdown: CancellationToken,
}

impl StreamMux {
    fn start(
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        max_conns: usize,
        counters: Arc<Counters>,
        shutdown: CancellationToken,
    ) -> std::io::Result<(Arc<dyn Conn + Send + Sync>, ConnGone)> {
        let local = listener.local_addr()?;
        let (in_tx, in_rx) = mpsc::channel(1024);
        let writers: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>> = Arc::default();
        let gone = ConnGone::default();
        let slots = Arc::new(tokio::sync::Semaphore::new(max_conns));
        {
            let (writers, gone, shutdown) = (writers.clone(), gone.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    let (stream, peer) = tokio::select! {
                        r = listener.accept() => match r {
                            Ok(v) => v,
                            Err(_) => {
                                // Out of file descriptors, say: wait rather than spin.
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                continue;
                            }
                        },
                        _ = shutdown.cancelled() => break,
                    };
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let (in_tx, writers, gone, tls, conn_token) = (
                        in_tx.clone(),
                        writers.clone(),
                        gone.clone(),
                        tls.clone(),
                        shutdown.child_token(),
                    );
                    let counters = counters.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        match tls {
                            None => {
                                serve_stream(
                                    stream,
                                    peer,
                                    in_tx,
                                    writers.clone(),
                                    gone.clone(),
                                    counters,
                                    conn_token,
                                )
                                .await
                            }
                            Some(acc) => {
                                let hs = tokio::time::timeout(
                                    Duration::from_secs(10),
                                    acc.accept(stream),
                                )
                                .await;
                                if let Ok(Ok(s)) = hs {
                                    serve_stream(
                                        s,
                                        peer,
                                        in_tx,
                                        writers.clone(),
                                        gone.clone(),
                                        counters,
                                        conn_token,
                                    )
                                    .await
                                }
                            }
                        }
                    });
                }
            });
        }
        let mux = StreamMux {
            local,
            inbound: tokio::sync::Mutex::new(in_rx),
            writers,
            shutdown,
        };
        Ok((Arc::new(mux), gone))
    }
}

async fn serve_stream<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    in_tx: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    writers: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>,
    gone: ConnGone,
    counters: Arc<Counters>,
    token: CancellationToken,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(256);
    writers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(peer, out_tx);
    gone.0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(peer, token.clone());
    let writer = {
        let token = token.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    m = out_rx.recv() => match m {
                        Some(m) => if wr.write_all(&m).await.is_err() { break },
                        None => break,
                    },
                    _ = token.cancelled() => break,
                }
            }
            let _ = wr.shutdown().await;
        })
    };
    let mut budget = RequestBudget::default();
    let reader = async {
        let mut hdr = [0u8; 4];
        loop {
            rd.read_exact(&mut hdr).await?;
            let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
            let total = match hdr[0] >> 6 {
                0b00 => 20 + len,           // STUN message (length excludes 20-byte header)
                0b01 => (4 + len + 3) & !3, // ChannelData, padded to 4 over streams
                _ => return Ok::<(), std::io::Error>(()), // garbage: drop the connection
            };
            let mut msg = vec![0u8; total];
            msg[..4].copy_from_slice(&hdr);
            rd.read_exact(&mut msg[4..]).await?;
            if total > 1500 {
                continue; // the crate's read buffer is 1500 bytes
            }
            if !budget.admit(&msg) {
                // Over its STUN request budget, as on UDP.
                Counters::add(&counters.requests_over_rate, 1);
                continue;
            }
            if in_tx.send((msg, peer)).await.is_err() {
                return Ok(());
            }
        }
    };
    tokio::select! {
        _ = reader => {},
        _ = token.cancelled() => {},
    }
    token.cancel(); // ends the writer and this client's allocations
    writers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&peer);
    gone.0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&peer);
    let _ = writer.await;
}

#[async_trait]
impl Conn for StreamMux {
    async fn connect(&self, _: SocketAddr) -> webrtc_util::Result<()> {
        Err(std::io::Error::other("not supported").into())
    }
    async fn recv(&self, _: &mut [u8]) -> webrtc_util::Result<usize> {
        Err(std::io::Error::other("not supported").into())
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let mut rx = self.inbound.lock().await;
        tokio::select! {
            m = rx.recv() => match m {
                Some((m, from)) => {
                    let n = m.len().min(buf.len());
                    buf[..n].copy_from_slice(&m[..n]);
                    Ok((n, from))
                }
                None => Err(std::io::Error::other("listener closed").into()),
            },
            _ = self.shutdown.cancelled() => Err(std::io::Error::other("shut down").into()),
        }
    }
    async fn send(&self, _: &[u8]) -> webrtc_util::Result<usize> {
        Err(std::io::Error::other("not supported").into())
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        let tx = self
            .writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&target)
            .cloned();
        match tx {
            // never block the shared request loop: drop when the client is slow
            Some(tx) => {
                let _ = tx.try_send(buf.to_vec());
                Ok(buf.len())
            }
            None => Err(std::io::Error::other("no such connection").into()),
        }
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    /// MUST be a no-op: `turn` calls `close()` on the *listener* conn whenever one
    /// allocation closes (Allocation::close -> turn_socket.close()). Shutdown goes through
    /// the cancellation token instead.
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_reaches_public_peers_only_unless_told() {
        let at = |ip: &str| SocketAddr::new(ip.parse().expect("ip"), 5000);
        let strict = PeerPolicy::default();
        for public in ["198.18.3.1", "203.0.113.9", "2001:db8::1"] {
            assert!(peer_allowed(&at(public), strict), "{public}");
        }
        for inside in [
            "127.0.0.1",
            "10.1.0.2",
            "192.168.1.1",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!peer_allowed(&at(inside), strict), "{inside}");
        }
        let lan = PeerPolicy {
            allow_private: true,
            ..PeerPolicy::default()
        };
        assert!(peer_allowed(&at("10.1.0.2"), lan));
        assert!(!peer_allowed(&at("127.0.0.1"), lan), "loopback stays out");
        assert!(!peer_allowed(&at("224.0.0.1"), lan));
    }

    #[test]
    fn quotas_count_allocations_per_participant_and_in_all() {
        let limits = Limits {
            max_total: 3,
            max_per_user: 2,
            per_user_rate: 0,
            total: Mutex::new(0),
            total_up: Mutex::new(Bucket::new(0)),
            total_down: Mutex::new(Bucket::new(0)),
            users: Mutex::default(),
            counters: Arc::default(),
        };
        assert!(limits.acquire("p1"));
        assert!(limits.acquire("p1"));
        assert!(!limits.acquire("p1"), "two per participant");
        assert!(limits.acquire("p2"));
        assert!(!limits.acquire("p3"), "three in all");
        limits.release("p1");
        assert!(limits.acquire("p3"), "a released slot is free again");
        assert_eq!(
            limits.counters.allocations_refused.load(Ordering::Relaxed),
            2,
            "each refusal counted"
        );
    }

    #[tokio::test]
    async fn stun_requests_are_rate_limited_per_address_and_media_is_not() {
        let udp = PolicedUdp::new(
            UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
            Arc::default(),
        );
        let from: SocketAddr = "198.51.100.7:4000".parse().expect("addr");
        let other: SocketAddr = "198.51.100.8:4000".parse().expect("addr");
        // An Allocate request (type 0x0003) with a 20-byte header.
        let mut allocate = vec![0x00, 0x03, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        allocate.extend([0u8; 12]);
        let admitted = (0..1000).filter(|_| udp.admit(&allocate, from)).count();
        assert!(
            (200..=210).contains(&admitted),
            "a burst of 200, then 50 a second: {admitted} admitted"
        );
        assert_eq!(
            udp.counters.requests_over_rate.load(Ordering::Relaxed),
            1000 - admitted as u64,
            "each request held back counted"
        );
        assert!(
            udp.admit(&allocate, other),
            "another address has its own budget"
        );
        let channel_data = [0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4];
        assert!(
            (0..1000).all(|_| udp.admit(&channel_data, from)),
            "media is never held back here"
        );
        // A Send indication (0x0016) is media too.
        let mut send = vec![0x00, 0x16, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        send.extend([0u8; 12]);
        assert!(udp.admit(&send, from));
    }

    #[test]
    fn bandwidth_is_policed_per_direction() {
        let mut bucket = Bucket::new(100_000);
        let mut passed = 0;
        for _ in 0..1000 {
            if bucket.take(1200) {
                passed += 1200;
            }
        }
        // One second's burst at most, without waiting.
        assert!(passed <= 100_000, "{passed} bytes passed at once");
        assert!(passed >= 90_000, "{passed}");
    }

    /// A TURN client of the `turn` crate allocates a relay on the embedded service and
    /// exchanges datagrams with a peer through it; a second allocation over the
    /// participant's cap is refused. `usage` (what `/metrics` shows) counts each.
    #[tokio::test]
    async fn usage_counts_allocations_refusals_and_relayed_bytes() {
        let secret = "a-secret-of-sixteen-or-more".to_owned();
        let localhost = IpAddr::from([127, 0, 0, 1]);
        let turn = EmbeddedTurn::start(TurnConfig {
            realm: "tandem".into(),
            shared_secret: secret.clone(),
            listen: SocketAddr::new(localhost, 0),
            tls: None,
            relay_bind_ip: localhost,
            relay_public_ip: localhost,
            relay_ports: None,
            max_allocations_total: 10,
            max_allocations_per_user: 1,
            bandwidth_total: 0,
            bandwidth_per_user: 0,
            max_stream_connections: 8,
            peers: PeerPolicy {
                allow_loopback: true,
                allow_private: false,
            },
        })
        .await
        .expect("start");
        assert_eq!(turn.usage(), TurnUsage::default(), "nothing yet");
        let expiry = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 3600;
        let username = format!("{expiry}:7");
        let client = |username: String| {
            let password = crate::turn::shared_secret_credential(&secret, &username);
            let server = turn.listen.to_string();
            async move {
                let conn = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
                let client = turn::client::Client::new(turn::client::ClientConfig {
                    stun_serv_addr: server.clone(),
                    turn_serv_addr: server,
                    username,
                    password,
                    realm: "tandem".into(),
                    software: String::new(),
                    rto_in_ms: 0,
                    conn: Arc::new(conn),
                    vnet: None,
                })
                .await
                .expect("client");
                client.listen().await.expect("listen");
                client
            }
        };
        let first = client(username.clone()).await;
        let relay = tokio::time::timeout(Duration::from_secs(30), first.allocate())
            .await
            .expect("in time")
            .expect("allocated");
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer");
        let peer_addr = peer.local_addr().expect("addr");
        relay
            .send_to(b"to the peer", peer_addr)
            .await
            .expect("sent");
        let mut buf = [0u8; 1500];
        let (n, relay_addr) =
            tokio::time::timeout(Duration::from_secs(30), peer.recv_from(&mut buf))
                .await
                .expect("the peer hears in time")
                .expect("recv");
        assert_eq!(&buf[..n], b"to the peer");
        peer.send_to(b"back to the client", relay_addr)
            .await
            .expect("sent back");
        let (n, _) = tokio::time::timeout(Duration::from_secs(30), relay.recv_from(&mut buf))
            .await
            .expect("the client hears in time")
            .expect("recv");
        assert_eq!(&buf[..n], b"back to the client");

        // The same participant again, over its cap of one: refused.
        let second = client(username).await;
        let refused = tokio::time::timeout(Duration::from_secs(30), second.allocate())
            .await
            .expect("answered in time");
        assert!(refused.is_err(), "a second allocation was granted");

        let usage = turn.usage();
        assert_eq!(usage.allocations, 1, "{usage:?}");
        assert_eq!(usage.allocations_refused, 1, "{usage:?}");
        assert_eq!(
            usage.relayed_to_peer,
            b"to the peer".len() as u64,
            "{usage:?}"
        );
        assert_eq!(
            usage.relayed_to_client,
            b"back to the client".len() as u64,
            "{usage:?}"
        );
        assert_eq!(usage.dropped_over_bandwidth, 0, "{usage:?}");
        first.close().await.expect("close");
        second.close().await.expect("close");
        turn.shutdown().await;
    }

    /// `turn_credential_ttl` sets how long the embedded service's credentials stay valid
    /// (docs/security.md), as it does for an external coturn's.
    #[tokio::test]
    async fn the_credentials_handed_out_live_as_long_as_configured() {
        let dir = tempfile::tempdir().expect("dir");
        let mut config = crate::Config::for_tests(dir.path());
        config.embedded_turn = Some(crate::config::EmbeddedTurnSettings {
            credential_ttl_secs: 600,
            ..crate::config::EmbeddedTurnSettings::for_tests()
        });
        let (turn, ice) = start(&config).await.expect("start").expect("running");
        let servers = ice.for_participant(tandem_protocol::ParticipantId(7), 1_000);
        let turn_entry = servers
            .iter()
            .find(|s| s.urls.iter().any(|u| u.starts_with("turn:")))
            .expect("a TURN entry");
        assert_eq!(turn_entry.username.as_deref(), Some("1600:p7"));
        turn.shutdown().await;
    }
}
