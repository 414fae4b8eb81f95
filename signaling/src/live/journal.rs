//! Live sessions on disk, so a restarted server carries them on (issue: restart survival).
//!
//! Each live session is kept as one row: its state as of its last change (the
//! `tandem_session::Session` itself, and what the server keeps beside it). The row is
//! written synchronously, under the registry's lock, after the session decided on an event
//! and before any of that event's effects go out: whatever a participant has seen is on
//! disk. It goes when the session ends. At start, every row is a session to rebuild.
//!
//! The rows live in a SQLite file of their own (`live.db` in the data directory, table
//! `live_sessions`), with this one connection as its only writer: a save must finish
//! before the registry's lock is let go, so it must never wait for the store's (async)
//! writer. Keeping it out of `tandem.db` also keeps the live sessions' join secrets out
//! of that file's backups.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;

/// Where live sessions are kept.
pub trait Journal: Send + Sync {
    /// Replace the stored state of session `number`.
    fn save(&self, number: &str, state: &str, at: i64) -> anyhow::Result<()>;
    /// The session ended: forget it.
    fn remove(&self, number: &str) -> anyhow::Result<()>;
    /// Every stored session, as (number, state).
    fn load(&self) -> anyhow::Result<Vec<(String, String)>>;
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
             )",
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

impl Journal for SqliteJournal {
    fn save(&self, number: &str, state: &str, at: i64) -> anyhow::Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO live_sessions (number, state, saved_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (number) DO UPDATE SET state = excluded.state, \
                 saved_at = excluded.saved_at",
            )?
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
}

/// A journal whose every call is timed: `record(operation, took)` (the server feeds its
/// store-call histogram, so an operator sees what the synchronous saves cost).
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
}
