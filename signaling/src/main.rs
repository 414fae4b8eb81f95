//! `tandem-signaling`: parse the configuration, open the store, serve; or, with
//! `audit verify`, check the audit log's hash chain and exit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tandem_signaling::config::LogFormat;
use tandem_signaling::store::audit_chain::ChainReport;
use tandem_signaling::store::{PostgresStore, SqliteStore, Store};
use tandem_signaling::{AdminLogin, Config, Flags};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
    /// Give the `admin` account a new password (printed, or the one from --admin-password)
    #[arg(long)]
    reset_admin_password: bool,
    /// Without a command, serve.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with the audit log
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// End, for good, the live sessions a stopped server keeps for its next start
    ///
    /// Stopping or restarting the server does not end sessions: their people reconnect
    /// when it is back. Run this while the server is stopped to end them instead (each
    /// participant's client hears so when it tries to come back). A running server ends
    /// every session with POST /api/admin/sessions/end-all.
    EndSessions {
        /// Where the database lives [default: ./data]
        #[arg(long, env = "TANDEM_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The server's TOML config file, to find data_dir in
        #[arg(long, env = "TANDEM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Copy the database into a new file, safely while the server runs
    ///
    /// Refuses to overwrite an existing file. To restore: stop the server, copy the backup
    /// over tandem.db in the data directory (removing tandem.db-wal and tandem.db-shm), and
    /// start the server.
    Backup {
        /// The new file to write
        file: PathBuf,
        /// Where the database lives [default: ./data]
        #[arg(long, env = "TANDEM_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The server's TOML config file, to find data_dir in
        #[arg(long, env = "TANDEM_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the audit log's hash chain (reads the database, changes nothing)
    ///
    /// Exits 0 when it is intact, 1 when a record was changed, removed, inserted or
    /// reordered (the first such record is named), 2 when it could not be checked.
    Verify {
        /// Where the database lives [default: ./data]
        #[arg(long, env = "TANDEM_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The server's TOML config file, to find data_dir in
        #[arg(long, env = "TANDEM_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut cli = Cli::parse();
    init_logging(Config::log_format(&cli.flags));
    match cli.command.take() {
        Some(Command::Audit {
            command: AuditCommand::Verify { data_dir, config },
        }) => {
            // The same flags as the server find the same database.
            cli.flags.data_dir = data_dir.or(cli.flags.data_dir);
            cli.flags.config = config.or(cli.flags.config);
            return audit_verify(cli.flags).await;
        }
        Some(Command::Backup {
            file,
            data_dir,
            config,
        }) => {
            cli.flags.data_dir = data_dir.or(cli.flags.data_dir);
            cli.flags.config = config.or(cli.flags.config);
            return backup(cli.flags, &file).await;
        }
        Some(Command::EndSessions { data_dir, config }) => {
            cli.flags.data_dir = data_dir.or(cli.flags.data_dir);
            cli.flags.config = config.or(cli.flags.config);
            return end_sessions(cli.flags).await;
        }
        None => {}
    }
    match serve(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem-signaling: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let config = Config::resolve(cli.flags)?;
    let (bind, port) = (config.bind, config.port);
    let scheme = if config.serves_https() {
        "https"
    } else {
        "http"
    };
    let redirect_port = config.http_redirect_port;
    let acme = config.acme.clone();
    if let Some(acme) = &acme {
        // A stand-in certificate until the first order goes through.
        tandem_signaling::acme::prepare(acme).context("could not set up ACME")?;
    }
    if let Some(files) = &config.tls {
        // Before anything listens: a wrong path or key stops the start with the reason.
        tandem_signaling::tls::acceptor(files).context("could not set up HTTPS")?;
    }
    let reset_password = config.admin_password.clone();
    // Before anything reads the live sessions: they are this process's alone.
    let _lock = tandem_signaling::lock_data_dir(&config.data_dir)?;
    // One watch on SIGTERM and Ctrl-C from the start: one arriving while a standby takes
    // over is not lost between the two waits.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut stop = stop_rx.clone();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    };
    let listener = std::net::TcpListener::bind((bind, port)).with_context(|| {
        format!("could not listen on {bind}:{port} (is another server using it?)")
    })?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    // Bound before standing by too: a standby redirects, and answers the CA's challenges
    // for the serving server.
    let redirect = match redirect_port {
        Some(redirect_port) => {
            let redirect =
                std::net::TcpListener::bind((bind, redirect_port)).with_context(|| {
                    format!("could not listen on {bind}:{redirect_port} for the redirect to HTTPS")
                })?;
            redirect.set_nonblocking(true)?;
            Some(redirect)
        }
        None => None,
    };
    // So is the metrics address: a standby is scraped for itself.
    let metrics = match config.metrics_bind {
        Some(metrics_bind) => {
            let metrics = std::net::TcpListener::bind(metrics_bind)
                .with_context(|| format!("could not listen on {metrics_bind} for /metrics"))?;
            metrics.set_nonblocking(true)?;
            Some(metrics)
        }
        None => None,
    };
    // With several servers, each serves the certificate the serving one got over ACME.
    if let (Some(acme), Some(url)) = (&acme, &config.postgres) {
        tokio::spawn(tandem_signaling::acme::follow(acme.clone(), url.clone()));
        // And answers the CA for whichever of them orders.
        tandem_signaling::acme::answer_site_challenges(url)?;
    }
    // With Redis, the site's servers hold the cap per address together.
    let shared = match &config.redis {
        Some(url) => {
            let id = config.reached_at(addr.port());
            Some(
                tandem_signaling::shared::SharedCounts::connect_with(
                    url,
                    &id,
                    config.redis_ca_cert.as_deref(),
                    config.redis_client.as_ref(),
                )
                .await?,
            )
        }
        None => None,
    };
    // With PostgreSQL, one server of the site serves and the others stand by.
    let site = match &config.postgres {
        Some(url) => {
            let standby = Listeners {
                main: listener.try_clone()?,
                redirect: redirect.as_ref().map(|r| r.try_clone()).transpose()?,
                metrics: metrics.as_ref().map(|m| m.try_clone()).transpose()?,
            };
            let site = tokio::select! {
                site = stand_by(url, addr, standby, &config, shared.clone()) => site?,
                () = stopped() => {
                    if let Some(shared) = &shared {
                        shared.leave().await;
                    }
                    println!("tandem-signaling: stopped while on standby.");
                    return Ok(());
                }
            };
            Some(site)
        }
        None => None,
    };
    let (state, mut admin) = match &site {
        Some(site) => {
            tandem_signaling::import_local_journal(&config, site.as_ref())?;
            // What the site's other servers forward to this one carries the site's key.
            let config = Config {
                site_key: Some(site.key()),
                ..config
            };
            tandem_signaling::build_with_journal(config, site.clone()).await?
        }
        None => tandem_signaling::build(config).await?,
    };
    if let Some(shared) = &shared {
        state.caps.share_with(shared.clone());
    }
    if let Some(site) = &site {
        // The site's servers known to the former holders are not held to the cap per
        // address from the first moment: their clients reconnect through them at once.
        match site.site_servers() {
            Ok(servers) => {
                for ip in servers {
                    state.caps.knows_site_server(ip);
                }
            }
            Err(e) => tracing::warn!("could not read the site's servers: {e}"),
        }
        let site = site.clone();
        state
            .caps
            .when_site_server_found(move |ip| site.remember_site_server(ip));
    }
    if cli.reset_admin_password {
        admin = Some(tandem_signaling::reset_admin_password(&state, reset_password).await?);
    }
    let listener = TcpListener::from_std(listener)?;
    let redirect = redirect.map(TcpListener::from_std).transpose()?;
    let host = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    println!();
    println!("  Tandem is running.");
    println!("  Console:   {scheme}://{host}/login");
    println!("  Customers: {scheme}://{host}/join");
    match &state.config.postgres {
        Some(url) => println!(
            "  Database:  PostgreSQL {}",
            tandem_signaling::redacted(url)
        ),
        None => println!(
            "  Database:  {}",
            state.config.data_dir.join("tandem.db").display()
        ),
    }
    if let Some(url) = &state.config.redis {
        println!(
            "  Redis:     {} (the cap per address holds across the site)",
            tandem_signaling::redacted(url)
        );
    }
    if let Some(redirect) = redirect {
        println!(
            "  Plain HTTP on port {} redirects to HTTPS.",
            redirect.local_addr()?.port()
        );
        let state = state.clone();
        let https_port = addr.port();
        // It stops with the process: nothing on it needs ending.
        tokio::spawn(async move {
            let served = tandem_signaling::redirect::run(
                redirect,
                &state,
                https_port,
                std::future::pending(),
            )
            .await;
            if let Err(e) = served {
                tracing::error!("the redirect to HTTPS stopped: {e}");
            }
        });
    }
    if let Some(turn) = &state.turn {
        println!(
            "  STUN/TURN: port {} (UDP and TCP){}; open it and the relay ports in the firewall.",
            turn.listen.port(),
            turn.tls_listen
                .map(|tls| format!(", TURN over TLS on {}", tls.port()))
                .unwrap_or_default()
        );
    }
    print_admin(admin.as_ref());
    println!("  Stop with Ctrl-C.");
    println!();
    if let Some(metrics) = metrics {
        let metrics = TcpListener::from_std(metrics)?;
        println!("  Metrics:   http://{}/metrics", metrics.local_addr()?);
        let app = tandem_signaling::telemetry::metrics_app(state.clone());
        // It stops with the process: nothing on it needs ending.
        tokio::spawn(async move {
            // The same caps and timeouts as the main listener, with a small cap of its
            // own: it shares the process's file descriptors.
            let caps = tandem_signaling::serve::ConnectionCaps::new(64, 16);
            if let Err(e) =
                tandem_signaling::serve::serve(metrics, app, caps, std::future::pending()).await
            {
                tracing::error!("the metrics listener stopped: {e}");
            }
        });
    }
    if let Some(acme) = acme {
        println!(
            "  Certificates for {} come over ACME.",
            acme.domains.join(", ")
        );
        // Orders now if needed, then checks daily; it stops with the process.
        tokio::spawn(tandem_signaling::acme::run(
            acme,
            state.config.postgres.clone(),
        ));
    }
    tracing::info!(%addr, "serving");
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel();
    let stop = async move {
        match &site {
            Some(site) => tokio::select! {
                () = stopped() => {}
                reason = site.lost() => {
                    let _ = lost_tx.send(reason); // read below, after the stop
                }
            },
            None => stopped().await,
        }
    };
    let served = tandem_signaling::run(listener, state, stop).await;
    // Its connections are closed: they no longer count with the site's other servers.
    if let Some(shared) = &shared {
        shared.leave().await;
    }
    served?;
    if let Ok(reason) = lost_rx.await {
        anyhow::bail!(
            "stopped: this server lost the site lease ({reason}). Its sessions carry on at \
             the server that takes the lease next; start this one again to stand by."
        );
    }
    println!(
        "tandem-signaling: stopped. Live sessions are kept: their people reconnect when the \
         server starts again (`tandem-signaling end-sessions` ends them instead)."
    );
    Ok(())
}

/// What a standby answers on: the main port, and the redirect and metrics ones if set.
struct Listeners {
    main: std::net::TcpListener,
    redirect: Option<std::net::TcpListener>,
    metrics: Option<std::net::TcpListener>,
}

/// Wait for the site lease, answering on `listeners` as a standby meanwhile.
async fn stand_by(
    url: &str,
    addr: std::net::SocketAddr,
    listeners: Listeners,
    config: &Config,
    shared: Option<std::sync::Arc<tandem_signaling::shared::SharedCounts>>,
) -> anyhow::Result<std::sync::Arc<tandem_signaling::site::SiteJournal>> {
    let identity = format!("tandem-signaling {}", config.reached_at(addr.port()));
    let (waiting_tx, waiting) = tokio::sync::watch::channel(
        tandem_signaling::site::Standing::because("looking for the server that serves this site"),
    );
    let tls = match &config.tls {
        Some(files) => Some(tandem_signaling::tls::acceptor(files)?),
        None => None,
    };
    // A server speaking HTTPS itself reaches the serving one over TLS too.
    let site_tls = match &config.tls {
        Some(files) => Some(tandem_signaling::forward::SiteTls {
            name: config
                .site_name()
                .map(rustls::pki_types::ServerName::try_from)
                .transpose()
                .context(
                    "the site's name (the host of public_url, or the first of acme_domains) \
                     is not a name a certificate can be for",
                )?,
            config: tandem_signaling::tls::site_client_config(files)?,
        }),
        None => None,
    };
    let mut said = waiting.clone();
    // Said once, when it first waits for another server (the log has every change).
    tokio::spawn(async move {
        while said.changed().await.is_ok() {
            let why = said.borrow().why.clone();
            if why.ends_with("serves this site") {
                println!(
                    "  Standby:   {why}. It forwards everyone there, and takes over when \
                     that one stops."
                );
                return;
            }
        }
    });
    let stop_forwarding = tokio_util::sync::CancellationToken::new();
    let forwarding = tandem_signaling::forward::Forwarding::new(
        waiting.clone(),
        stop_forwarding.clone(),
        config.reached_at(addr.port()),
        site_tls,
    );
    // Each connection it passes on takes two files: the client's and the one onwards.
    let caps = tandem_signaling::serve::ConnectionCaps::new(
        tandem_signaling::serve::raise_file_limit(config.max_connections, 2),
        config.max_connections_per_address,
    );
    let scrape = |off| {
        tandem_signaling::telemetry::standby_scrape(caps.clone(), config.metrics_token.clone(), off)
    };
    let app = tandem_signaling::site::standby_app(
        forwarding,
        scrape(config.metrics_bind.is_some() || config.metrics_token.is_none()),
    );
    // The last server seen serving: once this one takes over, that one is gone.
    let last_serving = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let watching = {
        let mut waiting = waiting.clone();
        let last_serving = last_serving.clone();
        tokio::spawn(async move {
            while waiting.changed().await.is_ok() {
                if let Some(serving) = waiting.borrow_and_update().serving.clone() {
                    *last_serving
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(serving);
                }
            }
        })
    };
    if let Some(shared) = &shared {
        caps.share_with(shared.clone());
    }
    let listener = TcpListener::from_std(listeners.main)?;
    let taken = tokio_util::sync::CancellationToken::new();
    // Stops when this one takes the site over, or when dropped (a stop while standing by,
    // or a listener below that fails).
    let _stop_standby = taken.clone().drop_guard();
    // The redirect to HTTPS, and the CA's challenges answered from the database.
    let redirecting = match listeners.redirect {
        Some(redirect) => {
            let app = tandem_signaling::redirect::app(addr.port(), config.public_url.as_deref());
            Some(tokio::spawn(tandem_signaling::serve::serve_and_drop(
                TcpListener::from_std(redirect)?,
                app,
                caps.clone(),
                None,
                taken.clone().cancelled_owned(),
            )))
        }
        None => None,
    };
    // Its own metrics on their own address, until the serving server's take their place.
    let scraping = match listeners.metrics {
        Some(metrics) => Some(tokio::spawn(tandem_signaling::serve::serve_and_drop(
            TcpListener::from_std(metrics)?,
            axum::Router::new().route("/metrics", scrape(false)),
            // As the serving server's metrics listener: a small cap of its own.
            tandem_signaling::serve::ConnectionCaps::new(64, 16),
            None,
            taken.clone().cancelled_owned(),
        ))),
        None => None,
    };
    let served = tokio::spawn(tandem_signaling::serve::serve_and_drop(
        listener,
        app,
        caps,
        tls,
        taken.clone().cancelled_owned(),
    ));
    let site = tandem_signaling::site::SiteJournal::take(url, &identity, waiting_tx).await;
    watching.abort();
    if let (Ok(_), Some(shared)) = (&site, &shared) {
        let gone = last_serving
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(gone) = gone {
            // Its people reconnect here and to the other standbys: their places there
            // are free now, not once it is stale.
            shared.forget(&gone);
        }
    }
    stop_forwarding.cancel();
    taken.cancel();
    if let Ok(Err(e)) = served.await {
        tracing::warn!("the standby listener stopped: {e}");
    }
    if let Some(redirecting) = redirecting
        && let Ok(Err(e)) = redirecting.await
    {
        tracing::warn!("the standby's redirect listener stopped: {e}");
    }
    if let Some(scraping) = scraping
        && let Ok(Err(e)) = scraping.await
    {
        tracing::warn!("the standby's metrics listener stopped: {e}");
    }
    site
}

/// RUST_LOG chooses what is logged; `log_format` how.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// `backup <file>`: an online copy of the database the server with the same flags uses.
async fn backup(flags: Flags, file: &Path) -> ExitCode {
    let copy = async {
        let config = Config::resolve(flags)?;
        if let Some(url) = &config.postgres {
            anyhow::bail!(
                "this server keeps its data in PostgreSQL ({}): back it up with pg_dump, \
                 e.g. pg_dump --format=custom --file=tandem.dump '<the same URL>'",
                tandem_signaling::redacted(url)
            );
        }
        let path = config.data_dir.join("tandem.db");
        SqliteStore::backup(&path, file).await.with_context(|| {
            format!("could not back up {} to {}", path.display(), file.display())
        })?;
        anyhow::Ok(path)
    };
    match copy.await {
        Ok(path) => {
            println!("Backed up {} to {}.", path.display(), file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tandem-signaling: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `end-sessions`: end the sessions kept for the next start.
async fn end_sessions(flags: Flags) -> ExitCode {
    let end = async {
        let config = Config::resolve(flags)?;
        if config.postgres.is_none() {
            let path = config.data_dir.join("tandem.db");
            anyhow::ensure!(path.is_file(), "there is no database at {}", path.display());
        }
        let _lock = tandem_signaling::lock_data_dir(&config.data_dir)
            .context("end-sessions needs the server stopped")?;
        let store = tandem_signaling::open_store(&config).await?;
        let journal: std::sync::Arc<dyn tandem_signaling::live::Journal> = match &config.postgres {
            // The site's sessions: only while no server of the site serves it.
            Some(url) => {
                tandem_signaling::site::SiteJournal::take_now(url, "tandem-signaling end-sessions")
                    .await
                    .context("end-sessions needs every server of the site stopped")?
            }
            None => std::sync::Arc::new(tandem_signaling::live::SqliteJournal::open(
                &config.data_dir.join(tandem_signaling::live::JOURNAL_FILE),
            )?),
        };
        tandem_signaling::live::end_kept_sessions(store.as_ref(), journal.as_ref()).await
    };
    match end.await {
        Ok(0) => {
            println!("No live session was kept; nothing to end.");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            println!("Ended {n} live session(s); the server will not carry them on.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tandem-signaling: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `audit verify`: print the chain's state. The head hash is printed in full because
/// removing the newest records leaves a valid, shorter chain: only a head noted down
/// earlier shows that.
async fn audit_verify(flags: Flags) -> ExitCode {
    let check = async {
        let config = Config::resolve(flags)?;
        if let Some(url) = &config.postgres {
            let store = PostgresStore::connect_only(url).await.with_context(|| {
                format!(
                    "could not open the PostgreSQL database {}",
                    tandem_signaling::redacted(url)
                )
            })?;
            let report = store.verify_audit_chain().await?;
            return anyhow::Ok((tandem_signaling::redacted(url), report));
        }
        let path = config.data_dir.join("tandem.db");
        anyhow::ensure!(path.is_file(), "there is no database at {}", path.display());
        let store = SqliteStore::open_read_only(&path)
            .await
            .with_context(|| format!("could not open the database {}", path.display()))?;
        let report = store.verify_audit_chain().await?;
        anyhow::Ok((path.display().to_string(), report))
    };
    match check.await {
        Ok((database, report)) => {
            println!("{database}: {}", sentence(&report.to_string()));
            if report.is_intact() {
                if matches!(report, ChainReport::Intact { head: Some(_), .. }) {
                    println!(
                        "Keep the chain head somewhere else: removing the newest records leaves \
                         a valid, shorter chain, which only an earlier head shows."
                    );
                }
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("tandem-signaling: could not check the audit log: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// Ctrl-C in a terminal, or SIGTERM from a service manager.
async fn stop_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

fn print_admin(admin: Option<&AdminLogin>) {
    match admin {
        Some(login) => {
            println!("  Admin login: {} / {}", login.username, login.password);
            println!("  (shown once: keep it, or change it on the admin page)");
        }
        None => println!(
            "  Admin login: `admin` with the password shown on first start \
             (forgot it? restart with --reset-admin-password)"
        ),
    }
}
