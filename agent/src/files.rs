//! Files from a rep's console to the customer's computer (docs/protocol.md, "File
//! transfer"), over each viewer's `tandem-files` data channel: never through the server,
//! which only hears how each transfer ended (for the audit log, C3).
//!
//! The customer is asked first (name, size, sender; Allow or Deny). An allowed file is
//! written to a hidden part file in the Downloads folder, hashed as it comes, and only
//! when every byte is there and the SHA-256 matches the sender's is it given its name —
//! a new one: nothing is ever overwritten, and a name is reduced to a plain file name
//! (no folders, no `..`, no control characters, no names Windows reserves). A transfer
//! cut off, cancelled or corrupted leaves nothing behind.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tandem_protocol::{ClientMessage, FileDirection, FileOutcome, ParticipantId};

use crate::text::Text;

/// The label of the data channel files go over.
pub const FILES_CHANNEL: &str = "tandem-files";
/// The receiver reports progress after at least this many new bytes.
const PROGRESS_EVERY: u64 = 256 * 1024;
/// The longest name kept, in bytes (most file systems allow 255).
const MAX_NAME_BYTES: usize = 200;

/// A message on the files channel, as JSON text; file content goes in binary messages
/// between `accept` and the end.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Wire {
    /// The sender offers a file.
    Offer {
        id: String,
        name: String,
        size: u64,
        sha256: String,
    },
    /// The customer allowed it: send the content.
    Accept { id: String },
    /// Not taken: `declined`, `too_large`, `not_allowed`, `busy`, `off` or `bad_name`.
    Refuse { id: String, reason: String },
    /// So many bytes are written.
    Progress { id: String, received: u64 },
    /// Saved under this name in the Downloads folder.
    Done { id: String, saved_as: String },
    /// It broke off: nothing was kept.
    Failed { id: String, reason: String },
    /// Either side stops it.
    Cancel { id: String },
}

impl Wire {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a wire message serializes")
    }
}

/// What the driver does for the files module.
#[derive(Debug, PartialEq)]
pub enum Out {
    /// Send on this viewer's files channel.
    Send(ParticipantId, Wire),
    /// Ask the customer about this offer ([`Files::answer`] takes the reply).
    Ask {
        viewer: ParticipantId,
        id: String,
        name: String,
        size: u64,
    },
    /// Tell the server, for the audit log.
    Report(ClientMessage),
    /// A sentence for the customer.
    Tell(Text),
}

/// An offer waiting for the customer's answer.
#[derive(Debug)]
struct Offered {
    id: String,
    name: String,
    safe: String,
    size: u64,
    sha256: String,
}

/// A file being received.
#[derive(Debug)]
struct Receiving {
    offer: Offered,
    part: PathBuf,
    file: File,
    hasher: Sha256,
    received: u64,
    reported: u64,
}

/// Every viewer's incoming file: one at a time per viewer.
#[derive(Debug)]
pub struct Files {
    dir: PathBuf,
    max_bytes: u64,
    offered: HashMap<ParticipantId, Offered>,
    receiving: HashMap<ParticipantId, Receiving>,
}

impl Files {
    /// Files land in `dir` (created when the first one comes); none larger than
    /// `max_bytes` (0: file transfer is off).
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self {
            dir,
            max_bytes,
            offered: HashMap::new(),
            receiving: HashMap::new(),
        }
    }

    pub fn set_max_bytes(&mut self, max_bytes: u64) {
        self.max_bytes = max_bytes;
    }

    /// A text message from `viewer`. `allowed`: the viewer may send files now (holds
    /// control, or is the primary rep).
    pub fn text(&mut self, viewer: ParticipantId, text: &str, allowed: bool) -> Vec<Out> {
        let Ok(wire) = serde_json::from_str::<Wire>(text) else {
            return Vec::new(); // not ours to answer: a newer console's message
        };
        match wire {
            Wire::Offer {
                id,
                name,
                size,
                sha256,
            } => self.offer(viewer, id, name, size, sha256, allowed),
            Wire::Cancel { id } => self.cancel(viewer, &id, true),
            _ => Vec::new(),
        }
    }

    fn offer(
        &mut self,
        viewer: ParticipantId,
        id: String,
        name: String,
        size: u64,
        sha256: String,
        allowed: bool,
    ) -> Vec<Out> {
        let refuse = |reason: &str| {
            Out::Send(
                viewer,
                Wire::Refuse {
                    id: id.clone(),
                    reason: reason.into(),
                },
            )
        };
        let record =
            |outcome| Out::Report(report(viewer, &name, size, Some(&sha256), outcome, None));
        if self.offered.contains_key(&viewer) || self.receiving.contains_key(&viewer) {
            return vec![refuse("busy")];
        }
        if !allowed {
            return vec![refuse("not_allowed")];
        }
        if !valid_hash(&sha256) || name.chars().count() > 255 || name.is_empty() {
            return vec![refuse("bad_name")];
        }
        if self.max_bytes == 0 {
            return vec![refuse("off")];
        }
        if size > self.max_bytes {
            return vec![refuse("too_large"), record(FileOutcome::TooLarge)];
        }
        let Some(safe) = safe_name(&name) else {
            return vec![refuse("bad_name"), record(FileOutcome::Failed)];
        };
        let ask = Out::Ask {
            viewer,
            id: id.clone(),
            name: safe.clone(),
            size,
        };
        self.offered.insert(
            viewer,
            Offered {
                id,
                name,
                safe,
                size,
                sha256,
            },
        );
        vec![ask]
    }

    /// The customer's answer to the offer `id` from `viewer`.
    pub fn answer(&mut self, viewer: ParticipantId, id: &str, yes: bool) -> Vec<Out> {
        let Some(offer) = self.offered.remove(&viewer).filter(|o| o.id == id) else {
            return Vec::new(); // cancelled meanwhile
        };
        if !yes {
            return vec![
                Out::Send(
                    viewer,
                    Wire::Refuse {
                        id: offer.id.clone(),
                        reason: "declined".into(),
                    },
                ),
                Out::Report(report(
                    viewer,
                    &offer.name,
                    offer.size,
                    Some(&offer.sha256),
                    FileOutcome::Declined,
                    None,
                )),
            ];
        }
        let opened =
            std::fs::create_dir_all(&self.dir).and_then(|()| part_file(&self.dir, &offer.safe));
        match opened {
            Ok((part, file)) => {
                let id = offer.id.clone();
                let mut out = vec![Out::Send(viewer, Wire::Accept { id })];
                let receiving = Receiving {
                    offer,
                    part,
                    file,
                    hasher: Sha256::new(),
                    received: 0,
                    reported: 0,
                };
                if receiving.offer.size == 0 {
                    out.extend(self.finish(viewer, receiving));
                } else {
                    self.receiving.insert(viewer, receiving);
                }
                out
            }
            Err(e) => self.fail_offer(
                viewer,
                offer,
                &format!("could not write in {}: {e}", self.dir.display()),
            ),
        }
    }

    /// Binary content from `viewer`.
    pub fn data(&mut self, viewer: ParticipantId, bytes: &[u8]) -> Vec<Out> {
        let Some(mut r) = self.receiving.remove(&viewer) else {
            return Vec::new(); // after a cancel: the rest in flight is dropped
        };
        if r.received + bytes.len() as u64 > r.offer.size {
            return self.fail(viewer, r, "more bytes came than were offered");
        }
        if let Err(e) = r.file.write_all(bytes) {
            return self.fail(viewer, r, &format!("could not write the file: {e}"));
        }
        r.hasher.update(bytes);
        r.received += bytes.len() as u64;
        if r.received == r.offer.size {
            return self.finish(viewer, r);
        }
        let mut out = Vec::new();
        if r.received - r.reported >= PROGRESS_EVERY {
            r.reported = r.received;
            out.push(Out::Send(
                viewer,
                Wire::Progress {
                    id: r.offer.id.clone(),
                    received: r.received,
                },
            ));
        }
        self.receiving.insert(viewer, r);
        out
    }

    /// `viewer`'s channel closed, or it left: what it was sending is dropped.
    pub fn gone(&mut self, viewer: ParticipantId) -> Vec<Out> {
        self.offered.remove(&viewer);
        match self.receiving.remove(&viewer) {
            Some(r) => {
                let _ = std::fs::remove_file(&r.part);
                let mut out = vec![Out::Report(r.report(viewer, FileOutcome::Failed, None))];
                out.push(Out::Tell(
                    Text::new("file-broke-off").arg("name", r.offer.safe.as_str()),
                ));
                out
            }
            None => Vec::new(),
        }
    }

    /// The agent stops: every file still coming is thrown away.
    pub fn abandon(&mut self) -> Vec<Out> {
        let viewers: Vec<ParticipantId> = self.receiving.keys().copied().collect();
        self.offered.clear();
        viewers.into_iter().flat_map(|v| self.gone(v)).collect()
    }

    /// The transfer `id` from `viewer` stops (`by_sender`: the rep cancelled it).
    fn cancel(&mut self, viewer: ParticipantId, id: &str, by_sender: bool) -> Vec<Out> {
        if self.offered.get(&viewer).is_some_and(|o| o.id == id) {
            let offer = self.offered.remove(&viewer).expect("checked");
            return vec![Out::Report(report(
                viewer,
                &offer.name,
                offer.size,
                Some(&offer.sha256),
                FileOutcome::Cancelled,
                None,
            ))];
        }
        match self.receiving.remove(&viewer) {
            Some(r) if r.offer.id == id => {
                let _ = std::fs::remove_file(&r.part);
                let mut out = Vec::new();
                if !by_sender {
                    out.push(Out::Send(viewer, Wire::Cancel { id: id.to_owned() }));
                }
                out.push(Out::Report(r.report(viewer, FileOutcome::Cancelled, None)));
                out.push(Out::Tell(
                    Text::new("file-cancelled").arg("name", r.offer.safe.as_str()),
                ));
                out
            }
            Some(r) => {
                self.receiving.insert(viewer, r);
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    fn finish(&mut self, viewer: ParticipantId, r: Receiving) -> Vec<Out> {
        let Receiving {
            offer,
            part,
            file,
            hasher,
            ..
        } = r;
        let hash = hex(&hasher.finalize());
        if let Err(e) = file.sync_all() {
            let _ = std::fs::remove_file(&part);
            return self.fail_offer(viewer, offer, &format!("could not write the file: {e}"));
        }
        drop(file);
        if hash != offer.sha256 {
            let _ = std::fs::remove_file(&part);
            return self.fail_offer(viewer, offer, "the content does not match its SHA-256");
        }
        match give_name(&part, &self.dir, &offer.safe) {
            Ok(saved) => {
                let saved_as = saved
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                vec![
                    Out::Send(
                        viewer,
                        Wire::Progress {
                            id: offer.id.clone(),
                            received: offer.size,
                        },
                    ),
                    Out::Send(
                        viewer,
                        Wire::Done {
                            id: offer.id.clone(),
                            saved_as: saved_as.clone(),
                        },
                    ),
                    Out::Report(report(
                        viewer,
                        &offer.name,
                        offer.size,
                        Some(&offer.sha256),
                        FileOutcome::Delivered,
                        Some(&saved_as),
                    )),
                    Out::Tell(Text::new("file-saved").arg("path", saved.display().to_string())),
                ]
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                self.fail_offer(viewer, offer, &format!("could not name the file: {e}"))
            }
        }
    }

    fn fail(&mut self, viewer: ParticipantId, r: Receiving, why: &str) -> Vec<Out> {
        let _ = std::fs::remove_file(&r.part);
        self.fail_offer(viewer, r.offer, why)
    }

    fn fail_offer(&mut self, viewer: ParticipantId, offer: Offered, why: &str) -> Vec<Out> {
        vec![
            Out::Send(
                viewer,
                Wire::Failed {
                    id: offer.id.clone(),
                    reason: why.to_owned(),
                },
            ),
            Out::Report(report(
                viewer,
                &offer.name,
                offer.size,
                Some(&offer.sha256),
                FileOutcome::Failed,
                None,
            )),
            Out::Tell(
                Text::new("file-failed")
                    .arg("name", offer.safe.as_str())
                    .arg("why", why),
            ),
        ]
    }
}

impl Drop for Files {
    /// However the agent ends, no part file stays behind (only a kill can leave one; it
    /// is hidden, and named `.<name>.<n>.tandem-part`).
    fn drop(&mut self) {
        for r in self.receiving.values() {
            let _ = std::fs::remove_file(&r.part);
        }
    }
}

impl Receiving {
    fn report(
        &self,
        viewer: ParticipantId,
        outcome: FileOutcome,
        saved_as: Option<&str>,
    ) -> ClientMessage {
        report(
            viewer,
            &self.offer.name,
            self.offer.size,
            Some(&self.offer.sha256),
            outcome,
            saved_as,
        )
    }
}

fn report(
    peer: ParticipantId,
    name: &str,
    size: u64,
    sha256: Option<&str>,
    outcome: FileOutcome,
    saved_as: Option<&str>,
) -> ClientMessage {
    // The server takes names of up to 255 characters without control characters.
    let name: String = name.chars().filter(|c| !c.is_control()).take(255).collect();
    ClientMessage::FileTransfer {
        peer,
        direction: FileDirection::ToCustomer,
        name: if name.is_empty() { "?".into() } else { name },
        size,
        sha256: sha256.filter(|h| valid_hash(h)).map(str::to_owned),
        outcome,
        saved_as: saved_as.map(str::to_owned),
    }
}

fn valid_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The customer's Downloads folder: `XDG_DOWNLOAD_DIR`, else `Downloads` in the home
/// folder (`USERPROFILE` on Windows).
pub fn downloads() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DOWNLOAD_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os(if cfg!(windows) { "USERPROFILE" } else { "HOME" })
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join("Downloads")
}

/// A name fit for the Downloads folder on any system, or none: only the last part of a
/// path, without control characters or characters Windows refuses, without leading dots
/// (no hidden files, no `..`) or trailing dots and spaces, not a name Windows reserves
/// (`CON`, `NUL`, `COM1`…, which get a `_` in front), at most 200 bytes (the extension
/// kept).
pub fn safe_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*'))
        .collect();
    let trimmed = kept
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(['.', ' '])
        .trim();
    if trimmed.is_empty() {
        return None;
    }
    let mut name = trimmed.to_owned();
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        name.insert(0, '_');
    }
    if name.len() > MAX_NAME_BYTES {
        let (stem, ext) = match name.rfind('.') {
            Some(dot) if name.len() - dot <= 16 => name.split_at(dot),
            _ => (name.as_str(), ""),
        };
        let mut cut = MAX_NAME_BYTES - ext.len();
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        name = format!("{}{ext}", &stem[..cut]);
    }
    Some(name)
}

/// A new hidden part file for `name` in `dir`.
fn part_file(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    for n in 0..1000u32 {
        let part = dir.join(format!(".{name}.{n}.tandem-part"));
        match File::options().write(true).create_new(true).open(&part) {
            Ok(file) => return Ok((part, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "too many unfinished files of that name",
    ))
}

/// Give the finished `part` its name in `dir`: `name`, else `name (1)`, `name (2)`… —
/// never over an existing file (a hard link fails when the name is taken, and is atomic).
fn give_name(part: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    };
    for n in 0..1000u32 {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem} ({n}){ext}"))
        };
        match std::fs::hard_link(part, &candidate) {
            Ok(()) => {
                std::fs::remove_file(part)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("every name like it is taken"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_folders_and_tricks() {
        assert_eq!(safe_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(safe_name("/etc/shadow").as_deref(), Some("shadow"));
        assert_eq!(
            safe_name("..\\..\\Windows\\win.ini").as_deref(),
            Some("win.ini")
        );
        assert_eq!(safe_name("C:\\boot.ini").as_deref(), Some("boot.ini"));
        assert_eq!(safe_name("report.pdf").as_deref(), Some("report.pdf"));
        assert_eq!(
            safe_name("rapport æøå.txt").as_deref(),
            Some("rapport æøå.txt")
        );
        assert_eq!(safe_name(".bashrc").as_deref(), Some("bashrc"));
        assert_eq!(
            safe_name("a\u{0}b\nc\u{7f}.txt").as_deref(),
            Some("abc.txt")
        );
        assert_eq!(safe_name("what?<>|*\".txt").as_deref(), Some("what.txt"));
        assert_eq!(safe_name("trailing. . ").as_deref(), Some("trailing"));
        assert_eq!(safe_name("CON").as_deref(), Some("_CON"));
        assert_eq!(safe_name("nul.txt").as_deref(), Some("_nul.txt"));
        assert_eq!(safe_name("com7.log").as_deref(), Some("_com7.log"));
        assert_eq!(safe_name("console.txt").as_deref(), Some("console.txt"));
        for nothing in ["", "..", "../", "/", ". .", "\u{1}\u{2}", "dir/"] {
            assert_eq!(safe_name(nothing), None, "{nothing:?}");
        }
        let long = format!("{}.tar.gz", "å".repeat(300));
        let cut = safe_name(&long).expect("a name");
        assert!(cut.len() <= MAX_NAME_BYTES && cut.ends_with(".gz"), "{cut}");
    }

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    fn offer(files: &mut Files, viewer: u64, name: &str, content: &[u8]) -> Vec<Out> {
        let wire = Wire::Offer {
            id: "t1".into(),
            name: name.into(),
            size: content.len() as u64,
            sha256: sha(content),
        };
        files.text(ParticipantId(viewer), &wire.to_json(), true)
    }

    fn outcome(out: &[Out]) -> Option<FileOutcome> {
        out.iter().find_map(|o| match o {
            Out::Report(ClientMessage::FileTransfer { outcome, .. }) => Some(*outcome),
            _ => None,
        })
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn an_allowed_file_is_saved_under_a_new_name_once_its_hash_matches() {
        let dir = tempfile::tempdir().expect("dir");
        let downloads = dir.path().join("Downloads");
        let mut files = Files::new(downloads.clone(), 1 << 20);
        let content: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let asked = offer(&mut files, 3, "../../etc/passwd", &content);
        assert!(
            matches!(&asked[..], [Out::Ask { name, size: 100_000, .. }] if name == "passwd"),
            "{asked:?}"
        );
        assert!(listing(&downloads).is_empty(), "nothing before the answer");
        let accepted = files.answer(ParticipantId(3), "t1", true);
        assert_eq!(
            accepted,
            [Out::Send(
                ParticipantId(3),
                Wire::Accept { id: "t1".into() }
            )]
        );
        let mut last = Vec::new();
        for chunk in content.chunks(16 * 1024) {
            assert!(
                !listing(&downloads).contains(&"passwd".to_owned()),
                "no final name before the end"
            );
            last = files.data(ParticipantId(3), chunk);
        }
        assert_eq!(outcome(&last), Some(FileOutcome::Delivered), "{last:?}");
        assert!(last.contains(&Out::Send(
            ParticipantId(3),
            Wire::Done {
                id: "t1".into(),
                saved_as: "passwd".into()
            }
        )));
        assert_eq!(
            std::fs::read(downloads.join("passwd")).expect("saved"),
            content
        );
        assert_eq!(listing(&downloads), ["passwd"], "no part file left");

        // The same name again: a new name, the first file untouched.
        offer(&mut files, 3, "passwd", b"second");
        files.answer(ParticipantId(3), "t1", true);
        let last = files.data(ParticipantId(3), b"second");
        assert!(
            last.contains(&Out::Send(
                ParticipantId(3),
                Wire::Done {
                    id: "t1".into(),
                    saved_as: "passwd (1)".into()
                }
            )),
            "{last:?}"
        );
        assert_eq!(
            std::fs::read(downloads.join("passwd")).expect("first"),
            content
        );
    }

    #[test]
    fn a_refusal_a_cancel_a_bad_hash_or_a_cut_leave_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let downloads = dir.path().to_path_buf();
        let mut files = Files::new(downloads.clone(), 1 << 20);
        let content = vec![42u8; 300_000];

        offer(&mut files, 3, "a.bin", &content);
        let declined = files.answer(ParticipantId(3), "t1", false);
        assert_eq!(outcome(&declined), Some(FileOutcome::Declined));
        assert!(
            files.data(ParticipantId(3), &content).is_empty(),
            "content after a refusal is dropped"
        );
        assert!(listing(&downloads).is_empty());

        offer(&mut files, 3, "a.bin", &content);
        files.answer(ParticipantId(3), "t1", true);
        files.data(ParticipantId(3), &content[..100_000]);
        assert_eq!(listing(&downloads).len(), 1, "the part file");
        let cancelled = files.text(
            ParticipantId(3),
            &Wire::Cancel { id: "t1".into() }.to_json(),
            true,
        );
        assert_eq!(outcome(&cancelled), Some(FileOutcome::Cancelled));
        assert!(listing(&downloads).is_empty());

        offer(&mut files, 3, "a.bin", &content);
        files.answer(ParticipantId(3), "t1", true);
        files.data(ParticipantId(3), &content[..100_000]);
        let cut = files.gone(ParticipantId(3));
        assert_eq!(outcome(&cut), Some(FileOutcome::Failed));
        assert!(listing(&downloads).is_empty());

        offer(&mut files, 3, "a.bin", &content);
        files.answer(ParticipantId(3), "t1", true);
        let mut tampered = content.clone();
        tampered[5] = 0;
        let failed = files.data(ParticipantId(3), &tampered);
        assert_eq!(outcome(&failed), Some(FileOutcome::Failed), "{failed:?}");
        assert!(listing(&downloads).is_empty());

        let mut small = Files::new(downloads.clone(), 1000);
        let refused = offer(&mut small, 3, "a.bin", &content);
        assert_eq!(
            refused[0],
            Out::Send(
                ParticipantId(3),
                Wire::Refuse {
                    id: "t1".into(),
                    reason: "too_large".into()
                }
            )
        );
        assert_eq!(outcome(&refused), Some(FileOutcome::TooLarge));
        let wire = Wire::Offer {
            id: "t2".into(),
            name: "x".into(),
            size: 1,
            sha256: sha(b"x"),
        };
        let not_allowed = small.text(ParticipantId(4), &wire.to_json(), false);
        assert_eq!(
            not_allowed,
            [Out::Send(
                ParticipantId(4),
                Wire::Refuse {
                    id: "t2".into(),
                    reason: "not_allowed".into()
                }
            )]
        );
        assert!(listing(&downloads).is_empty());
    }
}
