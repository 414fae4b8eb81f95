//! Double-click launch: an agent downloaded from a customer's join page carries, at the end
//! of its own file, the server and the one-time agent token it attaches with
//! (`tandem_protocol::launch`). Started without a command, the agent reads them here and
//! attaches by itself; a plain agent has none and needs `attach` or `join`.

use anyhow::Context;
use tandem_protocol::launch::{self, Launch};

/// The launch details built into this agent's executable, if the server built any in.
/// Only the file's last few KiB are read. An error means the details are there but
/// damaged (a broken download): the customer should download the agent again.
pub fn from_own_file() -> anyhow::Result<Option<Launch>> {
    let path = std::env::current_exe().context("could not find this program's own file")?;
    launch::read_from_file(&path).with_context(|| {
        format!(
            "{} looks damaged; download the agent again from your support session page",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary is a plain executable: no launch details, and no error.
    #[test]
    fn a_plain_executable_has_no_launch_details() {
        assert_eq!(from_own_file().expect("readable"), None);
    }

    /// A copy of an executable with a trailer appended reads back through the same path.
    #[test]
    fn an_executable_with_a_trailer_reads_back() {
        let own = std::env::current_exe().expect("own file");
        let dir = std::env::temp_dir().join(format!("tandem-launch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let copy = dir.join("tandem-support-123456789");
        let wanted = Launch {
            server: "https://support.example.com".into(),
            token: "agt_abc".into(),
            session: "123456789".parse().ok(),
        };
        let mut bytes = std::fs::read(&own).expect("read own file");
        bytes.extend(launch::encode(&wanted));
        std::fs::write(&copy, bytes).expect("write copy");
        let read = launch::read_from_file(&copy).expect("readable");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(read, Some(wanted));
    }
}
