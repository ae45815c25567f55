//! Ending a group's pinned links so that no program of theirs runs once
//! the detach returns, at the least cost each kind allows.
//!
//! - A link with `BPF_LINK_DETACH` (cgroup, netns, XDP, TCX, netfilter,
//!   sockmap, struct_ops) is taken off its hook in the call.
//! - A raw tracepoint link has none, but its release only unregisters a
//!   tracepoint probe: its pin is removed first, so that our fd is its last
//!   holder, and closing that fd releases it in the call
//!   (`bpf_link_put_direct`). Checked: its id is then gone.
//! - A perf-event link on a tracepoint ends when its pin, its last holder,
//!   goes: the kernel releases it from a work item, which takes the program
//!   off the tracepoint's program array, then waits for an RCU Tasks Trace
//!   grace period before it lets go of the program (~15-60 ms here).
//!   Closing the link ourselves would do the same in the call, one link
//!   after another. So the group records each such link's tracepoint id
//!   ([`record_tracepoint`]), and the detach opens a perf event of its own
//!   on the tracepoint beforehand and asks it (`PERF_EVENT_IOC_QUERY_BPF`,
//!   which reads the array under the lock the release takes) until the
//!   program is off: from then on no occurrence of the tracepoint runs it.
//!   The link's own event still holds the tracepoint then, so opening and
//!   closing ours only counts references.
//! - Every other kind, and a perf-event link whose tracepoint is not
//!   recorded (a group of an older rawbpf) or cannot be asked, ends through
//!   its pin too, and its program is waited for until the kernel frees it
//!   ([`Ending::wait`]): a grace period or two.

use super::group::LINKS;
use crate::sys;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// `BPF_LINK_TYPE_RAW_TRACEPOINT`.
const RAW_TRACEPOINT: u32 = 1;
/// `BPF_LINK_TYPE_PERF_EVENT`.
const PERF_EVENT: u32 = 7;
/// Link types whose kernel ops have no `detach` (`BPF_LINK_DETACH` fails
/// with EOPNOTSUPP), not asked to: raw tracepoint, tracing, iter, perf
/// event, kprobe_multi, uprobe_multi.
const NO_DETACH: [u32; 6] = [RAW_TRACEPOINT, 2, 4, PERF_EVENT, 8, 12];
/// Where a group records the tracepoint ids of its perf-event links: a
/// symlink per link, named as its pin, whose target is the id
/// (`tracepoints/enter_getppid -> 305`).
const TRACEPOINTS: &str = "tracepoints";

/// Records that the link pinned as `pin` in `group` is a perf-event link on
/// tracepoint `id`. Best effort: without it, the detach waits longer.
pub(super) fn record_tracepoint(group: &Path, pin: &str, id: u64) {
    let dir = group.join(TRACEPOINTS);
    let at = dir.join(pin);
    if std::os::unix::fs::symlink(id.to_string(), &at).is_err() {
        let _ = std::fs::create_dir(&dir);
        let _ = std::os::unix::fs::symlink(id.to_string(), &at);
    }
}

/// The tracepoint id recorded for `pin` in `group`.
fn tracepoint_of(group: &Path, pin: &str) -> Option<u64> {
    std::fs::read_link(group.join(TRACEPOINTS).join(pin))
        .ok()?
        .to_str()?
        .parse()
        .ok()
}

/// A perf event of our own on tracepoint `id`, to watch the tracepoint's
/// programs through.
fn watch_tracepoint(id: u64) -> Option<OwnedFd> {
    let open = sys::PerfOpen {
        type_: sys::PERF_TYPE_TRACEPOINT,
        config: id,
        ..Default::default()
    };
    // Whether it can be asked (CAP_PERFMON) shows when it is: the program
    // is then waited for as the others (see Ending::wait).
    sys::perf_event_open(&open, -1, sys::this_cpu()).ok()
}

/// What ending a group's links leaves to wait for.
#[derive(Default)]
struct Ending {
    /// Programs to wait for until the kernel frees them.
    programs: Vec<u32>,
    /// Per tracepoint (its id): our event on it, and the programs to wait
    /// for until they are off it. One event per tracepoint: a query lists
    /// all of its programs.
    on_tracepoints: Vec<(u64, OwnedFd, Vec<u32>)>,
}

/// Detaches every link pinned in `dir` and removes its pins and itself;
/// returns how many link pins it removed. Safe to repeat after a kill. No
/// program of those links runs once it returns (see this module's head).
pub(super) fn clear(dir: &Path) -> usize {
    let mut detached = 0;
    let mut ending = Ending::default();
    let links = dir.join(LINKS);
    for l in super::group::names(&links) {
        let path = links.join(&l);
        let link = CString::new(path.as_os_str().as_encoded_bytes())
            .ok()
            .and_then(|c| sys::obj_get(&c).ok());
        let removed = match link {
            Some(fd) => end_pinned(fd, &path, tracepoint_of(dir, &l), &mut ending),
            None => std::fs::remove_file(&path).is_ok(),
        };
        if removed {
            detached += 1;
        }
    }
    super::struct_ops::unregister_pinned(&dir.join(super::group::MAPS));
    let _ = std::fs::remove_dir_all(dir);
    ending.wait();
    detached
}

/// Ends the link pinned at `path` (`fd` opened from it; `tracepoint` the
/// id its group recorded for it) and removes the pin; returns whether the
/// pin was removed. What the kernel ends later goes into `ending`.
fn end_pinned(fd: OwnedFd, path: &Path, tracepoint: Option<u64>, ending: &mut Ending) -> bool {
    let info = sys::link_info(fd.as_fd()).ok();
    let detachable = info.is_none_or(|i| !NO_DETACH.contains(&i.link_type));
    if detachable && sys::link_detach(fd.as_fd()).is_ok() {
        drop(fd);
        return std::fs::remove_file(path).is_ok();
    }
    // A kind without BPF_LINK_DETACH, or detached by someone else already.
    match info {
        Some(info) if info.link_type == RAW_TRACEPOINT => {
            let removed = std::fs::remove_file(path).is_ok();
            // The last holder, unless another process opened the link by
            // id meanwhile (a listing): then it ends when that one lets go.
            drop(fd);
            if sys::link_get_fd_by_id(info.id).is_ok() {
                ending.programs.push(info.prog_id);
            }
            removed
        }
        Some(info) if info.link_type == PERF_EVENT => {
            // Watched from before the link goes, while its event holds the
            // tracepoint.
            if !tracepoint.is_some_and(|id| ending.watch(id, info.prog_id)) {
                ending.programs.push(info.prog_id);
            }
            drop(fd);
            std::fs::remove_file(path).is_ok()
        }
        other => {
            ending.programs.extend(other.map(|i| i.prog_id));
            drop(fd);
            std::fs::remove_file(path).is_ok()
        }
    }
}

impl Ending {
    /// Watches tracepoint `id` for `prog` to leave it, through the event
    /// already open on it or a new one; false if it cannot be watched.
    fn watch(&mut self, id: u64, prog: u32) -> bool {
        if let Some((.., progs)) = self.on_tracepoints.iter_mut().find(|(t, ..)| *t == id) {
            progs.push(prog);
            return true;
        }
        let Some(event) = watch_tracepoint(id) else {
            return false;
        };
        self.on_tracepoints.push((id, event, vec![prog]));
        true
    }

    /// Waits (a second at most) until no program of the ended links can
    /// run any more: each program watched on its tracepoint is off it,
    /// and each other program is gone ([`wait_released`]). A program
    /// whose tracepoint cannot be asked any more is waited for as the
    /// others. Our events on the tracepoints are closed after.
    fn wait(mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        // The kernel queued the releases on this CPU's workqueue: yielding
        // lets them run, a few times before sleeping between questions.
        let mut yields = 0;
        for (_, event, progs) in &self.on_tracepoints {
            loop {
                match sys::perf_event_query_bpf(event.as_fd()) {
                    Ok(ids) if !progs.iter().any(|p| ids.contains(p)) => break,
                    Ok(_) if yields < 8 => {
                        yields += 1;
                        std::thread::yield_now();
                    }
                    Ok(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_micros(100))
                    }
                    Ok(_) => break,
                    Err(_) => {
                        self.programs.extend(progs);
                        break;
                    }
                }
            }
        }
        wait_released(&self.programs);
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
fn wait_released(programs: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(1);
    for &id in programs {
        while sys::prog_get_fd_by_id(id).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}
