//! `tandem-signaling`: parse the configuration, open the store, serve.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tandem_signaling::{AdminLogin, Config, Flags};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
    /// Give the `admin` account a new password (printed, or the one from --admin-password)
    #[arg(long)]
    reset_admin_password: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .init();
    match serve(Cli::parse()).await {
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
    let reset_password = config.admin_password.clone();
    let (state, mut admin) = tandem_signaling::build(config).await?;
    if cli.reset_admin_password {
        admin = Some(tandem_signaling::reset_admin_password(&state, reset_password).await?);
    }
    let listener = TcpListener::bind((bind, port)).await.with_context(|| {
        format!("could not listen on {bind}:{port} (is another server using it?)")
    })?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    println!();
    println!("  Tandem is running.");
    println!("  Console:   http://{host}/login");
    println!("  Customers: http://{host}/join");
    print_admin(admin.as_ref());
    println!("  Stop with Ctrl-C.");
    println!();
    tandem_signaling::run(listener, state, stop_signal()).await?;
    println!("tandem-signaling: stopped; every live session was ended.");
    Ok(())
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
