//! Where a point of the shared surface is on the screen, for remote input (C1, §5): the
//! agent injects only inside what is shared. For a window share the point must be the
//! window's own visible pixel, not a window covering it.

use windows::Win32::Foundation::{COLORREF, POINT, RECT};
use windows::Win32::Graphics::Gdi::ClientToScreen;
use windows::Win32::UI::WindowsAndMessaging::{
    GA_ROOT, GWL_EXSTYLE, GetAncestor, GetClientRect, GetForegroundWindow, GetWindowLongPtrW,
    LWA_ALPHA, SetLayeredWindowAttributes, SetWindowDisplayAffinity, SetWindowLongPtrW,
    WDA_EXCLUDEFROMCAPTURE, WS_EX_LAYERED, WS_EX_NOACTIVATE, WS_EX_TOOLWINDOW, WS_EX_TRANSPARENT,
    WindowFromPoint,
};

use super::gdi::window_rect;
use super::{monitor, primary_monitor};
use crate::{Area, CaptureError, Source};

#[derive(Debug)]
pub struct Locator {
    source: Source,
}

impl Locator {
    pub fn new(source: Source) -> Result<Self, CaptureError> {
        super::dpi_aware();
        if let Source::Window(id) = source {
            window_rect(super::hwnd(id)).ok_or(CaptureError::NoSuchWindow(id))?;
        }
        Ok(Self { source })
    }

    /// The screen pixel at (x, y) in 0..=1 of the shared surface (as encoded: even
    /// width and height), or `None` when the point is not the shared surface's own pixel.
    pub fn locate(&self, x: f64, y: f64) -> Option<(i32, i32)> {
        let area = match self.source {
            Source::Desktop => primary_monitor().ok()?.1,
            Source::Monitor { id, area } => monitor(Some((id, area))).ok()?.1,
            Source::Window(id) => window_rect(super::hwnd(id))?,
        };
        let (w, h) = ((area.right - area.left) & !1, (area.bottom - area.top) & !1);
        if w <= 0 || h <= 0 {
            return None;
        }
        let px = area.left + ((x * f64::from(w)) as i32).clamp(0, w - 1);
        let py = area.top + ((y * f64::from(h)) as i32).clamp(0, h - 1);
        let Source::Window(id) = self.source else {
            return Some((px, py));
        };
        // SAFETY: plain questions about the window at a point.
        let top = unsafe {
            let under = WindowFromPoint(POINT { x: px, y: py });
            if under.is_invalid() {
                return None;
            }
            GetAncestor(under, GA_ROOT)
        };
        (super::id(top) == id).then_some((px, py))
    }
}

/// Where windows' client areas (their content, without the title bar and borders) are on
/// the screen: the agent's own window tells the input shield where it is with this.
#[derive(Debug)]
pub struct ClientAreas;

impl ClientAreas {
    pub fn new(_display: Option<&str>) -> Result<Self, CaptureError> {
        super::dpi_aware();
        Ok(Self)
    }

    /// The client area of the window `id` (an `HWND`) in screen pixels, or `None` when
    /// it is gone.
    pub fn of(&self, id: u64) -> Option<Area> {
        let window = super::hwnd(id);
        let mut rect = RECT::default();
        let mut origin = POINT::default();
        // SAFETY: a RECT and a POINT for the answers; a stale handle only fails.
        unsafe {
            GetClientRect(window, &mut rect).ok()?;
            if !ClientToScreen(window, &mut origin).as_bool() {
                return None;
            }
        }
        Some(Area {
            x: origin.x,
            y: origin.y,
            width: u32::try_from(rect.right - rect.left).ok()?,
            height: u32::try_from(rect.bottom - rect.top).ok()?,
        })
    }

    /// The window `id` (an `HWND`) with its title bar and borders, in screen pixels.
    pub fn frame(&self, id: u64) -> Option<Area> {
        let rect = super::gdi::window_rect(super::hwnd(id))?;
        Some(Area {
            x: rect.left,
            y: rect.top,
            width: u32::try_from(rect.right - rect.left).ok()?,
            height: u32::try_from(rect.bottom - rect.top).ok()?,
        })
    }

    /// Where `source` is on the screen: the primary monitor (what a desktop share shows
    /// here), the monitor, or the window with its title bar and borders; `None` when it is
    /// gone.
    pub fn shared_area(&self, source: Source) -> Option<Area> {
        let rect = match source {
            Source::Desktop => primary_monitor().ok()?.1,
            Source::Monitor { id, area } => monitor(Some((id, area))).ok()?.1,
            Source::Window(id) => return self.frame(id),
        };
        Some(Area {
            x: rect.left,
            y: rect.top,
            width: u32::try_from(rect.right - rect.left).ok()?,
            height: u32::try_from(rect.bottom - rect.top).ok()?,
        })
    }

    /// Let the pointer pass through the window `id` (an `HWND`) to what is under it
    /// (a layered, transparent window), keep it off the taskbar and from taking the focus,
    /// and out of screen captures where Windows can (10, version 2004 on). Whether the
    /// styles were set.
    pub fn pass_input_through(&self, id: u64) -> bool {
        let window = super::hwnd(id);
        let more = (WS_EX_LAYERED | WS_EX_TRANSPARENT | WS_EX_TOOLWINDOW | WS_EX_NOACTIVATE).0;
        // SAFETY: style changes of a window of this process; a stale handle only fails.
        unsafe {
            let styles = GetWindowLongPtrW(window, GWL_EXSTYLE);
            SetWindowLongPtrW(window, GWL_EXSTYLE, styles | more as isize);
            let opaque = SetLayeredWindowAttributes(window, COLORREF(0), 255, LWA_ALPHA).is_ok();
            // Older Windows and Wine may refuse; the frame is then in the picture.
            let _ = SetWindowDisplayAffinity(window, WDA_EXCLUDEFROMCAPTURE);
            opaque
        }
    }

    /// Keep the window `id` above the others: on Windows a topmost window (the frame's
    /// sides are) stays over every other, so there is nothing to do.
    pub fn raise(&self, _id: u64) {}

    /// Whether the window `id` (an `HWND`) is the foreground window: typed keys go to it.
    pub fn has_focus(&self, id: u64) -> bool {
        // SAFETY: plain questions about windows; a stale handle only fails.
        let top = unsafe {
            let foreground = GetForegroundWindow();
            if foreground.is_invalid() {
                return false;
            }
            GetAncestor(foreground, GA_ROOT)
        };
        super::id(top) == id
    }
}
