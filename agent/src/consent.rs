//! The customer's terminal (C1): nothing is captured or injected until they say yes here,
//! and Enter stops sharing at any moment. One thread reads stdin, so no keystroke is lost
//! between questions.

use std::io::{BufRead, Write};

use tokio::sync::mpsc;

pub struct Terminal {
    lines: mpsc::UnboundedReceiver<String>,
    closed: bool,
}

impl Terminal {
    pub fn start() -> Self {
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            lines,
            closed: false,
        }
    }

    /// Ask a yes/no question; the answer is the next line ([`Terminal::line`], read with
    /// [`yes`]). `Some(false)` at once when the input is closed: nobody can say yes.
    pub fn ask(&mut self, question: &str) -> Option<bool> {
        // Only an answer typed after the question counts.
        loop {
            match self.lines.try_recv() {
                Ok(_) => {}
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return Some(false),
            }
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        None
    }

    /// The next line the customer types; `None` once when the input closes, then
    /// pending forever.
    pub async fn line(&mut self) -> Option<String> {
        if self.closed {
            return std::future::pending().await;
        }
        let line = self.lines.recv().await;
        self.closed = line.is_none();
        line
    }
}

/// Anything but "y"/"yes" is no.
pub fn yes(answer: &str) -> bool {
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}
