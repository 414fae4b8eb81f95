//! What goes out of the registry, and the journal writes it waits for, off the registry's
//! locks.
//!
//! A session's change is kept on disk before any of its effects go out: nobody ever sees
//! what a restart would undo. The registry decides under a session's lock (in memory,
//! quickly) and queues here, in the order it decided them, the journal writes and every
//! effect: messages and closes for connections, jobs for the store and the mailer. One
//! thread takes whatever has queued up, writes its journal changes (up to 32) in one
//! transaction (a group commit: one commit, one sync, for the changes of many sessions),
//! then lets the effects out in order. So no session waits under its lock for a write,
//! and a write holds up no worker thread of the server's runtime.
//!
//! While nothing waits here, an effect goes out at once, from under the lock it was
//! decided under: nothing decided before it is still held back. Without a journal,
//! everything goes out at once.
//!
//! Several sessions queue here side by side, each under its own lock. What one thread
//! queues, or what is queued under one lock, keeps its order: a session's write is queued
//! before what follows from it, which so waits for it. A participant's connection gets
//! items from its session's lock, dashboards from the site's; a connection's own reply
//! and the close of a revoked account's connections come after what the same thread
//! queued for them before.

use std::sync::Weak;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc as sync_mpsc};

use tandem_protocol::SessionNumber;
use tandem_session::AuditRecord;
use tokio::sync::{Notify, mpsc};

use super::journal::{Change, Journal, Saved};
use super::{Registry, StoreJob};
use crate::mailer::{MailJob, MailJobs};
use crate::outbound::{Close, Outbound, OutboundTx};

/// At most this many queued items are taken in one round.
const MOST_AT_ONCE: usize = 512;
/// At most this many changes go in one transaction. With PostgreSQL each statement is a
/// round trip and the whole write must finish within the lease's 5 s: 32 changes are a
/// few dozen round trips, well inside it even to a database far away.
const MOST_CHANGES_AT_ONCE: usize = 32;

enum Item {
    /// A session's change to keep: its new state, if it changed, and audit records held
    /// with it (C3), stored once the write is done.
    Keep {
        number: SessionNumber,
        state: Option<(String, i64)>,
        records: Vec<AuditRecord>,
    },
    /// A session ended: forget it.
    Forget(SessionNumber),
    Send(OutboundTx, Outbound),
    /// Close a connection now, whether or not the client reads (after what was queued
    /// for it before).
    CloseNow(OutboundTx, Close),
    Store(StoreJob),
    Mail(MailJob),
}

impl Item {
    /// Whether it is written to the journal.
    fn is_change(&self) -> bool {
        matches!(self, Item::Keep { .. } | Item::Forget(_))
    }
}

#[derive(Debug)]
pub(super) struct Shared {
    /// Items ever queued, and ever carried out (or dropped): while `queued` is ahead,
    /// something waits.
    queued: AtomicU64,
    carried: AtomicU64,
    /// Told after each round.
    carried_some: Notify,
    /// The site lease is lost: nothing queued goes out any more.
    dropping: AtomicBool,
    /// How many items had been carried out when dropping began (`u64::MAX` before).
    dropped_after: AtomicU64,
    /// The writer thread is gone: nothing queued will be carried out.
    stopped: AtomicBool,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            queued: AtomicU64::new(0),
            carried: AtomicU64::new(0),
            carried_some: Notify::new(),
            dropping: AtomicBool::new(false),
            dropped_after: AtomicU64::new(u64::MAX),
            stopped: AtomicBool::new(false),
        }
    }
}

/// The point in the queue reached when it was taken: see [`Mark::passed`].
pub(super) struct Mark {
    shared: Arc<Shared>,
    at: u64,
}

impl Mark {
    /// Wait until everything queued before the mark was carried out. False when some
    /// of it was dropped instead (the site lease was lost) or never will be carried out
    /// (the writer stopped).
    pub(super) async fn passed(self) -> bool {
        loop {
            let told = self.shared.carried_some.notified();
            if self.shared.carried.load(Ordering::Acquire) >= self.at {
                return self.at <= self.shared.dropped_after.load(Ordering::Acquire);
            }
            if self.shared.stopped.load(Ordering::Acquire) {
                return false;
            }
            told.await;
        }
    }
}

/// Where the registry sends everything that leaves it, from under the lock of whatever
/// decided it (see the module's notes), so it goes out in the order it was decided.
pub(super) struct Out {
    queue: Option<(sync_mpsc::Sender<Item>, Arc<Shared>)>,
    store_jobs: mpsc::UnboundedSender<StoreJob>,
    mail_jobs: MailJobs,
}

#[cfg(test)]
thread_local! {
    /// What this thread queued here, in order (`send …`, `keep <state>`): tests read it
    /// to see that an effect was queued after the write it must wait for.
    pub(super) static QUEUED: std::cell::RefCell<Vec<String>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl Out {
    /// Everything goes out at once (no journal).
    pub(super) fn direct(store_jobs: mpsc::UnboundedSender<StoreJob>, mail_jobs: MailJobs) -> Self {
        Out {
            queue: None,
            store_jobs,
            mail_jobs,
        }
    }

    /// Effects wait for the journal writes decided before them, on a thread of their own.
    pub(super) fn journaled(
        journal: Arc<dyn Journal>,
        store_jobs: mpsc::UnboundedSender<StoreJob>,
        mail_jobs: MailJobs,
        registry: Weak<Registry>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_mpsc::channel();
        let shared = Arc::new(Shared::default());
        let writer = Writer {
            journal,
            shared: shared.clone(),
            store_jobs: store_jobs.clone(),
            mail_jobs: mail_jobs.clone(),
            registry,
        };
        std::thread::Builder::new()
            .name("tandem-journal".into())
            .spawn(move || writer.run(&rx))?;
        Ok(Out {
            queue: Some((tx, shared)),
            store_jobs,
            mail_jobs,
        })
    }

    /// Whether a session's changes are written (there is a journal).
    pub(super) fn journaled_here(&self) -> bool {
        self.queue.is_some()
    }

    /// Where the queue is now; none without a journal writer (everything goes out at
    /// once).
    pub(super) fn mark(&self) -> Option<Mark> {
        let (_, shared) = self.queue.as_ref()?;
        if shared.stopped.load(Ordering::Acquire) {
            // Everything goes out at once now (`push` fails): nothing to wait for.
            return None;
        }
        Some(Mark {
            shared: shared.clone(),
            at: shared.queued.load(Ordering::Acquire),
        })
    }

    /// The queue, while something waits in it (or everything is dropped).
    fn busy(&self) -> Option<(&sync_mpsc::Sender<Item>, &Shared)> {
        let (tx, shared) = self.queue.as_ref()?;
        // `carried` is read first: it never passes `queued`, which only grows here.
        let carried = shared.carried.load(Ordering::Acquire);
        let busy = shared.queued.load(Ordering::Acquire) > carried
            || shared.dropping.load(Ordering::Acquire);
        busy.then_some((tx, shared))
    }

    /// Queue `item`; handed back if the writer has stopped.
    fn push(tx: &sync_mpsc::Sender<Item>, shared: &Shared, item: Item) -> Result<(), Box<Item>> {
        shared.queued.fetch_add(1, Ordering::AcqRel);
        tx.send(item).map_err(|back| {
            shared.queued.fetch_sub(1, Ordering::AcqRel);
            tracing::error!("the journal writer has stopped");
            Box::new(back.0)
        })
    }

    /// A message or a close for a connection. False when the connection is closed or full
    /// (only known when it goes out at once).
    pub(super) fn send(&self, tx: &OutboundTx, outbound: Outbound) -> bool {
        #[cfg(test)]
        QUEUED.with(|q| q.borrow_mut().push(format!("send {outbound:?}")));
        let Some((queue, shared)) = self.busy() else {
            return tx.send(outbound);
        };
        match Self::push(queue, shared, Item::Send(tx.clone(), outbound)).map_err(|b| *b) {
            Ok(()) => true,
            Err(Item::Send(tx, outbound)) => tx.send(outbound),
            Err(_) => false,
        }
    }

    /// Close a connection now (whether or not its client reads), after what was queued
    /// for it before. Once the queue is dropped (the site lease is lost) nothing queued
    /// goes out: then at once.
    pub(super) fn close_now(&self, tx: &OutboundTx, close: Close) {
        let Some((queue, shared)) = self.busy() else {
            return tx.close_now(close);
        };
        if shared.dropping.load(Ordering::Acquire) {
            return tx.close_now(close);
        }
        if let Err(Item::CloseNow(tx, close)) =
            Self::push(queue, shared, Item::CloseNow(tx.clone(), close)).map_err(|b| *b)
        {
            tx.close_now(close);
        }
    }

    pub(super) fn store(&self, job: StoreJob) {
        let Some((queue, shared)) = self.busy() else {
            return store(&self.store_jobs, job);
        };
        if let Err(Item::Store(job)) = Self::push(queue, shared, Item::Store(job)).map_err(|b| *b) {
            store(&self.store_jobs, job);
        }
    }

    pub(super) fn mail(&self, job: MailJob) {
        let Some((queue, shared)) = self.busy() else {
            return mail(&self.mail_jobs, job);
        };
        if let Err(Item::Mail(job)) = Self::push(queue, shared, Item::Mail(job)).map_err(|b| *b) {
            mail(&self.mail_jobs, job);
        }
    }

    /// Keep a session's change: its new state (if it changed) and the audit records it
    /// made. Whatever is sent after this waits for the write. Without a journal, the
    /// records go to the store at once.
    pub(super) fn keep(
        &self,
        number: SessionNumber,
        state: Option<(String, i64)>,
        records: Vec<AuditRecord>,
    ) {
        if state.is_none() && records.is_empty() {
            return;
        }
        #[cfg(test)]
        QUEUED.with(|q| {
            let state = state.as_ref().map_or("", |(text, _)| text.as_str());
            q.borrow_mut().push(format!("keep {state}"));
        });
        let item = Item::Keep {
            number,
            state,
            records,
        };
        let back = match &self.queue {
            Some((tx, shared)) => Self::push(tx, shared, item).map_err(|b| *b),
            None => Err(item),
        };
        if let Err(Item::Keep { records, .. }) = back {
            for record in records {
                self.store(StoreJob::Audit { record, held: None });
            }
        }
    }

    /// A session ended: the journal forgets it (after every earlier write of it).
    pub(super) fn forget(&self, number: SessionNumber) {
        if let Some((tx, shared)) = &self.queue
            && Self::push(tx, shared, Item::Forget(number)).is_err()
        {
            tracing::error!(session = %number, "the ended session stays in the journal");
        }
    }
}

fn store(jobs: &mpsc::UnboundedSender<StoreJob>, job: StoreJob) {
    if jobs.send(job).is_err() {
        tracing::error!("the store writer has stopped; an audit record or session row is lost");
    }
}

fn mail(jobs: &MailJobs, job: MailJob) {
    if jobs.send(job).is_err() {
        tracing::error!("the mailer has stopped; an invitation was not sent");
    }
}

/// The thread that writes and then lets out.
struct Writer {
    journal: Arc<dyn Journal>,
    shared: Arc<Shared>,
    store_jobs: mpsc::UnboundedSender<StoreJob>,
    mail_jobs: MailJobs,
    registry: Weak<Registry>,
}

/// Whoever waits hears when the writer thread ends, however it ends.
struct Stopped(Arc<Shared>);

impl Drop for Stopped {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(
                "the journal writer failed: what it held is lost, and from now on effects go \
                 out without their changes being kept (a restart would end the sessions)"
            );
        }
        self.0.stopped.store(true, Ordering::Release);
        self.0.carried_some.notify_waiters();
    }
}

impl Writer {
    fn run(self, rx: &sync_mpsc::Receiver<Item>) {
        let _stopped = Stopped(self.shared.clone());
        while let Ok(first) = rx.recv() {
            let mut changes = usize::from(first.is_change());
            let mut round = vec![first];
            while round.len() < MOST_AT_ONCE && changes < MOST_CHANGES_AT_ONCE {
                match rx.try_recv() {
                    Ok(item) => {
                        changes += usize::from(item.is_change());
                        round.push(item);
                    }
                    Err(_) => break,
                }
            }
            let count = round.len();
            self.carry_out(round);
            self.shared
                .carried
                .fetch_add(u64::try_from(count).unwrap_or(u64::MAX), Ordering::AcqRel);
            self.shared.carried_some.notify_waiters();
        }
    }

    fn carry_out(&self, round: Vec<Item>) {
        if self.shared.dropping.load(Ordering::Acquire) {
            return;
        }
        if self.journal.fenced() {
            return self.drop_from_now();
        }
        let changes: Vec<Change> = round
            .iter()
            .filter_map(|item| match item {
                Item::Keep {
                    number,
                    state,
                    records,
                } => Some(Change::Keep {
                    session: state.as_ref().map(|(state, at)| Saved {
                        number: number.digits(),
                        state: state.clone(),
                        at: *at,
                    }),
                    records: records
                        .iter()
                        .map(|r| serde_json::to_string(r).unwrap_or_default())
                        .collect(),
                }),
                Item::Forget(number) => Some(Change::Forget(number.digits())),
                _ => None,
            })
            .collect();
        let written = self.write(&changes);
        if self.journal.fenced() {
            return self.drop_from_now();
        }
        let mut written = written.into_iter();
        let mut unsaved = Vec::new();
        for item in round {
            match item {
                Item::Keep {
                    number, records, ..
                } => {
                    let ids = match written.next() {
                        Some(Ok(ids)) => ids,
                        Some(Err(e)) => {
                            tracing::error!(
                                session = %number,
                                "could not keep the session on disk; a restart now would end it: {e}"
                            );
                            unsaved.push(number);
                            Vec::new()
                        }
                        None => Vec::new(),
                    };
                    for (i, record) in records.into_iter().enumerate() {
                        let held = ids.get(i).copied();
                        store(&self.store_jobs, StoreJob::Audit { record, held });
                    }
                }
                Item::Forget(number) => {
                    if let Some(Err(e)) = written.next() {
                        tracing::error!(
                            session = %number,
                            "could not forget the ended session; a restart would bring it back: {e}"
                        );
                    }
                }
                Item::Send(tx, outbound) => {
                    if !tx.send(outbound) {
                        tracing::debug!("message to a closing connection dropped");
                    }
                }
                Item::CloseNow(tx, close) => tx.close_now(close),
                Item::Store(job) => store(&self.store_jobs, job),
                Item::Mail(job) => mail(&self.mail_jobs, job),
            }
        }
        if !unsaved.is_empty()
            && let Some(registry) = self.registry.upgrade()
        {
            registry.unsaved(&unsaved);
        }
    }

    /// Write the changes in one transaction; if that fails, one by one, so one change
    /// that cannot be written fails only its own session (with SQLite: with PostgreSQL a
    /// failed write loses the lease, and nothing more is written). The outcome of each.
    fn write(&self, changes: &[Change]) -> Vec<Result<Vec<i64>, String>> {
        if changes.is_empty() {
            return Vec::new();
        }
        match self.journal.commit(changes) {
            Ok(ids) if ids.len() == changes.len() => ids.into_iter().map(Ok).collect(),
            Ok(_) => changes
                .iter()
                .map(|_| Err("the journal answered for another number of changes".into()))
                .collect(),
            Err(e) if changes.len() > 1 && !self.journal.fenced() => {
                tracing::warn!("a grouped write failed, writing its changes one by one: {e:#}");
                changes
                    .iter()
                    .map(|change| {
                        self.journal
                            .commit(std::slice::from_ref(change))
                            .map_err(|e| format!("{e:#}"))
                            .and_then(|mut ids| {
                                ids.pop()
                                    .ok_or_else(|| "no answer for the change".to_owned())
                            })
                    })
                    .collect()
            }
            Err(e) => {
                let e = format!("{e:#}");
                changes.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    /// The site lease is gone (site.rs): another server may own these sessions now.
    /// Nothing decided here goes out any more; everyone reconnects to the successor,
    /// which has every change and record that was written.
    fn drop_from_now(&self) {
        let carried = self.shared.carried.load(Ordering::Acquire);
        self.shared.dropped_after.store(carried, Ordering::Release);
        self.shared.dropping.store(true, Ordering::Release);
        if let Some(registry) = self.registry.upgrade() {
            registry.suspend_all();
        }
    }
}
