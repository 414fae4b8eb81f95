//! A small X client that records every key, button and motion event it receives, as an
//! application on the customer's desktop would see them (for remote control tests).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateWindowAux, EventMask, InputFocus, KeyButMask, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// One event as the recording window received it; coordinates are the window's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XInput {
    Motion {
        x: i16,
        y: i16,
    },
    ButtonPress {
        button: u8,
        x: i16,
        y: i16,
    },
    ButtonRelease {
        button: u8,
        x: i16,
        y: i16,
    },
    /// `text` is the character the key types, with the Shift state it was pressed in.
    KeyPress {
        keycode: u8,
        text: Option<char>,
    },
    KeyRelease {
        keycode: u8,
    },
}

/// A window that records its input. It takes the keyboard focus when it is created.
#[derive(Debug)]
pub struct InputRecorder {
    pub window: u32,
    events: Arc<Mutex<Vec<XInput>>>,
}

/// The character of an X keysym, for Latin-1 and Unicode keysyms.
fn keysym_char(keysym: u32) -> Option<char> {
    match keysym {
        0x20..=0x7e | 0xa0..=0xff => char::from_u32(keysym),
        0x0100_0000..=0x0110_ffff => char::from_u32(keysym - 0x0100_0000),
        _ => None,
    }
}

struct Keymap {
    first: u8,
    per: usize,
    syms: Vec<u32>,
}

impl Keymap {
    fn load(conn: &RustConnection) -> anyhow::Result<Self> {
        let setup = conn.setup();
        let (first, last) = (setup.min_keycode, setup.max_keycode);
        let reply = conn
            .get_keyboard_mapping(first, last - first + 1)?
            .reply()?;
        Ok(Self {
            first,
            per: usize::from(reply.keysyms_per_keycode),
            syms: reply.keysyms,
        })
    }

    fn char_of(&self, keycode: u8, shift: bool) -> Option<char> {
        let base = usize::from(keycode.checked_sub(self.first)?) * self.per;
        let plain = *self.syms.get(base)?;
        let shifted = self.syms.get(base + 1).copied().filter(|s| *s != 0);
        let sym = if shift {
            shifted.unwrap_or(plain)
        } else {
            plain
        };
        keysym_char(sym)
    }
}

impl InputRecorder {
    /// Open a window of one colour at (x, y) on `display` and record what reaches it.
    pub fn start(display: &str, rgb: u32, x: i16, y: i16, w: u16, h: u16) -> anyhow::Result<Self> {
        let (conn, n) = RustConnection::connect(Some(display))
            .with_context(|| format!("cannot open display {display}"))?;
        let root = conn.setup().roots[n].root;
        let window = conn.generate_id()?;
        let mask = EventMask::KEY_PRESS
            | EventMask::KEY_RELEASE
            | EventMask::BUTTON_PRESS
            | EventMask::BUTTON_RELEASE
            | EventMask::POINTER_MOTION
            | EventMask::EXPOSURE;
        conn.create_window(
            0,
            window,
            root,
            x,
            y,
            w,
            h,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new()
                .background_pixel(rgb)
                .event_mask(mask),
        )?;
        conn.map_window(window)?;
        conn.sync()?;
        // Wait until it shows, then take the keyboard focus.
        loop {
            if let Event::Expose(_) = conn.wait_for_event()? {
                break;
            }
        }
        conn.set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)?;
        conn.sync()?;
        let mut keymap = Keymap::load(&conn)?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let recorded = events.clone();
        std::thread::spawn(move || {
            while let Ok(event) = conn.wait_for_event() {
                let input = match event {
                    Event::MotionNotify(e) => XInput::Motion {
                        x: e.event_x,
                        y: e.event_y,
                    },
                    Event::ButtonPress(e) => XInput::ButtonPress {
                        button: e.detail,
                        x: e.event_x,
                        y: e.event_y,
                    },
                    Event::ButtonRelease(e) => XInput::ButtonRelease {
                        button: e.detail,
                        x: e.event_x,
                        y: e.event_y,
                    },
                    Event::KeyPress(e) => XInput::KeyPress {
                        keycode: e.detail,
                        text: keymap.char_of(e.detail, e.state.contains(KeyButMask::SHIFT)),
                    },
                    Event::KeyRelease(e) => XInput::KeyRelease { keycode: e.detail },
                    Event::MappingNotify(_) => {
                        if let Ok(k) = Keymap::load(&conn) {
                            keymap = k;
                        }
                        continue;
                    }
                    _ => continue,
                };
                recorded
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(input);
            }
        });
        Ok(Self { window, events })
    }

    pub fn events(&self) -> Vec<XInput> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forget what was recorded so far.
    pub fn clear(&self) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Everything but pointer motion.
    pub fn presses(&self) -> Vec<XInput> {
        self.events()
            .into_iter()
            .filter(|e| !matches!(e, XInput::Motion { .. }))
            .collect()
    }

    /// The text the key presses typed.
    pub fn typed(&self) -> String {
        self.events()
            .iter()
            .filter_map(|e| match e {
                XInput::KeyPress { text, .. } => *text,
                _ => None,
            })
            .collect()
    }

    /// Keys pressed and not released.
    pub fn held_keys(&self) -> Vec<u8> {
        let mut held = Vec::new();
        for e in self.events() {
            match e {
                XInput::KeyPress { keycode, .. } => held.push(keycode),
                XInput::KeyRelease { keycode } => held.retain(|k| *k != keycode),
                _ => {}
            }
        }
        held
    }

    /// Wait until `done` holds for the recorded events; the error shows what came.
    pub async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&[XInput]) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let events = self.events();
            if done(&events) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the X client never saw {what}; it recorded {events:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
