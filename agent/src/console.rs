//! Windows gives a console program a console window of its own when it is double-clicked.
//! The agent is a console program (so `--cli` and its subcommands work in a Command
//! Prompt), so when it opens its own window and the console is its alone, it gives the
//! console back and the black window goes away. Started from a Command Prompt, the console
//! is shared with the prompt and is kept.
//!
//! The two calls are FFI, hence the one `unsafe` of the agent: both take only a buffer
//! sized for the call, or nothing.
#![allow(unsafe_code)]

use windows::Win32::System::Console::{FreeConsole, GetConsoleProcessList};

/// Let go of the console if no other process uses it (a double-click made it for us).
/// Afterwards the standard handles are gone: Rust's standard library then drops what is
/// written to them.
pub fn release_if_own() {
    let mut processes = [0u32; 2];
    // SAFETY: the buffer is a local array, its length is passed by the binding.
    let attached = unsafe { GetConsoleProcessList(&mut processes) };
    if attached == 1 {
        // SAFETY: no arguments; failure leaves the console as it was.
        let _ = unsafe { FreeConsole() };
    }
}
