//! The registry with a real journal (SQLite in a temporary directory) whose writes can be
//! held, to see what waits for them and what does not.

use std::sync::atomic::AtomicUsize;
use std::sync::{Condvar, Mutex};

use super::*;
use crate::outbound::Frame;

/// The SQLite journal, with `commit` held while the gate is shut.
struct Gated {
    inner: SqliteJournal,
    open: Mutex<bool>,
    opened: Condvar,
    /// How many changes each commit carried, in order.
    commits: Mutex<Vec<usize>>,
    entered: AtomicUsize,
}

impl Gated {
    fn set(&self, open: bool) {
        *self.open.lock().expect("gate") = open;
        self.opened.notify_all();
    }
}

impl Journal for Gated {
    fn save(&self, number: &str, state: &str, at: i64) -> anyhow::Result<()> {
        self.inner.save(number, state, at)
    }
    fn remove(&self, number: &str) -> anyhow::Result<()> {
        self.inner.remove(number)
    }
    fn load(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.inner.load()
    }
    fn save_and_hold(
        &self,
        session: Option<(&str, &str, i64)>,
        records: &[String],
    ) -> anyhow::Result<Vec<i64>> {
        self.inner.save_and_hold(session, records)
    }
    fn audit_stored(&self, id: i64) -> anyhow::Result<()> {
        self.inner.audit_stored(id)
    }
    fn held_audit(&self) -> anyhow::Result<Vec<(i64, String)>> {
        self.inner.held_audit()
    }
    fn commit(&self, changes: &[Change]) -> anyhow::Result<Vec<Vec<i64>>> {
        self.commits.lock().expect("commits").push(changes.len());
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().expect("gate");
        while !*open {
            open = self.opened.wait(open).expect("gate");
        }
        drop(open);
        self.inner.commit(changes)
    }
}

fn rep(id: i64) -> Account {
    Account {
        id,
        username: format!("rep{id}"),
        display_name: format!("Rep {id}"),
        is_admin: false,
        is_webacd: false,
        disabled: false,
    }
}

const DEADLINE: Duration = Duration::from_secs(30);

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Journal writes happen off the registry's lock, in groups, and still before their
/// effects: while one write is held, other reps start sessions without waiting for it;
/// nothing those changes cause (a message, an audit record for the store) goes out
/// before it is written; and the changes that came in meanwhile are written together, in
/// one transaction, once the held write is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_decided_while_a_write_is_held_and_go_out_only_once_written() {
    let dir = tempfile::tempdir().expect("dir");
    let journal = Arc::new(Gated {
        inner: SqliteJournal::open(&dir.path().join("live.db")).expect("journal"),
        open: Mutex::new(true),
        opened: Condvar::new(),
        commits: Mutex::new(Vec::new()),
        entered: AtomicUsize::new(0),
    });
    let (store_tx, mut store_rx) = mpsc::unbounded_channel();
    let (mail_tx, _mail_rx) = mpsc::unbounded_channel();
    let registry = Registry::new(
        store_tx,
        mail_tx,
        60_000,
        IceConfig::default(),
        Duration::from_secs(600),
        Some(journal.clone() as Arc<dyn Journal>),
    );
    let settings = SiteSettings::default();
    let first = registry
        .start(&rep(1), false, &settings, "http://tandem.test")
        .expect("start");
    assert!(registry.written().await, "written");
    let number: SessionNumber = first.number.parse().expect("number");
    while store_rx.try_recv().is_ok() {}

    // The first rep's page connects while the journal's next write is held.
    journal.set(false);
    let entered = journal.entered.load(Ordering::SeqCst);
    let (tx, mut rx) = crate::outbound::channel();
    registry
        .open_session((registry.next_id(), tx), &rep(1), number)
        .expect("open");
    until("the write is under way", || {
        journal.entered.load(Ordering::SeqCst) > entered
    })
    .await;

    // Other reps start sessions meanwhile: the held write does not hold them up.
    let others = {
        let registry = registry.clone();
        tokio::task::spawn_blocking(move || {
            (2..=9)
                .map(|id| {
                    registry
                        .start(&rep(id), false, &SiteSettings::default(), "http://t.test")
                        .map(|s| s.number)
                })
                .collect::<Result<Vec<_>, _>>()
        })
    };
    let others = tokio::time::timeout(DEADLINE, others)
        .await
        .expect("sessions start while another session's write is held")
        .expect("task")
        .expect("started");
    assert_eq!(others.len(), 8);

    // Nothing of the held change, nor of those after it, is out yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "the page heard of its change before it was written"
    );
    assert!(
        store_rx.try_recv().is_err(),
        "a job reached the store before what it records was written"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), registry.written())
            .await
            .is_err(),
        "written() said done while the write was held"
    );
    let stored: Vec<String> = journal
        .load()
        .expect("load")
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        stored,
        [first.number.clone()],
        "only the first session is written"
    );

    journal.set(true);
    let frame = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("the page hears of its change once it is written")
        .expect("a frame");
    assert!(matches!(frame, Frame::Text(_)), "{frame:?}");
    assert!(
        tokio::time::timeout(DEADLINE, registry.written())
            .await
            .expect("written in time"),
        "written"
    );

    // One commit for the held change, then one for everything that came in meanwhile.
    let commits = journal.commits.lock().expect("commits").clone();
    let after: Vec<usize> = commits[entered..].to_vec();
    assert_eq!(after.len(), 2, "a group commit for the rest: {commits:?}");
    assert!(
        after[1] >= 8,
        "the eight sessions in one commit: {commits:?}"
    );
    let mut stored: Vec<String> = journal
        .load()
        .expect("load")
        .into_iter()
        .map(|r| r.0)
        .collect();
    stored.sort();
    let mut wanted: Vec<String> = others.iter().cloned().chain([first.number]).collect();
    wanted.sort();
    assert_eq!(stored, wanted, "every session written");

    // The audit records went to the store after their write, each held in the outbox.
    let mut audits = 0;
    while let Ok(job) = store_rx.try_recv() {
        if let StoreJob::Audit { held, .. } = job {
            assert!(held.is_some(), "an audit record not held in the outbox");
            audits += 1;
        }
    }
    assert!(
        audits >= 9,
        "the audit records of the nine changes: {audits}"
    );
}
