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
/// The longest transfer id a sender may use, in bytes.
const MAX_ID: usize = 64;

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
    /// Ask the customer about this offer ([`Files::answer`] takes the reply, by `token`).
    Ask {
        viewer: ParticipantId,
        token: u64,
        name: String,
        size: u64,
    },
    /// The offer behind that question is gone: do not ask it, or take it back.
    Withdraw { viewer: ParticipantId, token: u64 },
    /// Tell the server, for the audit log.
    Report(ClientMessage),
    /// A sentence for the customer.
    Tell(Text),
}

/// An offer waiting for the customer's answer.
#[derive(Debug)]
struct Offered {
    /// This agent's number for it: the question asked carries it back.
    token: u64,
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

/// The files coming in, as the customer's window shows them ([`Files::incoming`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub name: String,
    pub received: u64,
    pub size: u64,
    /// Files coming at once (from several viewers).
    pub count: usize,
}

/// Every viewer's incoming file: one at a time per viewer.
#[derive(Debug)]
pub struct Files {
    dir: PathBuf,
    max_bytes: u64,
    next_token: u64,
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
            next_token: 0,
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
        let wire = match serde_json::from_str::<Wire>(text) {
            Ok(wire) => wire,
            // An offer that does not read as one is answered, so the sender does not wait.
            Err(_) => {
                let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
                return match (value["type"].as_str(), value["id"].as_str()) {
                    (Some("offer"), Some(id)) if id.len() <= MAX_ID => vec![Out::Send(
                        viewer,
                        Wire::Refuse {
                            id: id.to_owned(),
                            reason: "bad_name".into(),
                        },
                    )],
                    _ => Vec::new(), // not ours to answer: a newer console's message
                };
            }
        };
        match wire {
            Wire::Offer {
                id,
                name,
                size,
                sha256,
            } => self.offer(viewer, id, name, size, sha256, allowed),
            Wire::Cancel { id } => self.cancel(viewer, &id),
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
        if id.len() > MAX_ID {
            return Vec::new(); // nothing to answer it by
        }
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
        self.next_token += 1;
        let token = self.next_token;
        let ask = Out::Ask {
            viewer,
            token,
            name: safe.clone(),
            size,
        };
        self.offered.insert(
            viewer,
            Offered {
                token,
                id,
                name,
                safe,
                size,
                sha256,
            },
        );
        vec![ask]
    }

    /// The customer's answer to the offer `token` from `viewer`.
    pub fn answer(&mut self, viewer: ParticipantId, token: u64, yes: bool) -> Vec<Out> {
        if self.offered.get(&viewer).is_none_or(|o| o.token != token) {
            return Vec::new(); // withdrawn meanwhile (and its question with it)
        }
        let Some(offer) = self.offered.remove(&viewer) else {
            return Vec::new();
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
        if let Some(offer) = self.offered.remove(&viewer) {
            return withdrawn(viewer, offer);
        }
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

    /// What the customer sees of the files coming in: the first one's name (the sender's
    /// lowest id first), bytes received and size, and how many come at once; none when
    /// nothing comes.
    pub fn incoming(&self) -> Option<Incoming> {
        let first = self.receiving.iter().min_by_key(|(viewer, _)| viewer.0)?.1;
        Some(Incoming {
            name: first.offer.safe.clone(),
            received: first.received,
            size: first.offer.size,
            count: self.receiving.len(),
        })
    }

    /// The customer cancels every file coming in: the senders are told (`cancel`),
    /// nothing is kept, and the audit log says cancelled.
    pub fn cancel_incoming(&mut self) -> Vec<Out> {
        let mut viewers: Vec<ParticipantId> = self.receiving.keys().copied().collect();
        viewers.sort_by_key(|v| v.0);
        let mut out = Vec::new();
        for viewer in viewers {
            let Some(r) = self.receiving.remove(&viewer) else {
                continue;
            };
            let _ = std::fs::remove_file(&r.part);
            out.push(Out::Send(
                viewer,
                Wire::Cancel {
                    id: r.offer.id.clone(),
                },
            ));
            out.push(Out::Report(r.report(viewer, FileOutcome::Cancelled, None)));
            out.push(Out::Tell(
                Text::new("file-you-cancelled").arg("name", r.offer.safe.as_str()),
            ));
        }
        out
    }

    /// The agent stops: every file still coming is thrown away.
    pub fn abandon(&mut self) -> Vec<Out> {
        let viewers: Vec<ParticipantId> = self.receiving.keys().copied().collect();
        self.offered.clear();
        viewers.into_iter().flat_map(|v| self.gone(v)).collect()
    }

    /// The rep cancels the transfer `id`.
    fn cancel(&mut self, viewer: ParticipantId, id: &str) -> Vec<Out> {
        if self.offered.get(&viewer).is_some_and(|o| o.id == id) {
            let offer = self.offered.remove(&viewer).expect("checked");
            return withdrawn(viewer, offer);
        }
        match self.receiving.remove(&viewer) {
            Some(r) if r.offer.id == id => {
                let _ = std::fs::remove_file(&r.part);
                vec![
                    Out::Report(r.report(viewer, FileOutcome::Cancelled, None)),
                    Out::Tell(Text::new("file-cancelled").arg("name", r.offer.safe.as_str())),
                ]
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
        #[cfg(windows)]
        mark_from_internet(&part);
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

/// An offer gone before the customer answered: its question goes too, and it is recorded
/// as cancelled.
fn withdrawn(viewer: ParticipantId, offer: Offered) -> Vec<Out> {
    vec![
        Out::Withdraw {
            viewer,
            token: offer.token,
        },
        Out::Report(report(
            viewer,
            &offer.name,
            offer.size,
            Some(&offer.sha256),
            FileOutcome::Cancelled,
            None,
        )),
    ]
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

/// The customer's Downloads folder: `XDG_DOWNLOAD_DIR` (from the environment, else from
/// the desktop's `~/.config/user-dirs.dirs`, where a Norwegian desktop says
/// `$HOME/Nedlastinger`), else `Downloads` in the home folder (`USERPROFILE` on Windows).
pub fn downloads() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DOWNLOAD_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os(if cfg!(windows) { "USERPROFILE" } else { "HOME" })
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map_or_else(|| home.join(".config"), PathBuf::from);
    if !cfg!(windows)
        && let Ok(dirs) = std::fs::read_to_string(config.join("user-dirs.dirs"))
        && let Some(dir) = user_download_dir(&dirs, &home)
    {
        return dir;
    }
    home.join("Downloads")
}

/// `XDG_DOWNLOAD_DIR="$HOME/…"` (or an absolute path) in a `user-dirs.dirs` file.
fn user_download_dir(dirs: &str, home: &Path) -> Option<PathBuf> {
    let value = dirs
        .lines()
        .find_map(|l| l.trim().strip_prefix("XDG_DOWNLOAD_DIR="))?
        .trim()
        .trim_matches('"');
    let dir = match value.strip_prefix("$HOME") {
        Some(rest) => home.join(rest.trim_start_matches('/')),
        None if value.starts_with('/') => PathBuf::from(value),
        None => return None,
    };
    // "$HOME/" alone is the home folder itself, not a Downloads folder.
    (dir != home).then_some(dir)
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
        .filter(|c| {
            !c.is_control()
                && !invisible(*c)
                && !matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*')
        })
        .collect();
    // Until nothing changes: ". .bashrc" loses its dots and its space.
    let mut trimmed = kept.as_str();
    loop {
        let next = trimmed
            .trim()
            .trim_start_matches('.')
            .trim_end_matches(['.', ' ']);
        if next == trimmed {
            break;
        }
        trimmed = next;
    }
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

/// Characters that change how a name looks without showing (bidirectional overrides and
/// isolates, zero-width characters, the byte-order mark): "invoice\u{202E}fdp.exe" would
/// read "invoiceexe.pdf".
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
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

/// Windows: mark a received file as coming from the internet, with the `Zone.Identifier`
/// stream browsers write (the Mark of the Web), so Windows warns before running it and
/// Office opens it in Protected View. Written to the unfinished file, whose streams go with
/// it when it is named, so the named file is never unmarked. Where the file system has no
/// streams (FAT, some network shares, Wine on a Linux disk) the file is saved unmarked, as
/// a browser's download would be.
#[cfg(windows)]
fn mark_from_internet(part: &Path) {
    let mut stream = part.as_os_str().to_owned();
    stream.push(":Zone.Identifier");
    let mark = "[ZoneTransfer]\r\nZoneId=3\r\nHostUrl=about:internet\r\n";
    if let Err(e) = std::fs::write(&stream, mark) {
        crate::peers::trace(&format!("no Zone.Identifier on {}: {e}", part.display()));
    }
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
                if let Err(e) = std::fs::remove_file(part) {
                    crate::text::complain(
                        "file-part-not-removed",
                        e,
                        &[("path", part.display().to_string())],
                    );
                }
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // A file system without hard links (FAT, exFAT, some network shares): take
            // the name with a new empty file first, then move the content over it.
            Err(_) => match File::options()
                .write(true)
                .create_new(true)
                .open(&candidate)
            {
                Ok(_) => {
                    std::fs::rename(part, &candidate)?;
                    return Ok(candidate);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            },
        }
    }
    Err(std::io::Error::other("every name like it is taken"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs on Windows only (CI builds the Windows agent but runs its unit tests nowhere).
    #[cfg(windows)]
    #[test]
    fn a_received_file_on_windows_carries_the_mark_of_the_web() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let part = dir.path().join(".report.pdf.0.tandem-part");
        std::fs::write(&part, b"%PDF")?;
        mark_from_internet(&part);
        let saved = give_name(&part, dir.path(), "report.pdf")?;
        let mut stream = saved.as_os_str().to_owned();
        stream.push(":Zone.Identifier");
        let mark = std::fs::read_to_string(&stream)?;
        assert!(mark.contains("ZoneId=3"), "{mark}");
        Ok(())
    }

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
        assert_eq!(
            safe_name("invoice\u{202E}fdp.exe").as_deref(),
            Some("invoicefdp.exe"),
            "no right-to-left override disguises the extension"
        );
        assert_eq!(
            safe_name("a\u{200B}b\u{FEFF}.txt").as_deref(),
            Some("ab.txt")
        );
        assert_eq!(safe_name(". .bashrc").as_deref(), Some("bashrc"));
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

    fn offer_token(files: &mut Files, viewer: u64, name: &str, content: &[u8]) -> u64 {
        let out = offer(files, viewer, name, content);
        match &out[..] {
            [Out::Ask { token, .. }] => *token,
            _ => panic!("not asked: {out:?}"),
        }
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
        let token = match &asked[..] {
            [Out::Ask { token, .. }] => *token,
            _ => unreachable!(),
        };
        let accepted = files.answer(ParticipantId(3), token, true);
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
        let token = offer_token(&mut files, 3, "passwd", b"second");
        files.answer(ParticipantId(3), token, true);
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
    fn the_customer_sees_what_comes_in_and_cancels_it_leaving_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let downloads = dir.path().to_path_buf();
        let mut files = Files::new(downloads.clone(), 1 << 20);
        assert_eq!(files.incoming(), None);
        assert!(files.cancel_incoming().is_empty(), "nothing to cancel");
        let content = vec![7u8; 300_000];
        let token = offer_token(&mut files, 3, "driver.bin", &content);
        assert_eq!(files.incoming(), None, "asked, not yet coming");
        files.answer(ParticipantId(3), token, true);
        files.data(ParticipantId(3), &content[..100_000]);
        let token = offer_token(&mut files, 5, "logs.zip", &content);
        files.answer(ParticipantId(5), token, true);
        assert_eq!(
            files.incoming(),
            Some(Incoming {
                name: "driver.bin".into(),
                received: 100_000,
                size: 300_000,
                count: 2
            })
        );

        let cancelled = files.cancel_incoming();
        for viewer in [3, 5] {
            assert!(
                cancelled.contains(&Out::Send(
                    ParticipantId(viewer),
                    Wire::Cancel { id: "t1".into() }
                )),
                "viewer {viewer} is told: {cancelled:?}"
            );
        }
        let reported = cancelled
            .iter()
            .filter(|o| matches!(o, Out::Report(_)))
            .count();
        assert_eq!(reported, 2, "both in the audit log");
        assert_eq!(outcome(&cancelled), Some(FileOutcome::Cancelled));
        assert!(listing(&downloads).is_empty(), "no part file left");
        assert_eq!(files.incoming(), None);
        assert!(
            files.data(ParticipantId(3), &content[100_000..]).is_empty(),
            "what was still on its way is dropped"
        );
        assert!(listing(&downloads).is_empty());
    }

    #[test]
    fn a_refusal_a_cancel_a_bad_hash_or_a_cut_leave_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let downloads = dir.path().to_path_buf();
        let mut files = Files::new(downloads.clone(), 1 << 20);
        let content = vec![42u8; 300_000];

        let token = offer_token(&mut files, 3, "a.bin", &content);
        let declined = files.answer(ParticipantId(3), token, false);
        assert_eq!(outcome(&declined), Some(FileOutcome::Declined));
        assert!(
            files.data(ParticipantId(3), &content).is_empty(),
            "content after a refusal is dropped"
        );
        assert!(listing(&downloads).is_empty());

        let token = offer_token(&mut files, 3, "a.bin", &content);
        files.answer(ParticipantId(3), token, true);
        files.data(ParticipantId(3), &content[..100_000]);
        assert_eq!(listing(&downloads).len(), 1, "the part file");
        let cancelled = files.text(
            ParticipantId(3),
            &Wire::Cancel { id: "t1".into() }.to_json(),
            true,
        );
        assert_eq!(outcome(&cancelled), Some(FileOutcome::Cancelled));
        assert!(listing(&downloads).is_empty());

        let token = offer_token(&mut files, 3, "a.bin", &content);
        files.answer(ParticipantId(3), token, true);
        files.data(ParticipantId(3), &content[..100_000]);
        let cut = files.gone(ParticipantId(3));
        assert_eq!(outcome(&cut), Some(FileOutcome::Failed));
        assert!(listing(&downloads).is_empty());

        let token = offer_token(&mut files, 3, "a.bin", &content);
        files.answer(ParticipantId(3), token, true);
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

    #[test]
    fn an_answer_never_lands_on_another_offer() {
        let dir = tempfile::tempdir().expect("dir");
        let mut files = Files::new(dir.path().to_path_buf(), 1 << 20);
        let first = offer_token(&mut files, 3, "notes.txt", b"notes");
        // The sender takes it back: the question goes too, and it is recorded.
        let cancelled = files.text(
            ParticipantId(3),
            &Wire::Cancel { id: "t1".into() }.to_json(),
            true,
        );
        assert!(cancelled.contains(&Out::Withdraw {
            viewer: ParticipantId(3),
            token: first
        }));
        assert_eq!(outcome(&cancelled), Some(FileOutcome::Cancelled));
        // Offered again under the same id, with other content: a new question.
        let second = offer_token(&mut files, 3, "evil.exe", b"evil");
        assert_ne!(first, second);
        assert!(
            files.answer(ParticipantId(3), first, true).is_empty(),
            "a yes to the first question accepts nothing"
        );
        assert!(listing(dir.path()).is_empty());
        let accepted = files.answer(ParticipantId(3), second, true);
        assert_eq!(
            accepted[0],
            Out::Send(ParticipantId(3), Wire::Accept { id: "t1".into() })
        );
        // The channel closing while a question is open takes it back too.
        files.data(ParticipantId(3), b"evil");
        let third = offer_token(&mut files, 3, "x.txt", b"x");
        assert!(files.gone(ParticipantId(3)).contains(&Out::Withdraw {
            viewer: ParticipantId(3),
            token: third
        }));
        // An offer that does not read as one is answered.
        let bad = files.text(
            ParticipantId(3),
            r#"{"type":"offer","id":"t9","size":"big"}"#,
            true,
        );
        assert_eq!(
            bad,
            [Out::Send(
                ParticipantId(3),
                Wire::Refuse {
                    id: "t9".into(),
                    reason: "bad_name".into()
                }
            )]
        );
    }

    #[test]
    fn the_downloads_folder_follows_the_desktops_user_dirs() {
        let home = Path::new("/home/ann");
        let dirs = "# written by xdg-user-dirs-update\nXDG_DESKTOP_DIR=\"$HOME/Skrivebord\"\n\
                    XDG_DOWNLOAD_DIR=\"$HOME/Nedlastinger\"\n";
        assert_eq!(
            user_download_dir(dirs, home),
            Some(PathBuf::from("/home/ann/Nedlastinger"))
        );
        assert_eq!(
            user_download_dir("XDG_DOWNLOAD_DIR=\"/data/dl\"", home),
            Some(PathBuf::from("/data/dl"))
        );
        assert_eq!(user_download_dir("XDG_DOWNLOAD_DIR=\"$HOME/\"", home), None);
        assert_eq!(user_download_dir("XDG_MUSIC_DIR=\"$HOME/M\"", home), None);
    }
}
