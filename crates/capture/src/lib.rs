//! Screen and window capture on X11.
//!
//! [`X11Capturer`] grabs the whole display, or one application window through Composite
//! (its own pixels even when other windows cover it), into shared memory (MIT-SHM, with a
//! plain `GetImage` fallback). Damage tells it when nothing changed, so an idle screen costs
//! one poll; the cursor is drawn in from XFixes. [`windows`] lists what can be shared.

mod cursor;
mod locate;
mod shm;
mod synthetic;
mod windows;
mod x11;

pub use locate::Locator;
pub use synthetic::SyntheticScreen;
pub use windows::{WindowInfo, windows};
pub use x11::{Capture, Frame, Source, X11Capturer};

/// Anything that yields frames of a screen: the X11 capturer, or the synthetic screen of
/// unit tests.
pub trait Capturer: Send {
    /// The next frame, `Unchanged` when nothing changed, or `Ended` when the source is gone.
    fn capture(&mut self) -> Result<Capture<'_>, CaptureError>;
}

impl Capturer for X11Capturer {
    fn capture(&mut self) -> Result<Capture<'_>, CaptureError> {
        X11Capturer::capture(self)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open the X display {display:?}: {reason}")]
    Connect { display: String, reason: String },
    #[error("the X server lacks the {0} extension, which capture needs")]
    MissingExtension(&'static str),
    #[error("window {0:#x} does not exist or cannot be shared")]
    NoSuchWindow(u32),
    #[error("the X server connection failed: {0}")]
    Connection(String),
    #[error("shared memory for capture failed: {0}")]
    SharedMemory(String),
}

impl From<x11rb::errors::ConnectionError> for CaptureError {
    fn from(e: x11rb::errors::ConnectionError) -> Self {
        CaptureError::Connection(e.to_string())
    }
}

impl From<x11rb::errors::ReplyError> for CaptureError {
    fn from(e: x11rb::errors::ReplyError) -> Self {
        CaptureError::Connection(e.to_string())
    }
}

impl From<x11rb::errors::ReplyOrIdError> for CaptureError {
    fn from(e: x11rb::errors::ReplyOrIdError) -> Self {
        CaptureError::Connection(e.to_string())
    }
}
