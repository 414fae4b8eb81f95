//! A Windows test window for the agent's end-to-end tests under Wine (tests/tests/wine.rs):
//! a top-level window of one colour at a given place, printing to stdout, one line each,
//! `ready <hwnd> <x> <y>` once shown (x, y: its client area's top-left on the desktop), `click <x> <y>` (client pixels) for each left click, and
//! `char <code point>` for each character typed into it.
//!
//! `tandem-wine-window <title> <rrggbb> <x> <y> <width> <height> [--scroll]`
//!
//! With `--scroll` it shows lines of text scrolling up 30 times a second, like a document
//! being read: the bench's content for the Windows agent under Wine.

#[cfg(windows)]
fn main() -> std::process::ExitCode {
    match win::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem-wine-window: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(windows))]
fn main() {
    eprintln!("tandem-wine-window is a Windows program (built for x86_64-pc-windows-gnu)");
    std::process::exit(2);
}

#[cfg(windows)]
#[allow(unsafe_code)] // Win32 calls, each with arguments made here.
mod win {
    use std::io::Write;
    use std::sync::atomic::{AtomicU32, Ordering};

    use windows::Win32::Foundation::{COLORREF, HWND, LPARAM, LRESULT, POINT, WPARAM};
    use windows::Win32::Graphics::Gdi::{
        BeginPaint, ClientToScreen, CreateSolidBrush, DeleteObject, EndPaint, FillRect, HDC,
        InvalidateRect, PAINTSTRUCT, SetBkMode, SetTextColor, TRANSPARENT, TextOutW,
    };
    use windows::Win32::System::LibraryLoader::GetModuleHandleW;
    use windows::Win32::UI::WindowsAndMessaging::{
        CreateWindowExW, DefWindowProcW, DispatchMessageW, GetClientRect, GetMessageW, MSG,
        PostQuitMessage, RegisterClassW, SW_SHOW, SetForegroundWindow, SetTimer, ShowWindow,
        TranslateMessage, WINDOW_EX_STYLE, WM_CHAR, WM_DESTROY, WM_LBUTTONDOWN, WM_PAINT,
        WM_PRINTCLIENT, WM_TIMER, WNDCLASSW, WS_CAPTION, WS_POPUP, WS_SYSMENU, WS_VISIBLE,
    };
    use windows::core::{HSTRING, PCWSTR, w};

    /// The colour as a COLORREF (0x00bbggrr).
    static COLOUR: AtomicU32 = AtomicU32::new(0);
    /// With `--scroll`: how far the text has scrolled, in pixels (0: no text).
    static SCROLLED: AtomicU32 = AtomicU32::new(0);
    const LINE: i32 = 18;

    fn say(line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn paint(window: HWND, dc: HDC) {
        // SAFETY: a brush made and deleted here, on a device context Windows handed over.
        unsafe {
            let mut rect = Default::default();
            let _ = GetClientRect(window, &mut rect);
            let brush = CreateSolidBrush(COLORREF(COLOUR.load(Ordering::Relaxed)));
            FillRect(dc, &rect, brush);
            let _ = DeleteObject(brush.into());
            let scrolled = SCROLLED.load(Ordering::Relaxed) as i32;
            if scrolled > 0 {
                SetBkMode(dc, TRANSPARENT);
                SetTextColor(dc, COLORREF(0x202020));
                let first = scrolled / LINE;
                for row in 0..=(rect.bottom / LINE + 1) {
                    let n = first + row;
                    let text: Vec<u16> = format!(
                        "{n:5}  The quarterly report shows revenue of {} and costs of {} in region {}.",
                        n * 37 % 1000,
                        n * 53 % 700,
                        n % 12
                    )
                    .encode_utf16()
                    .collect();
                    let _ = TextOutW(dc, 8, row * LINE - scrolled % LINE, &text);
                }
            }
        }
    }

    extern "system" fn procedure(window: HWND, message: u32, w: WPARAM, l: LPARAM) -> LRESULT {
        match message {
            WM_PAINT => {
                let mut ps = PAINTSTRUCT::default();
                // SAFETY: the paint structure is ours for this message.
                let dc = unsafe { BeginPaint(window, &mut ps) };
                paint(window, dc);
                // SAFETY: ends the paint begun above.
                let _ = unsafe { EndPaint(window, &ps) };
                LRESULT(0)
            }
            WM_PRINTCLIENT => {
                paint(window, HDC(w.0 as *mut core::ffi::c_void));
                LRESULT(0)
            }
            WM_LBUTTONDOWN => {
                let (x, y) = (l.0 as u32 & 0xffff, (l.0 as u32 >> 16) & 0xffff);
                say(&format!("click {} {}", x as i16, y as i16));
                LRESULT(0)
            }
            WM_CHAR => {
                say(&format!("char {}", w.0 as u32));
                LRESULT(0)
            }
            WM_TIMER => {
                SCROLLED.fetch_add(2, Ordering::Relaxed);
                // SAFETY: the window is ours.
                let _ = unsafe { InvalidateRect(Some(window), None, false) };
                LRESULT(0)
            }
            WM_DESTROY => {
                // SAFETY: no arguments beyond the exit code.
                unsafe { PostQuitMessage(0) };
                LRESULT(0)
            }
            // SAFETY: the default handling of the same message.
            _ => unsafe { DefWindowProcW(window, message, w, l) },
        }
    }

    pub fn run() -> Result<(), String> {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        let scroll = args.last().is_some_and(|a| a == "--scroll");
        if scroll {
            args.pop();
            SCROLLED.store(1, Ordering::Relaxed);
        }
        let [title, colour, x, y, width, height] = args.as_slice() else {
            return Err(
                "usage: tandem-wine-window <title> <rrggbb> <x> <y> <width> <height> [--scroll]"
                    .into(),
            );
        };
        let rgb = u32::from_str_radix(colour, 16).map_err(|e| format!("colour {colour}: {e}"))?;
        let bgr = ((rgb & 0xff) << 16) | (rgb & 0xff00) | ((rgb >> 16) & 0xff);
        COLOUR.store(bgr, Ordering::Relaxed);
        let number = |s: &String| s.parse::<i32>().map_err(|e| format!("{s}: {e}"));
        let (x, y, width, height) = (number(x)?, number(y)?, number(width)?, number(height)?);
        // SAFETY: a window class and window made from values above; the message loop runs
        // until the window is destroyed.
        unsafe {
            let instance = GetModuleHandleW(None).map_err(|e| e.to_string())?;
            let class = WNDCLASSW {
                lpfnWndProc: Some(procedure),
                hInstance: instance.into(),
                lpszClassName: w!("TandemWineWindow"),
                ..Default::default()
            };
            if RegisterClassW(&class) == 0 {
                return Err("RegisterClassW failed".into());
            }
            let title = HSTRING::from(title.as_str());
            let window = CreateWindowExW(
                WINDOW_EX_STYLE(0),
                w!("TandemWineWindow"),
                PCWSTR(title.as_ptr()),
                WS_POPUP | WS_CAPTION | WS_SYSMENU | WS_VISIBLE,
                x,
                y,
                width,
                height,
                None,
                None,
                Some(instance.into()),
                None,
            )
            .map_err(|e| e.to_string())?;
            let _ = ShowWindow(window, SW_SHOW);
            if scroll {
                SetTimer(Some(window), 1, 33, None);
            }
            let _ = SetForegroundWindow(window);
            let mut origin = POINT::default();
            let _ = ClientToScreen(window, &mut origin);
            say(&format!(
                "ready {} {} {}",
                window.0 as usize, origin.x, origin.y
            ));
            let mut message = MSG::default();
            while GetMessageW(&mut message, None, 0, 0).as_bool() {
                let _ = TranslateMessage(&message);
                DispatchMessageW(&message);
            }
        }
        Ok(())
    }
}
