//! Server configuration: command-line flags, then `TANDEM_*` environment variables, then
//! an optional TOML file, then defaults.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;

use crate::acme::AcmeSettings;
use crate::store::{SmtpSettings, TlsMode};
use crate::tls::TlsFiles;
use crate::turn::{IceConfig, TurnAuth};

#[derive(Debug, Parser, Default)]
#[command(
    name = "tandem-signaling",
    version,
    about = "Tandem's signaling server and web console"
)]
pub struct Flags {
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "TANDEM_BIND")]
    pub bind: Option<IpAddr>,
    /// Port to listen on; 0 picks a free one [default: 8080]
    #[arg(long, env = "TANDEM_PORT")]
    pub port: Option<u16>,
    /// Where the database lives [default: ./data]; with --postgres, only what stays on
    /// this machine (the TURN secret, ACME files, recordings)
    #[arg(long, env = "TANDEM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep accounts, settings, history and the audit log in this PostgreSQL database
    /// instead of the embedded SQLite, e.g. postgres://tandem:secret@db.example.com/tandem
    #[arg(long, env = "TANDEM_POSTGRES", hide_env_values = true)]
    pub postgres: Option<String>,
    /// With --postgres: a Redis server the site's servers share counts through, so the
    /// cap on connections per address holds for the whole site, e.g.
    /// redis://:secret@cache.example.com:6379 (rediss:// for TLS)
    #[arg(long, env = "TANDEM_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
    /// With a rediss:// --redis: check Redis's certificate against this CA certificate
    /// (PEM) instead of the system's roots
    #[arg(long, env = "TANDEM_REDIS_CA_CERT")]
    pub redis_ca_cert: Option<PathBuf>,
    /// With a rediss:// --redis: the certificate (PEM, with its chain) this server shows
    /// a Redis that asks its clients for one (tls-auth-clients); with --redis-client-key
    #[arg(long, env = "TANDEM_REDIS_CLIENT_CERT")]
    pub redis_client_cert: Option<PathBuf>,
    /// The private key (PEM) of --redis-client-cert
    #[arg(long, env = "TANDEM_REDIS_CLIENT_KEY")]
    pub redis_client_key: Option<PathBuf>,
    /// With --postgres: the host:port the other servers of the site reach this one at, to
    /// forward what lands on them while this one serves [default: the bind address, or
    /// this machine's host name when bound to every address, and the port]
    #[arg(long, env = "TANDEM_SITE_ADDRESS")]
    pub site_address: Option<String>,
    /// Password for the first admin account, created on first start [default: random, printed]
    #[arg(long, env = "TANDEM_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// The URL people reach this server at, for join links [default: from the request]
    #[arg(long, env = "TANDEM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Seconds a lost connection may take to come back (R2) [default: 30]
    #[arg(long, env = "TANDEM_RECONNECT_GRACE")]
    pub reconnect_grace: Option<u64>,
    /// Mark cookies Secure (set this behind an HTTPS proxy; --tls-cert implies it)
    #[arg(long, env = "TANDEM_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Serve HTTPS with this certificate chain (PEM), re-read when the file changes
    #[arg(long, env = "TANDEM_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert, re-read when the file changes
    #[arg(long, env = "TANDEM_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// With HTTPS: also listen for plain HTTP on this port, redirecting every request
    /// to HTTPS (e.g. 80)
    #[arg(long, env = "TANDEM_HTTP_REDIRECT_PORT")]
    pub http_redirect_port: Option<u16>,
    /// Get the HTTPS certificate for this name automatically over ACME (repeat for
    /// several names); the certificate, key and account live in <data_dir>/acme/
    #[arg(
        long = "acme-domain",
        env = "TANDEM_ACME_DOMAINS",
        value_delimiter = ','
    )]
    pub acme_domains: Vec<String>,
    /// Contact address given to the ACME CA (expiry notices)
    #[arg(long, env = "TANDEM_ACME_EMAIL")]
    pub acme_email: Option<String>,
    /// The ACME CA's directory URL [default: Let's Encrypt production]
    #[arg(long, env = "TANDEM_ACME_DIRECTORY")]
    pub acme_directory: Option<String>,
    /// Check the ACME directory's HTTPS against this CA certificate (PEM) instead of the
    /// system's roots: a test or private CA
    #[arg(long, env = "TANDEM_ACME_CA_CERT")]
    pub acme_ca_cert: Option<PathBuf>,
    /// The tandem-agent binary customers download [default: tandem-agent beside this server]
    #[arg(long, env = "TANDEM_AGENT_BINARY")]
    pub agent_binary: Option<PathBuf>,
    /// The Windows tandem-agent.exe customers download [default: tandem-agent.exe beside
    /// this server, else cargo's ../x86_64-pc-windows-gnu/<profile>/tandem-agent.exe]
    #[arg(long, env = "TANDEM_AGENT_BINARY_WINDOWS")]
    pub agent_binary_windows: Option<PathBuf>,
    /// A STUN or TURN server for WebRTC (repeat for several), e.g. stun:stun.example.com:3478
    #[arg(long = "ice-server", env = "TANDEM_ICE_SERVERS", value_delimiter = ',')]
    pub ice_servers: Vec<String>,
    /// Shared secret of the TURN servers (coturn's `use-auth-secret`): each participant
    /// gets its own short-lived credentials after joining
    #[arg(long, env = "TANDEM_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,
    /// Seconds the TURN credentials handed to a participant stay valid [default: 43200]
    #[arg(long, env = "TANDEM_TURN_CREDENTIAL_TTL")]
    pub turn_credential_ttl: Option<u64>,
    /// A fixed username for TURN servers without `use-auth-secret` (prefer --turn-secret)
    #[arg(long, env = "TANDEM_TURN_USERNAME")]
    pub turn_username: Option<String>,
    /// The fixed credential that goes with --turn-username
    #[arg(long, env = "TANDEM_TURN_CREDENTIAL", hide_env_values = true)]
    pub turn_credential: Option<String>,
    /// Do not run the embedded STUN/TURN service (e.g. when an external coturn is given
    /// with --ice-server and --turn-secret; any turn: URL there turns it off too)
    #[arg(long, env = "TANDEM_NO_EMBEDDED_TURN")]
    pub no_embedded_turn: bool,
    /// Address the embedded STUN/TURN service listens on [default: 0.0.0.0, every
    /// address: it must be reachable by customers even when the web server sits behind a
    /// proxy on 127.0.0.1]
    #[arg(long, env = "TANDEM_TURN_BIND")]
    pub turn_bind: Option<IpAddr>,
    /// UDP and TCP port of the embedded STUN/TURN service [default: 3478]
    #[arg(long, env = "TANDEM_TURN_PORT")]
    pub turn_port: Option<u16>,
    /// TURN over TLS port, served when the server has a certificate [default: 5349]
    #[arg(long, env = "TANDEM_TURN_TLS_PORT")]
    pub turn_tls_port: Option<u16>,
    /// The address relayed media is reached at, as clients see it (behind a 1:1 NAT, the
    /// public address) [default: the bind address, or the address of this machine's
    /// default route when binding to all]
    #[arg(long, env = "TANDEM_TURN_PUBLIC_IP")]
    pub turn_public_ip: Option<IpAddr>,
    /// The UDP ports relayed media uses, as FIRST-LAST [default: 49152-65535]
    #[arg(long, env = "TANDEM_TURN_RELAY_PORTS")]
    pub turn_relay_ports: Option<String>,
    /// Most relay allocations at once [default: 1000]
    #[arg(long, env = "TANDEM_TURN_MAX_ALLOCATIONS")]
    pub turn_max_allocations: Option<usize>,
    /// Most relay allocations one participant holds at once [default: 64]
    #[arg(long, env = "TANDEM_TURN_MAX_ALLOCATIONS_PER_PARTICIPANT")]
    pub turn_max_allocations_per_participant: Option<usize>,
    /// Relayed kbit/s one participant may use, each way [default: 10000]
    #[arg(long, env = "TANDEM_TURN_MAX_KBIT_PER_PARTICIPANT")]
    pub turn_max_kbit_per_participant: Option<u64>,
    /// Relayed kbit/s in all, each way; 0: no cap [default: 500000]
    #[arg(long, env = "TANDEM_TURN_MAX_KBIT_TOTAL")]
    pub turn_max_kbit_total: Option<u64>,
    /// Let the relay reach private and link-local addresses (customers and reps on the
    /// server's own network); off by default so the relay cannot reach inside it
    #[arg(long, env = "TANDEM_TURN_ALLOW_PRIVATE_PEERS")]
    pub turn_allow_private_peers: bool,
    /// Most connections (HTTP and WebSocket) open at once [default: 20000, fewer when the
    /// process may open fewer files]
    #[arg(long, env = "TANDEM_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most connections open at once from one address (IPv6: one /64), with --redis on
    /// all the site's servers together [default: 256]
    #[arg(long, env = "TANDEM_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Recordings stop (and do not start) while the disk holding them has less than this
    /// many MB free [default: 1024]
    #[arg(long, env = "TANDEM_RECORDING_MIN_FREE_MB")]
    pub recording_min_free_mb: Option<u64>,
    /// Mail server for invitations (the admin page can set it too)
    #[arg(long, env = "TANDEM_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// Mail server port [default: 587 with starttls, 465 with tls, 25 with none]
    #[arg(long, env = "TANDEM_SMTP_PORT")]
    pub smtp_port: Option<u16>,
    /// none, starttls or tls [default: starttls]
    #[arg(long, env = "TANDEM_SMTP_TLS")]
    pub smtp_tls: Option<String>,
    #[arg(long, env = "TANDEM_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    #[arg(long, env = "TANDEM_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Sender address, e.g. "Support <support@example.com>"
    #[arg(long, env = "TANDEM_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// A TOML file with any of the settings above (snake_case keys)
    #[arg(long, env = "TANDEM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Bearer token that /metrics asks for (Prometheus `authorization`); without one, and
    /// without --metrics-bind, /metrics answers 404
    #[arg(long, env = "TANDEM_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Serve /metrics on this separate address only (e.g. 127.0.0.1:9090), not on the
    /// main port
    #[arg(long, env = "TANDEM_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// Log as human-readable text or as one JSON object a line [default: text]
    #[arg(long, env = "TANDEM_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// How the server writes its log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    bind: Option<IpAddr>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    postgres: Option<String>,
    redis: Option<String>,
    redis_ca_cert: Option<PathBuf>,
    redis_client_cert: Option<PathBuf>,
    redis_client_key: Option<PathBuf>,
    site_address: Option<String>,
    admin_password: Option<String>,
    public_url: Option<String>,
    reconnect_grace: Option<u64>,
    secure_cookies: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    http_redirect_port: Option<u16>,
    acme_domains: Option<Vec<String>>,
    acme_email: Option<String>,
    acme_directory: Option<String>,
    acme_ca_cert: Option<PathBuf>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    smtp_tls: Option<String>,
    smtp_username: Option<String>,
    smtp_password: Option<String>,
    smtp_from: Option<String>,
    ice_servers: Option<Vec<String>>,
    turn_secret: Option<String>,
    turn_credential_ttl: Option<u64>,
    turn_username: Option<String>,
    turn_credential: Option<String>,
    agent_binary: Option<PathBuf>,
    agent_binary_windows: Option<PathBuf>,
    embedded_turn: Option<bool>,
    turn_bind: Option<IpAddr>,
    turn_port: Option<u16>,
    turn_tls_port: Option<u16>,
    turn_public_ip: Option<IpAddr>,
    turn_relay_ports: Option<String>,
    turn_max_allocations: Option<usize>,
    turn_max_allocations_per_participant: Option<usize>,
    turn_max_kbit_per_participant: Option<u64>,
    turn_max_kbit_total: Option<u64>,
    turn_allow_private_peers: Option<bool>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    recording_min_free_mb: Option<u64>,
    metrics_token: Option<String>,
    metrics_bind: Option<SocketAddr>,
    log_format: Option<LogFormat>,
}

/// The settled configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    /// The PostgreSQL database's URL; none: SQLite in `data_dir`.
    pub postgres: Option<String>,
    /// The Redis server's URL, with several servers: the cap per address is then held
    /// across the site (see `shared`).
    pub redis: Option<String>,
    /// The CA certificate Redis's TLS certificate is checked against (rediss:// only);
    /// none: the system's roots.
    pub redis_ca_cert: Option<PathBuf>,
    /// The certificate and key this server shows a Redis that asks for one (rediss://
    /// only).
    pub redis_client: Option<crate::tls::TlsFiles>,
    /// The host:port the site's other servers reach this one at, if set (see
    /// [`Config::reached_at`] for the default).
    pub site_address: Option<String>,
    /// With several servers on one site: the key their forwarded requests carry (see
    /// `forward`). Not a setting: read from the site's database at start.
    pub site_key: Option<crate::forward::SiteKey>,
    pub admin_password: Option<String>,
    pub public_url: Option<String>,
    pub reconnect_grace_secs: u64,
    /// How long an agent token (and so a download carrying it) can be used: fixed at
    /// [`crate::live::AGENT_TOKEN_LIFETIME`], not a setting; tests shorten it.
    pub agent_token_lifetime: std::time::Duration,
    pub secure_cookies: bool,
    /// Serve HTTPS with these files (then cookies are Secure and HSTS is sent).
    pub tls: Option<TlsFiles>,
    /// Certificates over ACME (then `tls` is the files in `<data_dir>/acme/`).
    pub acme: Option<AcmeSettings>,
    /// With HTTPS: a plain-HTTP port that redirects every request to HTTPS.
    pub http_redirect_port: Option<u16>,
    /// Mail settings from the configuration; the admin page's take precedence.
    pub smtp: Option<SmtpSettings>,
    /// STUN and TURN servers, and how TURN credentials are issued. With the embedded
    /// service, its URLs and secret are added when the server starts.
    pub ice: IceConfig,
    /// The embedded STUN/TURN service, unless turned off or replaced by external TURN.
    pub embedded_turn: Option<EmbeddedTurnSettings>,
    /// Connection caps: in all, and from one address (IPv6: one /64).
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Recordings stop while the disk holding them has less than this free (bytes).
    pub recording_min_free: u64,
    /// The agent binary offered at /download/tandem-agent, if there is one.
    pub agent_binary: Option<PathBuf>,
    /// The Windows agent offered at /download/tandem-agent.exe, if there is one.
    pub agent_binary_windows: Option<PathBuf>,
    /// The bearer token /metrics asks for.
    pub metrics_token: Option<String>,
    /// A separate address serving only /metrics.
    pub metrics_bind: Option<SocketAddr>,
    pub log_format: LogFormat,
}

impl Config {
    pub fn resolve(flags: Flags) -> anyhow::Result<Self> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => File::default(),
        };
        let mut tls = match (
            flags.tls_cert.or(file.tls_cert),
            flags.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => anyhow::bail!("tls_cert and tls_key go together"),
        };
        let data_dir = flags
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let acme_domains = if flags.acme_domains.is_empty() {
            file.acme_domains.unwrap_or_default()
        } else {
            flags.acme_domains
        };
        let acme_domains: Vec<String> = acme_domains
            .iter()
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .collect();
        let acme = if acme_domains.is_empty() {
            None
        } else {
            if tls.is_some() {
                anyhow::bail!(
                    "set either acme_domains (automatic certificates) or tls_cert and tls_key, \
                     not both"
                );
            }
            let settings = AcmeSettings {
                domains: acme_domains,
                email: flags.acme_email.or(file.acme_email),
                directory: flags
                    .acme_directory
                    .or(file.acme_directory)
                    .unwrap_or_else(|| crate::acme::LETS_ENCRYPT.to_owned()),
                ca_cert: flags.acme_ca_cert.or(file.acme_ca_cert),
                dir: data_dir.join("acme"),
            };
            tls = Some(settings.files());
            Some(settings)
        };
        let ice_urls = if flags.ice_servers.is_empty() {
            file.ice_servers.unwrap_or_default()
        } else {
            flags.ice_servers
        };
        let external_turn = ice_urls.iter().any(|u| u.trim().starts_with("turn"));
        // Credentials handed out for TURN, the embedded service's or an external one's.
        let turn_credential_ttl = flags
            .turn_credential_ttl
            .or(file.turn_credential_ttl)
            .unwrap_or(DEFAULT_TURN_CREDENTIAL_TTL_SECS);
        let embedded_turn =
            if flags.no_embedded_turn || !file.embedded_turn.unwrap_or(true) || external_turn {
                None
            } else {
                let relay_ports = match flags.turn_relay_ports.or(file.turn_relay_ports) {
                    None => Some((49152, 65535)),
                    Some(range) => Some(parse_port_range(&range)?),
                };
                Some(EmbeddedTurnSettings {
                    credential_ttl_secs: turn_credential_ttl.max(MIN_TURN_CREDENTIAL_TTL_SECS),
                    bind: flags
                        .turn_bind
                        .or(file.turn_bind)
                        .unwrap_or(IpAddr::from([0, 0, 0, 0])),
                    port: flags.turn_port.or(file.turn_port).unwrap_or(3478),
                    tls_port: flags.turn_tls_port.or(file.turn_tls_port).unwrap_or(5349),
                    public_ip: flags.turn_public_ip.or(file.turn_public_ip),
                    relay_ports,
                    max_allocations: flags
                        .turn_max_allocations
                        .or(file.turn_max_allocations)
                        .unwrap_or(1000),
                    max_allocations_per_participant: flags
                        .turn_max_allocations_per_participant
                        .or(file.turn_max_allocations_per_participant)
                        .unwrap_or(64),
                    max_kbit_per_participant: flags
                        .turn_max_kbit_per_participant
                        .or(file.turn_max_kbit_per_participant)
                        .unwrap_or(10_000),
                    max_kbit_total: flags
                        .turn_max_kbit_total
                        .or(file.turn_max_kbit_total)
                        .unwrap_or(500_000),
                    allow_private_peers: flags.turn_allow_private_peers
                        || file.turn_allow_private_peers.unwrap_or(false),
                    allow_loopback_peers: false,
                })
            };
        let http_redirect_port = flags.http_redirect_port.or(file.http_redirect_port);
        if http_redirect_port.is_some() && tls.is_none() {
            anyhow::bail!("http_redirect_port redirects to HTTPS: it needs tls_cert and tls_key");
        }
        if flags
            .redis
            .as_deref()
            .or(file.redis.as_deref())
            .is_some_and(|url| !url.trim().is_empty())
            && flags
                .postgres
                .as_deref()
                .or(file.postgres.as_deref())
                .is_none_or(|url| url.trim().is_empty())
        {
            anyhow::bail!(
                "redis is shared by the servers of one site, which share a PostgreSQL database: \
                 it needs postgres too"
            );
        }
        let redis_tls = flags
            .redis
            .as_deref()
            .or(file.redis.as_deref())
            .is_some_and(|url| url.trim().starts_with("rediss://"));
        let redis_ca_cert = flags.redis_ca_cert.or(file.redis_ca_cert);
        if redis_ca_cert.is_some() && !redis_tls {
            anyhow::bail!(
                "redis_ca_cert checks Redis's TLS certificate: it needs a rediss:// redis URL"
            );
        }
        let redis_client = match (
            flags.redis_client_cert.or(file.redis_client_cert),
            flags.redis_client_key.or(file.redis_client_key),
        ) {
            (Some(cert), Some(key)) if redis_tls => Some(crate::tls::TlsFiles { cert, key }),
            (Some(_), Some(_)) => anyhow::bail!(
                "redis_client_cert is shown to Redis over TLS: it needs a rediss:// redis URL"
            ),
            (None, None) => None,
            _ => anyhow::bail!("redis_client_cert and redis_client_key go together"),
        };
        Ok(Self {
            bind: flags
                .bind
                .or(file.bind)
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: flags.port.or(file.port).unwrap_or(8080),
            data_dir,
            postgres: flags
                .postgres
                .or(file.postgres)
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty()),
            redis: flags
                .redis
                .or(file.redis)
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty()),
            redis_ca_cert,
            redis_client,
            site_address: site_address(flags.site_address.or(file.site_address))?,
            site_key: None,
            admin_password: flags.admin_password.or(file.admin_password),
            public_url: flags
                .public_url
                .or(file.public_url)
                .map(|u| u.trim_end_matches('/').to_owned()),
            reconnect_grace_secs: flags.reconnect_grace.or(file.reconnect_grace).unwrap_or(30),
            agent_token_lifetime: crate::live::AGENT_TOKEN_LIFETIME,
            secure_cookies: flags.secure_cookies
                || file.secure_cookies.unwrap_or(false)
                || tls.is_some(),
            tls,
            acme,
            http_redirect_port,
            agent_binary: flags
                .agent_binary
                .or(file.agent_binary)
                .or_else(|| linux_agent_near(&std::env::current_exe().ok()?)),
            agent_binary_windows: flags
                .agent_binary_windows
                .or(file.agent_binary_windows)
                .or_else(|| windows_agent_near(&std::env::current_exe().ok()?)),
            embedded_turn,
            ice: ice_config(
                ice_urls,
                TurnSettings {
                    secret: flags.turn_secret.or(file.turn_secret),
                    ttl_secs: turn_credential_ttl,
                    username: flags.turn_username.or(file.turn_username),
                    credential: flags.turn_credential.or(file.turn_credential),
                },
            )?,
            max_connections: flags
                .max_connections
                .or(file.max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS),
            max_connections_per_address: flags
                .max_connections_per_address
                .or(file.max_connections_per_address)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
            recording_min_free: flags
                .recording_min_free_mb
                .or(file.recording_min_free_mb)
                .unwrap_or(DEFAULT_RECORDING_MIN_FREE_MB)
                .saturating_mul(1 << 20),
            smtp: smtp(
                flags.smtp_host.or(file.smtp_host),
                flags.smtp_port.or(file.smtp_port),
                flags.smtp_tls.or(file.smtp_tls),
                flags.smtp_username.or(file.smtp_username),
                flags.smtp_password.or(file.smtp_password),
                flags.smtp_from.or(file.smtp_from),
            )?,
            metrics_token: flags
                .metrics_token
                .or(file.metrics_token)
                .filter(|t| !t.is_empty()),
            metrics_bind: flags.metrics_bind.or(file.metrics_bind),
            log_format: flags.log_format.or(file.log_format).unwrap_or_default(),
        })
    }

    /// The log format alone, before the rest is resolved (logging starts first). A file
    /// that cannot be read is reported by [`Config::resolve`] afterwards.
    pub fn log_format(flags: &Flags) -> LogFormat {
        flags
            .log_format
            .or_else(|| {
                let path = flags.config.as_ref()?;
                read_file(path).ok()?.log_format
            })
            .unwrap_or_default()
    }

    /// Defaults for tests: a given data directory, port 0.
    pub fn for_tests(data_dir: &Path) -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            data_dir: data_dir.to_owned(),
            postgres: None,
            redis: None,
            redis_ca_cert: None,
            redis_client: None,
            site_address: None,
            site_key: None,
            admin_password: Some("admin-password".into()),
            public_url: None,
            reconnect_grace_secs: 30,
            agent_token_lifetime: crate::live::AGENT_TOKEN_LIFETIME,
            secure_cookies: false,
            tls: None,
            acme: None,
            http_redirect_port: None,
            smtp: None,
            ice: IceConfig::default(),
            // Tests that want relays (the network-namespace ones) turn it on.
            embedded_turn: None,
            agent_binary: None,
            agent_binary_windows: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            recording_min_free: DEFAULT_RECORDING_MIN_FREE_MB << 20,
            metrics_token: None,
            metrics_bind: None,
            log_format: LogFormat::Text,
        }
    }
}

/// `--site-address`, checked: a host (or bracketed IPv6 address) and a port.
fn site_address(raw: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(address) = raw.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let port = address
        .rsplit_once(':')
        .map(|(host, port)| (host, port.parse::<u16>()));
    match port {
        Some((host, Ok(port))) if !host.is_empty() && port != 0 && !host.contains('/') => {
            Ok(Some(address))
        }
        _ => anyhow::bail!(
            "site_address is the host:port the site's other servers reach this one at \
             (e.g. 10.0.0.11:8080), not {address:?}"
        ),
    }
}

impl Config {
    /// The host name the site's servers expect on each other's certificates when they
    /// speak HTTPS themselves: the public URL's host, else the first ACME domain; none
    /// when neither is set (then the host of the serving server's site address).
    pub fn site_name(&self) -> Option<String> {
        let from_url = self.public_url.as_deref().and_then(|url| {
            let uri = url.parse::<axum::http::Uri>().ok()?;
            let host = uri.host()?;
            // An IPv6 address comes bracketed.
            Some(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
            )
        });
        from_url.or_else(|| self.acme.as_ref()?.domains.first().cloned())
    }

    /// The host:port the site's other servers reach this one at: `--site-address`, or the
    /// bind address and port, or this machine's host name when bound to every address.
    pub fn reached_at(&self, port: u16) -> String {
        if let Some(address) = &self.site_address {
            return address.clone();
        }
        match self.bind {
            IpAddr::V4(ip) if !ip.is_unspecified() => format!("{ip}:{port}"),
            IpAddr::V6(ip) if !ip.is_unspecified() => format!("[{ip}]:{port}"),
            _ => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|name| name.trim().to_owned())
                    .unwrap_or_else(|_| "localhost".to_owned());
                format!("{host}:{port}")
            }
        }
    }

    /// Does this server speak HTTPS itself?
    pub fn serves_https(&self) -> bool {
        self.tls.is_some()
    }

    /// Are cookies marked Secure: when asked to (behind an HTTPS proxy), and always over
    /// HTTPS.
    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies || self.serves_https()
    }
}

pub const DEFAULT_TURN_CREDENTIAL_TTL_SECS: u64 = 12 * 60 * 60;
/// Shorter lifetimes are raised to this: a participant must have time to use them.
pub const MIN_TURN_CREDENTIAL_TTL_SECS: u64 = 60;
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
pub const DEFAULT_RECORDING_MIN_FREE_MB: u64 = 1024;

/// The embedded STUN/TURN service's settings (see `crate::turn_server`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedTurnSettings {
    pub bind: IpAddr,
    /// UDP and TCP; 0 picks a free port (tests).
    pub port: u16,
    /// TURN over TLS, with the server's certificate; 0 picks a free port.
    pub tls_port: u16,
    pub public_ip: Option<IpAddr>,
    pub relay_ports: Option<(u16, u16)>,
    pub max_allocations: usize,
    pub max_allocations_per_participant: usize,
    pub max_kbit_per_participant: u64,
    pub max_kbit_total: u64,
    pub allow_private_peers: bool,
    /// Tests on one machine only.
    pub allow_loopback_peers: bool,
    /// How long the credentials participants get for it stay valid (`turn_credential_ttl`).
    pub credential_ttl_secs: u64,
}

impl EmbeddedTurnSettings {
    /// Settings for tests: free ports, the defaults otherwise.
    pub fn for_tests() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            tls_port: 0,
            public_ip: None,
            relay_ports: None,
            max_allocations: 1000,
            max_allocations_per_participant: 64,
            max_kbit_per_participant: 10_000,
            max_kbit_total: 500_000,
            allow_private_peers: false,
            credential_ttl_secs: DEFAULT_TURN_CREDENTIAL_TTL_SECS,
            allow_loopback_peers: false,
        }
    }
}

/// The Linux agent beside the server binary (`cargo xtask run` builds both there).
fn linux_agent_near(server: &Path) -> Option<PathBuf> {
    let beside = server.with_file_name("tandem-agent");
    beside.is_file().then_some(beside)
}

/// The Windows agent beside the server binary (a release directory), else where cargo puts
/// a cross-build next to this one: target/debug/tandem-signaling ->
/// target/x86_64-pc-windows-gnu/debug/tandem-agent.exe.
fn windows_agent_near(server: &Path) -> Option<PathBuf> {
    const NAME: &str = "tandem-agent.exe";
    let beside = server.with_file_name(NAME);
    if beside.is_file() {
        return Some(beside);
    }
    let dir = server.parent()?;
    let cross = dir
        .parent()?
        .join("x86_64-pc-windows-gnu")
        .join(dir.file_name()?)
        .join(NAME);
    cross.is_file().then_some(cross)
}

fn parse_port_range(range: &str) -> anyhow::Result<(u16, u16)> {
    let parsed = range
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)));
    match parsed {
        // At least two ports: a client asking for an even port must be able to get one.
        Some((first, last)) if first > 0 && first < last => Ok((first, last)),
        _ => anyhow::bail!(
            "turn_relay_ports is FIRST-LAST with at least two ports, e.g. 49152-65535, not \
             {range:?}"
        ),
    }
}

struct TurnSettings {
    secret: Option<String>,
    ttl_secs: u64,
    username: Option<String>,
    credential: Option<String>,
}

fn ice_config(urls: Vec<String>, turn: TurnSettings) -> anyhow::Result<IceConfig> {
    let urls = urls
        .into_iter()
        .map(|url| {
            let url = url.trim().to_owned();
            let known = ["stun:", "stuns:", "turn:", "turns:"];
            if !known.iter().any(|scheme| url.starts_with(scheme)) {
                anyhow::bail!("an ICE server is a stun: or turn: URL, not {url:?}");
            }
            Ok(url)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let auth = match (turn.secret, turn.username, turn.credential) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => anyhow::bail!(
            "set either turn_secret (per-participant credentials) or turn_username and \
             turn_credential (one fixed credential), not both"
        ),
        (Some(secret), None, None) if secret.len() < 16 => {
            anyhow::bail!("turn_secret needs at least 16 characters")
        }
        (Some(secret), None, None) => TurnAuth::SharedSecret {
            secret,
            ttl_secs: turn.ttl_secs.max(MIN_TURN_CREDENTIAL_TTL_SECS),
        },
        (None, Some(username), Some(credential)) => TurnAuth::Static {
            username,
            credential,
        },
        (None, Some(_), None) | (None, None, Some(_)) => {
            anyhow::bail!("turn_username and turn_credential go together")
        }
        (None, None, None) => TurnAuth::None,
    };
    Ok(IceConfig { urls, auth })
}

fn smtp(
    host: Option<String>,
    port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    password: Option<String>,
    from: Option<String>,
) -> anyhow::Result<Option<SmtpSettings>> {
    let Some(host) = host else {
        return Ok(None);
    };
    let tls = match tls.as_deref().unwrap_or("starttls") {
        "none" => TlsMode::None,
        "starttls" => TlsMode::Starttls,
        "tls" => TlsMode::Tls,
        other => anyhow::bail!("smtp_tls must be none, starttls or tls, not {other:?}"),
    };
    let port = port.unwrap_or(match tls {
        TlsMode::None => 25,
        TlsMode::Starttls => 587,
        TlsMode::Tls => 465,
    });
    let from = from.with_context(|| "smtp_from (the sender address) is needed with smtp_host")?;
    Ok(Some(SmtpSettings {
        host,
        port,
        tls,
        username,
        password,
        from,
    }))
}

fn read_file(path: &Path) -> anyhow::Result<File> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("the config file {} is invalid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tandem.toml");
        std::fs::write(
            &path,
            "port = 9000\nbind = \"0.0.0.0\"\nreconnect_grace = 5\n",
        )
        .expect("write");
        let flags = Flags {
            port: Some(7000),
            config: Some(path),
            ..Flags::default()
        };
        let c = Config::resolve(flags).expect("config");
        assert_eq!(c.port, 7000);
        assert_eq!(c.bind.to_string(), "0.0.0.0");
        assert_eq!(c.reconnect_grace_secs, 5);
        assert_eq!(c.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn the_turn_credential_lifetime_reaches_the_embedded_service_and_is_at_least_a_minute() {
        let ttl = |ttl: Option<u64>| {
            let flags = Flags {
                turn_credential_ttl: ttl,
                ..Flags::default()
            };
            Config::resolve(flags)
                .expect("config")
                .embedded_turn
                .expect("embedded TURN by default")
                .credential_ttl_secs
        };
        assert_eq!(ttl(None), DEFAULT_TURN_CREDENTIAL_TTL_SECS);
        assert_eq!(ttl(Some(600)), 600);
        assert_eq!(ttl(Some(5)), MIN_TURN_CREDENTIAL_TTL_SECS);
    }

    #[test]
    fn ice_servers_are_stun_or_turn_urls_and_turn_gets_the_credentials() {
        let flags = Flags {
            ice_servers: vec![
                "stun:stun.example.com:3478".into(),
                "turn:t.example.com".into(),
            ],
            turn_username: Some("u".into()),
            turn_credential: Some("p".into()),
            ..Flags::default()
        };
        let c = Config::resolve(flags).expect("config");
        assert_eq!(c.ice.urls.len(), 2);
        assert_eq!(c.ice.public().len(), 1, "only STUN is public");
        let mine = c.ice.for_participant(tandem_protocol::ParticipantId(3), 0);
        assert_eq!(mine[1].credential.as_deref(), Some("p"));
        let both = Flags {
            ice_servers: vec!["turn:t.example.com".into()],
            turn_username: Some("u".into()),
            turn_credential: Some("p".into()),
            turn_secret: Some("0123456789abcdef".into()),
            ..Flags::default()
        };
        let err = Config::resolve(both).expect_err("two schemes");
        assert!(err.to_string().contains("not both"), "{err}");
        let bad = Flags {
            ice_servers: vec!["http://example.com".into()],
            ..Flags::default()
        };
        let err = Config::resolve(bad).expect_err("not ICE");
        assert!(err.to_string().contains("stun: or turn:"), "{err}");
    }

    #[test]
    fn tls_files_come_as_a_pair_and_imply_secure_cookies() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tandem.toml");
        std::fs::write(
            &path,
            "tls_cert = \"/etc/tandem/cert.pem\"\nhttp_redirect_port = 80\n",
        )
        .expect("write");
        let flags = Flags {
            tls_key: Some("/etc/tandem/key.pem".into()),
            config: Some(path),
            ..Flags::default()
        };
        let c = Config::resolve(flags).expect("config");
        let files = c.tls.as_ref().expect("tls");
        assert_eq!(files.cert, PathBuf::from("/etc/tandem/cert.pem"));
        assert_eq!(files.key, PathBuf::from("/etc/tandem/key.pem"));
        assert_eq!(c.http_redirect_port, Some(80));
        assert!(c.secure_cookies && c.cookies_secure() && c.serves_https());
        let half = Flags {
            tls_cert: Some("cert.pem".into()),
            ..Flags::default()
        };
        let err = Config::resolve(half).expect_err("no key");
        assert!(err.to_string().contains("go together"), "{err}");
        let redirect_only = Flags {
            http_redirect_port: Some(80),
            ..Flags::default()
        };
        let err = Config::resolve(redirect_only).expect_err("no https");
        assert!(err.to_string().contains("needs tls_cert"), "{err}");
    }

    #[test]
    fn redis_comes_with_postgres() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tandem.toml");
        std::fs::write(&path, "redis = \"redis://cache:6379\"\n").expect("write");
        let alone = Flags {
            config: Some(path.clone()),
            ..Flags::default()
        };
        let err = Config::resolve(alone).expect_err("redis without postgres");
        assert!(err.to_string().contains("needs postgres too"), "{err}");
        let both = Flags {
            config: Some(path),
            postgres: Some("postgres://db/tandem".into()),
            ..Flags::default()
        };
        let c = Config::resolve(both).expect("config");
        assert_eq!(c.redis.as_deref(), Some("redis://cache:6379"));
        let flag = Flags {
            redis: Some(" redis://other:6380 ".into()),
            postgres: Some("postgres://db/tandem".into()),
            ..Flags::default()
        };
        let c = Config::resolve(flag).expect("config");
        assert_eq!(c.redis.as_deref(), Some("redis://other:6380"));
        // A CA certificate for Redis's TLS needs a rediss:// URL.
        let plain = Flags {
            redis: Some("redis://other:6380".into()),
            redis_ca_cert: Some("/etc/tandem/redis-ca.pem".into()),
            postgres: Some("postgres://db/tandem".into()),
            ..Flags::default()
        };
        let err = Config::resolve(plain).expect_err("a CA for plain TCP");
        assert!(
            err.to_string().contains("needs a rediss:// redis URL"),
            "{err}"
        );
        let tls = Flags {
            redis: Some("rediss://other:6380".into()),
            redis_ca_cert: Some("/etc/tandem/redis-ca.pem".into()),
            postgres: Some("postgres://db/tandem".into()),
            ..Flags::default()
        };
        let c = Config::resolve(tls).expect("config");
        assert_eq!(
            c.redis_ca_cert.as_deref(),
            Some(std::path::Path::new("/etc/tandem/redis-ca.pem"))
        );
        // A client certificate: with its key, over TLS.
        let client = |url: &str, key: Option<&str>| Flags {
            redis: Some(url.into()),
            redis_client_cert: Some("/etc/tandem/redis-client.pem".into()),
            redis_client_key: key.map(Into::into),
            postgres: Some("postgres://db/tandem".into()),
            ..Flags::default()
        };
        let c = Config::resolve(client("rediss://other:6380", Some("/etc/tandem/k.pem")))
            .expect("config");
        let files = c.redis_client.expect("client certificate");
        assert_eq!(files.key, std::path::Path::new("/etc/tandem/k.pem"));
        let err = Config::resolve(client("rediss://other:6380", None)).expect_err("no key");
        assert!(err.to_string().contains("go together"), "{err}");
        let err = Config::resolve(client("redis://other:6380", Some("/etc/tandem/k.pem")))
            .expect_err("a client certificate over plain TCP");
        assert!(err.to_string().contains("needs a rediss://"), "{err}");
    }

    #[test]
    fn metrics_and_log_settings_come_from_flags_or_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tandem.toml");
        std::fs::write(
            &path,
            "metrics_token = \"t0k3n\"\nmetrics_bind = \"127.0.0.1:9090\"\nlog_format = \"json\"\n",
        )
        .expect("write");
        let flags = Flags {
            config: Some(path.clone()),
            ..Flags::default()
        };
        assert_eq!(Config::log_format(&flags), LogFormat::Json);
        let c = Config::resolve(flags).expect("config");
        assert_eq!(c.metrics_token.as_deref(), Some("t0k3n"));
        assert_eq!(c.metrics_bind.map(|a| a.port()), Some(9090));
        assert_eq!(c.log_format, LogFormat::Json);
        let flags = Flags {
            config: Some(path),
            log_format: Some(LogFormat::Text),
            metrics_token: Some(String::new()),
            ..Flags::default()
        };
        assert_eq!(Config::log_format(&flags), LogFormat::Text);
        let c = Config::resolve(flags).expect("config");
        assert_eq!(c.metrics_token, None, "an empty token is no token");
        assert_eq!(Config::log_format(&Flags::default()), LogFormat::Text);
    }

    #[test]
    fn the_windows_agent_comes_from_flags_or_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tandem.toml");
        std::fs::write(&path, "agent_binary_windows = \"/srv/tandem-agent.exe\"\n").expect("write");
        let from_file = Flags {
            config: Some(path.clone()),
            ..Flags::default()
        };
        let c = Config::resolve(from_file).expect("config");
        assert_eq!(
            c.agent_binary_windows,
            Some(PathBuf::from("/srv/tandem-agent.exe"))
        );
        let flag_wins = Flags {
            config: Some(path),
            agent_binary_windows: Some("/opt/agent.exe".into()),
            ..Flags::default()
        };
        let c = Config::resolve(flag_wins).expect("config");
        assert_eq!(
            c.agent_binary_windows,
            Some(PathBuf::from("/opt/agent.exe"))
        );
    }

    #[test]
    fn the_default_windows_agent_is_beside_the_server_else_in_cargos_cross_target() {
        let dir = tempfile::tempdir().expect("dir");
        let target = dir.path().join("target");
        let server = target.join("debug").join("tandem-signaling");
        std::fs::create_dir_all(server.parent().expect("dir")).expect("mkdir");
        assert_eq!(windows_agent_near(&server), None, "only a file that exists");

        let cross = target
            .join("x86_64-pc-windows-gnu")
            .join("debug")
            .join("tandem-agent.exe");
        std::fs::create_dir_all(cross.parent().expect("dir")).expect("mkdir");
        std::fs::write(&cross, b"MZ").expect("write");
        assert_eq!(windows_agent_near(&server), Some(cross.clone()));
        let release = target.join("release").join("tandem-signaling");
        assert_eq!(windows_agent_near(&release), None, "the same profile only");

        let beside = target.join("debug").join("tandem-agent.exe");
        std::fs::write(&beside, b"MZ").expect("write");
        assert_eq!(
            windows_agent_near(&server),
            Some(beside),
            "beside comes first"
        );
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tandem.toml");
        std::fs::write(&path, "prot = 9000\n").expect("write");
        let flags = Flags {
            config: Some(path),
            ..Flags::default()
        };
        let err = Config::resolve(flags).expect_err("typo");
        assert!(format!("{err:#}").contains("prot"), "{err:#}");
    }
}
