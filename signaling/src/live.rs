//! Live sessions: the runtime shell around `tandem-session`. It owns the sessions in
//! memory, maps participants to their connections, and carries out what a session asks
//! for: delivering messages, appending audit records, running timers, closing connections.
//! The rules themselves are decided by `tandem_session::Session`, never here.
//!
//! Each live session has a lock of its own, so sessions go on side by side; what spans
//! sessions (tokens and secrets to look up, a rep's load across sessions, WebACD) is
//! behind one more lock, the site's, taken after a session's and only when needed
//! (see [`Op`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard, RwLock};
use tandem_protocol::{
    ClientMessage, EndReason, ErrorCode, InviteState, Invitee, ParticipantId, ServerMessage,
    SessionNumber, Timestamp, TransferTarget,
};
use tandem_session::{
    Event, Invitation, Join, JoinKind, Output, RepInfo, Session, SessionConfig, SessionError,
    Start, Timer,
};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

mod agent_tokens;
mod journal;
mod pipeline;
mod webacd;

pub use journal::{Change, HeldRecord, Journal, Saved, SqliteJournal, Timed};

/// The live-session journal's file in the data directory.
pub const JOURNAL_FILE: &str = "live.db";

pub use agent_tokens::AGENT_TOKEN_LIFETIME;

use crate::clock;
use crate::mailer::{MailJob, MailJobs};
use crate::store::{Account, InvitationRecord, SiteSettings};
use crate::turn::IceConfig;

pub use crate::outbound::{Close, Outbound, OutboundTx};

/// A refusal to send back to a client: a wire code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<SessionError> for Refusal {
    fn from(e: SessionError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

/// Work for the store, done in order by one writer task so the audit log keeps its order.
#[derive(Debug)]
pub enum StoreJob {
    /// An audit record, and its id in the journal's outbox when it is held there until
    /// the store has it.
    Audit {
        record: tandem_session::AuditRecord,
        held: Option<i64>,
    },
    /// An audit record of the site (an administrator's change, a login): after every
    /// record queued before it. `held` as for `Audit`.
    SiteAudit {
        record: crate::store::SiteAuditRecord,
        held: Option<i64>,
    },
    SessionStarted {
        number: String,
        at: i64,
        by: i64,
    },
    SessionEnded {
        number: String,
        reason: String,
        at: i64,
    },
    /// Say when every job before this one is stored (or kept for a retry): in the same
    /// queue, so nothing sent before it can come after it.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// A started session, as the dashboard gets it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Started {
    pub number: String,
    pub display: String,
    pub secret: String,
}

/// Where a connection is after a successful join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seat {
    pub number: SessionNumber,
    pub participant: ParticipantId,
}

/// How a connection comes back to its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Came {
    /// With a resume token.
    Resume,
    /// With the join sent again with its join key.
    Key,
}

/// A participant's place that a resume token or a join key stands for, found under the
/// session's lock.
struct Place {
    /// The token's or key's hash, as the site keeps it.
    hash: String,
    participant: ParticipantId,
}

/// A rep's live session, for the dashboard.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RepSession {
    pub number: String,
    pub display: String,
    /// `primary_rep`, `assistant` or `observer`.
    #[schema(value_type = String, example = "primary_rep")]
    pub role: tandem_protocol::Role,
    pub customers: u32,
}

struct Conn {
    id: u64,
    tx: OutboundTx,
}

struct Live {
    session: Session,
    secret: String,
    /// The wake-up that hands customers without an agent a fresh agent token.
    agent_token_renewal: Option<AbortHandle>,
    /// Where people reach this server, for links in invitations.
    base_url: String,
    /// The account behind every rep participant.
    reps: HashMap<ParticipantId, Account>,
    timers: HashMap<Timer, AbortHandle>,
    /// When each of `timers` is due, to set them again after a restart.
    timer_at: HashMap<Timer, Timestamp>,
    /// The hashes of the session's live resume tokens, and whose seat each brings back
    /// (the site's index, `Site::resume`, has the same ones).
    resume_tokens: Vec<(String, ParticipantId)>,
    /// Its customers' agent tokens as the journal keeps them, copied from the site's
    /// `agent_tokens` whenever they change, so a write needs only the session's lock.
    agent_tokens: Vec<(String, ParticipantId, Timestamp)>,
    /// Its WebACD transfer while it waits for an agent (R10), as the journal keeps it.
    offer: Option<StoredOffer>,
    /// The open connection of each participant.
    conns: HashMap<ParticipantId, Conn>,
    /// Attached agent → its customer, to hand the customer a new token when it leaves.
    agents: HashMap<ParticipantId, ParticipantId>,
    /// Its primary rep's account and its customers, as the site's `loads` last heard them
    /// (none before the first time).
    load: Option<(Option<i64>, u32)>,
    /// What the journal last stored for this session: the session, and the rest as JSON.
    saved: Option<(Session, String)>,
}

impl Live {
    fn new(session: Session, secret: String, base_url: String) -> Self {
        Live {
            session,
            secret,
            agent_token_renewal: None,
            base_url,
            reps: HashMap::new(),
            timers: HashMap::new(),
            timer_at: HashMap::new(),
            resume_tokens: Vec::new(),
            agent_tokens: Vec::new(),
            offer: None,
            conns: HashMap::new(),
            agents: HashMap::new(),
            load: None,
            saved: None,
        }
    }

    /// The account of the session's primary rep (none while a WebACD transfer waits).
    fn primary_account(&self) -> Option<i64> {
        let primary = self.session.primary()?;
        self.reps.get(&primary).map(|a| a.id)
    }
}

/// A live session as the journal keeps it: the session and what the server keeps beside
/// it. Connections, agent tokens and wake-ups are not kept: after a restart everyone
/// reconnects (R2), customers without an agent get a fresh agent token when they do, and
/// timers are set again from `timers`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    /// The layout of this record; a record of another layout is not read (its session
    /// is ended at start, with the reason in the log).
    format: u32,
    session: Session,
    #[serde(flatten)]
    beside: Beside,
}

/// What the server keeps beside the session.
#[derive(serde::Serialize, serde::Deserialize)]
struct Beside {
    secret: String,
    base_url: String,
    reps: Vec<(ParticipantId, Account)>,
    timers: Vec<(Timer, Timestamp)>,
    /// Hashes of live resume tokens, and whose seat each one brings back.
    resume: Vec<(String, ParticipantId)>,
    /// A WebACD transfer waiting for someone to take it (R10).
    offer: Option<StoredOffer>,
    /// Agent tokens of customers still waiting for their agent, by hash: (hash,
    /// customer, issued). A download made before a restart still attaches after it.
    #[serde(default)]
    agent_tokens: Vec<(String, ParticipantId, Timestamp)>,
    /// The next id the server would give out: ids stay unique after a restart, even those
    /// of participants who have left (the audit log names them).
    next_id: u64,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct StoredOffer {
    from: String,
    target: TransferTarget,
    /// Where it goes, by id, as looked up when it began to wait.
    route: Option<tandem_session::RouteTarget>,
    message: Option<String>,
    /// Whom it was offered to when it began to wait.
    to: Vec<i64>,
}

const STORED_FORMAT: u32 = 1;

/// What spans sessions: the indexes from a secret or token to its session, logged-in
/// connections by account, each session's load for the limits across sessions (R4), and
/// WebACD (R10). Behind one lock, always taken after a session's (see [`Op`]).
struct Site {
    by_secret: HashMap<String, SessionNumber>,
    /// Resume tokens' hashes → the seat each brings back.
    resume: HashMap<String, Seat>,
    /// Agent tokens → the customer each attaches to, with their lifetimes.
    agent_tokens: agent_tokens::AgentTokens,
    /// Every open connection of a logged-in account, by account and connection id.
    account_conns: HashMap<i64, HashMap<u64, OutboundTx>>,
    /// Each live session's primary account and admitted customers: what a rep's limits
    /// across sessions (R1, R4) and the WebACD agents' loads are counted from.
    loads: HashMap<SessionNumber, tandem_session::reps::RepSession>,
    /// Dashboards, waiting transfers and the directory of agents and queues (R10).
    webacd: webacd::Webacd,
}

/// How much a kind of the registry's locks is used: decisions under them are made in
/// memory only (writes and sends happen off them, see `pipeline`), so they are held
/// briefly; these figures (in `/metrics` and the bench) show how busy they run, and how
/// long anyone waits for them.
#[derive(Debug, Default)]
struct LockCounters {
    taken: AtomicU64,
    held_ns: AtomicU64,
    waited_ns: AtomicU64,
}

impl LockCounters {
    /// Take a lock with `lock`, counting the wait; the holding time is counted when the
    /// guard goes.
    fn take<G>(&self, lock: impl FnOnce() -> G) -> Held<'_, G> {
        let asked = Instant::now();
        let guard = lock();
        let since = Instant::now();
        self.waited_ns.fetch_add(
            u64::try_from((since - asked).as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        Held {
            guard,
            since,
            counters: self,
        }
    }

    fn figures(&self) -> LockUse {
        LockUse {
            taken: self.taken.load(Ordering::Relaxed),
            held: Duration::from_nanos(self.held_ns.load(Ordering::Relaxed)),
            waited: Duration::from_nanos(self.waited_ns.load(Ordering::Relaxed)),
        }
    }
}

/// See [`Registry::lock_use`].
#[derive(Debug, Clone, Copy)]
pub struct LockUse {
    /// Times a lock was taken.
    pub taken: u64,
    /// Time locks were held, in all.
    pub held: Duration,
    /// Time spent waiting for them, in all.
    pub waited: Duration,
}

/// The use of the registry's locks: the sessions' own (summed over every session, held
/// side by side) and the site's one.
#[derive(Debug, Clone, Copy)]
pub struct LocksUse {
    pub sessions: LockUse,
    pub site: LockUse,
}

/// A lock of the registry, held: counts its holding time when let go.
struct Held<'a, G> {
    guard: G,
    since: Instant,
    counters: &'a LockCounters,
}

impl<G: std::ops::Deref> std::ops::Deref for Held<'_, G> {
    type Target = G::Target;

    fn deref(&self) -> &G::Target {
        &self.guard
    }
}

impl<G: std::ops::DerefMut> std::ops::DerefMut for Held<'_, G> {
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.guard
    }
}

impl<G> Drop for Held<'_, G> {
    fn drop(&mut self) {
        let held = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters.held_ns.fetch_add(held, Ordering::Relaxed);
        self.counters.taken.fetch_add(1, Ordering::Relaxed);
    }
}

/// A live session's own lock; `None` once the session has ended (whoever found it before
/// then finds nothing when they get the lock).
type Slot = Arc<Mutex<Option<Live>>>;

type SessionGuard = parking_lot::ArcMutexGuard<parking_lot::RawMutex, Option<Live>>;

/// One operation on one live session: the session's lock, and the site's lock from the
/// moment the operation first needs it until it ends (so what it decided across sessions,
/// such as a rep's load, cannot change under it). Locks are always taken in that order,
/// a session's and then the site's, and nobody holds two sessions' locks or takes a
/// session's while holding the site's (but for a session being started, which nobody
/// else can reach yet): so no two operations can wait for each other.
/// Operations on different sessions go on side by side; most of them (chat, the relayed
/// offers and candidates, control) never take the site's lock, but in a session waiting
/// for a WebACD agent.
struct Op<'a> {
    registry: &'a Registry,
    number: SessionNumber,
    live: Held<'a, SessionGuard>,
    site: Option<Held<'a, MutexGuard<'a, Site>>>,
}

impl Op<'_> {
    fn live(&mut self) -> Option<&mut Live> {
        self.live.as_mut()
    }

    fn site(&mut self) -> &mut Site {
        self.parts().1
    }

    /// The session (if it is still live) and the site, together.
    fn parts(&mut self) -> (Option<&mut Live>, &mut Site) {
        let registry = self.registry;
        let site = self.site.get_or_insert_with(|| registry.lock_site());
        (self.live.as_mut(), site)
    }
}

pub struct Registry {
    /// Every live session, each behind its own lock. This map's lock is only ever held to
    /// look up, add or remove a session, never while taking another lock.
    sessions: RwLock<HashMap<SessionNumber, Slot>>,
    site: Mutex<Site>,
    /// Where everything that leaves goes: after the journal writes decided before it.
    out: pipeline::Out,
    session_lock_use: LockCounters,
    site_lock_use: LockCounters,
    /// Live sessions on disk, for a restart; none for a server that keeps nothing.
    journal: Option<Arc<dyn Journal>>,
    /// The server is stopping for a restart: nothing that happens now changes a session.
    suspended: AtomicBool,
    next_id: AtomicU64,
    reconnect_grace_ms: u64,
    /// STUN/TURN servers; TURN credentials are issued per participant after a join.
    ice: IceConfig,
    /// Who records sessions, once the server has set it up (none: recording is refused).
    recorders: std::sync::OnceLock<Arc<dyn RecorderHost>>,
    me: Weak<Registry>,
}

/// A recorder to start: the recorder participant's seat and the connection the session
/// talks to it on (an in-process channel, not a socket).
#[derive(Debug)]
pub struct RecorderStart {
    pub seat: Seat,
    pub conn_id: u64,
    pub rx: crate::outbound::OutboundRx,
    /// The rep who started the recording.
    pub started_by: Account,
}

/// Starts recorders (the server's `recorder` module; tests may start their own).
/// `start` is called under the session's lock: it must only hand the recorder on (spawn
/// it), never call back into the registry itself.
pub trait RecorderHost: Send + Sync {
    fn start(&self, registry: Arc<Registry>, start: RecorderStart);
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new(
        store_jobs: mpsc::UnboundedSender<StoreJob>,
        mail_jobs: MailJobs,
        reconnect_grace_ms: u64,
        ice: IceConfig,
        agent_token_lifetime: Duration,
        journal: Option<Arc<dyn Journal>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me: &Weak<Registry>| {
            let out = match &journal {
                Some(journal) => pipeline::Out::journaled(
                    journal.clone(),
                    store_jobs.clone(),
                    mail_jobs.clone(),
                    me.clone(),
                )
                .unwrap_or_else(|e| {
                    // Without the thread, effects go out at once and writes are skipped:
                    // sessions go on, but a restart would end them.
                    tracing::error!("could not start the journal writer: {e}");
                    pipeline::Out::direct(store_jobs.clone(), mail_jobs.clone())
                }),
                None => pipeline::Out::direct(store_jobs, mail_jobs),
            };
            Registry {
                sessions: RwLock::new(HashMap::new()),
                site: Mutex::new(Site {
                    by_secret: HashMap::new(),
                    resume: HashMap::new(),
                    agent_tokens: agent_tokens::AgentTokens::new(agent_token_lifetime),
                    account_conns: HashMap::new(),
                    loads: HashMap::new(),
                    webacd: webacd::Webacd::default(),
                }),
                out,
                session_lock_use: LockCounters::default(),
                site_lock_use: LockCounters::default(),
                journal,
                suspended: AtomicBool::new(false),
                next_id: AtomicU64::new(1),
                reconnect_grace_ms,
                ice,
                recorders: std::sync::OnceLock::new(),
                me: me.clone(),
            }
        })
    }

    fn lock_site(&self) -> Held<'_, MutexGuard<'_, Site>> {
        self.site_lock_use.take(|| self.site.lock())
    }

    fn lock_slot(&self, slot: &Slot) -> Held<'_, SessionGuard> {
        self.session_lock_use.take(|| slot.lock_arc())
    }

    fn slot(&self, number: SessionNumber) -> Option<Slot> {
        self.sessions.read().get(&number).cloned()
    }

    /// Every live session's lock, to take one at a time.
    fn slots(&self) -> Vec<(SessionNumber, Slot)> {
        self.sessions
            .read()
            .iter()
            .map(|(number, slot)| (*number, slot.clone()))
            .collect()
    }

    /// An operation on a live session, refused while the server stops.
    fn op(&self, number: SessionNumber) -> Result<Op<'_>, Refusal> {
        let op = self.op_any(number).ok_or_else(|| not_found(number))?;
        // Checked with the session's lock held: `suspend_all` sets it and then takes every
        // session's lock, so an operation either comes before it, whole, or is refused.
        if self.is_suspended() {
            return Err(restarting());
        }
        Ok(op)
    }

    /// The same, with the answer `gone` when there is no such session live.
    fn op_or(
        &self,
        number: SessionNumber,
        gone: impl FnOnce() -> Refusal,
    ) -> Result<Op<'_>, Refusal> {
        match self.op(number) {
            Err(refusal) if refusal.code == ErrorCode::SessionNotFound => Err(gone()),
            other => other,
        }
    }

    /// An operation on a live session, even while the server stops (to look, or to
    /// rebuild at start).
    fn op_any(&self, number: SessionNumber) -> Option<Op<'_>> {
        let slot = self.slot(number)?;
        let live = self.lock_slot(&slot);
        live.is_some().then_some(Op {
            registry: self,
            number,
            live,
            site: None,
        })
    }

    /// How much the registry's locks have been used since the start (for `/metrics`).
    pub fn lock_use(&self) -> LocksUse {
        LocksUse {
            sessions: self.session_lock_use.figures(),
            site: self.site_lock_use.figures(),
        }
    }

    /// Set who records sessions; before [`Registry::restore`], so that recordings going
    /// on before a restart go on after it.
    pub fn set_recorder_host(&self, host: Arc<dyn RecorderHost>) {
        if self.recorders.set(host).is_err() {
            tracing::warn!("the recorder host was already set");
        }
    }

    /// A fresh id for a connection or a participant.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Wait until every change decided so far is written and its effects are out: an
    /// HTTP answer that tells of a change goes out after it, as a message would. False
    /// when it never will be (the server lost the site lease).
    pub async fn written(&self) -> bool {
        let passed = match self.out.mark() {
            Some(mark) => mark.passed().await,
            None => true,
        };
        // A change decided after the lease was lost was never queued, nor written.
        passed && !self.journal.as_ref().is_some_and(|j| j.fenced())
    }

    /// A connection's own reply (a refusal, a close), after what was decided before it.
    pub fn reply(&self, tx: &OutboundTx, outbound: Outbound) -> bool {
        self.out.send(tx, outbound)
    }

    /// Writes of these sessions failed: write them whole at their next change.
    fn unsaved(&self, numbers: &[SessionNumber]) {
        for &number in numbers {
            if let Some(mut op) = self.op_any(number)
                && let Some(live) = op.live()
            {
                live.saved = None;
            }
        }
    }

    /// R1: a rep starts a session. The number is random among nine-digit numbers that are
    /// not live; the link secret has 256 bits.
    pub fn start(
        &self,
        account: &Account,
        email_invite: bool,
        settings: &SiteSettings,
        base_url: &str,
    ) -> Result<Started, Refusal> {
        if self.is_suspended() {
            return Err(restarting());
        }
        // The new session's lock first, as always: nobody else can reach it yet.
        let slot: Slot = Arc::new(Mutex::new(None));
        let live = self.lock_slot(&slot);
        let site = self.lock_site();
        // Under the site's lock until the session is in its loads: two starts of one rep
        // cannot both pass.
        tandem_session::reps::may_start(
            account.id,
            settings.allow_multiple_sessions,
            site.loads.values().copied(),
        )?;
        let number = {
            let mut sessions = self.sessions.write();
            loop {
                let candidate =
                    SessionNumber::new(rand::random_range(100_000_000..=999_999_999))
                        .ok_or_else(|| Refusal::new(ErrorCode::Internal, "bad session number"))?;
                if let std::collections::hash_map::Entry::Vacant(free) = sessions.entry(candidate) {
                    free.insert(slot.clone());
                    break candidate;
                }
            }
        };
        // Checked again now that it can be found: `suspend_all` either waits for this
        // start to finish, or it was under way already and the start goes no further.
        if self.is_suspended() {
            self.sessions.write().remove(&number);
            return Err(restarting());
        }
        let mut op = Op {
            registry: self,
            number,
            live,
            site: Some(site),
        };
        let secret = clock::secret();
        let primary = ParticipantId(self.next_id());
        let start = Start {
            number,
            primary,
            name: account.display_name.clone(),
            rep: rep_info(account),
            email_invite,
            config: SessionConfig {
                max_customers_per_rep: settings.max_customers_per_rep,
                reconnect_grace_ms: self.reconnect_grace_ms,
                max_file_bytes: u64::from(settings.max_file_mb) * 1_000_000,
                recording_allowed: settings.allow_recording,
                ..SessionConfig::default()
            },
        };
        let (session, outputs) = match Session::start(start, clock::now()) {
            Ok(started) => started,
            Err(e) => {
                self.sessions.write().remove(&number);
                return Err(e.into());
            }
        };
        let mut live = Live::new(session, secret.clone(), base_url.to_owned());
        live.reps.insert(primary, account.clone());
        *op.live = Some(live);
        op.site().by_secret.insert(secret.clone(), number);
        let at = clock::now_millis();
        self.decided(&mut op, outputs);
        if self.journal.as_ref().is_some_and(|j| j.fenced()) {
            // The site lease was lost as it started: nothing of it was written or went
            // out, and it goes no further.
            return Err(restarting());
        }
        // Queued after the session's first write, so it is stored after that write.
        self.out.store(StoreJob::SessionStarted {
            number: number.digits(),
            at,
            by: account.id,
        });
        tracing::info!(session = %number, rep = %account.username, "session started");
        Ok(Started {
            number: number.digits(),
            display: number.to_string(),
            secret,
        })
    }

    /// The sessions this account takes part in as a rep.
    pub fn sessions_of(&self, account: &Account) -> Vec<RepSession> {
        let mut list: Vec<RepSession> = self
            .slots()
            .into_iter()
            .filter_map(|(_, slot)| {
                let live = self.lock_slot(&slot);
                let live = live.as_ref()?;
                let (&participant, _) = live.reps.iter().find(|(_, a)| a.id == account.id)?;
                Some(RepSession {
                    number: live.session.number().digits(),
                    display: live.session.number().to_string(),
                    role: live.session.role(participant)?,
                    customers: live.session.customer_count(),
                })
            })
            .collect();
        list.sort_by(|a, b| a.number.cmp(&b.number));
        list
    }

    /// R2: the rep's session page connects to the session they started.
    pub fn open_session(
        &self,
        conn: (u64, OutboundTx),
        account: &Account,
        number: SessionNumber,
    ) -> Result<Seat, Refusal> {
        // Someone else's live session gets the same answer as a number no session has:
        // no rep can learn which numbers are live by trying them.
        let mut op = self.op_any(number).ok_or_else(|| not_yours(number))?;
        let mine = op
            .live()
            .and_then(|live| {
                live.reps
                    .iter()
                    .find(|(p, a)| a.id == account.id && live.session.role(**p).is_some())
                    .map(|(&p, _)| p)
            })
            .ok_or_else(|| not_yours(number))?;
        if self.is_suspended() {
            return Err(restarting());
        }
        self.attach(&mut op, mine, conn, None)
    }

    /// R8: another rep joins by number as an assistant.
    pub fn assist(
        &self,
        conn: (u64, OutboundTx),
        account: &Account,
        number: SessionNumber,
        join_key: Option<&str>,
    ) -> Result<Seat, Refusal> {
        let mut op = self.op(number)?;
        let key = join_key.map(clock::hash_secret);
        if let Some(place) = self.keyed_place(&mut op, key.as_deref())? {
            return self.take_place(&mut op, place, Some(account), conn, Came::Key);
        }
        if op
            .live()
            .is_some_and(|live| live.reps.values().any(|a| a.id == account.id))
        {
            return Err(Refusal::new(
                ErrorCode::AlreadyJoined,
                "you are already in this session; open it from your dashboard",
            ));
        }
        let join = Join {
            id: ParticipantId(self.next_id()),
            name: account.display_name.clone(),
            kind: JoinKind::Assistant(rep_info(account)),
            rep_load_elsewhere: 0,
        };
        let seat = self.join(&mut op, join, conn, Some(account), key)?;
        tracing::info!(session = %number, rep = %account.username, "assisting");
        Ok(seat)
    }

    /// C2: a customer with the link's secret is admitted directly.
    pub fn join_by_link(
        &self,
        conn: (u64, OutboundTx),
        secret: &str,
        name: &str,
        join_key: Option<&str>,
    ) -> Result<Seat, Refusal> {
        let invalid = || {
            Refusal::new(
                ErrorCode::SessionNotFound,
                "this join link is not valid any more; the session may have ended. Ask your \
                 support rep for a new link",
            )
        };
        let number = self
            .lock_site()
            .by_secret
            .get(secret)
            .copied()
            .ok_or_else(invalid)?;
        let mut op = self.op_or(number, invalid)?;
        if op.live().is_none_or(|live| live.secret != secret) {
            return Err(invalid());
        }
        self.join_customer(&mut op, JoinKind::CustomerByLink, name, conn, join_key)
    }

    /// C2: a customer who typed the number waits to be admitted. The caller rate-limits.
    pub fn join_by_number(
        &self,
        conn: (u64, OutboundTx),
        number: SessionNumber,
        name: &str,
        join_key: Option<&str>,
    ) -> Result<Seat, Refusal> {
        let mut op = self.op(number)?;
        self.join_customer(&mut op, JoinKind::CustomerByNumber, name, conn, join_key)
    }

    fn join_customer(
        &self,
        op: &mut Op<'_>,
        kind: JoinKind,
        name: &str,
        conn: (u64, OutboundTx),
        join_key: Option<&str>,
    ) -> Result<Seat, Refusal> {
        let key = join_key.map(clock::hash_secret);
        if let Some(place) = self.keyed_place(op, key.as_deref())? {
            return self.take_place(op, place, None, conn, Came::Key);
        }
        // The site's lock is held from here until the join is in the loads (R4).
        let number = op.number;
        let load = Self::load_elsewhere(op.site(), number);
        let join = Join {
            id: ParticipantId(self.next_id()),
            name: name.to_owned(),
            kind,
            rep_load_elsewhere: load,
        };
        self.join(op, join, conn, None, key)
    }

    /// Customers the primary rep of `number` helps in their other live sessions (R4).
    fn load_elsewhere(site: &Site, number: SessionNumber) -> u32 {
        tandem_session::reps::load_elsewhere(number, site.loads.values().copied())
    }

    /// A join into the operation's session. `key`: the hash of the client's `join_key`,
    /// which then stands for the place as a resume token does until the place is resumed.
    fn join(
        &self,
        op: &mut Op<'_>,
        join: Join,
        (conn_id, tx): (u64, OutboundTx),
        account: Option<&Account>,
        key: Option<String>,
    ) -> Result<Seat, Refusal> {
        let number = op.number;
        let participant = join.id;
        let name = join.name.clone();
        let live = op.live().ok_or_else(|| not_found(number))?;
        // Register the connection first so the session's first messages reach it.
        live.conns.insert(participant, Conn { id: conn_id, tx });
        let mut notice = None;
        let result = live
            .session
            .handle(Event::Join(join), clock::now())
            .map_err(|e| {
                // R4: the rep hears of a customer who could not get in.
                notice = live.session.join_refused_notice(&name, &e);
                Refusal::from(e)
            });
        let outputs = match result {
            Ok(outputs) => outputs,
            Err(refusal) => {
                live.conns.remove(&participant);
                if let Some((to, message)) = notice {
                    self.deliver(live, to, message);
                }
                return Err(refusal);
            }
        };
        if let Some(account) = account {
            live.reps.insert(participant, account.clone());
        }
        let seat = Seat {
            number,
            participant,
        };
        self.issue_credentials(op, seat, key);
        self.decided(op, outputs);
        Ok(seat)
    }

    /// Attach a connection to an existing participant (the primary's page, or a resume).
    /// `join_key`: the hash of the join key it came back with, which stays the place's.
    fn attach(
        &self,
        op: &mut Op<'_>,
        participant: ParticipantId,
        (conn_id, tx): (u64, OutboundTx),
        join_key: Option<String>,
    ) -> Result<Seat, Refusal> {
        let number = op.number;
        let live = op.live().ok_or_else(|| not_found(number))?;
        if let Some(old) = live.conns.insert(participant, Conn { id: conn_id, tx }) {
            if !self.out.send(&old.tx, Outbound::Close(Close::Replaced)) {
                tracing::debug!("the replaced connection was already gone");
            }
        }
        let seat = Seat {
            number,
            participant,
        };
        self.issue_credentials(op, seat, join_key);
        self.handle(op, Event::Connected { who: participant })?;
        Ok(seat)
    }

    /// A participant's connection gets a resume token as soon as it is in (or waiting).
    /// Only the newest token of a seat works: a page that reconnects again and again
    /// leaves nothing behind. `join_key`: the hash of the join's own key, which works as
    /// a second token until the seat's next one is issued.
    fn issue_credentials(&self, op: &mut Op<'_>, seat: Seat, join_key: Option<String>) {
        let token = clock::secret();
        // Kept by hash only, in memory and in the journal: a leaked database resumes
        // nobody.
        let hash = clock::hash_secret(&token);
        let (Some(live), site) = op.parts() else {
            return;
        };
        forget_resume_tokens(live, site, seat.participant);
        site.resume.insert(hash.clone(), seat);
        live.resume_tokens.push((hash, seat.participant));
        if let Some(key) = join_key {
            site.resume.insert(key.clone(), seat);
            live.resume_tokens.push((key, seat.participant));
        }
        // On disk before the client has it, or a restart could strand it.
        self.persist(op);
        if let Some(live) = op.live() {
            self.deliver(live, seat.participant, ServerMessage::ResumeToken { token });
        }
    }

    /// The customer's agent attaches with the one-time token their page received (on a
    /// command line, or built into the download). An expired token gets its own code, so
    /// the agent can tell the customer to download it again.
    pub fn attach_agent(
        &self,
        conn: (u64, OutboundTx),
        token: &str,
        join_key: Option<&str>,
    ) -> Result<Seat, Refusal> {
        let hash = clock::hash_secret(token);
        let redeem = |site: &Site| {
            site.agent_tokens
                .redeem(&hash, clock::now())
                .map_err(agent_token_refused)
        };
        let key = join_key.map(clock::hash_secret);
        let number = {
            let site = self.lock_site();
            match redeem(&site) {
                Ok(customer) => customer.number,
                // Used, perhaps by this agent's own attach whose answer it never got.
                Err(refused) => match key.as_ref().and_then(|key| site.resume.get(key)) {
                    Some(place) => place.number,
                    None => return Err(refused),
                },
            }
        };
        let mut op = self.op(number)?;
        if let Some(place) = self.keyed_place(&mut op, key.as_deref())? {
            return self.take_place(&mut op, place, None, conn, Came::Key);
        }
        // Again under the session's lock: it may have been used meanwhile.
        let customer = redeem(op.site())?;
        if customer.number != number {
            return Err(agent_token_refused(agent_tokens::Refused::Unknown));
        }
        let name = op
            .live()
            .and_then(|live| {
                live.session
                    .participants()
                    .into_iter()
                    .find(|p| p.id == customer.participant)
            })
            .map(|p| {
                let name: String = p.name.chars().take(50).collect();
                format!("{name}'s computer")
            })
            .ok_or_else(|| not_found(customer.number))?;
        let join = Join {
            id: ParticipantId(self.next_id()),
            name,
            kind: JoinKind::Agent {
                customer: customer.participant,
            },
            rep_load_elsewhere: 0,
        };
        // One agent per token, and none of the customer's other tokens stays usable:
        // forgotten before the join, whose state write (before `joined` goes out) then
        // has them used up on disk too, so a restart cannot make them work again.
        let theirs: Vec<_> = op
            .site()
            .agent_tokens
            .kept(customer.number)
            .into_iter()
            .filter(|(_, participant, _)| *participant == customer.participant)
            .collect();
        self.change_agent_tokens(&mut op, |tokens| {
            tokens.forget_customer(customer.participant);
        });
        let seat = match self.join(&mut op, join, conn, None, key) {
            Ok(seat) => seat,
            Err(refusal) => {
                self.change_agent_tokens(&mut op, |tokens| {
                    for (hash, _, issued) in theirs {
                        tokens.restore(hash, customer, issued);
                    }
                });
                return Err(refusal);
            }
        };
        if let Some(live) = op.live() {
            live.agents.insert(seat.participant, customer.participant);
        }
        Ok(seat)
    }

    /// Change the site's agent tokens of the operation's session, and keep the session's
    /// copy of them (what its next write keeps) the same.
    fn change_agent_tokens(
        &self,
        op: &mut Op<'_>,
        change: impl FnOnce(&mut agent_tokens::AgentTokens),
    ) {
        let number = op.number;
        let (live, site) = op.parts();
        change(&mut site.agent_tokens);
        if let Some(live) = live {
            live.agent_tokens = site.agent_tokens.kept(number);
        }
    }

    /// The seat a live agent token belongs to, for a download that carries it. The token
    /// stays usable: it is used up when the agent attaches.
    pub fn agent_token_seat(&self, token: &str) -> Option<Seat> {
        self.lock_site()
            .agent_tokens
            .valid(&clock::hash_secret(token), clock::now())
    }

    /// A customer who is in the session and has no agent gets a fresh agent token (the
    /// one before stays valid until it expires), and the session's renewal is rescheduled.
    fn issue_agent_token(&self, op: &mut Op<'_>, customer: ParticipantId) {
        if op.live().is_none() {
            return;
        }
        let token = format!("agt_{}", clock::secret());
        let seat = Seat {
            number: op.number,
            participant: customer,
        };
        self.change_agent_tokens(op, |tokens| {
            tokens.issue(seat, clock::hash_secret(&token), clock::now());
        });
        self.schedule_agent_token_renewal(op);
        // On disk before the customer has it, or a restart could strand their download.
        self.persist(op);
        if let Some(live) = op.live() {
            self.deliver(live, customer, ServerMessage::AgentToken { token });
        }
    }

    /// Wake up when the session's next customer is due a fresh agent token (the pattern
    /// of `set_timer`: one task per session, replaced on every change, aborted at the end).
    fn schedule_agent_token_renewal(&self, op: &mut Op<'_>) {
        let number = op.number;
        let (Some(live), site) = op.parts() else {
            return;
        };
        if let Some(old) = live.agent_token_renewal.take() {
            old.abort();
        }
        let Some(at) = site.agent_tokens.next_renewal(number) else {
            return;
        };
        let delay = Duration::from_millis(at.0.saturating_sub(clock::now().0));
        let me = self.me.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(registry) = me.upgrade() {
                registry.renew_agent_tokens(number);
            }
        });
        live.agent_token_renewal = Some(task.abort_handle());
    }

    /// Customers still in the session without an agent get a fresh token before theirs
    /// expires; anyone else's tokens are forgotten. Rescheduling replaces (and aborts) the
    /// current wake-up, whichever task runs this, so one wake-up per session stays pending.
    fn renew_agent_tokens(&self, number: SessionNumber) {
        let Ok(mut op) = self.op(number) else {
            return;
        };
        let (Some(live), site) = op.parts() else {
            return;
        };
        let waiting_for_agent: Vec<ParticipantId> = live
            .session
            .participants()
            .into_iter()
            .filter(|p| p.role == tandem_protocol::Role::Customer && p.agent.is_none())
            .map(|p| p.id)
            .collect();
        let due = site.agent_tokens.due(number, clock::now());
        for seat in due {
            if waiting_for_agent.contains(&seat.participant) {
                self.issue_agent_token(&mut op, seat.participant);
            } else {
                self.change_agent_tokens(&mut op, |tokens| {
                    tokens.forget_customer(seat.participant);
                });
            }
        }
        self.schedule_agent_token_renewal(&mut op);
    }

    /// R2: come back after a lost connection. A rep's seat comes back only to a
    /// connection logged in as that same, still enabled account: a resume token alone is
    /// not enough for a rep.
    pub fn resume(
        &self,
        conn: (u64, OutboundTx),
        token: &str,
        account: Option<&Account>,
    ) -> Result<Seat, Refusal> {
        let gone = || {
            Refusal::new(
                ErrorCode::SessionNotFound,
                "this resume token is not valid (used already, or you were away too long); \
                 join again",
            )
        };
        let hash = clock::hash_secret(token);
        let seat = self
            .lock_site()
            .resume
            .get(&hash)
            .copied()
            .ok_or_else(gone)?;
        let mut op = self.op_or(seat.number, gone)?;
        // Again under the session's lock: it may have been used or replaced meanwhile.
        let place = Self::place(&mut op, &hash).ok_or_else(gone)?;
        self.take_place(&mut op, place, account, conn, Came::Resume)
    }

    /// The live place in the operation's session that a resume token's or a join key's
    /// `hash` stands for, if any.
    fn place(op: &mut Op<'_>, hash: &str) -> Option<Place> {
        let number = op.number;
        let (Some(live), site) = op.parts() else {
            return None;
        };
        let seat = site.resume.get(hash).copied()?;
        (seat.number == number && live.session.role(seat.participant).is_some()).then(|| Place {
            hash: hash.to_owned(),
            participant: seat.participant,
        })
    }

    /// A join sent again with its `join_key` (its connection was lost before the answer):
    /// the place the first one made, if it did. A key that stands for a place in another
    /// session is refused, rather than joining anew and taking it over.
    fn keyed_place(&self, op: &mut Op<'_>, key: Option<&str>) -> Result<Option<Place>, Refusal> {
        let Some(key) = key else {
            return Ok(None);
        };
        let number = op.number;
        let place = Self::place(op, key);
        if place.is_none()
            && op
                .site()
                .resume
                .get(key)
                .is_some_and(|s| s.number != number)
        {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                "this join_key is another join's; choose a new random key for every join",
            ));
        }
        Ok(place)
    }

    /// R2: a connection takes back its place (a resume, or a join sent again with its key).
    /// A rep's seat comes back only to a connection logged in as that same, still enabled
    /// account. A resume token is used up, and with it the place's join key; a join key
    /// stays the place's (the answer to this join may be lost too), but only for a
    /// connection newer than the one the place has: a late copy of the join, read from a
    /// connection the client gave up on, does not take the place from its retry.
    fn take_place(
        &self,
        op: &mut Op<'_>,
        place: Place,
        account: Option<&Account>,
        conn: (u64, OutboundTx),
        came: Came,
    ) -> Result<Seat, Refusal> {
        let number = op.number;
        let (Some(live), site) = op.parts() else {
            return Err(not_found(number));
        };
        if came == Came::Key
            && live
                .conns
                .get(&place.participant)
                .is_some_and(|current| current.id > conn.0)
        {
            return Err(Refusal::new(
                ErrorCode::AlreadyJoined,
                "this join was carried out on a newer connection already",
            ));
        }
        if let Some(rep) = live.reps.get(&place.participant) {
            if account.map(|a| a.id) != Some(rep.id) {
                return Err(Refusal::new(
                    ErrorCode::NotPermitted,
                    "log in again to come back to this session as a support rep",
                ));
            }
        }
        site.resume.remove(&place.hash);
        live.resume_tokens.retain(|(h, _)| *h != place.hash);
        let key = (came == Came::Key).then_some(place.hash);
        self.attach(op, place.participant, conn, key)
    }

    /// Deliver a message to a participant's connection, if it is open.
    pub fn notify(&self, to: Seat, message: ServerMessage) {
        if let Some(mut op) = self.op_any(to.number)
            && let Some(live) = op.live()
        {
            self.deliver(live, to.participant, message);
        }
    }

    /// A session command from a joined connection.
    pub fn command(&self, seat: Seat, message: ClientMessage) -> Result<(), Refusal> {
        let mut op = self.op(seat.number)?;
        if let ClientMessage::WebacdTransfer { target, .. } = &message {
            // Only one who may transfer learns whether the target exists (R10): anyone
            // else is refused by the session first, and cannot probe agents' names.
            let may = op.live().is_some_and(|live| {
                live.session.role(seat.participant) == Some(tandem_protocol::Role::PrimaryRep)
                    && live
                        .reps
                        .get(&seat.participant)
                        .is_some_and(|account| account.is_webacd)
            });
            if may {
                Self::check_target(op.site(), target)?;
            }
        }
        if message == ClientMessage::StartRecording {
            return self.start_recording(&mut op, seat);
        }
        let event = match message {
            // R4: admitting counts the rep's customers in their other sessions too.
            ClientMessage::Admit { participant } => Event::Admit {
                from: seat.participant,
                participant,
                rep_load_elsewhere: Self::load_elsewhere(op.site(), seat.number),
            },
            message => Event::Command {
                from: seat.participant,
                message,
            },
        };
        self.handle(&mut op, event)
    }

    /// A rep starts recording: the session takes in a recorder participant, whose
    /// connection is a channel to a recorder started here.
    fn start_recording(&self, op: &mut Op<'_>, seat: Seat) -> Result<(), Refusal> {
        let Some(host) = self.recorders.get().cloned() else {
            return Err(Refusal::new(
                ErrorCode::NotPermitted,
                "this server cannot record sessions",
            ));
        };
        let recorder = ParticipantId(self.next_id());
        let conn_id = self.next_id();
        let (tx, rx) = crate::outbound::channel();
        let live = op.live().ok_or_else(|| not_found(seat.number))?;
        live.conns.insert(recorder, Conn { id: conn_id, tx });
        let event = Event::StartRecording {
            from: seat.participant,
            recorder,
        };
        if let Err(refusal) = self.handle(op, event) {
            if let Some(live) = op.live() {
                live.conns.remove(&recorder);
            }
            return Err(refusal);
        }
        let started_by = op
            .live()
            .and_then(|live| live.reps.get(&seat.participant))
            .cloned();
        let (Some(started_by), Some(registry)) = (started_by, self.me.upgrade()) else {
            return Ok(());
        };
        let seat = Seat {
            number: seat.number,
            participant: recorder,
        };
        tracing::info!(session = %seat.number, rep = %started_by.username, "recording started");
        host.start(
            registry,
            RecorderStart {
                seat,
                conn_id,
                rx,
                started_by,
            },
        );
        Ok(())
    }

    /// After a restart: a session that was being recorded gets its recorder back (a new
    /// file from here on; the one before plays up to its last second).
    fn resume_recording(&self, op: &mut Op<'_>) {
        let Some(live) = op.live() else {
            return;
        };
        let Some(recording) = live.session.recording() else {
            return;
        };
        let account = live
            .reps
            .get(&recording.started_by)
            .or_else(|| live.session.primary().and_then(|p| live.reps.get(&p)))
            .cloned();
        let (Some(host), Some(registry), Some(started_by)) =
            (self.recorders.get().cloned(), self.me.upgrade(), account)
        else {
            return;
        };
        let conn_id = self.next_id();
        let (tx, rx) = crate::outbound::channel();
        let seat = match self.attach(op, recording.recorder, (conn_id, tx), None) {
            Ok(seat) => seat,
            Err(refusal) => {
                tracing::warn!(session = %op.number, ?refusal, "the recording could not go on");
                return;
            }
        };
        host.start(
            registry,
            RecorderStart {
                seat,
                conn_id,
                rx,
                started_by,
            },
        );
    }

    /// The connection ended. `clean`: the client closed it (page closed or navigated away:
    /// leave now, R2); otherwise it was lost and the grace period starts.
    pub fn closed(&self, seat: Seat, conn_id: u64, clean: bool) {
        // While the server stops, it closed the connection itself: the participant keeps
        // their place.
        let Ok(mut op) = self.op(seat.number) else {
            return;
        };
        let Some(live) = op.live() else {
            return;
        };
        let current = live
            .conns
            .get(&seat.participant)
            .is_some_and(|c| c.id == conn_id);
        if !current {
            return; // replaced by a newer connection, or already removed
        }
        live.conns.remove(&seat.participant);
        let event = if clean {
            Event::PageClosed {
                who: seat.participant,
            }
        } else {
            Event::ConnectionLost {
                who: seat.participant,
            }
        };
        if let Err(refusal) = self.handle(&mut op, event) {
            tracing::debug!(?refusal, "close of a participant the session no longer has");
        }
    }

    /// A timer set for `at` is due. A wake-up that was already waiting for the session's
    /// lock when its timer was cancelled, or set again for another time, finds it so and
    /// does nothing (aborting it came too late).
    fn fire(&self, number: SessionNumber, timer: Timer, at: Timestamp) {
        let Ok(mut op) = self.op(number) else {
            return;
        };
        let Some(live) = op.live() else {
            return;
        };
        if live.timer_at.get(&timer) != Some(&at) {
            return;
        }
        live.timers.remove(&timer);
        live.timer_at.remove(&timer);
        if let Err(refusal) = self.handle(&mut op, Event::TimerFired(timer)) {
            tracing::debug!(?refusal, "timer for a finished session");
        }
    }

    /// End every live session (an administrator's command, `by` their account, recorded in
    /// each session's audit); returns how many ended. Sessions are ended one at a time:
    /// one started meanwhile may go on.
    pub fn terminate_all(&self, by: Option<&str>) -> usize {
        let mut count = 0;
        for (number, _) in self.slots() {
            let Ok(mut op) = self.op(number) else {
                continue;
            };
            let event = Event::Terminate {
                reason: EndReason::Terminated,
                by: by.map(str::to_owned),
            };
            match self.handle(&mut op, event) {
                Ok(()) => count += 1,
                Err(refusal) => tracing::warn!(?refusal, "could not end session {number}"),
            }
        }
        count
    }

    /// The server stops for a restart or an upgrade: sessions are left as they are (on
    /// disk), and every connection is closed with [`Close::Restarting`], which tells
    /// clients to come back with their resume tokens. An operation already under way on a
    /// session finishes (and is written) before its connections close; none starts after.
    pub fn suspend_all(&self) {
        let first = !self.suspended.swap(true, Ordering::SeqCst);
        self.close_for_restart(first);
    }

    /// The same, from within an operation (which holds a session's lock): on a thread of
    /// its own, which takes every session's lock once this operation has let go of it.
    fn suspend_soon(&self) {
        if self.suspended.swap(true, Ordering::SeqCst) {
            return;
        }
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("tandem-suspend".into())
            .spawn(move || me.close_for_restart(true));
        if let Err(e) = spawned {
            tracing::error!("could not close the connections for the restart: {e}");
        }
    }

    /// Once `suspended` is set: each session's timers stop and its connections close, as
    /// soon as any operation under way on it is done (none starts after it).
    fn close_for_restart(&self, first: bool) {
        let slots = self.slots();
        for (_, slot) in &slots {
            let live = self.lock_slot(slot);
            let Some(live) = live.as_ref() else {
                continue;
            };
            for handle in live.timers.values() {
                handle.abort();
            }
            // After what was queued for them: a join or resume decided (and written) just
            // before gets its `joined` and resume token first, so the client resumes it
            // rather than joining again.
            for conn in live.conns.values() {
                self.out.close_now(&conn.tx, Close::Restarting);
            }
        }
        // Reps' connections outside any session (WebACD dashboards, pages not joined yet)
        // hear it too: they come back as they came. (A rep's session page is here as
        // well: its close also goes after what was queued for it.)
        for tx in self
            .lock_site()
            .account_conns
            .values()
            .flat_map(|c| c.values())
        {
            self.out.close_now(tx, Close::Restarting);
        }
        if first {
            tracing::info!(
                sessions = slots.len(),
                "stopping; live sessions are kept for the next start"
            );
        }
    }

    /// Rebuild the live sessions the journal kept (at start, before serving). Everyone
    /// in them is taken as having lost their connection at this moment: each gets the
    /// grace period (R2) to come back with their resume token. Returns how many sessions
    /// came back; sessions that could not be read are ended (and logged).
    pub fn restore(&self) -> usize {
        let Some(journal) = &self.journal else {
            return 0;
        };
        let rows = match journal.load() {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!("could not read the live sessions kept on disk: {e:#}");
                return 0;
            }
        };
        let mut restored = Vec::new();
        let mut fresh_offers = Vec::new();
        let mut highest = 0u64;
        for (digits, text) in rows {
            let stored = serde_json::from_str::<Stored>(&text)
                .map_err(|e| e.to_string())
                .and_then(|stored| {
                    if stored.format == STORED_FORMAT {
                        Ok(stored)
                    } else {
                        Err(format!(
                            "written in layout {}, not {STORED_FORMAT}",
                            stored.format
                        ))
                    }
                });
            let stored = match stored {
                Ok(stored) if stored.session.ended().is_none() => stored,
                Ok(_) | Err(_) => {
                    if let Err(e) = &stored {
                        tracing::error!(session = %digits, "a live session kept on disk could not be read, so it ends: {e}");
                    }
                    if let Err(e) = journal.remove(&digits) {
                        tracing::error!(session = %digits, "could not forget it: {e:#}");
                    }
                    self.out.store(StoreJob::SessionEnded {
                        number: digits,
                        reason: "server_restarted".into(),
                        at: clock::now_millis(),
                    });
                    continue;
                }
            };
            let Stored {
                session,
                beside:
                    Beside {
                        secret,
                        base_url,
                        reps,
                        timers,
                        resume,
                        offer,
                        agent_tokens,
                        next_id,
                    },
                ..
            } = stored;
            highest = highest.max(next_id.saturating_sub(1));
            let number = session.number();
            let mut live = Live::new(session, secret.clone(), base_url);
            for p in live.session.participants() {
                highest = highest.max(p.id.0);
                if p.role == tandem_protocol::Role::Agent
                    && let Some(customer) = p.customer
                {
                    live.agents.insert(p.id, customer);
                }
            }
            live.reps = reps.into_iter().collect();
            live.resume_tokens = resume.clone();
            live.agent_tokens = agent_tokens.clone();
            // Still waiting for an agent (R10): offered on, first to whom it was offered
            // at its last write. One kept waiting without its offer (the server died
            // between the two writes) is offered afresh.
            let waiting = live.session.waiting_transfer();
            let fresh = offer.is_none() && waiting.is_some();
            live.offer = offer.filter(|_| waiting.is_some());
            let kept_offer = live.offer.clone();
            let grace = live.session.config().reconnect_grace_ms;
            self.sessions
                .write()
                .insert(number, Arc::new(Mutex::new(Some(live))));
            let Some(mut op) = self.op_any(number) else {
                continue;
            };
            let site = op.site();
            for (hash, participant) in resume {
                let seat = Seat {
                    number,
                    participant,
                };
                site.resume.insert(hash, seat);
            }
            site.by_secret.insert(secret, number);
            for (hash, customer, issued) in agent_tokens {
                let seat = Seat {
                    number,
                    participant: customer,
                };
                site.agent_tokens.restore(hash, seat, issued);
            }
            if let (true, Some(transfer)) = (fresh, waiting) {
                // Once the session is whole (its timers, the ids): see below.
                fresh_offers.push((number, transfer));
            } else if let Some(offer) = kept_offer {
                Self::restore_offer(
                    &self.out,
                    site,
                    number,
                    webacd::Offer {
                        from: offer.from,
                        target: offer.target,
                        route: offer.route,
                        message: offer.message,
                        to: offer.to,
                    },
                );
            }
            // Nobody could come back while the server was away: a grace period running then
            // gets at least its whole length again from now (R2).
            let earliest = clock::now().plus_millis(grace);
            for (timer, at) in timers {
                let at = match timer {
                    Timer::Reconnect(_) => at.max(earliest),
                };
                self.set_timer(&mut op, timer, at);
            }
            restored.push(number);
        }
        // Ids stay unique: new participants and connections number on from the highest.
        self.next_id.fetch_max(highest + 1, Ordering::Relaxed);
        for (number, transfer) in fresh_offers {
            let Some(mut op) = self.op_any(number) else {
                continue;
            };
            tracing::warn!(session = %number, "a session waiting for a WebACD agent was kept without its offer: offering it again");
            let (live, site) = op.parts();
            let offer = Self::offer(site, number, transfer);
            if let Some(live) = live {
                live.offer = Some(offer);
            }
            // On disk whole, with whom it is offered to, before they hear of it.
            self.persist(&mut op);
            Self::tell_offered(&self.out, op.site(), number);
        }
        for &number in &restored {
            let Some(mut op) = self.op_any(number) else {
                continue;
            };
            // Customers waiting for their agent keep getting fresh tokens.
            self.schedule_agent_token_renewal(&mut op);
            let connected: Vec<ParticipantId> = op
                .live()
                .map(|live| {
                    live.session
                        .participants()
                        .into_iter()
                        .filter(|p| p.connected)
                        .map(|p| p.id)
                        .collect()
                })
                .unwrap_or_default();
            for who in connected {
                if let Err(refusal) = self.handle(&mut op, Event::ConnectionLost { who }) {
                    tracing::debug!(?refusal, "a restored participant could not be marked away");
                }
            }
            self.resume_recording(&mut op);
            // In the site's loads even if nothing was decided above.
            self.count_load(&mut op);
            tracing::info!(session = %number, "live session carried on after the restart");
        }
        restored.len()
    }

    fn handle(&self, op: &mut Op<'_>, event: Event) -> Result<(), Refusal> {
        let number = op.number;
        let live = op.live().ok_or_else(|| not_found(number))?;
        let outputs = live.session.handle(event, clock::now())?;
        self.decided(op, outputs);
        Ok(())
    }

    /// A session decided on an event: keep its new state on disk, then carry out the
    /// outputs, then keep what carrying them out changed (tokens, reps who left).
    fn decided(&self, op: &mut Op<'_>, outputs: Vec<Output>) {
        if self.journal.as_ref().is_some_and(|j| j.fenced()) {
            // The site lease is gone (site.rs): another server may own this session now.
            // Nothing of this change goes out; everyone reconnects to the successor.
            self.suspend_soon();
            return;
        }
        if let Some(live) = op.live() {
            for output in &outputs {
                match output {
                    Output::SetTimer { timer, at } => {
                        live.timer_at.insert(*timer, *at);
                    }
                    Output::CancelTimer(timer) => {
                        live.timer_at.remove(timer);
                    }
                    _ => {}
                }
            }
        }
        // The audit records go with the new state in one write (C3: a crash between the
        // event and the store's write loses no record), and the effects after it.
        let (audit, outputs): (Vec<Output>, Vec<Output>) = outputs
            .into_iter()
            .partition(|o| matches!(o, Output::Audit(_)));
        let records = audit
            .into_iter()
            .filter_map(|o| match o {
                Output::Audit(record) => Some(record),
                _ => None,
            })
            .collect();
        self.keep(op, records);
        self.apply(op, outputs);
        self.persist(op);
        self.count_load(op);
    }

    /// Tell the site's loads of a change in the session's primary rep or customers (the
    /// site's lock is taken only then).
    fn count_load(&self, op: &mut Op<'_>) {
        let number = op.number;
        let Some(live) = op.live() else {
            return;
        };
        let now = (live.primary_account(), live.session.customer_count());
        let before = live.load.replace(now);
        if before == Some(now) {
            return;
        }
        let site = op.site();
        site.loads.insert(
            number,
            tandem_session::reps::RepSession {
                number,
                primary_account: now.0,
                customers: now.1,
            },
        );
        // An agent's load on the dashboards is the sessions they are the primary rep of.
        if before.map(|(primary, _)| primary) != Some(now.0) {
            Self::loads_changed(&self.out, site);
        }
    }

    /// Write the session's state to the journal if it changed since the last write.
    fn persist(&self, op: &mut Op<'_>) {
        self.keep(op, Vec::new());
    }

    /// The same, with audit records (stored after the write; at once when nothing is
    /// written). Everything sent from now on goes out after the write.
    fn keep(&self, op: &mut Op<'_>, records: Vec<tandem_session::AuditRecord>) {
        let number = op.number;
        // A waiting transfer is kept offered to whom the site offers it now (WebACD
        // routes it again as agents come and go), so a restart offers it to them again.
        // (So each event of a session waiting for an agent takes the site's lock.)
        if op.live().is_some_and(|live| live.offer.is_some())
            && let (Some(live), site) = op.parts()
            && let (Some(offer), Some(now)) = (&mut live.offer, site.webacd.offers.get(&number))
        {
            offer.to.clone_from(&now.to);
        }
        let state = match op.live() {
            Some(live) if self.out.journaled_here() => {
                self.state_to_save(number, live).map(|(text, saved)| {
                    // Taken as written; a failed write clears it (`unsaved`).
                    live.saved = Some(saved);
                    (text, clock::now_millis())
                })
            }
            _ => None,
        };
        self.out.keep(number, state, records);
    }

    /// The session's state as the journal keeps it, with what `saved` is to remember,
    /// unless nothing changed since the last write.
    fn state_to_save(
        &self,
        number: SessionNumber,
        live: &Live,
    ) -> Option<(String, (tandem_session::Session, String))> {
        let beside = Beside {
            secret: live.secret.clone(),
            base_url: live.base_url.clone(),
            reps: live.reps.iter().map(|(p, a)| (*p, a.clone())).collect(),
            timers: live.timer_at.iter().map(|(t, at)| (*t, *at)).collect(),
            resume: live.resume_tokens.clone(),
            agent_tokens: live.agent_tokens.clone(),
            offer: live.offer.clone(),
            // Not compared for "changed": it moves with every connection.
            next_id: 0,
        };
        let Ok(beside_text) = serde_json::to_string(&beside) else {
            tracing::error!(session = %number, "could not write down the session");
            return None;
        };
        // Most events (chat, relayed offers and candidates) change nothing to keep.
        if let Some((session, text)) = &live.saved
            && *text == beside_text
            && session.same_state(&live.session)
        {
            return None;
        }
        let stored = Stored {
            format: STORED_FORMAT,
            session: live.session.clone(),
            beside: Beside {
                next_id: self.next_id.load(Ordering::Relaxed),
                ..beside
            },
        };
        let text = match serde_json::to_string(&stored) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(session = %number, "could not write down the session: {e}");
                return None;
            }
        };
        Some((text, (stored.session, beside_text)))
    }

    fn is_suspended(&self) -> bool {
        self.suspended.load(Ordering::SeqCst)
    }

    /// Carry out a session's outputs, in order.
    fn apply(&self, op: &mut Op<'_>, outputs: Vec<Output>) {
        let number = op.number;
        for output in outputs {
            match output {
                Output::Send { to, message } => {
                    let Some(live) = op.live() else {
                        continue;
                    };
                    // Whoever is in (not merely waiting) gets ICE servers with TURN
                    // credentials of their own, just before `joined`.
                    if matches!(&message, ServerMessage::Joined(_)) {
                        let now_secs = u64::try_from(clock::now_millis() / 1000).unwrap_or(0);
                        let ice_servers = self.ice.for_participant(to, now_secs);
                        self.deliver(live, to, ServerMessage::IceServers { ice_servers });
                    }
                    self.deliver(live, to, message);
                }
                Output::AgentTokenWanted { customer } => {
                    self.issue_agent_token(op, customer);
                }
                // Taken out in `decided`: kept with the state, stored after it.
                Output::Audit(_) => {}
                Output::SetTimer { timer, at } => self.set_timer(op, timer, at),
                Output::CancelTimer(timer) => {
                    if let Some(live) = op.live() {
                        live.timer_at.remove(&timer);
                        if let Some(handle) = live.timers.remove(&timer) {
                            handle.abort();
                        }
                    }
                }
                Output::Disconnect {
                    participant,
                    reason,
                } => self.disconnect(op, participant, reason),
                Output::Invite(invitation) => self.invite(op, invitation),
                Output::RetryInvite {
                    by,
                    invite,
                    language,
                } => {
                    let job = MailJob::Retry {
                        id: i64::try_from(invite).unwrap_or(-1),
                        notify: Seat {
                            number,
                            participant: by,
                        },
                        language: crate::mail::Language::from_tag(language.as_deref()),
                    };
                    self.out.mail(job);
                }
                Output::Transfer(transfer) => {
                    tracing::info!(session = %number, target = ?transfer.target, "WebACD transfer");
                    let (live, site) = op.parts();
                    let offer = Self::offer(site, number, transfer);
                    if let Some(live) = live {
                        live.offer = Some(offer);
                    }
                    // On disk with whom it is offered to before any agent hears of it.
                    self.persist(op);
                    Self::tell_offered(&self.out, op.site(), number);
                }
                Output::Ended { reason } => self.remove_session(op, reason),
            }
        }
    }

    /// A participant leaves: their connection closes, and nothing of theirs stays usable.
    fn disconnect(
        &self,
        op: &mut Op<'_>,
        participant: ParticipantId,
        reason: tandem_protocol::LeaveReason,
    ) {
        let (Some(live), site) = op.parts() else {
            return;
        };
        if let Some(conn) = live.conns.remove(&participant) {
            if !self
                .out
                .send(&conn.tx, Outbound::Close(Close::Removed(reason)))
            {
                tracing::debug!("connection already closed");
            }
        }
        // The session's own lists follow, so people who join and leave again and again
        // leave nothing behind.
        forget_resume_tokens(live, site, participant);
        live.reps.remove(&participant);
        let customer = live.agents.remove(&participant);
        self.change_agent_tokens(op, |tokens| tokens.forget_customer(participant));
        // A restarted agent needs a new token: its customer gets one (C1: and the new
        // agent asks for consent again).
        if let Some(customer) = customer {
            let present = op.live().is_some_and(|live| {
                live.session.role(customer) == Some(tandem_protocol::Role::Customer)
            });
            if present {
                self.issue_agent_token(op, customer);
            }
        }
    }

    fn deliver(&self, live: &Live, to: ParticipantId, message: ServerMessage) {
        if let Some(conn) = live.conns.get(&to) {
            if !self.out.send(&conn.tx, Outbound::Message(message)) {
                tracing::debug!(participant = %to, "message to a closing connection dropped");
            }
        }
    }

    fn set_timer(&self, op: &mut Op<'_>, timer: Timer, at: tandem_protocol::Timestamp) {
        let number = op.number;
        let Some(live) = op.live() else {
            return;
        };
        let delay = Duration::from_millis(at.0.saturating_sub(clock::now().0));
        let me = self.me.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(registry) = me.upgrade() {
                registry.fire(number, timer, at);
            }
        });
        live.timer_at.insert(timer, at);
        if let Some(old) = live.timers.insert(timer, task.abort_handle()) {
            old.abort();
        }
    }

    /// R3: server-sent email goes to the mailer, which keeps it; the rep's own email
    /// program gets the same letter as a prepared `mailto:` message.
    fn invite(&self, op: &mut Op<'_>, invitation: Invitation) {
        let Some(live) = op.live() else {
            return;
        };
        let number = invitation.session.digits();
        let language = crate::mail::Language::from_tag(invitation.language.as_deref());
        let link = match invitation.invitee {
            Invitee::Customer => format!("{}/j/{}", live.base_url, live.secret),
            Invitee::SupportRep => format!("{}/session/{number}?assist=1", live.base_url),
        };
        let record = InvitationRecord {
            id: 0,
            session: number,
            invitee: invitation.invitee,
            address: invitation.address,
            by_name: invitation.by_name,
            link,
            join_page: format!("{}/join", live.base_url),
            state: "sending".into(),
            reason: None,
        };
        if invitation.own_email_program {
            let status = ServerMessage::InviteStatus {
                invite: 0, // not kept: the rep's own program sends it
                invitee: record.invitee,
                address: record.address.clone(),
                state: InviteState::OwnEmailProgram {
                    mailto: crate::mail::mailto(&record, language),
                },
            };
            self.deliver(live, invitation.by, status);
            return;
        }
        let job = MailJob::Send {
            invitation: record,
            notify: Seat {
                number: op.number,
                participant: invitation.by,
            },
            language,
        };
        self.out.mail(job);
    }

    fn remove_session(&self, op: &mut Op<'_>, reason: EndReason) {
        let number = op.number;
        let Some(live) = op.live.take() else {
            return;
        };
        // Forgotten in the journal before its number is free for a new session, whose
        // first write then comes after this.
        self.out.forget(number);
        self.sessions.write().remove(&number);
        let site = op.site();
        site.loads.remove(&number);
        Self::withdraw(&self.out, site, number);
        Self::loads_changed(&self.out, site);
        site.by_secret.remove(&live.secret);
        for (token, _) in &live.resume_tokens {
            site.resume.remove(token);
        }
        site.agent_tokens.forget_session(number);
        if let Some(renewal) = &live.agent_token_renewal {
            renewal.abort();
        }
        for handle in live.timers.values() {
            handle.abort();
        }
        for conn in live.conns.values() {
            if !self
                .out
                .send(&conn.tx, Outbound::Close(Close::SessionEnded))
            {
                tracing::debug!("connection already closed");
            }
        }
        let reason = serde_json::to_value(reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "ended".into());
        tracing::info!(session = %number, %reason, "session ended");
        self.out.store(StoreJob::SessionEnded {
            number: number.digits(),
            reason,
            at: clock::now_millis(),
        });
    }

    /// How many sessions are live (for tests and metrics).
    pub fn live_count(&self) -> usize {
        self.sessions.read().len()
    }

    /// Participants of every live session by role and admission (for metrics).
    pub fn participant_counts(
        &self,
    ) -> HashMap<(tandem_protocol::Role, tandem_protocol::Admission), usize> {
        let mut counts = HashMap::new();
        for (_, slot) in self.slots() {
            let live = self.lock_slot(&slot);
            for p in live.iter().flat_map(|live| live.session.participants()) {
                *counts.entry((p.role, p.admission)).or_insert(0) += 1;
            }
        }
        counts
    }

    /// The join link's secret of a live session, for a rep of it who may invite (the
    /// primary or an assistant; not a former primary who only observes, R9).
    pub fn secret_for(&self, account: &Account, number: SessionNumber) -> Option<String> {
        let mut op = self.op_any(number)?;
        let live = op.live()?;
        live.reps
            .iter()
            .any(|(p, a)| {
                a.id == account.id
                    && matches!(
                        live.session.role(*p),
                        Some(tandem_protocol::Role::PrimaryRep | tandem_protocol::Role::Assistant)
                    )
            })
            .then(|| live.secret.clone())
    }

    /// Whether this rep takes part in a live session (for its invitations list).
    pub fn is_rep_of(&self, account: &Account, number: SessionNumber) -> bool {
        self.op_any(number).is_some_and(|mut op| {
            op.live()
                .is_some_and(|live| live.reps.values().any(|a| a.id == account.id))
        })
    }

    /// An account was disabled or its role changed: every live connection of it ends at
    /// once, as if its page were closed (a primary's session ends, R2), and its resume
    /// tokens stop working. Its dashboards close too.
    pub fn revoke_account(&self, account: i64) {
        for (number, _) in self.slots() {
            let Ok(mut op) = self.op(number) else {
                continue;
            };
            let seats: Vec<ParticipantId> = op
                .live()
                .map(|live| {
                    live.reps
                        .iter()
                        .filter(|(_, a)| a.id == account)
                        .map(|(p, _)| *p)
                        .collect()
                })
                .unwrap_or_default();
            for participant in seats {
                if let (Some(live), site) = op.parts() {
                    forget_resume_tokens(live, site, participant);
                    live.conns.remove(&participant);
                }
                let event = Event::PageClosed { who: participant };
                if let Err(refusal) = self.handle(&mut op, event) {
                    tracing::debug!(?refusal, "revoked rep already gone");
                }
                tracing::info!(session = %number, account, "rep's connection revoked");
            }
        }
        // Every connection of the account, joined or not (dashboards, fresh pages).
        let conns = self
            .lock_site()
            .account_conns
            .remove(&account)
            .unwrap_or_default();
        for tx in conns.into_values() {
            // After what their sessions decided about the account's reps leaving.
            self.out.close_now(&tx, Close::AccountChanged);
        }
    }

    /// A logged-in connection opened: it is closed at once if its account is revoked.
    pub fn account_connected(&self, account: i64, conn_id: u64, tx: OutboundTx) {
        self.lock_site()
            .account_conns
            .entry(account)
            .or_default()
            .insert(conn_id, tx);
    }

    /// A logged-in connection ended.
    pub fn account_disconnected(&self, account: i64, conn_id: u64) {
        let mut site = self.lock_site();
        if let Some(conns) = site.account_conns.get_mut(&account) {
            conns.remove(&conn_id);
            if conns.is_empty() {
                site.account_conns.remove(&account);
            }
        }
    }
}

/// A participant's resume tokens stop working (a newer one replaces them, or they left).
fn forget_resume_tokens(live: &mut Live, site: &mut Site, participant: ParticipantId) {
    live.resume_tokens.retain(|(hash, p)| {
        if *p == participant {
            site.resume.remove(hash);
        }
        *p != participant
    });
}

/// The answer to an agent token that does not attach. An expired one gets its own code,
/// so the agent can tell the customer to download it again.
fn agent_token_refused(refused: agent_tokens::Refused) -> Refusal {
    match refused {
        agent_tokens::Refused::Expired => Refusal::new(
            ErrorCode::AgentTokenExpired,
            "this agent download (or command) has expired; go back to your support session \
             page in the browser and download the agent again, or copy the new command shown \
             there",
        ),
        agent_tokens::Refused::Unknown => Refusal::new(
            ErrorCode::SessionNotFound,
            "this agent token is not valid any more; copy the command again from your support \
             session page",
        ),
    }
}

/// Audit records a server that stopped suddenly held for the store and had not written
/// yet (`live::StoreJob::Audit`, `SiteAudit`): written now, in order, before anything new.
pub async fn store_held_audit(
    store: &dyn crate::store::Store,
    journal: &dyn Journal,
) -> anyhow::Result<()> {
    let held = journal.held_audit()?;
    let mut stored = 0;
    for (id, json) in held {
        match HeldRecord::parse(&json) {
            Ok(record) => {
                record.append(store).await.map_err(|e| {
                    anyhow::anyhow!(
                        "could not store the audit records held from before the restart: {e}"
                    )
                })?;
                journal.audit_stored(id)?;
                stored += 1;
            }
            // Kept in the journal for someone to look at; never dropped.
            Err(e) => tracing::error!("audit record {id} held in live.db cannot be read: {e}"),
        }
    }
    if stored > 0 {
        tracing::info!("stored {stored} audit record(s) held from before the restart");
    }
    Ok(())
}

/// `tandem-signaling end-sessions`: end, for good, the live sessions a stopped server
/// kept for its next start (each gets its `ended` audit record and its end in the
/// session history). Returns how many there were. Run it only while the server is
/// stopped; a running server ends them from the admin API instead.
pub async fn end_kept_sessions(
    store: &dyn crate::store::Store,
    journal: &dyn Journal,
) -> anyhow::Result<usize> {
    // What the stopped server still held comes first, in order.
    store_held_audit(store, journal).await?;
    let rows = journal.load()?;
    for (digits, text) in &rows {
        // An unreadable record still ends; it only goes without its audit record.
        if let Ok(stored) = serde_json::from_str::<Stored>(text) {
            let mut session = stored.session;
            let event = Event::Terminate {
                reason: EndReason::Terminated,
                by: None,
            };
            for output in session.handle(event, clock::now()).unwrap_or_default() {
                if let Output::Audit(record) = output {
                    store.append_audit(&record).await?;
                }
            }
        }
        store
            .session_ended(digits, "terminated", clock::now_millis())
            .await?;
        journal.remove(digits)?;
    }
    Ok(rows.len())
}

fn restarting() -> Refusal {
    Refusal::new(
        ErrorCode::Restarting,
        "the server is restarting; your client reconnects by itself",
    )
}

fn rep_info(account: &Account) -> RepInfo {
    RepInfo {
        account: account.username.clone(),
        webacd_agent: account.is_webacd,
    }
}

/// The answer to a rep who may not open a session, the same whether it is live or not.
fn not_yours(number: SessionNumber) -> Refusal {
    Refusal::new(
        ErrorCode::SessionNotFound,
        format!(
            "you have no live session with the number {number}; to help in a colleague's \
             session, use Assist Session"
        ),
    )
}

fn not_found(number: SessionNumber) -> Refusal {
    Refusal::new(
        ErrorCode::SessionNotFound,
        format!("no session has the number {number}; check the number with your support rep"),
    )
}

#[cfg(test)]
mod tests;
