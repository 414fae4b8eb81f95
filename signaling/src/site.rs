//! One site, several servers on one PostgreSQL database: one serves, the others stand by.
//!
//! Every server started with `--postgres` first takes the **site lease**: a PostgreSQL
//! advisory lock (key [`SITE_LOCK`]) on a connection of its own. The one that holds it
//! serves the site; any other answers `/healthz` but says "standby" on `/readyz` and
//! `503` to everything else, so a load balancer sends nobody there, and tries again every
//! second. PostgreSQL lets the lock go the moment the holder's connection ends: a server
//! killed outright (its socket closes) is replaced within about a second; a machine that
//! vanishes without closing its sockets, once PostgreSQL's TCP keepalives (set on the
//! lease connection: 5 s idle, then 3 probes 2 s apart) give up on it.
//!
//! The live sessions' journal (see `live::Journal`) lives in the same database, and every
//! journal write goes over the lease connection itself. That is the fence: a server that
//! has lost its lease has lost that connection too, so it can no longer write a session
//! that a successor has taken over. A server that loses its lease (the connection fails, a
//! write fails or takes longer than 5 s) stops, closing every connection with 1012 like a
//! restart; the people in its sessions reconnect, through the load balancer, to the
//! successor, which has rebuilt their sessions from the journal.
//!
//! The PostgreSQL driver is async, while the journal is called from the registry's writer
//! thread (`live/pipeline.rs`), which must have a change written before its effects go
//! out. So the lease connection lives on a small runtime of its own, and a journal call
//! waits for its answer there.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Mutex, watch};

use crate::forward::SiteKey;
use crate::live::{Change, Journal};

/// The advisory lock key of the site lease ("TANDEM" in ASCII).
pub const SITE_LOCK: i64 = 0x5441_4E44_454D;
/// How often a standby server tries to take the lease.
const TRY_EVERY: Duration = Duration::from_secs(1);
/// How often the holder checks that its lease connection is still there.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// A new holder waits this long before it serves: by then a holder whose connection was
/// cut (and so lost the lock) has noticed at its next check and stopped serving.
const TAKEOVER_WAIT: Duration = Duration::from_millis(1200);
/// How long an address the site's servers forwarded from is remembered.
const SITE_SERVERS_KEPT_MS: i64 = 30 * 24 * 3600 * 1000;
/// The longest a journal write may take before the lease counts as lost.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The site lease, held, and the live sessions' journal written over it.
pub struct SiteJournal {
    runtime: LeaseRuntime,
    conn: Arc<Mutex<PgConnection>>,
    /// The site's forwarding key (see `forward`).
    key: SiteKey,
    /// Why the lease was lost, once it is.
    lost: watch::Sender<Option<String>>,
}

impl std::fmt::Debug for SiteJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteJournal").finish_non_exhaustive()
    }
}

/// What a server waiting for the lease knows of the site: why it waits (for `/readyz`
/// and the log), where the server that serves is reached, and the site's forwarding key.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    /// Why this server waits, e.g. "tandem-signaling 10.0.0.11:8080 serves this site".
    pub why: String,
    /// The host:port of the server that serves, as it named itself.
    pub serving: Option<String>,
    /// The key that lets the serving server trust what this one forwards.
    pub key: Option<SiteKey>,
}

impl Standing {
    pub fn because(why: impl Into<String>) -> Self {
        Standing {
            why: why.into(),
            ..Standing::default()
        }
    }
}

/// What a server waiting for the lease says about it.
pub type Waiting = watch::Receiver<Standing>;

/// The name a server gives its lease connection: `tandem-signaling host:port`.
const IDENTITY_PREFIX: &str = "tandem-signaling ";

impl SiteJournal {
    /// Take the site lease at `url`, waiting as long as another server holds it.
    /// `identity` names this server to the others (it is the lease connection's
    /// `application_name`, `tandem-signaling host:8080` with the address the others
    /// reach it at); `waiting` hears why it waits and who serves, each time that changes.
    pub async fn take(
        url: &str,
        identity: &str,
        waiting: watch::Sender<Standing>,
    ) -> anyhow::Result<Arc<Self>> {
        Self::take_within(url, identity, waiting, None).await
    }

    /// Take the lease only if nobody holds it now (`end-sessions`, run while every
    /// server of the site is stopped); if one holds it, the error says which.
    pub async fn take_now(url: &str, identity: &str) -> anyhow::Result<Arc<Self>> {
        let (waiting, _) = watch::channel(Standing::default());
        Self::take_within(url, identity, waiting, Some(1)).await
    }

    async fn take_within(
        url: &str,
        identity: &str,
        waiting: watch::Sender<Standing>,
        tries: Option<u32>,
    ) -> anyhow::Result<Arc<Self>> {
        let options = lease_options(url, identity)?;
        let runtime = LeaseRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("tandem-site-lease")
                .enable_all()
                .build()
                .context("could not start the site lease's runtime")?,
        ));
        let (conn, key) = runtime
            .get()
            .spawn(acquire(options, waiting, tries))
            .await
            .context("the site lease's task stopped")??;
        let conn = Arc::new(Mutex::new(conn));
        let (lost, _) = watch::channel(None);
        let journal = Arc::new(SiteJournal {
            runtime,
            conn: conn.clone(),
            key,
            lost: lost.clone(),
        });
        journal.runtime().spawn(keep(conn, lost));
        Ok(journal)
    }

    /// Completes when the lease is lost, with the reason.
    pub fn lost(&self) -> impl Future<Output = String> + Send + 'static {
        let mut lost = self.lost.subscribe();
        async move {
            match lost.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone().unwrap_or_default(),
                // The journal is gone: so is the lease.
                Err(_) => "the site lease was let go".to_owned(),
            }
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.get()
    }

    /// The key the site's other servers prove they are its own with, when they forward.
    pub fn key(&self) -> SiteKey {
        self.key.clone()
    }

    /// The addresses the site's servers forwarded from in the last 30 days, as their
    /// former holders learned them (see [`SiteJournal::remember_site_server`]).
    pub fn site_servers(&self) -> anyhow::Result<Vec<std::net::IpAddr>> {
        let conn = self.conn.clone();
        let since = crate::clock::now_millis() - SITE_SERVERS_KEPT_MS;
        let addresses: Vec<String> = self.call("load of the site's servers", async move {
            sqlx::query_scalar("SELECT address FROM site_servers WHERE seen_at > $1")
                .bind(since)
                .fetch_all(&mut *conn.lock().await)
                .await
        })?;
        Ok(addresses.iter().filter_map(|a| a.parse().ok()).collect())
    }

    /// Keep `ip` as one of the site's servers, for the next holder; in the background,
    /// and a failure only loses the hint.
    pub fn remember_site_server(&self, ip: std::net::IpAddr) {
        if self.is_lost() {
            return;
        }
        let conn = self.conn.clone();
        let at = crate::clock::now_millis();
        self.runtime().spawn(async move {
            let saved = tokio::time::timeout(CALL_TIMEOUT, async {
                sqlx::query(
                    "INSERT INTO site_servers (address, seen_at) VALUES ($1, $2) \
                     ON CONFLICT (address) DO UPDATE SET seen_at = excluded.seen_at",
                )
                .bind(ip.to_string())
                .bind(at)
                .execute(&mut *conn.lock().await)
                .await
            })
            .await;
            if !matches!(saved, Ok(Ok(_))) {
                tracing::debug!(%ip, "could not note a server of the site");
            }
        });
    }

    /// Whether the lease is known to be lost.
    pub fn is_lost(&self) -> bool {
        self.lost.borrow().is_some()
    }

    /// Run `work` on the lease connection and wait for it. A failure or a timeout ends
    /// the lease: the connection's state is no longer known.
    fn call<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl Future<Output = Result<T, sqlx::Error>> + Send + 'static,
    ) -> anyhow::Result<T> {
        if let Some(reason) = self.lost.borrow().as_ref() {
            anyhow::bail!("the site lease is lost ({reason}); nothing more is written");
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let lost = self.lost.clone();
        self.runtime().spawn(async move {
            let result = match tokio::time::timeout(CALL_TIMEOUT, work).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(format!("the journal's {what} failed: {e}")),
                Err(_) => Err(format!(
                    "the journal's {what} took longer than {} s",
                    CALL_TIMEOUT.as_secs()
                )),
            };
            if let Err(reason) = &result {
                set_lost(&lost, reason);
            }
            let _ = tx.send(result); // the caller waits unless it panicked
        });
        // A caller on the server's runtime (the store writer releasing an audit record; the
        // journal's writer has a thread of its own): let the runtime move its other tasks
        // off this worker meanwhile (not possible on a single-threaded runtime, e.g. a test's).
        let wait = || rx.recv();
        let answer = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            _ => wait(),
        };
        match answer {
            Ok(result) => result.map_err(anyhow::Error::msg),
            Err(_) => anyhow::bail!("the site lease's runtime stopped"),
        }
    }
}

/// The lease connection's runtime. Its tasks (and with them a connection not yet handed
/// over) end when it is dropped; PostgreSQL then lets the lock go.
struct LeaseRuntime(Option<tokio::runtime::Runtime>);

impl LeaseRuntime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("only `drop` takes it")
    }
}

impl Drop for LeaseRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            // Never block here: this runs inside another runtime.
            runtime.shutdown_background();
        }
    }
}

pub(crate) fn lease_options(url: &str, identity: &str) -> anyhow::Result<PgConnectOptions> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!("not a PostgreSQL URL: it starts with postgres://");
    }
    let options: PgConnectOptions = url.parse().context("not a PostgreSQL URL")?;
    // PostgreSQL notices a vanished holder by its keepalives; statements never hang.
    Ok(options.application_name(identity).options([
        ("tcp_keepalives_idle", "5"),
        ("tcp_keepalives_interval", "2"),
        ("tcp_keepalives_count", "3"),
        // Also when a reply is in flight to a holder that vanished (keepalives then wait).
        ("tcp_user_timeout", "11000"),
        ("statement_timeout", "5000"),
        ("lock_timeout", "5000"),
    ]))
}

/// Connect and try the lock until it is ours (or `tries` run out); then make sure the
/// journal's tables are there. With the connection, the site's forwarding key.
async fn acquire(
    options: PgConnectOptions,
    waiting: watch::Sender<Standing>,
    tries: Option<u32>,
) -> anyhow::Result<(PgConnection, SiteKey)> {
    let mut conn: Option<PgConnection> = None;
    let mut key: Option<SiteKey> = None;
    let mut tried = 0;
    loop {
        tried += 1;
        let mut serving = None;
        let why = match conn.as_mut() {
            None => match tokio::time::timeout(CALL_TIMEOUT, options.connect()).await {
                Ok(Ok(mut c)) => {
                    match tokio::time::timeout(CALL_TIMEOUT, boxed(site_key(&mut c))).await {
                        Ok(Ok(k)) => {
                            key = Some(SiteKey::from(k.as_str()));
                            conn = Some(c);
                            continue;
                        }
                        Ok(Err(e)) => anyhow::bail!("could not set up the site's key: {e}"),
                        Err(_) => format!(
                            "PostgreSQL did not answer within {} s",
                            CALL_TIMEOUT.as_secs()
                        ),
                    }
                }
                // Only a network failure may pass: a wrong password, database or TLS
                // setting stops the start with the reason instead of waiting for ever.
                Ok(Err(e @ sqlx::Error::Io(_))) => format!("cannot reach PostgreSQL: {e}"),
                Ok(Err(e)) => anyhow::bail!("could not connect to PostgreSQL: {e}"),
                Err(_) => format!(
                    "PostgreSQL did not answer within {} s",
                    CALL_TIMEOUT.as_secs()
                ),
            },
            Some(c) => match tokio::time::timeout(CALL_TIMEOUT, boxed(try_lock(c))).await {
                Ok(Ok(true)) => break,
                Ok(Ok(false)) => match tokio::time::timeout(CALL_TIMEOUT, boxed(holder(c))).await {
                    Ok(Ok(Some(holder))) => {
                        serving = holder
                            .strip_prefix(IDENTITY_PREFIX)
                            .filter(|address| address.contains(':'))
                            .map(str::to_owned);
                        format!("{holder} serves this site")
                    }
                    Ok(Ok(None)) | Err(_) => "another server serves this site".to_owned(),
                    Ok(Err(e)) => format!("could not see who serves this site: {e}"),
                },
                Ok(Err(e)) => {
                    conn = None;
                    format!("lost the connection to PostgreSQL: {e}")
                }
                Err(_) => {
                    conn = None;
                    format!(
                        "PostgreSQL did not answer within {} s",
                        CALL_TIMEOUT.as_secs()
                    )
                }
            },
        };
        if tries.is_some_and(|tries| tried >= tries) {
            anyhow::bail!("{why}");
        }
        waiting.send_if_modified(|said| {
            let changed = said.why != why || said.serving != serving || said.key != key;
            if said.why != why {
                tracing::warn!("standby: {why}; taking over when it stops");
            }
            if changed {
                *said = Standing {
                    why: why.clone(),
                    serving: serving.clone(),
                    key: key.clone(),
                };
            }
            changed
        });
        tokio::time::sleep(TRY_EVERY).await;
    }
    let mut conn = conn.expect("connected when the lock was taken");
    let key = key.expect("the key is read when connecting");
    boxed(create_tables(&mut conn))
        .await
        .context("could not set up the live sessions' tables")?;
    if tried > 1 || tries.is_none() {
        // Nothing is forwarded any more: this server is about to serve.
        waiting.send_replace(Standing::because("taking the site over"));
        tokio::time::sleep(TAKEOVER_WAIT).await;
    }
    Ok((conn, key))
}

/// The site's forwarding key: made by the first server that asks, the same for all.
async fn site_key(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    // Two servers starting at once may both create the table: the loser's error is only
    // that, so it asks again.
    for attempt in 0..2 {
        let created = sqlx::query(
            "CREATE TABLE IF NOT EXISTS site_key (
                 id  INTEGER PRIMARY KEY CHECK (id = 1),
                 key TEXT NOT NULL
             )",
        )
        .execute(&mut *conn)
        .await;
        match created {
            Ok(_) => break,
            Err(e) if attempt == 1 => return Err(e),
            Err(_) => continue,
        }
    }
    sqlx::query("INSERT INTO site_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
        .bind(crate::clock::secret())
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar("SELECT key FROM site_key WHERE id = 1")
        .fetch_one(conn)
        .await
}

/// A future made `Send` for every lifetime at once: sqlx's executors on `&mut
/// PgConnection` otherwise trip the compiler's check of a spawned task.
fn boxed<'a, T>(
    work: impl Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>> {
    Box::pin(work)
}

async fn create_tables(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS live_sessions (
             number   TEXT PRIMARY KEY,
             state    TEXT NOT NULL,
             saved_at BIGINT NOT NULL
         )",
    )
    .execute(&mut *conn)
    .await?;
    // Addresses the site's servers forwarded from (see `forward`): a new holder knows
    // them before their first forwarded request.
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS site_servers (
             address TEXT PRIMARY KEY,
             seen_at BIGINT NOT NULL
         )",
    )
    .execute(&mut *conn)
    .await?;
    // Audit records on their way to the store (an outbox): a record is here before what
    // it records happens, and goes once the store has it.
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS audit_outbox (
             id     BIGSERIAL PRIMARY KEY,
             record TEXT NOT NULL
         )",
    )
    .execute(conn)
    .await
    .map(drop)
}

async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(SITE_LOCK)
        .fetch_one(conn)
        .await
}

/// The `application_name` of the server holding the lease, if PostgreSQL shows it.
async fn holder(conn: &mut PgConnection) -> Result<Option<String>, sqlx::Error> {
    // A bigint key shows in pg_locks as (classid, objid) = (high, low) 32 bits.
    sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND l.classid::bigint = $1 AND l.objid::bigint = $2 \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         LIMIT 1",
    )
    .bind(SITE_LOCK >> 32)
    .bind(SITE_LOCK & 0xFFFF_FFFF)
    .fetch_optional(conn)
    .await
}

/// Check the lease connection every 2 s; say so when it is gone.
async fn keep(conn: Arc<Mutex<PgConnection>>, lost: watch::Sender<Option<String>>) {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        if lost.borrow().is_some() {
            return;
        }
        let checked =
            tokio::time::timeout(CALL_TIMEOUT, async { conn.lock().await.ping().await }).await;
        let reason = match checked {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => format!("the connection to PostgreSQL failed: {e}"),
            Err(_) => "PostgreSQL did not answer within 5 s".to_owned(),
        };
        set_lost(&lost, &reason);
        return;
    }
}

/// The first reason the lease was lost is the one kept.
fn set_lost(lost: &watch::Sender<Option<String>>, reason: &str) {
    lost.send_if_modified(|lost| {
        let first = lost.is_none();
        if first {
            *lost = Some(reason.to_owned());
        }
        first
    });
}

impl Journal for SiteJournal {
    fn save(&self, number: &str, state: &str, at: i64) -> anyhow::Result<()> {
        let (conn, number, state) = (self.conn.clone(), number.to_owned(), state.to_owned());
        self.call("save", async move {
            save(&mut *conn.lock().await, &number, &state, at).await
        })
    }

    fn remove(&self, number: &str) -> anyhow::Result<()> {
        let (conn, number) = (self.conn.clone(), number.to_owned());
        self.call("removal", async move {
            sqlx::query("DELETE FROM live_sessions WHERE number = $1")
                .bind(number)
                .execute(&mut *conn.lock().await)
                .await
                .map(drop)
        })
    }

    fn load(&self) -> anyhow::Result<Vec<(String, String)>> {
        let conn = self.conn.clone();
        self.call("load", async move {
            sqlx::query_as("SELECT number, state FROM live_sessions ORDER BY number")
                .fetch_all(&mut *conn.lock().await)
                .await
        })
    }

    fn save_and_hold(
        &self,
        session: Option<(&str, &str, i64)>,
        records: &[String],
    ) -> anyhow::Result<Vec<i64>> {
        let change = Change::keep(session, records);
        Ok(self.commit(&[change])?.pop().unwrap_or_default())
    }

    fn commit(&self, changes: &[Change]) -> anyhow::Result<Vec<Vec<i64>>> {
        let conn = self.conn.clone();
        let changes = changes.to_vec();
        self.call("save", async move {
            let mut conn = conn.lock().await;
            let mut tx = conn.begin().await?;
            let mut ids = Vec::with_capacity(changes.len());
            for change in changes {
                let mut held = Vec::new();
                match change {
                    Change::Keep { session, records } => {
                        if let Some(s) = session {
                            save(&mut tx, &s.number, &s.state, s.at).await?;
                        }
                        for record in records {
                            let id: i64 = sqlx::query_scalar(
                                "INSERT INTO audit_outbox (record) VALUES ($1) RETURNING id",
                            )
                            .bind(record)
                            .fetch_one(&mut *tx)
                            .await?;
                            held.push(id);
                        }
                    }
                    Change::Forget(number) => {
                        sqlx::query("DELETE FROM live_sessions WHERE number = $1")
                            .bind(number)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                ids.push(held);
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    fn audit_stored(&self, id: i64) -> anyhow::Result<()> {
        let conn = self.conn.clone();
        self.call("release of an audit record", async move {
            sqlx::query("DELETE FROM audit_outbox WHERE id = $1")
                .bind(id)
                .execute(&mut *conn.lock().await)
                .await
                .map(drop)
        })
    }

    fn fenced(&self) -> bool {
        self.is_lost()
    }

    fn held_audit(&self) -> anyhow::Result<Vec<(i64, String)>> {
        let conn = self.conn.clone();
        self.call("load of held audit records", async move {
            sqlx::query_as("SELECT id, record FROM audit_outbox ORDER BY id")
                .fetch_all(&mut *conn.lock().await)
                .await
        })
    }
}

async fn save(
    conn: &mut PgConnection,
    number: &str,
    state: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO live_sessions (number, state, saved_at) VALUES ($1, $2, $3) \
         ON CONFLICT (number) DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at",
    )
    .bind(number)
    .bind(state)
    .bind(at)
    .execute(conn)
    .await
    .map(drop)
}

/// What a standby server answers while it waits for the lease: `/healthz` is `ok` (the
/// process is fine); everything else goes to the server that serves (see `forward`), and
/// `/readyz` is `200` while that server answers it is ready, otherwise `503` with the
/// reason (who serves, or why it cannot be reached); `/metrics` is the standby's own.
/// The server drops every connection
/// still open to the standby when it takes over.
pub fn standby_app(
    forwarding: crate::forward::Forwarding,
    metrics: axum::routing::MethodRouter,
) -> Router {
    let ready = {
        let forwarding = forwarding.clone();
        move || {
            let forwarding = forwarding.clone();
            async move {
                match forwarding.ready().await {
                    Ok(serving) => (
                        StatusCode::OK,
                        format!(
                            "ready: standby, forwarding to {serving}, which serves this site\n"
                        ),
                    )
                        .into_response(),
                    Err(why) => unavailable(format!("not ready: standby: {why}\n")),
                }
            }
        }
    };
    Router::new()
        .route("/healthz", axum::routing::get(crate::health::healthz))
        .route("/readyz", axum::routing::get(ready))
        // Its own, not the serving server's: each server is scraped for itself.
        .route("/metrics", metrics)
        .fallback(
            move |axum::extract::ConnectInfo(client): axum::extract::ConnectInfo<
                std::net::SocketAddr,
            >,
                  request: axum::extract::Request| {
                let forwarding = forwarding.clone();
                async move { crate::forward::forward(&forwarding, client, request).await }
            },
        )
}

/// `503` with `text`, `Retry-After: 5`, closing the connection.
pub(crate) fn unavailable(text: String) -> Response {
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
