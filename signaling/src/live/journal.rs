//! Live sessions on disk, so a restarted server carries them on (issue: restart survival).
//!
//! Each live session is kept as one row: its state as of its last change (the
//! `tandem_session::Session` itself, and what the server keeps beside it). The row is
//! written after the session decided on an event and before any of that event's effects
//! go out (`pipeline.rs`: the registry's writer thread writes the changes of many
//! sessions in one transaction, then lets their effects out): whatever a participant has
//! seen is on disk. It goes when the session ends. At start, every row is a session to
//! rebuild.
//!
//! The rows live in a SQLite file of their own (`live.db` in the data directory, table
//! `live_sessions`), with this one connection as its only writer: effects wait for a
//! save, so it must never wait for the store's (async) writer. Keeping it out of
//! `tandem.db` also keeps the live sessions' join secrets out of that file's backups.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;

/// An audit record held in the journal's outbox until the store has it: a session's (its
/// JSON as the store takes it) or the site's (`{"site": …}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldRecord {
    Session(tandem_session::AuditRecord),
    Site(crate::store::SiteAuditRecord),
}

impl HeldRecord {
    /// As the outbox keeps it.
    pub fn to_json(&self) -> String {
        let value = match self {
            HeldRecord::Session(record) => serde_json::to_value(record),
            HeldRecord::Site(record) => {
                serde_json::to_value(record).map(|record| serde_json::json!({ "site": record }))
            }
        };
        value.map(|v| v.to_string()).unwrap_or_default()
    }

    /// A record as the outbox keeps it.
    pub fn parse(json: &str) -> serde_json::Result<HeldRecord> {
        let value: serde_json::Value = serde_json::from_str(json)?;
        match value.as_object() {
            Some(object) if object.len() == 1 && object.contains_key("site") => {
                serde_json::from_value(value["site"].clone()).map(HeldRecord::Site)
            }
            _ => serde_json::from_value(value).map(HeldRecord::Session),
        }
    }

    /// Into the store's audit log.
    pub async fn append(&self, store: &dyn crate::store::Store) -> crate::store::StoreResult<()> {
        match self {
            HeldRecord::Session(record) => store.append_audit(record).await,
            HeldRecord::Site(record) => store.append_site_audit(record).await,
        }
    }
}

/// Where live sessions are kept.
pub trait Journal: Send + Sync {
    /// Replace the stored state of session `number`.
    fn save(&self, number: &str, state: &str, at: i64) -> anyhow::Result<()>;
    /// The session ended: forget it.
    fn remove(&self, number: &str) -> anyhow::Result<()>;
    /// Every stored session, as (number, state).
    fn load(&self) -> anyhow::Result<Vec<(String, String)>>;
    /// In one transaction: replace a session's stored state (number, state, at), if
    /// given, and hold audit records (JSON) until the store has them; their ids, in order.
    /// Written before the effects go out, so a crash loses no record, and never keeps a
    /// record of a change whose state it lost.
    fn save_and_hold(
        &self,
        session: Option<(&str, &str, i64)>,
        records: &[String],
    ) -> anyhow::Result<Vec<i64>>;
    /// The store has the held record `id`: forget it.
    fn audit_stored(&self, id: i64) -> anyhow::Result<()>;
    /// Records held and not yet stored, oldest first, as (id, JSON).
    fn held_audit(&self) -> anyhow::Result<Vec<(i64, String)>>;
    /// Several changes, in order, in one transaction: a group commit, so the changes of
    /// many sessions cost one commit and one sync. The outbox ids of each change's
    /// records (none for a removal). All or nothing in the SQLite and PostgreSQL
    /// journals; this default, for a journal without transactions of its own, makes one
    /// change at a time and stops at the first that fails.
    fn commit(&self, changes: &[Change]) -> anyhow::Result<Vec<Vec<i64>>> {
        changes
            .iter()
            .map(|change| match change {
                Change::Keep { session, records } => self.save_and_hold(
                    session
                        .as_ref()
                        .map(|s| (s.number.as_str(), s.state.as_str(), s.at)),
                    records,
                ),
                Change::Forget(number) => self.remove(number).map(|()| Vec::new()),
            })
            .collect()
    }
    /// This server may no longer write here: another may have taken the sessions over
    /// (site.rs, the site lease). Nothing it decides from now on may go out.
    fn fenced(&self) -> bool {
        false
    }
}

/// One change for [`Journal::commit`].
#[derive(Debug, Clone)]
pub enum Change {
    /// Replace a session's stored state, if given, and hold audit records (JSON) until
    /// the store has them.
    Keep {
        session: Option<Saved>,
        records: Vec<String>,
    },
    /// The session ended: forget it.
    Forget(String),
}

impl Change {
    /// A session's new state (number, state, at), if given, and audit records (JSON).
    pub fn keep(session: Option<(&str, &str, i64)>, records: &[String]) -> Change {
        Change::Keep {
            session: session.map(|(number, state, at)| Saved {
                number: number.to_owned(),
                state: state.to_owned(),
                at,
            }),
            records: records.to_vec(),
        }
    }
}

/// A session's state as stored.
#[derive(Debug, Clone)]
pub struct Saved {
    pub number: String,
    pub state: String,
    /// When, in milliseconds since the epoch.
    pub at: i64,
}

impl<J: Journal + ?Sized> Journal for std::sync::Arc<J> {
    fn save(&self, number: &str, state: &str, at: i64) -> anyhow::Result<()> {
        (**self).save(number, state, at)
    }

    fn remove(&self, number: &str) -> anyhow::Result<()> {
        (**self).remove(number)
    }

    fn load(&self) -> anyhow::Result<Vec<(String, String)>> {
        (**self).load()
    }

    fn save_and_hold(
        &self,
        session: Option<(&str, &str, i64)>,
        records: &[String],
    ) -> anyhow::Result<Vec<i64>> {
        (**self).save_and_hold(session, records)
    }

    fn audit_stored(&self, id: i64) -> anyhow::Result<()> {
        (**self).audit_stored(id)
    }

    fn held_audit(&self) -> anyhow::Result<Vec<(i64, String)>> {
        (**self).held_audit()
    }

    fn commit(&self, changes: &[Change]) -> anyhow::Result<Vec<Vec<i64>>> {
        (**self).commit(changes)
    }

    fn fenced(&self) -> bool {
        (**self).fenced()
    }
}

/// The journal in the server's SQLite database file.
pub struct SqliteJournal {
    conn: Mutex<rusqlite::Connection>,
}

impl std::fmt::Debug for SqliteJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteJournal").finish_non_exhaustive()
    }
}

impl SqliteJournal {
    /// Open (or create) the journal file.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = rusqlite::Connection::open(path)
            .with_context(|| format!("could not open {} for live sessions", path.display()))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS live_sessions (
                 number   TEXT PRIMARY KEY,
                 state    TEXT NOT NULL,
                 saved_at INTEGER NOT NULL
             );
             -- Audit records on their way to the store (an outbox): a record is here
             -- before what it records happens, and goes once the store has it.
             CREATE TABLE IF NOT EXISTS audit_outbox (
                 id     INTEGER PRIMARY KEY AUTOINCREMENT,
                 record TEXT NOT NULL
             );",
        )
        .with_context(|| format!("could not set up {}", path.display()))?;
        // WAL as the store uses it; NORMAL syncs at checkpoints, so a save survives the
        // process being killed (the OS has it), not a power cut.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Only `end-sessions` on a stopped server ever writes beside it.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Replace one session's stored state.
const SAVE: &str = "INSERT INTO live_sessions (number, state, saved_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (number) DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at";

impl Journal for SqliteJournal {
    fn save(&self, number: &str, state: &str, at: i64) -> anyhow::Result<()> {
        self.conn()
            .prepare_cached(SAVE)?
            .execute(rusqlite::params![number, state, at])?;
        Ok(())
    }

    fn remove(&self, number: &str) -> anyhow::Result<()> {
        self.conn()
            .prepare_cached("DELETE FROM live_sessions WHERE number = ?1")?
            .execute([number])?;
        Ok(())
    }

    fn load(&self) -> anyhow::Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut query = conn.prepare("SELECT number, state FROM live_sessions ORDER BY number")?;
        let rows = query
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<Vec<(String, String)>, _>>()?;
        Ok(rows)
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
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut ids = Vec::with_capacity(changes.len());
        {
            let mut save = tx.prepare_cached(SAVE)?;
            let mut hold = tx.prepare_cached("INSERT INTO audit_outbox (record) VALUES (?1)")?;
            let mut forget = tx.prepare_cached("DELETE FROM live_sessions WHERE number = ?1")?;
            for change in changes {
                let mut held = Vec::new();
                match change {
                    Change::Keep { session, records } => {
                        if let Some(s) = session {
                            save.execute(rusqlite::params![s.number, s.state, s.at])?;
                        }
                        for record in records {
                            hold.execute([record])?;
                            held.push(tx.last_insert_rowid());
                        }
                    }
                    Change::Forget(number) => {
                        forget.execute([number])?;
                    }
                }
                ids.push(held);
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    fn audit_stored(&self, id: i64) -> anyhow::Result<()> {
        self.conn()
            .prepare_cached("DELETE FROM audit_outbox WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    fn held_audit(&self) -> anyhow::Result<Vec<(i64, String)>> {
        let conn = self.conn();
        let mut query = conn.prepare("SELECT id, record FROM audit_outbox ORDER BY id")?;
        let rows = query
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<Vec<(i64, String)>, _>>()?;
        Ok(rows)
    }
}

/// A journal whose every call is timed: `record(operation, took)` (the server feeds its
/// store-call histogram, so an operator sees what the saves cost).
pub struct Timed<J> {
    pub inner: J,
    pub record: Box<dyn Fn(&'static str, std::time::Duration) + Send + Sync>,
}

impl<J> std::fmt::Debug for Timed<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timed").finish_non_exhaustive()
    }
}

impl<J: Journal> Timed<J> {
    fn timed<T>(&self, op: &'static str, call: impl FnOnce(&J) -> T) -> T {
        let started = std::time::Instant::now();
        let result = call(&self.inner);
        (self.record)(op, started.elapsed());
        result
    }
}

impl<J: Journal> Journal for Timed<J> {
    fn save(&self, number: &str, state: &str, at: i64) -> anyhow::Result<()> {
        self.timed("live_session_save", |j| j.save(number, state, at))
    }

    fn remove(&self, number: &str) -> anyhow::Result<()> {
        self.timed("live_session_remove", |j| j.remove(number))
    }

    fn load(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.timed("live_sessions_load", |j| j.load())
    }

    fn save_and_hold(
        &self,
        session: Option<(&str, &str, i64)>,
        records: &[String],
    ) -> anyhow::Result<Vec<i64>> {
        self.timed("live_session_save", |j| j.save_and_hold(session, records))
    }

    fn audit_stored(&self, id: i64) -> anyhow::Result<()> {
        self.timed("audit_release", |j| j.audit_stored(id))
    }

    fn held_audit(&self) -> anyhow::Result<Vec<(i64, String)>> {
        self.timed("audit_held_load", |j| j.held_audit())
    }

    fn commit(&self, changes: &[Change]) -> anyhow::Result<Vec<Vec<i64>>> {
        self.timed("live_session_save", |j| j.commit(changes))
    }

    fn fenced(&self) -> bool {
        self.inner.fenced()
    }
}
