//! Live sessions: the runtime shell around `tandem-session`. It owns the sessions in
//! memory, maps participants to their connections, and carries out what a session asks
//! for: delivering messages, appending audit records, running timers, closing connections.
//! The rules themselves are decided by `tandem_session::Session`, never here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

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

pub use journal::{Change, Journal, Saved, SqliteJournal, Timed};

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
    /// The hashes of the session's resume tokens.
    resume_tokens: Vec<String>,
    /// What the journal last stored for this session: the session, and the rest as JSON.
    saved: Option<(Session, String)>,
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

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredOffer {
    from: String,
    target: TransferTarget,
    /// Where it goes, by id, as looked up when it began to wait.
    route: Option<tandem_session::RouteTarget>,
    message: Option<String>,
    /// Whom it was offered to.
    to: Vec<i64>,
}

const STORED_FORMAT: u32 = 1;

impl Live {
    /// The account of the session's primary rep (none while a WebACD transfer waits).
    fn primary_account(&self) -> Option<i64> {
        let primary = self.session.primary()?;
        self.reps.get(&primary).map(|a| a.id)
    }
}

struct Inner {
    /// Where everything that leaves goes: after the journal writes decided before it.
    out: pipeline::Out,
    sessions: HashMap<SessionNumber, Live>,
    by_secret: HashMap<String, SessionNumber>,
    resume: HashMap<String, Seat>,
    /// Agent tokens → the customer each attaches to, with their lifetimes.
    agent_tokens: agent_tokens::AgentTokens,
    /// Attached agent → its customer, to hand the customer a new token when it leaves.
    agents: HashMap<ParticipantId, ParticipantId>,
    conns: HashMap<ParticipantId, Conn>,
    /// Every open connection of a logged-in account, by account and connection id.
    account_conns: HashMap<i64, HashMap<u64, OutboundTx>>,
    /// Dashboards, waiting transfers and the directory of agents and queues (R10).
    webacd: webacd::Webacd,
}

/// How much the one lock over every live session is used: each session's decisions are
/// made under it, in memory only (writes and sends happen off it, see `pipeline`), so it
/// is held briefly; these figures (in `/metrics` and the bench) show how close to busy it
/// runs, and how long anyone waits for it.
#[derive(Debug, Default)]
struct LockCounters {
    taken: AtomicU64,
    held_ns: AtomicU64,
    waited_ns: AtomicU64,
}

/// See [`Registry::lock_use`].
#[derive(Debug, Clone, Copy)]
pub struct LockUse {
    /// Times the lock was taken.
    pub taken: u64,
    /// Time it was held, in all.
    pub held: Duration,
    /// Time spent waiting for it, in all.
    pub waited: Duration,
}

/// The registry's lock, held: counts its holding time when let go.
struct Held<'a> {
    guard: MutexGuard<'a, Inner>,
    since: Instant,
    use_: &'a LockCounters,
}

impl std::ops::Deref for Held<'_> {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.guard
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.guard
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let held = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.use_.held_ns.fetch_add(held, Ordering::Relaxed);
        self.use_.taken.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Registry {
    inner: Mutex<Inner>,
    lock_use: LockCounters,
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
                inner: Mutex::new(Inner {
                    out,
                    sessions: HashMap::new(),
                    by_secret: HashMap::new(),
                    resume: HashMap::new(),
                    agent_tokens: agent_tokens::AgentTokens::new(agent_token_lifetime),
                    agents: HashMap::new(),
                    conns: HashMap::new(),
                    account_conns: HashMap::new(),
                    webacd: webacd::Webacd::default(),
                }),
                lock_use: LockCounters::default(),
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

    fn lock(&self) -> Held<'_> {
        let asked = Instant::now();
        // A panic while holding the lock would be a bug in this module; the data stays
        // usable, so carry on rather than take the whole server down.
        let guard = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let since = Instant::now();
        self.lock_use.waited_ns.fetch_add(
            u64::try_from((since - asked).as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        Held {
            guard,
            since,
            use_: &self.lock_use,
        }
    }

    /// How much the registry's lock has been used since the start (for `/metrics`).
    pub fn lock_use(&self) -> LockUse {
        LockUse {
            taken: self.lock_use.taken.load(Ordering::Relaxed),
            held: Duration::from_nanos(self.lock_use.held_ns.load(Ordering::Relaxed)),
            waited: Duration::from_nanos(self.lock_use.waited_ns.load(Ordering::Relaxed)),
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
        let mark = self.lock().out.mark();
        let passed = match mark {
            Some(mark) => mark.passed().await,
            None => true,
        };
        // A change decided after the lease was lost was never queued, nor written.
        passed && !self.journal.as_ref().is_some_and(|j| j.fenced())
    }

    /// A connection's own reply (a refusal, a close), after what was decided before it.
    pub fn reply(&self, tx: &OutboundTx, outbound: Outbound) -> bool {
        self.lock().out.send(tx, outbound)
    }

    /// Writes of these sessions failed: write them whole at their next change.
    fn unsaved(&self, numbers: &[SessionNumber]) {
        let mut inner = self.lock();
        for number in numbers {
            if let Some(live) = inner.sessions.get_mut(number) {
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
        let mut inner = self.lock();
        if self.is_suspended() {
            return Err(restarting());
        }
        tandem_session::reps::may_start(
            account.id,
            settings.allow_multiple_sessions,
            Self::rep_sessions(&inner),
        )?;
        let number = loop {
            let candidate = SessionNumber::new(rand::random_range(100_000_000..=999_999_999))
                .ok_or_else(|| Refusal::new(ErrorCode::Internal, "bad session number"))?;
            if !inner.sessions.contains_key(&candidate) {
                break candidate;
            }
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
        let now = clock::now();
        let (session, outputs) = Session::start(start, now)?;
        let mut reps = HashMap::new();
        reps.insert(primary, account.clone());
        inner.sessions.insert(
            number,
            Live {
                session,
                secret: secret.clone(),
                agent_token_renewal: None,
                base_url: base_url.to_owned(),
                reps,
                timers: HashMap::new(),
                timer_at: HashMap::new(),
                resume_tokens: Vec::new(),
                saved: None,
            },
        );
        inner.by_secret.insert(secret.clone(), number);
        let at = clock::now_millis();
        self.decided(&mut inner, number, outputs);
        if self.is_suspended() {
            // The site lease was lost as it started: it goes no further.
            return Err(restarting());
        }
        // Queued after the session's first write, so it is stored after that write.
        inner.out.store(StoreJob::SessionStarted {
            number: number.digits(),
            at,
            by: account.id,
        });
        Self::loads_changed(&mut inner);
        tracing::info!(session = %number, rep = %account.username, "session started");
        Ok(Started {
            number: number.digits(),
            display: number.to_string(),
            secret,
        })
    }

    /// The sessions this account takes part in as a rep.
    pub fn sessions_of(&self, account: &Account) -> Vec<RepSession> {
        let inner = self.lock();
        let mut list: Vec<RepSession> = inner
            .sessions
            .values()
            .filter_map(|live| {
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
        let mut inner = self.lock();
        // Someone else's live session gets the same answer as a number no session has:
        // no rep can learn which numbers are live by trying them.
        let mine = inner
            .sessions
            .get(&number)
            .and_then(|live| {
                live.reps
                    .iter()
                    .find(|(p, a)| a.id == account.id && live.session.role(**p).is_some())
                    .map(|(&p, _)| p)
            })
            .ok_or_else(|| not_yours(number))?;
        self.attach(&mut inner, number, mine, conn)
    }

    /// R8: another rep joins by number as an assistant.
    pub fn assist(
        &self,
        conn: (u64, OutboundTx),
        account: &Account,
        number: SessionNumber,
    ) -> Result<Seat, Refusal> {
        let mut inner = self.lock();
        let live = inner
            .sessions
            .get(&number)
            .ok_or_else(|| not_found(number))?;
        if live.reps.values().any(|a| a.id == account.id) {
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
        let seat = self.join(&mut inner, number, join, conn, Some(account))?;
        tracing::info!(session = %number, rep = %account.username, "assisting");
        Ok(seat)
    }

    /// C2: a customer with the link's secret is admitted directly.
    pub fn join_by_link(
        &self,
        conn: (u64, OutboundTx),
        secret: &str,
        name: &str,
    ) -> Result<Seat, Refusal> {
        let mut inner = self.lock();
        let number = *inner.by_secret.get(secret).ok_or_else(|| {
            Refusal::new(
                ErrorCode::SessionNotFound,
                "this join link is not valid any more; the session may have ended. Ask your \
                 support rep for a new link",
            )
        })?;
        self.join_customer(&mut inner, number, JoinKind::CustomerByLink, name, conn)
    }

    /// C2: a customer who typed the number waits to be admitted. The caller rate-limits.
    pub fn join_by_number(
        &self,
        conn: (u64, OutboundTx),
        number: SessionNumber,
        name: &str,
    ) -> Result<Seat, Refusal> {
        let mut inner = self.lock();
        if !inner.sessions.contains_key(&number) {
            return Err(not_found(number));
        }
        self.join_customer(&mut inner, number, JoinKind::CustomerByNumber, name, conn)
    }

    fn join_customer(
        &self,
        inner: &mut Inner,
        number: SessionNumber,
        kind: JoinKind,
        name: &str,
        conn: (u64, OutboundTx),
    ) -> Result<Seat, Refusal> {
        let load = Self::load_elsewhere(inner, number);
        let join = Join {
            id: ParticipantId(self.next_id()),
            name: name.to_owned(),
            kind,
            rep_load_elsewhere: load,
        };
        self.join(inner, number, join, conn, None)
    }

    /// Customers the primary rep of `number` helps in their other live sessions (R4).
    fn load_elsewhere(inner: &Inner, number: SessionNumber) -> u32 {
        tandem_session::reps::load_elsewhere(number, Self::rep_sessions(inner))
    }

    /// The live sessions as a rep's limits across sessions see them.
    fn rep_sessions(inner: &Inner) -> impl Iterator<Item = tandem_session::reps::RepSession> {
        inner
            .sessions
            .iter()
            .map(|(number, live)| tandem_session::reps::RepSession {
                number: *number,
                primary_account: live.primary_account(),
                customers: live.session.customer_count(),
            })
    }

    fn join(
        &self,
        inner: &mut Inner,
        number: SessionNumber,
        join: Join,
        (conn_id, tx): (u64, OutboundTx),
        account: Option<&Account>,
    ) -> Result<Seat, Refusal> {
        if self.is_suspended() {
            return Err(restarting());
        }
        let participant = join.id;
        let name = join.name.clone();
        // Register the connection first so the session's first messages reach it.
        inner.conns.insert(participant, Conn { id: conn_id, tx });
        let mut notice = None;
        let result = match inner.sessions.get_mut(&number) {
            Some(live) => live
                .session
                .handle(Event::Join(join), clock::now())
                .map_err(|e| {
                    // R4: the rep hears of a customer who could not get in.
                    notice = live.session.join_refused_notice(&name, &e);
                    Refusal::from(e)
                }),
            None => Err(not_found(number)),
        };
        let outputs = match result {
            Ok(outputs) => outputs,
            Err(refusal) => {
                inner.conns.remove(&participant);
                if let Some((to, message)) = notice {
                    Self::deliver(inner, to, message);
                }
                return Err(refusal);
            }
        };
        if let (Some(account), Some(live)) = (account, inner.sessions.get_mut(&number)) {
            live.reps.insert(participant, account.clone());
        }
        let seat = Seat {
            number,
            participant,
        };
        self.issue_credentials(inner, seat);
        self.decided(inner, number, outputs);
        Ok(seat)
    }

    /// Attach a connection to an existing participant (the primary's page, or a resume).
    fn attach(
        &self,
        inner: &mut Inner,
        number: SessionNumber,
        participant: ParticipantId,
        (conn_id, tx): (u64, OutboundTx),
    ) -> Result<Seat, Refusal> {
        if self.is_suspended() {
            return Err(restarting());
        }
        if let Some(old) = inner.conns.insert(participant, Conn { id: conn_id, tx }) {
            if !inner.out.send(&old.tx, Outbound::Close(Close::Replaced)) {
                tracing::debug!("the replaced connection was already gone");
            }
        }
        let seat = Seat {
            number,
            participant,
        };
        self.issue_credentials(inner, seat);
        self.handle(inner, number, Event::Connected { who: participant })?;
        Ok(seat)
    }

    /// A participant's connection gets a resume token as soon as it is in (or waiting).
    /// Only the newest token of a seat works: a page that reconnects again and again
    /// leaves nothing behind.
    fn issue_credentials(&self, inner: &mut Inner, seat: Seat) {
        let token = clock::secret();
        // Kept by hash only, in memory and in the journal: a leaked database resumes
        // nobody.
        let hash = clock::hash_secret(&token);
        let Inner {
            resume, sessions, ..
        } = inner;
        resume.retain(|_, s| *s != seat);
        resume.insert(hash.clone(), seat);
        if let Some(live) = sessions.get_mut(&seat.number) {
            live.resume_tokens.retain(|t| resume.contains_key(t));
            live.resume_tokens.push(hash);
        }
        // On disk before the client has it, or a restart could strand it.
        self.persist(inner, seat.number);
        Self::deliver(
            inner,
            seat.participant,
            ServerMessage::ResumeToken { token },
        );
    }

    /// The customer's agent attaches with the one-time token their page received (on a
    /// command line, or built into the download). An expired token gets its own code, so
    /// the agent can tell the customer to download it again.
    pub fn attach_agent(&self, conn: (u64, OutboundTx), token: &str) -> Result<Seat, Refusal> {
        let mut inner = self.lock();
        let customer = match inner
            .agent_tokens
            .redeem(&clock::hash_secret(token), clock::now())
        {
            Ok(customer) => customer,
            Err(agent_tokens::Refused::Expired) => {
                return Err(Refusal::new(
                    ErrorCode::AgentTokenExpired,
                    "this agent download (or command) has expired; go back to your support \
                     session page in the browser and download the agent again, or copy the \
                     new command shown there",
                ));
            }
            Err(agent_tokens::Refused::Unknown) => {
                return Err(Refusal::new(
                    ErrorCode::SessionNotFound,
                    "this agent token is not valid any more; copy the command again from your \
                     support session page",
                ));
            }
        };
        let name = inner
            .sessions
            .get(&customer.number)
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
        let theirs: Vec<_> = inner
            .agent_tokens
            .kept(customer.number)
            .into_iter()
            .filter(|(_, participant, _)| *participant == customer.participant)
            .collect();
        inner.agent_tokens.forget_customer(customer.participant);
        let seat = match self.join(&mut inner, customer.number, join, conn, None) {
            Ok(seat) => seat,
            Err(refusal) => {
                for (hash, _, issued) in theirs {
                    inner.agent_tokens.restore(hash, customer, issued);
                }
                return Err(refusal);
            }
        };
        inner.agents.insert(seat.participant, customer.participant);
        Ok(seat)
    }

    /// The seat a live agent token belongs to, for a download that carries it. The token
    /// stays usable: it is used up when the agent attaches.
    pub fn agent_token_seat(&self, token: &str) -> Option<Seat> {
        self.lock()
            .agent_tokens
            .valid(&clock::hash_secret(token), clock::now())
    }

    /// A customer who is in the session and has no agent gets a fresh agent token (the
    /// one before stays valid until it expires), and the session's renewal is rescheduled.
    fn issue_agent_token(&self, inner: &mut Inner, number: SessionNumber, customer: ParticipantId) {
        if !inner.sessions.contains_key(&number) {
            return;
        }
        let token = format!("agt_{}", clock::secret());
        let seat = Seat {
            number,
            participant: customer,
        };
        inner
            .agent_tokens
            .issue(seat, clock::hash_secret(&token), clock::now());
        self.schedule_agent_token_renewal(inner, number);
        // On disk before the customer has it, or a restart could strand their download.
        self.persist(inner, number);
        Self::deliver(inner, customer, ServerMessage::AgentToken { token });
    }

    /// Wake up when the session's next customer is due a fresh agent token (the pattern
    /// of `set_timer`: one task per session, replaced on every change, aborted at the end).
    fn schedule_agent_token_renewal(&self, inner: &mut Inner, number: SessionNumber) {
        let Some(live) = inner.sessions.get_mut(&number) else {
            return;
        };
        if let Some(old) = live.agent_token_renewal.take() {
            old.abort();
        }
        let Some(at) = inner.agent_tokens.next_renewal(number) else {
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
        let mut inner = self.lock();
        let Some(live) = inner.sessions.get(&number) else {
            return;
        };
        let waiting_for_agent: Vec<ParticipantId> = live
            .session
            .participants()
            .into_iter()
            .filter(|p| p.role == tandem_protocol::Role::Customer && p.agent.is_none())
            .map(|p| p.id)
            .collect();
        for seat in inner.agent_tokens.due(number, clock::now()) {
            if waiting_for_agent.contains(&seat.participant) {
                self.issue_agent_token(&mut inner, number, seat.participant);
            } else {
                inner.agent_tokens.forget_customer(seat.participant);
            }
        }
        self.schedule_agent_token_renewal(&mut inner, number);
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
        let mut inner = self.lock();
        let gone = || {
            Refusal::new(
                ErrorCode::SessionNotFound,
                "this resume token is not valid (used already, or you were away too long); \
                 join again",
            )
        };
        let hash = clock::hash_secret(token);
        let seat = inner.resume.get(&hash).copied().ok_or_else(gone)?;
        let live = inner.sessions.get(&seat.number);
        let present = live.is_some_and(|live| live.session.role(seat.participant).is_some());
        if !present {
            return Err(gone());
        }
        if let Some(rep) = live.and_then(|live| live.reps.get(&seat.participant)) {
            if account.map(|a| a.id) != Some(rep.id) {
                return Err(Refusal::new(
                    ErrorCode::NotPermitted,
                    "log in again to come back to this session as a support rep",
                ));
            }
        }
        inner.resume.remove(&hash);
        self.attach(&mut inner, seat.number, seat.participant, conn)
    }

    /// Deliver a message to a participant's connection, if it is open.
    pub fn notify(&self, to: ParticipantId, message: ServerMessage) {
        let inner = self.lock();
        Self::deliver(&inner, to, message);
    }

    /// A session command from a joined connection.
    pub fn command(&self, seat: Seat, message: ClientMessage) -> Result<(), Refusal> {
        let mut inner = self.lock();
        // Checked under the lock, as `suspend_all` sets it: nothing slips in between.
        if self.is_suspended() {
            return Err(restarting());
        }
        if let ClientMessage::WebacdTransfer { target, .. } = &message {
            Self::check_target(&inner, target)?;
        }
        if message == ClientMessage::StartRecording {
            return self.start_recording(&mut inner, seat);
        }
        let event = match message {
            // R4: admitting counts the rep's customers in their other sessions too.
            ClientMessage::Admit { participant } => Event::Admit {
                from: seat.participant,
                participant,
                rep_load_elsewhere: Self::load_elsewhere(&inner, seat.number),
            },
            message => Event::Command {
                from: seat.participant,
                message,
            },
        };
        self.handle(&mut inner, seat.number, event)
    }

    /// A rep starts recording: the session takes in a recorder participant, whose
    /// connection is a channel to a recorder started here.
    fn start_recording(&self, inner: &mut Inner, seat: Seat) -> Result<(), Refusal> {
        let Some(host) = self.recorders.get().cloned() else {
            return Err(Refusal::new(
                ErrorCode::NotPermitted,
                "this server cannot record sessions",
            ));
        };
        let recorder = ParticipantId(self.next_id());
        let conn_id = self.next_id();
        let (tx, rx) = crate::outbound::channel();
        inner.conns.insert(recorder, Conn { id: conn_id, tx });
        let event = Event::StartRecording {
            from: seat.participant,
            recorder,
        };
        if let Err(refusal) = self.handle(inner, seat.number, event) {
            inner.conns.remove(&recorder);
            return Err(refusal);
        }
        let started_by = inner
            .sessions
            .get(&seat.number)
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
    fn resume_recording(&self, inner: &mut Inner, number: SessionNumber) {
        let Some(live) = inner.sessions.get(&number) else {
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
        let seat = match self.attach(inner, number, recording.recorder, (conn_id, tx)) {
            Ok(seat) => seat,
            Err(refusal) => {
                tracing::warn!(session = %number, ?refusal, "the recording could not go on");
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
        let mut inner = self.lock();
        if self.is_suspended() {
            // The server closed it for a restart: the participant keeps their place.
            return;
        }
        let current = inner
            .conns
            .get(&seat.participant)
            .is_some_and(|c| c.id == conn_id);
        if !current {
            return; // replaced by a newer connection, or already removed
        }
        inner.conns.remove(&seat.participant);
        let event = if clean {
            Event::PageClosed {
                who: seat.participant,
            }
        } else {
            Event::ConnectionLost {
                who: seat.participant,
            }
        };
        if let Err(refusal) = self.handle(&mut inner, seat.number, event) {
            tracing::debug!(?refusal, "close of a participant the session no longer has");
        }
    }

    fn fire(&self, number: SessionNumber, timer: Timer) {
        let mut inner = self.lock();
        if self.is_suspended() {
            return;
        }
        if let Some(live) = inner.sessions.get_mut(&number) {
            live.timers.remove(&timer);
            live.timer_at.remove(&timer);
        }
        if let Err(refusal) = self.handle(&mut inner, number, Event::TimerFired(timer)) {
            tracing::debug!(?refusal, "timer for a finished session");
        }
    }

    /// End every live session (an administrator's command, `by` their account, recorded in
    /// each session's audit); returns how many ended.
    pub fn terminate_all(&self, by: Option<&str>) -> usize {
        let mut inner = self.lock();
        let numbers: Vec<SessionNumber> = inner.sessions.keys().copied().collect();
        let count = numbers.len();
        for number in numbers {
            let event = Event::Terminate {
                reason: EndReason::Terminated,
                by: by.map(str::to_owned),
            };
            if let Err(refusal) = self.handle(&mut inner, number, event) {
                tracing::warn!(?refusal, "could not end session {number}");
            }
        }
        count
    }

    /// The server stops for a restart or an upgrade: sessions are left as they are (on
    /// disk), and every connection is closed with [`Close::Restarting`], which tells
    /// clients to come back with their resume tokens. Nothing changes a session from now on.
    pub fn suspend_all(&self) {
        let inner = self.lock();
        self.suspend(&inner);
    }

    fn suspend(&self, inner: &Inner) {
        if self.suspended.swap(true, Ordering::Relaxed) {
            return;
        }
        for live in inner.sessions.values() {
            for handle in live.timers.values() {
                handle.abort();
            }
        }
        for conn in inner.conns.values() {
            conn.tx.close_now(Close::Restarting);
        }
        tracing::info!(
            sessions = inner.sessions.len(),
            "stopping; live sessions are kept for the next start"
        );
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
        let mut inner = self.lock();
        let mut restored = Vec::new();
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
                    inner.out.store(StoreJob::SessionEnded {
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
            for p in session.participants() {
                highest = highest.max(p.id.0);
                if p.role == tandem_protocol::Role::Agent
                    && let Some(customer) = p.customer
                {
                    inner.agents.insert(p.id, customer);
                }
            }
            let mut resume_tokens = Vec::new();
            for (hash, participant) in resume {
                inner.resume.insert(
                    hash.clone(),
                    Seat {
                        number,
                        participant,
                    },
                );
                resume_tokens.push(hash);
            }
            inner.by_secret.insert(secret.clone(), number);
            for (hash, customer, issued) in agent_tokens {
                let seat = Seat {
                    number,
                    participant: customer,
                };
                inner.agent_tokens.restore(hash, seat, issued);
            }
            // Still waiting for an agent (R10): offered on as before, to the same agents.
            if let Some(offer) = offer.filter(|_| session.transfer_pending().is_some()) {
                Self::restore_offer(
                    &mut inner,
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
            inner.sessions.insert(
                number,
                Live {
                    session,
                    secret,
                    agent_token_renewal: None,
                    base_url,
                    reps: reps.into_iter().collect(),
                    timers: HashMap::new(),
                    timer_at: HashMap::new(),
                    resume_tokens,
                    saved: None,
                },
            );
            // Nobody could come back while the server was away: a grace period running then
            // gets at least its whole length again from now (R2).
            let grace = inner.sessions[&number].session.config().reconnect_grace_ms;
            let earliest = clock::now().plus_millis(grace);
            for (timer, at) in timers {
                let at = match timer {
                    Timer::Reconnect(_) => at.max(earliest),
                };
                self.set_timer(&mut inner, number, timer, at);
            }
            restored.push(number);
        }
        // Ids stay unique: new participants and connections number on from the highest.
        self.next_id.fetch_max(highest + 1, Ordering::Relaxed);
        for &number in &restored {
            // Customers waiting for their agent keep getting fresh tokens.
            self.schedule_agent_token_renewal(&mut inner, number);
            let connected: Vec<ParticipantId> = inner.sessions[&number]
                .session
                .participants()
                .into_iter()
                .filter(|p| p.connected)
                .map(|p| p.id)
                .collect();
            for who in connected {
                if let Err(refusal) = self.handle(&mut inner, number, Event::ConnectionLost { who })
                {
                    tracing::debug!(?refusal, "a restored participant could not be marked away");
                }
            }
            self.resume_recording(&mut inner, number);
            tracing::info!(session = %number, "live session carried on after the restart");
        }
        Self::loads_changed(&mut inner);
        restored.len()
    }

    fn handle(
        &self,
        inner: &mut Inner,
        number: SessionNumber,
        event: Event,
    ) -> Result<(), Refusal> {
        let live = inner
            .sessions
            .get_mut(&number)
            .ok_or_else(|| not_found(number))?;
        let outputs = live.session.handle(event, clock::now())?;
        self.decided(inner, number, outputs);
        Ok(())
    }

    /// A session decided on an event: keep its new state on disk, then carry out the
    /// outputs, then keep what carrying them out changed (tokens, reps who left).
    fn decided(&self, inner: &mut Inner, number: SessionNumber, outputs: Vec<Output>) {
        if self.journal.as_ref().is_some_and(|j| j.fenced()) {
            // The site lease is gone (site.rs): another server may own this session now.
            // Nothing of this change goes out; everyone reconnects to the successor.
            self.suspend(inner);
            return;
        }
        if let Some(live) = inner.sessions.get_mut(&number) {
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
        self.keep(inner, number, records);
        self.apply(inner, number, outputs);
        self.persist(inner, number);
    }

    /// Write the session's state to the journal if it changed since the last write.
    fn persist(&self, inner: &mut Inner, number: SessionNumber) {
        self.keep(inner, number, Vec::new());
    }

    /// The same, with audit records (stored after the write; at once when nothing is
    /// written). Everything sent from now on goes out after the write.
    fn keep(
        &self,
        inner: &mut Inner,
        number: SessionNumber,
        records: Vec<tandem_session::AuditRecord>,
    ) {
        let save = if inner.out.journaled_here() && !self.is_suspended() {
            self.state_to_save(inner, number)
        } else {
            None
        };
        let state = save.map(|(text, saved)| {
            if let Some(live) = inner.sessions.get_mut(&number) {
                // Taken as written; a failed write clears it (`unsaved`).
                live.saved = Some(saved);
            }
            (text, clock::now_millis())
        });
        inner.out.keep(number, state, records);
    }

    /// The session's state as the journal keeps it, with what `saved` is to remember,
    /// unless nothing changed since the last write.
    fn state_to_save(
        &self,
        inner: &Inner,
        number: SessionNumber,
    ) -> Option<(String, (tandem_session::Session, String))> {
        let live = inner.sessions.get(&number)?;
        let beside = Beside {
            secret: live.secret.clone(),
            base_url: live.base_url.clone(),
            reps: live.reps.iter().map(|(p, a)| (*p, a.clone())).collect(),
            timers: live.timer_at.iter().map(|(t, at)| (*t, *at)).collect(),
            resume: live
                .resume_tokens
                .iter()
                .filter_map(|hash| Some((hash.clone(), inner.resume.get(hash)?.participant)))
                .collect(),
            agent_tokens: inner.agent_tokens.kept(number),
            offer: inner.webacd.offers.get(&number).map(|offer| StoredOffer {
                from: offer.from.clone(),
                target: offer.target.clone(),
                route: offer.route,
                message: offer.message.clone(),
                to: offer.to.clone(),
            }),
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
        self.suspended.load(Ordering::Relaxed)
    }

    /// Carry out a session's outputs, in order.
    fn apply(&self, inner: &mut Inner, number: SessionNumber, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, message } => {
                    // Whoever is in (not merely waiting) gets ICE servers with TURN
                    // credentials of their own, just before `joined`.
                    if matches!(&message, ServerMessage::Joined(_)) {
                        let now_secs = u64::try_from(clock::now_millis() / 1000).unwrap_or(0);
                        let ice_servers = self.ice.for_participant(to, now_secs);
                        Self::deliver(inner, to, ServerMessage::IceServers { ice_servers });
                    }
                    Self::deliver(inner, to, message);
                }
                Output::AgentTokenWanted { customer } => {
                    self.issue_agent_token(inner, number, customer);
                }
                // Taken out in `decided`: kept with the state, stored after it.
                Output::Audit(_) => {}
                Output::SetTimer { timer, at } => self.set_timer(inner, number, timer, at),
                Output::CancelTimer(timer) => {
                    if let Some(live) = inner.sessions.get_mut(&number) {
                        live.timer_at.remove(&timer);
                        if let Some(handle) = live.timers.remove(&timer) {
                            handle.abort();
                        }
                    }
                }
                Output::Disconnect {
                    participant,
                    reason,
                } => {
                    if let Some(conn) = inner.conns.remove(&participant) {
                        if !inner
                            .out
                            .send(&conn.tx, Outbound::Close(Close::Removed(reason)))
                        {
                            tracing::debug!("connection already closed");
                        }
                    }
                    inner
                        .resume
                        .retain(|_, seat| seat.participant != participant);
                    inner.agent_tokens.forget_customer(participant);
                    let Inner {
                        sessions, resume, ..
                    } = &mut *inner;
                    if let Some(live) = sessions.get_mut(&number) {
                        // The session's own lists follow, so people who join and leave
                        // again and again leave nothing behind.
                        live.resume_tokens.retain(|t| resume.contains_key(t));
                        live.reps.remove(&participant);
                    }
                    // A restarted agent needs a new token: its customer gets one (C1: and
                    // the new agent asks for consent again).
                    if let Some(customer) = inner.agents.remove(&participant) {
                        let present = inner.sessions.get(&number).is_some_and(|live| {
                            live.session.role(customer) == Some(tandem_protocol::Role::Customer)
                        });
                        if present {
                            self.issue_agent_token(inner, number, customer);
                        }
                    }
                }
                Output::Invite(invitation) => self.invite(inner, invitation),
                Output::RetryInvite {
                    by,
                    invite,
                    language,
                } => {
                    let job = MailJob::Retry {
                        id: i64::try_from(invite).unwrap_or(-1),
                        session: number.digits(),
                        notify: by,
                        language: crate::mail::Language::from_tag(language.as_deref()),
                    };
                    inner.out.mail(job);
                }
                Output::Transfer(transfer) => {
                    tracing::info!(session = %number, target = ?transfer.target, "WebACD transfer");
                    Self::offer(inner, number, transfer);
                }
                Output::Ended { reason } => self.remove_session(inner, number, reason),
            }
        }
    }

    fn deliver(inner: &Inner, to: ParticipantId, message: ServerMessage) {
        if let Some(conn) = inner.conns.get(&to) {
            if !inner.out.send(&conn.tx, Outbound::Message(message)) {
                tracing::debug!(participant = %to, "message to a closing connection dropped");
            }
        }
    }

    fn set_timer(
        &self,
        inner: &mut Inner,
        number: SessionNumber,
        timer: Timer,
        at: tandem_protocol::Timestamp,
    ) {
        let delay = Duration::from_millis(at.0.saturating_sub(clock::now().0));
        let me = self.me.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(registry) = me.upgrade() {
                registry.fire(number, timer);
            }
        });
        if let Some(live) = inner.sessions.get_mut(&number) {
            live.timer_at.insert(timer, at);
            if let Some(old) = live.timers.insert(timer, task.abort_handle()) {
                old.abort();
            }
        } else {
            task.abort();
        }
    }

    /// R3: server-sent email goes to the mailer, which keeps it; the rep's own email
    /// program gets the same letter as a prepared `mailto:` message.
    fn invite(&self, inner: &mut Inner, invitation: Invitation) {
        let Some(live) = inner.sessions.get(&invitation.session) else {
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
            Self::deliver(inner, invitation.by, status);
            return;
        }
        let job = MailJob::Send {
            invitation: record,
            notify: invitation.by,
            language,
        };
        inner.out.mail(job);
    }

    fn remove_session(&self, inner: &mut Inner, number: SessionNumber, reason: EndReason) {
        let Some(live) = inner.sessions.remove(&number) else {
            return;
        };
        inner.out.forget(number);
        Self::withdraw(inner, number);
        Self::loads_changed(inner);
        inner.by_secret.remove(&live.secret);
        for token in &live.resume_tokens {
            inner.resume.remove(token);
        }
        inner.agent_tokens.forget_session(number);
        if let Some(renewal) = &live.agent_token_renewal {
            renewal.abort();
        }
        inner
            .agents
            .retain(|agent, _| live.session.role(*agent).is_none());
        for handle in live.timers.values() {
            handle.abort();
        }
        for participant in live.session.participants() {
            if let Some(conn) = inner.conns.remove(&participant.id) {
                if !inner
                    .out
                    .send(&conn.tx, Outbound::Close(Close::SessionEnded))
                {
                    tracing::debug!("connection already closed");
                }
            }
        }
        let reason = serde_json::to_value(reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "ended".into());
        tracing::info!(session = %number, %reason, "session ended");
        inner.out.store(StoreJob::SessionEnded {
            number: number.digits(),
            reason,
            at: clock::now_millis(),
        });
    }

    /// How many sessions are live (for tests and metrics).
    pub fn live_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Participants of every live session by role and admission (for metrics).
    pub fn participant_counts(
        &self,
    ) -> HashMap<(tandem_protocol::Role, tandem_protocol::Admission), usize> {
        let inner = self.lock();
        let mut counts = HashMap::new();
        for live in inner.sessions.values() {
            for p in live.session.participants() {
                *counts.entry((p.role, p.admission)).or_insert(0) += 1;
            }
        }
        counts
    }

    /// The join link's secret of a live session, for a rep of it who may invite (the
    /// primary or an assistant; not a former primary who only observes, R9).
    pub fn secret_for(&self, account: &Account, number: SessionNumber) -> Option<String> {
        let inner = self.lock();
        let live = inner.sessions.get(&number)?;
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
        let inner = self.lock();
        inner
            .sessions
            .get(&number)
            .is_some_and(|live| live.reps.values().any(|a| a.id == account.id))
    }

    /// An account was disabled or its role changed: every live connection of it ends at
    /// once, as if its page were closed (a primary's session ends, R2), and its resume
    /// tokens stop working. Its dashboards close too.
    pub fn revoke_account(&self, account: i64) {
        let mut inner = self.lock();
        let seats: Vec<Seat> = inner
            .sessions
            .iter()
            .flat_map(|(number, live)| {
                live.reps
                    .iter()
                    .filter(|(_, a)| a.id == account)
                    .map(|(p, _)| Seat {
                        number: *number,
                        participant: *p,
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        for seat in seats {
            inner.resume.retain(|_, s| *s != seat);
            inner.conns.remove(&seat.participant);
            let event = Event::PageClosed {
                who: seat.participant,
            };
            if let Err(refusal) = self.handle(&mut inner, seat.number, event) {
                tracing::debug!(?refusal, "revoked rep already gone");
            }
            tracing::info!(session = %seat.number, account, "rep's connection revoked");
        }
        // Every connection of the account, joined or not (dashboards, fresh pages).
        let conns = inner.account_conns.remove(&account).unwrap_or_default();
        for tx in conns.into_values() {
            // After what their sessions decided about the account's reps leaving.
            inner.out.close_now(&tx, Close::AccountChanged);
        }
    }

    /// A logged-in connection opened: it is closed at once if its account is revoked.
    pub fn account_connected(&self, account: i64, conn_id: u64, tx: OutboundTx) {
        self.lock()
            .account_conns
            .entry(account)
            .or_default()
            .insert(conn_id, tx);
    }

    /// A logged-in connection ended.
    pub fn account_disconnected(&self, account: i64, conn_id: u64) {
        let mut inner = self.lock();
        if let Some(conns) = inner.account_conns.get_mut(&account) {
            conns.remove(&conn_id);
            if conns.is_empty() {
                inner.account_conns.remove(&account);
            }
        }
    }
}

/// Audit records a server that stopped suddenly held for the store and had not written
/// yet (`live::StoreJob::Audit`): written now, in order, before anything new.
pub async fn store_held_audit(
    store: &dyn crate::store::Store,
    journal: &dyn Journal,
) -> anyhow::Result<()> {
    let held = journal.held_audit()?;
    let mut stored = 0;
    for (id, json) in held {
        match serde_json::from_str::<tandem_session::AuditRecord>(&json) {
            Ok(record) => {
                store.append_audit(&record).await.map_err(|e| {
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
        ErrorCode::Internal,
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
