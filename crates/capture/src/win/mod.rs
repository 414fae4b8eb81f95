//! Capture on Windows: the desktop (one monitor) through DXGI Desktop Duplication, falling
//! back to GDI where duplication is unavailable (Wine, some remote sessions, old drivers);
//! one window through `PrintWindow`; the windows that can be shared; and where a point of
//! the shared surface is on the screen, for remote input.
//!
//! What is exercised where: the GDI paths (desktop and window) run in CI under Wine, which
//! answers Desktop Duplication with "not implemented". Desktop Duplication runs only on real
//! Windows.
//!
//! Every Win32 call is FFI, hence `unsafe`: each one is given handles this module created
//! and still owns, or buffers it sized for the call.
#![allow(unsafe_code)]

mod canvas;
mod dxgi;
mod gdi;
mod list;
mod locate;

use windows::Win32::Foundation::{HWND, POINT, RECT};
use windows::Win32::Graphics::Gdi::{
    GetMonitorInfoW, HMONITOR, MONITOR_DEFAULTTOPRIMARY, MONITORINFO, MonitorFromPoint,
};
use windows::Win32::UI::HiDpi::{
    DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2, SetProcessDpiAwarenessContext,
};

pub use gdi::{DesktopCapturer, WindowCapturer};
pub use list::windows;
pub use locate::Locator;

use crate::{CaptureError, Source};

/// Screen pixels, not scaled ones: capture, the window list and input must agree on
/// coordinates on a monitor scaled to 150 %. Called before the first capture; a process
/// whose awareness is already set keeps it.
pub fn dpi_aware() {
    // SAFETY: no pointers; fails harmlessly when already set.
    let _ = unsafe { SetProcessDpiAwarenessContext(DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2) };
}

/// The capturer for `source`: Desktop Duplication for the desktop where the system offers
/// it, else GDI; `PrintWindow` for a window.
pub fn capturer(source: Source) -> Result<Box<dyn crate::Capturer>, CaptureError> {
    dpi_aware();
    match source {
        Source::Desktop => match dxgi::DuplicationCapturer::new(primary_monitor()?) {
            Ok(capturer) => Ok(Box::new(capturer)),
            Err(_) => Ok(Box::new(DesktopCapturer::new()?)),
        },
        Source::Window(id) => Ok(Box::new(WindowCapturer::new(hwnd(id))?)),
    }
}

/// Which capture path `capturer` would take for the desktop, for the agent's status.
pub fn desktop_path() -> &'static str {
    match primary_monitor().and_then(dxgi::DuplicationCapturer::new) {
        Ok(_) => "DXGI Desktop Duplication",
        Err(_) => "GDI",
    }
}

pub(crate) fn hwnd(id: u64) -> HWND {
    HWND(id as usize as *mut core::ffi::c_void)
}

pub(crate) fn id(hwnd: HWND) -> u64 {
    hwnd.0 as usize as u64
}

/// The primary monitor's rectangle in virtual-screen pixels, and its handle.
pub(crate) fn primary_monitor() -> Result<(HMONITOR, RECT), CaptureError> {
    // SAFETY: MONITORINFO is sized as the call asks.
    unsafe {
        let monitor = MonitorFromPoint(POINT { x: 0, y: 0 }, MONITOR_DEFAULTTOPRIMARY);
        let mut info = MONITORINFO {
            cbSize: size_of::<MONITORINFO>() as u32,
            ..Default::default()
        };
        if !GetMonitorInfoW(monitor, &mut info).as_bool() {
            return Err(CaptureError::Platform(
                "Windows did not say where the primary monitor is".into(),
            ));
        }
        Ok((monitor, info.rcMonitor))
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Platform(format!("{what} failed: {e}"))
}
