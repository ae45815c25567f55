//! bpf(2), and mapping the memory of kernel BPF objects: one safe function
//! per `bpf(2)` command rawbpf uses, and the read-only mapping of the BTF
//! the kernel exports in sysfs. This is the only `unsafe` of the library.
//! Every other POSIX call goes through nix where it is used. The module is
//! private to the crate: callers outside rawbpf use [`Map`](crate::load::Map),
//! [`Program`](crate::load::Program) and [`pin`](crate::load::pin), whose
//! buffers come from the kernel's own description of each object.
//!
//! Each attr struct is `#[repr(C)]`, laid out as its part of the kernel's
//! `union bpf_attr`, and zero-filled to its full size (the kernel requires
//! unused bytes to be zero, and accepts a shorter or longer attr than it knows
//! as long as the tail is zero). Pointers inside an attr come from borrowed
//! slices that outlive the call. Every fd the kernel returns becomes an
//! `OwnedFd`, so it is closed exactly once.
#![allow(unsafe_code)]
// Field names are the kernel's (include/uapi/linux/bpf.h); they are not documented twice.
#![allow(missing_docs)]

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

mod attach;
mod sysfs;
// `rawbpf map`: map ids, whole map info, BTF bytes, batch lookups.
mod btf;
pub use attach::{prog_attach, prog_detach};
pub use btf::{btf_data, map_info_full, map_lookup_batch, map_next_id, prog_next_id, Batch};
// Tracing links: perf events and the LINK_CREATE variants of tracing hooks.
mod link_tracing;
mod perf;
pub use link_tracing::{
    iter_create, link_create_kprobe_multi, link_create_uprobe_multi, MULTI_RETURN,
};
pub use link_tracing::{link_create_perf_event, map_get_fd_by_id, prog_map_ids};
pub use perf::{
    perf_event_enable, perf_event_open, perf_event_query_bpf, perf_event_set_bpf, this_cpu,
    PerfOpen,
};
pub use perf::{PERF_COUNT_SW_CPU_CLOCK, PERF_TYPE_SOFTWARE, PERF_TYPE_TRACEPOINT};
// Event streams: ring buffer maps and perf event rings, mapped.
pub mod ring;
pub use sysfs::SysfsMap;
// link::net: netfilter links, socket filters.
mod link_ids;
mod netfilter;
mod sockopt;
pub use link_ids::{link_details, link_get_fd_by_id, link_next_id, LinkDetails};
pub use netfilter::{link_create_netfilter, NetfilterHook};
pub use sockopt::{attach_socket_filter, detach_socket_filter};
// Typed maps: NULL-key lookups and updates, lookup-and-delete.
mod maps;
pub use maps::{map_lookup_and_delete, map_lookup_opt, map_update_flags};

/// `enum bpf_cmd` values used here.
mod cmd {
    pub const MAP_CREATE: u32 = 0;
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    pub const MAP_UPDATE_ELEM: u32 = 2;
    pub const MAP_DELETE_ELEM: u32 = 3;
    pub const MAP_GET_NEXT_KEY: u32 = 4;
    pub const PROG_LOAD: u32 = 5;
    pub const OBJ_PIN: u32 = 6;
    pub const OBJ_GET: u32 = 7;
    pub const PROG_ATTACH: u32 = 8;
    pub const PROG_DETACH: u32 = 9;
    pub const PROG_TEST_RUN: u32 = 10;
    pub const PROG_GET_FD_BY_ID: u32 = 13;
    pub const MAP_GET_FD_BY_ID: u32 = 14;
    pub const OBJ_GET_INFO_BY_FD: u32 = 15;
    pub const RAW_TRACEPOINT_OPEN: u32 = 17;
    pub const BTF_LOAD: u32 = 18;
    pub const BTF_GET_FD_BY_ID: u32 = 19;
    pub const MAP_FREEZE: u32 = 22;
    pub const BTF_GET_NEXT_ID: u32 = 23;
    pub const LINK_CREATE: u32 = 28;
    pub const LINK_UPDATE: u32 = 29;
    pub const ITER_CREATE: u32 = 33;
    pub const LINK_DETACH: u32 = 34;
}

/// Object names the kernel keeps: 15 bytes and a NUL (`BPF_OBJ_NAME_LEN`).
pub const OBJ_NAME_LEN: usize = 16;

/// The kernel's internal `ENOTSUPP` (524), which some `bpf(2)` commands
/// return (a program type without a test run, for one). No C library names
/// it: glibc prints "Unknown error 524", musl "No error information".
const ENOTSUPP: i32 = 524;

/// The error `bpf(2)` gives for ENOTSUPP, with a name.
#[derive(Debug)]
struct KernelNotSupported;

impl std::fmt::Display for KernelNotSupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Not supported by this kernel (ENOTSUPP, os error 524)")
    }
}

impl std::error::Error for KernelNotSupported {}

/// Whether `e` is the kernel's ENOTSUPP, as `bpf()` returns it.
pub fn is_enotsupp(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<KernelNotSupported>())
}

/// Calls `bpf(cmd, attr, sizeof(*attr))`.
fn bpf<T>(cmd: u32, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is an exclusively borrowed, fully initialised #[repr(C)]
    // attr struct of exactly size_of::<T>() bytes; any pointer inside it was
    // taken from a borrow that lives across this call. The kernel reads and
    // writes at most size_of::<T>() bytes of it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            libc::c_long::from(cmd),
            attr as *mut T as *mut libc::c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ENOTSUPP) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                KernelNotSupported,
            ));
        }
        Err(e)
    } else {
        Ok(ret)
    }
}

/// Kernels before 5.11 charge BPF memory to `RLIMIT_MEMLOCK` (often 8 MiB,
/// sometimes 64 KiB) instead of the memory cgroup, and answer EPERM when it
/// runs out. As libbpf does on such kernels, raise the limit (once, and only
/// if we may) and try again; otherwise the EPERM stands.
fn raise_memlock_once() -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static RAISED: AtomicBool = AtomicBool::new(false);
    if RAISED.swap(true, Ordering::SeqCst) {
        return false;
    }
    use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};
    setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY).is_ok()
}

/// Calls a command that returns a new file descriptor.
fn bpf_fd<T>(cmd: u32, attr: &mut T) -> io::Result<OwnedFd> {
    let fd = match bpf(cmd, attr) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && raise_memlock_once() => bpf(cmd, attr)?,
        other => other?,
    };
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: on success these commands return a new file descriptor that
    // nothing else owns; wrapping it makes us its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ptr<T>(s: &[T]) -> u64 {
    s.as_ptr() as u64
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    fd.as_raw_fd() as u32
}

fn too_short(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} buffer is shorter than the map's {what} size"),
    )
}

/// Copies `name` into a kernel object name (truncated to 15 bytes, NUL-terminated).
pub fn obj_name(name: &str) -> [u8; OBJ_NAME_LEN] {
    let mut out = [0u8; OBJ_NAME_LEN];
    let n = name.len().min(OBJ_NAME_LEN - 1);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; OBJ_NAME_LEN],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_value_type_id: u32,
    map_extra: u64,
}

/// What `BPF_MAP_CREATE` needs.
pub struct MapCreate<'a> {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    pub numa_node: u32,
    pub map_extra: u64,
    pub name: &'a str,
    pub inner_map_fd: Option<BorrowedFd<'a>>,
    /// BTF object and the key/value type ids in it.
    pub btf: Option<(BorrowedFd<'a>, u32, u32)>,
}

/// `BPF_MAP_CREATE`.
pub fn map_create(m: &MapCreate<'_>) -> io::Result<OwnedFd> {
    map_create_vmlinux_value(m, 0)
}

/// `BPF_MAP_CREATE` of a map whose value is a type of the kernel's own
/// BTF (`btf_vmlinux_value_type_id`: a struct_ops map's
/// `bpf_struct_ops_<name>`); 0 is none, as [`map_create`].
pub fn map_create_vmlinux_value(
    m: &MapCreate<'_>,
    btf_vmlinux_value_type_id: u32,
) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        btf_vmlinux_value_type_id,
        map_type: m.map_type,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        map_flags: m.flags,
        inner_map_fd: m.inner_map_fd.map_or(0, fd_u32),
        numa_node: m.numa_node,
        map_name: obj_name(m.name),
        map_extra: m.map_extra,
        ..Default::default()
    };
    if let Some((fd, key, value)) = m.btf {
        attr.btf_fd = fd_u32(fd);
        attr.btf_key_type_id = key;
        attr.btf_value_type_id = value;
    }
    bpf_fd(cmd::MAP_CREATE, &mut attr)
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The sizes a map's keys and values take in user memory (per-CPU values are
/// `round_up(value_size, 8) * possible CPUs`).
#[derive(Clone, Copy, Debug)]
pub struct ElemSizes {
    pub key: usize,
    pub value: usize,
}

impl ElemSizes {
    /// The kernel reads (or writes) exactly these many bytes behind the
    /// pointers we give it: shorter buffers are refused here.
    fn check(self, key: &[u8], value_len: Option<usize>) -> io::Result<()> {
        if key.len() < self.key {
            return Err(too_short("key"));
        }
        if value_len.is_some_and(|v| v < self.value) {
            return Err(too_short("value"));
        }
        Ok(())
    }
}

/// `BPF_MAP_UPDATE_ELEM`.
pub fn map_update(
    fd: BorrowedFd<'_>,
    sizes: ElemSizes,
    key: &[u8],
    value: &[u8],
    flags: u64,
) -> io::Result<()> {
    sizes.check(key, Some(value.len()))?;
    let mut attr = MapElemAttr {
        map_fd: fd_u32(fd),
        key: ptr(key),
        value: ptr(value),
        flags,
        ..Default::default()
    };
    bpf(cmd::MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// `BPF_MAP_LOOKUP_ELEM`; `Ok(false)` when the key is absent.
pub fn map_lookup(
    fd: BorrowedFd<'_>,
    sizes: ElemSizes,
    key: &[u8],
    value: &mut [u8],
) -> io::Result<bool> {
    sizes.check(key, Some(value.len()))?;
    let mut attr = MapElemAttr {
        map_fd: fd_u32(fd),
        key: ptr(key),
        value: value.as_mut_ptr() as u64,
        ..Default::default()
    };
    match bpf(cmd::MAP_LOOKUP_ELEM, &mut attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `BPF_MAP_DELETE_ELEM`; `Ok(false)` when the key is absent.
pub fn map_delete(fd: BorrowedFd<'_>, sizes: ElemSizes, key: &[u8]) -> io::Result<bool> {
    sizes.check(key, None)?;
    let mut attr = MapElemAttr {
        map_fd: fd_u32(fd),
        key: ptr(key),
        ..Default::default()
    };
    match bpf(cmd::MAP_DELETE_ELEM, &mut attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (the first with `None`);
/// `Ok(false)` at the end.
pub fn map_next_key(
    fd: BorrowedFd<'_>,
    sizes: ElemSizes,
    key: Option<&[u8]>,
    next: &mut [u8],
) -> io::Result<bool> {
    if key.is_some_and(|k| k.len() < sizes.key) || next.len() < sizes.key {
        return Err(too_short("key"));
    }
    let mut attr = MapElemAttr {
        map_fd: fd_u32(fd),
        key: key.map_or(0, ptr),
        value: next.as_mut_ptr() as u64,
        ..Default::default()
    };
    match bpf(cmd::MAP_GET_NEXT_KEY, &mut attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `BPF_MAP_FREEZE`: no more writes from user space.
pub fn map_freeze(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: fd_u32(fd),
        ..Default::default()
    };
    bpf(cmd::MAP_FREEZE, &mut attr).map(drop)
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; OBJ_NAME_LEN],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_prog_fd: u32,
    core_relo_cnt: u32,
    fd_array: u64,
    core_relos: u64,
    core_relo_rec_size: u32,
    log_true_size: u32,
}

/// What `BPF_PROG_LOAD` needs.
#[derive(Default)]
pub struct ProgLoad<'a> {
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub prog_flags: u32,
    pub name: &'a str,
    /// Raw instructions, 8 bytes each.
    pub insns: &'a [u8],
    pub license: &'a CStr,
    pub kern_version: u32,
    /// BTF object, packed func_info (8-byte records) and line_info (16-byte records).
    pub btf: Option<(BorrowedFd<'a>, &'a [u8], &'a [u8])>,
    /// The BTF id of what a tracing, LSM or freplace program attaches to
    /// (in vmlinux, in `attach_btf_obj_fd`'s module BTF, or in
    /// `attach_prog_fd`'s program BTF).
    pub attach_btf_id: u32,
    /// The module BTF holding `attach_btf_id` (None: vmlinux).
    pub attach_btf_obj_fd: Option<BorrowedFd<'a>>,
    /// The program an freplace program replaces a function of. It shares
    /// its attr slot with `attach_btf_obj_fd`: giving both is refused.
    pub attach_prog_fd: Option<BorrowedFd<'a>>,
    /// Fds a kfunc call's `off` indexes (module BTFs; index 0 is vmlinux
    /// and unused). Empty: no `fd_array`.
    pub fd_array: &'a [i32],
}

/// `BPF_PROG_LOAD`; with `log`, the verifier writes its log there (level 1,
/// or 2 for `verbose`) and `ENOSPC` says it did not fit.
pub fn prog_load(p: &ProgLoad<'_>, log: Option<(&mut [u8], u32)>) -> io::Result<OwnedFd> {
    let mut attr = ProgLoadAttr {
        prog_type: p.prog_type,
        insn_cnt: (p.insns.len() / 8) as u32,
        insns: ptr(p.insns),
        license: p.license.as_ptr() as u64,
        kern_version: p.kern_version,
        prog_flags: p.prog_flags,
        prog_name: obj_name(p.name),
        expected_attach_type: p.expected_attach_type,
        attach_btf_id: p.attach_btf_id,
        ..Default::default()
    };
    // `attach_prog_fd` and `attach_btf_obj_fd` are one union member.
    attr.attach_prog_fd = match (p.attach_prog_fd, p.attach_btf_obj_fd) {
        (Some(_), Some(_)) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a program attaches to another program or to a module's BTF, not both",
            ))
        }
        (Some(fd), None) | (None, Some(fd)) => fd_u32(fd),
        (None, None) => 0,
    };
    if let Some((fd, func_info, line_info)) = p.btf {
        attr.prog_btf_fd = fd_u32(fd);
        if !func_info.is_empty() {
            attr.func_info_rec_size = 8;
            attr.func_info = ptr(func_info);
            attr.func_info_cnt = (func_info.len() / 8) as u32;
        }
        if !line_info.is_empty() {
            attr.line_info_rec_size = 16;
            attr.line_info = ptr(line_info);
            attr.line_info_cnt = (line_info.len() / 16) as u32;
        }
    }
    if !p.fd_array.is_empty() {
        attr.fd_array = ptr(p.fd_array);
    }
    if let Some((buf, level)) = log {
        attr.log_level = level;
        attr.log_size = buf.len().min(u32::MAX as usize) as u32;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    // The verifier can fail transiently with EAGAIN (libbpf retries 5 times).
    let mut tries = 0;
    loop {
        match bpf_fd(cmd::PROG_LOAD, &mut attr) {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 5 => tries += 1,
            other => return other,
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
    btf_log_true_size: u32,
}

/// `BPF_BTF_LOAD`, with an optional log buffer.
pub fn btf_load(btf: &[u8], log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    let mut attr = BtfLoadAttr {
        btf: ptr(btf),
        btf_size: btf.len() as u32,
        ..Default::default()
    };
    if let Some(buf) = log {
        attr.btf_log_buf = buf.as_mut_ptr() as u64;
        attr.btf_log_size = buf.len().min(u32::MAX as usize) as u32;
        attr.btf_log_level = 1;
    }
    bpf_fd(cmd::BTF_LOAD, &mut attr)
}

#[repr(C)]
#[derive(Default)]
struct ObjAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

/// `BPF_OBJ_PIN`: pins a program, map or link at `path` in bpffs.
pub fn obj_pin(fd: BorrowedFd<'_>, path: &CStr) -> io::Result<()> {
    let mut attr = ObjAttr {
        pathname: path.as_ptr() as u64,
        bpf_fd: fd_u32(fd),
        ..Default::default()
    };
    bpf(cmd::OBJ_PIN, &mut attr).map(drop)
}

/// `BPF_OBJ_GET`: opens a pinned object.
pub fn obj_get(path: &CStr) -> io::Result<OwnedFd> {
    let mut attr = ObjAttr {
        pathname: path.as_ptr() as u64,
        ..Default::default()
    };
    bpf_fd(cmd::OBJ_GET, &mut attr)
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    // Explicit: implicit padding is uninitialised in Rust, and the kernel
    // rejects an attr whose bytes past its last known field are not zero.
    _pad: u32,
}

/// What one `BPF_PROG_TEST_RUN` returned.
#[derive(Debug, Clone, Copy)]
pub struct TestRun {
    pub retval: u32,
    /// Average ns per run, as the kernel measures it (0 where it does not).
    pub duration_ns: u32,
    /// Bytes the kernel wrote to `data_out` (may exceed its length: then truncated).
    pub data_size_out: u32,
    /// Bytes of context the kernel wrote to `ctx_out` (0 if none).
    pub ctx_size_out: u32,
}

/// The buffers of one `BPF_PROG_TEST_RUN`. An empty slice goes to the
/// kernel as a null pointer and size 0: raw_tracepoint runs refuse any
/// `data_in`, `data_out` or `ctx_out` pointer, and a zero `repeat`.
#[derive(Debug, Default)]
pub struct TestRunBufs<'a> {
    /// The packet.
    pub data_in: &'a [u8],
    /// Room for the packet after the run.
    pub data_out: &'a mut [u8],
    /// The context (`struct __sk_buff`, `xdp_md`, tracepoint arguments).
    pub ctx_in: &'a [u8],
    /// Room for the context after the run.
    pub ctx_out: &'a mut [u8],
    /// Runs; 0 for program types that take no repeat.
    pub repeat: u32,
}

/// `BPF_PROG_TEST_RUN` of a program on a packet, a context, or both.
pub fn prog_test_run(fd: BorrowedFd<'_>, bufs: TestRunBufs<'_>) -> io::Result<TestRun> {
    fn in_ptr(s: &[u8]) -> u64 {
        if s.is_empty() {
            0
        } else {
            ptr(s)
        }
    }
    fn out_ptr(s: &mut [u8]) -> u64 {
        if s.is_empty() {
            0
        } else {
            s.as_mut_ptr() as u64
        }
    }
    // BPF_PROG_TYPE_SYSCALL runs copy the context back into `ctx_in`: the
    // kernel writes to a copy of ours, never through the shared borrow.
    let mut ctx_in = bufs.ctx_in.to_vec();
    let mut attr = TestRunAttr {
        prog_fd: fd_u32(fd),
        data_size_in: bufs.data_in.len() as u32,
        data_size_out: bufs.data_out.len() as u32,
        data_in: in_ptr(bufs.data_in),
        data_out: out_ptr(bufs.data_out),
        repeat: bufs.repeat,
        ctx_size_in: ctx_in.len() as u32,
        ctx_size_out: bufs.ctx_out.len() as u32,
        ctx_in: out_ptr(&mut ctx_in),
        ctx_out: out_ptr(bufs.ctx_out),
        ..Default::default()
    };
    bpf(cmd::PROG_TEST_RUN, &mut attr)?;
    Ok(TestRun {
        retval: attr.retval,
        duration_ns: attr.duration,
        data_size_out: attr.data_size_out,
        ctx_size_out: attr.ctx_size_out,
    })
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The start of `struct bpf_prog_info` (the kernel fills what fits).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct ProgInfo {
    pub prog_type: u32,
    pub id: u32,
    pub tag: [u8; 8],
    pub jited_prog_len: u32,
    pub xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    pub load_time: u64,
    pub created_by_uid: u32,
    pub nr_map_ids: u32,
    map_ids: u64,
    pub name: [u8; OBJ_NAME_LEN],
    pub ifindex: u32,
    /// Bit 0: gpl_compatible.
    pub flags: u32,
    pub netns_dev: u64,
    pub netns_ino: u64,
    nr_jited_ksyms: u32,
    nr_jited_func_lens: u32,
    jited_ksyms: u64,
    jited_func_lens: u64,
    /// The program's BTF object (0: none).
    pub btf_id: u32,
    func_info_rec_size: u32,
}

/// The start of `struct bpf_map_info`.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct MapInfo {
    pub map_type: u32,
    pub id: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub name: [u8; OBJ_NAME_LEN],
}

fn info_by_fd<T: Default>(fd: BorrowedFd<'_>) -> io::Result<T> {
    let mut info = T::default();
    let mut attr = InfoAttr {
        bpf_fd: fd_u32(fd),
        info_len: size_of::<T>() as u32,
        info: &mut info as *mut T as u64,
    };
    bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info)
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a program.
pub fn prog_info(fd: BorrowedFd<'_>) -> io::Result<ProgInfo> {
    info_by_fd(fd)
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a map.
pub fn map_info(fd: BorrowedFd<'_>) -> io::Result<MapInfo> {
    info_by_fd(fd)
}

/// `struct bpf_btf_info`.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
struct BtfInfoAttr {
    btf: u64,
    btf_size: u32,
    id: u32,
    name: u64,
    name_len: u32,
    kernel_btf: u32,
}

/// What `BPF_OBJ_GET_INFO_BY_FD` says of a BTF object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfInfo {
    pub id: u32,
    /// The BTF's size in bytes (what a `data` buffer needs).
    pub size: u32,
    /// Whether it is the kernel's (vmlinux or a module's) rather than loaded by a program.
    pub kernel_btf: bool,
    /// "vmlinux", a module's name, or "" (asked only with `with_name`).
    pub name: String,
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a BTF object; with `data`, the kernel also
/// copies the BTF's bytes there (at most its length; `size` says how many
/// there are). `with_name` asks for the name, which kernels before 5.11
/// (those without module BTF) refuse.
pub fn btf_info(
    fd: BorrowedFd<'_>,
    data: Option<&mut [u8]>,
    with_name: bool,
) -> io::Result<BtfInfo> {
    let mut name = [0u8; 64];
    let mut info = BtfInfoAttr::default();
    if let Some(buf) = data {
        info.btf = buf.as_mut_ptr() as u64;
        info.btf_size = buf.len().min(u32::MAX as usize) as u32;
    }
    if with_name {
        info.name = name.as_mut_ptr() as u64;
        info.name_len = name.len() as u32;
    }
    let mut attr = InfoAttr {
        bpf_fd: fd_u32(fd),
        info_len: size_of::<BtfInfoAttr>() as u32,
        info: &mut info as *mut BtfInfoAttr as u64,
    };
    bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr)?;
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(BtfInfo {
        id: info.id,
        size: info.btf_size,
        kernel_btf: info.kernel_btf != 0,
        name: String::from_utf8_lossy(&name[..end]).into_owned(),
    })
}

/// `BPF_BTF_GET_NEXT_ID`: the id of the BTF object after `id` (0 starts);
/// `Ok(None)` after the last.
pub fn btf_next_id(id: u32) -> io::Result<Option<u32>> {
    let mut attr = [id, 0, 0, 0];
    match bpf(cmd::BTF_GET_NEXT_ID, &mut attr) {
        Ok(_) => Ok(Some(attr[1])),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `BPF_BTF_GET_FD_BY_ID`: opens a BTF object by its kernel id.
pub fn btf_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = [id, 0, 0, 0];
    bpf_fd(cmd::BTF_GET_FD_BY_ID, &mut attr)
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd_or_id: u32,
    _pad: u32,
    expected_revision: u64,
}

/// `BPF_LINK_CREATE` of a program on a network interface (TCX: attach type
/// `BPF_TCX_INGRESS`/`BPF_TCX_EGRESS`).
pub fn link_create_ifindex(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    attach_type: u32,
    flags: u32,
) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: fd_u32(prog),
        target_ifindex: ifindex,
        attach_type,
        flags,
        ..Default::default()
    };
    bpf_fd(cmd::LINK_CREATE, &mut attr)
}

/// `BPF_LINK_CREATE` of a struct_ops map (prepared with `BPF_F_LINK` and
/// its value written): registers it, as attach type `BPF_STRUCT_OPS` (44).
pub fn link_create_struct_ops(map: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // The map fd goes where a program's would (`link_create.map_fd`).
    link_create_ifindex(map, 0, crate::uapi::AttachType::STRUCT_OPS.0, 0)
}

/// `BPF_LINK_CREATE` of a program on a target fd (a cgroup, a network
/// namespace) at `attach_type`.
pub fn link_create_fd(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<OwnedFd> {
    link_create_ifindex(prog, fd_u32(target), attach_type, flags)
}

#[repr(C)]
#[derive(Default)]
struct LinkUpdateAttr {
    link_fd: u32,
    new_prog_fd: u32,
    flags: u32,
    old_prog_fd: u32,
}

/// `BPF_LINK_UPDATE`: atomically points a link at another program.
pub fn link_update(link: BorrowedFd<'_>, new_prog: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = LinkUpdateAttr {
        link_fd: fd_u32(link),
        new_prog_fd: fd_u32(new_prog),
        ..Default::default()
    };
    bpf(cmd::LINK_UPDATE, &mut attr).map(drop)
}

#[repr(C)]
#[derive(Default)]
struct LinkDetachAttr {
    link_fd: u32,
}

/// `BPF_LINK_DETACH`: detaches a link now, whoever else holds it (unpinning
/// alone leaves the release to a kernel work item, a moment later).
pub fn link_detach(link: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = LinkDetachAttr {
        link_fd: fd_u32(link),
    };
    bpf(cmd::LINK_DETACH, &mut attr).map(drop)
}

/// The start of `struct bpf_link_info`.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct LinkInfo {
    pub link_type: u32,
    pub id: u32,
    pub prog_id: u32,
    _pad: u32,
    /// For TCX links: the device's ifindex.
    pub ifindex: u32,
    /// For TCX links: the attach type.
    pub attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct RawTracepointAttr {
    name: u64,
    prog_fd: u32,
    _pad: u32,
}

/// `BPF_RAW_TRACEPOINT_OPEN`: attaches a raw tracepoint program to
/// tracepoint `name`, or (no name) a tracing or LSM program to the target
/// it was loaded for (5.5+); the program stays attached while the returned
/// link fd is open.
pub fn raw_tracepoint_open(prog: BorrowedFd<'_>, name: Option<&CStr>) -> io::Result<OwnedFd> {
    let mut attr = RawTracepointAttr {
        name: name.map_or(0, |n| n.as_ptr() as u64),
        prog_fd: fd_u32(prog),
        ..Default::default()
    };
    bpf_fd(cmd::RAW_TRACEPOINT_OPEN, &mut attr)
}

/// `BPF_PROG_GET_FD_BY_ID`: opens a program by its kernel id.
pub fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = [id, 0, 0, 0];
    bpf_fd(cmd::PROG_GET_FD_BY_ID, &mut attr)
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a link.
pub fn link_info(fd: BorrowedFd<'_>) -> io::Result<LinkInfo> {
    info_by_fd(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// The attrs match the kernel's `union bpf_attr` layout.
    #[test]
    fn attr_layouts() {
        assert_eq!(offset_of!(MapCreateAttr, map_name), 28);
        assert_eq!(offset_of!(MapCreateAttr, btf_fd), 48);
        assert_eq!(offset_of!(MapCreateAttr, map_extra), 64);
        assert_eq!(size_of::<MapElemAttr>(), 32);
        assert_eq!(offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(offset_of!(ProgLoadAttr, func_info), 80);
        assert_eq!(offset_of!(ProgLoadAttr, line_info), 96);
        assert_eq!(offset_of!(ProgLoadAttr, fd_array), 120);
        assert_eq!(offset_of!(ProgLoadAttr, log_true_size), 140);
        assert_eq!(offset_of!(TestRunAttr, repeat), 32);
        assert_eq!(offset_of!(TestRunAttr, ctx_size_in), 40);
        assert_eq!(offset_of!(TestRunAttr, ctx_in), 48);
        assert_eq!(offset_of!(TestRunAttr, ctx_out), 56);
        assert_eq!(offset_of!(TestRunAttr, batch_size), 72);
        assert_eq!(offset_of!(ProgInfo, name), 64);
        assert_eq!(offset_of!(ProgInfo, btf_id), 128);
        assert_eq!(size_of::<ProgInfo>(), 136);
        assert_eq!(offset_of!(ProgLoadAttr, attach_btf_id), 108);
        assert_eq!(offset_of!(ProgLoadAttr, attach_prog_fd), 112);
        assert_eq!(offset_of!(BtfInfoAttr, name), 16);
        assert_eq!(size_of::<BtfInfoAttr>(), 32);
        assert_eq!(offset_of!(MapInfo, name), 24);
        assert_eq!(offset_of!(LinkCreateAttr, expected_revision), 24);
    }

    /// No attr struct may have implicit padding: Rust leaves it
    /// uninitialised, and the kernel refuses non-zero bytes there (EINVAL).
    #[test]
    fn attrs_have_no_implicit_padding() {
        assert_eq!(size_of::<MapCreateAttr>(), 4 * 7 + 16 + 4 * 5 + 8);
        assert_eq!(size_of::<MapElemAttr>(), 4 * 2 + 8 * 3);
        assert_eq!(size_of::<ProgLoadAttr>(), 144);
        assert_eq!(offset_of!(ProgLoadAttr, log_true_size) + 4, 144);
        assert_eq!(size_of::<TestRunAttr>(), offset_of!(TestRunAttr, _pad) + 4);
        assert_eq!(
            offset_of!(TestRunAttr, _pad),
            offset_of!(TestRunAttr, batch_size) + 4
        );
        assert_eq!(size_of::<BtfLoadAttr>(), 8 * 2 + 4 * 4);
        assert_eq!(size_of::<ObjAttr>(), 8 + 4 * 2);
        assert_eq!(size_of::<InfoAttr>(), 4 * 2 + 8);
        assert_eq!(size_of::<LinkCreateAttr>(), 4 * 6 + 8);
        assert_eq!(size_of::<LinkUpdateAttr>(), 4 * 4);
        assert_eq!(size_of::<RawTracepointAttr>(), 8 + 4 * 2);
    }

    #[test]
    fn names_are_truncated_to_15_bytes() {
        assert_eq!(&obj_name("inspect_and_drop")[..], b"inspect_and_dro\0");
        assert_eq!(&obj_name("x")[..2], b"x\0");
    }
}
