//! The CLI's signal decisions, which belong to the application and not to
//! the library. All through nix's safe API: signals are blocked (a mask,
//! inherited by every thread started after) rather than given handlers.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// SIGINT and SIGTERM, held pending after [`catch_interrupts`] and read
/// back without blocking.
static INTERRUPTS: OnceLock<SignalFd> = OnceLock::new();
/// Whether one of them has been read from [`INTERRUPTS`].
static SEEN: AtomicBool = AtomicBool::new(false);

/// Keeps SIGINT and SIGTERM from killing the process, so that cleanup code
/// runs: they are blocked on this thread (and the threads it starts after
/// this) and stay pending until [`interrupted`] reads them. A blocked read
/// or receive is not cut short: the caller checks [`interrupted`] between
/// steps.
pub fn catch_interrupts() -> std::io::Result<()> {
    let mask: SigSet = [Signal::SIGINT, Signal::SIGTERM].into_iter().collect();
    mask.thread_block()?;
    let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    let _ = INTERRUPTS.set(fd);
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived since [`catch_interrupts`].
pub fn interrupted() -> bool {
    if !SEEN.load(Ordering::SeqCst) {
        if let Some(fd) = INTERRUPTS.get() {
            if let Ok(Some(_)) = fd.read_signal() {
                SEEN.store(true, Ordering::SeqCst);
            }
        }
    }
    SEEN.load(Ordering::SeqCst)
}

/// Blocks until SIGINT or SIGTERM arrives (after [`catch_interrupts`]).
pub fn wait_for_interrupt() -> std::io::Result<()> {
    let mask: SigSet = [Signal::SIGINT, Signal::SIGTERM].into_iter().collect();
    while !interrupted() {
        mask.wait()?;
        SEEN.store(true, Ordering::SeqCst);
    }
    Ok(())
}

/// Writing to a closed pipe is then an `EPIPE` error instead of death by
/// SIGPIPE (what std's start-up does for `fn main`, by ignoring it; the
/// glibc entry point, `#![no_main]`, starts without it). Blocked rather
/// than ignored: the same for `write`, with no handler to install.
#[cfg(target_env = "gnu")]
pub fn ignore_sigpipe() {
    // Cannot fail: SIGPIPE is a valid signal and may be blocked.
    let _ = SigSet::from(Signal::SIGPIPE).thread_block();
}
