//! Links: one owned value per attachment of a loaded program to a kernel
//! hook, whatever the mechanism the running kernel offers for it.
//!
//! A [`Link`] detaches its program when dropped, unless it was pinned in
//! bpffs ([`Link::pin`]) or deliberately left attached ([`Link::keep`]), as
//! aya's and cilium/ebpf's links do. [`attach_program`] attaches one
//! program at the hook its `SEC()` names, with [`AttachTargets`] giving what
//! the section cannot say (a cgroup, a network namespace, a process).
//!
//! Each kind lives in its own room: [`tracing`] (tracepoints, kprobes,
//! uprobes, raw tracepoints, BTF-typed tracing and LSM, iterators, perf
//! events), [`cgroup`] (every cgroup hook), [`net`] (network namespace
//! links, sockmaps, netfilter, socket filters), [`struct_ops`].

pub mod cgroup;
pub mod group;
pub mod kernel_links;
pub mod net;
pub mod session;
pub mod struct_ops;
pub mod tracing;
// Tracing kinds' rooms (private: tracing::attach reaches them).
mod iter;
mod perf;
mod release;
mod uprobe;
mod usdt;

use crate::load::Program;
use crate::obj::ProgramSpec;
use crate::sys;
use crate::uapi::{AttachType, ProgramType};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What the command line or the caller gives for hooks a section cannot
/// name. Each kind reads the fields it needs and says which one is missing.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AttachTargets {
    /// The cgroup (v2 directory) for cgroup programs.
    pub cgroup: Option<PathBuf>,
    /// The named network namespace (`ip netns`) for sk_lookup,
    /// flow_dissector and netfilter programs; the caller's own when `None`.
    pub netns: Option<String>,
    /// The process uprobes are limited to (all processes when `None`).
    pub pid: Option<u32>,
    /// The binary (executable or shared library: a path, or a library
    /// name looked up in the usual directories) of a `uprobe` or
    /// `uretprobe` section that names none.
    pub uprobe_binary: Option<PathBuf>,
    /// The function (`SYMBOL`, `SYMBOL+OFFSET`, or a file offset `0x...`)
    /// in `uprobe_binary` of a `uprobe` or `uretprobe` section that names
    /// none.
    pub uprobe_symbol: Option<String>,
    /// The sampling frequency in Hz of `perf_event` programs (99 when `None`).
    pub sample_freq: Option<u64>,
    /// The hook of a netfilter program (family, hook, priority), in the
    /// network namespace `netns` names.
    pub netfilter: Option<net::NetfilterHook>,
}

/// How a program is attached, which decides how it is detached.
#[derive(Debug)]
pub(crate) enum Attachment {
    /// A BPF link: it holds the attachment while an fd or a bpffs pin of
    /// it lives, and `BPF_LINK_DETACH` ends it for everyone.
    Bpf(OwnedFd),
    /// A perf event the program was attached to with
    /// `PERF_EVENT_IOC_SET_BPF` (kernels without perf-event links): closing
    /// the event detaches; it cannot be pinned.
    PerfEvent(OwnedFd),
    /// `BPF_PROG_ATTACH` on a target fd (cgroups where cgroup links are
    /// missing, sockmaps): `BPF_PROG_DETACH` ends it.
    ProgAttach {
        /// The cgroup, sockmap or namespace fd.
        target: OwnedFd,
        /// The attached program.
        prog: OwnedFd,
        /// The hook on the target.
        attach_type: AttachType,
    },
    /// A struct_ops map registered by writing its value (no link):
    /// deleting its key 0 unregisters it ([`struct_ops`]).
    StructOpsMap {
        /// The map.
        map: OwnedFd,
        /// Its value size.
        value_size: usize,
    },
}

/// One program attached at one hook. Dropping it detaches the program,
/// unless it is pinned or kept.
#[derive(Debug)]
pub struct Link {
    program: String,
    target: String,
    attachment: Attachment,
    pinned: Option<PathBuf>,
    keep: bool,
    /// The tracepoint's id (tracefs `events/CAT/NAME/id`) of a perf-event
    /// link on a tracepoint: a group records it, for its detach to see the
    /// program leave the tracepoint ([`release`]).
    tracepoint: Option<u64>,
}

/// What the kernel says of a BPF link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// The link's id.
    pub id: u32,
    /// `enum bpf_link_type`.
    pub link_type: u32,
    /// The attached program's id.
    pub prog_id: u32,
}

impl Link {
    /// A link value for an attachment just made.
    pub(crate) fn new(program: &str, target: String, attachment: Attachment) -> Link {
        Link {
            program: program.to_owned(),
            target,
            attachment,
            pinned: None,
            keep: false,
            tracepoint: None,
        }
    }

    /// The attached program's name.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The hook, in words (`tracepoint syscalls/sys_enter_getpid`,
    /// `cgroup /sys/fs/cgroup/unified/app connect4`).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The bpffs path it is pinned at.
    pub fn pinned_at(&self) -> Option<&Path> {
        self.pinned.as_deref()
    }

    /// The link's fd, for a BPF link (`None` for a perf event or a
    /// `BPF_PROG_ATTACH` attachment, which have no link object).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.attachment {
            Attachment::Bpf(fd) => Some(fd.as_fd()),
            _ => None,
        }
    }

    /// The kernel's description of a BPF link; `None` for attachments that
    /// are not links.
    pub fn info(&self) -> Result<Option<LinkInfo>, LinkError> {
        let Some(fd) = self.fd() else {
            return Ok(None);
        };
        let info = sys::link_info(fd).map_err(|source| self.failed("reading its info", source))?;
        Ok(Some(LinkInfo {
            id: info.id,
            link_type: info.link_type,
            prog_id: info.prog_id,
        }))
    }

    /// Pins the link at `path` in bpffs, so that it outlives this value and
    /// the process. Only BPF links can be pinned.
    pub fn pin(&mut self, path: impl AsRef<Path>) -> Result<(), LinkError> {
        let path = path.as_ref();
        let Attachment::Bpf(fd) = &self.attachment else {
            return Err(LinkError::NotPinnable {
                program: self.program.clone(),
                target: self.target.clone(),
            });
        };
        let pin_err = |source| LinkError::Pin {
            path: path.to_owned(),
            action: "pinning the link",
            source,
        };
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| pin_err(io::Error::from_raw_os_error(libc::EINVAL)))?;
        sys::obj_pin(fd.as_fd(), &c).map_err(pin_err)?;
        self.pinned = Some(path.to_owned());
        Ok(())
    }

    /// Leaves the program attached when this value goes: a BPF link until
    /// the process exits (or for good, when pinned); a `BPF_PROG_ATTACH`
    /// attachment until someone detaches it.
    pub fn keep(mut self) {
        self.keep = true;
    }

    /// Detaches the program now, for every holder of the link, and removes
    /// the pin if this value made one.
    pub fn detach(mut self) -> Result<(), LinkError> {
        let result = self.detach_now();
        if let Some(path) = self.pinned.take() {
            let _ = std::fs::remove_file(path);
        }
        self.keep = true; // done: nothing more for Drop
        result
    }

    fn detach_now(&self) -> Result<(), LinkError> {
        match &self.attachment {
            Attachment::Bpf(fd) => match sys::link_detach(fd.as_fd()) {
                // Link kinds without BPF_LINK_DETACH end when their last
                // holder goes: the caller's value and the pin removed here.
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
                r => r.map_err(|source| self.failed("detaching it", source)),
            },
            Attachment::PerfEvent(_) => Ok(()),
            Attachment::ProgAttach {
                target,
                prog,
                attach_type,
            } => sys::prog_detach(target.as_fd(), prog.as_fd(), *attach_type)
                .map_err(|source| self.failed("detaching it", source)),
            Attachment::StructOpsMap { map, value_size } => {
                struct_ops::unregister(map, *value_size)
                    .map_err(|source| self.failed("unregistering it", source))
            }
        }
    }

    fn failed(&self, action: &'static str, source: io::Error) -> LinkError {
        LinkError::Link {
            program: self.program.clone(),
            target: self.target.clone(),
            action,
            source,
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if self.keep || self.pinned.is_some() {
            return;
        }
        // BPF links and perf events end with their fd; a prog attachment
        // has no fd of its own to close.
        if let Attachment::ProgAttach { .. } | Attachment::StructOpsMap { .. } = self.attachment {
            let _ = self.detach_now();
        }
    }
}

/// Attaches a loaded program at the hook its section names (with `spec`,
/// the program's spec from the object it was loaded from), taking from
/// `targets` what the section cannot name. Most programs give one link; a
/// `perf_event` program gives one per CPU.
pub fn attach_program(
    program: &Program,
    spec: &ProgramSpec,
    targets: &AttachTargets,
) -> Result<Vec<Link>, LinkError> {
    use ProgramType as P;
    match spec.prog_type {
        P::TRACEPOINT
        | P::KPROBE
        | P::RAW_TRACEPOINT
        | P::RAW_TRACEPOINT_WRITABLE
        | P::TRACING
        | P::LSM
        | P::EXT
        | P::PERF_EVENT => tracing::attach(program, spec, targets),
        P::CGROUP_SKB
        | P::CGROUP_SOCK
        | P::CGROUP_SOCK_ADDR
        | P::SOCK_OPS
        | P::CGROUP_DEVICE
        | P::CGROUP_SYSCTL
        | P::CGROUP_SOCKOPT => cgroup::attach(program, spec, targets),
        P::SK_LOOKUP | P::FLOW_DISSECTOR | P::NETFILTER | P::SK_MSG | P::SK_SKB => {
            net::attach(program, spec, targets)
        }
        P::SCHED_CLS | P::XDP => Err(LinkError::NoTarget {
            program: spec.name().to_owned(),
            section: spec.section().to_owned(),
            needs: "a network device (attach it with --dev)",
        }),
        P::STRUCT_OPS => Err(LinkError::NoTarget {
            program: spec.name().to_owned(),
            section: spec.section().to_owned(),
            needs: "its struct_ops map: the program runs as a member of the map, which link::struct_ops::register registers",
        }),
        P::SOCKET_FILTER => Err(LinkError::NoTarget {
            program: spec.name().to_owned(),
            section: spec.section().to_owned(),
            needs: "a socket: the library attaches it to a socket the caller owns (link::net::attach_socket_filter)",
        }),
        other => Err(LinkError::Unsupported {
            program: spec.name().to_owned(),
            section: spec.section().to_owned(),
            what: format!("a {other} program"),
        }),
    }
}

/// What went wrong attaching, pinning or detaching a link. Each names the
/// program, its section and the target.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The kernel refused to attach the program at its hook.
    #[error(
        "program {program} ({section}): {target}: {action}: {source}{}",
        crate::errno::if_denied(source, crate::errno::NEEDS_BPF)
    )]
    Attach {
        /// Program name.
        program: String,
        /// Its section.
        section: String,
        /// The hook, in words.
        target: String,
        /// What was being done.
        action: &'static str,
        /// errno.
        source: io::Error,
    },
    /// The hook the section names does not exist (a tracepoint, function,
    /// symbol, binary, process or cgroup).
    #[error("program {program} ({section}): {target}: {source}")]
    TargetNotFound {
        /// Program name.
        program: String,
        /// Its section.
        section: String,
        /// What was looked for.
        target: String,
        /// The error looking for it.
        source: io::Error,
    },
    /// The section names no target and no option gives one.
    #[error("program {program} ({section}): the section names no target; it needs {needs}")]
    NoTarget {
        /// Program name.
        program: String,
        /// Its section.
        section: String,
        /// What must be given.
        needs: &'static str,
    },
    /// A kind of attachment rawbpf cannot make (yet, or on this kernel).
    #[error("program {program} ({section}): cannot attach {what}")]
    Unsupported {
        /// Program name.
        program: String,
        /// Its section.
        section: String,
        /// What.
        what: String,
    },
    /// An attachment that is not a BPF link, which bpffs cannot pin.
    #[error("program {program}: {target}: this kernel attaches it without a BPF link, which cannot be pinned")]
    NotPinnable {
        /// Program name.
        program: String,
        /// The hook, in words.
        target: String,
    },
    /// Working on an existing link failed.
    #[error("program {program}: {target}: {action}: {source}")]
    Link {
        /// Program name.
        program: String,
        /// The hook, in words.
        target: String,
        /// What was being done.
        action: &'static str,
        /// errno.
        source: io::Error,
    },
    /// Pinning or unpinning failed.
    #[error("{}: {action}: {source}{}", path.display(), crate::errno::if_denied(source, crate::errno::NEEDS_BPF))]
    Pin {
        /// The bpffs path.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// errno.
        source: io::Error,
    },
}

debug_is_display!(LinkError);

/// A `LinkError::Unsupported` for a program, in one line at the call site.
pub(crate) fn unsupported(spec: &ProgramSpec, what: impl Into<String>) -> LinkError {
    LinkError::Unsupported {
        program: spec.name().to_owned(),
        section: spec.section().to_owned(),
        what: what.into(),
    }
}
