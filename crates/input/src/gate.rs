//! The agent's door for input (C1, R8, R9): events reach the desktop only from the
//! participant the session named as the holder of control; everything else is dropped
//! and counted.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::inject::InputThread;
use crate::validate::{Rejected, Validator};

/// What happened to the events that arrived, for the agent's status line and for tests.
#[derive(Debug, Default)]
pub struct InputStats {
    /// Injected into the desktop.
    pub injected: AtomicU64,
    /// Of those, presses: a button or key down, text, a wheel step (the agent's pipeline
    /// looks for the answer to each right after it).
    pub presses: AtomicU64,
    /// When the last press was injected: microseconds since the Unix epoch.
    pub last_press_us: AtomicU64,
    /// From a participant who does not hold control.
    pub not_holder: AtomicU64,
    /// Failed validation (shape, range, key code, rate).
    pub rejected: AtomicU64,
    /// Pointed outside the shared surface (or at a window covering a shared window).
    pub outside: AtomicU64,
    /// Releases of keys or buttons that were not held.
    pub dropped: AtomicU64,
    /// Refused by the display.
    pub failed: AtomicU64,
    /// Held back by the [`crate::Shield`]: sent while the customer was being asked, or
    /// aimed at the agent's own window.
    pub shielded: AtomicU64,
}

impl InputStats {
    pub(crate) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Every event that did not reach the desktop.
    pub fn not_injected(&self) -> u64 {
        [
            &self.not_holder,
            &self.rejected,
            &self.outside,
            &self.dropped,
            &self.failed,
            &self.shielded,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

#[derive(Debug)]
struct Holder {
    participant: Option<u64>,
    validator: Validator,
}

/// Lets through the holder's events only. Participant ids are the session's.
#[derive(Debug)]
pub struct InputGate {
    holder: Mutex<Holder>,
    thread: InputThread,
    stats: std::sync::Arc<InputStats>,
}

impl InputGate {
    pub fn new(thread: InputThread, stats: std::sync::Arc<InputStats>) -> Self {
        Self {
            holder: Mutex::new(Holder {
                participant: None,
                validator: Validator::new(),
            }),
            thread,
            stats,
        }
    }

    pub fn stats(&self) -> &InputStats {
        &self.stats
    }

    /// The session named a new holder, or nobody. Whatever the former holder still held
    /// down is released at once.
    pub fn set_holder(&self, participant: Option<u64>) {
        let mut holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        if holder.participant != participant {
            holder.participant = participant;
            holder.validator = Validator::new();
            self.thread.release_all();
        }
    }

    pub fn holder(&self) -> Option<u64> {
        self.holder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .participant
    }

    /// The holder's input channel closed: release what they held. Control itself is the
    /// session's to end.
    pub fn disconnected(&self, participant: u64) {
        if self.holder() == Some(participant) {
            self.thread.release_all();
        }
    }

    /// One message from `sender`'s input channel.
    pub fn receive(&self, sender: u64, raw: &[u8], now: Instant) -> Result<(), Rejected> {
        let mut holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        if holder.participant != Some(sender) {
            self.stats.not_holder.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        match holder.validator.check(raw, now) {
            Ok(action) => {
                self.thread.inject(action);
                Ok(())
            }
            Err(e) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Let go of everything the holder holds down (the customer is being asked: nothing
    /// stays pressed over the question).
    pub fn release_held(&self) {
        self.thread.release_all();
    }

    /// Wait until every accepted event has been injected.
    pub fn sync(&self) {
        self.thread.sync();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::event::MouseButton;
    use crate::inject::{InjectError, Injector, Surface};
    use crate::shield::{Rect, Shield};

    /// Records what would have reached the desktop.
    #[derive(Clone, Default)]
    struct Recording(Arc<Mutex<Vec<String>>>);

    impl Recording {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
        }
        fn push(&self, s: String) -> Result<(), InjectError> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(s);
            Ok(())
        }
    }

    impl Injector for Recording {
        fn move_to(&mut self, x: i32, y: i32) -> Result<(), InjectError> {
            self.push(format!("move {x},{y}"))
        }
        fn button(&mut self, b: MouseButton, down: bool) -> Result<(), InjectError> {
            self.push(format!("{b:?} {}", if down { "down" } else { "up" }))
        }
        fn wheel(&mut self, dx: i32, dy: i32) -> Result<(), InjectError> {
            self.push(format!("wheel {dx},{dy}"))
        }
        fn key(&mut self, key: crate::Key, down: bool) -> Result<(), InjectError> {
            self.push(format!(
                "key {} {}",
                key.x11_keycode().unwrap_or_default(),
                if down { "down" } else { "up" }
            ))
        }
        fn text(&mut self, text: &str) -> Result<(), InjectError> {
            self.push(format!("text {text}"))
        }
    }

    /// A 1000×500 surface at (100, 50) whose right half is covered by another window.
    struct HalfCovered;

    impl Surface for HalfCovered {
        fn locate(&mut self, x: f64, y: f64) -> Option<(i32, i32)> {
            (x < 0.5).then(|| (100 + (x * 1000.0) as i32, 50 + (y * 500.0) as i32))
        }
    }

    fn gate() -> (InputGate, Recording) {
        let (gate, recording, _) = shielded_gate();
        (gate, recording)
    }

    fn shielded_gate() -> (InputGate, Recording, Arc<Shield>) {
        let recording = Recording::default();
        let injector = recording.clone();
        let stats = Arc::new(InputStats::default());
        let shield = Arc::new(Shield::default());
        let thread = InputThread::spawn(
            move || Ok((injector, HalfCovered)),
            stats.clone(),
            shield.clone(),
        )
        .expect("the thread starts");
        (InputGate::new(thread, stats), recording, shield)
    }

    #[test]
    fn c1_nothing_is_injected_while_the_customer_is_asked() {
        let (gate, rec, shield) = shielded_gate();
        gate.set_holder(Some(HOLDER));
        send(&gate, HOLDER, r#"{"type":"key","code":"KeyA","down":true}"#);
        gate.sync();
        assert_eq!(rec.take(), ["key 38 down"]);
        // A question opens: what is held is let go, and nothing more gets through.
        shield.set_paused(true);
        gate.release_held();
        send(
            &gate,
            HOLDER,
            r#"{"type":"key","code":"Enter","down":true}"#,
        );
        send(
            &gate,
            HOLDER,
            r#"{"type":"button","button":"left","down":true,"x":0.2,"y":0.2}"#,
        );
        gate.sync();
        assert_eq!(rec.take(), ["key 38 up"]);
        assert_eq!(gate.stats().shielded.load(Ordering::Relaxed), 2);
        shield.set_paused(false);
        send(&gate, HOLDER, r#"{"type":"move","x":0.1,"y":0.1}"#);
        gate.sync();
        assert_eq!(rec.take(), ["move 200,100"]);
    }

    #[test]
    fn c1_the_agents_own_window_is_never_clicked() {
        let (gate, rec, shield) = shielded_gate();
        gate.set_holder(Some(HOLDER));
        // The agent's window covers (150..250, 50..150) of the screen.
        shield.set_rects(vec![Rect {
            x: 150,
            y: 50,
            width: 100,
            height: 100,
        }]);
        send(
            &gate,
            HOLDER,
            r#"{"type":"button","button":"left","down":true,"x":0.1,"y":0.1}"#,
        );
        send(
            &gate,
            HOLDER,
            r#"{"type":"wheel","x":0.1,"y":0.1,"dx":0,"dy":3}"#,
        );
        send(&gate, HOLDER, r#"{"type":"move","x":0.3,"y":0.5}"#);
        gate.sync();
        assert_eq!(rec.take(), ["move 400,300"]);
        assert_eq!(gate.stats().shielded.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn c1_keys_never_reach_the_agents_own_window_while_it_has_the_focus() {
        let (gate, rec, shield) = shielded_gate();
        gate.set_holder(Some(HOLDER));
        send(&gate, HOLDER, r#"{"type":"key","code":"KeyA","down":true}"#);
        gate.sync();
        assert_eq!(rec.take(), ["key 38 down"]);
        // The customer clicks the agent's panel: it has the focus now.
        shield.set_focused(true);
        send(
            &gate,
            HOLDER,
            r#"{"type":"key","code":"Space","down":true}"#,
        );
        send(&gate, HOLDER, r#"{"type":"text","text":"x"}"#);
        // What was held before still goes up: nothing stays pressed.
        send(
            &gate,
            HOLDER,
            r#"{"type":"key","code":"KeyA","down":false}"#,
        );
        // Pointer input elsewhere is not the focus's business.
        send(&gate, HOLDER, r#"{"type":"move","x":0.3,"y":0.5}"#);
        gate.sync();
        assert_eq!(rec.take(), ["key 38 up", "move 400,300"]);
        assert_eq!(gate.stats().shielded.load(Ordering::Relaxed), 2);
        shield.set_focused(false);
        send(
            &gate,
            HOLDER,
            r#"{"type":"key","code":"Space","down":true}"#,
        );
        gate.sync();
        assert_eq!(rec.take(), ["key 65 down"]);
    }

    #[test]
    fn c1_a_window_switch_is_given_time_to_move_the_focus_before_the_next_key() {
        let (gate, rec, shield) = shielded_gate();
        // The system's answer: the agent's window has the focus from 20 ms after the Tab
        // of an Alt+Tab reached the desktop (a window manager switching windows).
        let tab_at: Arc<Mutex<Option<Instant>>> = Arc::default();
        {
            // Notes when the Tab reaches the desktop.
            let (rec, tab_at) = (rec.clone(), tab_at.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    let seen = rec
                        .0
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter()
                        .any(|e| e == "key 23 down");
                    if seen {
                        *tab_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        }
        {
            let tab_at = tab_at.clone();
            shield.set_focus_probe(Arc::new(move || {
                tab_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some_and(|t| t.elapsed() >= Duration::from_millis(20))
            }));
        }
        gate.set_holder(Some(HOLDER));
        // Alt+Tab, then at once Space (which would press the agent's focused button).
        for code in ["AltLeft", "Tab"] {
            send(
                &gate,
                HOLDER,
                &format!(r#"{{"type":"key","code":"{code}","down":true}}"#),
            );
        }
        send(
            &gate,
            HOLDER,
            r#"{"type":"key","code":"Space","down":true}"#,
        );
        gate.sync();
        assert_eq!(rec.take(), ["key 64 down", "key 23 down"]);
        assert_eq!(gate.stats().shielded.load(Ordering::Relaxed), 1);
    }

    fn send(gate: &InputGate, from: u64, json: &str) {
        let _ = gate.receive(from, json.as_bytes(), Instant::now());
    }

    const HOLDER: u64 = 7;
    const OTHER: u64 = 9;

    #[test]
    fn c1_only_the_holder_reaches_the_desktop_and_the_rest_is_counted() {
        let (gate, rec) = gate();
        send(&gate, HOLDER, r#"{"type":"key","code":"KeyA","down":true}"#);
        gate.sync();
        assert!(rec.take().is_empty(), "nobody holds control yet");
        gate.set_holder(Some(HOLDER));
        send(&gate, OTHER, r#"{"type":"move","x":0.1,"y":0.1}"#);
        send(&gate, HOLDER, r#"{"type":"move","x":0.1,"y":0.2}"#);
        send(
            &gate,
            HOLDER,
            r#"{"type":"button","button":"left","down":true,"x":0.2,"y":0.2}"#,
        );
        send(
            &gate,
            HOLDER,
            r#"{"type":"button","button":"left","down":false,"x":0.2,"y":0.2}"#,
        );
        gate.sync();
        assert_eq!(
            rec.take(),
            [
                "move 200,150",
                "move 300,150",
                "Left down",
                "move 300,150",
                "Left up"
            ]
        );
        assert_eq!(gate.stats().not_holder.load(Ordering::Relaxed), 2);
        assert_eq!(gate.stats().injected.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn window_share_points_outside_the_window_reach_nothing() {
        let (gate, rec) = gate();
        gate.set_holder(Some(HOLDER));
        send(
            &gate,
            HOLDER,
            r#"{"type":"button","button":"left","down":true,"x":0.75,"y":0.5}"#,
        );
        send(&gate, HOLDER, r#"{"type":"move","x":0.9,"y":0.5}"#);
        gate.sync();
        assert!(rec.take().is_empty());
        assert_eq!(gate.stats().outside.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn c1_when_control_ends_every_held_key_and_button_is_released() {
        let (gate, rec) = gate();
        gate.set_holder(Some(HOLDER));
        send(
            &gate,
            HOLDER,
            r#"{"type":"key","code":"ShiftLeft","down":true}"#,
        );
        send(&gate, HOLDER, r#"{"type":"key","code":"KeyA","down":true}"#);
        send(
            &gate,
            HOLDER,
            r#"{"type":"button","button":"right","down":true,"x":0.1,"y":0.1}"#,
        );
        gate.sync();
        rec.take();
        // The customer revokes: the session names nobody.
        gate.set_holder(None);
        gate.sync();
        let mut released = rec.take();
        released.sort();
        assert_eq!(released, ["Right up", "key 38 up", "key 50 up"]);
        // Their late events reach nothing, and nothing is left to release.
        send(&gate, HOLDER, r#"{"type":"key","code":"KeyB","down":true}"#);
        gate.set_holder(Some(OTHER));
        gate.sync();
        assert!(rec.take().is_empty());
    }

    #[test]
    fn a_dropped_connection_releases_the_holders_keys() {
        let (gate, rec) = gate();
        gate.set_holder(Some(HOLDER));
        send(
            &gate,
            HOLDER,
            r#"{"type":"key","code":"ControlLeft","down":true}"#,
        );
        gate.disconnected(OTHER);
        gate.sync();
        assert_eq!(rec.take(), ["key 37 down"]);
        gate.disconnected(HOLDER);
        gate.sync();
        assert_eq!(rec.take(), ["key 37 up"]);
    }

    #[test]
    fn a_release_of_a_key_never_pressed_is_dropped() {
        let (gate, rec) = gate();
        gate.set_holder(Some(HOLDER));
        send(
            &gate,
            HOLDER,
            r#"{"type":"key","code":"KeyA","down":false}"#,
        );
        send(&gate, HOLDER, r#"{"type":"text","text":"Grüße"}"#);
        send(
            &gate,
            HOLDER,
            r#"{"type":"wheel","x":0.0,"y":0.0,"dx":0,"dy":3}"#,
        );
        gate.sync();
        assert_eq!(rec.take(), ["text Grüße", "move 100,50", "wheel 0,3"]);
        assert_eq!(gate.stats().dropped.load(Ordering::Relaxed), 1);
    }
}
