//! The customer's terminal (C1): nothing is captured or injected until they say yes here,
//! and Enter stops sharing at any moment. One thread reads stdin, so no keystroke is lost
//! between questions.

use std::io::{BufRead, Write};

use tokio::sync::mpsc;

pub struct Terminal {
    lines: mpsc::UnboundedReceiver<String>,
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
        Self { lines }
    }

    /// Ask a yes/no question. Anything but "y"/"yes" (or a closed input) is no.
    pub async fn ask(&mut self, question: &str) -> bool {
        // Only an answer typed after the question counts.
        while self.lines.try_recv().is_ok() {}
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        match self.lines.recv().await {
            Some(answer) => matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"),
            None => false,
        }
    }

    /// The next line the customer types; pending forever once the input is closed.
    pub async fn line(&mut self) -> String {
        match self.lines.recv().await {
            Some(line) => line,
            None => std::future::pending().await,
        }
    }
}
