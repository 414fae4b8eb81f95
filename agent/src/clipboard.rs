//! The clipboard's text between the customer's computer and the rep who controls it
//! (docs/protocol.md, "Clipboard"), over each viewer's `tandem-clipboard` data channel:
//! never through the server.
//!
//! It flows only while someone holds control (C1: the customer's Allow for control says
//! so), and only with the holder: what the customer copies after the grant goes to the
//! holder's console; what the holder pastes into the console's "Paste to…" goes onto the
//! customer's clipboard. What was on the clipboard before the grant stays there. Text only,
//! up to [`MAX_TEXT_BYTES`].
//!
//! The system clipboard is read and written on a thread of its own ([`System`]): on X11 a
//! read asks the selection's owner and may wait on it, which must not hold up the agent's
//! main loop. It is read only when the system says it may have changed ([`Changes`]: a new
//! owner of X11's `CLIPBOARD`, Windows' clipboard sequence number), not every look.

use std::sync::mpsc as sync_mpsc;
use std::time::Duration;

use tandem_protocol::ParticipantId;
use tokio::sync::mpsc;

/// The label of the data channel the clipboard goes over.
pub const CLIPBOARD_CHANNEL: &str = "tandem-clipboard";
/// The most text passed either way, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;
/// The longest message on the channel, in bytes: the text as JSON (quotes, newlines and
/// control characters take more room escaped). Every browser and webrtc-rs carry 64 KiB.
pub const MAX_MESSAGE_BYTES: usize = 60 * 1024;
/// How often the clipboard is read while it is watched.
const POLL: Duration = Duration::from_millis(300);

/// A message on the clipboard channel, as JSON text.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Wire {
    /// Text copied on one side, for the other's clipboard.
    Text { text: String },
    /// The agent put the holder's text on the customer's clipboard.
    Stored,
    /// Not passed on: `not_allowed` (only the holder of control, and only while control
    /// is held), `too_large` (over [`MAX_TEXT_BYTES`]), `unreadable` (not a message of
    /// this channel), `unavailable` (the system clipboard could not be used).
    Refused { reason: String },
}

impl Wire {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a wire message serializes")
    }
}

/// What the agent does for a message from a viewer's clipboard channel.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Put this text on the customer's clipboard (then [`Wire::Stored`], or
    /// [`Wire::Refused`] `unavailable`, to the viewer).
    Store(String),
    /// Answer the viewer with this.
    Answer(Wire),
}

/// What a viewer sent on its clipboard channel, judged: `holder` is who holds control
/// now. Only the holder's text, within the size, is stored.
pub fn received(viewer: ParticipantId, holder: Option<ParticipantId>, text: &str) -> Reply {
    let refuse = |reason: &str| {
        Reply::Answer(Wire::Refused {
            reason: reason.into(),
        })
    };
    if text.len() > MAX_MESSAGE_BYTES {
        return refuse("too_large");
    }
    match serde_json::from_str::<Wire>(text) {
        Ok(Wire::Text { text }) => {
            if holder != Some(viewer) {
                refuse("not_allowed")
            } else if text.len() > MAX_TEXT_BYTES {
                refuse("too_large")
            } else {
                Reply::Store(text)
            }
        }
        _ => refuse("unreadable"),
    }
}

/// What the agent sends the holder when the customer's clipboard text changed.
pub fn copied(text: String) -> Wire {
    let wire = Wire::Text { text };
    match &wire {
        Wire::Text { text }
            if text.len() <= MAX_TEXT_BYTES && wire.to_json().len() <= MAX_MESSAGE_BYTES =>
        {
            wire
        }
        _ => Wire::Refused {
            reason: "too_large".into(),
        },
    }
}

/// What the clipboard thread tells the main loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The customer copied this text while `holder` held control (since that holder's
    /// grant, or since the agent last stored text there itself). The main loop passes it
    /// on only if `holder` still holds control.
    Copied(ParticipantId, String),
    /// Text was stored for this viewer (`true`), or could not be (`false`).
    Stored(ParticipantId, bool),
}

enum Command {
    /// Watch for changes for this holder of control (what is there now is not one), or
    /// stop watching (`None`).
    Watch(Option<ParticipantId>),
    /// Put text on the clipboard for a viewer.
    Store(ParticipantId, String),
}

/// The system clipboard, on its own thread; ends when dropped.
pub struct System {
    commands: sync_mpsc::Sender<Command>,
    pub events: mpsc::UnboundedReceiver<Event>,
    /// Who the thread watches for.
    watching: Option<ParticipantId>,
}

impl System {
    pub fn start() -> Self {
        let (commands, rx) = sync_mpsc::channel();
        let (tx, events) = mpsc::unbounded_channel();
        let spawned = std::thread::Builder::new()
            .name("clipboard".into())
            .spawn(move || run(&rx, &tx));
        if let Err(e) = spawned {
            crate::peers::trace(&format!("clipboard: no thread: {e}"));
        }
        Self {
            commands,
            events,
            watching: None,
        }
    }

    /// Watch the clipboard for new text for the holder of control (`None`: nobody holds
    /// it). Only a change of holder starts over: what is on the clipboard then is the
    /// starting point, never sent.
    pub fn watch(&mut self, holder: Option<ParticipantId>) {
        if holder != self.watching {
            self.watching = holder;
            let _ = self.commands.send(Command::Watch(holder));
        }
    }

    /// Put `text` on the clipboard; [`Event::Stored`] follows.
    pub fn store(&self, viewer: ParticipantId, text: String) {
        let _ = self.commands.send(Command::Store(viewer, text));
    }
}

/// What the clipboard held when last looked at.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// Not known: the starting point could not be read yet. The next read is the starting
    /// point, not news (text that was there before the grant must never go out).
    Unknown,
    /// This text, or none (empty, or not text).
    Known(Option<String>),
}

/// How often a clipboard that could not be opened is tried again while control is held.
const REOPEN: Duration = Duration::from_secs(2);

/// A read that fails at once means no text (X11: nobody owns the clipboard); one that
/// fails slowly is an owner that did not answer in time, whose text is not known.
const NO_ANSWER: Duration = Duration::from_secs(1);

/// The clipboard's text now: `Known(None)` for none, `Unknown` when it could not be read.
fn read(board: &mut Option<arboard::Clipboard>) -> Seen {
    let Some(board) = board.as_mut() else {
        return Seen::Unknown;
    };
    let started = std::time::Instant::now();
    match board.get_text() {
        Ok(text) => Seen::Known(Some(text)),
        Err(arboard::Error::ContentNotAvailable) if started.elapsed() < NO_ANSWER => {
            Seen::Known(None)
        }
        Err(e) => {
            crate::peers::trace(&format!("clipboard: not read: {e}"));
            Seen::Unknown
        }
    }
}

/// Tells, without reading the clipboard, whether it may have changed since the last look.
/// Where the system cannot say ([`Changes::open`] gave none), it is read at every look.
#[cfg(all(unix, not(target_os = "macos")))]
pub struct Changes {
    conn: x11rb::rust_connection::RustConnection,
}

#[cfg(all(unix, not(target_os = "macos")))]
impl Changes {
    /// Told by XFixes of every new owner of `CLIPBOARD` on `display` (`None`: `$DISPLAY`):
    /// a program that copies takes the selection, every time.
    pub fn open(display: Option<&str>) -> Option<Self> {
        use x11rb::connection::Connection as _;
        use x11rb::protocol::xfixes::{ConnectionExt as _, SelectionEventMask};
        use x11rb::protocol::xproto::{ConnectionExt as _, CreateWindowAux, WindowClass};
        let (conn, screen) = x11rb::rust_connection::RustConnection::connect(display).ok()?;
        let root = conn.setup().roots.get(screen)?.root;
        conn.xfixes_query_version(5, 0).ok()?.reply().ok()?;
        let window = conn.generate_id().ok()?;
        conn.create_window(
            0,
            window,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new(),
        )
        .ok()?;
        let clipboard = conn
            .intern_atom(false, b"CLIPBOARD")
            .ok()?
            .reply()
            .ok()?
            .atom;
        let mask = SelectionEventMask::SET_SELECTION_OWNER
            | SelectionEventMask::SELECTION_WINDOW_DESTROY
            | SelectionEventMask::SELECTION_CLIENT_CLOSE;
        conn.xfixes_select_selection_input(window, clipboard, mask)
            .ok()?
            .check()
            .ok()?;
        Some(Self { conn })
    }

    /// Whether the clipboard changed hands since the last call (yes when the connection
    /// failed: then it is read).
    pub fn changed(&mut self) -> bool {
        use x11rb::connection::Connection as _;
        let mut changed = false;
        loop {
            match self.conn.poll_for_event() {
                Ok(Some(x11rb::protocol::Event::XfixesSelectionNotify(_))) => changed = true,
                Ok(Some(_)) => {}
                Ok(None) => return changed,
                Err(_) => return true,
            }
        }
    }
}

/// Windows counts every change of the clipboard.
#[cfg(windows)]
pub struct Changes {
    last: u32,
}

#[cfg(windows)]
impl Changes {
    pub fn open(_display: Option<&str>) -> Option<Self> {
        Some(Self { last: sequence() })
    }

    pub fn changed(&mut self) -> bool {
        let now = sequence();
        // 0: the system would not say (no access to the window station): read.
        now == 0 || std::mem::replace(&mut self.last, now) != now
    }
}

/// The clipboard's sequence number (0 when the system does not give it).
#[cfg(windows)]
#[allow(unsafe_code)]
fn sequence() -> u32 {
    // SAFETY: GetClipboardSequenceNumber takes no arguments and only reads a counter.
    unsafe { windows::Win32::System::DataExchange::GetClipboardSequenceNumber() }
}

/// Elsewhere the clipboard is read at every look.
#[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
pub struct Changes;

#[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
impl Changes {
    pub fn open(_display: Option<&str>) -> Option<Self> {
        None
    }

    pub fn changed(&mut self) -> bool {
        true
    }
}

/// The clipboard thread: opened when first needed (a desktop without a clipboard leaves
/// the rest of the agent alone), looked at every [`POLL`] while someone holds control, and
/// read when it may have changed.
fn run(commands: &sync_mpsc::Receiver<Command>, events: &mpsc::UnboundedSender<Event>) {
    let mut board: Option<arboard::Clipboard> = None;
    let mut changes: Option<Changes> = None;
    let open = |board: &mut Option<arboard::Clipboard>| -> bool {
        if board.is_none() {
            match arboard::Clipboard::new() {
                Ok(b) => *board = Some(b),
                Err(e) => crate::peers::trace(&format!("clipboard: unavailable: {e}")),
            }
        }
        board.is_some()
    };
    let mut holder: Option<ParticipantId> = None;
    let mut seen = Seen::Unknown;
    let mut reopen_at = std::time::Instant::now();
    loop {
        let command = if holder.is_some() {
            match commands.recv_timeout(POLL) {
                Ok(command) => Some(command),
                Err(sync_mpsc::RecvTimeoutError::Timeout) => None,
                Err(sync_mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match commands.recv() {
                Ok(command) => Some(command),
                Err(_) => return,
            }
        };
        match command {
            Some(Command::Watch(who)) => {
                holder = who;
                seen = Seen::Unknown;
                if holder.is_some() {
                    if changes.is_none() {
                        changes = Changes::open(None);
                    }
                    if open(&mut board) {
                        // What changed before now is in the starting point.
                        if let Some(c) = changes.as_mut() {
                            c.changed();
                        }
                        seen = read(&mut board);
                    } else {
                        // Tried again while control is held (an X server too busy to
                        // take one more client at this moment, say).
                        reopen_at = std::time::Instant::now() + REOPEN;
                    }
                }
                crate::peers::trace(&match holder {
                    Some(viewer) => format!("clipboard: watching for viewer {viewer}"),
                    None => "clipboard: not watching".to_owned(),
                });
            }
            Some(Command::Store(viewer, text)) => {
                let stored = open(&mut board)
                    && board
                        .as_mut()
                        .is_some_and(|b| b.set_text(text.as_str()).is_ok());
                if stored {
                    crate::peers::trace(&format!(
                        "clipboard: stored {} bytes from viewer {viewer}",
                        text.len()
                    ));
                    seen = Seen::Known(Some(text));
                }
                if events.send(Event::Stored(viewer, stored)).is_err() {
                    return;
                }
            }
            None => {
                let Some(watched) = holder else { continue };
                if board.is_none() {
                    let now = std::time::Instant::now();
                    if now < reopen_at {
                        continue;
                    }
                    if !open(&mut board) {
                        reopen_at = now + REOPEN;
                        continue;
                    }
                    // Opened late: what is there now is the starting point (read below,
                    // as `seen` is still unknown).
                }
                // Nothing new since the last read (a starting point not read yet is read).
                if seen != Seen::Unknown && changes.as_mut().is_some_and(|c| !c.changed()) {
                    continue;
                }
                let now = read(&mut board);
                if now == Seen::Unknown {
                    continue;
                }
                let before = std::mem::replace(&mut seen, now);
                if before == Seen::Unknown {
                    continue; // the starting point, read late
                }
                if let (Seen::Known(Some(text)), true) = (&seen, seen != before)
                    && !text.is_empty()
                {
                    crate::peers::trace(&format!("clipboard: copied {} bytes", text.len()));
                    if events.send(Event::Copied(watched, text.clone())).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLDER: ParticipantId = ParticipantId(3);
    const OTHER: ParticipantId = ParticipantId(4);

    fn text(t: &str) -> String {
        Wire::Text { text: t.into() }.to_json()
    }

    fn refused(reason: &str) -> Reply {
        Reply::Answer(Wire::Refused {
            reason: reason.into(),
        })
    }

    #[test]
    fn c1_only_the_holder_of_control_puts_text_on_the_clipboard() {
        assert_eq!(
            received(HOLDER, Some(HOLDER), &text("Grüße, Åse ✓")),
            Reply::Store("Grüße, Åse ✓".into())
        );
        assert_eq!(
            received(OTHER, Some(HOLDER), &text("x")),
            refused("not_allowed")
        );
        assert_eq!(received(HOLDER, None, &text("x")), refused("not_allowed"));
    }

    #[test]
    fn text_over_the_limit_is_refused_either_way() {
        let big = "é".repeat(MAX_TEXT_BYTES / 2 + 1);
        assert_eq!(
            received(HOLDER, Some(HOLDER), &text(&big)),
            refused("too_large")
        );
        let huge = "a".repeat(MAX_TEXT_BYTES * 4);
        assert_eq!(
            received(HOLDER, Some(HOLDER), &text(&huge)),
            refused("too_large")
        );
        assert_eq!(
            copied(big),
            Wire::Refused {
                reason: "too_large".into()
            }
        );
        let fits = "a".repeat(MAX_TEXT_BYTES);
        assert_eq!(copied(fits.clone()), Wire::Text { text: fits });
        // Within the text's limit, but twice that escaped (a quote is \").
        let quotes = "\"".repeat(MAX_TEXT_BYTES);
        assert_eq!(
            copied(quotes),
            Wire::Refused {
                reason: "too_large".into()
            }
        );
    }

    #[test]
    fn what_is_not_a_clipboard_message_is_refused() {
        for bad in [
            "",
            "not json",
            r#"{"type":"stored"}"#,
            r#"{"type":"text"}"#,
            r#"{"type":"text","text":5}"#,
        ] {
            assert_eq!(
                received(HOLDER, Some(HOLDER), bad),
                refused("unreadable"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_wire_is_the_protocols() {
        assert_eq!(text("hi"), r#"{"type":"text","text":"hi"}"#);
        assert_eq!(Wire::Stored.to_json(), r#"{"type":"stored"}"#);
        assert_eq!(
            Wire::Refused {
                reason: "too_large".into()
            }
            .to_json(),
            r#"{"type":"refused","reason":"too_large"}"#
        );
    }

    /// The change check on a real X server: copying with xclip is seen, and nothing else.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_copy_on_x11_is_told_without_reading_the_clipboard() {
        use std::io::{BufRead, BufReader, Write};
        use std::process::{Child, Command, Stdio};
        /// Killed however the test ends, a failed assertion too.
        struct Killed(Child);
        impl Drop for Killed {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "64x64x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (Debian package xvfb; cargo xtask test installs it)");
        let mut line = String::new();
        BufReader::new(xvfb.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("Xvfb prints its display number");
        let display = format!(":{}", line.trim());
        let _xvfb = Killed(xvfb);
        let mut changes = Changes::open(Some(&display)).expect("XFixes on Xvfb");
        assert!(!changes.changed(), "nothing copied yet");
        let mut xclip = Killed(
            Command::new("xclip")
                .args(["-selection", "clipboard", "-display", &display])
                .stdin(Stdio::piped())
                .spawn()
                .expect("xclip runs (Debian package xclip; cargo xtask test installs it)"),
        );
        xclip
            .0
            .stdin
            .take()
            .expect("stdin")
            .write_all("blåbær".as_bytes())
            .expect("text for xclip");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut seen = false;
        while !seen && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            seen = changes.changed();
        }
        assert!(seen, "the copy is told");
        assert!(!changes.changed(), "and told once");
    }
}
