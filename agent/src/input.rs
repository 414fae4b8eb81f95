//! Remote control at the agent (C1, R8, R9): opened only once the customer agrees, fed by
//! every viewer's input data channel, and letting through only the participant the
//! session names as the holder of control.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use std::sync::Arc;

use anyhow::Context;
use tandem_capture::Source;
use tandem_input::{InputGate, InputStats, InputThread, Shield};
use tandem_protocol::ParticipantId;

use crate::backend::Backend;

/// The agent's input: nothing until the customer first allows control, nothing while the
/// customer is asked a question, and never onto the agent's own window (the [`Shield`]).
#[derive(Debug, Default)]
pub struct Input {
    gate: OnceLock<InputGate>,
    /// Events that arrived before control was ever allowed.
    before_consent: AtomicU64,
    shield: Arc<Shield>,
}

impl Input {
    /// What the agent's window keeps up to date: where it is on the screen.
    pub fn shield(&self) -> Arc<Shield> {
        Arc::clone(&self.shield)
    }

    /// A question is open (or closed): while it is, no remote event is injected, and
    /// whatever the controller held down is let go.
    pub fn pause(&self, paused: bool) {
        if self.shield.paused() != paused {
            self.shield.set_paused(paused);
            if paused && let Some(gate) = self.gate.get() {
                gate.release_held();
            }
        }
    }

    /// Open injection on the desktop (after the customer's consent).
    pub fn open(&self, backend: Arc<dyn Backend>, source: Source) -> anyhow::Result<()> {
        if self.gate.get().is_some() {
            return Ok(());
        }
        let stats = Arc::new(InputStats::default());
        let thread = InputThread::spawn(
            move || backend.input(source),
            stats.clone(),
            Arc::clone(&self.shield),
        )
        .context("remote control is not possible on this display")?;
        let _ = self.gate.set(InputGate::new(thread, stats));
        Ok(())
    }

    pub fn set_holder(&self, holder: Option<ParticipantId>) {
        if let Some(gate) = self.gate.get() {
            gate.set_holder(holder.map(|p| p.0));
        }
    }

    /// Nobody controls any more, and everything held down is released before this
    /// returns (the agent is about to exit).
    pub fn close(&self) {
        if let Some(gate) = self.gate.get() {
            gate.set_holder(None);
            gate.sync();
        }
    }

    /// One message from a viewer's input channel.
    pub fn receive(&self, from: ParticipantId, raw: &[u8]) {
        if crate::peers::tracing() {
            crate::peers::trace(&format!(
                "input received {:.3}",
                crate::peers::unix_ms(Instant::now())
            ));
        }
        match self.gate.get() {
            Some(gate) => {
                let _ = gate.receive(from.0, raw, Instant::now());
            }
            None => {
                self.before_consent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A viewer's input channel closed.
    pub fn disconnected(&self, who: ParticipantId) {
        if let Some(gate) = self.gate.get() {
            gate.disconnected(who.0);
        }
    }

    /// Events, and presses among them, injected so far (the pipeline paces for
    /// interaction while these move).
    pub fn activity(&self) -> crate::pipeline::Injected {
        self.stats().map_or_else(Default::default, |s| {
            // The last press's instant, from the input thread's wall-clock stamp.
            let stamped = s.last_press_us.load(Ordering::Relaxed);
            let ago = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .saturating_sub(std::time::Duration::from_micros(stamped));
            crate::pipeline::Injected {
                events: s.injected.load(Ordering::Relaxed),
                presses: s.presses.load(Ordering::Relaxed),
                last_press: Instant::now().checked_sub(ago),
            }
        })
    }

    pub fn stats(&self) -> Option<&InputStats> {
        self.gate.get().map(InputGate::stats)
    }

    /// Events that reached nothing: not from the holder, invalid, outside the surface,
    /// or sent before control was allowed.
    pub fn dropped(&self) -> u64 {
        self.before_consent.load(Ordering::Relaxed)
            + self.stats().map_or(0, InputStats::not_injected)
    }
}
