//! A TCP proxy in front of a server that loses the answer to one join, as a poor link
//! does: the first WebSocket frame a client sends that holds a join goes through to the
//! server, nothing the server sends on that connection comes back after it, and once the
//! test says [`JoinCutter::cut`] the connection is dropped without a close frame (the
//! browser sees 1006). Everything else, before and after, passes through untouched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Debug)]
pub struct JoinCutter {
    /// Where browsers connect instead of the server.
    pub port: u16,
    /// No join cut yet.
    armed: Arc<AtomicBool>,
    forwarded: Arc<Notify>,
    cut: Arc<Notify>,
    accept: tokio::task::JoinHandle<()>,
}

impl JoinCutter {
    /// A proxy to `server` (host:port) that cuts the first frame holding `"type":"<join>"`.
    pub async fn start(server: SocketAddr, join: &'static str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let armed = Arc::new(AtomicBool::new(true));
        let forwarded = Arc::new(Notify::new());
        let cut = Arc::new(Notify::new());
        let needle = format!("\"type\":\"{join}\"");
        let accept = {
            let (armed, forwarded, cut) = (armed.clone(), forwarded.clone(), cut.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(upstream) = TcpStream::connect(server).await else {
                        continue;
                    };
                    let link = Link {
                        needle: needle.clone(),
                        armed: armed.clone(),
                        forwarded: forwarded.clone(),
                        cut: cut.clone(),
                    };
                    tokio::spawn(async move {
                        if let Err(e) = link.carry(client, upstream).await {
                            eprintln!("join cutter: {e:#}");
                        }
                    });
                }
            })
        };
        Ok(JoinCutter {
            port,
            armed,
            forwarded,
            cut,
            accept,
        })
    }

    /// Waits until the join went through to the server (its answer is held back).
    pub async fn join_forwarded(&self) -> anyhow::Result<()> {
        tokio::time::timeout(crate::WAIT, self.forwarded.notified())
            .await
            .context("no join came through the proxy")
    }

    /// Drops the connection whose join went through, without a close frame.
    pub fn cut(&self) {
        assert!(!self.armed.load(Ordering::SeqCst), "nothing to cut yet");
        self.cut.notify_one();
    }
}

impl Drop for JoinCutter {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

struct Link {
    needle: String,
    armed: Arc<AtomicBool>,
    forwarded: Arc<Notify>,
    cut: Arc<Notify>,
}

impl Link {
    async fn carry(self, mut client: TcpStream, mut upstream: TcpStream) -> anyhow::Result<()> {
        let head = read_head(&mut client).await?;
        if !head.starts_with(b"GET /ws") {
            upstream.write_all(&head).await?;
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
            return Ok(());
        }
        // No compression, so the proxy can read the client's frames.
        let head = String::from_utf8_lossy(&head)
            .lines()
            .filter(|line| {
                !line
                    .to_ascii_lowercase()
                    .starts_with("sec-websocket-extensions")
            })
            .map(|line| format!("{line}\r\n"))
            .collect::<String>();
        upstream.write_all(head.as_bytes()).await?;
        let (mut client_rd, mut client_wr) = client.into_split();
        let (mut up_rd, mut up_wr) = upstream.into_split();
        let muted = Arc::new(AtomicBool::new(false));
        let down = {
            let muted = muted.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = up_rd.read(&mut buf).await {
                    if n == 0 || muted.load(Ordering::SeqCst) {
                        break;
                    }
                    if client_wr.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                client_wr
            })
        };
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = client_rd.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some((len, text)) = frame(&pending) {
                let holds_join = text.contains(&self.needle)
                    && self
                        .armed
                        .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok();
                if holds_join {
                    // Nothing more comes back: the answer is lost on the way.
                    muted.store(true, Ordering::SeqCst);
                }
                up_wr.write_all(&pending[..len]).await?;
                pending.drain(..len);
                if holds_join {
                    self.forwarded.notify_one();
                    self.cut.notified().await;
                    down.abort();
                    // Both halves go: the browser sees the connection end without a
                    // close frame, the server sees it lost.
                    return Ok(());
                }
            }
        }
    }
}

/// The request head, up to and with the blank line.
async fn read_head(client: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        anyhow::ensure!(head.len() < 64 * 1024, "request head too long");
        if client.read(&mut byte).await? == 0 {
            anyhow::bail!("closed before the request head ended");
        }
        head.push(byte[0]);
    }
    Ok(head)
}

/// The first whole client frame in `data`: its length in bytes and its payload, unmasked,
/// as text (lossy; empty for other frames).
fn frame(data: &[u8]) -> Option<(usize, String)> {
    let [first, second, ..] = *data else {
        return None;
    };
    let masked = second & 0x80 != 0;
    let (len, mut at) = match second & 0x7f {
        126 => (
            u16::from_be_bytes(data.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(data.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mask: [u8; 4] = if masked {
        let mask = data.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        mask
    } else {
        [0; 4]
    };
    let payload = data.get(at..at + len)?;
    let text = if first & 0x0f == 1 {
        let plain: Vec<u8> = payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        String::from_utf8_lossy(&plain).into_owned()
    } else {
        String::new()
    };
    Some((at + len, text))
}

#[cfg(test)]
mod tests {
    use super::frame;

    #[test]
    fn a_masked_text_frame_is_read_whole_and_unmasked() {
        let text = br#"{"type":"join_by_link"}"#;
        let mask = [1u8, 2, 3, 4];
        let mut data = vec![0x81, 0x80 | text.len() as u8];
        data.extend_from_slice(&mask);
        data.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        data.extend_from_slice(&[0x81, 0x85]); // the next frame, not whole yet
        let (len, read) = frame(&data).expect("a whole frame");
        assert_eq!(len, 2 + 4 + text.len());
        assert_eq!(read, r#"{"type":"join_by_link"}"#);
        assert!(frame(&data[len..]).is_none());
    }
}
