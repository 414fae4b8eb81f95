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

use windows::Win32::Foundation::{HWND, LPARAM, POINT, RECT};
use windows::Win32::Graphics::Gdi::{
    EnumDisplayMonitors, GetMonitorInfoW, HDC, HMONITOR, MONITOR_DEFAULTTONULL,
    MONITOR_DEFAULTTOPRIMARY, MONITORINFO, MONITORINFOEXW, MonitorFromPoint,
};
use windows::Win32::UI::HiDpi::{
    DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2, SetProcessDpiAwarenessContext,
};
use windows::core::BOOL;

pub use gdi::{DesktopCapturer, WindowCapturer};
pub use list::windows;
pub use locate::{ClientAreas, Locator};

use crate::{Area, CaptureError, MonitorInfo, Source};

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
            Err(_) => Ok(Box::new(DesktopCapturer::new(None)?)),
        },
        Source::Monitor(area) => match dxgi::DuplicationCapturer::new(monitor(Some(area))?) {
            Ok(capturer) => Ok(Box::new(capturer)),
            Err(_) => Ok(Box::new(DesktopCapturer::new(Some(area))?)),
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
    monitor(None)
}

/// A monitor's handle and rectangle: the primary one, or the one showing the middle of
/// `area` (a monitor the customer chose, from [`monitors`]).
pub(crate) fn monitor(area: Option<Area>) -> Result<(HMONITOR, RECT), CaptureError> {
    let (point, fallback) = match area {
        None => (POINT { x: 0, y: 0 }, MONITOR_DEFAULTTOPRIMARY),
        Some(a) => (
            POINT {
                x: a.x.saturating_add((a.width / 2) as i32),
                y: a.y.saturating_add((a.height / 2) as i32),
            },
            MONITOR_DEFAULTTONULL,
        ),
    };
    // SAFETY: MONITORINFO is sized as the call asks.
    unsafe {
        let monitor = MonitorFromPoint(point, fallback);
        if monitor.is_invalid() {
            return Err(area.map_or_else(
                || CaptureError::Platform("Windows shows no monitor".into()),
                CaptureError::NoSuchMonitor,
            ));
        }
        let mut info = MONITORINFO {
            cbSize: size_of::<MONITORINFO>() as u32,
            ..Default::default()
        };
        if !GetMonitorInfoW(monitor, &mut info).as_bool() {
            return Err(CaptureError::Platform(
                "Windows did not say where the monitor is".into(),
            ));
        }
        Ok((monitor, info.rcMonitor))
    }
}

/// The monitors of this desktop, the primary first.
pub fn monitors() -> Result<Vec<MonitorInfo>, CaptureError> {
    dpi_aware();
    let mut handles: Vec<HMONITOR> = Vec::new();
    // SAFETY: the callback runs during this call only, and `data` is the address of
    // `handles`, alive and not otherwise borrowed until the call returns.
    let listed = unsafe {
        EnumDisplayMonitors(
            None,
            None,
            Some(collect_monitor),
            LPARAM(&raw mut handles as isize),
        )
    };
    if !listed.as_bool() {
        return Err(CaptureError::Platform(
            "Windows did not list the monitors".into(),
        ));
    }
    let mut found = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        let mut info = MONITORINFOEXW::default();
        info.monitorInfo.cbSize = size_of::<MONITORINFOEXW>() as u32;
        // SAFETY: MONITORINFOEXW is sized as the call asks, and starts with MONITORINFO.
        if !unsafe { GetMonitorInfoW(handle, (&raw mut info).cast::<MONITORINFO>()) }.as_bool() {
            continue;
        }
        let r = info.monitorInfo.rcMonitor;
        let device = String::from_utf16_lossy(&info.szDevice);
        let device = device.trim_end_matches('\0').trim_start_matches("\\\\.\\");
        found.push(MonitorInfo {
            name: if device.is_empty() {
                format!("{}", i + 1)
            } else {
                device.to_owned()
            },
            area: Area {
                x: r.left,
                y: r.top,
                width: u32::try_from(r.right - r.left).unwrap_or(0),
                height: u32::try_from(r.bottom - r.top).unwrap_or(0),
            },
            // MONITORINFOF_PRIMARY
            primary: info.monitorInfo.dwFlags & 1 != 0,
        });
    }
    found.sort_by_key(|m| (!m.primary, m.area.x, m.area.y));
    Ok(found)
}

unsafe extern "system" fn collect_monitor(
    monitor: HMONITOR,
    _: HDC,
    _: *mut RECT,
    data: LPARAM,
) -> BOOL {
    // SAFETY: `data` is the `Vec` `monitors` passed, alive for this call.
    let handles = unsafe { &mut *(data.0 as *mut Vec<HMONITOR>) };
    handles.push(monitor);
    BOOL(1)
}

fn failed(what: &str, e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Platform(format!("{what} failed: {e}"))
}
