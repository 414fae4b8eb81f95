//! A store that times every call into the `tandem_store_seconds` histogram, by operation,
//! and otherwise passes it through unchanged.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::audit_chain::ChainReport;
use super::{
    Account, AccountChanges, AuditEntry, InvitationRecord, NewAccount, NewAuditRow, NewRecording,
    Queue, RecordingRecord, SiteSettings, SmtpSettings, Store, StoreResult,
};
use crate::telemetry::Telemetry;

pub struct TimedStore {
    inner: Arc<dyn Store>,
    telemetry: Arc<Telemetry>,
}

impl std::fmt::Debug for TimedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedStore").finish_non_exhaustive()
    }
}

impl TimedStore {
    pub fn new(inner: Arc<dyn Store>, telemetry: Arc<Telemetry>) -> Self {
        Self { inner, telemetry }
    }

    async fn timed<T>(&self, op: &'static str, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let result = call.await;
        self.telemetry.store_call(op, started.elapsed());
        result
    }
}

#[async_trait]
impl Store for TimedStore {
    async fn account_count(&self) -> StoreResult<u64> {
        self.timed("account_count", self.inner.account_count())
            .await
    }

    async fn create_account(&self, account: NewAccount) -> StoreResult<Account> {
        self.timed("create_account", self.inner.create_account(account))
            .await
    }

    async fn account(&self, id: i64) -> StoreResult<Option<Account>> {
        self.timed("account", self.inner.account(id)).await
    }

    async fn account_for_login(&self, username: &str) -> StoreResult<Option<(Account, String)>> {
        self.timed("account_for_login", self.inner.account_for_login(username))
            .await
    }

    async fn accounts(&self) -> StoreResult<Vec<Account>> {
        self.timed("accounts", self.inner.accounts()).await
    }

    async fn update_account(&self, id: i64, changes: AccountChanges) -> StoreResult<Account> {
        self.timed("update_account", self.inner.update_account(id, changes))
            .await
    }

    async fn create_login(
        &self,
        token_hash: &str,
        account: i64,
        now: i64,
        expires: i64,
    ) -> StoreResult<()> {
        self.timed(
            "create_login",
            self.inner.create_login(token_hash, account, now, expires),
        )
        .await
    }

    async fn login(&self, token_hash: &str, now: i64) -> StoreResult<Option<Account>> {
        self.timed("login", self.inner.login(token_hash, now)).await
    }

    async fn delete_login(&self, token_hash: &str) -> StoreResult<()> {
        self.timed("delete_login", self.inner.delete_login(token_hash))
            .await
    }

    async fn settings(&self) -> StoreResult<SiteSettings> {
        self.timed("settings", self.inner.settings()).await
    }

    async fn save_settings(&self, settings: &SiteSettings) -> StoreResult<()> {
        self.timed("save_settings", self.inner.save_settings(settings))
            .await
    }

    async fn queues(&self) -> StoreResult<Vec<Queue>> {
        self.timed("queues", self.inner.queues()).await
    }

    async fn create_queue(&self, name: &str, now: i64) -> StoreResult<Queue> {
        self.timed("create_queue", self.inner.create_queue(name, now))
            .await
    }

    async fn delete_queue(&self, id: i64) -> StoreResult<()> {
        self.timed("delete_queue", self.inner.delete_queue(id))
            .await
    }

    async fn set_queue_members(&self, id: i64, members: &[i64]) -> StoreResult<Queue> {
        self.timed(
            "set_queue_members",
            self.inner.set_queue_members(id, members),
        )
        .await
    }

    async fn set_queue_auto_assign(&self, id: i64, auto_assign: bool) -> StoreResult<Queue> {
        self.timed(
            "set_queue_auto_assign",
            self.inner.set_queue_auto_assign(id, auto_assign),
        )
        .await
    }

    async fn session_started(&self, number: &str, at: i64, by: i64) -> StoreResult<()> {
        self.timed(
            "session_started",
            self.inner.session_started(number, at, by),
        )
        .await
    }

    async fn session_ended(&self, number: &str, reason: &str, at: i64) -> StoreResult<()> {
        self.timed(
            "session_ended",
            self.inner.session_ended(number, reason, at),
        )
        .await
    }

    async fn end_unfinished_sessions(&self, at: i64, keep: &[String]) -> StoreResult<u64> {
        self.timed(
            "end_unfinished_sessions",
            self.inner.end_unfinished_sessions(at, keep),
        )
        .await
    }

    async fn smtp_settings(&self) -> StoreResult<Option<SmtpSettings>> {
        self.timed("smtp_settings", self.inner.smtp_settings())
            .await
    }

    async fn save_smtp_settings(&self, settings: Option<&SmtpSettings>) -> StoreResult<()> {
        self.timed(
            "save_smtp_settings",
            self.inner.save_smtp_settings(settings),
        )
        .await
    }

    async fn create_invitation(
        &self,
        invitation: &InvitationRecord,
    ) -> StoreResult<InvitationRecord> {
        self.timed(
            "create_invitation",
            self.inner.create_invitation(invitation),
        )
        .await
    }

    async fn set_invitation_state(
        &self,
        id: i64,
        state: &str,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        self.timed(
            "set_invitation_state",
            self.inner.set_invitation_state(id, state, reason),
        )
        .await
    }

    async fn invitation(&self, id: i64) -> StoreResult<Option<InvitationRecord>> {
        self.timed("invitation", self.inner.invitation(id)).await
    }

    async fn invitations(&self, session: &str) -> StoreResult<Vec<InvitationRecord>> {
        self.timed("invitations", self.inner.invitations(session))
            .await
    }

    async fn create_recording(&self, r: &NewRecording) -> StoreResult<RecordingRecord> {
        self.timed("create_recording", self.inner.create_recording(r))
            .await
    }

    async fn finish_recording(
        &self,
        id: i64,
        ended_at: i64,
        duration_ms: i64,
        bytes: i64,
        state: &str,
    ) -> StoreResult<()> {
        let finish = self
            .inner
            .finish_recording(id, ended_at, duration_ms, bytes, state);
        self.timed("finish_recording", finish).await
    }

    async fn recording(&self, id: i64) -> StoreResult<Option<RecordingRecord>> {
        self.timed("recording", self.inner.recording(id)).await
    }

    async fn recordings(&self) -> StoreResult<Vec<RecordingRecord>> {
        self.timed("recordings", self.inner.recordings()).await
    }

    async fn delete_recording(&self, id: i64) -> StoreResult<()> {
        self.timed("delete_recording", self.inner.delete_recording(id))
            .await
    }

    async fn append_audit_row(&self, row: NewAuditRow) -> StoreResult<()> {
        self.timed("append_audit", self.inner.append_audit_row(row))
            .await
    }

    async fn audit(&self, session: Option<&str>, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        self.timed("audit", self.inner.audit(session, limit)).await
    }

    async fn verify_audit_chain(&self) -> StoreResult<ChainReport> {
        self.timed("verify_audit_chain", self.inner.verify_audit_chain())
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.timed("ping", self.inner.ping()).await
    }

    async fn invitation_counts(&self) -> StoreResult<Vec<(String, u64)>> {
        self.timed("invitation_counts", self.inner.invitation_counts())
            .await
    }
}
