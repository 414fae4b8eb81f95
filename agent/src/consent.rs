//! The customer's terminal in `--cli` mode (C1): nothing is captured or injected until they
//! say yes here, and Enter stops sharing at any moment. One thread reads stdin, so no keystroke is lost
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
    /// `prompt` shows the answers: `[y/N]`, `[j/N]`.
    pub fn ask(&mut self, question: &str, prompt: &str) -> Option<bool> {
        // Only an answer typed after the question counts: keys typed before it (maybe by
        // a rep who controlled the computer, without Enter) are thrown away first, then
        // lines read already.
        discard_typed_input();
        loop {
            match self.lines.try_recv() {
                Ok(_) => {}
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return Some(false),
            }
        }
        eprint!("{question} {prompt} ");
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

/// Throw away what was typed into the terminal and not read yet (a half-typed line stays
/// in the terminal's buffer until Enter). Nothing to do when stdin is not a terminal.
fn discard_typed_input() {
    #[cfg(unix)]
    discard_typed(std::io::stdin());
    #[cfg(windows)]
    crate::console::discard_typed_input();
}

/// Throw away what was typed into the terminal `fd` and not read yet.
#[cfg(unix)]
fn discard_typed(fd: impl std::os::fd::AsFd) {
    let _ = rustix::termios::tcflush(fd, rustix::termios::QueueSelector::IFlush);
}

/// Anything but yes (in English or Norwegian: "y", "yes", "j", "ja") is no.
pub fn yes(answer: &str) -> bool {
    matches!(
        answer.trim().to_lowercase().as_str(),
        "y" | "yes" | "j" | "ja"
    )
}

#[cfg(test)]
mod tests {
    /// C1: a rep who controlled the computer types "y" into the customer's terminal and
    /// no Enter; the question comes, the customer presses Enter meaning "no": the line read
    /// is empty, not "y". A real terminal (a pseudo-terminal pair), as the customer's.
    #[cfg(target_os = "linux")]
    #[test]
    fn c1_keys_typed_before_the_question_never_answer_it() {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pty");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let terminal = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY,
            Mode::empty(),
        )
        .expect("the terminal side");
        rustix::io::write(&master, b"y").expect("the rep types y");
        // Typed, not yet a line: the terminal holds it until Enter. It is in the terminal's
        // line once the terminal echoes it back.
        let mut echo = [0u8; 8];
        let n = rustix::io::read(&master, &mut echo).expect("the echo");
        assert_eq!(&echo[..n], b"y");
        super::discard_typed(&terminal);
        rustix::io::write(&master, b"\n").expect("the customer presses Enter");
        let mut line = [0u8; 16];
        let n = rustix::io::read(&terminal, &mut line).expect("a line");
        assert_eq!(
            &line[..n],
            b"\n",
            "the answer is what was typed after the question"
        );
        assert!(!super::yes(std::str::from_utf8(&line[..n]).expect("text")));
    }

    #[test]
    fn only_a_yes_is_yes() {
        for yes in ["y", "Yes", " ja ", "J"] {
            assert!(super::yes(yes), "{yes:?}");
        }
        for no in ["", "n", "nei", "no", "yess", "r"] {
            assert!(!super::yes(no), "{no:?}");
        }
    }
}
