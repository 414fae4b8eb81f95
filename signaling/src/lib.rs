//! `tandem-signaling`: accounts, live support sessions, the WebSocket relay and the web
//! console. `app(state)` builds the router; `run(listener, state, shutdown)` serves it, so
//! tests bind port 0 and run the same server as `main`.

pub mod acme;
pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod forward;
pub mod health;
pub mod limits;
pub mod live;
pub mod lockout;
pub mod mail;
pub mod mailer;
pub mod outbound;
pub mod pages;
pub mod recorder;
pub mod redirect;
pub mod serve;
pub mod shared;
pub mod site;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod turn;
pub mod turn_server;
pub mod ws;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tower_http::set_header::SetResponseHeaderLayer;

pub use config::{Config, Flags};

use crate::live::{Registry, StoreJob};
use crate::store::{NewAccount, PostgresStore, SqliteStore, Store};

/// Everything a request handler may need.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub limits: limits::Limits,
    pub lockout: lockout::LoginGuard,
    /// Open connections, in all and by address.
    pub caps: Arc<serve::ConnectionCaps>,
    pub config: Arc<Config>,
    /// Metrics and readiness.
    pub telemetry: Arc<telemetry::Telemetry>,
    /// The embedded STUN/TURN service, when it runs.
    pub turn: Option<Arc<turn_server::EmbeddedTurn>>,
    /// Session recordings: their folder and rows.
    pub recordings: recorder::Recordings,
    store_jobs: mpsc::UnboundedSender<StoreJob>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// Where people reach this server: the configured public URL, or the request's host.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.config.public_url {
            return url.clone();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let scheme = if self.config.serves_https() || self.config.secure_cookies {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{host}")
    }

    /// Give the registry the current WebACD agents and queues (at start, and after the
    /// admin changes either).
    pub async fn refresh_directory(&self) -> Result<(), store::StoreError> {
        let accounts = self.store.accounts().await?;
        let queues = self.store.queues().await?;
        self.registry.set_directory(accounts, queues);
        Ok(())
    }

    /// Put an administrator's change or a login in the audit log (C3), by `actor` (their
    /// `Display Name (username)`). It goes to the store behind every record already on its
    /// way there (a session's records reach that queue once the journal has them: wait for
    /// `registry.written()` first to come after them), and waits, tried again every second,
    /// while the store refuses. Like a session's records, it is held in the journal's outbox
    /// (`live.db`, or the site's database) until the store has it, so a crash does not lose
    /// it; only one not yet handed from this call to the store writer is.
    pub fn site_audit(&self, actor: Option<&store::Account>, action: store::SiteAction) {
        let record = store::SiteAuditRecord {
            at: u64::try_from(clock::now_millis()).unwrap_or(0),
            actor: actor.map(|a| format!("{} ({})", a.display_name, a.username)),
            action,
        };
        let job = StoreJob::SiteAudit { record, held: None };
        if self.store_jobs.send(job).is_err() {
            tracing::error!("the store writer stopped: a site audit record is not stored");
        }
    }

    /// Wait until every audit record and session row produced so far is stored.
    pub async fn flush(&self) {
        // Audit records reach the store once the journal has them.
        if tokio::time::timeout(Duration::from_secs(10), self.registry.written())
            .await
            .is_err()
        {
            tracing::warn!("the live sessions' last changes were not all written in time");
        }
        let (done, wait) = oneshot::channel();
        if self.store_jobs.send(StoreJob::Flush(done)).is_ok() && wait.await.is_err() {
            tracing::warn!("the store writer stopped before the flush");
        }
    }
}

/// The first admin's login, when this start created it.
#[derive(Debug, Clone)]
pub struct AdminLogin {
    pub username: String,
    pub password: String,
}

/// Hold the data directory for this process alone: a second server (or `end-sessions`)
/// on the same directory would rebuild, change or end the live sessions this one runs.
/// The lock lasts as long as the returned file is open, and goes with the process.
pub fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create the data directory {}", dir.display()))?;
    let path = dir.join("tandem.lock");
    let file = std::fs::File::create(&path)
        .with_context(|| format!("could not open {}", path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => anyhow::bail!(
            "another tandem-signaling is using the data directory {} (stop it first)",
            dir.display()
        ),
        Err(e) => Err(std::io::Error::from(e))
            .with_context(|| format!("could not lock {}", path.display())),
    }
}

fn create_data_dir(config: &Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "could not create the data directory {}",
            config.data_dir.display()
        )
    })
}

/// Open the store, create the first admin if there is none, and wire the registry.
pub async fn build(config: Config) -> anyhow::Result<(AppState, Option<AdminLogin>)> {
    create_data_dir(&config)?;
    let journal = live::SqliteJournal::open(&config.data_dir.join(live::JOURNAL_FILE))?;
    build_with_journal(config, Arc::new(journal)).await
}

/// Move what an earlier release kept in this data directory's `live.db` beside a
/// PostgreSQL store (live sessions, held audit records) into the site's journal, so an
/// upgrade ends no session and loses no record; `live.db` is then renamed
/// `live.db.imported`. Nothing to do without one.
pub fn import_local_journal(config: &Config, site: &dyn live::Journal) -> anyhow::Result<()> {
    let path = config.data_dir.join(live::JOURNAL_FILE);
    if !path.is_file() {
        return Ok(());
    }
    let local = live::SqliteJournal::open(&path)?;
    use live::Journal as _;
    let (sessions, held) = (local.load()?, local.held_audit()?);
    let records: Vec<String> = held.into_iter().map(|(_, json)| json).collect();
    site.save_and_hold(None, &records)?;
    for (number, state) in &sessions {
        site.save(number, state, clock::now_millis())?;
    }
    drop(local);
    let moved = path.with_extension("db.imported");
    std::fs::rename(&path, &moved)
        .with_context(|| format!("could not rename {} after importing it", path.display()))?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    tracing::info!(
        sessions = sessions.len(),
        records = records.len(),
        "moved {} into PostgreSQL (kept as {})",
        path.display(),
        moved.display()
    );
    Ok(())
}

/// [`build`] with live sessions kept in `journal` (with PostgreSQL, the site's, written
/// over the site lease: [`site::SiteJournal`]).
pub async fn build_with_journal(
    config: Config,
    journal: Arc<dyn live::Journal>,
) -> anyhow::Result<(AppState, Option<AdminLogin>)> {
    create_data_dir(&config)?;
    let store = open_store(&config).await?;
    build_with_store(config, store, Some(journal)).await
}

/// The store the configuration names: PostgreSQL at `postgres`, else SQLite's
/// `tandem.db` in the data directory. Migrations run on open.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &config.postgres {
        Some(url) => Arc::new(PostgresStore::connect(url).await.with_context(|| {
            format!("could not open the PostgreSQL database {}", redacted(url))
        })?),
        None => {
            let path = config.data_dir.join("tandem.db");
            Arc::new(
                SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("could not open the database {}", path.display()))?,
            )
        }
    })
}

/// A database URL fit for a log or an error message: without its password (nor any
/// parameters, which may hold one). A password may hold `?`, `/` or `@` unencoded: the
/// credentials are everything before the last `@`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_owned();
    };
    // An `@` after the `?` belongs to the parameters (`?user=a@b`): cut them first.
    let rest = match rest.rsplit_once('@') {
        Some((_, after)) if after.contains('=') || after.contains('&') => {
            rest.split('?').next().unwrap_or_default()
        }
        _ => rest,
    };
    let (user, host) = match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            (format!("{user}@"), host)
        }
        None => (String::new(), rest),
    };
    let host = host.split('?').next().unwrap_or_default();
    format!("{scheme}://{user}{host}")
}

/// `journal`: where live sessions are kept for a restart (none: a restart ends them).
pub async fn build_with_store(
    config: Config,
    store: Arc<dyn Store>,
    journal: Option<Arc<dyn live::Journal>>,
) -> anyhow::Result<(AppState, Option<AdminLogin>)> {
    let telemetry = telemetry::Telemetry::new();
    let store: Arc<dyn Store> = Arc::new(store::TimedStore::new(store, telemetry.clone()));
    let journal: Option<Arc<dyn live::Journal>> = journal.map(|inner| {
        let timing = telemetry.clone();
        Arc::new(live::Timed {
            inner,
            record: Box::new(move |op, took| timing.store_call(op, took)),
        }) as Arc<dyn live::Journal>
    });
    // What a server that stopped suddenly held for the store goes in first; what the
    // store will not take now waits at the head of the writer's backlog.
    let mut backlog = Backlog::default();
    if let Some(journal) = &journal
        && let Err(e) = live::store_held_audit(store.as_ref(), journal.as_ref()).await
    {
        tracing::error!("{e:#}; they are tried again before anything newer");
        for (id, json) in journal.held_audit()? {
            if let Ok(record) = live::HeldRecord::parse(&json) {
                backlog.waiting.push_back((record, Some(id)));
            }
        }
        backlog.retry_at = Some(tokio::time::Instant::now());
    }
    let keep: Vec<String> = match &journal {
        Some(journal) => journal
            .load()?
            .into_iter()
            .map(|(number, _)| number)
            .collect(),
        None => Vec::new(),
    };
    let ended = store
        .end_unfinished_sessions(clock::now_millis(), &keep)
        .await?;
    if ended > 0 {
        tracing::info!("{ended} session(s) were live when the server last stopped; marked ended");
    }
    let admin = first_admin(&config, store.as_ref()).await?;

    // Registry jobs and flush requests go through one ordered queue: first through a
    // thread that holds the audit records not held yet in the journal's outbox (the site's
    // own, a recording's deletion) as they come, never waiting on the store, then to the
    // writer, which may wait on it.
    let (jobs_tx, mut hold_rx) = mpsc::unbounded_channel::<StoreJob>();
    let (held_tx, mut writer_rx) = mpsc::unbounded_channel::<StoreJob>();
    let hold_journal = journal.clone();
    std::thread::Builder::new()
        .name("audit-hold".into())
        .spawn(move || {
            while let Some(job) = hold_rx.blocking_recv() {
                if held_tx
                    .send(hold_job(hold_journal.as_deref(), job))
                    .is_err()
                {
                    break;
                }
            }
        })
        .context("could not start the audit records' holding thread")?;
    let writer_tx = jobs_tx.clone();
    let writer_store = store.clone();
    let writer_journal = journal.clone();
    tokio::spawn(async move {
        let (store, journal) = (writer_store.as_ref(), writer_journal.as_deref());
        loop {
            let item = match backlog.retry_at {
                None => writer_rx.recv().await,
                Some(at) => tokio::select! {
                    item = writer_rx.recv() => item,
                    () = tokio::time::sleep_until(at) => {
                        backlog.drain(store, journal).await;
                        continue;
                    }
                },
            };
            let Some(item) = item else { break };
            match item {
                StoreJob::Flush(done) => {
                    // One try even while refusing: a flush comes before a stop.
                    backlog.drain(store, journal).await;
                    backlog.report_waiting();
                    let _ = done.send(()); // the waiter may have given up; nothing to do
                }
                job => write(store, journal, &mut backlog, job).await,
            }
        }
    });

    let (turn, ice) = match turn_server::start(&config).await? {
        Some((turn, ice)) => (Some(Arc::new(turn)), ice),
        None => (None, config.ice.clone()),
    };
    let (mail_tx, mail_rx) = mpsc::unbounded_channel();
    let registry = Registry::new(
        jobs_tx,
        mail_tx,
        config.reconnect_grace_secs * 1000,
        ice,
        config.agent_token_lifetime,
        journal,
    );
    mailer::spawn(
        mail_rx,
        store.clone(),
        Arc::downgrade(&registry),
        config.smtp.clone(),
    );
    let recordings = recorder::Recordings::open(
        config.data_dir.join("recordings"),
        store.clone(),
        writer_tx.clone(),
    )
    .await?
    .keeping_free(config.recording_min_free);
    registry.set_recorder_host(Arc::new(recordings.clone()));
    let swept = recordings.clone();
    let sweep_store = store.clone();
    tokio::spawn(async move {
        // Recordings past the admin's retention go: at the start, then every hour.
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let days = match sweep_store.settings().await {
                Ok(settings) => settings.recording_retention_days,
                Err(e) => {
                    tracing::warn!("recordings not swept: the settings could not be read: {e}");
                    continue;
                }
            };
            match swept.sweep(days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("{n} recording(s) older than {days} days deleted"),
                Err(e) => tracing::error!("recordings could not be swept: {e:#}"),
            }
        }
    });
    let limits = limits::Limits::default();
    let pruned = limits.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            pruned.prune();
        }
    });
    let state = AppState {
        store,
        registry,
        limits,
        lockout: lockout::LoginGuard::default(),
        caps: serve::ConnectionCaps::new(
            serve::raise_file_limit(config.max_connections, 1),
            config.max_connections_per_address,
        ),
        config: Arc::new(config),
        telemetry,
        turn,
        recordings,
        store_jobs: writer_tx,
    };
    state.refresh_directory().await?;
    let restored = state.registry.restore();
    if restored > 0 {
        tracing::info!("{restored} live session(s) carried on from before the restart");
    }
    Ok((state, admin))
}

/// Audit records the store has not taken yet, oldest first. Each new record waits behind
/// them, so the log keeps its order through a store that refuses for a while (a locked
/// file, a database restarting); they are tried again every second, and meanwhile new
/// records only queue (each try may wait out the store's own timeout). Held ones are in
/// the journal meanwhile, so a crash loses none of them either. A record the store refuses
/// for good (a constraint, corrupt data) is logged in full and passed over, so that it
/// cannot hold back every later one.
#[derive(Default)]
struct Backlog {
    waiting: VecDeque<(live::HeldRecord, Option<i64>)>,
    /// While the store refuses: when to try again.
    retry_at: Option<tokio::time::Instant>,
}

impl Backlog {
    const RETRY: Duration = Duration::from_secs(1);

    /// Queue a record, and store what waits unless the store is refusing.
    async fn push(
        &mut self,
        record: live::HeldRecord,
        held: Option<i64>,
        store: &dyn Store,
        journal: Option<&dyn live::Journal>,
    ) {
        self.waiting.push_back((record, held));
        if self.retry_at.is_none() {
            self.drain(store, journal).await;
        }
    }

    async fn drain(&mut self, store: &dyn Store, journal: Option<&dyn live::Journal>) {
        loop {
            if journal.is_some_and(|j| j.fenced()) {
                self.leave_held_to_successor();
            }
            let Some((record, held)) = self.waiting.front() else {
                // Nothing waits: nothing to try again.
                self.retry_at = None;
                return;
            };
            match record.append(store).await {
                Ok(()) => {
                    if let (Some(id), Some(journal)) = (held, journal)
                        && let Err(e) = journal.audit_stored(*id)
                    {
                        // Stored twice after a restart, rather than lost.
                        tracing::warn!("could not release a held audit record: {e:#}");
                    }
                    if self.retry_at.take().is_some() {
                        tracing::info!("the store takes audit records again");
                    }
                }
                Err(e) if refused_for_good(&e) => {
                    let json = record.to_json();
                    tracing::error!(
                        record = %json,
                        "the store refuses this audit record for good ({e}); passed over \
                         (a held one stays in the journal's outbox)"
                    );
                }
                Err(e) => {
                    if self.retry_at.is_none() {
                        tracing::error!(
                            "could not store an audit record ({e}); it and those after it \
                             wait, tried again every second"
                        );
                    }
                    self.retry_at = Some(tokio::time::Instant::now() + Self::RETRY);
                    return;
                }
            }
            self.waiting.pop_front();
        }
    }

    /// The site lease is gone: the server that takes over stores what is held (it is in
    /// the site's outbox), once; storing it here too would record it twice. What is not
    /// held is still stored here.
    fn leave_held_to_successor(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|(_, held)| held.is_none());
        if self.waiting.len() < before {
            tracing::warn!(
                left = before - self.waiting.len(),
                "the site lease is lost: held audit records are left to the server that takes \
                 over"
            );
        }
    }

    /// What still waits, and how many of those are in no journal (lost if the process
    /// ends now).
    fn report_waiting(&self) {
        if !self.waiting.is_empty() {
            let unheld = self
                .waiting
                .iter()
                .filter(|(_, held)| held.is_none())
                .count();
            tracing::warn!(
                "{} audit record(s) still wait for the store ({unheld} of them not held in \
                 the journal)",
                self.waiting.len()
            );
        }
    }
}

/// An error that trying again will not change.
fn refused_for_good(error: &store::StoreError) -> bool {
    use sqlx::error::ErrorKind;
    match error {
        store::StoreError::Conflict(_) | store::StoreError::Corrupt(_) => true,
        store::StoreError::Database(e) => e.as_database_error().is_some_and(|d| {
            matches!(
                d.kind(),
                ErrorKind::UniqueViolation
                    | ErrorKind::ForeignKeyViolation
                    | ErrorKind::NotNullViolation
                    | ErrorKind::CheckViolation
            )
        }),
        _ => false,
    }
}

async fn write(
    store: &dyn Store,
    journal: Option<&dyn live::Journal>,
    backlog: &mut Backlog,
    job: StoreJob,
) {
    let result = match &job {
        StoreJob::Audit { record, held } => {
            let record = live::HeldRecord::Session(record.clone());
            backlog.push(record, *held, store, journal).await;
            return;
        }
        StoreJob::SiteAudit { record, held } => {
            let record = live::HeldRecord::Site(record.clone());
            backlog.push(record, *held, store, journal).await;
            return;
        }
        StoreJob::SessionStarted { number, at, by } => {
            store.session_started(number, *at, *by).await
        }
        StoreJob::SessionEnded { number, reason, at } => {
            store.session_ended(number, reason, *at).await
        }
        // Answered by the writer's loop.
        StoreJob::Flush(_) => return,
    };
    if let Err(e) = result {
        tracing::error!("could not store {job:?}: {e}");
    }
}

/// `job`, with its audit record held in the journal's outbox if it came unheld (the site's
/// own, a recording's deletion), as a session's records are before their change goes out:
/// one the store cannot take yet then outlives a crash.
fn hold_job(journal: Option<&dyn live::Journal>, job: StoreJob) -> StoreJob {
    match job {
        StoreJob::Audit { record, held: None } => {
            let held = hold(journal, &live::HeldRecord::Session(record.clone()));
            StoreJob::Audit { record, held }
        }
        StoreJob::SiteAudit { record, held: None } => {
            let held = hold(journal, &live::HeldRecord::Site(record.clone()));
            StoreJob::SiteAudit { record, held }
        }
        job => job,
    }
}

/// Hold `record` in the journal's outbox; its id there.
fn hold(journal: Option<&dyn live::Journal>, record: &live::HeldRecord) -> Option<i64> {
    let journal = journal.filter(|journal| !journal.fenced())?;
    match journal.save_and_hold(None, &[record.to_json()]) {
        Ok(mut ids) => ids.pop(),
        Err(e) => {
            tracing::error!("could not hold an audit record in the journal: {e:#}");
            None
        }
    }
}

async fn first_admin(config: &Config, store: &dyn Store) -> anyhow::Result<Option<AdminLogin>> {
    if store.account_count().await? > 0 {
        return Ok(None);
    }
    let password = config
        .admin_password
        .clone()
        .unwrap_or_else(|| clock::secret()[..16].to_owned());
    let admin = store
        .create_account(NewAccount {
            username: "admin".into(),
            display_name: "Administrator".into(),
            password_hash: auth::hash_password(&password)?,
            is_admin: true,
            is_webacd: false,
        })
        .await?;
    let record = store::SiteAuditRecord {
        at: u64::try_from(clock::now_millis()).unwrap_or(0),
        actor: None,
        action: store::SiteAction::AccountCreated {
            account: admin.username,
            display_name: admin.display_name,
            is_admin: admin.is_admin,
            is_webacd: admin.is_webacd,
        },
    };
    if let Err(e) = store.append_site_audit(&record).await {
        tracing::error!("could not put the first admin's creation in the audit log: {e}");
    }
    Ok(Some(AdminLogin {
        username: "admin".into(),
        password,
    }))
}

/// Reset the `admin` account's password (the self-hoster's way back in).
pub async fn reset_admin_password(
    state: &AppState,
    password: Option<String>,
) -> anyhow::Result<AdminLogin> {
    let password = password.unwrap_or_else(|| clock::secret()[..16].to_owned());
    let (account, _) = state
        .store
        .account_for_login("admin")
        .await?
        .context("there is no account named admin")?;
    state
        .store
        .update_account(
            account.id,
            store::AccountChanges {
                password_hash: Some(auth::hash_password(&password)?),
                disabled: Some(false),
                ..Default::default()
            },
        )
        .await?;
    state.site_audit(
        None,
        store::SiteAction::AdminPasswordReset {
            account: account.username,
        },
    );
    Ok(AdminLogin {
        username: "admin".into(),
        password,
    })
}

pub fn app(state: AppState) -> Router {
    // Over HTTPS, browsers are told to come back only over HTTPS (for a year).
    let hsts = state
        .config
        .serves_https()
        .then(|| HeaderValue::from_static("max-age=31536000"));
    Router::new()
        .route("/", get(pages::index))
        .route("/login", get(pages::login))
        .route("/join", get(pages::join))
        .route("/j/{secret}", get(pages::join_link))
        .route("/dashboard", get(pages::dashboard))
        .route("/session/{number}", get(pages::session))
        .route("/admin", get(pages::admin))
        .route("/assets/{*path}", get(pages::asset))
        .route("/download/tandem-agent", get(pages::agent_download))
        .route(
            "/download/tandem-agent.exe",
            get(pages::agent_download_windows),
        )
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(telemetry::scrape))
        .route("/.well-known/acme-challenge/{token}", get(acme::challenge))
        .nest("/api", api::router())
        .layer(axum::middleware::from_fn(refuse_cross_site))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::trust_forwarded,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"), // join links carry secrets
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            hsts,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; \
                 media-src 'self' blob:; style-src 'self'; script-src 'self'; \
                 frame-ancestors 'none'",
            ),
        ))
        .with_state(state)
}

/// State-changing requests from another site's page are refused (CSRF), on top of the
/// SameSite=Strict cookie and JSON-only bodies.
async fn refuse_cross_site(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let safe = matches!(request.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    if !safe && !auth::same_origin(request.headers()) {
        return error::AppError::forbidden("requests from other sites are refused").into_response();
    }
    next.run(request).await
}

/// Serve until `shutdown` completes. Live sessions are not ended: they are on disk, and
/// their participants reconnect to the next start (`end-sessions` ends them for good).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = state.registry.clone();
    let flusher = state.clone();
    let caps = state.caps.clone();
    // From the moment new connections stop, /readyz says so on the ones still open.
    let telemetry = state.telemetry.clone();
    let shutdown = async move {
        shutdown.await;
        telemetry.set_draining();
    };
    let tls = match &state.config.tls {
        Some(files) => Some(tls::acceptor(files).map_err(std::io::Error::other)?),
        None => None,
    };
    let telemetry = state.telemetry.clone();
    serve::serve_with_tls(listener, app(state), caps, tls, shutdown).await?;
    registry.suspend_all();
    // The closes go out after what was queued before them (behind the journal's writes).
    if tokio::time::timeout(Duration::from_secs(5), registry.written())
        .await
        .is_err()
    {
        tracing::warn!("the live sessions' last changes were not all written in time");
    }
    // Every participant and logged-in rep hears 1012 before the process goes: a socket
    // closed by the exit instead may reach the client as a reset, without the close frame. Each connection
    // gives its writer at most 2 s (ws.rs), so this wait is bounded too.
    if !telemetry.websockets_closed(Duration::from_secs(3)).await {
        tracing::warn!("some connections did not close in time; stopping anyway");
    }
    // Changes decided before the stop are written, then their audit records stored.
    flusher.flush().await;
    Ok(())
}
