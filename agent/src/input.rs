//! Remote control at the agent (C1, R8, R9): opened only once the customer agrees, fed by
//! every viewer's input data channel, and letting through only the participant the
//! session names as the holder of control.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use tandem_capture::{Locator, Source};
use tandem_input::{EnigoInjector, InputGate, InputStats, InputThread, Surface};
use tandem_protocol::ParticipantId;

/// The shared surface: desktop or window, as the capture sees it.
struct Shared(Locator);

impl Surface for Shared {
    fn locate(&mut self, x: f64, y: f64) -> Option<(i32, i32)> {
        self.0.locate(x, y)
    }
}

/// The agent's input: nothing until the customer first allows control.
#[derive(Debug, Default)]
pub struct Input {
    gate: OnceLock<InputGate>,
    /// Events that arrived before control was ever allowed.
    before_consent: AtomicU64,
}

impl Input {
    /// Open injection on the display (after the customer's consent).
    pub fn open(&self, display: Option<String>, source: Source) -> anyhow::Result<()> {
        if self.gate.get().is_some() {
            return Ok(());
        }
        let stats = std::sync::Arc::new(InputStats::default());
        let thread = InputThread::spawn(
            move || {
                let injector = EnigoInjector::open(display.as_deref())?;
                let locator = Locator::new(display.as_deref(), source)
                    .map_err(|e| tandem_input::InjectError::Open(e.to_string()))?;
                Ok((injector, Shared(locator)))
            },
            stats.clone(),
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

    pub fn holder(&self) -> Option<ParticipantId> {
        self.gate
            .get()
            .and_then(InputGate::holder)
            .map(ParticipantId)
    }

    /// One message from a viewer's input channel.
    pub fn receive(&self, from: ParticipantId, raw: &[u8]) {
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
