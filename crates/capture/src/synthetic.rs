//! A capturer with no X server, for unit tests of what consumes frames (the agent's
//! pipeline): a screen that shows a frame counter and changes only when told to.

use crate::{Capture, Frame};
use crate::{CaptureError, Capturer};

/// A synthetic screen: a grey field whose top-left block encodes a counter. `capture`
/// returns a frame when the counter changed since the last capture (like Damage), else
/// `Unchanged`; after `end` it returns `Ended`.
#[derive(Debug)]
pub struct SyntheticScreen {
    width: u32,
    height: u32,
    counter: u32,
    shown: Option<u32>,
    ended: bool,
    pixels: Vec<u8>,
    /// Every call to `capture`.
    pub polls: u64,
}

impl SyntheticScreen {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            counter: 0,
            shown: None,
            ended: false,
            pixels: vec![0x80; (width * height * 4) as usize],
            polls: 0,
        }
    }

    /// The same screen with fine detail over the grey field (a deterministic noise, as
    /// small text would give): costly to encode, so a low bitrate first sends it coarse.
    pub fn detailed(width: u32, height: u32) -> Self {
        let mut screen = Self::new(width, height);
        let mut state = 0x2545_f491_u32;
        for pixel in screen.pixels.chunks_exact_mut(4) {
            // xorshift32
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            pixel[..3].fill(state as u8);
        }
        screen
    }

    /// The screen changes: the counter goes up by one.
    pub fn tick(&mut self) {
        self.counter += 1;
    }

    /// The shared thing goes away (a closed window).
    pub fn end(&mut self) {
        self.ended = true;
    }

    fn paint(&mut self) {
        // The counter's 32 bits as 32 blocks of 8×8 pixels, black or white.
        let stride = self.width as usize * 4;
        for bit in 0..32usize {
            let on = self.counter >> bit & 1 == 1;
            let value = if on { 0xff } else { 0x00 };
            for y in 0..8usize {
                for x in 0..8usize {
                    let (px, py) = (bit * 8 + x, y);
                    if px < self.width as usize && py < self.height as usize {
                        let at = py * stride + px * 4;
                        self.pixels[at..at + 3].fill(value);
                    }
                }
            }
        }
    }
}

impl Capturer for SyntheticScreen {
    fn refresh(&mut self) {
        self.shown = None;
    }

    fn capture(&mut self) -> Result<Capture<'_>, CaptureError> {
        self.polls += 1;
        if self.ended {
            return Ok(Capture::Ended(crate::Gone::WindowClosed));
        }
        if self.shown == Some(self.counter) {
            return Ok(Capture::Unchanged);
        }
        self.shown = Some(self.counter);
        self.paint();
        Ok(Capture::Frame(Frame {
            width: self.width,
            height: self.height,
            stride: self.width as usize * 4,
            bgra: &self.pixels,
            changed_rows: None,
        }))
    }
}
