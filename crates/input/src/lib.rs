//! Remote input for Tandem (C1, R8, R9): the events a controlling rep's console sends over
//! the input data channel, their validation, the mapping of browser key codes to X
//! keycodes and Windows scan codes, and injection on one thread that releases every held key and button when
//! control ends.
//!
//! Nothing here decides *who* may control: the session does (`crates/session`). The
//! [`InputGate`] only lets through the participant the session named as the holder.

mod event;
mod gate;
mod inject;
mod shield;
mod validate;

pub use event::{InputEvent, MouseButton};
pub use gate::{InputGate, InputStats};
pub use inject::{EnigoInjector, InjectError, Injector, InputThread, Surface};
pub use shield::{Rect, Shield};
pub use validate::{Action, Key, RATE_BURST, RATE_PER_SECOND, Rejected, Validator, keycode_for};
