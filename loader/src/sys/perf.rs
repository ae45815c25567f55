//! `perf_event_open(2)` and the perf-event ioctls BPF attachment needs:
//! tracepoint, kprobe, uprobe and sampling events, and attaching a program
//! to one on kernels without perf-event links. nix wraps none of them.

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `PERF_TYPE_SOFTWARE`.
pub const PERF_TYPE_SOFTWARE: u32 = 1;
/// `PERF_TYPE_TRACEPOINT`.
pub const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_COUNT_SW_CPU_CLOCK`.
pub const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;

/// `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `attr.flags` bit `freq`: `sample_period` is a frequency in Hz.
const FLAG_FREQ: u64 = 1 << 10;
/// `PERF_EVENT_IOC_ENABLE`: `_IO('$', 0)`.
const IOC_ENABLE: libc::c_ulong = 0x2400;
/// `PERF_EVENT_IOC_SET_BPF`: `_IOW('$', 8, __u32)`.
const IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
/// `PERF_EVENT_IOC_QUERY_BPF`: `_IOWR('$', 10, struct perf_event_query_bpf *)`.
const IOC_QUERY_BPF: libc::c_ulong = 0xc008_240a;
/// `BPF_TRACE_MAX_PROGS`: at most this many programs on one tracepoint.
const TRACE_MAX_PROGS: usize = 64;

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5` (112 bytes), every
/// kernel since 4.1 takes it; later fields stay zero.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period_or_freq: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    /// `config1`: a kprobe's function name, a uprobe's path (pointers).
    config1: u64,
    /// `config2`: the probe's offset.
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    _reserved_2: u16,
}

/// One perf event to open.
#[derive(Default)]
pub struct PerfOpen<'a> {
    /// `PERF_TYPE_*`, or a dynamic PMU's type (kprobe, uprobe).
    pub type_: u32,
    /// The event (a tracepoint id, a software counter, the retprobe bit).
    pub config: u64,
    /// Sampling frequency in Hz (0: not a sampling event).
    pub sample_freq: u64,
    /// A kprobe's function name or a uprobe's binary path (`config1`).
    pub name: Option<&'a CStr>,
    /// The probe's offset (`config2`).
    pub offset: u64,
    /// `sample_type` (`PERF_SAMPLE_*` bits; a BPF output event's `RAW`).
    pub sample_type: u64,
    /// Sample every this many events (when `sample_freq` is 0).
    pub sample_period: u64,
    /// Wake a reader after this many samples (0: the kernel's default).
    pub wakeup_events: u32,
}

/// The CPU to open a perf event on when its CPU does not matter: the one
/// this thread runs on (0 if the kernel cannot say). A tracepoint's or a
/// kprobe's BPF program runs on every CPU whichever CPU its event counts
/// on, and an event opened for another CPU is installed there, and later
/// removed, by a call on that CPU: from CPU 1 of this 2-vCPU machine (6.18),
/// opening and closing 8 tracepoint events for CPU 0 took 180 + 86 µs,
/// for CPU 1 80 + 17 µs.
pub fn this_cpu() -> i32 {
    nix::sched::sched_getcpu()
        .ok()
        .and_then(|cpu| i32::try_from(cpu).ok())
        .unwrap_or(0)
}

/// `perf_event_open(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)`.
pub fn perf_event_open(p: &PerfOpen<'_>, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    let mut attr = PerfEventAttr {
        type_: p.type_,
        size: size_of::<PerfEventAttr>() as u32,
        config: p.config,
        config1: p.name.map_or(0, |n| n.as_ptr() as u64),
        config2: p.offset,
        sample_period_or_freq: p.sample_period,
        sample_type: p.sample_type,
        wakeup_events: p.wakeup_events,
        ..Default::default()
    };
    if p.sample_freq != 0 {
        attr.sample_period_or_freq = p.sample_freq;
        attr.flags |= FLAG_FREQ;
    }
    // SAFETY: `attr` is a fully initialised #[repr(C)] perf_event_attr of
    // the size its `size` field says; the name it may point to is a
    // borrowed C string alive across the call, which the kernel only reads.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &mut attr as *mut PerfEventAttr,
            pid as libc::c_long,
            cpu as libc::c_long,
            -1 as libc::c_long,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: perf_event_open returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl(fd: BorrowedFd<'_>, request: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: both requests used here take an integer argument (a program
    // fd, or nothing), no pointer; `fd` is a live borrowed fd.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `PERF_EVENT_IOC_SET_BPF`: runs `prog` on each occurrence of the event
/// (until the event's fd is closed).
pub fn perf_event_set_bpf(event: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    ioctl(event, IOC_SET_BPF, prog.as_raw_fd() as libc::c_ulong)
}

/// `PERF_EVENT_IOC_ENABLE`.
pub fn perf_event_enable(event: BorrowedFd<'_>) -> io::Result<()> {
    ioctl(event, IOC_ENABLE, 0)
}

/// `PERF_EVENT_IOC_QUERY_BPF` on a tracepoint's perf event: the ids of the
/// programs the tracepoint runs for perf events (every perf-event link and
/// `PERF_EVENT_IOC_SET_BPF` on it, not only this event's). Read under the
/// lock that attaching and detaching those programs take.
pub fn perf_event_query_bpf(event: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    // struct perf_event_query_bpf { __u32 ids_len; __u32 prog_cnt; __u32 ids[]; }
    let mut query = [0u32; 2 + TRACE_MAX_PROGS];
    query[0] = TRACE_MAX_PROGS as u32;
    // SAFETY: the request takes a pointer to a perf_event_query_bpf whose
    // ids[] has room for `ids_len` (64) entries: `query` is that, alive and
    // exclusively borrowed across the call; `event` is a live borrowed fd.
    let ret = unsafe { libc::ioctl(event.as_raw_fd(), IOC_QUERY_BPF as _, query.as_mut_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = (query[1] as usize).min(TRACE_MAX_PROGS);
    Ok(query[2..2 + n].to_vec())
}

#[cfg(test)]
mod tests {
    use super::PerfEventAttr;
    use std::mem::{offset_of, size_of};

    /// The attr is laid out as `PERF_ATTR_SIZE_VER5`, without padding.
    #[test]
    fn attr_layout() {
        assert_eq!(offset_of!(PerfEventAttr, flags), 40);
        assert_eq!(offset_of!(PerfEventAttr, config1), 56);
        assert_eq!(offset_of!(PerfEventAttr, config2), 64);
        assert_eq!(offset_of!(PerfEventAttr, sample_regs_intr), 96);
        assert_eq!(size_of::<PerfEventAttr>(), 112);
    }
}
