//! Optional automatic certificates over ACME (Let's Encrypt or any RFC 8555 CA), with
//! instant-acme. The account and the certificate live in `<data_dir>/acme/`; the
//! certificate and key are written as the PEM files HTTPS serves from ([`crate::tls`]
//! re-reads them when they change), so a new or renewed certificate reaches new
//! connections without a restart. Challenges are HTTP-01, answered at
//! `/.well-known/acme-challenge/{token}` by the server's own router (and by the
//! plain-HTTP redirect listener, which is where a CA looks: port 80).
//!
//! With several servers on one site (`--postgres`), only the serving one orders, and it
//! keeps what it got in the database too (table `acme_certificates`, by the names it is
//! for); every server, standing by or serving, takes a certificate from there that is
//! valid for longer than its own every [`FOLLOW_EVERY`], and at start. So each one serves
//! the site's certificate, and one that takes the site over renews it only when due.
//! The serving server also keeps its pending challenges there (table `acme_challenges`)
//! while an order is under way, so whichever of the site's servers the CA's request on
//! port 80 reaches answers it: a standby listens on `--http-redirect-port` too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

use crate::tls::TlsFiles;

/// Let's Encrypt's production directory, the default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// A certificate with less than this left is renewed.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// How often the certificate is looked at once it is fine.
pub const CHECK_EVERY: Duration = Duration::from_secs(24 * 60 * 60);
/// How long after a failed order the next is tried.
pub const RETRY_AFTER: Duration = Duration::from_secs(10 * 60);
/// With several servers: how often each looks in the database for a newer certificate.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(15);

/// The ACME settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// The names the certificate is for (at least one).
    pub domains: Vec<String>,
    /// Contact address given to the CA for expiry notices.
    pub email: Option<String>,
    /// The CA's directory URL.
    pub directory: String,
    /// A PEM CA certificate the directory's HTTPS is checked against instead of the
    /// system's roots (a test or private CA).
    pub ca_cert: Option<PathBuf>,
    /// `<data_dir>/acme`.
    pub dir: PathBuf,
}

impl AcmeSettings {
    /// The certificate and key HTTPS serves.
    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.dir.join("cert.pem"),
            key: self.dir.join("key.pem"),
        }
    }

    fn account_file(&self) -> PathBuf {
        self.dir.join("account.json")
    }
}

/// Key authorizations of the HTTP-01 challenges under way, by token.
static CHALLENGES: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Default::default);

/// With several servers: the site's pending challenges, as last read from the database.
static SITE_CHALLENGES: OnceLock<SiteChallenges> = OnceLock::new();

/// How often at most the site's challenges are read from the database, however many
/// requests come: a flood of made-up tokens costs the database nothing more.
const SITE_CHALLENGES_EVERY: Duration = Duration::from_secs(1);

/// The site's pending challenges, read whole from the database when a token is asked for
/// that the last read, made before the request came, did not have.
struct SiteChallenges {
    pool: sqlx::PgPool,
    /// Held while reading: one read at a time, and everyone asking meanwhile waits for it.
    last: tokio::sync::Mutex<LastRead>,
}

#[derive(Default)]
struct LastRead {
    /// When the last read that got through began.
    began: Option<tokio::time::Instant>,
    /// When the last read, through or not, began.
    tried: Option<tokio::time::Instant>,
    answers: HashMap<String, String>,
    /// The last read that ended failed: when it began, and why (logged once until one
    /// gets through).
    failing: Option<(tokio::time::Instant, String)>,
}

/// Answer the CA's requests for challenges another of the site's servers (the serving
/// one) is under way with, from the database at `url`. Connects when first asked.
pub fn answer_site_challenges(url: &str) -> anyhow::Result<()> {
    let options = crate::site::lease_options(url, "tandem-signaling acme challenges")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options);
    let _ = SITE_CHALLENGES.set(SiteChallenges {
        pool,
        last: tokio::sync::Mutex::new(LastRead::default()),
    });
    Ok(())
}

/// Whether `token` could be an ACME token (base64url, RFC 8555 §8.3): anything else is
/// not one of the site's.
fn looks_like_token(token: &str) -> bool {
    (1..=256).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl SiteChallenges {
    /// The key authorization for `token`, from a read of the database that began after
    /// it was asked for (so a challenge kept before the CA asked is seen), at most one
    /// read every [`SITE_CHALLENGES_EVERY`].
    async fn answer(&self, token: &str) -> Result<Option<String>, String> {
        let asked = tokio::time::Instant::now();
        let mut last = self.last.lock().await;
        if last.began.is_some_and(|began| began >= asked) {
            return Ok(last.answers.get(token).cloned());
        }
        // A read begun since this was asked failed: so would this one, most likely (and
        // requests must not queue up a second apiece while the database is away).
        if let Some((failed, why)) = &last.failing
            && *failed >= asked
        {
            return Err(why.clone());
        }
        if let Some(tried) = last.tried {
            tokio::time::sleep_until(tried + SITE_CHALLENGES_EVERY).await;
        }
        let began = tokio::time::Instant::now();
        last.tried = Some(began);
        let read =
            sqlx::query_as::<_, (String, String)>("SELECT token, answer FROM acme_challenges")
                .fetch_all(&self.pool);
        let read = match tokio::time::timeout(Duration::from_secs(5), read).await {
            Ok(Ok(rows)) => Ok(rows.into_iter().collect()),
            // No order has made the table yet: no challenge either.
            Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("42P01") => {
                Ok(HashMap::new())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the database did not answer within 5 s".to_owned()),
        };
        match read {
            Ok(answers) => {
                last.answers = answers;
                last.began = Some(began);
                last.failing = None;
                Ok(last.answers.get(token).cloned())
            }
            Err(e) => {
                if last.failing.replace((began, e.clone())).is_none() {
                    tracing::warn!("ACME: could not read the site's challenges: {e}");
                }
                Err(e)
            }
        }
    }
}

/// `GET /.well-known/acme-challenge/{token}`.
#[utoipa::path(
    get,
    path = "/.well-known/acme-challenge/{token}",
    tag = "operations",
    params(("token" = String, Path, description = "The ACME HTTP-01 challenge token")),
    responses(
        (status = 200, description = "The key authorization for a pending order (this server's, or with several servers the serving one's)", content_type = "text/plain"),
        (status = 404, description = "No such challenge pending"),
        (status = 503, description = "With several servers: the database holding the site's challenges did not answer", content_type = "text/plain"),
    )
)]
pub async fn challenge(UrlPath(token): UrlPath<String>) -> Response {
    let answer = CHALLENGES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&token)
        .cloned();
    if let Some(answer) = answer {
        return answer.into_response();
    }
    let Some(site) = SITE_CHALLENGES.get().filter(|_| looks_like_token(&token)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match site.answer(&token).await {
        Ok(Some(answer)) => answer.into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The site's challenges could not be read from its database.",
        )
            .into_response(),
    }
}

/// Before HTTPS starts: make sure there is a certificate to serve. Until the first one
/// is issued that is a self-signed, already expired stand-in, replaced as soon as the
/// order goes through.
pub fn prepare(settings: &AcmeSettings) -> anyhow::Result<TlsFiles> {
    std::fs::create_dir_all(&settings.dir)
        .with_context(|| format!("could not create {}", settings.dir.display()))?;
    restrict(&settings.dir, 0o700)?;
    let files = settings.files();
    if !files.cert.is_file() || !files.key.is_file() {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(settings.domains.clone())?;
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2000, 1, 2);
        let cert = params.self_signed(&key)?;
        write(&files, &cert.pem(), &key.serialize_pem())?;
    }
    Ok(files)
}

/// Keep the certificate current: order one now if there is none or it has less than
/// [`RENEW_BEFORE`] left, then look again daily. Runs for as long as the server does.
/// With `postgres` (several servers), the site's certificate is taken from the database
/// first, and a new one kept there.
pub async fn run(settings: AcmeSettings, postgres: Option<String>) {
    loop {
        let wait = match renew_if_due(&settings, postgres.as_deref()).await {
            Ok(()) => CHECK_EVERY,
            Err(e) => {
                tracing::error!(
                    "ACME: could not get a certificate for {}: {e:#}; trying again in {} minutes",
                    settings.domains.join(", "),
                    RETRY_AFTER.as_secs() / 60
                );
                RETRY_AFTER
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Order a certificate if the one on disk is missing, a stand-in or about to expire.
pub async fn renew_if_due(settings: &AcmeSettings, postgres: Option<&str>) -> anyhow::Result<()> {
    if let Some(url) = postgres {
        if let Err(e) = take_shared(settings, url).await {
            tracing::warn!("ACME: could not read the site's certificate from the database: {e:#}");
        }
    }
    let files = settings.files();
    if let Some(left) = time_left(&files.cert) {
        if left > RENEW_BEFORE {
            tracing::debug!(
                "ACME: the certificate has {} days left",
                left.as_secs() / 86400
            );
            return Ok(());
        }
    }
    tracing::info!(
        "ACME: ordering a certificate for {} from {}",
        settings.domains.join(", "),
        settings.directory
    );
    let account = account(settings).await?;
    let (cert, key) = order(&account, &settings.domains, postgres).await?;
    write(&files, &cert, &key)?;
    tracing::info!("ACME: new certificate in {}", files.cert.display());
    if let Some(url) = postgres {
        give_shared(settings, url, &cert, &key).await.context(
            "the certificate could not be kept in the database for the site's other servers",
        )?;
    }
    Ok(())
}

/// With several servers: take the site's certificate from the database whenever it is
/// valid for longer than this server's, every [`FOLLOW_EVERY`]. Runs for as long as the
/// server does (the new files reach new connections, as after an order).
pub async fn follow(settings: AcmeSettings, postgres: String) {
    let mut failing = false;
    loop {
        match take_shared(&settings, &postgres).await {
            Ok(_) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(
                    "ACME: could not read the site's certificate from the database: {e:#}; \
                     trying again every {} s",
                    FOLLOW_EVERY.as_secs()
                );
            }
            Err(_) => {}
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// The names a certificate is for, as the database keys it.
fn names_key(settings: &AcmeSettings) -> String {
    let mut domains = settings.domains.clone();
    domains.sort();
    domains.join(",")
}

async fn shared_store(url: &str) -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::ConnectOptions;
    let options = crate::site::lease_options(url, "tandem-signaling acme")?;
    let mut conn = tokio::time::timeout(Duration::from_secs(10), options.connect())
        .await
        .context("the database did not answer within 10 s")?
        .context("could not connect to the database")?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS acme_certificates (
             names     TEXT PRIMARY KEY,
             cert      TEXT NOT NULL,
             key       TEXT NOT NULL,
             not_after BIGINT NOT NULL
         )",
    )
    .execute(&mut conn)
    .await
    .or_else(created_by_another)?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS acme_challenges (
             token   TEXT PRIMARY KEY,
             answer  TEXT NOT NULL,
             created BIGINT NOT NULL
         )",
    )
    .execute(&mut conn)
    .await
    .or_else(created_by_another)?;
    Ok(conn)
}

/// Two servers creating a table at once: the loser's error is only that.
fn created_by_another(e: sqlx::Error) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            Ok(Default::default())
        }
        _ => Err(e),
    }
}

/// Write the site's certificate here if the database's is valid for longer than this
/// server's; whether it did.
async fn take_shared(settings: &AcmeSettings, url: &str) -> anyhow::Result<bool> {
    use sqlx::Connection;
    let mut conn = shared_store(url).await?;
    let row: Option<(String, String, i64)> =
        sqlx::query_as("SELECT cert, key, not_after FROM acme_certificates WHERE names = $1")
            .bind(names_key(settings))
            .fetch_optional(&mut conn)
            .await?;
    let _ = conn.close().await;
    let Some((cert, key, not_after)) = row else {
        return Ok(false);
    };
    let files = settings.files();
    let ours = std::fs::read_to_string(&files.cert)
        .ok()
        .and_then(|pem| not_after_of(&pem))
        .unwrap_or(i64::MIN);
    if not_after <= ours || not_after_of(&cert) != Some(not_after) {
        return Ok(false);
    }
    // The pair must go together: a key that does not fit would stop every handshake.
    crate::tls::check_pair(cert.as_bytes(), key.as_bytes())
        .context("the site's certificate in the database does not fit its key")?;
    write(&files, &cert, &key)?;
    tracing::info!(
        "ACME: took the site's certificate for {} from the database",
        settings.domains.join(", ")
    );
    Ok(true)
}

/// Keep `cert` and `key` in the database for the site's other servers, unless it has one
/// valid for longer.
async fn give_shared(
    settings: &AcmeSettings,
    url: &str,
    cert: &str,
    key: &str,
) -> anyhow::Result<()> {
    use sqlx::Connection;
    let not_after = not_after_of(cert).context("the new certificate cannot be read")?;
    let mut conn = shared_store(url).await?;
    sqlx::query(
        "INSERT INTO acme_certificates (names, cert, key, not_after) VALUES ($1, $2, $3, $4)
         ON CONFLICT (names) DO UPDATE SET cert = EXCLUDED.cert, key = EXCLUDED.key,
             not_after = EXCLUDED.not_after
         WHERE acme_certificates.not_after < EXCLUDED.not_after",
    )
    .bind(names_key(settings))
    .bind(cert)
    .bind(key)
    .bind(not_after)
    .execute(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(())
}

/// When the first certificate in `pem` expires, in seconds since the epoch.
fn not_after_of(pem: &str) -> Option<i64> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// How long the first certificate in `path` stays valid; `None` when it cannot be read.
fn time_left(path: &Path) -> Option<Duration> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(path).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    let not_after = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(not_after.saturating_sub(now)))
}

/// The stored account, or a new one (stored).
async fn account(settings: &AcmeSettings) -> anyhow::Result<Account> {
    let builder = || match &settings.ca_cert {
        Some(ca) => Account::builder_with_root(ca)
            .with_context(|| format!("could not use the ACME CA certificate {}", ca.display())),
        None => Account::builder().context("could not set up the ACME client"),
    };
    let path = settings.account_file();
    if let Ok(text) = std::fs::read_to_string(&path) {
        let credentials: AccountCredentials = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an ACME account", path.display()))?;
        return builder()?
            .from_credentials(credentials)
            .await
            .context("could not reach the ACME directory");
    }
    let contact = settings
        .email
        .as_ref()
        .map(|email| format!("mailto:{email}"));
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await
        .with_context(|| format!("could not create an ACME account at {}", settings.directory))?;
    let json = serde_json::to_string(&credentials)?;
    write_private(&path, json.as_bytes())?;
    Ok(account)
}

/// One order through HTTP-01: the certificate chain and its new key, PEM. With
/// `postgres`, the challenges are kept in the database too while it is under way, for
/// the site's other servers to answer.
async fn order(
    account: &Account,
    domains: &[String],
    postgres: Option<&str>,
) -> anyhow::Result<(String, String)> {
    if let Some(url) = postgres {
        // Not ordering while the database cannot keep the challenges for the others.
        forget_stale_challenges(url)
            .await
            .context("the database that keeps the site's challenges")?;
    }
    let identifiers: Vec<Identifier> = domains.iter().cloned().map(Identifier::Dns).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .context("the CA refused the order")?;
    let mut tokens = Vec::new();
    let result = async {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => anyhow::bail!("an authorization is {other:?}"),
            }
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .context("the CA offers no HTTP-01 challenge")?;
            let answer = challenge.key_authorization().as_str().to_owned();
            CHALLENGES
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(challenge.token.clone(), answer.clone());
            tokens.push(challenge.token.clone());
            if let Some(url) = postgres {
                keep_challenge(url, &challenge.token, &answer)
                    .await
                    .context("could not keep the challenge in the database")?;
            }
            challenge.set_ready().await?;
        }
        let retries = RetryPolicy::new().timeout(Duration::from_secs(120));
        let status = order.poll_ready(&retries).await?;
        anyhow::ensure!(
            matches!(status, OrderStatus::Ready),
            "the order is {status:?}, not ready"
        );
        let key = order.finalize().await?;
        let cert = order.poll_certificate(&retries).await?;
        Ok((cert, key))
    }
    .await;
    {
        let mut challenges = CHALLENGES.lock().unwrap_or_else(|p| p.into_inner());
        for token in &tokens {
            challenges.remove(token);
        }
    }
    if let Some(url) = postgres
        && !tokens.is_empty()
    {
        let gone = async {
            use sqlx::Connection;
            let mut conn = shared_store(url).await?;
            sqlx::query("DELETE FROM acme_challenges WHERE token = ANY($1)")
                .bind(&tokens)
                .execute(&mut conn)
                .await?;
            let _ = conn.close().await;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = gone {
            // Taken out at the next order (older than an hour); harmless meanwhile.
            tracing::warn!(
                "ACME: could not take the order's challenges out of the database: {e:#}"
            );
        }
    }
    result
}

/// How long a challenge left in the database by an order that never finished (its server
/// stopped) stays there: until the next order after this.
const STALE_CHALLENGE: Duration = Duration::from_secs(60 * 60);

/// Keep a pending challenge in the database for the site's other servers.
async fn keep_challenge(url: &str, token: &str, answer: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = shared_store(url).await?;
    sqlx::query(
        "INSERT INTO acme_challenges (token, answer, created) VALUES ($1, $2, $3)
         ON CONFLICT (token) DO UPDATE SET answer = EXCLUDED.answer, created = EXCLUDED.created",
    )
    .bind(token)
    .bind(answer)
    .bind(unix_now())
    .execute(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(())
}

/// Take out the challenges of orders that never finished.
async fn forget_stale_challenges(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = shared_store(url).await?;
    let stale = unix_now() - STALE_CHALLENGE.as_secs() as i64;
    sqlx::query("DELETE FROM acme_challenges WHERE created < $1")
        .bind(stale)
        .execute(&mut conn)
        .await?;
    let _ = conn.close().await;
    Ok(())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Write the pair, each through a rename so the TLS reload never sees half a file; the
/// key first, so the certificate's change comes last.
fn write(files: &TlsFiles, cert: &str, key: &str) -> anyhow::Result<()> {
    write_private(&files.key, key.as_bytes())?;
    write_private(&files.cert, cert.as_bytes())
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let temp = path.with_extension("new");
    std::fs::write(&temp, contents)
        .with_context(|| format!("could not write {}", temp.display()))?;
    restrict(&temp, 0o600)?;
    std::fs::rename(&temp, path).with_context(|| format!("could not replace {}", path.display()))
}

fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("could not restrict {}", path.display()))
}
