//! A real Redis server for one test: Debian's `redis-server`, on a free loopback port,
//! keeping nothing on disk, in a temporary directory, stopped when dropped.
//! (Shared with tandem-tests by path; `cargo xtask test` installs the package.)

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    /// `redis://127.0.0.1:<port>`
    pub url: String,
    pub port: u16,
    /// With [`Redis::start_with_tls`]: `rediss://localhost:<TLS port>`.
    pub tls_url: Option<String>,
    server: Child,
    dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Result<Self, String> {
        Self::start_on(None)
    }

    /// Start on `port` (a server's again, after it stopped), or on a free port.
    pub fn start_on(port: Option<u16>) -> Result<Self, String> {
        Self::start_with(port, None)
    }

    /// Start with TLS too, on another port, with this certificate and key (PEM files);
    /// the plain port stays for [`Redis::command`].
    pub fn start_with_tls(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, String> {
        Self::start_with(None, Some((cert, key, None)))
    }

    /// [`Redis::start_with_tls`], asking every TLS client for a certificate issued by the
    /// CA in `client_ca` (`tls-auth-clients yes`, Redis's own default with TLS).
    pub fn start_with_client_auth(
        cert: &std::path::Path,
        key: &std::path::Path,
        client_ca: &std::path::Path,
    ) -> Result<Self, String> {
        Self::start_with(None, Some((cert, key, Some(client_ca))))
    }

    fn start_with(
        port: Option<u16>,
        tls: Option<(&std::path::Path, &std::path::Path, Option<&std::path::Path>)>,
    ) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("tandem-redis-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let log_path = dir.path().join("server.log");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let port = match port {
                Some(port) => port,
                None => free_port()?,
            };
            let tls_port = match tls {
                Some(_) => Some(free_port()?),
                None => None,
            };
            let mut server = Command::new("redis-server");
            if let (Some((cert, key, client_ca)), Some(tls_port)) = (tls, tls_port) {
                server
                    .args(["--tls-port", &tls_port.to_string()])
                    .arg("--tls-cert-file")
                    .arg(cert)
                    .arg("--tls-key-file")
                    .arg(key)
                    .arg("--tls-ca-cert-file")
                    .arg(client_ca.unwrap_or(cert))
                    .args([
                        "--tls-auth-clients",
                        if client_ca.is_some() { "yes" } else { "no" },
                    ]);
            }
            let mut server = server
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(&log_path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    format!("could not start redis-server ({e}); apt-get install redis-server")
                })?;
            match wait_ready(&mut server, port, deadline) {
                Ok(()) => {
                    return Ok(Redis {
                        url: format!("redis://127.0.0.1:{port}"),
                        port,
                        tls_url: tls_port.map(|port| format!("rediss://localhost:{port}")),
                        server,
                        dir,
                    });
                }
                Err(e) => {
                    let _ = server.kill();
                    let _ = server.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    // Another process took the port between our look and the server's bind.
                    if !(log.contains("Address already in use") && Instant::now() < deadline) {
                        return Err(format!("{e}; server log:\n{log}"));
                    }
                }
            }
        }
    }

    /// Send one command (its words, none with spaces) and read the first line of the
    /// answer, e.g. `:2` or `$-1`; a bulk string's value is read too.
    pub fn command(&self, words: &[&str]) -> Result<String, String> {
        command(self.port, words)
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn command(port: u16, words: &[&str]) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut request = format!("*{}\r\n", words.len());
    for word in words {
        request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
    }
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end().to_owned();
    if let Some(len) = line.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
        let mut value = String::new();
        reader.read_line(&mut value).map_err(|e| e.to_string())?;
        let mut value = value.trim_end().to_owned();
        value.truncate(len);
        return Ok(value);
    }
    Ok(line)
}

fn wait_ready(server: &mut Child, port: u16, deadline: Instant) -> Result<(), String> {
    loop {
        if let Ok(Some(status)) = server.try_wait() {
            return Err(format!("redis-server exited ({status})"));
        }
        if command(port, &["PING"]).is_ok_and(|answer| answer == "+PONG") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("redis-server was not ready within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}
