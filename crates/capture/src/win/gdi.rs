//! GDI capture: `BitBlt` from the screen for the desktop, `PrintWindow` for one window.
//! GDI has no damage events, so an unchanged screen is told by comparing with the last
//! frame (a memory compare, well under a millisecond at 1080p).

use windows::Win32::Foundation::{HWND, RECT};
use windows::Win32::Graphics::Gdi::{BitBlt, CAPTUREBLT, GetDC, HDC, ReleaseDC, SRCCOPY};
use windows::Win32::Storage::Xps::{PRINT_WINDOW_FLAGS, PrintWindow};
use windows::Win32::UI::WindowsAndMessaging::{
    GW_HWNDPREV, GetWindow, GetWindowRect, IsIconic, IsWindow, IsWindowVisible,
};

use super::canvas::{Canvas, SCREEN};

/// GDI has no damage: an unchanged screen costs a grab and a compare, so it is looked at
/// again after a frame period, not every few milliseconds.
const IDLE_POLL: std::time::Duration = std::time::Duration::from_millis(33);
use super::{failed, monitor};
use crate::{Capture, CaptureError, Capturer, Gone};

/// `PW_RENDERFULLCONTENT`: the window's own pixels as the compositor has them, even where
/// other windows cover it (Windows 8.1 and later).
const PW_RENDERFULLCONTENT: PRINT_WINDOW_FLAGS = PRINT_WINDOW_FLAGS(2);

/// One monitor through GDI: the primary one, or one the customer chose.
pub struct DesktopCapturer {
    which: Option<super::Chosen>,
    screen: HDC,
    area: RECT,
    canvas: Canvas,
}

impl std::fmt::Debug for DesktopCapturer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesktopCapturer")
            .field("size", &(self.canvas.width, self.canvas.height))
            .finish_non_exhaustive()
    }
}

impl DesktopCapturer {
    /// `which`: a monitor from [`super::monitors`], or `None` for the primary one.
    pub fn new(which: Option<super::Chosen>) -> Result<Self, CaptureError> {
        super::dpi_aware();
        let (_, area) = monitor(which)?;
        // SAFETY: the screen's device context, released in `drop`.
        let screen = unsafe { GetDC(SCREEN) };
        if screen.is_invalid() {
            return Err(CaptureError::Platform(
                "the screen's device context is not available".into(),
            ));
        }
        let canvas = Canvas::new(area.right - area.left, area.bottom - area.top)?;
        Ok(Self {
            which,
            screen,
            area,
            canvas,
        })
    }
}

impl Capturer for DesktopCapturer {
    fn capture(&mut self) -> Result<Capture<'_>, CaptureError> {
        let area = match monitor(self.which) {
            Ok((_, area)) => area,
            Err(CaptureError::NoSuchMonitor(_)) => {
                return Ok(Capture::Ended(Gone::MonitorDisconnected));
            }
            Err(e) => return Err(e),
        };
        if area != self.area {
            self.area = area;
            self.canvas = Canvas::new(area.right - area.left, area.bottom - area.top)?;
        }
        // SAFETY: both device contexts are ours and alive; the copy fits the canvas.
        unsafe {
            BitBlt(
                self.canvas.dc(),
                0,
                0,
                self.canvas.width,
                self.canvas.height,
                Some(self.screen),
                area.left,
                area.top,
                SRCCOPY | CAPTUREBLT,
            )
        }
        .map_err(|e| failed("copying the screen", e))?;
        self.canvas.draw_cursor((area.left, area.top), None);
        if !self.canvas.changed() {
            return Ok(Capture::Unchanged);
        }
        Ok(Capture::Frame(self.canvas.frame()))
    }

    fn idle_poll(&self) -> std::time::Duration {
        IDLE_POLL
    }

    fn refresh(&mut self) {
        self.canvas.forget();
    }
}

impl Drop for DesktopCapturer {
    fn drop(&mut self) {
        // SAFETY: got in `new`, released once.
        unsafe { ReleaseDC(SCREEN, self.screen) };
    }
}

/// One top-level window: its own pixels where Windows renders them for us
/// (`PrintWindow` with `PW_RENDERFULLCONTENT`), else what the screen shows of it, with
/// every window in front of it blacked out, so a covering window's content is never
/// shared.
pub struct WindowCapturer {
    window: HWND,
    canvas: Canvas,
    mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not known until the first capture.
    Untried,
    /// `PrintWindow` renders the window (Windows 8.1 and later).
    Print,
    /// `PrintWindow` renders nothing (Wine, which cannot print another process's window):
    /// copy from the screen.
    Screen,
}

/// What the canvas is filled with to tell whether `PrintWindow` drew anything.
const UNTOUCHED: [u8; 4] = [0x5a, 0xa5, 0x3c, 0x7f];

impl std::fmt::Debug for WindowCapturer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowCapturer")
            .field("window", &super::id(self.window))
            .field("size", &(self.canvas.width, self.canvas.height))
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

pub(crate) fn window_rect(window: HWND) -> Option<RECT> {
    let mut rect = RECT::default();
    // SAFETY: a RECT for the answer; a stale handle only fails.
    unsafe { GetWindowRect(window, &mut rect) }.ok()?;
    (rect.right > rect.left && rect.bottom > rect.top).then_some(rect)
}

impl WindowCapturer {
    pub fn new(window: HWND) -> Result<Self, CaptureError> {
        super::dpi_aware();
        // SAFETY: asks only whether the handle names a window.
        if !unsafe { IsWindow(Some(window)) }.as_bool() {
            return Err(CaptureError::NoSuchWindow(super::id(window)));
        }
        let rect = window_rect(window).ok_or(CaptureError::NoSuchWindow(super::id(window)))?;
        let canvas = Canvas::new(rect.right - rect.left, rect.bottom - rect.top)?;
        Ok(Self {
            window,
            canvas,
            mode: Mode::Untried,
        })
    }

    /// Whether `PrintWindow` rendered the window into the canvas.
    fn print(&mut self) -> bool {
        if self.mode == Mode::Screen {
            return false;
        }
        if self.mode == Mode::Untried {
            for pixel in self.canvas.pixels_mut().chunks_exact_mut(4) {
                pixel.copy_from_slice(&UNTOUCHED);
            }
        }
        // SAFETY: the canvas's device context is ours; the window is only read.
        let printed =
            unsafe { PrintWindow(self.window, self.canvas.dc(), PW_RENDERFULLCONTENT) }.as_bool();
        if self.mode == Mode::Untried {
            let drew = printed
                && self
                    .canvas
                    .pixels()
                    .chunks_exact(4)
                    .any(|pixel| pixel != UNTOUCHED);
            self.mode = if drew { Mode::Print } else { Mode::Screen };
        }
        self.mode == Mode::Print
    }

    /// The window's rectangle as the screen shows it, then black wherever another window
    /// is in front of it.
    fn copy_from_screen(&mut self, rect: RECT) -> Result<(), CaptureError> {
        // SAFETY: the screen's device context is released at once; the copy fits the canvas.
        unsafe {
            let screen = GetDC(SCREEN);
            if screen.is_invalid() {
                return Err(CaptureError::Platform(
                    "the screen's device context is not available".into(),
                ));
            }
            let copied = BitBlt(
                self.canvas.dc(),
                0,
                0,
                self.canvas.width,
                self.canvas.height,
                Some(screen),
                rect.left,
                rect.top,
                SRCCOPY | CAPTUREBLT,
            );
            ReleaseDC(SCREEN, screen);
            copied.map_err(|e| failed("copying the window from the screen", e))?;
        }
        let stride = self.canvas.stride();
        let (width, height) = (self.canvas.width, self.canvas.height);
        let pixels = self.canvas.pixels_mut();
        // SAFETY: walks the z-order upwards from the shared window; stale handles fail.
        let mut above = unsafe { GetWindow(self.window, GW_HWNDPREV) };
        while let Ok(window) = above {
            let shown = unsafe { IsWindowVisible(window).as_bool() && !IsIconic(window).as_bool() };
            if let (true, Some(cover)) = (shown, window_rect(window)) {
                let left = (cover.left - rect.left).clamp(0, width) as usize;
                let right = (cover.right - rect.left).clamp(0, width) as usize;
                let top = (cover.top - rect.top).clamp(0, height) as usize;
                let bottom = (cover.bottom - rect.top).clamp(0, height) as usize;
                for row in top..bottom {
                    pixels[row * stride + left * 4..row * stride + right * 4].fill(0);
                }
            }
            above = unsafe { GetWindow(window, GW_HWNDPREV) };
        }
        Ok(())
    }
}

impl Capturer for WindowCapturer {
    fn refresh(&mut self) {
        self.canvas.forget();
    }

    fn capture(&mut self) -> Result<Capture<'_>, CaptureError> {
        // SAFETY: the questions take a handle and nothing else.
        if !unsafe { IsWindow(Some(self.window)) }.as_bool() {
            return Ok(Capture::Ended(Gone::WindowClosed));
        }
        if unsafe { IsIconic(self.window) }.as_bool() {
            return Ok(Capture::Ended(Gone::WindowClosedOrMinimized));
        }
        if !unsafe { IsWindowVisible(self.window) }.as_bool() {
            return Ok(Capture::Ended(Gone::WindowHidden));
        }
        let Some(rect) = window_rect(self.window) else {
            return Ok(Capture::Ended(Gone::WindowClosed));
        };
        let (width, height) = (rect.right - rect.left, rect.bottom - rect.top);
        if (width, height) != (self.canvas.width, self.canvas.height) {
            self.canvas = Canvas::new(width, height)?;
        }
        if !self.print() {
            self.copy_from_screen(rect)?;
        }
        // The pointer only while it is over the shared window itself: where it moves over
        // other windows is not the customer's to share.
        self.canvas
            .draw_cursor((rect.left, rect.top), Some(self.window));
        if !self.canvas.changed() {
            return Ok(Capture::Unchanged);
        }
        Ok(Capture::Frame(self.canvas.frame()))
    }

    fn idle_poll(&self) -> std::time::Duration {
        IDLE_POLL
    }
}
