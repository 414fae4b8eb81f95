//! The customer's window (ui/agent.slint): the session it joins, each consent question
//! with Allow and Deny, then a compact always-on-top panel while sharing, and why it ended.
//!
//! Slint runs on the main thread; the session runs on tokio. [`Handle`] changes the window
//! from any thread, and what the customer does comes back as [`Action`]s on a channel. The
//! window tells the input [`Shield`] where it is on the screen, five times a second, so no
//! remote click lands on it. While the screen is shared a frame is drawn around what is
//! shared, blue, and orange while someone controls it ([`Frame`]).

/// The Rust slint generates from ui/agent.slint.
#[allow(
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::restriction
)]
mod generated {
    slint::include_modules!();
}

pub use generated::{AgentWindow, EdgeWindow, Mode};

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use raw_window_handle::{HasWindowHandle, RawWindowHandle};
use slint::{ComponentHandle, Model, ModelRc, SharedString, VecModel, Weak};
#[cfg(not(windows))]
use tandem_capture::ClientAreas;
#[cfg(windows)]
use tandem_capture::win::ClientAreas;
use tandem_capture::{Area, Source};
use tandem_input::{Rect, Shield};
use tokio::sync::mpsc;

use crate::text::{Language, Text};

/// What the customer did in the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Allow or deny the question shown; `source` is the index of the choice in the list
    /// offered with a share question (0: the whole screen).
    Answer {
        yes: bool,
        source: usize,
    },
    StopSharing,
    TakeBack,
    /// Cancel the files coming in (and going out).
    CancelFiles,
    /// The file picked for a rep who asked for one (none: no).
    Picked(Option<std::path::PathBuf>),
    /// The customer closed the window.
    Close,
}

/// The window, from any thread. Calls are queued to the UI thread; after the window is
/// gone they do nothing.
#[derive(Clone)]
pub struct Handle {
    weak: Weak<AgentWindow>,
    /// What is shared, for the frame around it (none: no frame).
    framed: Arc<Mutex<Option<Source>>>,
}

/// The open window and what keeps it up to date (dropping it stops the shield's updates).
pub struct Window {
    pub window: AgentWindow,
    _shield_timer: slint::Timer,
}

impl Window {
    /// Open the window, or say why there can be none (no display).
    pub fn open(
        language: &Language,
        shield: Arc<Shield>,
    ) -> Result<(Self, Handle, mpsc::UnboundedReceiver<Action>), slint::PlatformError> {
        select_backend();
        let window = AgentWindow::new()?;
        let say = |id| SharedString::from(language.say(&Text::new(id)));
        window.set_stop_label(say("button-stop"));
        window.set_take_back_label(say("button-take-back"));
        window.set_cancel_file_label(say("button-cancel-file"));
        window.set_close_label(say("button-close"));
        window.set_about_label(say("button-about"));
        window.set_about_text(
            language
                .say(&Text::new("about-agent").arg("version", env!("CARGO_PKG_VERSION")))
                .into(),
        );
        window.set_source_label(say("choose-source"));
        window.set_deny_label(say("button-deny"));
        window.set_allow_label(say("button-allow"));

        let (tx, actions) = mpsc::unbounded_channel();
        let send = |action: Action| {
            let tx = tx.clone();
            move || {
                let _ = tx.send(action.clone());
            }
        };
        {
            let tx = tx.clone();
            let weak = window.as_weak();
            window.on_answer(move |yes, source| {
                // A pick's answer is the path typed (none with No, or left empty).
                if let Some(w) = weak.upgrade().filter(|w| w.get_picking()) {
                    let path = w.get_path_text().trim().to_owned();
                    if yes && path.is_empty() {
                        return; // Send with no path: the question stays
                    }
                    let _ = tx.send(Action::Picked(yes.then(|| std::path::PathBuf::from(path))));
                    return;
                }
                let _ = tx.send(Action::Answer {
                    yes,
                    source: usize::try_from(source).unwrap_or(0),
                });
            });
        }
        {
            // A file dropped on the window while a rep asks for one fills the path field:
            // the customer still sends it with the button (or says no). One dropped at
            // any other time goes nowhere, and the window says so.
            use i_slint_backend_winit::{EventResult, WinitWindowAccessor, winit};
            let weak = window.as_weak();
            let unasked = SharedString::from(language.say(&Text::new("file-drop-unasked")));
            window.window().on_winit_window_event(move |_, event| {
                let winit::event::WindowEvent::DroppedFile(path) = event else {
                    return EventResult::Propagate;
                };
                let Some(w) = weak.upgrade() else {
                    return EventResult::Propagate;
                };
                if w.get_mode() == Mode::Ask && w.get_picking() {
                    crate::peers::trace(&format!("window file dropped {}", path.display()));
                    w.set_path_text(path.display().to_string().into());
                } else {
                    // For a few seconds, in place of the latest sentence, which comes back.
                    crate::peers::trace("window file dropped unasked");
                    let before = w.get_detail();
                    if before != unasked {
                        w.set_detail(unasked.clone());
                        let (weak, unasked) = (weak.clone(), unasked.clone());
                        slint::Timer::single_shot(Duration::from_secs(8), move || {
                            if let Some(w) = weak.upgrade().filter(|w| w.get_detail() == unasked) {
                                w.set_detail(before);
                            }
                        });
                    }
                }
                EventResult::PreventDefault
            });
        }
        window.on_stop_sharing(send(Action::StopSharing));
        window.on_take_back(send(Action::TakeBack));
        window.on_cancel_files(send(Action::CancelFiles));
        {
            let tx = tx.clone();
            let weak = window.as_weak();
            window.window().on_close_requested(move || {
                // While someone controls the computer, closing (Alt+F4 from the rep's keys
                // as much as the customer's click) takes control back first; the window
                // stays. Closed again, it closes.
                if weak
                    .upgrade()
                    .is_some_and(|w| w.get_mode() == Mode::Panel && w.get_controlled())
                {
                    let _ = tx.send(Action::TakeBack);
                    return slint::CloseRequestResponse::KeepWindowShown;
                }
                let _ = tx.send(Action::Close);
                slint::CloseRequestResponse::HideWindow
            });
        }
        {
            let weak = window.as_weak();
            window.on_close_window(move || {
                if let Some(w) = weak.upgrade() {
                    let _ = w.hide();
                }
                let _ = tx.send(Action::Close);
            });
        }

        let framed = Arc::new(Mutex::new(None));
        let shield_timer = slint::Timer::default();
        {
            let weak = window.as_weak();
            let framed = Arc::clone(&framed);
            let mut frame = Frame::new()?;
            let mut last = None;
            // Where the window's content is, without a window manager's frame.
            let areas = ClientAreas::new(None).ok();
            let mut had_focus = false;
            // The input thread asks the system itself at each key press, with its own
            // connection, once the window has its native id.
            let mut probing = false;
            shield_timer.start(
                slint::TimerMode::Repeated,
                Duration::from_millis(200),
                move || {
                    let Some(w) = weak.upgrade() else { return };
                    // The frame goes with the window: once it is closed nothing may keep
                    // the event loop (which ends with the last window) running.
                    if w.window().is_visible() {
                        let shared = *framed.lock().unwrap_or_else(PoisonError::into_inner);
                        let around = shared.and_then(|source| {
                            let area = areas.as_ref()?.shared_area(source)?;
                            Some((area, matches!(source, Source::Window(_))))
                        });
                        frame.place(around, w.get_controlled(), areas.as_ref());
                    } else {
                        frame.close();
                    }
                    if !probing && let Some(id) = native_id(w.window()) {
                        probing = true;
                        if let Ok(probe) = ClientAreas::new(None) {
                            shield.set_focus_probe(Arc::new(move || probe.has_focus(id)));
                        }
                    }
                    let placed = placement(&w, areas.as_ref());
                    // Keys typed while the window has the focus would go to its buttons.
                    let focused = placed.is_some()
                        && areas
                            .as_ref()
                            .zip(native_id(w.window()))
                            .is_some_and(|(areas, id)| areas.has_focus(id));
                    shield.set_focused(focused);
                    if focused != had_focus {
                        had_focus = focused;
                        crate::peers::trace(if focused {
                            "window focus on"
                        } else {
                            "window focus off"
                        });
                    }
                    shield.set_rects(placed.iter().map(|p| p.rect).collect());
                    if placed != last {
                        if let Some(p) = &placed {
                            crate::peers::trace(&p.describe());
                        }
                        last = placed;
                    }
                },
            );
        }
        let handle = Handle {
            weak: window.as_weak(),
            framed,
        };
        Ok((
            Self {
                window,
                _shield_timer: shield_timer,
            },
            handle,
            actions,
        ))
    }
}

impl Window {
    /// Show the window and run its event loop until it is closed.
    pub fn run(&self) -> Result<(), slint::PlatformError> {
        self.window.show()?;
        slint::run_event_loop()
    }
}

/// How thick the frame around what is shared is, in screen pixels.
const EDGE: i32 = 6;

/// The titles of the agent's own windows (ui/agent.slint), never offered for sharing.
pub const OWN_TITLES: [&str; 2] = ["Tandem", FRAME_TITLE];

/// The frame's windows' title (`EdgeWindow`), never offered for sharing.
const FRAME_TITLE: &str = "Tandem frame";

/// Set while [`Frame::new`] creates the frame's windows: winit's attributes hook tells
/// them by it. (The hook runs as slint creates a window, before the component's title
/// reaches its attributes: every window is still called after the application there.)
static CREATING_FRAME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Where a side of the frame waits while nothing is shared: off every screen. Hiding it
/// instead would show it again later, and a window shown again takes the focus (winit
/// activates every window on its second showing) and, on Windows, loses the styles
/// that let the pointer through.
const PARKED: Side = (-32_000, -32_000, 1, 1);

/// Slint's winit backend, with the frame's windows created the way such a window must
/// be: never given the focus, kept off the taskbar (Windows), left alone by a window
/// manager (X11: override-redirect), and out of screen captures where the system can.
/// Any failure leaves slint's default, with only the frame the worse for it.
fn select_backend() {
    use i_slint_backend_winit::winit::window::WindowAttributes;
    let hook = |attributes: WindowAttributes| {
        if !CREATING_FRAME.load(std::sync::atomic::Ordering::Relaxed) {
            return attributes;
        }
        crate::peers::trace("window: a side of the frame, inactive and unmanaged");
        let attributes = attributes.with_active(false).with_content_protected(true);
        #[cfg(windows)]
        let attributes = {
            use i_slint_backend_winit::winit::platform::windows::WindowAttributesExtWindows;
            attributes.with_skip_taskbar(true)
        };
        #[cfg(all(unix, not(target_os = "macos")))]
        let attributes = {
            use i_slint_backend_winit::winit::platform::x11::WindowAttributesExtX11;
            attributes.with_override_redirect(true)
        };
        attributes
    };
    let backend = i_slint_backend_winit::Backend::builder()
        .with_renderer_name("software")
        .with_window_attributes_hook(hook)
        .build();
    let set = backend.map_err(|e| e.to_string()).and_then(|backend| {
        slint::platform::set_platform(Box::new(backend)).map_err(|e| e.to_string())
    });
    if let Err(e) = set {
        crate::peers::trace(&format!("window backend as slint selects it: {e}"));
    }
}

/// The frame around what is shared, so the customer sees at a glance that the screen is
/// shared and whether someone controls it: four thin windows ([`EdgeWindow`]) on the
/// inside edges of the screen or monitor, or around the shared window (following it).
/// The pointer passes through them, the customer's and the rep's.
struct Frame {
    sides: Vec<EdgeWindow>,
    /// Which sides let the pointer through already (once each has its native window).
    through: [bool; 4],
    /// The sides' rectangles and whether they say "controlled", as last placed.
    placed: Option<([Side; 4], bool)>,
    /// Whether the sides are shown (on the screen or parked off it).
    shown: bool,
}

/// x, y, width, height in screen pixels.
type Side = (i32, i32, u32, u32);

impl Frame {
    fn new() -> Result<Self, slint::PlatformError> {
        CREATING_FRAME.store(true, std::sync::atomic::Ordering::Relaxed);
        let sides = (0..4)
            .map(|_| EdgeWindow::new())
            .collect::<Result<Vec<_>, _>>();
        CREATING_FRAME.store(false, std::sync::atomic::Ordering::Relaxed);
        let sides = sides?;
        for side in &sides {
            // Only the pointer reaches these, and it passes through; a close request
            // from the keyboard is not the customer's.
            side.window()
                .on_close_requested(|| slint::CloseRequestResponse::KeepWindowShown);
        }
        Ok(Self {
            sides,
            through: [false; 4],
            placed: None,
            shown: false,
        })
    }

    /// Hide the sides for good: the window is closed, and the event loop ends with the
    /// last window shown.
    fn close(&mut self) {
        if self.shown {
            for side in &self.sides {
                let _ = side.hide();
            }
            self.shown = false;
            self.placed = None;
        }
    }

    /// Draw the frame on the inside edges of an area (or, `true`, around it), or take it
    /// away (`None`).
    fn place(
        &mut self,
        around: Option<(Area, bool)>,
        controlled: bool,
        areas: Option<&ClientAreas>,
    ) {
        let wanted = around.map(|(area, outside)| (sides(area, outside), controlled));
        if wanted != self.placed {
            match wanted {
                None => {
                    for side in &self.sides {
                        park(side, PARKED);
                    }
                    crate::peers::trace("screen frame off");
                }
                Some((rects, controlled)) => {
                    for (side, &rect) in self.sides.iter().zip(&rects) {
                        side.set_controlled(controlled);
                        park(side, rect);
                        if !self.shown {
                            let _ = side.show();
                        }
                    }
                    self.shown = true;
                    // The top side spans the frame's whole width, the bottom its last row.
                    let (x, y, width, _) = rects[0];
                    let bottom = rects[1].1 + i32::try_from(rects[1].3).unwrap_or(0);
                    crate::peers::trace(&format!(
                        "screen frame {} at {x},{y} {width}x{}",
                        if controlled { "controlled" } else { "shared" },
                        bottom - y
                    ));
                }
            }
            self.placed = wanted;
        }
        if self.placed.is_none() {
            return;
        }
        let Some(areas) = areas else { return };
        for (side, through) in self.sides.iter().zip(&mut self.through) {
            let Some(id) = native_id(side.window()) else {
                continue;
            };
            if !*through {
                *through = areas.pass_input_through(id);
            }
            // Over whatever the window manager raised since (X11; Windows keeps a topmost
            // window on top by itself).
            areas.raise(id);
        }
    }
}

/// Put one side of the frame at `(x, y, width, height)`.
fn park(side: &EdgeWindow, (x, y, width, height): Side) {
    let window = side.window();
    window.set_position(slint::PhysicalPosition::new(x, y));
    window.set_size(slint::PhysicalSize::new(width, height));
}

/// The frame's four sides (top, bottom, left, right) on the inside edges of `area`, or
/// around it.
fn sides(area: Area, outside: bool) -> [Side; 4] {
    let (x, y) = (area.x, area.y);
    let w = i32::try_from(area.width).unwrap_or(i32::MAX / 4);
    let h = i32::try_from(area.height).unwrap_or(i32::MAX / 4);
    let t = EDGE;
    let rects = if outside {
        [
            (x - t, y - t, w + 2 * t, t),
            (x - t, y + h, w + 2 * t, t),
            (x - t, y, t, h),
            (x + w, y, t, h),
        ]
    } else {
        [
            (x, y, w, t),
            (x, y + h - t, w, t),
            (x, y + t, t, h - 2 * t),
            (x + w - t, y + t, t, h - 2 * t),
        ]
    };
    rects.map(|(x, y, w, h)| {
        (
            x,
            y,
            u32::try_from(w.max(1)).unwrap_or(1),
            u32::try_from(h.max(1)).unwrap_or(1),
        )
    })
}

/// Where the window and its buttons are on the screen, in physical pixels.
#[derive(Clone, Debug, PartialEq)]
struct Placement {
    mode: Mode,
    rect: Rect,
    buttons: Vec<(&'static str, i32, i32)>,
}

impl Placement {
    /// For tests and the trace: `ui ask at 0,0 480x220 allow 400,190 deny 300,190`.
    fn describe(&self) -> String {
        let mode = match self.mode {
            Mode::Status => "status",
            Mode::Ask => "ask",
            Mode::Panel => "panel",
            Mode::Ended => "ended",
        };
        let buttons: Vec<String> = self
            .buttons
            .iter()
            .map(|(name, x, y)| format!("{name} {x},{y}"))
            .collect();
        format!(
            "ui {mode} at {},{} {}x{} {}",
            self.rect.x,
            self.rect.y,
            self.rect.width,
            self.rect.height,
            buttons.join(" ")
        )
    }
}

/// The window's native id: an X window, or an `HWND`.
fn native_id(window: &slint::Window) -> Option<u64> {
    let handle = window.window_handle();
    match handle.window_handle().ok()?.as_raw() {
        // An X window id is 32 bits; Xlib holds it in a C `unsigned long`.
        #[allow(clippy::useless_conversion)]
        RawWindowHandle::Xlib(h) => Some(u64::from(h.window)),
        RawWindowHandle::Xcb(h) => Some(u64::from(h.window.get())),
        RawWindowHandle::Win32(h) => u64::try_from(h.hwnd.get()).ok(),
        _ => None,
    }
}

fn placement(w: &AgentWindow, areas: Option<&ClientAreas>) -> Option<Placement> {
    let window = w.window();
    if !window.is_visible() {
        return None;
    }
    // The content's place: slint's position is the frame's (a window manager's title
    // bar and borders), its size the content's.
    let size = window.size();
    let position = window.position();
    let id = native_id(window);
    let (x0, y0) = areas
        .zip(id)
        .and_then(|(areas, id)| areas.of(id))
        .map_or((position.x, position.y), |area| (area.x, area.y));
    // The frame as the system has it (title bar and borders on every side), else from
    // slint's position (the frame's corner) to the content's far corner.
    let frame = areas
        .zip(id)
        .and_then(|(areas, id)| areas.frame(id))
        .unwrap_or(tandem_capture::Area {
            x: position.x.min(x0),
            y: position.y.min(y0),
            width: size.width + (x0 - position.x.min(x0)).unsigned_abs(),
            height: size.height + (y0 - position.y.min(y0)).unsigned_abs(),
        });
    let scale = window.scale_factor();
    // Buttons at their centres, in screen pixels; the ones the mode shows only.
    let at = |x: f32, y: f32| {
        (
            x0 + (x * scale).round() as i32,
            y0 + (y * scale).round() as i32,
        )
    };
    let mut buttons = Vec::new();
    let mut add = |name, (x, y): (i32, i32)| buttons.push((name, x, y));
    match w.get_mode() {
        Mode::Ask => {
            add("allow", at(w.get_allow_x(), w.get_allow_y()));
            add("deny", at(w.get_deny_x(), w.get_deny_y()));
            if w.get_sources().row_count() > 0 {
                add("choice", at(w.get_choice_x(), w.get_choice_y()));
                // Not a button: which choice is made (0: the whole screen).
                add("chosen", (w.get_source_index(), 0));
            }
        }
        Mode::Panel => {
            add("stop", at(w.get_stop_x(), w.get_stop_y()));
            if w.get_controlled() {
                add("take-back", at(w.get_take_back_x(), w.get_take_back_y()));
            }
            if !w.get_incoming().is_empty() {
                add(
                    "cancel-file",
                    at(w.get_cancel_file_x(), w.get_cancel_file_y()),
                );
            }
        }
        Mode::Status | Mode::Ended => {}
    }
    Some(Placement {
        mode: w.get_mode(),
        // The shield covers the frame too: a remote click on the title bar's close
        // button would end the customer's part.
        rect: Rect {
            x: frame.x,
            y: frame.y,
            width: frame.width,
            height: frame.height,
        },
        buttons,
    })
}

impl Handle {
    fn with(&self, change: impl FnOnce(&AgentWindow) + Send + 'static) {
        let _ = self.weak.upgrade_in_event_loop(move |w| change(&w));
    }

    /// The heading and the sentence under it (connecting, connected, waiting).
    pub fn status(&self, heading: String, detail: String) {
        self.with(move |w| {
            w.set_heading(heading.into());
            w.set_detail(detail.into());
        });
    }

    /// The latest sentence for the customer.
    pub fn detail(&self, detail: String) {
        self.with(move |w| w.set_detail(detail.into()));
    }

    /// Ask a question; with `sources`, a choice of what to share (the first is the whole
    /// screen). The window comes to the front.
    pub fn ask(&self, question: String, allow: String, sources: Vec<String>) {
        self.with(move |w| {
            w.set_picking(false);
            w.set_question(question.into());
            w.set_allow_label(allow.into());
            w.set_source_index(0);
            let model: Vec<SharedString> = sources.into_iter().map(Into::into).collect();
            w.set_sources(ModelRc::new(VecModel::from(model)));
            w.set_mode(Mode::Ask);
            let _ = w.show();
            // For the bench's time from double-click to the question on screen: the
            // window is mapped now and drawn on this turn of the event loop.
            crate::peers::trace("window question shown");
            // Every label the window holds now, for the tests of its language, and the
            // list to choose from. (Not "ui …": those lines are the window's placements.)
            let offered: Vec<String> = w.get_sources().iter().map(|s| s.to_string()).collect();
            crate::peers::trace(&format!("window sources {}", offered.join("|")));
            crate::peers::trace(&format!(
                "window labels allow={}|deny={}|choose={}|stop={}|take-back={}|close={}|about={}",
                w.get_allow_label(),
                w.get_deny_label(),
                w.get_source_label(),
                w.get_stop_label(),
                w.get_take_back_label(),
                w.get_close_label(),
                w.get_about_label(),
            ));
        });
    }

    /// Ask for a file's path (a rep asked for a file): a field to type or paste it in.
    pub fn ask_path(&self, question: String, send: String, placeholder: String) {
        self.with(move |w| {
            w.set_question(question.into());
            w.set_allow_label(send.into());
            w.set_sources(ModelRc::new(VecModel::from(Vec::<SharedString>::new())));
            w.set_path_text(SharedString::new());
            w.set_path_placeholder(placeholder.into());
            w.set_picking(true);
            w.set_mode(Mode::Ask);
            let _ = w.show();
            crate::peers::trace("window question shown");
        });
    }

    /// No question open: back to the panel while sharing, else to the status.
    pub fn asked(&self, sharing: bool) {
        self.with(move |w| {
            if w.get_mode() == Mode::Ask {
                w.set_mode(if sharing { Mode::Panel } else { Mode::Status });
            }
        });
    }

    /// The sharing panel: the badge, who watches, and whether someone controls.
    pub fn panel(&self, badge: String, controlled: bool, watching: String) {
        self.with(move |w| {
            w.set_badge(badge.into());
            w.set_controlled(controlled);
            w.set_watching(watching.into());
            if w.get_mode() != Mode::Ask {
                w.set_mode(Mode::Panel);
            }
        });
    }

    /// A file coming in, with how far it is (0–1), on the panel; `None`: none.
    pub fn incoming(&self, incoming: Option<(String, f32)>) {
        self.with(move |w| {
            let (text, progress) = incoming.unwrap_or_default();
            w.set_incoming(text.into());
            w.set_incoming_progress(progress);
        });
    }

    /// What is shared, for the frame around it; `None`: nothing, no frame.
    pub fn framed(&self, source: Option<Source>) {
        *self.framed.lock().unwrap_or_else(PoisonError::into_inner) = source;
    }

    /// Sharing stopped: the panel closes (the sentence saying why comes as the detail).
    pub fn not_sharing(&self) {
        self.framed(None);
        self.with(|w| {
            if w.get_mode() == Mode::Panel {
                w.set_mode(Mode::Status);
            }
            w.set_controlled(false);
        });
    }

    /// The end: why, and (for an expired download) a button back to the join page.
    pub fn ended(&self, heading: String, detail: String, page: Option<(String, String)>) {
        self.framed(None);
        self.with(move |w| {
            w.set_heading(heading.into());
            w.set_detail(detail.into());
            match page {
                Some((label, url)) => {
                    w.set_open_page_label(label.into());
                    w.on_open_page(move || open_in_browser(&url));
                }
                None => w.set_open_page_label(SharedString::new()),
            }
            w.set_mode(Mode::Ended);
            let _ = w.show();
        });
    }
}

/// Open a web page in the customer's browser (the URL is never given to a shell).
fn open_in_browser(url: &str) {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return;
    }
    let opener = if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    // No standard handles passed on: a double-clicked agent on Windows has none.
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("tandem-agent: could not open {url}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_inside_a_screen_and_around_a_window() {
        let area = Area {
            x: 100,
            y: 50,
            width: 640,
            height: 480,
        };
        let [top, bottom, left, right] = sides(area, false);
        assert_eq!(top, (100, 50, 640, 6));
        assert_eq!(bottom, (100, 524, 640, 6));
        assert_eq!(left, (100, 56, 6, 468));
        assert_eq!(right, (734, 56, 6, 468));
        let [top, bottom, left, right] = sides(area, true);
        assert_eq!(top, (94, 44, 652, 6));
        assert_eq!(bottom, (94, 530, 652, 6));
        assert_eq!(left, (94, 50, 6, 480));
        assert_eq!(right, (740, 50, 6, 480));
        // A degenerate area still gives windows a size.
        let tiny = Area {
            x: 0,
            y: 0,
            width: 4,
            height: 4,
        };
        assert!(sides(tiny, false).iter().all(|s| s.2 >= 1 && s.3 >= 1));
    }
}
