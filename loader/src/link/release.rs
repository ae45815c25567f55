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
//!   and program id ([`record_tracepoints`]), and the detach, without
//!   opening the link, opens a perf event of its own on the tracepoint
//!   before it unpins the link, and asks it (`PERF_EVENT_IOC_QUERY_BPF`,
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
/// Where a group records its perf-event links on tracepoints: symlinks
/// `tracepoints-0`, `tracepoints-1`, … in its directory (bpffs holds no
/// plain files), each target a list of `TRACEPOINT_ID PROG_ID PIN` lines,
/// as many as fit one target. One `readlink` serves the whole detach, which
/// then need not open such a link to learn what to watch.
const RECORD: &str = "tracepoints-";
/// What a symlink target holds at most (the kernel's limit is 4,096 with
/// the NUL).
const RECORD_MAX: usize = 4000;
/// Groups of rawbpf before the records above: a directory with a symlink
/// per link, named as its pin, whose target is the id
/// (`tracepoints/enter_getppid -> 305`).
const OLD_RECORDS: &str = "tracepoints";

/// A perf-event link on a tracepoint, as a group records it: its pin name,
/// the tracepoint's id, its program's id.
pub(super) struct OnTracepoint {
    pub pin: String,
    pub tracepoint: u64,
    pub prog_id: u32,
}

/// Records the perf-event links on tracepoints that `group` pins. Best
/// effort: a link not recorded is detached as well, but its detach opens
/// it, and waits longer if its tracepoint is unknown (see [`Ending::wait`]).
pub(super) fn record_tracepoints(group: &Path, links: &[OnTracepoint]) {
    let mut chunks = vec![String::new()];
    for OnTracepoint {
        pin,
        tracepoint,
        prog_id,
    } in links
    {
        let line = format!("{tracepoint} {prog_id} {pin}\n");
        if pin.contains('\n') || line.len() > RECORD_MAX {
            continue;
        }
        if chunks
            .last()
            .is_some_and(|c| c.len() + line.len() > RECORD_MAX)
        {
            chunks.push(String::new());
        }
        chunks
            .last_mut()
            .into_iter()
            .for_each(|c| c.push_str(&line));
    }
    for (k, chunk) in chunks.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
        let _ = std::os::unix::fs::symlink(chunk, group.join(format!("{RECORD}{k}")));
    }
}

/// The perf-event links on tracepoints a group recorded, and how many
/// record symlinks hold them.
struct Recorded {
    links: Vec<OnTracepoint>,
    records: usize,
    /// A group of an older rawbpf: ask [`OLD_RECORDS`] per link.
    old: bool,
}

impl Recorded {
    fn read(group: &Path) -> Recorded {
        let mut out = Recorded {
            links: Vec::new(),
            records: 0,
            old: false,
        };
        while let Ok(target) = std::fs::read_link(group.join(format!("{RECORD}{}", out.records))) {
            out.records += 1;
            let text = target.as_os_str().to_string_lossy().into_owned();
            out.links.extend(text.lines().filter_map(|l| {
                let mut words = l.splitn(3, ' ');
                Some(OnTracepoint {
                    tracepoint: words.next()?.parse().ok()?,
                    prog_id: words.next()?.parse().ok()?,
                    pin: words.next()?.to_owned(),
                })
            }));
        }
        out.old = out.records == 0 && group.join(OLD_RECORDS).is_dir();
        out
    }

    /// The record of the link pinned as `pin`.
    fn link(&self, pin: &str) -> Option<&OnTracepoint> {
        self.links.iter().find(|l| l.pin == pin)
    }

    /// The tracepoint id an older rawbpf recorded for `pin`.
    fn old_tracepoint_of(&self, group: &Path, pin: &str) -> Option<u64> {
        if !self.old {
            return None;
        }
        std::fs::read_link(group.join(OLD_RECORDS).join(pin))
            .ok()?
            .to_str()?
            .parse()
            .ok()
    }
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
    let recorded = Recorded::read(dir);
    let links = dir.join(LINKS);
    for l in super::group::names(&links) {
        let path = links.join(&l);
        if let Some(r) = recorded.link(&l) {
            // Watched from before the link goes, while its event holds the
            // tracepoint; then its pin, its last holder, goes.
            ending.watch_or_wait(Some(r.tracepoint), r.prog_id);
            detached += usize::from(std::fs::remove_file(&path).is_ok());
            continue;
        }
        let link = CString::new(path.as_os_str().as_encoded_bytes())
            .ok()
            .and_then(|c| sys::obj_get(&c).ok());
        let removed = match link {
            Some(fd) => end_pinned(fd, &path, recorded.old_tracepoint_of(dir, &l), &mut ending),
            None => std::fs::remove_file(&path).is_ok(),
        };
        if removed {
            detached += 1;
        }
    }
    let maps = dir.join(super::group::MAPS);
    let map_pins = super::struct_ops::unregister_pinned(&maps);
    remove_group_dir(dir, &map_pins, &recorded);
    ending.wait();
    detached
}

/// Removes a group's directory whose links are unpinned: each pin and
/// record it knows of, then the directories, in as few calls as it takes;
/// whatever else is there (a kill's leftovers, an older layout) goes with
/// `remove_dir_all`.
fn remove_group_dir(dir: &Path, map_pins: &[String], recorded: &Recorded) {
    let maps = dir.join(super::group::MAPS);
    map_pins.iter().for_each(|m| {
        let _ = std::fs::remove_file(maps.join(m));
    });
    (0..recorded.records).for_each(|k| {
        let _ = std::fs::remove_file(dir.join(format!("{RECORD}{k}")));
    });
    let emptied = std::fs::remove_dir(dir.join(LINKS)).is_ok()
        && std::fs::remove_dir(&maps).is_ok()
        && std::fs::remove_dir(dir).is_ok();
    if !emptied {
        let _ = std::fs::remove_dir_all(dir);
    }
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
            ending.watch_or_wait(tracepoint, info.prog_id);
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
    /// already open on it or a new one; a program whose tracepoint is
    /// unknown (`None`) or cannot be watched is waited for until it is
    /// freed. Called before the link's last holder goes.
    fn watch_or_wait(&mut self, id: Option<u64>, prog: u32) {
        let Some(id) = id else {
            return self.programs.push(prog);
        };
        if let Some((.., progs)) = self.on_tracepoints.iter_mut().find(|(t, ..)| *t == id) {
            return progs.push(prog);
        }
        match watch_tracepoint(id) {
            Some(event) => self.on_tracepoints.push((id, event, vec![prog])),
            None => self.programs.push(prog),
        }
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

#[cfg(test)]
mod tests {
    use super::{record_tracepoints, OnTracepoint, Recorded, OLD_RECORDS, RECORD};

    fn temp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rawbpf-release-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn on(pin: &str, tracepoint: u64, prog_id: u32) -> OnTracepoint {
        OnTracepoint {
            pin: pin.to_owned(),
            tracepoint,
            prog_id,
        }
    }

    fn ids(r: &Recorded, pin: &str) -> Option<(u64, u32)> {
        r.link(pin).map(|l| (l.tracepoint, l.prog_id))
    }

    #[test]
    fn records_read_back_in_one_symlink() {
        let d = temp("one");
        let links = [on("enter_getppid", 305, 41), on("exit_close-1", 775, 42)];
        record_tracepoints(&d, &links);
        let r = Recorded::read(&d);
        assert_eq!((r.records, r.old), (1, false));
        assert_eq!(ids(&r, "enter_getppid"), Some((305, 41)));
        assert_eq!(ids(&r, "exit_close-1"), Some((775, 42)));
        assert_eq!(ids(&r, "raw_sys_enter"), None);
        assert_eq!(r.old_tracepoint_of(&d, "enter_getppid"), None);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn many_records_split_over_symlinks() {
        let d = temp("many");
        let links: Vec<OnTracepoint> = (0..400u32)
            .map(|i| on(&format!("program_{i:04}"), u64::from(i), 1000 + i))
            .collect();
        record_tracepoints(&d, &links);
        let r = Recorded::read(&d);
        assert!(r.records > 1, "{} records", r.records);
        for k in 0..r.records {
            let t = std::fs::read_link(d.join(format!("{RECORD}{k}"))).unwrap();
            assert!(t.as_os_str().len() <= 4000);
        }
        assert!(links
            .iter()
            .all(|l| ids(&r, &l.pin) == Some((l.tracepoint, l.prog_id))));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn older_groups_records_are_read_per_link() {
        let d = temp("old");
        std::fs::create_dir(d.join(OLD_RECORDS)).unwrap();
        std::os::unix::fs::symlink("305", d.join(OLD_RECORDS).join("enter_getppid")).unwrap();
        let r = Recorded::read(&d);
        assert_eq!((r.records, r.old), (0, true));
        assert_eq!(r.old_tracepoint_of(&d, "enter_getppid"), Some(305));
        assert_eq!(r.old_tracepoint_of(&d, "exit_getppid"), None);
        assert!(r.link("enter_getppid").is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
