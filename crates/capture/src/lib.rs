//! Screen and window capture for Tandem, one backend per platform behind the same types.
//!
//! - X11 ([`X11Capturer`]): the whole display, or one application window through Composite
//!   (its own pixels even when other windows cover it), into shared memory (MIT-SHM, with a
//!   plain `GetImage` fallback). Damage tells it when nothing changed, so an idle screen
//!   costs one poll; the cursor is drawn in from XFixes.
//! - Windows (`win::DesktopCapturer`, `win::WindowCapturer`): DXGI Desktop Duplication,
//!   falling back to GDI where duplication is unavailable (Wine, some remote sessions);
//!   one window through `PrintWindow`; the cursor drawn in.
//!
//! Each platform also lists the windows that can be shared and locates a point of the
//! shared surface on the screen, for remote input.

#[cfg(all(unix, not(target_os = "macos")))]
mod cursor;
#[cfg(all(unix, not(target_os = "macos")))]
mod locate;
#[cfg(all(unix, not(target_os = "macos")))]
mod shm;
mod synthetic;
#[cfg(windows)]
pub mod win;
#[cfg(all(unix, not(target_os = "macos")))]
mod windows;
#[cfg(all(unix, not(target_os = "macos")))]
mod x11;

pub use synthetic::SyntheticScreen;
#[cfg(all(unix, not(target_os = "macos")))]
pub use {
    locate::{ClientAreas, Locator},
    windows::monitors,
    windows::windows,
    x11::X11Capturer,
};

/// What to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The whole display.
    Desktop,
    /// One application window, by the platform's id for it (an X window id, a Windows
    /// `HWND`), as [`WindowInfo::id`] gives it.
    Window(u64),
    /// One monitor, as [`MonitorInfo`] lists it: the system's id for it and where it is. A
    /// share of it ends when that monitor is gone or moved: the rectangle alone could
    /// come to show another monitor after the customer rearranges or unplugs one.
    Monitor { id: u64, area: Area },
}

/// A rectangle of the desktop, in screen pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Area {
    /// The screen pixel at (x, y) in 0..=1 of the area as encoded (even width and
    /// height), or `None` for an empty area.
    pub fn point(&self, x: f64, y: f64) -> Option<(i32, i32)> {
        let w = i32::try_from(self.width).ok()? & !1;
        let h = i32::try_from(self.height).ok()? & !1;
        if w <= 0 || h <= 0 {
            return None;
        }
        let px = ((x * f64::from(w)) as i32).clamp(0, w - 1);
        let py = ((y * f64::from(h)) as i32).clamp(0, h - 1);
        Some((self.x + px, self.y + py))
    }
}

/// A monitor the customer can choose to share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorInfo {
    /// The system's name for it ("DP-1", "DISPLAY2").
    pub name: String,
    /// What identifies it to the system (X11: the RandR name atom; Windows: a hash of
    /// its device name).
    pub id: u64,
    pub area: Area,
    pub primary: bool,
}

/// A captured BGRA frame, borrowed from the capturer until the next capture.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub bgra: &'a [u8],
    /// Only the rows `start..end` may differ from the frame this capturer gave before;
    /// `None`: any row may (a first frame, a new size, a capturer that cannot tell).
    pub changed_rows: Option<(u32, u32)>,
}

#[derive(Debug)]
pub enum Capture<'a> {
    /// New pixels.
    Frame(Frame<'a>),
    /// Nothing changed since the last frame: nothing to encode.
    Unchanged,
    /// The shared window or monitor is gone, and why.
    Ended(Gone),
}

/// Why a window or monitor share ended by itself. The English words are for logs; the
/// agent says each in the customer's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Gone {
    #[error("the shared window was closed")]
    WindowClosed,
    #[error("the shared window was closed or minimized")]
    WindowClosedOrMinimized,
    #[error("the shared window was hidden")]
    WindowHidden,
    #[error("the shared window went away while resizing")]
    WindowLostInResize,
    #[error("the shared monitor was disconnected or rearranged")]
    MonitorDisconnected,
}

/// A window the customer can choose to share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowInfo {
    /// The platform's id: an X window id, or a Windows `HWND`.
    pub id: u64,
    pub title: String,
    pub width: u32,
    pub height: u32,
}

/// Anything that yields frames of a screen: a platform's capturer, or the synthetic screen
/// of unit tests. Capturers live on the thread that made them (Windows device contexts
/// belong to one thread), so this is not `Send`.
pub trait Capturer {
    /// The next frame, `Unchanged` when nothing changed, or `Ended` when the source is gone.
    fn capture(&mut self) -> Result<Capture<'_>, CaptureError>;

    /// How long to wait before looking again at an unchanged screen, at least. A capturer
    /// that must grab and compare the whole screen (GDI) does not look every few
    /// milliseconds.
    fn idle_poll(&self) -> std::time::Duration {
        POLL
    }

    /// Wait until the picture may have changed, or `at_most` has passed, whichever is
    /// first. One told of changes (X11) sleeps until it is; the others wait `idle_poll`.
    fn wait_for_change(&mut self, at_most: std::time::Duration) -> Result<(), CaptureError> {
        std::thread::sleep(self.idle_poll().min(at_most));
        Ok(())
    }

    /// After input: wait up to `at_most` for news, drawing away from where the picture
    /// was already moving (the answer to a click over a running clock), and say whether
    /// it came. `None`: this capturer cannot tell news from motion (the default), and
    /// the caller looks on a schedule of its own.
    fn wait_for_news(
        &mut self,
        _at_most: std::time::Duration,
    ) -> Result<Option<bool>, CaptureError> {
        Ok(None)
    }

    /// The next capture hands out the whole picture even if nothing changed: the caller
    /// is to encode it anew (at another size, say).
    fn refresh(&mut self);
}

/// How often a capturer that is not told of changes looks at an unchanged screen: a
/// change is sent within this much of happening.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(4);

impl<C: Capturer + ?Sized> Capturer for Box<C> {
    fn capture(&mut self) -> Result<Capture<'_>, CaptureError> {
        (**self).capture()
    }

    fn idle_poll(&self) -> std::time::Duration {
        (**self).idle_poll()
    }

    fn refresh(&mut self) {
        (**self).refresh();
    }

    fn wait_for_change(&mut self, at_most: std::time::Duration) -> Result<(), CaptureError> {
        (**self).wait_for_change(at_most)
    }

    fn wait_for_news(
        &mut self,
        at_most: std::time::Duration,
    ) -> Result<Option<bool>, CaptureError> {
        (**self).wait_for_news(at_most)
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
impl Capturer for X11Capturer {
    fn capture(&mut self) -> Result<Capture<'_>, CaptureError> {
        X11Capturer::capture(self)
    }

    fn wait_for_change(&mut self, at_most: std::time::Duration) -> Result<(), CaptureError> {
        X11Capturer::wait_for_change(self, at_most)
    }

    fn wait_for_news(
        &mut self,
        at_most: std::time::Duration,
    ) -> Result<Option<bool>, CaptureError> {
        X11Capturer::wait_for_news(self, at_most)
    }

    fn refresh(&mut self) {
        X11Capturer::refresh(self);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open the X display {display:?}: {reason}")]
    Connect { display: String, reason: String },
    #[error("the X server lacks the {0} extension, which capture needs")]
    MissingExtension(&'static str),
    #[error("window {0:#x} does not exist or cannot be shared")]
    NoSuchWindow(u64),
    #[error("no monitor shows {width}×{height} at {x},{y} any more", x = .0.x, y = .0.y, width = .0.width, height = .0.height)]
    NoSuchMonitor(Area),
    #[error("the X server connection failed: {0}")]
    Connection(String),
    #[error("shared memory for capture failed: {0}")]
    SharedMemory(String),
    /// The platform refused (a Windows API call failed), with what was being done.
    #[error("{0}")]
    Platform(String),
}

#[cfg(all(unix, not(target_os = "macos")))]
impl From<x11rb::errors::ConnectionError> for CaptureError {
    fn from(e: x11rb::errors::ConnectionError) -> Self {
        CaptureError::Connection(e.to_string())
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
impl From<x11rb::errors::ReplyError> for CaptureError {
    fn from(e: x11rb::errors::ReplyError) -> Self {
        CaptureError::Connection(e.to_string())
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
impl From<x11rb::errors::ReplyOrIdError> for CaptureError {
    fn from(e: x11rb::errors::ReplyOrIdError) -> Self {
        CaptureError::Connection(e.to_string())
    }
}
