//! Automatic certificates over ACME, against Pebble (Debian's `pebble`, the ACME test
//! server): the server, started with `--acme-domain tandem.test`, orders a certificate
//! from Pebble (which, with PEBBLE_VA_ALWAYS_VALID, issues without reaching back to
//! validate) and serves it without a restart: a client trusting only Pebble's root, asking
//! for tandem.test, gets a certificate for tandem.test issued by Pebble's intermediate.
//! With several servers, the certificate is shared, and Pebble validating for real (its
//! DNS from `pebble-challtestsrv`) reaches a standby for the serving server's challenge.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::free_port;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::ServerName};
use x509_parser::extensions::GeneralName;

const DEADLINE: Duration = Duration::from_secs(60);
const DOMAIN: &str = "tandem.test";

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pebble_binary() -> &'static str {
    if !Path::new("/usr/bin/pebble").exists() {
        let installed = Command::new("apt-get")
            .args(["install", "-y", "pebble"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed,
            "pebble is missing and apt-get could not install it"
        );
    }
    "/usr/bin/pebble"
}

/// How Pebble validates a challenge.
#[derive(Clone, Copy)]
enum Validation {
    /// It does not: every challenge is valid.
    Never,
    /// Over HTTP to `http_port` of the address `dns_port`'s DNS server gives for the name.
    Http { dns_port: u16, http_port: u16 },
}

/// Pebble with its HTTPS certificate from a CA made now; the CA's PEM path and the
/// ports of the ACME and management listeners.
fn start_pebble(dir: &Path, validation: Validation) -> (Killed, std::path::PathBuf, u16, u16) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Pebble's HTTPS test CA");
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let ca_path = dir.join("pebble-ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).expect("write");
    std::fs::write(dir.join("pebble-cert.pem"), leaf.pem()).expect("write");
    std::fs::write(dir.join("pebble-key.pem"), leaf_key.serialize_pem()).expect("write");
    let (acme_port, management_port) = (free_port(), free_port());
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": dir.join("pebble-cert.pem"),
            "privateKey": dir.join("pebble-key.pem"),
            "httpPort": match validation {
                Validation::Never => free_port(),
                Validation::Http { http_port, .. } => http_port,
            },
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let config_path = dir.join("pebble.json");
    std::fs::write(&config_path, config.to_string()).expect("write");
    let mut pebble = Command::new(pebble_binary());
    pebble.arg("-config").arg(&config_path);
    match validation {
        Validation::Never => {
            pebble.env("PEBBLE_VA_ALWAYS_VALID", "1");
        }
        Validation::Http { dns_port, .. } => {
            pebble
                .arg("-dnsserver")
                .arg(format!("127.0.0.1:{dns_port}"));
        }
    }
    let child = pebble
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(Stdio::null())
        .spawn()
        .expect("start pebble");
    (Killed(child), ca_path, acme_port, management_port)
}

fn client(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).expect("CA"))
        .build()
        .expect("client")
}

async fn wait_for_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(start.elapsed() < DEADLINE, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The chain the server serves to a client asking for `DOMAIN` and trusting `roots`, once
/// the handshake succeeds (not while the stand-in certificate is served).
async fn served_chain(addr: SocketAddr, roots: rustls::RootCertStore) -> Vec<Vec<u8>> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let start = Instant::now();
    let mut last = String::new();
    loop {
        assert!(
            start.elapsed() < DEADLINE,
            "no certificate from Pebble served within {DEADLINE:?}: {last}"
        );
        if let Ok(tcp) = TcpStream::connect(addr).await {
            let name = ServerName::try_from(DOMAIN).expect("name");
            match connector.connect(name, tcp).await {
                Ok(tls) => {
                    let (_, session) = tls.get_ref();
                    return session
                        .peer_certificates()
                        .expect("certificates")
                        .iter()
                        .map(|c| c.to_vec())
                        .collect();
                }
                Err(e) => last = e.to_string(),
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The server binary on `port`, ordering for `DOMAIN` from Pebble on `acme_port`.
fn acme_server(
    data_dir: &Path,
    port: u16,
    acme_port: u16,
    pebble_ca: &Path,
    extra: &[&str],
) -> Killed {
    Killed(
        Command::new(env!("CARGO_BIN_EXE_tandem-signaling"))
            .args(extra)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--no-embedded-turn",
                "--admin-password",
                "admin-password",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--acme-domain", DOMAIN, "--acme-email", "ops@tandem.test"])
            .arg("--acme-directory")
            .arg(format!("https://127.0.0.1:{acme_port}/dir"))
            .arg("--acme-ca-cert")
            .arg(pebble_ca)
            .env_remove("TANDEM_CONFIG")
            .stdout(Stdio::null())
            .spawn()
            .expect("start tandem-signaling"),
    )
}

/// Pebble's root and intermediate, from its management interface.
async fn pebble_roots(
    pebble_ca: &Path,
    management_port: u16,
) -> (CertificateDer<'static>, CertificateDer<'static>) {
    let http = client(&std::fs::read(pebble_ca).expect("read"));
    let fetch = |what: &'static str| {
        let http = http.clone();
        async move {
            let pem = http
                .get(format!("https://127.0.0.1:{management_port}/{what}/0"))
                .send()
                .await
                .expect("pebble management")
                .error_for_status()
                .expect("status")
                .bytes()
                .await
                .expect("body");
            use rustls::pki_types::pem::PemObject;
            CertificateDer::from_pem_slice(&pem).expect("PEM")
        }
    };
    (fetch("roots").await, fetch("intermediates").await)
}

#[tokio::test]
async fn a_certificate_is_ordered_from_pebble_and_served() {
    let dir = tempfile::tempdir().expect("dir");
    let (_pebble, pebble_ca, acme_port, management_port) =
        start_pebble(dir.path(), Validation::Never);
    wait_for_port(acme_port).await;
    wait_for_port(management_port).await;

    let data_dir = dir.path().join("data");
    let port = free_port();
    let _server = acme_server(&data_dir, port, acme_port, &pebble_ca, &[]);

    let (root, intermediate) = pebble_roots(&pebble_ca, management_port).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root).expect("root");

    let chain = served_chain(SocketAddr::from(([127, 0, 0, 1], port)), roots).await;
    let acme_dir = data_dir.join("acme");
    for file in ["cert.pem", "key.pem", "account.json"] {
        assert!(
            acme_dir.join(file).is_file(),
            "no {file} in {}",
            acme_dir.display()
        );
    }

    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).expect("leaf");
    let names: Vec<String> = leaf
        .subject_alternative_name()
        .expect("SAN extension")
        .expect("has SAN")
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec![DOMAIN.to_owned()]);
    let (_, intermediate) = x509_parser::parse_x509_certificate(&intermediate).expect("inter");
    assert_eq!(
        leaf.issuer().as_raw(),
        intermediate.subject().as_raw(),
        "issued by {}, not Pebble's intermediate {}",
        leaf.issuer(),
        intermediate.subject()
    );
    assert_ne!(
        leaf.issuer().as_raw(),
        leaf.subject().as_raw(),
        "self-signed"
    );
}

/// Pebble, answering, with its root to trust, and a fresh PostgreSQL for several servers.
async fn pebble_and_database(
    dir: &Path,
    validation: Validation,
) -> (
    Killed,
    std::path::PathBuf,
    u16,
    rustls::RootCertStore,
    crate::common::postgres::Postgres,
) {
    let (pebble, pebble_ca, acme_port, management_port) = start_pebble(dir, validation);
    let db = tokio::task::spawn_blocking(crate::common::postgres::Postgres::start)
        .await
        .expect("start task")
        .expect("start PostgreSQL");
    wait_for_port(acme_port).await;
    wait_for_port(management_port).await;
    let (root, _) = pebble_roots(&pebble_ca, management_port).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root).expect("root");
    (pebble, pebble_ca, acme_port, roots, db)
}

/// Several servers on one site (docs/self-hosting.md, "Several servers"): only the serving
/// one orders; the standby serves the very certificate it got (taken from the database),
/// not its own self-signed stand-in, and never orders itself. Real servers, PostgreSQL
/// and Pebble.
#[tokio::test]
async fn with_several_servers_each_serves_the_certificate_the_serving_one_got() {
    let dir = tempfile::tempdir().expect("dir");
    let (_pebble, pebble_ca, acme_port, roots, db) =
        pebble_and_database(dir.path(), Validation::Never).await;

    let postgres = ["--postgres", db.url.as_str()];
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let (port_a, port_b) = (free_port(), free_port());
    let _a = acme_server(&data_a, port_a, acme_port, &pebble_ca, &postgres);
    let served_by_a = served_chain(SocketAddr::from(([127, 0, 0, 1], port_a)), roots.clone()).await;
    let _b = acme_server(&data_b, port_b, acme_port, &pebble_ca, &postgres);
    let served_by_b = served_chain(SocketAddr::from(([127, 0, 0, 1], port_b)), roots).await;
    assert_eq!(
        served_by_b[0], served_by_a[0],
        "the standby serves the certificate the serving server got"
    );
    assert!(
        data_a.join("acme/account.json").is_file(),
        "the serving server ordered"
    );
    assert!(
        !data_b.join("acme/account.json").exists(),
        "the standby did not order"
    );
    // The standby trusts the serving server's certificate now that it serves the same,
    // so it forwards: a page through it.
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let started = Instant::now();
    loop {
        let readyz = http
            .get(format!("https://127.0.0.1:{port_b}/readyz"))
            .send()
            .await;
        if let Ok(response) = readyz
            && response.status() == 200
        {
            let text = response.text().await.unwrap_or_default();
            assert!(text.starts_with("ready: standby, forwarding"), "{text}");
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the standby never forwarded to the serving server"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Pebble's DNS for the test: every name is 127.0.0.1, and has no IPv6 address. With the
/// port of its management listener, which opens once it is running.
fn start_challtestsrv(dns_port: u16) -> (Killed, u16) {
    let management = free_port();
    let child = Killed(
        Command::new("/usr/bin/pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-management", &format!("127.0.0.1:{management}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(Stdio::null())
            .spawn()
            .expect("start pebble-challtestsrv"),
    );
    (child, management)
}

/// The network between the CA and the site: a TCP relay on `listener` to the port set in
/// `to` (a connection that comes before it is set waits for it), counting what it relays.
fn relay(
    listener: tokio::net::TcpListener,
    to: tokio::sync::watch::Receiver<Option<u16>>,
    relayed: Arc<std::sync::atomic::AtomicUsize>,
) {
    tokio::spawn(async move {
        while let Ok((mut from, _)) = listener.accept().await {
            let mut to = to.clone();
            let relayed = relayed.clone();
            tokio::spawn(async move {
                let Ok(port) = to
                    .wait_for(Option::is_some)
                    .await
                    .map(|port| port.unwrap_or(0))
                else {
                    return;
                };
                if let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await {
                    relayed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = tokio::io::copy_bidirectional(&mut from, &mut server).await;
                }
            });
        }
    });
}

/// Several servers on one site (docs/self-hosting.md, "HTTPS"): the CA's HTTP-01 request
/// may reach any of them on port 80, and a standby answers the serving server's pending
/// challenge (kept in the database while the order is under way). Pebble validates for
/// real here, and only ever reaches the standby: the order goes through only if the
/// standby answered. Real servers, PostgreSQL, Pebble and its DNS.
#[tokio::test]
async fn a_standby_answers_the_cas_challenge_for_the_serving_server() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("dir");
    let (dns_port, http_port) = (free_port(), free_port());
    let (_dns, dns_management) = start_challtestsrv(dns_port);
    // What Pebble reaches on "port 80" is relayed to the standby, once known.
    let network = tokio::net::TcpListener::bind(("127.0.0.1", http_port))
        .await
        .expect("bind the CA's port 80");
    let (standby_tx, standby) = tokio::sync::watch::channel(None::<u16>);
    let relayed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    relay(network, standby, relayed.clone());
    wait_for_port(dns_management).await;
    let (_pebble, pebble_ca, acme_port, roots, db) = pebble_and_database(
        dir.path(),
        Validation::Http {
            dns_port,
            http_port,
        },
    )
    .await;

    // The test holds the site lease while both servers start: both stand by, listening
    // on their redirect ports, until it lets go and one of them serves (and orders).
    let mut lease = sqlx::PgConnection::connect(&db.url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(tandem_signaling::site::SITE_LOCK)
        .execute(&mut lease)
        .await
        .expect("take the site lease");
    let servers: Vec<(u16, u16)> = (0..2).map(|_| (free_port(), free_port())).collect();
    let _running: Vec<Killed> = servers
        .iter()
        .enumerate()
        .map(|(i, (port, redirect))| {
            acme_server(
                &dir.path().join(format!("server-{i}")),
                *port,
                acme_port,
                &pebble_ca,
                &[
                    "--postgres",
                    db.url.as_str(),
                    "--http-redirect-port",
                    &redirect.to_string(),
                ],
            )
        })
        .collect();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (_, redirect) in &servers {
        let started = Instant::now();
        loop {
            // A standby redirects to HTTPS, as the serving server does.
            let answer = http
                .get(format!("http://127.0.0.1:{redirect}/login"))
                .header("host", DOMAIN)
                .send()
                .await;
            if let Ok(answer) = answer {
                assert_eq!(answer.status(), 308);
                break;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "a standby never answered on its redirect port"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    lease.close().await.expect("let go of the site lease");

    // Whichever serves orders; the CA's request goes to the other.
    let started = Instant::now();
    let (serving, standing_by) = loop {
        let mut ready = Vec::new();
        for (port, _) in &servers {
            let text = match http
                .get(format!("https://127.0.0.1:{port}/readyz"))
                .send()
                .await
            {
                Ok(answer) => answer.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            ready.push(text == "ready\n");
        }
        match ready[..] {
            [true, false] => break (servers[0], servers[1]),
            [false, true] => break (servers[1], servers[0]),
            _ => {}
        }
        assert!(started.elapsed() < DEADLINE, "no server took the site");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    standby_tx.send_replace(Some(standing_by.1));

    let chain = served_chain(SocketAddr::from(([127, 0, 0, 1], serving.0)), roots).await;
    assert!(!chain.is_empty());
    assert!(
        relayed.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "Pebble's request went to the standby"
    );
    assert!(
        !dir.path()
            .join(format!("server-{}", usize::from(standing_by == servers[1])))
            .join("acme/account.json")
            .exists(),
        "the standby did not order"
    );
    // The order's challenges are taken out of the database once it is done.
    let mut conn = sqlx::PgConnection::connect(&db.url)
        .await
        .expect("connect to PostgreSQL");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM acme_challenges")
        .fetch_one(&mut conn)
        .await
        .expect("count the challenges");
    assert_eq!(left, 0, "challenges left in the database");
}
