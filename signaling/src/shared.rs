//! Counts the servers of one site share through Redis (`--redis`): the connections open
//! from each address, so that the cap per address holds for the whole site and not once
//! per server (a client cannot open the cap's worth on every server behind the load
//! balancer).
//!
//! Each server keeps its own counts in a hash of its own, `tandem:conns:<server>`, and
//! says it is alive every [`HEARTBEAT`] in the sorted set `tandem:servers`, scored by
//! Redis's clock. A connection is let in by one script (Redis runs a script alone, so two
//! servers cannot both take the last place): it adds up the address's counts of the
//! servers heard from within [`STALE_AFTER`] and, under the cap, writes this server's new
//! count. A server that dies without closing its connections stops counting once it is
//! stale, and its hash expires; a server that takes the site over forgets the one it
//! took it from at once (whose people are about to reconnect to the others).
//!
//! One task talks to Redis, in order, so this server's count of an address is always
//! written as a whole number (not added to), and the last write is right. When Redis does
//! not answer within [`ANSWER_TIMEOUT`], or a connection has waited that long for its
//! turn, the connection is let in (each server's own cap still holds), the failure is counted (`tandem_redis_errors_total`) and logged, Redis is
//! left alone for [`BACK_OFF`], and this server's whole hash is written again at the next
//! heartbeat that gets through.
//!
//! Over `rediss://`, Redis's certificate is checked against the system's roots, or the
//! CA certificate given (`--redis-ca-cert`); one that fails the check stops the start.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::limits::AddrKey;

/// How often a server says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A server not heard from for this long no longer counts.
pub const STALE_AFTER: Duration = Duration::from_secs(10);
/// How long a call to Redis may take before the connection is let in without it.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
/// After a failed call, how long Redis is left alone.
pub const BACK_OFF: Duration = Duration::from_secs(1);
/// How long a server stopping tries to take its counts out of Redis.
pub const LEAVE_WITHIN: Duration = Duration::from_secs(3);

const SERVERS: &str = "tandem:servers";
const CONNS: &str = "tandem:conns:";

/// Sum the address's counts over the live servers but this one, add this one's count to
/// be, and write it if under the cap.
/// KEYS[1] the servers, KEYS[2] this server's hash; ARGV: address, this server's count if
/// let in, cap, this server's id, staleness in ms, hash prefix.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[5]), '+inf')
local sum = tonumber(ARGV[2])
for _, id in ipairs(live) do
  if id ~= ARGV[4] then
    sum = sum + (tonumber(redis.call('HGET', ARGV[6] .. id, ARGV[1])) or 0)
  end
end
if sum > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]) * 3)
return 1
";

/// This server is alive: KEYS[1] the servers, KEYS[2] its hash; ARGV: its id, staleness
/// in ms. Servers gone for ten times the staleness are taken off the list. 1 when this
/// server was not on it.
const HEARTBEAT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * 3)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]) * 10)
return added
";

/// The site's shared counts, as one server sees them.
#[derive(Debug)]
pub struct SharedCounts {
    requests: mpsc::UnboundedSender<Request>,
    errors: Arc<AtomicU64>,
    up: Arc<AtomicBool>,
}

#[derive(Debug)]
enum Request {
    Admit {
        key: AddrKey,
        max: usize,
        answer: oneshot::Sender<bool>,
        asked: Instant,
    },
    Release(AddrKey),
    Forget(String),
    Leave(oneshot::Sender<bool>),
}

impl SharedCounts {
    /// Connect to Redis at `url` as the server `id` (its site address: unique in the
    /// site, and the same after a restart, whose connections are gone, so its counts start
    /// from nothing). Fails only on a URL that is not Redis's: a Redis that cannot be
    /// reached now is warned of, and tried again as after an outage; one that refuses
    /// this server (a wrong password, a certificate that fails the check) stops it with
    /// the reason. `ca_cert`: the PEM CA certificate a `rediss://` Redis's certificate is
    /// checked against instead of the system's roots.
    pub async fn connect(
        url: &str,
        id: &str,
        ca_cert: Option<&std::path::Path>,
    ) -> anyhow::Result<Arc<Self>> {
        Self::connect_with(url, id, ca_cert, None).await
    }

    /// [`Self::connect`], showing Redis the certificate `client` (PEM certificate and key
    /// files) when it asks its clients for one.
    pub async fn connect_with(
        url: &str,
        id: &str,
        ca_cert: Option<&std::path::Path>,
        client: Option<&crate::tls::TlsFiles>,
    ) -> anyhow::Result<Arc<Self>> {
        let not_redis = || {
            format!(
                "--redis {} is not a Redis URL (redis://[:password@]host[:port][/db], or \
                 rediss:// for TLS)",
                crate::redacted(url)
            )
        };
        let root_cert = ca_cert
            .map(|path| pem_certificates(path, "the Redis CA certificate"))
            .transpose()?;
        let client_tls = client
            .map(|files| {
                let read = |path: &std::path::Path| {
                    std::fs::read(path)
                        .with_context(|| format!("could not read {}", path.display()))
                };
                let (client_cert, client_key) = (read(&files.cert)?, read(&files.key)?);
                // As for the HTTPS certificate: a chain and the key that goes with it.
                crate::tls::check_pair(&client_cert, &client_key).with_context(|| {
                    format!(
                        "the client certificate for Redis {} and its key {} cannot be used",
                        files.cert.display(),
                        files.key.display()
                    )
                })?;
                anyhow::Ok(redis::ClientTlsConfig {
                    client_cert,
                    client_key,
                })
            })
            .transpose()?;
        let client = if root_cert.is_some() || client_tls.is_some() {
            let certificates = redis::TlsCertificates {
                client_tls,
                root_cert,
            };
            redis::Client::build_with_tls(url, certificates).with_context(not_redis)?
        } else {
            redis::Client::open(url).with_context(not_redis)?
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(ANSWER_TIMEOUT))
            .set_response_timeout(Some(ANSWER_TIMEOUT))
            .set_number_of_retries(0)
            .set_max_delay(BACK_OFF);
        let mut redis = ConnectionManager::new_lazy_with_config(client, config)
            .with_context(|| format!("--redis {}", crate::redacted(url)))?;
        let ping = tokio::time::timeout(
            ANSWER_TIMEOUT * 2,
            redis::cmd("PING").query_async::<String>(&mut redis),
        )
        .await;
        if let Ok(Err(e)) = &ping {
            match tls_error(e) {
                Some(tls @ rustls::Error::InvalidCertificate(_)) => anyhow::bail!(
                    "Redis at {}: its TLS certificate failed the check ({tls}); if it \
                     comes from a private CA, give that CA's certificate with \
                     --redis-ca-cert",
                    crate::redacted(url)
                ),
                Some(
                    tls @ rustls::Error::AlertReceived(
                        rustls::AlertDescription::CertificateRequired
                        | rustls::AlertDescription::HandshakeFailure
                        | rustls::AlertDescription::BadCertificate
                        | rustls::AlertDescription::UnknownCA,
                    ),
                ) => anyhow::bail!(
                    "Redis at {} refused this server's TLS connection ({tls}): if it asks its \
                     clients for a certificate (tls-auth-clients), give one it trusts with \
                     --redis-client-cert and --redis-client-key",
                    crate::redacted(url)
                ),
                Some(tls) => anyhow::bail!(
                    "Redis at {}: TLS failed ({tls}); does it speak TLS on that port?",
                    crate::redacted(url)
                ),
                None => {}
            }
            if !(e.is_io_error()
                || e.is_timeout()
                || e.is_connection_refusal()
                || e.is_connection_dropped())
            {
                anyhow::bail!("Redis at {} refused this server: {e}", crate::redacted(url));
            }
        }
        let own = format!("{CONNS}{id}");
        let (requests, received) = mpsc::unbounded_channel();
        let errors = Arc::new(AtomicU64::new(0));
        // Up until a call fails: the first failure of an outage is warned of, the first
        // answer after it logged.
        let up = Arc::new(AtomicBool::new(true));
        let mut worker = Worker {
            redis,
            id: id.to_owned(),
            own,
            counts: HashMap::new(),
            admit: redis::Script::new(ADMIT),
            heartbeat: redis::Script::new(HEARTBEAT_SCRIPT),
            resting_until: None,
            // A hash left by this server before a restart is written over, from nothing.
            dirty: true,
            forgetting: Vec::new(),
            errors: errors.clone(),
            up: up.clone(),
        };
        // Alive before the first connection is counted, or the others would not see it.
        worker.beat().await;
        if worker.up.load(Ordering::Relaxed) {
            tracing::info!("Redis at {} answers", crate::redacted(url));
        }
        tokio::spawn(worker.run(received));
        Ok(Arc::new(Self {
            requests,
            errors,
            up,
        }))
    }

    /// Whether a connection from `key` may open, with at most `max` open from it across
    /// the site; if [`Admission::Counted`], until [`SharedCounts::release`].
    pub async fn admit(&self, key: AddrKey, max: usize) -> Admission {
        let (answer, answered) = oneshot::channel();
        let request = Request::Admit {
            key,
            max,
            answer,
            asked: Instant::now(),
        };
        if self.requests.send(request).is_err() {
            return Admission::Unchecked;
        }
        let mut waiting = Answer {
            answered,
            counts: self,
            key,
        };
        // Bounded whatever the worker is doing: let in unchecked after that.
        match tokio::time::timeout(ANSWER_TIMEOUT * 2, &mut waiting.answered).await {
            Ok(Ok(admitted)) => {
                waiting.answered.close();
                if admitted {
                    Admission::Counted
                } else {
                    Admission::Refused
                }
            }
            Ok(Err(_)) => Admission::Unchecked,
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Admission::Unchecked
            }
        }
    }

    /// A connection [`SharedCounts::admit`] let in has closed.
    pub fn release(&self, key: AddrKey) {
        let _ = self.requests.send(Request::Release(key));
    }

    /// The server `id` is gone (this one took the site over from it): its connections
    /// are closed, and no longer count, without waiting for it to be stale.
    pub fn forget(&self, id: &str) {
        let _ = self.requests.send(Request::Forget(id.to_owned()));
    }

    /// This server stops: its connections no longer count, at once rather than once it
    /// is stale, and nothing of it is written again. Tries for [`LEAVE_WITHIN`]; whether
    /// Redis took it (if not, the counts go once the server is stale).
    pub async fn leave(&self) -> bool {
        let (done, left) = oneshot::channel();
        if self.requests.send(Request::Leave(done)).is_err() {
            return false;
        }
        matches!(
            tokio::time::timeout(LEAVE_WITHIN + ANSWER_TIMEOUT, left).await,
            Ok(Ok(true))
        )
    }

    /// Calls to Redis that failed since the start (each let a connection in unchecked, or
    /// left a count to be written again).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Whether the last call to Redis got through.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

/// The PEM file at `path` (`what`, for errors), checked to hold certificates: a file that
/// does not is said to be so here, not as a bad URL or a failed check.
fn pem_certificates(path: &std::path::Path, what: &str) -> anyhow::Result<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem =
        std::fs::read(path).with_context(|| format!("could not read {what} {}", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("{what} {} is not PEM", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "{what} {} holds no PEM certificate",
        path.display()
    );
    Ok(pem)
}

/// The TLS error behind a failed call, if that is what it was: a certificate that fails
/// the check does not go away by trying again.
fn tls_error(e: &redis::RedisError) -> Option<&rustls::Error> {
    type Shared = Arc<dyn std::error::Error + Send + Sync>;
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(error) = source {
        // The client keeps an I/O error in an `Arc`, and an I/O error's `source` skips
        // the error it wraps: look inside both.
        let error: &(dyn std::error::Error + 'static) = match error.downcast_ref::<Shared>() {
            Some(shared) => shared.as_ref(),
            None => error,
        };
        let tls = error.downcast_ref::<rustls::Error>().or_else(|| {
            error
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if tls.is_some() {
            return tls;
        }
        source = error.source();
    }
    None
}

/// What [`SharedCounts::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Let in, and counted (with Redis, or by this server to be written when it answers):
    /// give it back with [`SharedCounts::release`].
    Counted,
    /// Let in without a count (the answer did not come in time): nothing to give back.
    Unchecked,
    /// Its address has the cap's worth open on the site's servers together.
    Refused,
}

impl Admission {
    pub fn let_in(self) -> bool {
        self != Admission::Refused
    }
}

/// An admit's answer, awaited: if the waiting stops (its connection's task was dropped,
/// or it took too long) after the worker counted the connection, the place is given back.
struct Answer<'a> {
    answered: oneshot::Receiver<bool>,
    counts: &'a SharedCounts,
    key: AddrKey,
}

impl Drop for Answer<'_> {
    fn drop(&mut self) {
        // After a read answer the channel is closed and empty: nothing to give back.
        self.answered.close();
        if let Ok(true) = self.answered.try_recv() {
            self.counts.release(self.key);
        }
    }
}

/// A call to Redis, given up after [`ANSWER_TIMEOUT`] whatever it waits for (a new
/// connection, a script loaded again after a restart).
async fn bounded<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(ANSWER_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "Redis did not answer in time",
        ))),
    }
}

/// The one task that talks to Redis.
struct Worker {
    redis: ConnectionManager,
    id: String,
    own: String,
    /// This server's open connections by address, as counted in Redis.
    counts: HashMap<AddrKey, usize>,
    admit: redis::Script,
    heartbeat: redis::Script,
    /// After a failure, Redis is not asked until then.
    resting_until: Option<Instant>,
    /// A write failed: the whole hash is written again at the next heartbeat.
    dirty: bool,
    /// Servers gone, to forget once Redis answers.
    forgetting: Vec<String>,
    errors: Arc<AtomicU64>,
    up: Arc<AtomicBool>,
}

impl Worker {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Request>) {
        let mut tick = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                request = requests.recv() => match request {
                    Some(Request::Leave(done)) => {
                        let _ = done.send(self.leave().await);
                        return;
                    }
                    Some(Request::Admit { key, max, answer, asked }) => {
                        self.admit(key, max, answer, asked).await;
                    }
                    Some(Request::Release(key)) => self.release(key).await,
                    Some(Request::Forget(id)) => {
                        if id != self.id {
                            self.forget(id).await;
                        }
                    }
                    None => return,
                },
                _ = tick.tick() => self.beat().await,
            }
        }
    }

    /// Count a connection from `key` in if the site has a place for it, and say so.
    async fn admit(
        &mut self,
        key: AddrKey,
        max: usize,
        answer: oneshot::Sender<bool>,
        asked: Instant,
    ) {
        let count = self.counts.get(&key).copied().unwrap_or(0) + 1;
        // A Redis that answers, but slowly, must not hold a queue of connections
        // waiting their turn: one that has waited as long as an answer may take
        // is let in as without Redis.
        let queued_too_long = asked.elapsed() >= ANSWER_TIMEOUT;
        if queued_too_long {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let admitted = if self.resting() || queued_too_long {
            self.dirty = true;
            true
        } else {
            let call = bounded(
                self.admit
                    .key(SERVERS)
                    .key(&self.own)
                    .arg(key.to_string())
                    .arg(count)
                    .arg(max)
                    .arg(&self.id)
                    .arg(STALE_AFTER.as_millis() as u64)
                    .arg(CONNS)
                    .invoke_async::<i64>(&mut self.redis),
            )
            .await;
            match self.outcome(call, "count a connection") {
                Some(admitted) => admitted == 1,
                None => true,
            }
        };
        if admitted {
            self.counts.insert(key, count);
        }
        if answer.send(admitted).is_err() && admitted {
            // The connection went before it heard: it is not open.
            self.release(key).await;
        }
    }

    /// Take this server off the list, with its counts, as it stops: tried again after a
    /// failure, for [`LEAVE_WITHIN`]. Whether Redis took it.
    async fn leave(&mut self) -> bool {
        let until = Instant::now() + LEAVE_WITHIN;
        loop {
            if let Some(rest) = self.resting_until.filter(|_| self.resting()) {
                if rest >= until {
                    return false;
                }
                tokio::time::sleep_until(rest).await;
            }
            let mut leave = redis::pipe();
            leave
                .atomic()
                .zrem(SERVERS, &self.id)
                .ignore()
                .del(&self.own)
                .ignore();
            let call = bounded(leave.query_async::<()>(&mut self.redis)).await;
            if self
                .outcome(call, "take this server's counts out")
                .is_some()
            {
                tracing::info!("this server's connections no longer count in Redis");
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
        }
    }

    /// Take a gone server off the list, with its counts; while Redis does not answer,
    /// at the next heartbeat that gets through.
    async fn forget(&mut self, id: String) {
        if self.resting() {
            self.forgetting.push(id);
            return;
        }
        let mut forget = redis::pipe();
        forget
            .atomic()
            .zrem(SERVERS, &id)
            .ignore()
            .del(format!("{CONNS}{id}"))
            .ignore();
        let call = bounded(forget.query_async::<()>(&mut self.redis)).await;
        if self.outcome(call, "forget a server gone").is_some() {
            tracing::info!("the connections of {id}, gone, no longer count");
        } else {
            self.forgetting.push(id);
        }
    }

    async fn release(&mut self, key: AddrKey) {
        let count = match self.counts.get_mut(&key) {
            Some(count) if *count > 1 => {
                *count -= 1;
                *count
            }
            Some(_) => {
                self.counts.remove(&key);
                0
            }
            None => return,
        };
        if self.resting() {
            self.dirty = true;
            return;
        }
        let mut write = if count == 0 {
            redis::cmd("HDEL")
        } else {
            redis::cmd("HSET")
        };
        write.arg(&self.own).arg(key.to_string());
        if count > 0 {
            write.arg(count);
        }
        let call = bounded(write.query_async::<()>(&mut self.redis)).await;
        self.outcome(call, "uncount a connection");
    }

    /// Say this server is alive, and write its whole hash again if a write was missed.
    async fn beat(&mut self) {
        if self.resting() {
            return;
        }
        // Alive first: counts written again are then seen at once.
        let call = bounded(
            self.heartbeat
                .key(SERVERS)
                .key(&self.own)
                .arg(&self.id)
                .arg(STALE_AFTER.as_millis() as u64)
                .invoke_async::<i64>(&mut self.redis),
        )
        .await;
        match self.outcome(call, "say this server is alive") {
            None => return,
            // It was not on the list (Redis lost it, or a server forgot it wrongly): its
            // counts may be gone too.
            Some(1) => self.dirty = true,
            Some(_) => {}
        }
        for id in std::mem::take(&mut self.forgetting) {
            Box::pin(self.forget(id)).await;
        }
        if !self.dirty {
            return;
        }
        let mut rewrite = redis::pipe();
        rewrite.atomic().del(&self.own).ignore();
        if !self.counts.is_empty() {
            let fields: Vec<(String, usize)> = self
                .counts
                .iter()
                .map(|(key, count)| (key.to_string(), *count))
                .collect();
            rewrite
                .hset_multiple(&self.own, &fields)
                .ignore()
                .pexpire(&self.own, STALE_AFTER.as_millis() as i64 * 3)
                .ignore();
        }
        let call = bounded(rewrite.query_async::<()>(&mut self.redis)).await;
        if self.outcome(call, "write this server's counts").is_some() {
            self.dirty = false;
        }
    }

    fn resting(&self) -> bool {
        self.resting_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// Note how a call went: a failure is counted, logged once per outage, and rests
    /// Redis for a while.
    fn outcome<T>(&mut self, call: redis::RedisResult<T>, what: &str) -> Option<T> {
        match call {
            Ok(value) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "Redis answers again: the cap per address holds across the site"
                    );
                }
                Some(value)
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.dirty = true;
                self.resting_until = Some(Instant::now() + BACK_OFF);
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        "Redis did not {what}: {e}. Until it answers, each server holds \
                         connections to its own cap per address only."
                    );
                }
                None
            }
        }
    }
}
