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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
/// How long a file cut off with its viewer's connection waits, part file and all, for the
/// console to offer it again on a new connection and carry on from where it stopped.
pub const RESUME_WITHIN: Duration = Duration::from_secs(60);

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
    /// The customer allowed it: send the content, from byte `from` on (a file that was
    /// cut off with its connection and offered again carries on where it stopped).
    Accept {
        id: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        from: u64,
    },
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
    /// A rep asks the customer for a file: the customer picks one (it comes back as an
    /// `offer` with this `id`, its content right after), or says no (`refuse`).
    Request { id: String },
    /// The console, on its share's new connection, has `from` bytes of the file `id` it
    /// was getting when the old one broke off: the agent sends the rest.
    Resume { id: String, from: u64 },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    /// Ask the customer to pick a file for this viewer, who asked for one
    /// ([`Files::picked`] takes the reply, by `token`).
    Pick { viewer: ParticipantId, token: u64 },
    /// The offer or request behind that question is gone: do not ask it, or take it back.
    Withdraw { viewer: ParticipantId, token: u64 },
    /// Send the file at `path` to `viewer` as the transfer `id` (`sending::send`), until
    /// `stop` says otherwise. With its `sha256`, it was offered already: only the content
    /// from byte `from` on goes (it carries on over a new connection).
    Start {
        viewer: ParticipantId,
        id: String,
        path: PathBuf,
        name: String,
        size: u64,
        stop: Stop,
        from: u64,
        sha256: Option<String>,
    },
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

/// A rep's request for a file, waiting for the customer to pick one.
#[derive(Debug)]
struct Requested {
    token: u64,
    id: String,
}

/// A file the customer sends a rep who asked for it.
#[derive(Debug)]
struct Outgoing {
    id: String,
    path: PathBuf,
    name: String,
    size: u64,
    /// Known once the sending task has read the file through.
    sha256: Option<String>,
    sent: u64,
    stop: Stop,
}

/// Tells a sending task to stop (the customer or the rep cancelled, the rep left).
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl PartialEq for Stop {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// What a sending task reports to the main loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The file was read through: its SHA-256 (the `offer` carrying it is out).
    Hashed(String),
    /// So many bytes are handed to the channel.
    Progress(u64),
    /// It could not go on (the file could not be read, or changed size): why.
    Failed(String),
    /// The channel broke off under it: the file waits for the console's new connection
    /// as when the channel closes ([`Files::gone`]).
    Cut,
}

/// The files coming in or going out, as the customer's window shows them
/// ([`Files::incoming`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub name: String,
    pub received: u64,
    pub size: u64,
    /// Files coming at once (from several viewers).
    pub count: usize,
    /// The file goes out to a rep (`received`: bytes sent) rather than coming in.
    pub sending: bool,
}

/// Every viewer's incoming file: one at a time per viewer.
#[derive(Debug)]
pub struct Files {
    dir: PathBuf,
    max_bytes: u64,
    next_token: u64,
    offered: HashMap<ParticipantId, Offered>,
    receiving: HashMap<ParticipantId, Receiving>,
    requested: HashMap<ParticipantId, Requested>,
    outgoing: HashMap<ParticipantId, Outgoing>,
    /// Files cut off with their viewer's connection, waiting (since then) to be offered
    /// again on a new one ([`RESUME_WITHIN`]).
    paused: HashMap<ParticipantId, (Receiving, Instant)>,
    /// Files going out that were cut off the same way, waiting for the console to ask for
    /// the rest ([`Wire::Resume`]).
    paused_out: HashMap<ParticipantId, (Outgoing, Instant)>,
    /// Files the customer cancelled while they were cut off (the newest few): offered
    /// again, or asked for again, on a new connection, they are answered `cancel`.
    cancelled_cut: Vec<(ParticipantId, String)>,
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
            requested: HashMap::new(),
            outgoing: HashMap::new(),
            paused: HashMap::new(),
            paused_out: HashMap::new(),
            cancelled_cut: Vec::new(),
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
                    (Some("resume"), Some(id)) if id.len() <= MAX_ID => vec![Out::Send(
                        viewer,
                        Wire::Failed {
                            id: id.to_owned(),
                            reason: "the request to carry on could not be read".into(),
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
            Wire::Cancel { id } => {
                let mut out = self.cancel(viewer, &id);
                out.extend(self.cancel_sending(viewer, &id));
                out
            }
            Wire::Request { id } => self.request(viewer, id, allowed),
            Wire::Resume { id, from } => self.resume(viewer, id, from, allowed),
            Wire::Done { id, .. } => self.delivered(viewer, &id),
            Wire::Failed { id, reason } => self.rep_failed(viewer, &id, &reason),
            _ => Vec::new(),
        }
    }

    /// A rep asks for a file: the customer is asked to pick one.
    fn request(&mut self, viewer: ParticipantId, id: String, allowed: bool) -> Vec<Out> {
        if id.len() > MAX_ID {
            return Vec::new(); // nothing to answer it by
        }
        let refuse = |reason: &str| {
            vec![Out::Send(
                viewer,
                Wire::Refuse {
                    id: id.clone(),
                    reason: reason.into(),
                },
            )]
        };
        if self.requested.contains_key(&viewer) || self.outgoing.contains_key(&viewer) {
            return refuse("busy");
        }
        // A new request: the file cut off on its way to this viewer will not be asked for.
        let mut out = match self.paused_out.remove(&viewer) {
            Some((o, _)) => send_broke_off(viewer, &o),
            None => Vec::new(),
        };
        if !allowed {
            out.extend(refuse("not_allowed"));
            return out;
        }
        if self.max_bytes == 0 {
            out.extend(refuse("off"));
            return out;
        }
        self.next_token += 1;
        let token = self.next_token;
        self.requested.insert(viewer, Requested { token, id });
        out.push(Out::Pick { viewer, token });
        out
    }

    /// The console asks for the rest of the file `id` it was getting when its connection
    /// broke off: from byte `from` on, without the customer picking it again.
    fn resume(&mut self, viewer: ParticipantId, id: String, from: u64, allowed: bool) -> Vec<Out> {
        let failed = |why: &str| {
            Out::Send(
                viewer,
                Wire::Failed {
                    id: id.clone(),
                    reason: why.to_owned(),
                },
            )
        };
        if self.was_cancelled(viewer, &id) {
            return vec![Out::Send(viewer, Wire::Cancel { id })];
        }
        let Some((mut o, since)) = self.paused_out.remove(&viewer) else {
            return vec![failed("there is no file to carry on")];
        };
        if o.id != id {
            self.paused_out.insert(viewer, (o, since));
            return vec![failed("there is no file to carry on")];
        }
        let why = if !allowed {
            Some("only the rep in control, or the primary rep, may get files")
        } else if self.max_bytes == 0 {
            Some("file transfer is turned off on this site")
        } else if from > o.size {
            Some("more bytes than the file has")
        } else {
            None
        };
        if let Some(why) = why {
            let mut out = vec![failed(why)];
            out.extend(send_broke_off(viewer, &o));
            return out;
        }
        let stop = Stop::default();
        o.stop = stop.clone();
        o.sent = from;
        let start = Out::Start {
            viewer,
            id: o.id.clone(),
            path: o.path.clone(),
            name: o.name.clone(),
            size: o.size,
            stop,
            from,
            sha256: o.sha256.clone(),
        };
        let resumed = Text::new("file-send-resumed").arg("name", o.name.as_str());
        self.outgoing.insert(viewer, o);
        vec![start, Out::Tell(resumed)]
    }

    /// The customer's pick for the request `token` from `viewer`: a file's path, or
    /// `None` (no). A path that cannot be sent is said why, and asked for again.
    pub fn picked(&mut self, viewer: ParticipantId, token: u64, path: Option<PathBuf>) -> Vec<Out> {
        if self.requested.get(&viewer).is_none_or(|r| r.token != token) {
            return Vec::new(); // withdrawn meanwhile (and its question with it)
        }
        let again = |why: Text| vec![Out::Tell(why), Out::Pick { viewer, token }];
        let Some(path) = path else {
            let Some(request) = self.requested.remove(&viewer) else {
                return Vec::new();
            };
            return vec![
                Out::Send(
                    viewer,
                    Wire::Refuse {
                        id: request.id,
                        reason: "declined".into(),
                    },
                ),
                Out::Report(report_in(
                    FileDirection::FromCustomer,
                    viewer,
                    "(no file picked)",
                    0,
                    None,
                    FileOutcome::Declined,
                    None,
                )),
            ];
        };
        let shown = path.display().to_string();
        // Opened, not only looked at: a file the customer may not read is asked again now.
        let size = match File::open(&path).and_then(|f| f.metadata()) {
            Ok(meta) if meta.is_file() => meta.len(),
            Ok(_) => return again(Text::new("file-pick-not-a-file").arg("path", shown)),
            Err(e) => {
                return again(
                    Text::new("file-pick-unreadable")
                        .arg("path", shown)
                        .arg("why", e.to_string()),
                );
            }
        };
        if size > self.max_bytes {
            return again(
                Text::new("file-pick-too-large")
                    .arg("path", shown)
                    .arg("max", crate::flow::human_size(self.max_bytes)),
            );
        }
        // The name the rep sees: without control or invisible characters that would
        // change how it reads (the same as names coming in lose).
        let name: String = path
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .chars()
                    .filter(|c| !c.is_control() && !invisible(*c))
                    .take(255)
                    .collect()
            })
            .unwrap_or_default();
        if name.is_empty() {
            return again(Text::new("file-pick-not-a-file").arg("path", shown));
        }
        let Some(request) = self.requested.remove(&viewer) else {
            return Vec::new();
        };
        let stop = Stop::default();
        self.outgoing.insert(
            viewer,
            Outgoing {
                id: request.id.clone(),
                path: path.clone(),
                name: name.clone(),
                size,
                sha256: None,
                sent: 0,
                stop: stop.clone(),
            },
        );
        vec![Out::Start {
            viewer,
            id: request.id,
            path,
            name: name.clone(),
            size,
            stop,
            from: 0,
            sha256: None,
        }]
    }

    /// What the sending task for `viewer`'s transfer `id` reports.
    pub fn sending(&mut self, viewer: ParticipantId, id: &str, sent: Sent) -> Vec<Out> {
        let Some(o) = self.outgoing.get_mut(&viewer).filter(|o| o.id == id) else {
            return Vec::new(); // ended meanwhile
        };
        match sent {
            Sent::Hashed(sha256) => o.sha256 = Some(sha256),
            Sent::Progress(bytes) => o.sent = bytes,
            Sent::Cut => return self.pause_outgoing(viewer),
            Sent::Failed(why) => {
                return match self.take_outgoing(viewer, id) {
                    Some(o) => sending_failed(viewer, &o, &why),
                    None => Vec::new(),
                };
            }
        }
        Vec::new()
    }

    /// The file going to `viewer` as the transfer `id` (or cut off on its way), taken out
    /// of the ones going.
    fn take_outgoing(&mut self, viewer: ParticipantId, id: &str) -> Option<Outgoing> {
        if self.outgoing.get(&viewer).is_some_and(|o| o.id == id) {
            return self.outgoing.remove(&viewer);
        }
        if self
            .paused_out
            .get(&viewer)
            .is_some_and(|(o, _)| o.id == id)
        {
            return self.paused_out.remove(&viewer).map(|(o, _)| o);
        }
        None
    }

    /// The rep's console has the whole file, and its SHA-256 matched.
    fn delivered(&mut self, viewer: ParticipantId, id: &str) -> Vec<Out> {
        let Some(o) = self.take_outgoing(viewer, id) else {
            return Vec::new();
        };
        if o.sha256.is_none() || o.sent < o.size {
            // Not everything went out yet: a console cannot have checked it. It is told,
            // so both ends agree the file did not arrive.
            return sending_failed(
                viewer,
                &o,
                "the console said it had the file before it was all sent",
            );
        }
        vec![
            Out::Report(o.report(viewer, FileOutcome::Delivered)),
            Out::Tell(Text::new("file-sent").arg("name", o.name.as_str())),
        ]
    }

    /// The rep's console gave up on the file (its SHA-256 did not match, say).
    fn rep_failed(&mut self, viewer: ParticipantId, id: &str, reason: &str) -> Vec<Out> {
        let Some(o) = self.take_outgoing(viewer, id) else {
            return Vec::new();
        };
        o.stop.stop();
        let why: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        vec![
            Out::Report(o.report(viewer, FileOutcome::Failed)),
            Out::Tell(
                Text::new("file-send-failed")
                    .arg("name", o.name.as_str())
                    .arg("why", why),
            ),
        ]
    }

    /// The rep cancelled the request `id`, or the file going to it.
    fn cancel_sending(&mut self, viewer: ParticipantId, id: &str) -> Vec<Out> {
        if self.requested.get(&viewer).is_some_and(|r| r.id == id) {
            let request = self.requested.remove(&viewer).expect("checked");
            return vec![Out::Withdraw {
                viewer,
                token: request.token,
            }];
        }
        let Some(o) = self.take_outgoing(viewer, id) else {
            return Vec::new();
        };
        o.stop.stop();
        vec![
            Out::Report(o.report(viewer, FileOutcome::Cancelled)),
            Out::Tell(Text::new("file-send-cancelled").arg("name", o.name.as_str())),
        ]
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
        if self.was_cancelled(viewer, &id) {
            return vec![Out::Send(viewer, Wire::Cancel { id })];
        }
        let mut out = Vec::new();
        if let Some((r, _)) = self.paused.remove(&viewer) {
            let same = r.offer.id == id && r.offer.sha256 == sha256 && r.offer.size == size;
            let on = self.max_bytes > 0;
            if same && allowed && on && !self.receiving.contains_key(&viewer) {
                // The customer allowed it already: it carries on where it stopped.
                let from = r.received;
                let resumed = Text::new("file-resumed").arg("name", r.offer.safe.as_str());
                self.receiving.insert(viewer, r);
                return vec![
                    Out::Send(viewer, Wire::Accept { id, from }),
                    Out::Tell(resumed),
                ];
            }
            // Another file (or not allowed now): the one cut off is over.
            out.extend(broke_off(viewer, r));
        }
        if self.offered.contains_key(&viewer) || self.receiving.contains_key(&viewer) {
            out.push(refuse("busy"));
            return out;
        }
        let refused: Option<Vec<Out>> = if !allowed {
            Some(vec![refuse("not_allowed")])
        } else if !valid_hash(&sha256) || name.chars().count() > 255 || name.is_empty() {
            Some(vec![refuse("bad_name")])
        } else if self.max_bytes == 0 {
            Some(vec![refuse("off")])
        } else if size > self.max_bytes {
            Some(vec![refuse("too_large"), record(FileOutcome::TooLarge)])
        } else {
            None
        };
        if let Some(refused) = refused {
            out.extend(refused);
            return out;
        }
        let Some(safe) = safe_name(&name) else {
            out.extend([refuse("bad_name"), record(FileOutcome::Failed)]);
            return out;
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
        out.push(ask);
        out
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
                let mut out = vec![Out::Send(viewer, Wire::Accept { id, from: 0 })];
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
        let mut out = Vec::new();
        if let Some(request) = self.requested.remove(&viewer) {
            out.push(Out::Withdraw {
                viewer,
                token: request.token,
            });
        }
        out.extend(self.pause_outgoing(viewer));
        out.extend(self.gone_incoming(viewer));
        out
    }

    /// The file going to `viewer` lost its channel: once offered, it is kept for the
    /// console to ask for the rest on a new connection; before, it is over.
    fn pause_outgoing(&mut self, viewer: ParticipantId) -> Vec<Out> {
        let Some(o) = self.outgoing.remove(&viewer) else {
            return Vec::new();
        };
        o.stop.stop();
        if o.sha256.is_none() {
            return send_broke_off(viewer, &o);
        }
        let mut out = vec![Out::Tell(
            Text::new("file-send-paused").arg("name", o.name.as_str()),
        )];
        if let Some((older, _)) = self.paused_out.insert(viewer, (o, Instant::now())) {
            out.extend(send_broke_off(viewer, &older));
        }
        out
    }

    /// Every viewer something is going to or coming from, or waiting for.
    pub fn involved(&self) -> Vec<ParticipantId> {
        let mut viewers: Vec<ParticipantId> = self
            .offered
            .keys()
            .chain(self.receiving.keys())
            .chain(self.requested.keys())
            .chain(self.outgoing.keys())
            .chain(self.paused.keys())
            .chain(self.paused_out.keys())
            .copied()
            .collect();
        viewers.sort_by_key(|v| v.0);
        viewers.dedup();
        viewers
    }

    /// `viewer` left (stopped viewing, or the session): what it was sending or getting
    /// ends now, the files cut off with its connection too.
    pub fn left(&mut self, viewer: ParticipantId) -> Vec<Out> {
        let mut out = Vec::new();
        let coming = self.receiving.remove(&viewer).into_iter();
        for r in coming.chain(self.paused.remove(&viewer).map(|(r, _)| r)) {
            out.extend(broke_off(viewer, r));
        }
        let going = self.outgoing.remove(&viewer).into_iter();
        for o in going.chain(self.paused_out.remove(&viewer).map(|(o, _)| o)) {
            out.extend(send_broke_off(viewer, &o));
        }
        // The questions it asked or was asked are taken back.
        out.extend(self.gone(viewer));
        out
    }

    fn gone_incoming(&mut self, viewer: ParticipantId) -> Vec<Out> {
        if let Some(offer) = self.offered.remove(&viewer) {
            return withdrawn(viewer, offer);
        }
        let Some(r) = self.receiving.remove(&viewer) else {
            return Vec::new();
        };
        // Kept, part file and all, for the console to offer it again on a new connection.
        let paused = Text::new("file-paused").arg("name", r.offer.safe.as_str());
        let mut out = Vec::new();
        if let Some((older, _)) = self.paused.insert(viewer, (r, Instant::now())) {
            out.extend(broke_off(viewer, older));
        }
        out.push(Out::Tell(paused));
        out
    }

    /// The files cut off longer than [`RESUME_WITHIN`] before `now` are over: thrown away,
    /// and recorded as failed.
    pub fn expire(&mut self, now: Instant) -> Vec<Out> {
        let mut over: Vec<ParticipantId> = self
            .paused
            .iter()
            .filter(|(_, (_, since))| now.saturating_duration_since(*since) >= RESUME_WITHIN)
            .map(|(viewer, _)| *viewer)
            .collect();
        over.sort_by_key(|v| v.0);
        let mut out: Vec<Out> = over
            .into_iter()
            .filter_map(|viewer| self.paused.remove(&viewer).map(|(r, _)| (viewer, r)))
            .flat_map(|(viewer, r)| broke_off(viewer, r))
            .collect();
        let mut over: Vec<ParticipantId> = self
            .paused_out
            .iter()
            .filter(|(_, (_, since))| now.saturating_duration_since(*since) >= RESUME_WITHIN)
            .map(|(viewer, _)| *viewer)
            .collect();
        over.sort_by_key(|v| v.0);
        for viewer in over {
            if let Some((o, _)) = self.paused_out.remove(&viewer) {
                out.extend(send_broke_off(viewer, &o));
            }
        }
        out
    }

    /// What the customer sees of the files coming in: the first one's name (the sender's
    /// lowest id first), bytes received and size, and how many come at once; none when
    /// nothing comes.
    pub fn incoming(&self) -> Option<Incoming> {
        if let Some((_, first)) = self.receiving.iter().min_by_key(|(viewer, _)| viewer.0) {
            return Some(Incoming {
                name: first.offer.safe.clone(),
                received: first.received,
                size: first.offer.size,
                count: self.receiving.len(),
                sending: false,
            });
        }
        if let Some((_, first)) = self.outgoing.iter().min_by_key(|(viewer, _)| viewer.0) {
            return Some(Incoming {
                name: first.name.clone(),
                received: first.sent,
                size: first.size,
                count: self.outgoing.len(),
                sending: true,
            });
        }
        // Cut off and waiting: still shown, with Cancel.
        if let Some((_, (first, _))) = self.paused.iter().min_by_key(|(viewer, _)| viewer.0) {
            return Some(Incoming {
                name: first.offer.safe.clone(),
                received: first.received,
                size: first.offer.size,
                count: self.paused.len(),
                sending: false,
            });
        }
        let (_, (first, _)) = self.paused_out.iter().min_by_key(|(viewer, _)| viewer.0)?;
        Some(Incoming {
            name: first.name.clone(),
            received: first.sent,
            size: first.size,
            count: self.paused_out.len(),
            sending: true,
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
        let mut viewers: Vec<ParticipantId> = self.paused.keys().copied().collect();
        viewers.sort_by_key(|v| v.0);
        for viewer in viewers {
            let Some((r, _)) = self.paused.remove(&viewer) else {
                continue;
            };
            let _ = std::fs::remove_file(&r.part);
            self.remember_cancelled(viewer, &r.offer.id);
            out.push(Out::Report(r.report(viewer, FileOutcome::Cancelled, None)));
            out.push(Out::Tell(
                Text::new("file-you-cancelled").arg("name", r.offer.safe.as_str()),
            ));
        }
        let mut viewers: Vec<ParticipantId> = self
            .outgoing
            .keys()
            .chain(self.paused_out.keys())
            .copied()
            .collect();
        viewers.sort_by_key(|v| v.0);
        for viewer in viewers {
            let Some(o) = self.outgoing.remove(&viewer).or_else(|| {
                let (o, _) = self.paused_out.remove(&viewer)?;
                self.remember_cancelled(viewer, &o.id);
                Some(o)
            }) else {
                continue;
            };
            o.stop.stop();
            out.push(Out::Send(viewer, Wire::Cancel { id: o.id.clone() }));
            out.push(Out::Report(o.report(viewer, FileOutcome::Cancelled)));
            out.push(Out::Tell(
                Text::new("file-you-cancelled-sending").arg("name", o.name.as_str()),
            ));
        }
        out
    }

    fn remember_cancelled(&mut self, viewer: ParticipantId, id: &str) {
        if self.cancelled_cut.len() >= 16 {
            self.cancelled_cut.remove(0);
        }
        self.cancelled_cut.push((viewer, id.to_owned()));
    }

    /// Whether the customer cancelled `viewer`'s file `id` while it was cut off (said once:
    /// the console then knows).
    fn was_cancelled(&mut self, viewer: ParticipantId, id: &str) -> bool {
        let found = self
            .cancelled_cut
            .iter()
            .position(|(v, cancelled)| *v == viewer && cancelled == id);
        found.map(|at| self.cancelled_cut.remove(at)).is_some()
    }

    /// The agent stops: every file still coming is thrown away.
    pub fn abandon(&mut self) -> Vec<Out> {
        self.offered.clear();
        self.requested.clear();
        self.involved()
            .into_iter()
            .flat_map(|v| self.left(v))
            .collect()
    }

    /// The rep cancels the transfer `id`.
    fn cancel(&mut self, viewer: ParticipantId, id: &str) -> Vec<Out> {
        if self.offered.get(&viewer).is_some_and(|o| o.id == id) {
            let offer = self.offered.remove(&viewer).expect("checked");
            return withdrawn(viewer, offer);
        }
        // Cancelled while its connection was down: the console says so on the new one.
        if self
            .paused
            .get(&viewer)
            .is_some_and(|(r, _)| r.offer.id == id)
        {
            let (r, _) = self.paused.remove(&viewer).expect("checked");
            let _ = std::fs::remove_file(&r.part);
            return vec![
                Out::Report(r.report(viewer, FileOutcome::Cancelled, None)),
                Out::Tell(Text::new("file-cancelled").arg("name", r.offer.safe.as_str())),
            ];
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

impl Outgoing {
    fn report(&self, viewer: ParticipantId, outcome: FileOutcome) -> ClientMessage {
        report_in(
            FileDirection::FromCustomer,
            viewer,
            &self.name,
            self.size,
            self.sha256.as_deref(),
            outcome,
            None,
        )
    }
}

impl Drop for Files {
    /// However the agent ends, no part file stays behind (only a kill can leave one; it
    /// is hidden, and named `.<name>.<n>.tandem-part`).
    fn drop(&mut self) {
        for r in self
            .receiving
            .values()
            .chain(self.paused.values().map(|(r, _)| r))
        {
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

/// A file cut off with its viewer's connection is over: nothing is kept, and the audit
/// log says failed.
fn broke_off(viewer: ParticipantId, r: Receiving) -> Vec<Out> {
    let _ = std::fs::remove_file(&r.part);
    vec![
        Out::Report(r.report(viewer, FileOutcome::Failed, None)),
        Out::Tell(Text::new("file-broke-off").arg("name", r.offer.safe.as_str())),
    ]
}

/// A file going out that was cut off with its viewer's connection is over: the audit log
/// says failed.
fn send_broke_off(viewer: ParticipantId, o: &Outgoing) -> Vec<Out> {
    o.stop.stop();
    vec![
        Out::Report(o.report(viewer, FileOutcome::Failed)),
        Out::Tell(Text::new("file-send-broke-off").arg("name", o.name.as_str())),
    ]
}

/// A file going out that cannot go on: its task stops, the rep's console is told (it keeps
/// nothing), the audit log says failed, and the customer reads why.
fn sending_failed(viewer: ParticipantId, o: &Outgoing, why: &str) -> Vec<Out> {
    o.stop.stop();
    vec![
        Out::Send(
            viewer,
            Wire::Failed {
                id: o.id.clone(),
                reason: why.to_owned(),
            },
        ),
        Out::Report(o.report(viewer, FileOutcome::Failed)),
        Out::Tell(
            Text::new("file-send-failed")
                .arg("name", o.name.as_str())
                .arg("why", why),
        ),
    ]
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
    report_in(
        FileDirection::ToCustomer,
        peer,
        name,
        size,
        sha256,
        outcome,
        saved_as,
    )
}

fn report_in(
    direction: FileDirection,
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
        direction,
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
                Wire::Accept {
                    id: "t1".into(),
                    from: 0
                }
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
                count: 2,
                sending: false,
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

    /// A file cut off with its viewer's connection (a new connection replaced it) carries
    /// on from where it stopped when the console offers it again on the new one, without
    /// asking the customer again; anything else ends it, leaving nothing.
    #[test]
    fn a_file_cut_off_with_its_connection_carries_on_when_offered_again() {
        let dir = tempfile::tempdir().expect("dir");
        let downloads = dir.path().to_path_buf();
        let mut files = Files::new(downloads.clone(), 1 << 20);
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let viewer = ParticipantId(3);
        let again = |files: &mut Files, allowed: bool| {
            let wire = Wire::Offer {
                id: "t1".into(),
                name: "driver.bin".into(),
                size: content.len() as u64,
                sha256: sha(&content),
            };
            files.text(viewer, &wire.to_json(), allowed)
        };

        let token = offer_token(&mut files, 3, "driver.bin", &content);
        files.answer(viewer, token, true);
        files.data(viewer, &content[..100_000]);
        let cut = files.gone(viewer);
        assert_eq!(
            cut,
            [Out::Tell(
                Text::new("file-paused").arg("name", "driver.bin")
            )]
        );
        assert_eq!(listing(&downloads).len(), 1, "the part file waits");
        assert_eq!(
            files.incoming().map(|i| i.received),
            Some(100_000),
            "shown while it waits"
        );
        assert!(
            files.data(viewer, &content[100_000..120_000]).is_empty(),
            "what the old connection still brings is dropped"
        );
        let resumed = again(&mut files, true);
        assert_eq!(
            resumed[0],
            Out::Send(
                viewer,
                Wire::Accept {
                    id: "t1".into(),
                    from: 100_000
                }
            ),
            "not asked again: {resumed:?}"
        );
        assert!(!resumed.iter().any(|o| matches!(o, Out::Ask { .. })));
        let done = files.data(viewer, &content[100_000..]);
        assert_eq!(outcome(&done), Some(FileOutcome::Delivered), "{done:?}");
        assert_eq!(
            std::fs::read(downloads.join("driver.bin")).expect("saved"),
            content
        );

        // Another file offered instead: the one cut off is over, the new one is asked.
        let token = offer_token(&mut files, 3, "driver.bin", &content);
        files.answer(viewer, token, true);
        files.data(viewer, &content[..100_000]);
        files.gone(viewer);
        let other = offer(&mut files, 3, "other.bin", b"other");
        assert_eq!(outcome(&other), Some(FileOutcome::Failed));
        assert!(other.iter().any(|o| matches!(o, Out::Ask { .. })));
        assert_eq!(listing(&downloads), ["driver.bin"], "no part file left");
        files.gone(viewer);

        // No longer allowed to send (control passed on meanwhile): over, and refused.
        let token = offer_token(&mut files, 3, "driver.bin", &content);
        files.answer(viewer, token, true);
        files.data(viewer, &content[..100_000]);
        files.gone(viewer);
        let refused = again(&mut files, false);
        assert_eq!(outcome(&refused), Some(FileOutcome::Failed));
        assert!(refused.contains(&Out::Send(
            viewer,
            Wire::Refuse {
                id: "t1".into(),
                reason: "not_allowed".into()
            }
        )));
        assert_eq!(listing(&downloads), ["driver.bin"]);

        // Cancelled by the rep while cut off (said on the new connection), or by the
        // customer: recorded so, nothing left.
        for by_rep in [true, false] {
            let token = offer_token(&mut files, 3, "driver.bin", &content);
            files.answer(viewer, token, true);
            files.data(viewer, &content[..100_000]);
            files.gone(viewer);
            let cancelled = if by_rep {
                files.text(viewer, &Wire::Cancel { id: "t1".into() }.to_json(), true)
            } else {
                // Still shown on the window while it waits, with Cancel.
                assert_eq!(
                    files.incoming().map(|i| (i.name, i.received)),
                    Some(("driver.bin".into(), 100_000))
                );
                files.cancel_incoming()
            };
            assert_eq!(outcome(&cancelled), Some(FileOutcome::Cancelled));
            assert_eq!(listing(&downloads), ["driver.bin"]);
            assert!(files.expire(Instant::now() + RESUME_WITHIN).is_empty());
            if !by_rep {
                // Offered again on the new connection: not asked again, but cancelled.
                assert_eq!(
                    again(&mut files, true),
                    [Out::Send(viewer, Wire::Cancel { id: "t1".into() })]
                );
            }
        }

        // Its rep leaves while one waits: over at once.
        let token = offer_token(&mut files, 3, "driver.bin", &content);
        files.answer(viewer, token, true);
        files.data(viewer, &content[..100_000]);
        files.gone(viewer);
        let left = files.left(viewer);
        assert_eq!(outcome(&left), Some(FileOutcome::Failed));
        assert_eq!(listing(&downloads), ["driver.bin"]);
        assert!(files.expire(Instant::now() + RESUME_WITHIN).is_empty());

        // The agent stops while one waits: nothing left.
        let token = offer_token(&mut files, 3, "driver.bin", &content);
        files.answer(viewer, token, true);
        files.data(viewer, &content[..100_000]);
        files.gone(viewer);
        let stopped = files.abandon();
        assert_eq!(outcome(&stopped), Some(FileOutcome::Failed));
        assert!(
            !stopped
                .iter()
                .any(|o| matches!(o, Out::Tell(t) if t.id == "file-paused")),
            "{stopped:?}"
        );
        assert_eq!(listing(&downloads), ["driver.bin"]);
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
        assert_eq!(outcome(&cut), None, "cut off, it waits to be offered again");
        assert!(files.expire(Instant::now()).is_empty());
        let over = files.expire(Instant::now() + RESUME_WITHIN);
        assert_eq!(outcome(&over), Some(FileOutcome::Failed));
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
            Out::Send(
                ParticipantId(3),
                Wire::Accept {
                    id: "t1".into(),
                    from: 0
                }
            )
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

    fn request(files: &mut Files, viewer: u64, id: &str, allowed: bool) -> Vec<Out> {
        let wire = Wire::Request { id: id.into() };
        files.text(ParticipantId(viewer), &wire.to_json(), allowed)
    }

    fn reason(out: &[Out]) -> Option<&str> {
        out.iter().find_map(|o| match o {
            Out::Send(_, Wire::Refuse { reason, .. }) => Some(reason.as_str()),
            _ => None,
        })
    }

    #[test]
    fn a_requested_file_goes_only_once_the_customer_picks_one_and_is_recorded_both_ways() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("support.log");
        std::fs::write(&log, b"all is well\n").expect("write");
        let mut files = Files::new(dir.path().join("Downloads"), 1 << 20);
        let viewer = ParticipantId(4);
        let asked = request(&mut files, 4, "r1", true);
        let [Out::Pick { viewer: v, token }] = asked[..] else {
            panic!("the customer is asked to pick: {asked:?}")
        };
        assert_eq!(v, viewer);
        // Only one request at a time from a viewer; and who may is checked.
        assert_eq!(reason(&request(&mut files, 4, "r2", true)), Some("busy"));
        assert_eq!(
            reason(&request(&mut files, 5, "r3", false)),
            Some("not_allowed")
        );
        // A folder, or a path that is not there, is said why and asked for again.
        for wrong in [dir.path().to_path_buf(), dir.path().join("missing.txt")] {
            let again = files.picked(viewer, token, Some(wrong));
            assert!(
                matches!(&again[..], [Out::Tell(_), Out::Pick { token: t, .. }] if *t == token),
                "{again:?}"
            );
        }
        // An answer to another question changes nothing.
        assert!(
            files
                .picked(viewer, token + 100, Some(log.clone()))
                .is_empty()
        );
        let started = files.picked(viewer, token, Some(log.clone()));
        let Some(Out::Start {
            id,
            name,
            size,
            stop,
            ..
        }) = started.first()
        else {
            panic!("the file goes: {started:?}")
        };
        assert_eq!(
            (id.as_str(), name.as_str(), *size),
            ("r1", "support.log", 12)
        );
        let stop = stop.clone();
        let shown = files.incoming().expect("shown going out");
        assert!(shown.sending && shown.name == "support.log");
        // The console's `done` before every byte went out is not believed.
        let hash = sha(b"all is well\n");
        assert!(
            files
                .sending(viewer, "r1", Sent::Hashed(hash.clone()))
                .is_empty()
        );
        assert!(files.sending(viewer, "r1", Sent::Progress(12)).is_empty());
        let done = Wire::Done {
            id: "r1".into(),
            saved_as: "support.log".into(),
        };
        let delivered = files.text(viewer, &done.to_json(), true);
        assert!(
            delivered
                .iter()
                .any(|o| matches!(o, Out::Report(ClientMessage::FileTransfer {
                direction: FileDirection::FromCustomer,
                outcome: FileOutcome::Delivered,
                sha256: Some(h),
                size: 12,
                name,
                ..
            }) if *h == hash && name == "support.log")),
            "{delivered:?}"
        );
        assert!(!stop.stopped(), "a finished transfer is not stopped");
        assert!(files.incoming().is_none());

        // Said no: refused as declined, and recorded.
        let asked = request(&mut files, 4, "r4", true);
        let [Out::Pick { token, .. }] = asked[..] else {
            panic!("{asked:?}")
        };
        let no = files.picked(viewer, token, None);
        assert_eq!(reason(&no), Some("declined"));
        assert_eq!(outcome(&no), Some(FileOutcome::Declined));
    }

    #[test]
    fn a_file_going_out_carries_on_when_the_console_asks_for_the_rest() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("big.bin");
        std::fs::write(&log, vec![7u8; 4096]).expect("write");
        let mut files = Files::new(dir.path().join("Downloads"), 1 << 20);
        let viewer = ParticipantId(4);
        let hash = sha(&[7u8; 4096]);
        let cut = |files: &mut Files, id: &str| -> Stop {
            let asked = request(files, 4, id, true);
            let [Out::Pick { token, .. }] = asked[..] else {
                panic!("{asked:?}")
            };
            let stop = match files.picked(viewer, token, Some(log.clone())).first() {
                Some(Out::Start { stop, .. }) => stop.clone(),
                other => panic!("{other:?}"),
            };
            files.sending(viewer, id, Sent::Hashed(hash.clone()));
            files.sending(viewer, id, Sent::Progress(2048));
            let out = files.gone(viewer);
            assert_eq!(
                out,
                [Out::Tell(
                    Text::new("file-send-paused").arg("name", "big.bin")
                )]
            );
            assert!(stop.stopped(), "the old task stops");
            stop
        };
        let resume = |files: &mut Files, id: &str, from: u64, allowed: bool| {
            let wire = Wire::Resume {
                id: id.into(),
                from,
            };
            files.text(viewer, &wire.to_json(), allowed)
        };
        let failed = |out: &[Out]| {
            out.iter()
                .any(|o| matches!(o, Out::Send(_, Wire::Failed { .. })))
        };

        cut(&mut files, "a");
        assert_eq!(
            files.incoming().map(|i| (i.sending, i.received)),
            Some((true, 2048)),
            "shown while it waits"
        );
        let out = resume(&mut files, "a", 1024, true);
        match out.first() {
            Some(Out::Start {
                from,
                sha256,
                stop,
                path,
                ..
            }) => {
                assert_eq!((*from, sha256.as_deref()), (1024, Some(hash.as_str())));
                assert_eq!(path, &log);
                assert!(!stop.stopped());
            }
            other => panic!("no new start: {other:?}"),
        }
        files.sending(viewer, "a", Sent::Progress(4096));
        let done = files.text(
            viewer,
            &Wire::Done {
                id: "a".into(),
                saved_as: "big.bin".into(),
            }
            .to_json(),
            true,
        );
        assert_eq!(outcome(&done), Some(FileOutcome::Delivered));

        // Nothing cut off, or another id: nothing goes, and the console is told.
        assert!(failed(&resume(&mut files, "a", 0, true)));
        cut(&mut files, "b");
        assert!(failed(&resume(&mut files, "x", 0, true)));
        assert!(files.expire(Instant::now()).is_empty(), "still waits");
        let over = files.expire(Instant::now() + RESUME_WITHIN);
        assert_eq!(outcome(&over), Some(FileOutcome::Failed));
        // More than the file has, or no longer allowed: over.
        for (from, allowed) in [(5000, true), (0, false)] {
            cut(&mut files, "c");
            let out = resume(&mut files, "c", from, allowed);
            assert!(failed(&out));
            assert_eq!(outcome(&out), Some(FileOutcome::Failed));
            assert!(!out.iter().any(|o| matches!(o, Out::Start { .. })));
        }
        // The task finds the channel broken before the driver hears it closed: the same.
        let asked = request(&mut files, 4, "g", true);
        let [Out::Pick { token, .. }] = asked[..] else {
            panic!("{asked:?}")
        };
        files.picked(viewer, token, Some(log.clone()));
        files.sending(viewer, "g", Sent::Hashed(hash.clone()));
        let paused = files.sending(viewer, "g", Sent::Cut);
        assert_eq!(
            paused,
            [Out::Tell(
                Text::new("file-send-paused").arg("name", "big.bin")
            )]
        );
        assert!(files.gone(viewer).is_empty(), "paused once");
        assert!(matches!(
            resume(&mut files, "g", 0, true).first(),
            Some(Out::Start { from: 0, .. })
        ));
        files.gone(viewer);
        // The customer cancels it while it waits: asked for again, it is cancelled.
        let out = files.cancel_incoming();
        assert_eq!(outcome(&out), Some(FileOutcome::Cancelled));
        assert_eq!(
            resume(&mut files, "g", 0, true),
            [Out::Send(viewer, Wire::Cancel { id: "g".into() })]
        );
        // An unreadable request to carry on is answered.
        let out = files.text(viewer, r#"{"type":"resume","id":"h","from":"x"}"#, true);
        assert!(failed(&out), "{out:?}");

        // Cancelled by the rep meanwhile, or another file asked for: over.
        cut(&mut files, "d");
        let out = files.text(viewer, &Wire::Cancel { id: "d".into() }.to_json(), true);
        assert_eq!(outcome(&out), Some(FileOutcome::Cancelled));
        cut(&mut files, "e");
        let out = request(&mut files, 4, "f", true);
        assert_eq!(outcome(&out), Some(FileOutcome::Failed));
        assert!(out.iter().any(|o| matches!(o, Out::Pick { .. })));
    }

    #[test]
    fn a_file_going_out_stops_when_either_side_cancels_or_the_rep_goes() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("big.bin");
        std::fs::write(&log, vec![7u8; 4096]).expect("write");
        let mut files = Files::new(dir.path().join("Downloads"), 1 << 20);
        let viewer = ParticipantId(4);
        let start = |files: &mut Files, id: &str| -> Stop {
            let asked = request(files, 4, id, true);
            let [Out::Pick { token, .. }] = asked[..] else {
                panic!("{asked:?}")
            };
            match files.picked(viewer, token, Some(log.clone())).first() {
                Some(Out::Start { stop, .. }) => stop.clone(),
                other => panic!("{other:?}"),
            }
        };
        // The rep cancels.
        let stop = start(&mut files, "a");
        let out = files.text(viewer, &Wire::Cancel { id: "a".into() }.to_json(), true);
        assert!(stop.stopped());
        assert_eq!(outcome(&out), Some(FileOutcome::Cancelled));
        // The customer cancels: the rep is told.
        let stop = start(&mut files, "b");
        let out = files.cancel_incoming();
        assert!(stop.stopped());
        assert!(out.contains(&Out::Send(viewer, Wire::Cancel { id: "b".into() })));
        // The console found the hash wrong.
        let stop = start(&mut files, "c");
        let failed = Wire::Failed {
            id: "c".into(),
            reason: "its SHA-256 does not match".into(),
        };
        let out = files.text(viewer, &failed.to_json(), true);
        assert!(stop.stopped());
        assert_eq!(outcome(&out), Some(FileOutcome::Failed));
        // The rep's channel closes.
        let stop = start(&mut files, "d");
        let out = files.gone(viewer);
        assert!(stop.stopped());
        assert_eq!(outcome(&out), Some(FileOutcome::Failed));
        // A request cancelled before the pick takes its question back.
        let asked = request(&mut files, 4, "e", true);
        let [Out::Pick { token, .. }] = asked[..] else {
            panic!("{asked:?}")
        };
        let out = files.text(viewer, &Wire::Cancel { id: "e".into() }.to_json(), true);
        assert_eq!(out, [Out::Withdraw { viewer, token }]);
        assert!(files.picked(viewer, token, Some(log.clone())).is_empty());
        // Too large for the site: asked again; with transfer off, refused at once.
        files.set_max_bytes(100);
        let asked = request(&mut files, 4, "f", true);
        let [Out::Pick { token, .. }] = asked[..] else {
            panic!("{asked:?}")
        };
        let again = files.picked(viewer, token, Some(log.clone()));
        assert!(
            matches!(&again[..], [Out::Tell(_), Out::Pick { .. }]),
            "{again:?}"
        );
        files.picked(viewer, token, None);
        files.set_max_bytes(0);
        assert_eq!(reason(&request(&mut files, 4, "g", true)), Some("off"));
    }
}
