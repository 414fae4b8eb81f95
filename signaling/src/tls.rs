//! HTTPS: the certificate and key files, and the TLS settings every accepted connection
//! is handshaken with. The files are re-read when they change on disk, so a renewal (by
//! certbot or the like) reaches new connections without a restart; a replacement that
//! does not load is logged and the previous certificate stays in use.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio_rustls::TlsAcceptor;

/// How often, at most, the files are looked at for a change (on a handshake).
pub const RELOAD_CHECK_EVERY: Duration = Duration::from_secs(2);

/// The certificate chain and private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not read {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} is not a PEM certificate chain: {error}", path.display())]
    BadCertificate {
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("{} holds no PEM private key: {error}", path.display())]
    BadKey {
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("the key in {} does not go with the certificate in {}: {error}", key.display(), cert.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        error: rustls::Error,
    },
    #[error("TLS settings: {0}")]
    Settings(rustls::Error),
}

/// The acceptor for the server's connections: TLS 1.2 and 1.3 with the ring provider,
/// ALPN h2 and http/1.1 (WebSockets take http/1.1), and the reloading certificate.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    acceptor_checking_every(files, RELOAD_CHECK_EVERY)
}

/// [`acceptor`], looking at the files for a change at most every `check_every`.
pub fn acceptor_checking_every(
    files: &TlsFiles,
    check_every: Duration,
) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = ReloadingCert::load(files.clone(), provider.clone(), check_every)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Settings)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS configuration with the same reloading certificate, without ALPN: for TURN over
/// TLS.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = ReloadingCert::load(files.clone(), provider.clone(), RELOAD_CHECK_EVERY)?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Settings)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    Ok(Arc::new(config))
}

/// The certificate in use, re-read when the files' modification time, size or inode
/// changes (certbot swaps symlinks; an editor rewrites in place).
pub struct ReloadingCert {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    check_every: Duration,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    key: Arc<CertifiedKey>,
    /// The files as they were when last looked at, loaded or not: a replacement that
    /// failed is tried again only once the files change again, not on every handshake.
    seen: [Option<Stamp>; 2],
    checked: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    dev: u64,
    ino: u64,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Load the files now; an error here stops the server from starting.
    pub fn load(
        files: TlsFiles,
        provider: Arc<CryptoProvider>,
        check_every: Duration,
    ) -> Result<Self, TlsError> {
        let seen = stamps(&files);
        let key = load(&files, &provider)?;
        Ok(Self {
            files,
            provider,
            check_every,
            loaded: Mutex::new(Loaded {
                key: Arc::new(key),
                seen,
                checked: Instant::now(),
            }),
        })
    }

    /// The certificate for a new connection, after a look at the files when the last
    /// look is old enough.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if loaded.checked.elapsed() < self.check_every {
            return loaded.key.clone();
        }
        loaded.checked = Instant::now();
        let now = stamps(&self.files);
        if now == loaded.seen {
            return loaded.key.clone();
        }
        loaded.seen = now;
        match load(&self.files, &self.provider) {
            Ok(key) => {
                tracing::info!(
                    "the TLS certificate changed on disk: new connections use the one in {}",
                    self.files.cert.display()
                );
                loaded.key = Arc::new(key);
            }
            Err(e) => tracing::warn!(
                "the TLS certificate files changed but could not be used, so the previous \
                 certificate stays in use: {e}"
            ),
        }
        loaded.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn stamps(files: &TlsFiles) -> [Option<Stamp>; 2] {
    [stamp(&files.cert), stamp(&files.key)]
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|error| TlsError::Read {
            path: path.to_owned(),
            error,
        })
    };
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadCertificate {
            path: files.cert.clone(),
            error,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| TlsError::BadKey {
        path: files.key.clone(),
        error,
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|error| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        error,
    })
}

/// Whether PEM `cert_pem` (a chain) and `key_pem` make a pair HTTPS could serve.
pub fn check_pair(cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<()> {
    let chain = CertificateDer::pem_slice_iter(cert_pem).collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(!chain.is_empty(), "no certificate");
    let key = PrivateKeyDer::from_pem_slice(key_pem)?;
    CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())?;
    Ok(())
}

/// What a standby trusts when it forwards to the serving server over HTTPS (see
/// `forward`): the very certificate this server presents itself (servers that share
/// their TLS material), or one for the site's name that the system's roots, or a CA
/// certificate in this server's own chain file (a private CA), vouch for. Either way the
/// serving server proves in the handshake that it holds the certificate's key. The chain
/// file is read again when it changes, so a renewal on both servers is followed.
pub fn site_client_config(files: &TlsFiles) -> Result<ClientConfig, TlsError> {
    let mut system = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!("reading the system's certificate authorities: {e}");
    }
    let (added, _) = system.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!(
            "no system certificate authorities (is ca-certificates installed?): this server \
             trusts the site's other servers only by its own certificate or a CA in {}",
            files.cert.display()
        );
    }
    let verifier = SiteServers::new(files.clone(), system)?;
    // No ALPN: forwarded requests and WebSocket upgrades both go as HTTP/1.1, which the
    // server takes from a client that names no protocol.
    Ok(
        ClientConfig::builder_with_provider(verifier.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Settings)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
    )
}

/// See [`site_client_config`].
#[derive(Debug)]
struct SiteServers {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    system: RootCertStore,
    /// The chain file as last used: what it was on disk, its bytes and certificates, and
    /// a verifier that trusts the system's roots and the CA certificates among them.
    own: Mutex<OwnCerts>,
}

#[derive(Debug, Clone)]
struct OwnCerts {
    seen: Option<Stamp>,
    chain: Arc<Vec<CertificateDer<'static>>>,
    webpki: Option<Arc<WebPkiServerVerifier>>,
}

impl SiteServers {
    /// Fails (and so the server's start) when the chain file cannot be used.
    fn new(files: TlsFiles, system: RootCertStore) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let seen = stamp(&files.cert);
        let own = read_own(&files, &system, &provider, seen)?;
        Ok(SiteServers {
            files,
            provider,
            system,
            own: Mutex::new(own),
        })
    }

    /// The chain file's certificates, read again (on a handshake to the serving server)
    /// only once its size, time or inode changes. A changed file that cannot be used
    /// leaves the last good one in use, as for the certificate this server presents.
    fn own(&self) -> OwnCerts {
        let seen = stamp(&self.files.cert);
        let mut own = self
            .own
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.is_some() && own.seen == seen {
            return own.clone();
        }
        match read_own(&self.files, &self.system, &self.provider, seen) {
            Ok(certs) => *own = certs,
            Err(e) => {
                tracing::warn!(
                    "the TLS certificate file changed but could not be used: the site's \
                     servers are still checked against the one before: {e}"
                );
                own.seen = seen;
            }
        }
        own.clone()
    }
}

/// Read the chain file: this server's own certificate first, then any CA certificates
/// (basic constraints `cA`, within their validity) that the site's other servers'
/// certificates may be issued by. The own certificate itself, or an intermediate that is
/// not a CA, is never taken to issue anything.
fn read_own(
    files: &TlsFiles,
    system: &RootCertStore,
    provider: &Arc<CryptoProvider>,
    seen: Option<Stamp>,
) -> Result<OwnCerts, TlsError> {
    let pem = std::fs::read(&files.cert).map_err(|error| TlsError::Read {
        path: files.cert.clone(),
        error,
    })?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadCertificate {
            path: files.cert.clone(),
            error,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let mut roots = system.clone();
    roots.add_parsable_certificates(chain.iter().skip(1).filter(|der| is_live_ca(der)).cloned());
    // No anchors at all (no system roots, no CA in the file): only the own certificate.
    let webpki = if roots.is_empty() {
        None
    } else {
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| TlsError::Settings(rustls::Error::General(e.to_string())))?,
        )
    };
    Ok(OwnCerts {
        seen,
        chain: Arc::new(chain),
        webpki,
    })
}

/// A CA certificate (basic constraints `cA: true`) within its validity now.
fn is_live_ca(der: &CertificateDer<'_>) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    let ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    ca && cert.validity().is_valid()
}

impl ServerCertVerifier for SiteServers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let own = self.own();
        if own.chain.first().is_some_and(|mine| mine == end_entity) {
            return Ok(ServerCertVerified::assertion());
        }
        match &own.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (TlsFiles, Vec<u8>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let files = TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        (files, cert.der().to_vec())
    }

    fn served(resolver: &ReloadingCert) -> Vec<u8> {
        resolver.current().cert[0].to_vec()
    }

    #[test]
    fn a_changed_pair_is_taken_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().expect("dir");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (files, first) = write_pair(dir.path(), "live");
        let resolver = ReloadingCert::load(files.clone(), provider, Duration::ZERO).expect("loads");
        assert_eq!(served(&resolver), first);

        // A certificate whose key is not the one beside it: refused, the old one stays.
        let (other, _) = write_pair(dir.path(), "other");
        std::fs::copy(&other.cert, &files.cert).expect("copy");
        assert_eq!(served(&resolver), first);
        // Garbage: the same.
        std::fs::write(&files.key, b"not a key").expect("write");
        assert_eq!(served(&resolver), first);

        // A whole new pair: taken.
        let (_, second) = write_pair(dir.path(), "live");
        assert_eq!(served(&resolver), second);
    }

    /// The verifier a standby reaches the serving server with, its own chain in `files`.
    fn site_servers(files: &TlsFiles) -> SiteServers {
        site_client_config(files).expect("a usable chain");
        SiteServers::new(files.clone(), RootCertStore::empty()).expect("a usable chain")
    }

    fn trusts(verifier: &SiteServers, cert: &[u8], name: &str) -> bool {
        let name = ServerName::try_from(name.to_owned()).expect("name");
        verifier
            .verify_server_cert(
                &CertificateDer::from(cert.to_vec()),
                &[],
                &name,
                &[],
                UnixTime::now(),
            )
            .is_ok()
    }

    #[test]
    fn a_standby_trusts_its_own_certificate_or_one_its_chain_vouches_for_the_sites_name() {
        let dir = tempfile::tempdir().expect("dir");
        // Servers sharing one self-signed certificate: that one is trusted, whatever the
        // address it is reached at; another self-signed one for the same name is not.
        let (files, own) = write_pair(dir.path(), "live");
        let verifier = site_servers(&files);
        assert!(trusts(&verifier, &own, "10.0.0.11"));
        let (_, stranger) = write_pair(dir.path(), "stranger");
        assert!(!trusts(&verifier, &stranger, "localhost"));

        // Renewed on disk: the new one is trusted, the old one no more.
        let (_, renewed) = write_pair(dir.path(), "live");
        assert!(trusts(&verifier, &renewed, "10.0.0.11"));
        assert!(!trusts(&verifier, &own, "10.0.0.11"));

        // A private CA whose certificate the chain file carries after this server's own:
        // another certificate it signed is trusted for the names it was signed for.
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf = |name: &str, issuer: &rcgen::Issuer<'_, rcgen::KeyPair>| {
            let key = rcgen::KeyPair::generate().expect("key");
            let params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
            let cert = params.signed_by(&key, issuer).expect("signed");
            (cert, params, key)
        };
        let (mine, my_params, my_key) = leaf("support.example.com", &issuer);
        std::fs::write(&files.cert, format!("{}{}", mine.pem(), ca_cert.pem())).expect("chain");
        std::fs::write(&files.key, my_key.serialize_pem()).expect("key");
        let verifier = site_servers(&files);
        let (theirs, _, _) = leaf("support.example.com", &issuer);
        assert!(trusts(&verifier, theirs.der(), "support.example.com"));
        assert!(!trusts(&verifier, theirs.der(), "other.example.com"));
        assert!(!trusts(&verifier, &stranger, "support.example.com"));
        // This server's own certificate is no CA: one its key signed is not trusted.
        let by_me = rcgen::Issuer::new(my_params, my_key);
        let (forged, _, _) = leaf("support.example.com", &by_me);
        assert!(!trusts(&verifier, forged.der(), "support.example.com"));

        // A chain file replaced by one that cannot be used: the last good one stays.
        std::fs::write(&files.cert, b"not a certificate").expect("write");
        assert!(trusts(&verifier, theirs.der(), "support.example.com"));
    }

    #[test]
    fn a_missing_or_broken_file_at_start_says_which() {
        let dir = tempfile::tempdir().expect("dir");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (files, _) = write_pair(dir.path(), "live");
        std::fs::write(&files.cert, b"").expect("write");
        let err = ReloadingCert::load(files.clone(), provider.clone(), Duration::ZERO)
            .expect_err("empty");
        assert!(err.to_string().contains("live.crt"), "{err}");
        let missing = TlsFiles {
            cert: dir.path().join("nope.crt"),
            key: files.key,
        };
        let err = ReloadingCert::load(missing, provider, Duration::ZERO).expect_err("missing");
        assert!(err.to_string().contains("nope.crt"), "{err}");
    }
}
