//! The embedded SQLite store: one file, migrations applied at open.

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::audit_chain::{ChainReport, GENESIS, Verifier};
use super::rows::{
    ACCOUNT_COLUMNS, AUDIT_BATCH, CHAIN_COLUMNS, INVITATION_COLUMNS, RECORDING_COLUMNS,
    account_from, audit_entry_from, chain_row_from, invitation_from, invitee_text, recording_from,
    settings_from_json, settings_json, smtp_from, unique_violation,
};
use super::{
    Account, AccountChanges, AuditEntry, InvitationRecord, NewAccount, NewAuditRow, NewRecording,
    Queue, RecordingRecord, SiteSettings, SmtpSettings, Store, StoreError, StoreResult,
};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if needed) the database file and bring its schema up to date.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        Self::connect(options).await
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        Self::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> StoreResult<Self> {
        // One connection: SQLite serialises writers anyway, and an in-memory database is
        // per connection.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        super::migrations::migrator(super::migrations::SQLITE)
            .await?
            .run(&pool)
            .await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let sealed = seal_unchained_audit(&mut tx).await?;
        tx.commit().await?;
        if sealed > 0 {
            tracing::info!("chained {sealed} audit record(s) written before the audit chain");
        }
        Ok(Self { pool })
    }

    /// Open an existing database to read it without changing anything: no migrations, no
    /// sealing (for `tandem-signaling audit verify`).
    pub async fn open_read_only(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new().filename(path).read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let chained: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('audit') WHERE name = 'hash')",
        )
        .fetch_one(&pool)
        .await?;
        if !chained {
            return Err(StoreError::Conflict(
                "this database has no audit chain yet: start this version of the server on it \
                 once to chain the existing records"
                    .into(),
            ));
        }
        Ok(Self { pool })
    }

    /// Copy the database at `source` into a new file `dest` while servers may be using it
    /// (`VACUUM INTO` reads one consistent snapshot and writes a compact copy). An existing
    /// `dest` is never overwritten. The copy holds password hashes: only its owner may
    /// read it.
    pub async fn backup(source: &Path, dest: &Path) -> StoreResult<()> {
        if !source.is_file() {
            return Err(StoreError::Conflict(format!(
                "there is no database at {}",
                source.display()
            )));
        }
        // Create the file first, exclusively: a file that exists already is refused even if
        // it appears between a check and the copy. VACUUM INTO accepts an empty file.
        let created = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dest)
        };
        if let Err(e) = created {
            return Err(StoreError::Conflict(
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    format!("{} exists already; choose a new file name", dest.display())
                } else {
                    format!("could not create {}: {e}", dest.display())
                },
            ));
        }
        let copy = async {
            // Read-only: a backup never changes the database it copies.
            let options = SqliteConnectOptions::new().filename(source).read_only(true);
            let mut conn = sqlx::ConnectOptions::connect(&options).await?;
            let into = dest.to_str().ok_or_else(|| {
                StoreError::Conflict(format!("{} is not a UTF-8 path", dest.display()))
            })?;
            sqlx::query("VACUUM INTO ?")
                .bind(into)
                .execute(&mut conn)
                .await?;
            sqlx::Connection::close(conn).await?;
            StoreResult::Ok(())
        };
        let result = copy.await;
        if result.is_err() {
            if let Err(e) = std::fs::remove_file(dest) {
                tracing::warn!(
                    "could not remove the unfinished backup {}: {e}",
                    dest.display()
                );
            }
        }
        result
    }
}

/// Chain the records written before the chain existed (migration 0004 leaves them without
/// hashes). Only a log with no chained record at all is sealed: an unchained record after
/// chained ones was written outside the server, and sealing it would hide that.
async fn seal_unchained_audit(conn: &mut SqliteConnection) -> StoreResult<u64> {
    let chained: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM audit WHERE hash IS NOT NULL)")
            .fetch_one(&mut *conn)
            .await?;
    if chained {
        return Ok(0);
    }
    let mut prev = GENESIS.to_owned();
    let mut after = i64::MIN;
    let mut sealed = 0u64;
    loop {
        let rows = sqlx::query(&format!(
            "SELECT {CHAIN_COLUMNS} FROM audit WHERE id > ? ORDER BY id LIMIT ?"
        ))
        .bind(after)
        .bind(AUDIT_BATCH)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            let mut row = chain_row_from(row)?;
            row.seal(&prev);
            sqlx::query("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?")
                .bind(&row.prev_hash)
                .bind(&row.hash)
                .bind(row.id)
                .execute(&mut *conn)
                .await?;
            after = row.id;
            prev = row.hash.unwrap_or_default();
            sealed += 1;
        }
        if (rows.len() as i64) < AUDIT_BATCH {
            return Ok(sealed);
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn account_count(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn create_account(&self, account: NewAccount) -> StoreResult<Account> {
        let now = crate::clock::now_millis();
        let result = sqlx::query(
            "INSERT INTO accounts (username, display_name, password_hash, is_admin, is_webacd, \
             created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&account.username)
        .bind(&account.display_name)
        .bind(&account.password_hash)
        .bind(account.is_admin)
        .bind(account.is_webacd)
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) => self
                .account(done.last_insert_rowid())
                .await?
                .ok_or(StoreError::NotFound),
            Err(e) if unique_violation(&e) => Err(StoreError::Conflict(format!(
                "the username {:?} is already taken",
                account.username
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn account(&self, id: i64) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from).transpose()
    }

    async fn account_for_login(&self, username: &str) -> StoreResult<Option<(Account, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE username = ?"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((account_from(&row)?, row.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    async fn accounts(&self) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY username COLLATE NOCASE"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(account_from).collect()
    }

    async fn update_account(&self, id: i64, changes: AccountChanges) -> StoreResult<Account> {
        let done = sqlx::query(
            "UPDATE accounts SET \
               display_name  = COALESCE(?, display_name), \
               is_admin      = COALESCE(?, is_admin), \
               is_webacd     = COALESCE(?, is_webacd), \
               disabled      = COALESCE(?, disabled), \
               password_hash = COALESCE(?, password_hash) \
             WHERE id = ?",
        )
        .bind(changes.display_name)
        .bind(changes.is_admin)
        .bind(changes.is_webacd)
        .bind(changes.disabled)
        .bind(changes.password_hash)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if changes.disabled == Some(true) {
            sqlx::query("DELETE FROM logins WHERE account_id = ?")
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        self.account(id).await?.ok_or(StoreError::NotFound)
    }

    async fn create_login(
        &self,
        token_hash: &str,
        account: i64,
        now: i64,
        expires: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO logins (token_hash, account_id, created_at, expires_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(account)
        .bind(now)
        .bind(expires)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn login(&self, token_hash: &str, now: i64) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM logins l JOIN accounts a ON a.id = l.account_id \
             WHERE l.token_hash = ? AND l.expires_at > ? AND a.disabled = 0",
            ACCOUNT_COLUMNS
                .split(", ")
                .map(|c| format!("a.{c} AS {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from).transpose()
    }

    async fn delete_login(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM logins WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn settings(&self) -> StoreResult<SiteSettings> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'site'")
                .fetch_optional(&self.pool)
                .await?;
        match value {
            Some(json) => settings_from_json("site settings", &json),
            None => Ok(SiteSettings::default()),
        }
    }

    async fn save_settings(&self, settings: &SiteSettings) -> StoreResult<()> {
        let json = settings_json("site settings", settings)?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('site', ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn queues(&self) -> StoreResult<Vec<Queue>> {
        let rows =
            sqlx::query("SELECT id, name, auto_assign FROM queues ORDER BY name COLLATE NOCASE")
                .fetch_all(&self.pool)
                .await?;
        let members = sqlx::query("SELECT queue_id, account_id FROM queue_members ORDER BY 2")
            .fetch_all(&self.pool)
            .await?;
        let mut queues = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let mut queue = Queue {
                id,
                name: row.try_get("name")?,
                members: Vec::new(),
                auto_assign: row.try_get("auto_assign")?,
            };
            for m in &members {
                if m.try_get::<i64, _>("queue_id")? == id {
                    queue.members.push(m.try_get("account_id")?);
                }
            }
            queues.push(queue);
        }
        Ok(queues)
    }

    async fn create_queue(&self, name: &str, now: i64) -> StoreResult<Queue> {
        let result = sqlx::query("INSERT INTO queues (name, created_at) VALUES (?, ?)")
            .bind(name)
            .bind(now)
            .execute(&self.pool)
            .await;
        match result {
            Ok(done) => Ok(Queue {
                id: done.last_insert_rowid(),
                name: name.to_owned(),
                members: Vec::new(),
                auto_assign: false,
            }),
            Err(e) if unique_violation(&e) => Err(StoreError::Conflict(format!(
                "a queue named {name:?} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_queue(&self, id: i64) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM queues WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_queue_members(&self, id: i64, members: &[i64]) -> StoreResult<Queue> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM queues WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM queue_members WHERE queue_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for member in members {
            sqlx::query("INSERT OR IGNORE INTO queue_members (queue_id, account_id) VALUES (?, ?)")
                .bind(id)
                .bind(member)
                .execute(&mut *tx)
                .await
                .map_err(|e| match e.as_database_error() {
                    Some(d) if d.is_foreign_key_violation() => {
                        StoreError::Conflict(format!("there is no account {member}"))
                    }
                    _ => e.into(),
                })?;
        }
        tx.commit().await?;
        self.queues()
            .await?
            .into_iter()
            .find(|q| q.id == id)
            .ok_or(StoreError::NotFound)
    }

    async fn set_queue_auto_assign(&self, id: i64, auto_assign: bool) -> StoreResult<Queue> {
        let done = sqlx::query("UPDATE queues SET auto_assign = ? WHERE id = ?")
            .bind(auto_assign)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.queues()
            .await?
            .into_iter()
            .find(|q| q.id == id)
            .ok_or(StoreError::NotFound)
    }

    async fn session_started(&self, number: &str, at: i64, by: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO sessions (number, started_at, started_by) VALUES (?, ?, ?)")
            .bind(number)
            .bind(at)
            .bind(by)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session_ended(&self, number: &str, reason: &str, at: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sessions SET ended_at = ?, end_reason = ? \
             WHERE number = ? AND ended_at IS NULL",
        )
        .bind(at)
        .bind(reason)
        .bind(number)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn end_unfinished_sessions(&self, at: i64, keep: &[String]) -> StoreResult<u64> {
        let unfinished: Vec<String> =
            sqlx::query_scalar("SELECT number FROM sessions WHERE ended_at IS NULL")
                .fetch_all(&self.pool)
                .await?;
        let mut ended = 0;
        for number in unfinished.iter().filter(|n| !keep.contains(n)) {
            ended += sqlx::query(
                "UPDATE sessions SET ended_at = ?, end_reason = 'server_restarted' \
                 WHERE number = ? AND ended_at IS NULL",
            )
            .bind(at)
            .bind(number)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(ended)
    }

    async fn smtp_settings(&self) -> StoreResult<Option<SmtpSettings>> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'smtp'")
                .fetch_optional(&self.pool)
                .await?;
        smtp_from(value)
    }

    async fn save_smtp_settings(&self, settings: Option<&SmtpSettings>) -> StoreResult<()> {
        match settings {
            Some(settings) => {
                let json = settings_json("mail settings", settings)?;
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ('smtp', ?) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(json)
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM settings WHERE key = 'smtp'")
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    async fn create_invitation(&self, i: &InvitationRecord) -> StoreResult<InvitationRecord> {
        let now = crate::clock::now_millis();
        let invitee = invitee_text(i);
        let done = sqlx::query(
            "INSERT INTO invitations (session, invitee, address, by_name, link, join_page, \
             state, reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'sending', NULL, ?, ?)",
        )
        .bind(&i.session)
        .bind(invitee)
        .bind(&i.address)
        .bind(&i.by_name)
        .bind(&i.link)
        .bind(&i.join_page)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.invitation(done.last_insert_rowid())
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn set_invitation_state(
        &self,
        id: i64,
        state: &str,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE invitations SET state = ?, reason = ?, updated_at = ? WHERE id = ?")
            .bind(state)
            .bind(reason)
            .bind(crate::clock::now_millis())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn invitation(&self, id: i64) -> StoreResult<Option<InvitationRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(invitation_from).transpose()
    }

    async fn invitations(&self, session: &str) -> StoreResult<Vec<InvitationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE session = ? ORDER BY id"
        ))
        .bind(session)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(invitation_from).collect()
    }

    async fn create_recording(&self, r: &NewRecording) -> StoreResult<RecordingRecord> {
        let row = sqlx::query(&format!(
            "INSERT INTO recordings (session, title, file, started_by, started_by_name, \
             started_at, state) VALUES (?, ?, ?, ?, ?, ?, 'recording') \
             RETURNING {RECORDING_COLUMNS}"
        ))
        .bind(&r.session)
        .bind(&r.title)
        .bind(&r.file)
        .bind(r.started_by)
        .bind(&r.started_by_name)
        .bind(r.started_at)
        .fetch_one(&self.pool)
        .await?;
        recording_from(&row)
    }

    async fn finish_recording(
        &self,
        id: i64,
        ended_at: i64,
        duration_ms: i64,
        bytes: i64,
        state: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE recordings SET ended_at = ?, duration_ms = ?, bytes = ?, state = ? \
             WHERE id = ?",
        )
        .bind(ended_at)
        .bind(duration_ms)
        .bind(bytes)
        .bind(state)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn recording(&self, id: i64) -> StoreResult<Option<RecordingRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(recording_from).transpose()
    }

    async fn recordings(&self) -> StoreResult<Vec<RecordingRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings ORDER BY started_at DESC, id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(recording_from).collect()
    }

    async fn delete_recording(&self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM recordings WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn append_audit_row(&self, row: NewAuditRow) -> StoreResult<()> {
        // IMMEDIATE: take the write lock before reading the chain head, so that another
        // process appending at the same time waits instead of chaining to the same head.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let last: Option<(i64, Option<String>)> =
            sqlx::query_as("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let last_id = last.as_ref().map_or(0, |(id, _)| *id);
        let prev = match last {
            None => GENESIS.to_owned(),
            Some((_, Some(hash))) => hash,
            Some((_, None)) => {
                seal_unchained_audit(&mut tx).await?;
                sqlx::query_scalar::<_, String>(
                    "SELECT hash FROM audit WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1",
                )
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or_else(|| GENESIS.to_owned())
            }
        };
        // The id is chosen here because it is hashed; like AUTOINCREMENT, never reuse one.
        let used: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit'), 0)",
        )
        .fetch_one(&mut *tx)
        .await?;
        let row = row.chained(used.max(last_id) + 1, &prev);
        sqlx::query(
            "INSERT INTO audit (id, session, at, actor, action, record, prev_hash, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(row.id)
        .bind(&row.session)
        .bind(row.at)
        .bind(&row.actor)
        .bind(&row.action)
        .bind(&row.record)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit(&self, session: Option<&str>, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, session, at, actor, action, record FROM audit \
             WHERE (?1 IS NULL OR session = ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(session)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_entry_from).collect()
    }

    async fn verify_audit_chain(&self) -> StoreResult<ChainReport> {
        let mut verifier = Verifier::new();
        let mut after = i64::MIN;
        loop {
            // One batch per query: appends may go on between batches, and a record appended
            // meanwhile is simply checked too.
            let rows = sqlx::query(&format!(
                "SELECT {CHAIN_COLUMNS} FROM audit WHERE id > ? ORDER BY id LIMIT ?"
            ))
            .bind(after)
            .bind(AUDIT_BATCH)
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                let row = chain_row_from(row)?;
                after = row.id;
                if !verifier.push(&row) {
                    return Ok(verifier.report());
                }
            }
            if (rows.len() as i64) < AUDIT_BATCH {
                return Ok(verifier.report());
            }
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn invitation_counts(&self) -> StoreResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM invitations GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(state, n)| (state, u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::audit_chain::ChainFault;
    use super::*;

    fn audit_record(n: u64) -> tandem_session::AuditRecord {
        use tandem_protocol::{ParticipantId, SessionNumber, Timestamp};
        tandem_session::AuditRecord {
            at: Timestamp(1_700_000_000_000 + n),
            session: "123456789".parse::<SessionNumber>().expect("number"),
            actor: Some(tandem_session::Actor {
                participant: ParticipantId(n),
                name: format!("Person {n}"),
                account: (n % 2 == 0).then(|| "rita".to_owned()),
            }),
            action: tandem_session::AuditAction::Admitted {
                participant: ParticipantId(n + 1),
            },
        }
    }

    #[tokio::test]
    async fn records_from_before_the_chain_are_chained_on_open() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tandem.db");
        {
            // A database as the server before the chain left it: migrations 0001 to 0003.
            let old = dir.path().join("old-migrations");
            std::fs::create_dir(&old).expect("dir");
            let ours = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join("sqlite");
            for name in [
                "0001_init.sql",
                "0002_invitations.sql",
                "0003_queue_auto_assign.sql",
            ] {
                std::fs::copy(ours.join(name), old.join(name)).expect("copy");
            }
            let options = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let pool = SqlitePool::connect_with(options).await.expect("old db");
            sqlx::migrate::Migrator::new(old.as_path())
                .await
                .expect("old migrations")
                .run(&pool)
                .await
                .expect("migrate to 0003");
            for n in 1..=3 {
                sqlx::query(
                    "INSERT INTO audit (session, at, actor, action, record) \
                     VALUES ('123456789', ?, NULL, 'joined', '{}')",
                )
                .bind(n)
                .execute(&pool)
                .await
                .expect("old record");
            }
            pool.close().await;
        }
        let store = SqliteStore::open(&path).await.expect("open with the chain");
        store.append_audit(&audit_record(4)).await.expect("append");
        let report = store.verify_audit_chain().await.expect("verify");
        assert!(
            matches!(report, ChainReport::Intact { records: 4, .. }),
            "{report}"
        );
        let read_only = SqliteStore::open_read_only(&path).await.expect("read only");
        assert_eq!(
            read_only.verify_audit_chain().await.expect("verify"),
            report
        );
    }

    #[tokio::test]
    async fn a_record_written_outside_the_server_is_not_chained_on_open() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tandem.db");
        {
            let store = SqliteStore::open(&path).await.expect("store");
            store.append_audit(&audit_record(1)).await.expect("append");
            sqlx::query(
                "INSERT INTO audit (session, at, action, record) \
                 VALUES ('123456789', 5, 'joined', '{}')",
            )
            .execute(&store.pool)
            .await
            .expect("forged record");
            store.pool.close().await;
        }
        let store = SqliteStore::open(&path).await.expect("reopen");
        store.append_audit(&audit_record(3)).await.expect("append");
        let report = store.verify_audit_chain().await.expect("verify");
        assert_eq!(
            report,
            ChainReport::Tampered {
                fault: ChainFault::Unsealed { id: 2 },
                intact_before: 1
            }
        );
    }
}
