//! Asking the customer (C1): nothing is captured or injected until they say yes here.

use std::io::{BufRead, Write};

/// Ask a yes/no question in the terminal. Anything but "y"/"yes" (or a closed input) is no.
pub async fn ask(question: String) -> bool {
    tokio::task::spawn_blocking(move || {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        match std::io::stdin().lock().read_line(&mut answer) {
            Ok(0) | Err(_) => false,
            Ok(_) => matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"),
        }
    })
    .await
    .unwrap_or(false)
}
