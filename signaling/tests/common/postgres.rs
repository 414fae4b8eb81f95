//! A real PostgreSQL server for one test: Debian's `postgresql` binaries, a fresh cluster
//! in a temporary directory, listening on a free loopback port, removed when dropped.
//! (Shared with tandem-tests by path; `cargo xtask test` installs the package.)

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Postgres {
    /// `postgres://tandem@127.0.0.1:<port>/tandem`
    pub url: String,
    pub port: u16,
    server: Child,
    dir: tempfile::TempDir,
}

impl Postgres {
    /// Start a server with one empty database, `tandem`, owned by the user `tandem`.
    pub fn start() -> Result<Self, String> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("tandem-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let data = dir.path().join("data");
        // PostgreSQL refuses to run as root: then it runs as Debian's `postgres` user.
        let as_root = is_root();
        if as_root {
            chown_to_postgres(dir.path())?;
        }
        run(
            command(&bin.join("initdb"), as_root)?
                .arg("--pgdata")
                .arg(&data)
                .args([
                    "--username=tandem",
                    "--auth=trust",
                    "--no-sync",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]),
            "initdb",
        )?;
        let log_path = dir.path().join("server.log");
        let deadline = Instant::now() + Duration::from_secs(60);
        let (server, port) = loop {
            let port = free_port()?;
            let log = std::fs::File::create(&log_path).map_err(|e| format!("server log: {e}"))?;
            if as_root {
                chown_to_postgres(&log_path)?;
            }
            let mut server = command(&bin.join("postgres"), as_root)?
                .arg("-D")
                .arg(&data)
                .arg("-k")
                .arg(dir.path())
                .args([
                    "-p",
                    &port.to_string(),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    // A test's data need not survive a crash of the machine.
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("could not start postgres: {e}"))?;
            match wait_ready(&bin, &mut server, port, deadline) {
                Ok(()) => break (server, port),
                Err(e) => {
                    stop(&mut server);
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    // Another process took the port between our look and the server's bind.
                    if !(log.contains("could not bind") && Instant::now() < deadline) {
                        return Err(format!("{e}; server log:\n{log}"));
                    }
                }
            }
        };
        run(
            Command::new(bin.join("createdb"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["-U", "tandem", "tandem"]),
            "createdb",
        )?;
        Ok(Postgres {
            url: format!("postgres://tandem@127.0.0.1:{port}/tandem"),
            port,
            server,
            dir,
        })
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop(&mut self.server);
    }
}

fn wait_ready(bin: &Path, server: &mut Child, port: u16, deadline: Instant) -> Result<(), String> {
    loop {
        if let Ok(Some(status)) = server.try_wait() {
            return Err(format!("postgres exited ({status})"));
        }
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("postgres was not ready within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(server: &mut Child) {
    // SIGTERM is PostgreSQL's "smart" stop, which waits for clients: SIGQUIT ends it at
    // once, which is all a test's server needs.
    let _ = Command::new("kill")
        .args(["-QUIT", &server.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// Debian's PostgreSQL binaries: the newest /usr/lib/postgresql/<version>/bin.
fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| {
            format!(
                "PostgreSQL is not installed (/usr/lib/postgresql: {e}); apt-get install postgresql"
            )
        })?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL server under /usr/lib/postgresql".into())
}

/// `program`, run as Debian's `postgres` user when we are root. The process is the
/// program itself (no wrapper), so that stopping it stops the server.
fn command(program: &Path, as_postgres: bool) -> Result<Command, String> {
    let mut c = Command::new(program);
    if as_postgres {
        use std::os::unix::process::CommandExt;
        let id = |flag: &str| -> Result<u32, String> {
            let out = Command::new("id")
                .args([flag, "postgres"])
                .output()
                .map_err(|e| format!("id: {e}"))?;
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .map_err(|_| "there is no `postgres` user (apt-get install postgresql)".to_owned())
        };
        // As root, std drops the supplementary groups when it sets the uid.
        c.gid(id("-g")?).uid(id("-u")?);
    }
    Ok(c)
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("could not run {what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn is_root() -> bool {
    // `id -u` rather than a libc call: this file is shared by crates with other deps.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn chown_to_postgres(path: &Path) -> Result<(), String> {
    run(
        Command::new("chown").arg("postgres:postgres").arg(path),
        "chown",
    )
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}
