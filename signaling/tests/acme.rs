//! Automatic certificates over ACME, against Pebble (Debian's `pebble`, the ACME test
//! server): the server, started with `--acme-domain tandem.test`, orders a certificate
//! from Pebble (which, with PEBBLE_VA_ALWAYS_VALID, issues without reaching back to
//! validate) and serves it without a restart: a client trusting only Pebble's root, asking
//! for tandem.test, gets a certificate for tandem.test issued by Pebble's intermediate.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
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

/// Pebble with its HTTPS certificate from a CA made now; the CA's PEM path and the
/// ports of the ACME and management listeners.
fn start_pebble(dir: &Path) -> (Killed, std::path::PathBuf, u16, u16) {
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
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let config_path = dir.join("pebble.json");
    std::fs::write(&config_path, config.to_string()).expect("write");
    let child = Command::new(pebble_binary())
        .arg("-config")
        .arg(&config_path)
        .env("PEBBLE_VA_ALWAYS_VALID", "1")
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
    let (_pebble, pebble_ca, acme_port, management_port) = start_pebble(dir.path());
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

/// Several servers on one site (docs/self-hosting.md, "Several servers"): only the serving
/// one orders; the standby serves the very certificate it got (taken from the database),
/// not its own self-signed stand-in, and never orders itself. Real servers, PostgreSQL
/// and Pebble.
#[tokio::test]
async fn with_several_servers_each_serves_the_certificate_the_serving_one_got() {
    let dir = tempfile::tempdir().expect("dir");
    let (_pebble, pebble_ca, acme_port, management_port) = start_pebble(dir.path());
    let db = tokio::task::spawn_blocking(crate::common::postgres::Postgres::start)
        .await
        .expect("start task")
        .expect("start PostgreSQL");
    wait_for_port(acme_port).await;
    wait_for_port(management_port).await;
    let (root, _) = pebble_roots(&pebble_ca, management_port).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root).expect("root");

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
