//! The agent's console on Windows.
//!
//! Windows gives a console program a console window of its own when it is double-clicked.
//! The agent is a console program (so `--cli` and its subcommands work in a Command
//! Prompt), so when it will open its own window and the console is its alone, it gives
//! the console back at its first step, before the window takes its fraction of a second
//! to open, and the black window goes away (Windows shows it for that first instant). Started from a Command Prompt, the console
//! is shared with the prompt and is kept.
//!
//! And before a consent question in the terminal, whatever was typed and not yet read is
//! thrown away, so keys typed earlier (by a rep who controlled the computer) never answer it.
//!
//! These are FFI calls, hence the one `unsafe` module of the agent: each takes a handle
//! Windows gave, a buffer sized for the call, or nothing.
#![allow(unsafe_code)]

use windows::Win32::Foundation::HANDLE;
use windows::Win32::System::Console::{
    AllocConsole, FlushConsoleInputBuffer, FreeConsole, GetConsoleProcessList, GetStdHandle,
    STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, SetStdHandle,
};

/// Let go of the console if no other process uses it (a double-click made it for us).
/// The standard handles are then set to none, not left naming closed handles (Windows
/// does not clear them, and their numbers could be given to a file or socket later):
/// Rust's standard library drops what is written to a missing handle, and child
/// processes start without them.
/// Returns whether it let go.
pub fn release_if_own() -> bool {
    let mut processes = [0u32; 2];
    // SAFETY: the buffer is a local array, its length is passed by the binding.
    let attached = unsafe { GetConsoleProcessList(&mut processes) };
    if attached != 1 {
        return false;
    }
    // SAFETY: no arguments; on failure the console and its handles stay as they were.
    if unsafe { FreeConsole() }.is_err() {
        return false;
    }
    for which in [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE] {
        // SAFETY: a null handle for one of the three standard slots.
        let _ = unsafe { SetStdHandle(which, HANDLE::default()) };
    }
    true
}

/// A console again, after [`release_if_own`], for the terminal mode when no window could
/// open: Windows sets the standard handles to it.
pub fn regain() {
    // SAFETY: no arguments; on failure the process simply has no console.
    let _ = unsafe { AllocConsole() };
}

/// Throw away console input typed but not yet read (nothing happens without a console).
pub fn discard_typed_input() {
    // SAFETY: the standard input handle, if any, is only asked to drop its pending input.
    unsafe {
        if let Ok(input) = GetStdHandle(STD_INPUT_HANDLE) {
            if !input.is_invalid() && !input.0.is_null() {
                let _ = FlushConsoleInputBuffer(input);
            }
        }
    }
}
