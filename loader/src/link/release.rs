//! Ending a group's pinned links so that no program of theirs runs once
//! the detach returns, at the least cost each kind allows.
//!
//! - A link with `BPF_LINK_DETACH` (cgroup, netns, XDP, TCX, netfilter,
//!   sockmap, struct_ops) is taken off its hook in the call.
//! - A raw tracepoint link has none, but its release only unregisters a
//!   tracepoint probe: its pin is removed first, so that our fd is its last
//!   holder, and closing that fd releases it in the call
//!   (`bpf_link_put_direct`). Checked: its id is then gone.
//! - Every other kind (perf-event links above all) ends when its pin, its
//!   last holder, goes: the kernel releases it from a work item, and frees
//!   its program only after that, so the program is waited for
//!   ([`wait_released`]). Closing such a link ourselves would release it in
//!   the call too, but a perf-event link's release waits for an RCU Tasks
//!   Trace grace period (~15-50 ms here, one link after another), and the
//!   kernel's work items wait for theirs side by side.

use crate::sys;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// `BPF_LINK_TYPE_RAW_TRACEPOINT`.
const RAW_TRACEPOINT: u32 = 1;

/// Ends the link whose pin is `path` (`fd` opened from it) and removes the
/// pin; returns whether the pin was removed. A program whose end is left
/// to the kernel goes into `wait` (see [`wait_released`]).
pub(super) fn end_pinned(fd: OwnedFd, path: &Path, wait: &mut Vec<u32>) -> bool {
    if sys::link_detach(fd.as_fd()).is_ok() {
        drop(fd);
        return std::fs::remove_file(path).is_ok();
    }
    // Detached by someone else already, or a kind without BPF_LINK_DETACH.
    let info = sys::link_info(fd.as_fd()).ok();
    match info {
        Some(info) if info.link_type == RAW_TRACEPOINT => {
            let removed = std::fs::remove_file(path).is_ok();
            // The last holder, unless another process opened the link by
            // id meanwhile (a listing): then it ends when that one lets go.
            drop(fd);
            if sys::link_get_fd_by_id(info.id).is_ok() {
                wait.push(info.prog_id);
            }
            removed
        }
        other => {
            wait.extend(other.map(|i| i.prog_id));
            drop(fd);
            std::fs::remove_file(path).is_ok()
        }
    }
}

/// Waits (a second at most) until the programs of links whose last holder
/// went are gone. The kernel frees such a link from a work item, and the
/// link is out of reach by id before it takes the program off the hook; the
/// program itself goes a grace period after it was taken off. So a program
/// whose id is gone runs nowhere, and a perf event's program cannot run
/// once more after `detach` returned. A program something else still holds
/// (a prog array pinned elsewhere) ends the wait at the second.
///
/// One `BPF_PROG_GET_FD_BY_ID` a round, for the first program still there,
/// and 500 µs of sleep while it is: the kernel frees them together, a grace
/// period after the last pin went, so the others are asked once each.
pub(super) fn wait_released(programs: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(1);
    for &id in programs {
        while sys::prog_get_fd_by_id(id).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}
