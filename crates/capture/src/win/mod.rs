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
        Source::Desktop => match dxgi::DuplicationCapturer::new(primary_monitor()?, None) {
            Ok(capturer) => Ok(Box::new(capturer)),
            Err(_) => Ok(Box::new(DesktopCapturer::new(None)?)),
        },
        Source::Monitor { id, area } => {
            let chosen = Some((id, area));
            match dxgi::DuplicationCapturer::new(monitor(chosen)?, chosen) {
                Ok(capturer) => Ok(Box::new(capturer)),
                Err(_) => Ok(Box::new(DesktopCapturer::new(chosen)?)),
            }
        }
        Source::Window(id) => Ok(Box::new(WindowCapturer::new(hwnd(id))?)),
    }
}

/// Which capture path `capturer` would take for the desktop, for the agent's status.
pub fn desktop_path() -> &'static str {
    match primary_monitor().and_then(|m| dxgi::DuplicationCapturer::new(m, None)) {
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

/// A monitor the customer chose: its id and where it was, from [`monitors`].
pub(crate) type Chosen = (u64, Area);

/// A monitor's handle and rectangle: the primary one, or the chosen one if it is still
/// there, with the same device name and rectangle. Otherwise `NoSuchMonitor`: after the
/// customer rearranges or unplugs monitors, another monitor may be where it was.
pub(crate) fn monitor(which: Option<Chosen>) -> Result<(HMONITOR, RECT), CaptureError> {
    let (point, fallback) = match which {
        None => (POINT { x: 0, y: 0 }, MONITOR_DEFAULTTOPRIMARY),
        Some((_, a)) => (
            POINT {
                x: a.x.saturating_add(i32::try_from(a.width / 2).unwrap_or(0)),
                y: a.y.saturating_add(i32::try_from(a.height / 2).unwrap_or(0)),
            },
            MONITOR_DEFAULTTONULL,
        ),
    };
    let gone = || match which {
        Some((_, area)) => CaptureError::NoSuchMonitor(area),
        None => CaptureError::Platform("Windows shows no monitor".into()),
    };
    // SAFETY: a plain question about the desktop.
    let handle = unsafe { MonitorFromPoint(point, fallback) };
    if handle.is_invalid() {
        return Err(gone());
    }
    let (device, rect) = describe_monitor(handle)
        .ok_or_else(|| CaptureError::Platform("Windows did not say where the monitor is".into()))?;
    if let Some((id, area)) = which
        && (device_id(&device) != id || area_of(rect) != area)
    {
        return Err(gone());
    }
    Ok((handle, rect))
}

/// A monitor's device name (`DISPLAY2`) and rectangle.
fn describe_monitor(handle: HMONITOR) -> Option<(String, RECT)> {
    let mut info = MONITORINFOEXW::default();
    info.monitorInfo.cbSize = size_of::<MONITORINFOEXW>() as u32;
    // SAFETY: MONITORINFOEXW is sized as the call asks, and starts with MONITORINFO.
    if !unsafe { GetMonitorInfoW(handle, (&raw mut info).cast::<MONITORINFO>()) }.as_bool() {
        return None;
    }
    // The name ends at the first NUL.
    let end = info
        .szDevice
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(info.szDevice.len());
    let device = String::from_utf16_lossy(&info.szDevice[..end]);
    let device = device.trim_start_matches("\\\\.\\").to_owned();
    Some((device, info.monitorInfo.rcMonitor))
}

/// A monitor's id: a hash (FNV-1a) of its device name, the same in every call.
fn device_id(device: &str) -> u64 {
    device.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn area_of(r: RECT) -> Area {
    Area {
        x: r.left,
        y: r.top,
        width: u32::try_from(r.right - r.left).unwrap_or(0),
        height: u32::try_from(r.bottom - r.top).unwrap_or(0),
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
    let primary = monitor(None).ok().map(|(handle, _)| handle);
    let mut found = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        let Some((device, rect)) = describe_monitor(handle) else {
            continue;
        };
        let area = area_of(rect);
        if area.width == 0 || area.height == 0 {
            continue;
        }
        found.push(MonitorInfo {
            id: device_id(&device),
            name: if device.is_empty() {
                format!("{}", i + 1)
            } else {
                device
            },
            area,
            primary: primary == Some(handle),
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
