//! The windows a customer can choose to share: visible, titled top-level windows that are
//! not tool windows, topmost first.

use windows::Win32::Foundation::{HWND, LPARAM};
use windows::Win32::UI::WindowsAndMessaging::{
    EnumWindows, GWL_EXSTYLE, GetWindowLongPtrW, GetWindowTextLengthW, GetWindowTextW, IsIconic,
    IsWindowVisible, WS_EX_TOOLWINDOW,
};
use windows::core::BOOL;

use super::gdi::window_rect;
use crate::{CaptureError, WindowInfo};

pub fn windows() -> Result<Vec<WindowInfo>, CaptureError> {
    super::dpi_aware();
    let mut found: Vec<WindowInfo> = Vec::new();
    // SAFETY: the callback gets a pointer to `found`, which outlives the enumeration.
    unsafe {
        EnumWindows(
            Some(each),
            LPARAM(&mut found as *mut Vec<WindowInfo> as isize),
        )
    }
    .map_err(|e| super::failed("listing the windows", e))?;
    Ok(found)
}

unsafe extern "system" fn each(window: HWND, found: LPARAM) -> BOOL {
    // SAFETY: `windows` passes a live `Vec<WindowInfo>` and nothing else uses it meanwhile.
    let found = unsafe { &mut *(found.0 as *mut Vec<WindowInfo>) };
    if let Some(info) = describe(window) {
        found.push(info);
    }
    BOOL(1)
}

fn describe(window: HWND) -> Option<WindowInfo> {
    // SAFETY: questions about a window handle Windows gave us; the title buffer is sized
    // from the length Windows reports.
    unsafe {
        if !IsWindowVisible(window).as_bool() || IsIconic(window).as_bool() {
            return None;
        }
        if GetWindowLongPtrW(window, GWL_EXSTYLE) as u32 & WS_EX_TOOLWINDOW.0 != 0 {
            return None;
        }
        let length = GetWindowTextLengthW(window);
        if length <= 0 {
            return None;
        }
        let mut title = vec![0u16; length as usize + 1];
        let copied = GetWindowTextW(window, &mut title);
        let title = String::from_utf16_lossy(&title[..copied.max(0) as usize])
            .trim()
            .to_owned();
        let rect = window_rect(window)?;
        let (width, height) = (rect.right - rect.left, rect.bottom - rect.top);
        if title.is_empty() || width < 2 || height < 2 {
            return None;
        }
        Some(WindowInfo {
            id: super::id(window),
            title,
            width: width as u32,
            height: height as u32,
        })
    }
}
