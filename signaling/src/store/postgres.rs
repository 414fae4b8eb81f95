//! The PostgreSQL store, for sites that keep their data in a database server (and, later,
//! share it between several servers). The same tables and rules as the SQLite store, in
//! PostgreSQL's dialect; migrations/postgres/ mirrors migrations/sqlite/ file by file.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Row};

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

/// Connections per server: requests wait for one rather than overload the database.
const MAX_CONNECTIONS: u32 = 8;

/// The advisory lock key audit appenders take in turn ("tandem audit" in ASCII).
const AUDIT_APPEND_LOCK: i64 = 0x7461_6e64_656d_6175;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user:password@host:port/database`) and bring its
    /// schema up to date. Several servers may do this at once: sqlx's migrator holds an
    /// advisory lock while it migrates.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let store = Self::connect_only(url).await?;
        super::migrations::migrator(super::migrations::POSTGRES)
            .await?
            .run(&store.pool)
            .await?;
        Ok(store)
    }

    /// Connect without touching the schema (`tandem-signaling audit verify`).
    pub async fn connect_only(url: &str) -> StoreResult<Self> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Connect(
                "not a PostgreSQL URL: it starts with postgres:// (e.g. \
                 postgres://tandem:secret@localhost/tandem)"
                    .into(),
            ));
        }
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Connect(format!("not a PostgreSQL URL: {e}")))?;
        let options = options.application_name("tandem-signaling");
        // One connection first: a pool that cannot connect only says it timed out, while
        // this says why (refused, no such database, wrong password…).
        let first = options
            .connect()
            .await
            .map_err(|e| StoreError::Connect(e.to_string()))?;
        first.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// The pool, for tests that go around the store (as an attacker with database access
    /// would).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn queue(&self, id: i64) -> StoreResult<Queue> {
        self.queues()
            .await?
            .into_iter()
            .find(|q| q.id == id)
            .ok_or(StoreError::NotFound)
    }
}

/// Keys of the `settings` table, each holding JSON.
const SITE: &str = "site";
const SMTP: &str = "smtp";

#[async_trait]
impl Store for PostgresStore {
    async fn account_count(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn create_account(&self, account: NewAccount) -> StoreResult<Account> {
        let now = crate::clock::now_millis();
        let result = sqlx::query(&format!(
            "INSERT INTO accounts (username, display_name, password_hash, is_admin, is_webacd, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(&account.username)
        .bind(&account.display_name)
        .bind(&account.password_hash)
        .bind(account.is_admin)
        .bind(account.is_webacd)
        .bind(now)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(row) => account_from(&row),
            Err(e) if unique_violation(&e) => Err(StoreError::Conflict(format!(
                "the username {:?} is already taken",
                account.username
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn account(&self, id: i64) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from).transpose()
    }

    async fn account_for_login(&self, username: &str) -> StoreResult<Option<(Account, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts \
             WHERE lower(username) = lower($1)"
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
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY lower(username), id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(account_from).collect()
    }

    async fn update_account(&self, id: i64, changes: AccountChanges) -> StoreResult<Account> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE accounts SET \
               display_name  = COALESCE($1, display_name), \
               is_admin      = COALESCE($2, is_admin), \
               is_webacd     = COALESCE($3, is_webacd), \
               disabled      = COALESCE($4, disabled), \
               password_hash = COALESCE($5, password_hash) \
             WHERE id = $6 RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(changes.display_name)
        .bind(changes.is_admin)
        .bind(changes.is_webacd)
        .bind(changes.disabled)
        .bind(changes.password_hash)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        if changes.disabled == Some(true) {
            sqlx::query("DELETE FROM logins WHERE account_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        account_from(&row)
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
             VALUES ($1, $2, $3, $4)",
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
             WHERE l.token_hash = $1 AND l.expires_at > $2 AND NOT a.disabled",
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
        sqlx::query("DELETE FROM logins WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn settings(&self) -> StoreResult<SiteSettings> {
        let value: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(SITE)
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
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(SITE)
        .bind(json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn queues(&self) -> StoreResult<Vec<Queue>> {
        let rows = sqlx::query("SELECT id, name, auto_assign FROM queues ORDER BY lower(name), id")
            .fetch_all(&self.pool)
            .await?;
        let members: Vec<(i64, i64)> =
            sqlx::query_as("SELECT queue_id, account_id FROM queue_members ORDER BY account_id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                let id: i64 = row.try_get("id")?;
                Ok(Queue {
                    id,
                    name: row.try_get("name")?,
                    members: members
                        .iter()
                        .filter(|(queue, _)| *queue == id)
                        .map(|(_, account)| *account)
                        .collect(),
                    auto_assign: row.try_get("auto_assign")?,
                })
            })
            .collect()
    }

    async fn create_queue(&self, name: &str, now: i64) -> StoreResult<Queue> {
        let result: Result<i64, _> = sqlx::query_scalar(
            "INSERT INTO queues (name, created_at) VALUES ($1, $2) RETURNING id",
        )
        .bind(name)
        .bind(now)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(id) => Ok(Queue {
                id,
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
        let done = sqlx::query("DELETE FROM queues WHERE id = $1")
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
        // The queue's row, locked: two admins setting members at once take turns.
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM queues WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM queue_members WHERE queue_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for member in members {
            sqlx::query(
                "INSERT INTO queue_members (queue_id, account_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
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
        self.queue(id).await
    }

    async fn set_queue_auto_assign(&self, id: i64, auto_assign: bool) -> StoreResult<Queue> {
        let done = sqlx::query("UPDATE queues SET auto_assign = $1 WHERE id = $2")
            .bind(auto_assign)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.queue(id).await
    }

    async fn session_started(&self, number: &str, at: i64, by: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO sessions (number, started_at, started_by) VALUES ($1, $2, $3)")
            .bind(number)
            .bind(at)
            .bind(by)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session_ended(&self, number: &str, reason: &str, at: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sessions SET ended_at = $1, end_reason = $2 \
             WHERE number = $3 AND ended_at IS NULL",
        )
        .bind(at)
        .bind(reason)
        .bind(number)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn end_unfinished_sessions(&self, at: i64, keep: &[String]) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE sessions SET ended_at = $1, end_reason = 'server_restarted' \
             WHERE ended_at IS NULL AND NOT (number = ANY($2))",
        )
        .bind(at)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn smtp_settings(&self) -> StoreResult<Option<SmtpSettings>> {
        let value: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(SMTP)
            .fetch_optional(&self.pool)
            .await?;
        smtp_from(value)
    }

    async fn save_smtp_settings(&self, settings: Option<&SmtpSettings>) -> StoreResult<()> {
        match settings {
            Some(settings) => {
                let json = settings_json("mail settings", settings)?;
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(SMTP)
                .bind(json)
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM settings WHERE key = $1")
                    .bind(SMTP)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    async fn create_invitation(&self, i: &InvitationRecord) -> StoreResult<InvitationRecord> {
        let now = crate::clock::now_millis();
        let row = sqlx::query(&format!(
            "INSERT INTO invitations (session, invitee, address, by_name, link, join_page, \
             state, reason, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'sending', NULL, $7, $7) \
             RETURNING {INVITATION_COLUMNS}"
        ))
        .bind(&i.session)
        .bind(invitee_text(i))
        .bind(&i.address)
        .bind(&i.by_name)
        .bind(&i.link)
        .bind(&i.join_page)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        invitation_from(&row)
    }

    async fn set_invitation_state(
        &self,
        id: i64,
        state: &str,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE invitations SET state = $1, reason = $2, updated_at = $3 WHERE id = $4",
        )
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
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(invitation_from).transpose()
    }

    async fn invitations(&self, session: &str) -> StoreResult<Vec<InvitationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE session = $1 ORDER BY id"
        ))
        .bind(session)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(invitation_from).collect()
    }

    async fn create_recording(&self, r: &NewRecording) -> StoreResult<RecordingRecord> {
        let row = sqlx::query(&format!(
            "INSERT INTO recordings (session, title, file, started_by, started_by_name, \
             started_at, state) VALUES ($1, $2, $3, $4, $5, $6, 'recording') \
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
            "UPDATE recordings SET ended_at = $1, duration_ms = $2, bytes = $3, state = $4 \
             WHERE id = $5",
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
            "SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = $1"
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
        sqlx::query("DELETE FROM recordings WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn append_audit_row(&self, row: NewAuditRow) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // Appenders take turns (a transaction-scoped advisory lock, which needs no
        // privilege on the table), so that two servers never chain to the same head; the
        // unique index on prev_hash refuses a fork even so. A stuck holder is an error
        // after 10 s, not a writer waiting for ever.
        sqlx::query("SET LOCAL lock_timeout = '10s'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(AUDIT_APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        // After the newest sealed record, as the SQLite store does: a record inserted
        // around the server stays unsealed, where `audit verify` names it.
        let prev: Option<String> = sqlx::query_scalar(
            "SELECT hash FROM audit WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let prev = prev.unwrap_or_else(|| GENESIS.to_owned());
        // The id is chosen here because it is hashed. Under the lock, the sequence hands
        // out increasing ids in append order (a rolled-back append leaves a gap, which the
        // chain allows).
        let id: i64 = sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('audit', 'id'))")
            .fetch_one(&mut *tx)
            .await?;
        let row = row.chained(id, &prev);
        sqlx::query(
            "INSERT INTO audit (id, session, at, actor, action, record, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
             WHERE ($1::text IS NULL OR session = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(session)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_entry_from).collect()
    }

    async fn verify_audit_chain(&self) -> StoreResult<ChainReport> {
        let mut verifier = Verifier::new();
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {CHAIN_COLUMNS} FROM audit WHERE id > $1 ORDER BY id LIMIT $2"
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
