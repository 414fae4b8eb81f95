//! Where a Windows capture lands: a top-down BGRA DIB section with a memory device context,
//! so GDI can copy into it, draw the cursor on it, and the encoder can read it in place.

use windows::Win32::Foundation::HWND;
use windows::Win32::Graphics::Gdi::{
    BI_RGB, BITMAPINFO, BITMAPINFOHEADER, CreateCompatibleDC, CreateDIBSection, DIB_RGB_COLORS,
    DeleteDC, DeleteObject, GdiFlush, HBITMAP, HDC, HGDIOBJ, SelectObject,
};
use windows::Win32::UI::WindowsAndMessaging::{
    CURSOR_SHOWING, CURSORINFO, DI_NORMAL, DrawIconEx, GA_ROOT, GetAncestor, GetCursorInfo,
    GetIconInfo, HCURSOR, HICON, ICONINFO, WindowFromPoint,
};

use crate::{CaptureError, Frame};

use super::failed;

pub(crate) struct Canvas {
    dc: HDC,
    bitmap: HBITMAP,
    previous_object: HGDIOBJ,
    bits: *mut u8,
    pub(crate) width: i32,
    pub(crate) height: i32,
    /// The last frame handed out, to tell an unchanged screen cheaply (GDI has no damage).
    previous: Vec<u8>,
    /// The cursor whose hotspot is known, and the hotspot.
    cursor: Option<(HCURSOR, i32, i32)>,
}

impl Canvas {
    pub(crate) fn new(width: i32, height: i32) -> Result<Self, CaptureError> {
        if width <= 0 || height <= 0 {
            return Err(CaptureError::Platform(format!(
                "nothing to capture: the area is {width}×{height}"
            )));
        }
        let info = BITMAPINFO {
            bmiHeader: BITMAPINFOHEADER {
                biSize: size_of::<BITMAPINFOHEADER>() as u32,
                biWidth: width,
                // Negative: rows top-down, as the encoder reads them.
                biHeight: -height,
                biPlanes: 1,
                biBitCount: 32,
                biCompression: BI_RGB.0,
                ..Default::default()
            },
            ..Default::default()
        };
        // SAFETY: `info` describes a 32-bit top-down bitmap; `bits` receives its pixels,
        // which live until the bitmap is deleted in `drop`.
        unsafe {
            let dc = CreateCompatibleDC(None);
            if dc.is_invalid() {
                return Err(CaptureError::Platform(
                    "a device context for capture could not be made".into(),
                ));
            }
            let mut bits = std::ptr::null_mut();
            let bitmap = match CreateDIBSection(Some(dc), &info, DIB_RGB_COLORS, &mut bits, None, 0)
            {
                Ok(bitmap) if !bits.is_null() => bitmap,
                Ok(bitmap) => {
                    let _ = DeleteObject(bitmap.into());
                    let _ = DeleteDC(dc);
                    return Err(CaptureError::Platform(
                        "a capture bitmap had no pixels".into(),
                    ));
                }
                Err(e) => {
                    let _ = DeleteDC(dc);
                    return Err(failed("making a capture bitmap", e));
                }
            };
            let previous_object = SelectObject(dc, bitmap.into());
            Ok(Self {
                dc,
                bitmap,
                previous_object,
                bits: bits.cast(),
                width,
                height,
                previous: Vec::new(),
                cursor: None,
            })
        }
    }

    pub(crate) fn dc(&self) -> HDC {
        self.dc
    }

    pub(crate) fn stride(&self) -> usize {
        self.width as usize * 4
    }

    fn len(&self) -> usize {
        self.stride() * self.height as usize
    }

    pub(crate) fn pixels_mut(&mut self) -> &mut [u8] {
        // SAFETY: GDI is done with the bitmap once flushed; `bits` holds `len` bytes, owned
        // by this canvas, borrowed mutably through `self`.
        unsafe {
            let _ = GdiFlush();
            std::slice::from_raw_parts_mut(self.bits, self.len())
        }
    }

    pub(crate) fn pixels(&self) -> &[u8] {
        // SAFETY: as in `pixels_mut`, shared.
        unsafe {
            let _ = GdiFlush();
            std::slice::from_raw_parts(self.bits, self.len())
        }
    }

    /// Draw the pointer in, for a canvas whose top-left corner is at `origin` on the screen;
    /// with `only_over`, only while the pointer is over that top-level window.
    pub(crate) fn draw_cursor(&mut self, origin: (i32, i32), only_over: Option<HWND>) {
        let mut info = CURSORINFO {
            cbSize: size_of::<CURSORINFO>() as u32,
            ..Default::default()
        };
        // SAFETY: CURSORINFO is sized as the call asks; the cursor handle is the system's
        // and only drawn; the bitmaps GetIconInfo makes are deleted here.
        unsafe {
            if GetCursorInfo(&mut info).is_err() || info.flags != CURSOR_SHOWING {
                return;
            }
            if let Some(window) = only_over {
                let under = WindowFromPoint(info.ptScreenPos);
                if under.is_invalid() || GetAncestor(under, GA_ROOT) != window {
                    return;
                }
            }
            let (hot_x, hot_y) = match self.cursor {
                Some((cursor, x, y)) if cursor == info.hCursor => (x, y),
                _ => {
                    let mut icon = ICONINFO::default();
                    if GetIconInfo(HICON(info.hCursor.0), &mut icon).is_err() {
                        return;
                    }
                    if !icon.hbmMask.is_invalid() {
                        let _ = DeleteObject(icon.hbmMask.into());
                    }
                    if !icon.hbmColor.is_invalid() {
                        let _ = DeleteObject(icon.hbmColor.into());
                    }
                    let (x, y) = (icon.xHotspot as i32, icon.yHotspot as i32);
                    self.cursor = Some((info.hCursor, x, y));
                    (x, y)
                }
            };
            let _ = DrawIconEx(
                self.dc,
                info.ptScreenPos.x - hot_x - origin.0,
                info.ptScreenPos.y - hot_y - origin.1,
                HICON(info.hCursor.0),
                0,
                0,
                0,
                None,
                DI_NORMAL,
            );
        }
    }

    /// Forget the last frame handed out: the next look counts as a change.
    pub(crate) fn forget(&mut self) {
        self.previous.clear();
    }

    /// Whether the pixels differ from the last frame handed out (and remember them if so).
    pub(crate) fn changed(&mut self) -> bool {
        let len = self.len();
        // SAFETY: as in `pixels`; `previous` is a separate allocation.
        let now = unsafe {
            let _ = GdiFlush();
            std::slice::from_raw_parts(self.bits, len)
        };
        if self.previous.as_slice() == now {
            return false;
        }
        self.previous.clear();
        self.previous.extend_from_slice(now);
        true
    }

    pub(crate) fn frame(&self) -> Frame<'_> {
        Frame {
            width: self.width as u32,
            height: self.height as u32,
            stride: self.stride(),
            bgra: self.pixels(),
            changed_rows: None,
        }
    }
}

impl Drop for Canvas {
    fn drop(&mut self) {
        // SAFETY: the handles were made in `new` and are released once.
        unsafe {
            SelectObject(self.dc, self.previous_object);
            let _ = DeleteObject(self.bitmap.into());
            let _ = DeleteDC(self.dc);
        }
    }
}

/// No window: the screen.
pub(crate) const SCREEN: Option<HWND> = None;
