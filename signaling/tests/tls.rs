//! HTTPS in the server: a test CA made now (rcgen) signs the server's certificate; real
//! clients that trust only that CA log in (Secure cookie, HSTS), open a WebSocket, follow
//! the plain-HTTP redirect, and see a renewed certificate on new connections without a
//! restart, while a broken replacement leaves the previous one in use.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{ADMIN_PASSWORD, TestServer};
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use tandem_signaling::tls::TlsFiles;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const WAIT: Duration = Duration::from_secs(30);

/// A CA that exists only for this test, and the certificates it signs.
pub(crate) struct TestCa {
    pub(crate) cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// One server certificate: its PEM files' contents and its DER (what a client sees).
pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    der: Vec<u8>,
}

impl TestCa {
    pub(crate) fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Tandem test CA");
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for 127.0.0.1 and localhost with a fresh key.
    pub(crate) fn leaf(&self) -> Leaf {
        self.leaf_for(&["127.0.0.1", "localhost"])
    }

    /// A certificate for `names` with a fresh key.
    pub(crate) fn leaf_for(&self, names: &[&str]) -> Leaf {
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    fn roots(&self) -> rustls::RootCertStore {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("CA der"))
            .expect("CA as root");
        roots
    }

    pub(crate) fn reqwest(&self, follow_redirects: bool) -> reqwest::Client {
        self.reqwest_builder(follow_redirects)
            .build()
            .expect("client")
    }

    /// A client trusting only this CA.
    pub(crate) fn reqwest_builder(&self, follow_redirects: bool) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).expect("CA"),
            )
            .redirect(if follow_redirects {
                reqwest::redirect::Policy::limited(3)
            } else {
                reqwest::redirect::Policy::none()
            })
    }

    pub(crate) fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(self.roots())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

/// Put a certificate in place the way certbot does: each file appears whole at once.
fn install(files: &TlsFiles, cert_pem: &str, key_pem: &str) {
    fn swap(path: &Path, text: &str) {
        let next = path.with_extension("next");
        std::fs::write(&next, text).expect("write");
        std::fs::rename(&next, path).expect("rename");
    }
    swap(&files.key, key_pem);
    swap(&files.cert, cert_pem);
}

async fn https_server(ca: &TestCa, dir: &Path) -> (TestServer, TlsFiles) {
    let files = TlsFiles {
        cert: dir.join("fullchain.pem"),
        key: dir.join("privkey.pem"),
    };
    let leaf = ca.leaf();
    install(&files, &leaf.cert_pem, &leaf.key_pem);
    let tls = files.clone();
    let server = TestServer::start_with(move |config| config.tls = Some(tls)).await;
    (server, files)
}

/// A new TLS connection: the certificate the server showed, and the protocol it chose.
async fn handshake(ca: &TestCa, addr: SocketAddr) -> (Vec<u8>, Option<Vec<u8>>) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::from(addr.ip());
    let tls = ca
        .connector(&[b"h2", b"http/1.1"])
        .connect(name, tcp)
        .await
        .expect("handshake");
    let (_, session) = tls.get_ref();
    let peer = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("a certificate")
        .to_vec();
    (peer, session.alpn_protocol().map(<[u8]>::to_vec))
}

#[tokio::test]
async fn https_login_gets_a_secure_cookie_and_hsts_and_a_websocket_says_hello() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("dir");
    let (server, _files) = https_server(&ca, dir.path()).await;
    let base = format!("https://{}", server.addr);
    let client = ca.reqwest(false);

    // As a browser does: HTTP/2 (no Host header, only the URI's authority) and an Origin
    // that the cross-site check compares with the host.
    let login = client
        .post(format!("{base}/api/login"))
        .header("origin", &base)
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login over HTTPS");
    assert_eq!(login.version(), reqwest::Version::HTTP_2);
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get("set-cookie")
        .expect("a login cookie")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.split(';').any(|part| part.trim() == "Secure"),
        "{cookie}"
    );
    assert_eq!(
        login.headers().get("strict-transport-security"),
        Some(&"max-age=31536000".parse().expect("header"))
    );
    // Links handed out point at https.
    let session: Value = client
        .post(format!("{base}/api/sessions"))
        .header("cookie", cookie.split(';').next().expect("pair"))
        .header("origin", &base)
        .json(&json!({"email_invite": false}))
        .send()
        .await
        .expect("start a session")
        .json()
        .await
        .expect("json");
    let link = session["link"].as_str().expect("a link");
    assert!(link.starts_with(&format!("{base}/j/")), "{link}");
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.headers().contains_key("strict-transport-security"));

    // Both protocols are offered; a client that speaks HTTP/2 gets it.
    let (_, alpn) = handshake(&ca, server.addr).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));

    // A WebSocket over TLS (browsers open these over HTTP/1.1).
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let tls = ca
        .connector(&[b"http/1.1"])
        .connect(ServerName::from(server.addr.ip()), tcp)
        .await
        .expect("handshake");
    let request = format!("wss://{}/ws", server.addr)
        .into_client_request()
        .expect("request");
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls)
        .await
        .expect("WebSocket over TLS");
    ws.send(Message::text(
        json!({"type": "hello", "protocol_version": 1, "client": "customer"}).to_string(),
    ))
    .await
    .expect("send hello");
    let welcome = loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer in time")
            .expect("open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            break serde_json::from_str::<Value>(&text).expect("json");
        }
    };
    assert_eq!(welcome["type"], "welcome", "{welcome}");

    // Plain HTTP says nothing about HSTS (a browser would ignore it there anyway).
    let plain = TestServer::start().await;
    let page = reqwest::get(format!("{}/login", plain.base))
        .await
        .expect("plain page");
    assert_eq!(page.status(), 200);
    assert!(!page.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn the_redirect_port_answers_308_to_the_same_path_on_https() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("dir");
    let (server, _files) = https_server(&ca, dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let plain = listener.local_addr().expect("addr");
    let state = server.state.clone();
    let https_port = server.addr.port();
    tokio::spawn(async move {
        tandem_signaling::redirect::run(listener, &state, https_port, std::future::pending())
            .await
            .expect("redirect serves");
    });
    let client = ca.reqwest(false);

    let answer = client
        .get(format!("http://{plain}/login?next=%2Fadmin"))
        .send()
        .await
        .expect("plain request");
    assert_eq!(answer.status(), 308);
    assert_eq!(
        answer.headers().get("location").expect("location"),
        &format!("https://127.0.0.1:{https_port}/login?next=%2Fadmin")
    );
    assert!(!answer.headers().contains_key("strict-transport-security"));
    assert!(!answer.headers().contains_key("set-cookie"));
    // Any method, any path, the host the client asked for.
    let answer = client
        .post(format!("http://{plain}/api/login"))
        .header("host", "tandem.test")
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("plain post");
    assert_eq!(answer.status(), 308);
    assert_eq!(
        answer.headers().get("location").expect("location"),
        &format!("https://tandem.test:{https_port}/api/login")
    );
    // A browser following it ends up on the HTTPS page.
    let followed = ca
        .reqwest(true)
        .get(format!("http://{plain}/login"))
        .send()
        .await
        .expect("followed");
    assert_eq!(followed.status(), 200);
    assert_eq!(followed.url().scheme(), "https");
}

#[tokio::test]
async fn a_renewed_certificate_reaches_new_connections_and_a_broken_one_does_not() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("dir");
    let (server, files) = https_server(&ca, dir.path()).await;
    let first = handshake(&ca, server.addr).await.0;

    // Renewal: a new certificate with a new key, written over the old files.
    let second = ca.leaf();
    assert_ne!(first, second.der);
    install(&files, &second.cert_pem, &second.key_pem);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = handshake(&ca, server.addr).await.0;
        if seen == second.der {
            break;
        }
        assert_eq!(seen, first, "neither the old nor the new certificate");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate never reached a new connection"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A broken replacement (a certificate whose key is not beside it, then garbage):
    // every new connection still gets the renewed certificate, for several of the
    // server's check intervals.
    let stray = ca.leaf();
    install(&files, &stray.cert_pem, &second.key_pem);
    let until = tokio::time::Instant::now() + tandem_signaling::tls::RELOAD_CHECK_EVERY * 3;
    while tokio::time::Instant::now() < until {
        assert_eq!(handshake(&ca, server.addr).await.0, second.der);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    install(&files, "not a certificate", "not a key");
    let until = tokio::time::Instant::now() + tandem_signaling::tls::RELOAD_CHECK_EVERY * 3;
    while tokio::time::Instant::now() < until {
        assert_eq!(handshake(&ca, server.addr).await.0, second.der);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Fixed again: the server kept looking and takes it.
    let third = ca.leaf();
    install(&files, &third.cert_pem, &third.key_pem);
    let deadline = tokio::time::Instant::now() + WAIT;
    while handshake(&ca, server.addr).await.0 != third.der {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fixed certificate never reached a new connection"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Existing state is untouched: the server still answers over HTTPS.
    let page = ca
        .reqwest(false)
        .get(format!("https://{}/login", server.addr))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
}
