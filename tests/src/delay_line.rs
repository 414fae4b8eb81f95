//! A wire that delays what crosses it, for kernels without netem (this machine's): two TAP
//! devices whose frames this process copies from one to the other after a delay, each way
//! on its own. [`crate::netns::Topology`] uses one as a site's access link when
//! [`crate::netns::TopologySpec::customer_delay_line`] asks for it; the link's token bucket
//! and drop rules then sit on the TAP devices as they would on a veth.
//!
//! Frames cross in the order they came, each `delay` after it was read; a change of delay
//! applies to frames read from then on. At most [`QUEUE_FRAMES`] wait in each direction
//! (more are dropped, as by a full line card).

// One ioctl, TUNSETIFF, binds the opened /dev/net/tun to a TAP device of our name: no
// safe wrapper for it exists in std, and the crates that wrap it bring much more than
// this. The ifreq it reads is built here, zeroed first, and lives across the call.
// And tokio's AsyncFd::register, unsafe because it cannot know the descriptor stays
// open: here the AsyncFd owns the File.
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// The most frames waiting in one direction.
pub const QUEUE_FRAMES: usize = 10_000;

/// A running delay line between two TAP devices (in the root namespace when made; move
/// them with `ip link set <name> netns …`: the line keeps working). Dropping it stops the
/// line and removes both devices.
#[derive(Debug)]
pub struct DelayLine {
    delay_ms: Arc<AtomicU32>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DelayLine {
    /// TAP devices `a` and `b` (new names, at most 15 bytes) joined by a line with no delay
    /// yet. Needs root (CAP_NET_ADMIN) and /dev/net/tun.
    pub fn start(a: &str, b: &str) -> anyhow::Result<DelayLine> {
        let (ta, tb) = (tap(a)?, tap(b)?);
        let delay_ms = Arc::new(AtomicU32::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let delay = Arc::clone(&delay_ms);
        let (ready_tx, ready) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let thread = std::thread::Builder::new()
            .name(format!("delay-line {a}"))
            .spawn(move || {
                runtime.block_on(async move {
                    // SAFETY: each AsyncFd owns its File, so the descriptor it watches
                    // stays open, and is this one, for as long as it is registered.
                    let (a, b) = unsafe { (AsyncFd::register(ta), AsyncFd::register(tb)) };
                    let (a, b) = match (a, b) {
                        (Ok(a), Ok(b)) => (a, b),
                        (Err(e), _) | (_, Err(e)) => {
                            let e = anyhow::anyhow!("could not watch a TAP device: {e}");
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        _ = stopped => {}
                        e = direction(&a, &b, &delay) => eprintln!("delay line: {e:#}"),
                        e = direction(&b, &a, &delay) => eprintln!("delay line: {e:#}"),
                    }
                });
            })?;
        ready
            .recv()
            .context("the delay line's thread ended before it started")??;
        Ok(DelayLine {
            delay_ms,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Delay each frame, each way, by this much from now on.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        self.delay_ms.store(ms, Ordering::Relaxed);
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copy frames from `from` to `to`, each after the delay in force when it was read. Ends
/// only on an error, which it returns.
async fn direction(
    from: &AsyncFd<File>,
    to: &AsyncFd<File>,
    delay_ms: &AtomicU32,
) -> anyhow::Error {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buffer = vec![0u8; 65_536];
    loop {
        let due = queue.front().map(|(at, _)| *at);
        tokio::select! {
            ready = from.readable() => {
                let mut guard = match ready {
                    Ok(guard) => guard,
                    Err(e) => return anyhow::Error::new(e).context("waiting to read a TAP device"),
                };
                loop {
                    match guard.try_io(|fd| fd.get_ref().read(&mut buffer)) {
                        Ok(Ok(n)) => {
                            let delay = Duration::from_millis(delay_ms.load(Ordering::Relaxed).into());
                            if queue.len() < QUEUE_FRAMES {
                                queue.push_back((Instant::now() + delay, buffer[..n].to_vec()));
                            }
                        }
                        Ok(Err(e)) => return anyhow::Error::new(e).context("reading a TAP device"),
                        Err(_would_block) => break,
                    }
                }
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let now = Instant::now();
                while queue.front().is_some_and(|(at, _)| *at <= now) {
                    let Some((_, frame)) = queue.pop_front() else { break };
                    // A device that cannot take a frame now (down, or its queue full) loses
                    // it, as a wire would.
                    let _ = to.get_ref().write(&frame);
                }
            }
        }
    }
}

/// A new TAP device `name`, frames without a packet-information header, opened for
/// non-blocking reads and writes; it goes away when the file is closed.
fn tap(name: &str) -> anyhow::Result<File> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        bail!("a TAP device's name must be 1 to 15 bytes: {name:?}");
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")
        .context("could not open /dev/net/tun (a delay line needs root and the tun module)")?;
    // SAFETY: ifreq is plain data (a name and a union of integers and a pointer), for
    // which all zero bytes is a valid value; every byte the kernel may read is then set.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    request.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    for (to, from) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *to = from as libc::c_char;
    }
    // SAFETY: `file` is an open /dev/net/tun; TUNSETIFF reads an `ifreq`, and `request` is
    // one, wholly initialised, its name NUL-terminated (shorter than IFNAMSIZ), and it
    // outlives the call.
    let done = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request) };
    if done != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("could not create the TAP device {name}"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_too_long_for_an_interface_is_refused() {
        let e = tap("a-name-far-too-long").expect_err("refused");
        assert!(format!("{e:#}").contains("1 to 15 bytes"), "{e:#}");
    }
}
