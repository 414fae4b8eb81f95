//! What remote input may never reach: the agent's own window (its consent dialogs and its
//! sharing panel). While the agent asks the customer anything, no remote event is injected
//! at all; at any time a pointer event that would land on the agent's window is dropped,
//! and while the agent's window has the keyboard focus, so are key presses and text.
//! So the rep who controls the computer cannot click "Allow" on a question meant for the
//! customer, nor press "Stop sharing" for them (DESIGN §5).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Asks the system, now, whether the agent's own window has the keyboard focus.
pub type FocusProbe = Arc<dyn Fn() -> bool + Send + Sync>;

/// A rectangle of the screen, in the injector's pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub fn contains(&self, x: i32, y: i32) -> bool {
        let inside = |v: i32, start: i32, len: u32| {
            let v = i64::from(v);
            let start = i64::from(start);
            v >= start && v < start + i64::from(len)
        };
        inside(x, self.x, self.width) && inside(y, self.y, self.height)
    }
}

#[derive(Default)]
pub struct Shield {
    paused: AtomicBool,
    focused: AtomicBool,
    probe: Mutex<Option<FocusProbe>>,
    rects: Mutex<Vec<Rect>>,
}

impl std::fmt::Debug for Shield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shield")
            .field("paused", &self.paused)
            .field("focused", &self.focused)
            .finish_non_exhaustive()
    }
}

impl Shield {
    /// Hold every remote event (a consent question is open), or let them through again.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Whether the agent's own window has the keyboard focus (as its window last saw):
    /// typed keys would go to it.
    pub fn set_focused(&self, focused: bool) {
        self.focused.store(focused, Ordering::SeqCst);
    }

    /// How to ask the system at the moment of each key press, not only as the window last
    /// saw it (the rep's Alt+Tab then Space come faster than the window looks).
    pub fn set_focus_probe(&self, probe: FocusProbe) {
        *self.probe.lock().unwrap_or_else(|e| e.into_inner()) = Some(probe);
    }

    /// Whether typed keys would go to the agent's own window now: the system's answer
    /// when there is a probe, else what the window last saw.
    pub fn focused(&self) -> bool {
        let probe = self.probe.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match probe {
            Some(probe) => probe(),
            None => self.focused.load(Ordering::SeqCst),
        }
    }

    /// Where the agent's own windows are now (none: hidden).
    pub fn set_rects(&self, rects: Vec<Rect>) {
        *self.rects.lock().unwrap_or_else(|e| e.into_inner()) = rects;
    }

    /// Whether the screen pixel (x, y) is the agent's own.
    pub fn covers(&self, x: i32, y: i32) -> bool {
        self.rects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|r| r.contains(x, y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rect_holds_its_own_pixels_only() {
        let r = Rect {
            x: 10,
            y: 20,
            width: 100,
            height: 50,
        };
        assert!(r.contains(10, 20));
        assert!(r.contains(109, 69));
        assert!(!r.contains(110, 20));
        assert!(!r.contains(10, 70));
        assert!(!r.contains(9, 20));
        let far = Rect {
            x: i32::MAX - 1,
            y: 0,
            width: u32::MAX,
            height: 1,
        };
        assert!(far.contains(i32::MAX, 0), "no overflow at the edge");
    }

    #[test]
    fn the_shield_covers_the_windows_it_is_given() {
        let shield = Shield::default();
        assert!(!shield.covers(5, 5));
        shield.set_rects(vec![Rect {
            x: 0,
            y: 0,
            width: 10,
            height: 10,
        }]);
        assert!(shield.covers(5, 5));
        shield.set_rects(Vec::new());
        assert!(!shield.covers(5, 5));
    }
}
