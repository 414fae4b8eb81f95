//! Persistent state behind one trait: accounts, logins, site settings, queues, session
//! history and the audit log. SQLite (embedded, a file under the data directory) is the
//! default implementation; PostgreSQL (`--postgres URL`) the other.

pub mod audit_chain;
mod migrations;
mod postgres;
mod rows;
mod sqlite;
mod timed;

pub use postgres::PostgresStore;
pub use rows::NewAuditRow;
pub use sqlite::SqliteStore;
pub use timed::TimedStore;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database server could not be reached or refused us (the reason in words).
    #[error("{0}")]
    Connect(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A rep or admin account, as the rest of the server sees it (no password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub is_admin: bool,
    pub is_webacd: bool,
    pub disabled: bool,
}

#[derive(Clone, Debug)]
pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub is_webacd: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct AccountChanges {
    pub display_name: Option<String>,
    pub is_admin: Option<bool>,
    pub is_webacd: Option<bool>,
    pub disabled: Option<bool>,
    #[serde(skip)]
    pub password_hash: Option<String>,
}

/// What the admin decides for the whole site (R4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteSettings {
    /// The most customers one rep may help at the same time, across their sessions.
    pub max_customers_per_rep: u32,
    /// Whether a rep may run several sessions at once.
    pub allow_multiple_sessions: bool,
    /// The largest file a rep and a customer may send each other, in megabytes (10⁶
    /// bytes); 0 turns file transfer off. Settings saved before it existed get 2000.
    #[serde(default = "default_max_file_mb")]
    pub max_file_mb: u32,
    /// Whether reps may record sessions. Off unless an administrator allows it.
    #[serde(default)]
    pub allow_recording: bool,
    /// Recordings older than this many days are deleted; 0 keeps them until deleted by
    /// hand. Settings saved before it existed get 30.
    #[serde(default = "default_recording_retention_days")]
    pub recording_retention_days: u32,
}

fn default_recording_retention_days() -> u32 {
    30
}

fn default_max_file_mb() -> u32 {
    2000
}

impl Default for SiteSettings {
    fn default() -> Self {
        Self {
            max_customers_per_rep: 5,
            allow_multiple_sessions: false,
            max_file_mb: default_max_file_mb(),
            allow_recording: false,
            recording_retention_days: default_recording_retention_days(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Queue {
    pub id: i64,
    pub name: String,
    /// Account ids of the WebACD agents who take this queue's sessions.
    pub members: Vec<i64>,
    /// Each session goes to the available member with the fewest sessions, instead of
    /// being offered to every available member to accept by hand.
    pub auto_assign: bool,
}

/// How the server reaches its mail server (R3), set on the admin page or in the config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The sender address, e.g. `Support <support@example.com>`.
    pub from: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain SMTP (a relay on the same host or network).
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// An email invitation as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InvitationRecord {
    pub id: i64,
    /// The session number, 9 digits.
    pub session: String,
    /// `customer` or `support_rep`.
    #[schema(value_type = String, example = "customer")]
    pub invitee: tandem_protocol::Invitee,
    pub address: String,
    pub by_name: String,
    pub link: String,
    pub join_page: String,
    /// `sending`, `sent` or `failed`.
    pub state: String,
    pub reason: Option<String>,
}

/// A recording as kept: one recorded share of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RecordingRecord {
    pub id: i64,
    /// The session number, 9 digits.
    pub session: String,
    /// What was recorded, e.g. `Ann's computer: desktop`.
    pub title: String,
    /// The file's name in the recordings folder.
    #[serde(skip)]
    pub file: String,
    /// The account of the rep who started the recording.
    pub started_by: i64,
    pub started_by_name: String,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: i64,
    pub bytes: i64,
    /// `recording` (going on), `done`, `interrupted` (the server stopped while it was
    /// going on: it plays up to its last second) or `failed` (nothing could be written).
    pub state: String,
}

/// What a recording is started with.
#[derive(Clone, Debug)]
pub struct NewRecording {
    pub session: String,
    pub title: String,
    pub file: String,
    pub started_by: i64,
    pub started_by_name: String,
    pub started_at: i64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An audit record of the site rather than of one session (C3): an administrator's change
/// or a login. It is kept in the same log and hash chain as the sessions' records, with an
/// empty `session`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteAuditRecord {
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    /// Who did it, as `Display Name (username)`.
    pub actor: Option<String>,
    #[serde(flatten)]
    pub action: SiteAction,
}

/// What happened on the site. Accounts and queues are named as they were then (a username,
/// a queue's name), not by an id that a later account or queue could take; passwords never
/// appear, only that one was set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SiteAction {
    /// A rep or admin logged in, from this address.
    LoggedIn {
        account: String,
        address: String,
    },
    /// A login to an existing account was refused after its password was checked:
    /// `wrong_password` or `disabled`. (Attempts on names that exist nowhere, and those
    /// held back by the slow-down, are not recorded: they change nothing, and an attacker
    /// could fill the log with them.)
    LoginRefused {
        account: String,
        address: String,
        reason: String,
        /// Refusals of this account not recorded since its last record: at most one is
        /// recorded per account in 10 minutes, so that guessing cannot bury the log.
        #[serde(skip_serializing_if = "is_zero", default)]
        unrecorded_before: u64,
    },
    AccountCreated {
        account: String,
        display_name: String,
        is_admin: bool,
        is_webacd: bool,
    },
    /// Only the fields that were given; `password_set` when a new password was.
    AccountChanged {
        account: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        display_name: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        is_admin: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        is_webacd: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        disabled: Option<bool>,
        #[serde(default)]
        password_set: bool,
    },
    /// The site settings as saved.
    SettingsChanged {
        settings: serde_json::Value,
    },
    /// The outgoing mail settings as saved, without the password (`has_password` says
    /// whether one is set).
    MailChanged {
        settings: serde_json::Value,
    },
    MailRemoved,
    QueueCreated {
        queue: String,
    },
    QueueDeleted {
        queue: String,
    },
    /// The queue's members as set (usernames).
    QueueMembersSet {
        queue: String,
        members: Vec<String>,
    },
    QueueChanged {
        queue: String,
        auto_assign: bool,
    },
    /// Every live session was ended (after each session's own `ended` record).
    SessionsEndedAll {
        ended: usize,
    },
    /// The `admin` account got a new password, and was enabled again, from the server's
    /// command line (`--reset-admin-password`).
    AdminPasswordReset {
        account: String,
    },
}

/// One audit log entry as stored.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// The session's number (digits); empty for a record of the site (an administrator's
    /// change, a login).
    pub session: String,
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    /// The whole audit record as the session produced it.
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn account_count(&self) -> StoreResult<u64>;
    /// `Conflict` if the username is taken (case-insensitively).
    async fn create_account(&self, account: NewAccount) -> StoreResult<Account>;
    async fn account(&self, id: i64) -> StoreResult<Option<Account>>;
    /// The account and its password hash, for logging in.
    async fn account_for_login(&self, username: &str) -> StoreResult<Option<(Account, String)>>;
    async fn accounts(&self) -> StoreResult<Vec<Account>>;
    async fn update_account(&self, id: i64, changes: AccountChanges) -> StoreResult<Account>;

    async fn create_login(
        &self,
        token_hash: &str,
        account: i64,
        now: i64,
        expires: i64,
    ) -> StoreResult<()>;
    /// The enabled account a login token belongs to, if it has not expired.
    async fn login(&self, token_hash: &str, now: i64) -> StoreResult<Option<Account>>;
    async fn delete_login(&self, token_hash: &str) -> StoreResult<()>;

    async fn settings(&self) -> StoreResult<SiteSettings>;
    async fn save_settings(&self, settings: &SiteSettings) -> StoreResult<()>;

    async fn queues(&self) -> StoreResult<Vec<Queue>>;
    async fn create_queue(&self, name: &str, now: i64) -> StoreResult<Queue>;
    async fn delete_queue(&self, id: i64) -> StoreResult<()>;
    async fn set_queue_members(&self, id: i64, members: &[i64]) -> StoreResult<Queue>;
    async fn set_queue_auto_assign(&self, id: i64, auto_assign: bool) -> StoreResult<Queue>;

    async fn session_started(&self, number: &str, at: i64, by: i64) -> StoreResult<()>;
    async fn session_ended(&self, number: &str, reason: &str, at: i64) -> StoreResult<()>;
    /// Sessions that were live when the server stopped and are not in `keep` (the ones
    /// the live-session journal carries on) cannot come back: mark them ended.
    async fn end_unfinished_sessions(&self, at: i64, keep: &[String]) -> StoreResult<u64>;

    async fn smtp_settings(&self) -> StoreResult<Option<SmtpSettings>>;
    async fn save_smtp_settings(&self, settings: Option<&SmtpSettings>) -> StoreResult<()>;

    /// Keep a new invitation in state `sending`; returns it with its id.
    async fn create_invitation(
        &self,
        invitation: &InvitationRecord,
    ) -> StoreResult<InvitationRecord>;
    async fn set_invitation_state(
        &self,
        id: i64,
        state: &str,
        reason: Option<&str>,
    ) -> StoreResult<()>;
    async fn invitation(&self, id: i64) -> StoreResult<Option<InvitationRecord>>;
    async fn invitations(&self, session: &str) -> StoreResult<Vec<InvitationRecord>>;

    /// Keep a new recording in state `recording`; returns it with its id.
    async fn create_recording(&self, recording: &NewRecording) -> StoreResult<RecordingRecord>;
    /// A recording stopped: its end, length, size and final state.
    async fn finish_recording(
        &self,
        id: i64,
        ended_at: i64,
        duration_ms: i64,
        bytes: i64,
        state: &str,
    ) -> StoreResult<()>;
    async fn recording(&self, id: i64) -> StoreResult<Option<RecordingRecord>>;
    /// Every recording, the newest first.
    async fn recordings(&self) -> StoreResult<Vec<RecordingRecord>>;
    async fn delete_recording(&self, id: i64) -> StoreResult<()>;

    /// Append a record to the audit log, chained after the newest (C3).
    async fn append_audit_row(&self, row: NewAuditRow) -> StoreResult<()>;
    /// Append a session's audit record.
    async fn append_audit(&self, record: &tandem_session::AuditRecord) -> StoreResult<()> {
        self.append_audit_row(NewAuditRow::of_session(record)?)
            .await
    }
    /// Append an audit record of the site (an administrator's change, a login).
    async fn append_site_audit(&self, record: &SiteAuditRecord) -> StoreResult<()> {
        self.append_audit_row(NewAuditRow::of_site(record)?).await
    }
    /// The newest entries first, optionally of one session.
    async fn audit(&self, session: Option<&str>, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    /// Walk the whole audit log in order and check its hash chain (C3).
    async fn verify_audit_chain(&self) -> StoreResult<audit_chain::ChainReport>;

    /// A trivial query, to tell that the database answers (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;
    /// How many invitations are in each state (`sending`, `sent`, `failed`), for metrics.
    async fn invitation_counts(&self) -> StoreResult<Vec<(String, u64)>>;
}
