//! Injection on its own thread, fed by a channel, so a slow X server never stalls the
//! network. The thread remembers what it pressed and releases all of it when told to
//! (control ended, the controller's connection dropped) and when it ends.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

#[cfg(not(windows))]
use enigo::Coordinate;
use enigo::{Axis, Button, Direction, Enigo, Keyboard, Mouse, Settings};

use crate::event::MouseButton;
use crate::gate::InputStats;
use crate::shield::Shield;
use crate::validate::{Action, Key};

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("cannot inject input on this display: {0}")]
    Open(String),
    #[error("the display refused the input: {0}")]
    Refused(String),
}

/// What actually presses keys and moves the pointer: enigo on the customer's display, or
/// a recording fake in unit tests.
pub trait Injector {
    /// Move the pointer to (x, y) in screen pixels.
    fn move_to(&mut self, x: i32, y: i32) -> Result<(), InjectError>;
    fn button(&mut self, button: MouseButton, down: bool) -> Result<(), InjectError>;
    fn wheel(&mut self, dx: i32, dy: i32) -> Result<(), InjectError>;
    /// A key down or up; the injector maps it to its platform's number.
    fn key(&mut self, key: Key, down: bool) -> Result<(), InjectError>;
    fn text(&mut self, text: &str) -> Result<(), InjectError>;
}

/// Where normalised coordinates land on the screen, for what is being shared.
pub trait Surface {
    /// The screen pixel for (x, y) in 0..=1 of the shared surface, or `None` when that
    /// point is not the shared surface's own pixel (a covering window, a closed window).
    fn locate(&mut self, x: f64, y: f64) -> Option<(i32, i32)>;
}

impl<I: Injector + ?Sized> Injector for Box<I> {
    fn move_to(&mut self, x: i32, y: i32) -> Result<(), InjectError> {
        (**self).move_to(x, y)
    }
    fn button(&mut self, button: MouseButton, down: bool) -> Result<(), InjectError> {
        (**self).button(button, down)
    }
    fn wheel(&mut self, dx: i32, dy: i32) -> Result<(), InjectError> {
        (**self).wheel(dx, dy)
    }
    fn key(&mut self, key: Key, down: bool) -> Result<(), InjectError> {
        (**self).key(key, down)
    }
    fn text(&mut self, text: &str) -> Result<(), InjectError> {
        (**self).text(text)
    }
}

impl<S: Surface + ?Sized> Surface for Box<S> {
    fn locate(&mut self, x: f64, y: f64) -> Option<(i32, i32)> {
        (**self).locate(x, y)
    }
}

/// enigo: on an X display through XTEST, on Windows through `SendInput`.
pub struct EnigoInjector {
    enigo: Enigo,
}

impl std::fmt::Debug for EnigoInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnigoInjector").finish_non_exhaustive()
    }
}

impl EnigoInjector {
    /// `display` is the X display (Linux); Windows has one desktop and ignores it.
    pub fn open(display: Option<&str>) -> Result<Self, InjectError> {
        let settings = Settings {
            x11_display: display.map(str::to_owned),
            // enigo waits between events by default; the rep's own timing is kept instead.
            linux_delay: 0,
            release_keys_when_dropped: true,
            ..Settings::default()
        };
        let enigo = Enigo::new(&settings).map_err(|e| InjectError::Open(e.to_string()))?;
        Ok(Self { enigo })
    }
}

fn refused(e: enigo::InputError) -> InjectError {
    InjectError::Refused(e.to_string())
}

fn direction(down: bool) -> Direction {
    if down {
        Direction::Press
    } else {
        Direction::Release
    }
}

impl Injector for EnigoInjector {
    fn move_to(&mut self, x: i32, y: i32) -> Result<(), InjectError> {
        #[cfg(windows)]
        {
            windows_move(x, y)
        }
        #[cfg(not(windows))]
        {
            self.enigo
                .move_mouse(x, y, Coordinate::Abs)
                .map_err(refused)
        }
    }

    fn button(&mut self, button: MouseButton, down: bool) -> Result<(), InjectError> {
        let button = match button {
            MouseButton::Left => Button::Left,
            MouseButton::Middle => Button::Middle,
            MouseButton::Right => Button::Right,
        };
        self.enigo.button(button, direction(down)).map_err(refused)
    }

    fn wheel(&mut self, dx: i32, dy: i32) -> Result<(), InjectError> {
        if dy != 0 {
            self.enigo.scroll(dy, Axis::Vertical).map_err(refused)?;
        }
        if dx != 0 {
            self.enigo.scroll(dx, Axis::Horizontal).map_err(refused)?;
        }
        Ok(())
    }

    fn key(&mut self, key: Key, down: bool) -> Result<(), InjectError> {
        let missing = || InjectError::Refused(format!("{key:?} has no key on this platform"));
        #[cfg(windows)]
        {
            windows_key(key.windows_scan_code().ok_or_else(missing)?, down)
        }
        #[cfg(not(windows))]
        {
            let keycode = key.x11_keycode().ok_or_else(missing)?;
            self.enigo
                .raw(u16::from(keycode), direction(down))
                .map_err(refused)
        }
    }

    fn text(&mut self, text: &str) -> Result<(), InjectError> {
        self.enigo.text(text).map_err(refused)
    }
}

/// A key by its scan code through `SendInput`: the low byte as the scan code and the
/// extended flag for the 0xE0 prefix, with the virtual key of that scan code (enigo's `raw` passes the prefix on in the scan code
/// and flags only some keys as extended, so right Alt, the Windows keys or the arrows could
/// come out as other keys).
#[cfg(windows)]
#[allow(unsafe_code)] // A lookup in the keyboard layout.
fn windows_key(scan: u16, down: bool) -> Result<(), InjectError> {
    use windows::Win32::UI::Input::KeyboardAndMouse::{
        INPUT, INPUT_0, INPUT_KEYBOARD, KEYBDINPUT, KEYEVENTF_EXTENDEDKEY, KEYEVENTF_KEYUP,
        KEYEVENTF_SCANCODE, MAPVK_VSC_TO_VK_EX, MapVirtualKeyW, VIRTUAL_KEY,
    };
    // Windows goes by the scan code and ignores the virtual key here; Wine goes by the
    // virtual key, so it is given too.
    // SAFETY: a pure lookup in the keyboard layout.
    let vk = unsafe { MapVirtualKeyW(u32::from(scan), MAPVK_VSC_TO_VK_EX) };
    let mut flags = KEYEVENTF_SCANCODE;
    if scan & 0xff00 == 0xe000 {
        flags |= KEYEVENTF_EXTENDEDKEY;
    }
    if !down {
        flags |= KEYEVENTF_KEYUP;
    }
    let input = INPUT {
        r#type: INPUT_KEYBOARD,
        Anonymous: INPUT_0 {
            ki: KEYBDINPUT {
                wVk: VIRTUAL_KEY(u16::try_from(vk).unwrap_or(0)),
                wScan: scan & 0xff,
                dwFlags: flags,
                time: 0,
                dwExtraInfo: 0,
            },
        },
    };
    send_input(input, || {
        format!("Windows refused the key (scan code {scan:#06x})")
    })
}

/// One event through `SendInput`; `refused` says what Windows refused.
#[cfg(windows)]
#[allow(unsafe_code)] // One FFI call with an INPUT built by the caller.
fn send_input(
    input: windows::Win32::UI::Input::KeyboardAndMouse::INPUT,
    refused: impl FnOnce() -> String,
) -> Result<(), InjectError> {
    use windows::Win32::UI::Input::KeyboardAndMouse::{INPUT, SendInput};
    // SAFETY: one INPUT, sized as SendInput asks.
    let sent = unsafe { SendInput(&[input], size_of::<INPUT>() as i32) };
    if sent == 1 {
        Ok(())
    } else {
        Err(InjectError::Refused(refused()))
    }
}

/// An absolute pointer move to (x, y) of the virtual screen (every monitor), through
/// `SendInput` with `MOUSEEVENTF_VIRTUALDESK`: enigo's absolute moves map onto the primary
/// monitor only, so a shared second monitor would get misplaced clicks.
#[cfg(windows)]
#[allow(unsafe_code)] // Two metrics asked of Windows.
fn windows_move(x: i32, y: i32) -> Result<(), InjectError> {
    use windows::Win32::UI::Input::KeyboardAndMouse::{
        INPUT, INPUT_0, INPUT_MOUSE, MOUSEEVENTF_ABSOLUTE, MOUSEEVENTF_MOVE,
        MOUSEEVENTF_VIRTUALDESK, MOUSEINPUT,
    };
    use windows::Win32::UI::WindowsAndMessaging::{
        GetSystemMetrics, SM_CXVIRTUALSCREEN, SM_CYVIRTUALSCREEN, SM_XVIRTUALSCREEN,
        SM_YVIRTUALSCREEN,
    };
    // SAFETY: plain questions about the desktop's size.
    let (left, top, width, height) = unsafe {
        (
            GetSystemMetrics(SM_XVIRTUALSCREEN),
            GetSystemMetrics(SM_YVIRTUALSCREEN),
            GetSystemMetrics(SM_CXVIRTUALSCREEN),
            GetSystemMetrics(SM_CYVIRTUALSCREEN),
        )
    };
    let scale = |at: i32, origin: i32, size: i32| -> i32 {
        // Windows maps `d` back to pixel floor(d × size / 65536): the smallest `d` that
        // lands on the pixel `offset` is ceil(offset × 65536 / size).
        let size = i64::from(size.max(1));
        let offset = i64::from(at) - i64::from(origin);
        let offset = offset.clamp(0, size - 1);
        ((offset * 65536 + size - 1) / size).min(65535) as i32
    };
    let input = INPUT {
        r#type: INPUT_MOUSE,
        Anonymous: INPUT_0 {
            mi: MOUSEINPUT {
                dx: scale(x, left, width),
                dy: scale(y, top, height),
                mouseData: 0,
                dwFlags: MOUSEEVENTF_MOVE | MOUSEEVENTF_ABSOLUTE | MOUSEEVENTF_VIRTUALDESK,
                time: 0,
                dwExtraInfo: 0,
            },
        },
    };
    send_input(input, || {
        format!("Windows refused the pointer move to {x},{y}")
    })
}

enum Command {
    Inject(Action),
    ReleaseAll,
    /// Answered once every command before it is done (for tests and orderly shutdown).
    Sync(mpsc::Sender<()>),
}

/// The injection thread. Dropping it releases everything held and ends the thread.
#[derive(Debug)]
pub struct InputThread {
    tx: mpsc::Sender<Command>,
}

impl InputThread {
    /// Start the thread. `open` runs on it, so an injector need not be `Send`; its error,
    /// if any, is returned here.
    /// Nothing reaches what `shield` protects.
    pub fn spawn<I, S>(
        open: impl FnOnce() -> Result<(I, S), InjectError> + Send + 'static,
        stats: Arc<InputStats>,
        shield: Arc<Shield>,
    ) -> Result<Self, InjectError>
    where
        I: Injector + 'static,
        S: Surface + 'static,
    {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("tandem-input".into())
            .spawn(move || {
                let (injector, surface) = match open() {
                    Ok(parts) => {
                        let _ = ready_tx.send(Ok(()));
                        parts
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut held = Held::new(injector, surface, stats, shield);
                for command in rx {
                    match command {
                        Command::Inject(action) => held.apply(action),
                        Command::ReleaseAll => held.release_all(),
                        Command::Sync(done) => {
                            let _ = done.send(());
                        }
                    }
                }
                held.release_all();
            })
            .map_err(|e| InjectError::Open(e.to_string()))?;
        ready_rx
            .recv()
            .map_err(|_| InjectError::Open("the input thread ended".into()))??;
        Ok(Self { tx })
    }

    pub fn inject(&self, action: Action) {
        let _ = self.tx.send(Command::Inject(action));
    }

    /// Release every key and button the controller still holds.
    pub fn release_all(&self) {
        let _ = self.tx.send(Command::ReleaseAll);
    }

    /// Wait until everything sent so far has been injected.
    pub fn sync(&self) {
        let (done, wait) = mpsc::channel();
        if self.tx.send(Command::Sync(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

/// The injector with the keys and buttons it holds down.
struct Held<I, S> {
    injector: I,
    surface: S,
    stats: Arc<InputStats>,
    shield: Arc<Shield>,
    keys: BTreeSet<Key>,
    buttons: Vec<MouseButton>,
    /// After a key pressed with Alt, Control or Super held (which may switch windows), the
    /// next key press waits until then and asks where the focus went.
    settle_until: Option<std::time::Instant>,
}

/// How long a window switch (Alt+Tab, Super) is given to move the keyboard focus before
/// the next key press is let through, if the focus is not the agent's window by then.
const FOCUS_SETTLE: std::time::Duration = std::time::Duration::from_millis(150);

impl<I: Injector, S: Surface> Held<I, S> {
    fn new(injector: I, surface: S, stats: Arc<InputStats>, shield: Arc<Shield>) -> Self {
        Self {
            injector,
            surface,
            stats,
            shield,
            keys: BTreeSet::new(),
            buttons: Vec::new(),
            settle_until: None,
        }
    }

    /// Whether a key press or text would reach the agent's own window: asked at this
    /// moment, after any window switch had its time to move the focus.
    fn keys_shielded(&mut self) -> bool {
        if let Some(until) = self.settle_until.take() {
            let now = std::time::Instant::now();
            if until > now {
                std::thread::sleep(until - now);
            }
        }
        self.shield.focused()
    }

    /// The screen pixel for a point of the shared surface, unless it is outside it
    /// (counted) or the shield's (counted).
    fn locate(&mut self, x: f64, y: f64) -> Result<(i32, i32), ()> {
        match self.surface.locate(x, y) {
            Some((px, py)) if self.shield.covers(px, py) => {
                self.stats.shielded.fetch_add(1, Ordering::Relaxed);
                Err(())
            }
            Some(point) => Ok(point),
            None => {
                self.outside();
                Err(())
            }
        }
    }

    fn apply(&mut self, action: Action) {
        if self.shield.paused() {
            // The customer is being asked something: not one event, not even a release
            // (everything held was let go when the question came).
            self.stats.shielded.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // A press (button or key down, text, a wheel step) usually changes the picture;
        // a move or a release seldom does.
        let press = matches!(
            action,
            Action::Button { down: true, .. }
                | Action::Key { down: true, .. }
                | Action::Text(_)
                | Action::Wheel { .. }
        );
        let result = match action {
            Action::Move { x, y } => match self.locate(x, y) {
                Ok((px, py)) => self.injector.move_to(px, py),
                Err(()) => return,
            },
            Action::Button { button, down, x, y } => {
                if down {
                    let Ok((px, py)) = self.locate(x, y) else {
                        return;
                    };
                    self.buttons.retain(|b| *b != button);
                    self.buttons.push(button);
                    self.injector
                        .move_to(px, py)
                        .and_then(|()| self.injector.button(button, true))
                } else if self.buttons.contains(&button) {
                    // A held button is let go even outside the surface: never stuck.
                    self.buttons.retain(|b| *b != button);
                    let moved = match self.surface.locate(x, y) {
                        Some((px, py)) => self.injector.move_to(px, py),
                        None => Ok(()),
                    };
                    moved.and_then(|()| self.injector.button(button, false))
                } else {
                    return self.stats.count_dropped();
                }
            }
            Action::Wheel { x, y, dx, dy } => match self.locate(x, y) {
                Ok((px, py)) => self
                    .injector
                    .move_to(px, py)
                    .and_then(|()| self.injector.wheel(dx, dy)),
                Err(()) => return,
            },
            Action::Key { down: true, .. } | Action::Text(_) if self.keys_shielded() => {
                // The agent's own window would get them (its buttons take Space and Enter);
                // a release still goes out below, so nothing stays held.
                self.stats.shielded.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Action::Key { key, down } => {
                if down {
                    if self.keys.iter().any(|k| k.is_modifier()) {
                        self.settle_until = Some(std::time::Instant::now() + FOCUS_SETTLE);
                    }
                    self.keys.insert(key);
                } else if !self.keys.remove(&key) {
                    // Not pressed through us: nothing to release.
                    return self.stats.count_dropped();
                }
                self.injector.key(key, down)
            }
            Action::Text(text) => self.injector.text(&text),
        };
        match result {
            Ok(()) => {
                self.stats.injected.fetch_add(1, Ordering::Relaxed);
                if press {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
                    self.stats.last_press_us.store(now, Ordering::Relaxed);
                    self.stats.presses.fetch_add(1, Ordering::Relaxed);
                }
                trace_injected();
            }
            Err(_) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn outside(&mut self) {
        self.stats.outside.fetch_add(1, Ordering::Relaxed);
    }

    fn release_all(&mut self) {
        for key in std::mem::take(&mut self.keys) {
            let _ = self.injector.key(key, false);
        }
        for button in std::mem::take(&mut self.buttons) {
            let _ = self.injector.button(button, false);
        }
    }
}

/// With `TANDEM_AGENT_TRACE` set, the agent's trace says when each event reached the
/// desktop (milliseconds since the Unix epoch, to the microsecond), in the agent's trace
/// format: the bench splits a click-to-photon into its stages with it.
fn trace_injected() {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("TANDEM_AGENT_TRACE").is_some()) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        eprintln!(
            "[trace {}] input injected {:.3}",
            now.as_millis(),
            now.as_secs_f64() * 1000.0
        );
    }
}
