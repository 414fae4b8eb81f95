//! The counts the servers of one site share through Redis (`--redis`), against a real
//! Redis: two servers' connection counts from one address add up to the cap; a server that
//! stops being heard from stops counting; while Redis is away connections are let in and
//! the failures counted; once it is back, each server's counts are written again; a Redis
//! that refuses the server's password stops it at start.

use std::net::IpAddr;
use std::time::Duration;

use tandem_signaling::limits::AddrKey;
use tandem_signaling::shared::{Admission, HEARTBEAT, STALE_AFTER, SharedCounts};

use crate::common::redis::Redis;

const DEADLINE: Duration = Duration::from_secs(60);

async fn start_redis(port: Option<u16>) -> Redis {
    tokio::task::spawn_blocking(move || Redis::start_on(port))
        .await
        .expect("start task")
        .expect("start Redis")
}

/// `counts.admit`, asked again when Redis did not answer in time meanwhile (a loaded
/// machine lets such a connection in unchecked): whether Redis let it in.
async fn admit(counts: &SharedCounts, key: AddrKey, max: usize) -> bool {
    let started = tokio::time::Instant::now();
    loop {
        let errors = counts.errors();
        let admission = counts.admit(key, max).await;
        if counts.errors() == errors {
            return admission.let_in();
        }
        if admission == Admission::Counted {
            counts.release(key);
        }
        assert!(started.elapsed() < DEADLINE, "Redis never answered in time");
    }
}

/// Wait until `check` holds, asking again every 50 ms.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = tokio::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < DEADLINE, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_servers_hold_one_cap_per_address_through_redis() {
    let redis = start_redis(None).await;
    let a = SharedCounts::connect(&redis.url, "a.example:443", None)
        .await
        .expect("A connects");
    let b = SharedCounts::connect(&redis.url, "b.example:443", None)
        .await
        .expect("B connects");
    let client = AddrKey::from("203.0.113.9".parse::<IpAddr>().expect("address"));
    let other = AddrKey::from("2001:db8:1:2::7".parse::<IpAddr>().expect("address"));

    assert!(admit(&a, client, 2).await, "the first place, on A");
    assert!(admit(&b, client, 2).await, "the second, on B");
    assert!(!admit(&a, client, 2).await, "no third on A");
    assert!(!admit(&b, client, 2).await, "nor on B");
    assert!(
        admit(&b, other, 2).await,
        "another address has its own count"
    );
    assert_eq!(
        redis
            .command(&["HGET", "tandem:conns:b.example:443", "2001:db8:1:2::/64"])
            .expect("ask Redis"),
        "1",
        "an IPv6 address counts by its /64"
    );

    // A place freed on B is free on A.
    b.release(client);
    until("A takes the place B freed", async || {
        admit(&a, client, 2).await
    })
    .await;
    assert!(!admit(&b, client, 2).await, "A holds both places now");

    // A server not heard from stops counting (a server that died with its connections).
    drop(a);
    let b_let_in = tokio::time::Instant::now();
    until("B lets the address in once A is stale", async || {
        admit(&b, client, 2).await
    })
    .await;
    let took = b_let_in.elapsed();
    assert!(
        took + HEARTBEAT >= STALE_AFTER - Duration::from_secs(1),
        "A's places were freed long before it was stale ({took:?})"
    );
    // Not by its hash's expiry (three times as long): by its staleness.
    assert!(
        took < STALE_AFTER * 2,
        "A's places were freed only after {took:?}, not once it was stale"
    );

    // Redis goes away: the connection is let in (each server's own cap still holds),
    // and the failure is counted.
    let port = redis.port;
    drop(redis);
    assert!(
        b.admit(client, 1).await.let_in(),
        "let in without Redis, over the shared cap"
    );
    assert!(b.errors() >= 1, "the failure is counted");
    assert!(!b.is_up());

    // A server that starts while Redis is away starts all the same.
    let c = SharedCounts::connect(&format!("redis://127.0.0.1:{port}"), "c.example:443", None)
        .await
        .expect("C starts without Redis");
    assert!(c.admit(client, 2).await.let_in(), "let in without Redis");
    assert!(c.errors() >= 1 && !c.is_up());

    // Redis is back, empty: B's and C's counts are written again, whole.
    let redis = start_redis(Some(port)).await;
    until("B's and C's counts are in Redis again", async || {
        let count = |server: &str| {
            redis
                .command(&["HGET", &format!("tandem:conns:{server}"), "203.0.113.9"])
                .unwrap_or_default()
        };
        count("b.example:443") == "2" && count("c.example:443") == "1"
    })
    .await;
    assert!(b.is_up() && c.is_up());
    let d = SharedCounts::connect(&redis.url, "d.example:443", None)
        .await
        .expect("D connects");
    assert!(
        !admit(&d, client, 3).await,
        "D sees B's two connections and C's one"
    );
    assert!(
        admit(&d, client, 4).await,
        "a fourth place under a cap of four"
    );

    // A server that stops cleanly takes its counts out at once, not once it is stale.
    assert!(d.leave().await, "Redis took D's leave");
    assert_eq!(
        redis
            .command(&["ZSCORE", "tandem:servers", "d.example:443"])
            .expect("ask Redis"),
        "$-1",
        "D is off the list"
    );
    assert_eq!(
        redis
            .command(&["EXISTS", "tandem:conns:d.example:443"])
            .expect("ask Redis"),
        ":0",
        "D's counts are gone"
    );
    assert!(admit(&b, client, 4).await, "D's place is free at once");

    // A Redis that refuses the server (a wrong password) stops it at start, saying why
    // and without the password.
    redis
        .command(&["CONFIG", "SET", "requirepass", "right-pw"])
        .expect("set a password");
    let err = SharedCounts::connect(
        &format!("redis://:sekrit-pw@127.0.0.1:{port}"),
        "e:443",
        None,
    )
    .await
    .expect_err("a wrong password");
    let said = format!("{err:#}");
    assert!(said.contains("refused this server"), "{said}");
    assert!(!said.contains("sekrit-pw"), "{said}");
}

/// Wakes set `woken`.
struct Flag(std::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A connection whose task goes while its admit is under way (a standby's drain aborts
/// such tasks) does not keep its place: neither when it goes before the worker answered,
/// nor when the answer was sent and never read. Each admit is polled by hand once (its
/// request sent), then dropped at once, or once its answer has come (its waker woken).
#[tokio::test]
async fn an_admit_given_up_midway_gives_its_place_back() {
    use std::future::Future;
    let redis = start_redis(None).await;
    let counts = SharedCounts::connect(&redis.url, "a.example:443", None)
        .await
        .expect("connects");
    let client = AddrKey::from("203.0.113.10".parse::<IpAddr>().expect("address"));
    for answered_first in [false, true, false, true] {
        let flag = std::sync::Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)));
        let waker = std::task::Waker::from(flag.clone());
        let mut admitting = Box::pin(counts.admit(client, 1));
        let polled = admitting
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        assert!(polled.is_pending(), "an admit waits for Redis");
        if answered_first {
            until("the admit's answer comes", async || {
                flag.0.load(std::sync::atomic::Ordering::SeqCst)
            })
            .await;
        }
        drop(admitting);
        // The one place is free again: a new admit is counted.
        until("the address gets its one place again", async || {
            let admitted = counts.admit(client, 1).await;
            if admitted == Admission::Counted {
                counts.release(client);
            }
            admitted == Admission::Counted
        })
        .await;
    }
    until("nothing of it is left counted in Redis", async || {
        redis
            .command(&["HEXISTS", "tandem:conns:a.example:443", "203.0.113.10"])
            .is_ok_and(|answer| answer == ":0")
    })
    .await;
}

/// Over TLS (`rediss://`, docs/self-hosting.md "Several servers"): with the CA that signed
/// Redis's certificate given (`--redis-ca-cert`), two servers share the cap as over plain
/// TCP; checked against the system's roots instead, the certificate fails and the start
/// stops, saying why and what to give.
#[tokio::test]
async fn over_tls_the_cap_is_shared_and_an_unchecked_certificate_stops_the_start() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = tempfile::tempdir().expect("dir");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("key");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let (ca_path, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("redis.pem"),
        dir.path().join("redis-key.pem"),
    );
    std::fs::write(&ca_path, ca.pem()).expect("write");
    std::fs::write(&cert, leaf.pem()).expect("write");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("write");
    let redis = tokio::task::spawn_blocking(move || Redis::start_with_tls(&cert, &key))
        .await
        .expect("start task")
        .expect("start Redis with TLS");
    let url = redis.tls_url.clone().expect("a TLS port");

    let a = SharedCounts::connect(&url, "a.example:443", Some(&ca_path))
        .await
        .expect("A connects over TLS");
    let b = SharedCounts::connect(&url, "b.example:443", Some(&ca_path))
        .await
        .expect("B connects over TLS");
    let client = AddrKey::from("203.0.113.11".parse::<IpAddr>().expect("address"));
    assert!(admit(&a, client, 1).await, "the one place, on A");
    assert!(!admit(&b, client, 1).await, "B sees A's connection");
    assert_eq!(
        redis
            .command(&["HGET", "tandem:conns:a.example:443", "203.0.113.11"])
            .expect("ask Redis"),
        "1",
        "A's count, written over TLS"
    );

    let err = SharedCounts::connect(&url, "c.example:443", None)
        .await
        .expect_err("a certificate the system's roots do not vouch for");
    let said = format!("{err:#}");
    assert!(
        said.contains("certificate failed the check") && said.contains("--redis-ca-cert"),
        "{said}"
    );
    // A CA file that holds no certificate is said to be so.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    let err = SharedCounts::connect(&url, "c.example:443", Some(&empty))
        .await
        .expect_err("no certificate in the CA file");
    assert!(
        format!("{err:#}").contains("holds no PEM certificate"),
        "{err:#}"
    );
}

/// A Redis that asks its TLS clients for a certificate (`tls-auth-clients yes`, Redis's
/// own default once TLS is on): a server showing one issued by the CA Redis trusts
/// (`--redis-client-cert`, `--redis-client-key`) shares the counts through it; one
/// without is refused at its start, with the flags to give in the reason.
#[tokio::test]
async fn over_tls_a_redis_that_asks_for_client_certificates_takes_a_server_with_one() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use tandem_signaling::tls::TlsFiles;
    let dir = tempfile::tempdir().expect("dir");
    // Names of their own: OpenSSL (Redis) takes a certificate whose subject is its
    // issuer's for a self-signed one.
    let named = |names: Vec<String>, common_name: &str| {
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params
    };
    let mut ca_params = named(Vec::new(), "Tandem test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("key");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let issue = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let cert = named(vec![name.to_owned()], name)
            .signed_by(&key, &issuer)
            .expect("certificate");
        let files = TlsFiles {
            cert: dir.path().join(format!("{name}.pem")),
            key: dir.path().join(format!("{name}-key.pem")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write");
        std::fs::write(&files.key, key.serialize_pem()).expect("write");
        files
    };
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("write");
    let redis_files = issue("localhost");
    let server_files = issue("a.example");
    let (cert, key, client_ca) = (
        redis_files.cert.clone(),
        redis_files.key.clone(),
        ca_path.clone(),
    );
    let redis =
        tokio::task::spawn_blocking(move || Redis::start_with_client_auth(&cert, &key, &client_ca))
            .await
            .expect("start task")
            .expect("start Redis asking for client certificates");
    let url = redis.tls_url.clone().expect("a TLS port");

    let a = SharedCounts::connect_with(&url, "a.example:443", Some(&ca_path), Some(&server_files))
        .await
        .expect("A shows its certificate and connects");
    let client = AddrKey::from("203.0.113.12".parse::<IpAddr>().expect("address"));
    assert!(admit(&a, client, 1).await, "the one place, on A");
    assert_eq!(
        redis
            .command(&["HGET", "tandem:conns:a.example:443", "203.0.113.12"])
            .expect("ask Redis"),
        "1",
        "A's count, written over TLS with its certificate"
    );

    let err = SharedCounts::connect(&url, "b.example:443", Some(&ca_path))
        .await
        .expect_err("a server without a client certificate");
    let said = format!("{err:#}");
    assert!(said.contains("--redis-client-cert"), "{said}");
    // A key file that holds no key, or another certificate's key, is said to be so
    // before any connection.
    let other = issue("b.example");
    for (wrong, cert, key) in [
        ("no key", &server_files.cert, &ca_path),
        ("another's key", &server_files.cert, &other.key),
    ] {
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        };
        let err = SharedCounts::connect_with(&url, "b.example:443", Some(&ca_path), Some(&files))
            .await
            .expect_err(wrong);
        assert!(
            format!("{err:#}").contains("cannot be used"),
            "{wrong}: {err:#}"
        );
    }
}
