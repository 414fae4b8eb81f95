//! The storage trait's behaviour, the same tests on both backends: SQLite (a file in a
//! temporary directory) and PostgreSQL (a real server started for each test). Each test
//! below runs twice, as `sqlite::<name>` and `postgres::<name>`. Also: both backends'
//! migrations give the same schema, and two stores on one database (two servers) keep one
//! audit chain.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::postgres::Postgres;
use sqlx::Row;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use tandem_signaling::store::audit_chain::ChainReport;
use tandem_signaling::store::{
    AccountChanges, InvitationRecord, NewAccount, PostgresStore, SiteAction, SiteAuditRecord,
    SiteSettings, SmtpSettings, SqliteStore, Store, StoreError, TlsMode,
};

/// One database, the store on it, and a connection around the store (what someone with
/// database access could do).
struct Db {
    store: Arc<dyn Store>,
    raw: Raw,
    backend: Backend,
}

enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(Postgres),
}

enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Raw {
    async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Raw::Sqlite(pool) => sqlx::query(sql).execute(pool).await?.rows_affected(),
            Raw::Postgres(pool) => sqlx::query(sql).execute(pool).await?.rows_affected(),
        })
    }

    /// Every column of every table the migrations made: table → column → (type family,
    /// nullable), with the migrator's own table left out.
    async fn schema(&self) -> BTreeMap<String, BTreeMap<String, (String, bool)>> {
        let mut schema: BTreeMap<String, BTreeMap<String, (String, bool)>> = BTreeMap::new();
        let rows: Vec<(String, String, String, bool)> = match self {
            Raw::Sqlite(pool) => sqlx::query(
                "SELECT m.name, p.name, p.type, p.\"notnull\" = 0 AND p.pk = 0 \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
                   AND m.name NOT LIKE '_sqlx%'",
            )
            .fetch_all(pool)
            .await
            .expect("sqlite schema")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect(),
            Raw::Postgres(pool) => sqlx::query(
                "SELECT table_name::text, column_name::text, data_type::text, \
                        is_nullable = 'YES' \
                 FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
            )
            .fetch_all(pool)
            .await
            .expect("postgres schema")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect(),
        };
        for (table, column, kind, nullable) in rows {
            // The two dialects name types differently; what must agree is the family.
            let family = match kind.to_lowercase().as_str() {
                "integer" | "bigint" => "integer",
                "boolean" => "boolean",
                "text" => "text",
                other => panic!("{table}.{column}: a type neither store maps: {other}"),
            };
            // SQLite has no boolean: its flags are INTEGER columns the store reads as bool.
            let family = if family == "boolean" {
                "integer"
            } else {
                family
            };
            schema
                .entry(table)
                .or_default()
                .insert(column, (family.to_owned(), nullable));
        }
        schema
    }
}

impl Db {
    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tandem.db");
        let store = SqliteStore::open(&path).await.expect("open the store");
        let raw = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
            .await
            .expect("raw connection");
        Db {
            store: Arc::new(store),
            raw: Raw::Sqlite(raw),
            backend: Backend::Sqlite(dir),
        }
    }

    async fn postgres() -> Db {
        let server = tokio::task::spawn_blocking(Postgres::start)
            .await
            .expect("start task")
            .expect("start PostgreSQL");
        let store = PostgresStore::connect(&server.url)
            .await
            .expect("open the store");
        let raw = PgPool::connect(&server.url).await.expect("raw connection");
        Db {
            store: Arc::new(store),
            raw: Raw::Postgres(raw),
            backend: Backend::Postgres(server),
        }
    }

    /// Another store on the same database, as a second server (or process) would open it.
    async fn another_store(&self) -> Arc<dyn Store> {
        match &self.backend {
            Backend::Sqlite(dir) => Arc::new(
                SqliteStore::open(&dir.path().join("tandem.db"))
                    .await
                    .expect("second store"),
            ),
            Backend::Postgres(server) => Arc::new(
                PostgresStore::connect(&server.url)
                    .await
                    .expect("second store"),
            ),
        }
    }
}

fn rep(username: &str) -> NewAccount {
    NewAccount {
        username: username.into(),
        display_name: username.into(),
        password_hash: "hash".into(),
        is_admin: false,
        is_webacd: false,
    }
}

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

async fn usernames_are_unique_regardless_of_case(db: Db) {
    let store = &db.store;
    let rita = store.create_account(rep("rita")).await.expect("first");
    let err = store.create_account(rep("RITA")).await.expect_err("taken");
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("already taken")),
        "{err}"
    );
    // Logging in finds the account whatever the case typed.
    let (found, hash) = store
        .account_for_login("Rita")
        .await
        .expect("query")
        .expect("found");
    assert_eq!((found.id, hash.as_str()), (rita.id, "hash"));
    store.create_account(rep("bob")).await.expect("bob");
    store.create_account(rep("Anna")).await.expect("anna");
    let names: Vec<String> = store
        .accounts()
        .await
        .expect("accounts")
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, ["Anna", "bob", "rita"], "sorted regardless of case");
    assert_eq!(store.account_count().await.expect("count"), 3);
}

async fn disabling_an_account_ends_its_logins(db: Db) {
    let store = &db.store;
    let a = store.create_account(rep("rita")).await.expect("account");
    store.create_login("h", a.id, 0, 100).await.expect("login");
    assert_eq!(
        store.login("h", 50).await.expect("query").map(|a| a.id),
        Some(a.id)
    );
    assert!(
        store.login("h", 150).await.expect("query").is_none(),
        "expired"
    );
    let changes = AccountChanges {
        disabled: Some(true),
        display_name: Some("Rita Rep".into()),
        ..Default::default()
    };
    let changed = store.update_account(a.id, changes).await.expect("disable");
    assert!(changed.disabled);
    assert_eq!(changed.display_name, "Rita Rep");
    assert!(store.login("h", 50).await.expect("query").is_none());
    let err = store
        .update_account(a.id + 100, AccountChanges::default())
        .await
        .expect_err("no such account");
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn the_audit_log_is_append_only(db: Db) {
    db.store
        .append_audit(&audit_record(1))
        .await
        .expect("append");
    for statement in [
        "UPDATE audit SET action = 'y'",
        "UPDATE audit SET hash = 'x'",
        "UPDATE audit SET prev_hash = NULL, hash = NULL",
        "UPDATE audit SET record = '{}'",
        "DELETE FROM audit",
    ] {
        let err = db.raw.execute(statement).await.expect_err(statement);
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    if let Raw::Postgres(_) = db.raw {
        let err = db
            .raw
            .execute("TRUNCATE audit")
            .await
            .expect_err("truncate");
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    assert_eq!(db.store.audit(None, 10).await.expect("read").len(), 1);
}

async fn appended_records_form_an_intact_chain(db: Db) {
    let store = &db.store;
    assert_eq!(
        store.verify_audit_chain().await.expect("verify"),
        ChainReport::Intact {
            records: 0,
            head: None
        }
    );
    for n in 0..5 {
        store.append_audit(&audit_record(n)).await.expect("append");
    }
    let report = store.verify_audit_chain().await.expect("verify");
    assert!(
        matches!(
            report,
            ChainReport::Intact {
                records: 5,
                head: Some(_)
            }
        ),
        "{report}"
    );
    let newest = store.audit(None, 2).await.expect("read");
    assert_eq!(newest.len(), 2);
    assert!(newest[0].id > newest[1].id, "newest first");
    assert_eq!(newest[0].actor.as_deref(), Some("Person 4 (rita)"));
    assert_eq!(newest[0].action, "admitted");
    assert_eq!(
        store
            .audit(Some("987654321"), 10)
            .await
            .expect("read")
            .len(),
        0
    );
    assert_eq!(
        store
            .audit(Some("123456789"), 10)
            .await
            .expect("read")
            .len(),
        5
    );
}

/// C3: an administrator's change or a login goes into the same log and hash chain as the
/// sessions' records, with no session, and a session's entries leave it out.
async fn site_records_share_the_chain_with_session_records(db: Db) {
    let store = &db.store;
    store.append_audit(&audit_record(0)).await.expect("append");
    store
        .append_site_audit(&SiteAuditRecord {
            at: 1_700_000_000_500,
            actor: Some("Administrator (admin)".into()),
            action: SiteAction::AccountChanged {
                account: "rita".into(),
                display_name: None,
                is_admin: Some(true),
                is_webacd: None,
                disabled: None,
                password_set: true,
            },
        })
        .await
        .expect("append the site's record");
    store.append_audit(&audit_record(1)).await.expect("append");
    let report = store.verify_audit_chain().await.expect("verify");
    assert!(
        matches!(report, ChainReport::Intact { records: 3, .. }),
        "{report}"
    );
    let all = store.audit(None, 10).await.expect("read");
    assert_eq!(all.len(), 3);
    let site = &all[1];
    assert_eq!(site.session, "");
    assert_eq!(site.action, "account_changed");
    assert_eq!(site.actor.as_deref(), Some("Administrator (admin)"));
    assert_eq!(site.at, 1_700_000_000_500);
    assert_eq!(site.record["account"], "rita");
    assert_eq!(site.record["is_admin"], true);
    assert_eq!(site.record["password_set"], true);
    assert!(site.record.get("display_name").is_none(), "{}", site.record);
    let session = store.audit(Some("123456789"), 10).await.expect("read");
    assert_eq!(session.len(), 2, "{session:?}");
    assert!(session.iter().all(|e| e.action == "admitted"));
}

async fn a_record_inserted_around_the_server_breaks_the_chain(db: Db) {
    db.store
        .append_audit(&audit_record(1))
        .await
        .expect("append");
    db.raw
        .execute(
            "INSERT INTO audit (session, at, action, record) \
             VALUES ('123456789', 5, 'joined', '{}')",
        )
        .await
        .expect("forged record");
    // Appending goes on, after the newest sealed record; the forged one stays unsealed.
    db.store
        .append_audit(&audit_record(2))
        .await
        .expect("appending goes on");
    let report = db.store.verify_audit_chain().await.expect("verify");
    assert!(
        matches!(
            report,
            ChainReport::Tampered {
                intact_before: 1,
                ..
            }
        ),
        "{report}"
    );
}

async fn two_servers_appending_at_once_keep_one_chain(db: Db) {
    let other = db.another_store().await;
    let mut appends = Vec::new();
    for (i, store) in [db.store.clone(), other].into_iter().enumerate() {
        appends.push(tokio::spawn(async move {
            for n in 0..25 {
                store
                    .append_audit(&audit_record(i as u64 * 100 + n))
                    .await
                    .expect("append");
            }
        }));
    }
    for append in appends {
        append.await.expect("appender");
    }
    let report = db.store.verify_audit_chain().await.expect("verify");
    assert!(
        matches!(report, ChainReport::Intact { records: 50, .. }),
        "{report}"
    );
}

async fn settings_default_then_persist(db: Db) {
    let store = &db.store;
    assert_eq!(
        store.settings().await.expect("read"),
        SiteSettings::default()
    );
    let s = SiteSettings {
        max_customers_per_rep: 2,
        allow_multiple_sessions: true,
        max_file_mb: 0,
        allow_recording: true,
        recording_retention_days: 7,
    };
    store.save_settings(&s).await.expect("save");
    store.save_settings(&s).await.expect("save again");
    assert_eq!(store.settings().await.expect("read"), s);
    assert_eq!(store.smtp_settings().await.expect("read"), None);
    let smtp = SmtpSettings {
        host: "mail.example.com".into(),
        port: 587,
        tls: TlsMode::Starttls,
        username: Some("tandem".into()),
        password: Some("pässword".into()),
        from: "Support <support@example.com>".into(),
    };
    store.save_smtp_settings(Some(&smtp)).await.expect("save");
    assert_eq!(store.smtp_settings().await.expect("read"), Some(smtp));
    store.save_smtp_settings(None).await.expect("clear");
    assert_eq!(store.smtp_settings().await.expect("read"), None);
    // Another server sees what this one saved.
    assert_eq!(db.another_store().await.settings().await.expect("read"), s);
}

async fn queues_keep_their_members_and_names_are_unique(db: Db) {
    let store = &db.store;
    let rita = store.create_account(rep("rita")).await.expect("rita");
    let sam = store.create_account(rep("sam")).await.expect("sam");
    let billing = store.create_queue("Billing", 1).await.expect("queue");
    let err = store.create_queue("billing", 2).await.expect_err("taken");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    store.create_queue("Accounts", 3).await.expect("queue");
    let q = store
        .set_queue_members(billing.id, &[sam.id, rita.id, rita.id])
        .await
        .expect("members");
    let mut want = vec![rita.id, sam.id];
    want.sort();
    assert_eq!(q.members, want);
    let err = store
        .set_queue_members(billing.id, &[rita.id, 9999])
        .await
        .expect_err("no such account");
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("9999")),
        "{err}"
    );
    let q = store
        .set_queue_auto_assign(billing.id, true)
        .await
        .expect("auto");
    assert!(q.auto_assign);
    assert_eq!(q.members, want, "a refused change changed nothing");
    let names: Vec<String> = store
        .queues()
        .await
        .expect("queues")
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["Accounts", "Billing"]);
    store.delete_queue(billing.id).await.expect("delete");
    assert!(matches!(
        store.delete_queue(billing.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.set_queue_members(billing.id, &[]).await,
        Err(StoreError::NotFound)
    ));
}

async fn invitations_and_sessions_are_kept(db: Db) {
    let store = &db.store;
    let rita = store.create_account(rep("rita")).await.expect("rita");
    let invitation = InvitationRecord {
        id: 0,
        session: "123456789".into(),
        invitee: tandem_protocol::Invitee::Customer,
        address: "ann@example.com".into(),
        by_name: "Rita".into(),
        link: "https://tandem.example/join/x".into(),
        join_page: "https://tandem.example/join".into(),
        state: String::new(),
        reason: None,
    };
    let kept = store.create_invitation(&invitation).await.expect("create");
    assert_eq!(kept.state, "sending");
    assert_eq!(kept.address, "ann@example.com");
    store
        .set_invitation_state(kept.id, "failed", Some("mailbox full"))
        .await
        .expect("state");
    let read = store
        .invitation(kept.id)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        (read.state.as_str(), read.reason.as_deref()),
        ("failed", Some("mailbox full"))
    );
    assert_eq!(store.invitations("123456789").await.expect("list").len(), 1);
    assert_eq!(
        store.invitation_counts().await.expect("counts"),
        [("failed".to_owned(), 1)]
    );

    for (n, number) in ["111111111", "222222222", "333333333"].iter().enumerate() {
        store
            .session_started(number, n as i64, rita.id)
            .await
            .expect("started");
    }
    store
        .session_ended("111111111", "ended_by_rep", 10)
        .await
        .expect("ended");
    let ended = store
        .end_unfinished_sessions(20, &["333333333".to_owned()])
        .await
        .expect("end unfinished");
    assert_eq!(ended, 1, "only 222… was live and not kept");
    assert_eq!(
        store
            .end_unfinished_sessions(30, &["333333333".to_owned()])
            .await
            .expect("again"),
        0
    );
    store.ping().await.expect("ping");
}

async fn recordings_are_kept_finished_listed_newest_first_and_deleted(db: Db) {
    use tandem_signaling::store::NewRecording;
    let store = &db.store;
    let new = |file: &str, at: i64| NewRecording {
        session: "123456789".into(),
        title: "Ann's computer: desktop".into(),
        file: file.into(),
        started_by: 7,
        started_by_name: "Rita Rep".into(),
        started_at: at,
    };
    let first = store
        .create_recording(&new("a.mp4", 1000))
        .await
        .expect("a");
    let second = store
        .create_recording(&new("b.mp4", 2000))
        .await
        .expect("b");
    assert_eq!(first.state, "recording");
    assert_eq!((first.ended_at, first.bytes), (None, 0));
    store
        .finish_recording(first.id, 31_000, 30_000, 4_500_000, "done")
        .await
        .expect("finish");
    let read = store
        .recording(first.id)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        (
            read.ended_at,
            read.duration_ms,
            read.bytes,
            read.state.as_str()
        ),
        (Some(31_000), 30_000, 4_500_000, "done")
    );
    assert_eq!(read.file, "a.mp4");
    let ids: Vec<i64> = store
        .recordings()
        .await
        .expect("list")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [second.id, first.id], "newest first");
    store.delete_recording(first.id).await.expect("delete");
    assert_eq!(store.recording(first.id).await.expect("read"), None);
    assert_eq!(store.recordings().await.expect("list").len(), 1);
}

/// Recordings past the retention go, files and rows, with an audit record each; newer
/// ones, one still going on and a retention of 0 keep everything. A server that stopped
/// while recording finds the row `interrupted` at its next start, with its file's size.
async fn old_recordings_are_swept_and_cut_ones_marked(db: Db) {
    use tandem_signaling::recorder::Recordings;
    use tandem_signaling::store::NewRecording;
    let store: Arc<dyn tandem_signaling::store::Store> = db.store.clone();
    let dir = tempfile::tempdir().expect("dir");
    let now = tandem_signaling::clock::now_millis();
    let day = 86_400_000;
    let make = |file: &str, at: i64| NewRecording {
        session: "123456789".into(),
        title: "Ann's computer: desktop".into(),
        file: file.into(),
        started_by: 7,
        started_by_name: "Rita Rep".into(),
        started_at: at,
    };
    let mut ids = Vec::new();
    for (file, at, state) in [
        ("old.mp4", now - 40 * day, "done"),
        ("new.mp4", now - 2 * day, "done"),
        ("going.mp4", now - 40 * day, "recording"),
    ] {
        std::fs::write(dir.path().join(file), b"0123456789").expect("file");
        std::fs::write(dir.path().join(format!("{file}.vtt")), b"WEBVTT\n\n").expect("vtt");
        let r = store.create_recording(&make(file, at)).await.expect("row");
        if state == "done" {
            store
                .finish_recording(r.id, at + 1000, 1000, 10, "done")
                .await
                .expect("finish");
        }
        ids.push(r.id);
    }
    // A start marks the one left going as interrupted, with its file's size.
    // No store writer here (its queue is closed): the records go to the store directly.
    let (store_jobs, _) = tokio::sync::mpsc::unbounded_channel();
    let recordings = Recordings::open(dir.path().to_owned(), store.clone(), store_jobs)
        .await
        .expect("open");
    let cut = store.recording(ids[2]).await.expect("read").expect("kept");
    assert_eq!((cut.state.as_str(), cut.bytes), ("interrupted", 10));

    assert_eq!(recordings.sweep(0).await.expect("sweep"), 0, "0 keeps all");
    assert_eq!(recordings.sweep(30).await.expect("sweep"), 2);
    let left: Vec<String> = store
        .recordings()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.file)
        .collect();
    assert_eq!(left, ["new.mp4"]);
    for gone in ["old.mp4", "old.mp4.vtt", "going.mp4", "going.mp4.vtt"] {
        assert!(!dir.path().join(gone).exists(), "{gone} is still there");
    }
    assert!(dir.path().join("new.mp4").exists());
    let audit = store.audit(Some("123456789"), 10).await.expect("audit");
    let deleted = audit
        .iter()
        .filter(|e| e.action == "recording_deleted")
        .count();
    assert_eq!(deleted, 2, "{audit:?}");
}

/// Each test above, on each backend.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Db::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Db::postgres().await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    usernames_are_unique_regardless_of_case,
    disabling_an_account_ends_its_logins,
    the_audit_log_is_append_only,
    appended_records_form_an_intact_chain,
    site_records_share_the_chain_with_session_records,
    a_record_inserted_around_the_server_breaks_the_chain,
    two_servers_appending_at_once_keep_one_chain,
    settings_default_then_persist,
    queues_keep_their_members_and_names_are_unique,
    invitations_and_sessions_are_kept,
    recordings_are_kept_finished_listed_newest_first_and_deleted,
    old_recordings_are_swept_and_cut_ones_marked,
);

/// One source of truth for the schema: migrations/sqlite and migrations/postgres are
/// written file for file, and what they build must be the same tables with the same
/// columns, types (by family) and nullability.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_migrate_to_the_same_schema() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let names = |backend: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(backend))
            .expect("migrations")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names("sqlite"),
        names("postgres"),
        "each migration has its twin"
    );
    let (sqlite, postgres) = (Db::sqlite().await, Db::postgres().await);
    let (a, b) = (sqlite.raw.schema().await, postgres.raw.schema().await);
    assert!(
        a.contains_key("audit") && a.contains_key("accounts"),
        "{a:?}"
    );
    assert_eq!(a, b, "SQLite's schema, then PostgreSQL's");
}

/// A wrong or unreachable database is named with the reason, and without its password.
#[tokio::test]
async fn a_database_that_cannot_be_reached_says_why() {
    let err = PostgresStore::connect("mysql://tandem@localhost/tandem")
        .await
        .expect_err("not PostgreSQL");
    assert!(err.to_string().contains("not a PostgreSQL URL"), "{err}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("postgres://tandem:sekrit@127.0.0.1:{port}/tandem");
    let err = PostgresStore::connect(&url)
        .await
        .expect_err("nobody there");
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(
        tandem_signaling::redacted(&url),
        format!("postgres://tandem@127.0.0.1:{port}/tandem")
    );
    for (url, shown) in [
        ("postgres://h/db?password=sekrit", "postgres://h/db"),
        ("postgres://tandem:pa?ss@db/t", "postgres://tandem@db/t"),
        (
            "postgres://tandem:p@ss/w:rd@db:5432/t?sslmode=require",
            "postgres://tandem@db:5432/t",
        ),
        ("postgres://h/db?user=a@b&password=x", "postgres://h/db"),
        ("db.example.com", "(not a URL)"),
        // --redis URLs: a password alone, or a user and a password.
        ("redis://:sekrit@cache:6379", "redis://@cache:6379"),
        (
            "redis://tandem:sekrit@cache:6379/0",
            "redis://tandem@cache:6379/0",
        ),
    ] {
        assert_eq!(tandem_signaling::redacted(url), shown, "{url}");
    }
}
