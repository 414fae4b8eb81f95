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
    /// A session whose changes cannot be written (a commit with it in fails).
    poisoned: Mutex<Option<String>>,
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
        let poisoned = self.poisoned.lock().expect("poison").clone();
        let hit = changes.iter().any(|change| match change {
            Change::Keep {
                session: Some(s), ..
            } => Some(&s.number) == poisoned.as_ref(),
            Change::Keep { .. } => false,
            Change::Forget(number) => Some(number) == poisoned.as_ref(),
        });
        if hit {
            anyhow::bail!("the disk refuses this session");
        }
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

/// The numbers of the sessions the journal holds, sorted.
fn stored(journal: &Gated) -> Vec<String> {
    let mut numbers: Vec<String> = journal
        .load()
        .expect("load")
        .into_iter()
        .map(|r| r.0)
        .collect();
    numbers.sort();
    numbers
}

const DEADLINE: Duration = Duration::from_secs(30);

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A registry on a held-write journal, with what it sends the store and the mailer.
fn registry(
    dir: &std::path::Path,
) -> (
    Arc<Registry>,
    Arc<Gated>,
    mpsc::UnboundedReceiver<StoreJob>,
    mpsc::UnboundedReceiver<MailJob>,
) {
    let journal = Arc::new(Gated {
        inner: SqliteJournal::open(&dir.join("live.db")).expect("journal"),
        open: Mutex::new(true),
        opened: Condvar::new(),
        commits: Mutex::new(Vec::new()),
        entered: AtomicUsize::new(0),
        poisoned: Mutex::new(None),
    });
    let (store_tx, store_rx) = mpsc::unbounded_channel();
    let (mail_tx, mail_rx) = mpsc::unbounded_channel();
    let registry = Registry::new(
        store_tx,
        mail_tx,
        60_000,
        IceConfig::default(),
        Duration::from_secs(600),
        Some(journal.clone() as Arc<dyn Journal>),
    );
    (registry, journal, store_rx, mail_rx)
}

/// Journal writes happen off the registry's lock, in groups, and still before their
/// effects: while one write is held, other reps start sessions without waiting for it;
/// nothing those changes cause (a message, an audit record for the store) goes out
/// before it is written; and the changes that came in meanwhile are written together, in
/// one transaction, once the held write is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_decided_while_a_write_is_held_and_go_out_only_once_written() {
    let dir = tempfile::tempdir().expect("dir");
    let (registry, journal, mut store_rx, _mail_rx) = registry(dir.path());
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
    assert_eq!(
        stored(&journal),
        std::slice::from_ref(&first.number),
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
    let stored = stored(&journal);
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

/// A change the disk refuses fails only its own session: the changes written in the same
/// group are written one by one instead, and theirs go out; the refused one's effects
/// still go out (as before grouping), and the session is written whole at its next change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_disk_refuses_fails_only_its_own_session() {
    let dir = tempfile::tempdir().expect("dir");
    let (registry, journal, _store_rx, _mail_rx) = registry(dir.path());
    let settings = SiteSettings::default();
    let first = registry
        .start(&rep(1), false, &settings, "http://tandem.test")
        .expect("start");
    assert!(registry.written().await, "written");
    let poisoned: SessionNumber = first.number.parse().expect("number");

    // Hold the next write, so that the changes of several sessions go in one group.
    journal.set(false);
    let entered = journal.entered.load(Ordering::SeqCst);
    let (tx, mut rx) = crate::outbound::channel();
    let primary = registry
        .open_session((registry.next_id(), tx), &rep(1), poisoned)
        .expect("open");
    until("the write is under way", || {
        journal.entered.load(Ordering::SeqCst) > entered
    })
    .await;
    *journal.poisoned.lock().expect("poison") = Some(first.number.clone());
    let (tx2, mut rx2) = crate::outbound::channel();
    let second = registry
        .start(&rep(2), false, &settings, "http://tandem.test")
        .expect("start");
    registry
        .open_session(
            (registry.next_id(), tx2),
            &rep(2),
            second.number.parse().expect("number"),
        )
        .expect("open");
    let third = registry
        .start(&rep(3), false, &settings, "http://tandem.test")
        .expect("start");
    journal.set(true);
    assert!(
        tokio::time::timeout(DEADLINE, registry.written())
            .await
            .expect("written in time"),
        "written"
    );
    for (rx, who) in [
        (&mut rx, "the refused session's rep"),
        (&mut rx2, "the other rep"),
    ] {
        assert!(
            matches!(rx.recv().await, Some(Frame::Text(_))),
            "{who} heard of the change"
        );
    }
    let stored = stored(&journal);
    let mut wanted = vec![first.number.clone(), second.number, third.number];
    wanted.sort();
    assert_eq!(stored, wanted, "the other sessions' changes written");
    let commits = journal.commits.lock().expect("commits").clone();
    assert!(
        commits[entered..].iter().filter(|&&n| n == 1).count() >= 2,
        "the failed group was written one by one: {commits:?}"
    );

    // The refused session is written whole at its next change, even one that changes
    // nothing kept (a chat line), once the disk takes it.
    let row = |journal: &Gated| {
        journal
            .load()
            .expect("load")
            .into_iter()
            .find(|r| r.0 == first.number)
            .expect("row")
            .1
    };
    let before = row(&journal);
    *journal.poisoned.lock().expect("poison") = None;
    registry
        .command(
            primary,
            ClientMessage::Chat {
                text: "still here".into(),
            },
        )
        .expect("chat");
    assert!(registry.written().await, "written");
    assert_ne!(
        row(&journal),
        before,
        "the refused change written at the next one"
    );
}

/// Wait for a text frame on `rx` that holds `needle`; the frame's text.
async fn hears(rx: &mut crate::outbound::OutboundRx, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let frame = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("never heard {needle:?}"))
            .expect("the connection is open");
        if let Frame::Text(text) = frame
            && text.contains(needle)
        {
            return text;
        }
    }
}

/// Each live session has a lock of its own. While one session's lock is held (as by a
/// slow decision) and the site's lock too, a chat line in another session goes through:
/// a chat line needs nothing across sessions. The held session's own line waits for its
/// lock, and goes out once it is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The test holds the locks on purpose while it waits for other tasks.
#[allow(clippy::await_holding_lock)]
async fn a_session_held_up_holds_up_no_other_session() {
    let dir = tempfile::tempdir().expect("dir");
    let (registry, _journal, _store_rx, _mail_rx) = registry(dir.path());
    let mut sessions = Vec::new();
    for id in 1..=2 {
        let started = registry
            .start(&rep(id), false, &SiteSettings::default(), "http://t.test")
            .expect("start");
        let number: SessionNumber = started.number.parse().expect("number");
        let (tx, rep_rx) = crate::outbound::channel();
        registry
            .open_session((registry.next_id(), tx), &rep(id), number)
            .expect("open");
        let (tx, _customer_rx) = crate::outbound::channel();
        let customer = registry
            .join_by_link((registry.next_id(), tx), &started.secret, "Customer", None)
            .expect("join");
        sessions.push((number, rep_rx, customer, _customer_rx));
    }
    let chat = |seat: Seat, text: &str| {
        let registry = registry.clone();
        let message = ClientMessage::Chat { text: text.into() };
        tokio::task::spawn_blocking(move || registry.command(seat, message))
    };
    let (first, second) = (sessions[0].0, sessions[1].0);
    assert_ne!(first, second);

    let held = registry.slot(first).expect("the first session").lock_arc();
    let site = registry.site.lock();
    let waiting = chat(sessions[0].2, "line in the held session");
    let through = chat(sessions[1].2, "line in the other session");
    tokio::time::timeout(DEADLINE, through)
        .await
        .expect("the other session's line is not held up")
        .expect("task")
        .expect("chat");
    hears(&mut sessions[1].1, "line in the other session").await;
    assert!(
        !waiting.is_finished(),
        "a line went through while its session's lock was held"
    );

    drop(site);
    drop(held);
    tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("the held session's line goes once its lock is free")
        .expect("task")
        .expect("chat");
    hears(&mut sessions[0].1, "line in the held session").await;
}

/// R4 across sessions: customers joining two sessions of one rep at the same moment, on
/// several threads, never take more places than the rep's maximum between them (the
/// count of the rep's other sessions and the join are decided under the site's lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r4_customers_joining_a_reps_sessions_at_once_never_pass_the_maximum() {
    const MAX: u32 = 3;
    const THREADS: usize = 8;
    let dir = tempfile::tempdir().expect("dir");
    let (registry, _journal, _store_rx, _mail_rx) = registry(dir.path());
    let settings = SiteSettings {
        max_customers_per_rep: MAX,
        allow_multiple_sessions: true,
        ..SiteSettings::default()
    };
    for round in 0..20 {
        let rep = rep(100 + round);
        let secrets: Vec<String> = (0..2)
            .map(|_| {
                registry
                    .start(&rep, false, &settings, "http://t.test")
                    .expect("start")
                    .secret
            })
            .collect();
        let barrier = Arc::new(std::sync::Barrier::new(THREADS));
        let (joined_tx, joined_rx) = std::sync::mpsc::channel();
        for i in 0..THREADS {
            let (registry, barrier) = (registry.clone(), barrier.clone());
            let joined_tx = joined_tx.clone();
            let secret = secrets[i % 2].clone();
            let runtime = tokio::runtime::Handle::current();
            std::thread::spawn(move || {
                // Joins set timers and wake-ups on the runtime.
                let _runtime = runtime.enter();
                let (tx, rx) = crate::outbound::channel();
                barrier.wait();
                let joined = registry.join_by_link(
                    (registry.next_id(), tx),
                    &secret,
                    &format!("Customer {i}"),
                    None,
                );
                joined_tx.send((joined, rx)).expect("sent");
            });
        }
        let mut admitted = 0;
        let mut kept = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        for _ in 0..THREADS {
            let (joined, rx) = joined_rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("every join is answered (none waits for ever)");
            match joined {
                Ok(_) => admitted += 1,
                Err(refusal) => assert_eq!(refusal.code, ErrorCode::SessionFull, "{refusal:?}"),
            }
            kept.push(rx);
        }
        assert_eq!(
            admitted, MAX,
            "round {round}: the rep's two sessions took {admitted} customers, not {MAX}"
        );
    }
}

/// The newest resume and agent tokens a connection received.
#[derive(Default)]
struct Tokens {
    resume: Option<String>,
    agent: Option<String>,
}

impl Tokens {
    /// Read what has come on `rx` so far.
    fn read(&mut self, rx: &mut crate::outbound::OutboundRx) {
        while let Some(frame) = rx.try_recv() {
            let Frame::Text(text) = frame else {
                continue;
            };
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let token = message["token"].as_str().map(str::to_owned);
            match message["type"].as_str() {
                Some("resume_token") => self.resume = token,
                Some("agent_token") => self.agent = token,
                _ => {}
            }
        }
    }
}

/// What the site indexes holds for each live session is what the session holds, and
/// nothing else: resume tokens, agent tokens, link secrets and loads; and tokens are
/// only held for participants still in their session.
fn check_indexes(registry: &Registry) {
    let mut sessions = Vec::new();
    for (number, slot) in registry.slots() {
        let live = slot.lock();
        if let Some(live) = live.as_ref() {
            for (_, participant) in &live.resume_tokens {
                assert!(
                    live.session.role(*participant).is_some(),
                    "a resume token of {participant}, who left {number}"
                );
            }
            for (_, customer, _) in &live.agent_tokens {
                assert_eq!(
                    live.session.role(*customer),
                    Some(tandem_protocol::Role::Customer),
                    "an agent token of {customer}, who left {number}"
                );
            }
            sessions.push((
                number,
                live.secret.clone(),
                live.resume_tokens.clone(),
                live.agent_tokens.clone(),
                live.load,
            ));
        }
    }
    let site = registry.site.lock();
    assert_eq!(site.by_secret.len(), sessions.len(), "link secrets");
    assert_eq!(site.loads.len(), sessions.len(), "loads");
    let resume_tokens: usize = sessions.iter().map(|s| s.2.len()).sum();
    assert_eq!(site.resume.len(), resume_tokens, "resume tokens");
    let agent_tokens: usize = sessions.iter().map(|s| s.3.len()).sum();
    assert_eq!(site.agent_tokens.len(), agent_tokens, "agent tokens");
    for (number, secret, resume, agent, load) in sessions {
        assert_eq!(site.by_secret.get(&secret), Some(&number));
        for (hash, participant) in resume {
            let seat = Seat {
                number,
                participant,
            };
            assert_eq!(
                site.resume.get(&hash),
                Some(&seat),
                "a resume token of {number}"
            );
        }
        assert_eq!(
            site.agent_tokens.kept(number),
            agent,
            "agent tokens of {number}"
        );
        let counted = site
            .loads
            .get(&number)
            .map(|l| (l.primary_account, l.customers));
        assert_eq!(counted, load, "the load of {number}");
    }
}

/// Many threads at once join, chat, leave, lose and resume connections, attach and drop
/// agents, and start and end sessions, all over the same few sessions: nothing waits
/// for ever (no two operations wait for each other's locks), and afterwards the site's
/// indexes hold exactly what the sessions hold; once every session has ended, nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_at_once_on_many_sessions_never_wait_for_ever_and_leave_nothing_astray() {
    const THREADS: usize = 6;
    const STEPS: usize = 300;
    let dir = tempfile::tempdir().expect("dir");
    let (registry, _journal, _store_rx, _mail_rx) = registry(dir.path());
    let settings = SiteSettings {
        max_customers_per_rep: 6,
        allow_multiple_sessions: true,
        ..SiteSettings::default()
    };
    let start = |id: i64| {
        let started = registry
            .start(&rep(id), false, &settings, "http://t.test")
            .expect("start");
        (
            started.number.parse::<SessionNumber>().expect("number"),
            started.secret,
            id,
        )
    };
    let sessions = Arc::new(Mutex::new((1..=4).map(start).collect::<Vec<_>>()));
    let next_rep = Arc::new(AtomicUsize::new(100));
    // Join keys used, with the link they went with.
    let keys = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    // What went through: joins, lines, resumes, agents attached, sessions ended.
    let did: Arc<[AtomicUsize; 5]> = Arc::new(Default::default());
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let runtime = tokio::runtime::Handle::current();
    for thread in 0..THREADS {
        let (registry, sessions, next_rep, did, keys) = (
            registry.clone(),
            sessions.clone(),
            next_rep.clone(),
            did.clone(),
            keys.clone(),
        );
        let (done_tx, runtime) = (done_tx.clone(), runtime.clone());
        std::thread::spawn(move || {
            let _runtime = runtime.enter();
            let pick = |list: &[(SessionNumber, String, i64)]| {
                list[rand::random_range(0..list.len())].clone()
            };
            // (seat, connection id, its frames, its tokens, lost)
            let mut mine: Vec<(Seat, u64, crate::outbound::OutboundRx, Tokens, bool)> = Vec::new();
            for step in 0..STEPS {
                let choice = if thread == 0 && step % 30 == 0 {
                    8
                } else {
                    rand::random_range(0..8)
                };
                let conn_id = registry.next_id();
                match choice {
                    0..=2 => {
                        let (_, mut secret, _) = pick(&sessions.lock().expect("list"));
                        let (tx, rx) = crate::outbound::channel();
                        let name = format!("Customer {thread}.{step}");
                        // A third of the joins carry a key; some are sent again with a key
                        // another thread's join used (it may come back to that place).
                        let key = match rand::random_range(0..6) {
                            0 => Some(format!("key{thread:02}{step:04}{}", "k".repeat(16))),
                            1 => {
                                let keys = keys.lock().expect("keys");
                                (!keys.is_empty()).then(|| {
                                    let (their_secret, key) =
                                        keys[rand::random_range(0..keys.len())].clone();
                                    secret = their_secret;
                                    key
                                })
                            }
                            _ => None,
                        };
                        if let Some(key) = &key {
                            keys.lock()
                                .expect("keys")
                                .push((secret.clone(), key.clone()));
                        }
                        if let Ok(seat) =
                            registry.join_by_link((conn_id, tx), &secret, &name, key.as_deref())
                        {
                            mine.push((seat, conn_id, rx, Tokens::default(), false));
                            did[0].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    3 | 4 if !mine.is_empty() => {
                        let (seat, ..) = &mine[rand::random_range(0..mine.len())];
                        let text = format!("line {thread}.{step}");
                        if registry
                            .command(*seat, ClientMessage::Chat { text })
                            .is_ok()
                        {
                            did[1].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    5 if !mine.is_empty() => {
                        // A lost connection, kept with its resume token to come back.
                        let i = rand::random_range(0..mine.len());
                        let (seat, id, rx, tokens, lost) = &mut mine[i];
                        let clean = rand::random_range(0..3) == 0;
                        tokens.read(rx);
                        registry.closed(*seat, *id, clean);
                        *lost = true;
                        if clean {
                            mine.swap_remove(i);
                        }
                    }
                    6 if !mine.is_empty() => {
                        let i = rand::random_range(0..mine.len());
                        if let (Some(token), true) = (mine[i].3.resume.take(), mine[i].4) {
                            let (tx, rx) = crate::outbound::channel();
                            if let Ok(seat) = registry.resume((conn_id, tx), &token, None) {
                                mine[i] = (seat, conn_id, rx, Tokens::default(), false);
                                did[2].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    7 if !mine.is_empty() => {
                        // The customer's agent attaches, and later its connection drops.
                        let i = rand::random_range(0..mine.len());
                        let (_, _, rx, tokens, _) = &mut mine[i];
                        tokens.read(rx);
                        if let Some(token) = tokens.agent.take() {
                            let (tx, rx) = crate::outbound::channel();
                            if let Ok(seat) = registry.attach_agent((conn_id, tx), &token, None) {
                                mine.push((seat, conn_id, rx, Tokens::default(), false));
                                did[3].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    8 if thread == 0 && step % 30 == 0 => {
                        // A session ends (its rep is disabled) and another starts.
                        let (number, _, id) = pick(&sessions.lock().expect("list"));
                        registry.revoke_account(id);
                        did[4].fetch_add(1, Ordering::Relaxed);
                        let id = 100 + next_rep.fetch_add(1, Ordering::SeqCst) as i64;
                        let started = registry
                            .start(&rep(id), false, &SiteSettings::default(), "http://t.test")
                            .expect("start");
                        let mut list = sessions.lock().expect("list");
                        list.retain(|s| s.0 != number);
                        let number = started.number.parse().expect("number");
                        list.push((number, started.secret, id));
                    }
                    _ => {}
                }
            }
            done_tx.send(thread).expect("done");
        });
    }
    drop(done_tx);
    let finished = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + DEADLINE * 4;
        (0..THREADS)
            .map(|_| done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .expect("task");
    assert!(
        finished.is_ok(),
        "some operations never finished (waiting for each other's locks?)"
    );
    // Each kind of operation went through.
    let did: Vec<usize> = did.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    for (count, what) in did
        .iter()
        .zip(["joins", "lines", "resumes", "agents", "ends"])
    {
        assert!(*count >= 1, "no {what} went through: {did:?}");
    }

    check_indexes(&registry);
    let live = registry.live_count();
    assert!(live >= 4, "{live} sessions live");
    assert_eq!(registry.terminate_all(None), live);
    check_indexes(&registry);
    let site = registry.site.lock();
    assert!(site.by_secret.is_empty() && site.resume.is_empty() && site.loads.is_empty());
    assert_eq!(site.agent_tokens.len(), 0);
    assert_eq!(registry.live_count(), 0);
}

/// When the session's grace period for `who` is due, if one runs (R2).
fn grace_due(registry: &Registry, number: SessionNumber, who: ParticipantId) -> Option<Timestamp> {
    let slot = registry.slot(number)?;
    let live = slot.lock();
    live.as_ref()?.timer_at.get(&Timer::Reconnect(who)).copied()
}

/// Whether `who` is still in the session.
fn is_present(registry: &Registry, number: SessionNumber, who: ParticipantId) -> bool {
    registry.slot(number).is_some_and(|slot| {
        slot.lock()
            .as_ref()
            .is_some_and(|live| live.session.role(who).is_some())
    })
}

/// R2: the wake-up of a grace period that was over before it got the session's lock (the
/// customer came back meanwhile, and has lost the connection again since) does not take
/// the customer out early; the grace period running now does, when it is due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_wake_up_of_a_grace_period_set_again_since_does_not_take_the_customer_out() {
    let dir = tempfile::tempdir().expect("dir");
    let (registry, _journal, _store_rx, _mail_rx) = registry(dir.path());
    let started = registry
        .start(&rep(1), false, &SiteSettings::default(), "http://t.test")
        .expect("start");
    let number: SessionNumber = started.number.parse().expect("number");
    let (tx, mut rx) = crate::outbound::channel();
    let first_conn = registry.next_id();
    let seat = registry
        .join_by_link((first_conn, tx), &started.secret, "Customer", None)
        .expect("join");
    let who = seat.participant;
    let mut tokens = Tokens::default();
    until("the customer has a resume token", || {
        tokens.read(&mut rx);
        tokens.resume.is_some()
    })
    .await;

    registry.closed(seat, first_conn, false);
    let first = grace_due(&registry, number, who).expect("a grace period runs");
    // So that the next grace period ends at another millisecond.
    let lost = clock::now();
    until("the clock moves on", || clock::now() > lost).await;
    let (tx, _rx) = crate::outbound::channel();
    let second_conn = registry.next_id();
    registry
        .resume((second_conn, tx), &tokens.resume.expect("token"), None)
        .expect("back");
    assert_eq!(grace_due(&registry, number, who), None, "back in time");
    registry.fire(number, Timer::Reconnect(who), first);
    assert!(
        is_present(&registry, number, who),
        "the wake-up of a grace period ended by the return took the customer out"
    );
    registry.closed(seat, second_conn, false);
    let second = grace_due(&registry, number, who).expect("a grace period runs again");
    assert_ne!(first, second);

    registry.fire(number, Timer::Reconnect(who), first);
    assert!(
        is_present(&registry, number, who),
        "the first grace period's late wake-up took the customer out"
    );
    registry.fire(number, Timer::Reconnect(who), second);
    assert!(
        !is_present(&registry, number, who),
        "the grace period running now did not take the customer out when due"
    );
}

fn webacd_agent(id: i64, name: &str) -> Account {
    Account {
        username: name.to_owned(),
        display_name: name.to_owned(),
        is_webacd: true,
        ..rep(id)
    }
}

/// The journal's record of session `number`, as JSON.
fn record(journal: &Gated, number: &str) -> serde_json::Value {
    let (_, text) = journal
        .load()
        .expect("load")
        .into_iter()
        .find(|(n, _)| n == number)
        .expect("the session is kept");
    serde_json::from_str(&text).expect("json")
}

/// R10 across a crash: a WebACD offer is queued for the journal, with whom it is offered
/// to, before the message telling that agent (so it goes out only once written); and a
/// session kept waiting without its offer (a server that died between writing the two)
/// is offered again at the next start, so an agent can still take it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webacd_offer_is_kept_before_it_is_told_and_a_lost_one_is_made_again() {
    let dir = tempfile::tempdir().expect("dir");
    let wendy = webacd_agent(1, "wendy");
    let tom = webacd_agent(2, "tom");
    let accounts = vec![wendy.clone(), tom.clone()];
    let (number, digits) = {
        let (registry, journal, _store_rx, _mail_rx) = registry(dir.path());
        registry.set_directory(accounts.clone(), Vec::new());
        let started = registry
            .start(&wendy, false, &SiteSettings::default(), "http://t.test")
            .expect("start");
        let number: SessionNumber = started.number.parse().expect("number");
        let (tx, _wendy_rx) = crate::outbound::channel();
        let seat = registry
            .open_session((registry.next_id(), tx), &wendy, number)
            .expect("open");
        let (tx, _ann_rx) = crate::outbound::channel();
        registry
            .join_by_link((registry.next_id(), tx), &started.secret, "Ann", None)
            .expect("join");
        let (tx, mut tom_rx) = crate::outbound::channel();
        registry
            .desk((registry.next_id(), tx), &tom, true)
            .expect("desk");
        // What this thread queues for the pipeline, in order (no await in between).
        super::pipeline::QUEUED.with(|q| q.borrow_mut().clear());
        registry
            .command(
                seat,
                ClientMessage::WebacdTransfer {
                    target: TransferTarget::Agent {
                        agent: "tom".into(),
                    },
                    message: Some("printer".into()),
                },
            )
            .expect("transfer");
        let queued = super::pipeline::QUEUED.with(|q| q.borrow().clone());
        let told = queued
            .iter()
            .position(|item| item.starts_with("send") && item.contains("TransferOffered"))
            .expect("the offer is told");
        let kept = queued
            .iter()
            .position(|item| item.starts_with("keep") && item.contains(r#""offer":{"#))
            .expect("the offer is kept");
        assert!(
            kept < told,
            "told (item {told}) before the write holding the offer (item {kept}): {queued:#?}"
        );
        hears(&mut tom_rx, "transfer_offered").await;
        let kept = record(&journal, &started.number);
        assert_eq!(
            kept["offer"]["to"],
            serde_json::json!([2]),
            "told before kept: {kept}"
        );
        registry.suspend_all();
        assert!(registry.written().await, "written");

        // The crash between the two writes: the session is kept waiting, its offer not.
        let mut kept = record(&journal, &started.number);
        kept["offer"] = serde_json::Value::Null;
        journal
            .save(&started.number, &kept.to_string(), 0)
            .expect("save");
        (number, started.number)
    };

    let (registry, _journal, _store_rx, _mail_rx) = registry(dir.path());
    registry.set_directory(accounts, Vec::new());
    assert_eq!(registry.restore(), 1, "the session came back");
    let (tx, mut tom_rx) = crate::outbound::channel();
    let desk = registry.next_id();
    registry.desk((desk, tx.clone()), &tom, true).expect("desk");
    let state = hears(&mut tom_rx, "webacd_state").await;
    let state: serde_json::Value = serde_json::from_str(&state).expect("json");
    let waiting = &state["waiting"];
    assert_eq!(waiting[0]["number"], digits.as_str(), "{state}");
    assert_eq!(waiting[0]["for_you"], true, "{state}");
    assert_eq!(waiting[0]["from"], "wendy", "{state}");
    let seat = registry
        .accept_transfer((registry.next_id(), tx), &tom, number, None)
        .expect("tom takes it");
    assert_eq!(seat.number, number);
}
