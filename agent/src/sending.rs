//! A customer's file on its way to the rep who asked for it (files.rs decides what goes
//! where; this moves the bytes): read through once for its SHA-256, offered with it on
//! the viewer's `tandem-files` channel, then sent in binary messages of 16 KiB, with never
//! more than [`QUEUED`] bytes waiting in the channel. The rep's console checks the hash
//! and answers `done` or `failed`; files.rs hears the rest through [`Sent`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tandem_protocol::ParticipantId;
use tokio::sync::mpsc::UnboundedSender;
use webrtc::data_channel::DataChannel;

use crate::files::{Sent, Stop, Wire};

/// Browsers take data channel messages of up to 16 KiB everywhere.
const CHUNK: usize = 16 * 1024;
/// Sending waits while this much is still queued in the channel.
const QUEUED: usize = 1024 * 1024;
/// Progress is reported after at least this many new bytes.
const PROGRESS_EVERY: u64 = 256 * 1024;

/// What a sending task tells the main loop: for which viewer, which transfer, what.
pub type Report = UnboundedSender<(ParticipantId, String, Sent)>;

/// One transfer: everything about it that the task needs.
pub struct Transfer {
    pub viewer: ParticipantId,
    pub id: String,
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
    pub stop: Stop,
    /// Offered already with this SHA-256: only the content from byte `from` on goes.
    pub resume: Option<(u64, String)>,
}

/// Send `transfer` on `channel` until it is all out, `stop` says so, or it fails (said
/// through `report`, unless it was stopped).
pub async fn send(channel: Arc<dyn DataChannel>, transfer: Transfer, report: Report) {
    // A stopped task says nothing more: its file may already go on in another task (a
    // new connection), under the same id.
    let tell = |sent: Sent| {
        if !transfer.stop.stopped() {
            let _ = report.send((transfer.viewer, transfer.id.clone(), sent));
        }
    };
    match go(&*channel, &transfer, &tell).await {
        Ok(()) => {}
        Err(Failure::Cut) => tell(Sent::Cut),
        Err(Failure::File(why)) => tell(Sent::Failed(why)),
    }
}

/// Why a transfer could not go on.
enum Failure {
    /// The channel broke off under it.
    Cut,
    /// The file could not be read, or changed: why.
    File(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Failure::File(why)
    }
}

async fn go(
    channel: &dyn DataChannel,
    t: &Transfer,
    tell: &(dyn Fn(Sent) + Send + Sync),
) -> Result<(), Failure> {
    let from = match &t.resume {
        // Carried on: the console checks the whole file's SHA-256 at the end, as before.
        Some((from, _)) => {
            let length = std::fs::metadata(&t.path)
                .map_err(|e| format!("could not read the file: {e}"))?
                .len();
            if length != t.size {
                return Err(Failure::File("the file changed while it was sent".into()));
            }
            *from
        }
        None => {
            let path = t.path.clone();
            let (sha256, length) = tokio::task::spawn_blocking(move || hash_file(&path))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("could not read the file: {e}"))?;
            if length != t.size {
                return Err(Failure::File("the file changed while it was read".into()));
            }
            if t.stop.stopped() {
                return Ok(());
            }
            tell(Sent::Hashed(sha256.clone()));
            let offer = Wire::Offer {
                id: t.id.clone(),
                name: t.name.clone(),
                size: t.size,
                sha256,
            };
            channel
                .send_text(&offer.to_json())
                .await
                .map_err(|_| Failure::Cut)?;
            0
        }
    };
    let mut file =
        std::fs::File::open(&t.path).map_err(|e| format!("could not read the file: {e}"))?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(from))
        .map_err(|e| format!("could not read the file: {e}"))?;
    let mut buffer = vec![0u8; CHUNK];
    let (mut sent, mut reported) = (from, from);
    while sent < t.size {
        while channel.outstanding_bytes().await.unwrap_or(0) > QUEUED {
            if t.stop.stopped() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if t.stop.stopped() {
            return Ok(());
        }
        let want = usize::try_from(t.size - sent).map_or(CHUNK, |left| left.min(CHUNK));
        // 16 KiB from a local file: short enough to read right here.
        file.read_exact(&mut buffer[..want]).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                "the file got shorter while it was sent".to_owned()
            } else {
                format!("could not read the file: {e}")
            }
        })?;
        channel
            .send(bytes::BytesMut::from(&buffer[..want]))
            .await
            .map_err(|_| Failure::Cut)?;
        sent += want as u64;
        if sent - reported >= PROGRESS_EVERY || sent == t.size {
            reported = sent;
            tell(Sent::Progress(sent));
        }
    }
    Ok(())
}

/// The SHA-256 of the file at `path` (hex) and how many bytes it has.
fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1024 * 1024];
    let mut length = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        length += n as u64;
    }
    let hash = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hash, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_whole() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("log.txt");
        // Over one read buffer, so the hash spans reads.
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content)?;
        let (hash, length) = hash_file(&path)?;
        let expected: String = Sha256::digest(&content)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!((hash, length), (expected, 3_000_000));
        Ok(())
    }
}
