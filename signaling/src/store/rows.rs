//! What both stores read and write the same way: the columns they select, rows turned into
//! the server's types, and an audit record turned into the row the chain hashes. Only the
//! SQL around them differs between SQLite and PostgreSQL.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::audit_chain::ChainRow;
use super::{
    Account, AuditEntry, InvitationRecord, RecordingRecord, SiteAuditRecord, SmtpSettings,
    StoreError, StoreResult,
};

pub const ACCOUNT_COLUMNS: &str = "id, username, display_name, is_admin, is_webacd, disabled";

pub const INVITATION_COLUMNS: &str =
    "id, session, invitee, address, by_name, link, join_page, state, reason";

pub const RECORDING_COLUMNS: &str = "id, session, title, file, started_by, started_by_name, \
     started_at, ended_at, duration_ms, bytes, state";

pub fn recording_from<R>(row: &R) -> StoreResult<RecordingRecord>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(RecordingRecord {
        id: row.try_get("id")?,
        session: row.try_get("session")?,
        title: row.try_get("title")?,
        file: row.try_get("file")?,
        started_by: row.try_get("started_by")?,
        started_by_name: row.try_get("started_by_name")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        duration_ms: row.try_get("duration_ms")?,
        bytes: row.try_get("bytes")?,
        state: row.try_get("state")?,
    })
}

/// Every column of an audit record, read as the chain hashes it: a value an attacker stored
/// with another type is read as text (and then fails its hash) instead of failing the read.
pub const CHAIN_COLUMNS: &str = "id, CAST(session AS TEXT) AS session, CAST(at AS BIGINT) AS at, \
     CAST(actor AS TEXT) AS actor, CAST(action AS TEXT) AS action, \
     CAST(record AS TEXT) AS record, CAST(prev_hash AS TEXT) AS prev_hash, \
     CAST(hash AS TEXT) AS hash";

/// Rows read per query when walking the audit log, so that a long walk does not hold a
/// connection (and every request waiting on it) for long.
pub const AUDIT_BATCH: i64 = 1000;

pub fn account_from<R>(row: &R) -> StoreResult<Account>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Account {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        is_admin: row.try_get("is_admin")?,
        is_webacd: row.try_get("is_webacd")?,
        disabled: row.try_get("disabled")?,
    })
}

pub fn invitation_from<R>(row: &R) -> StoreResult<InvitationRecord>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let invitee: String = row.try_get("invitee")?;
    Ok(InvitationRecord {
        id: row.try_get("id")?,
        session: row.try_get("session")?,
        invitee: serde_json::from_value(serde_json::Value::String(invitee))
            .map_err(|e| StoreError::Corrupt(format!("invitation: {e}")))?,
        address: row.try_get("address")?,
        by_name: row.try_get("by_name")?,
        link: row.try_get("link")?,
        join_page: row.try_get("join_page")?,
        state: row.try_get("state")?,
        reason: row.try_get("reason")?,
    })
}

pub fn chain_row_from<R>(row: &R) -> StoreResult<ChainRow>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(ChainRow {
        id: row.try_get("id")?,
        session: row.try_get("session")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        record: row.try_get("record")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// An audit entry from `id, session, at, actor, action, record`.
pub fn audit_entry_from<R>(row: &R) -> StoreResult<AuditEntry>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let record: String = row.try_get("record")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        session: row.try_get("session")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        record: serde_json::from_str(&record)
            .map_err(|e| StoreError::Corrupt(format!("audit entry: {e}")))?,
    })
}

/// An audit record about to be appended: every column but the id and the chain's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditRow {
    /// The session's digits; empty for a record of the site (`SiteAuditRecord`).
    pub session: String,
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    /// The whole record as JSON text.
    pub record: String,
}

impl NewAuditRow {
    /// A session's record.
    pub fn of_session(record: &tandem_session::AuditRecord) -> StoreResult<Self> {
        let actor = record.actor.as_ref().map(|a| match &a.account {
            Some(account) => format!("{} ({account})", a.name),
            None => a.name.clone(),
        });
        Self::from_json(
            record.session.digits(),
            record.at.0,
            actor,
            serde_json::to_value(record),
        )
    }

    /// A record of the site: an administrator's change or a login.
    pub fn of_site(record: &SiteAuditRecord) -> StoreResult<Self> {
        Self::from_json(
            String::new(),
            record.at,
            record.actor.clone(),
            serde_json::to_value(record),
        )
    }

    fn from_json(
        session: String,
        at: u64,
        actor: Option<String>,
        json: serde_json::Result<serde_json::Value>,
    ) -> StoreResult<Self> {
        let json = json.map_err(|e| StoreError::Corrupt(format!("audit record: {e}")))?;
        let action = json
            .get("action")
            .and_then(|a| a.as_str())
            .unwrap_or("unknown")
            .to_owned();
        Ok(Self {
            session,
            at: i64::try_from(at).unwrap_or(i64::MAX),
            actor,
            action,
            record: json.to_string(),
        })
    }

    /// The row as stored, with this id, sealed after `prev_hash`.
    pub fn chained(self, id: i64, prev_hash: &str) -> ChainRow {
        let mut row = ChainRow {
            id,
            session: self.session,
            at: self.at,
            actor: self.actor,
            action: self.action,
            record: self.record,
            prev_hash: None,
            hash: None,
        };
        row.seal(prev_hash);
        row
    }
}

/// The `invitee` column's text for an invitation.
pub fn invitee_text(invitation: &InvitationRecord) -> String {
    serde_json::to_value(invitation.invitee)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Settings kept as JSON text under a key of the `settings` table.
pub fn settings_json<T: serde::Serialize>(what: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub fn settings_from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    json: &str,
) -> StoreResult<T> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// The SMTP settings of an optional `settings` value.
pub fn smtp_from(value: Option<String>) -> StoreResult<Option<SmtpSettings>> {
    value
        .map(|json| settings_from_json("mail settings", &json))
        .transpose()
}

pub fn unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}
