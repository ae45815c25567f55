//! Cgroup hooks: skb, sock, sock_addr (connect, bind, sendmsg, recvmsg,
//! getpeername, getsockname), sockops, sysctl, sockopt and device programs,
//! with a cgroup link, or `BPF_PROG_ATTACH` with `BPF_F_ALLOW_MULTI` where
//! the kernel has no cgroup links.

use super::{AttachTargets, Attachment, Link, LinkError};
use crate::load::Program;
use crate::obj::ProgramSpec;
use crate::sys;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// `BPF_F_ALLOW_MULTI`: other programs may be attached at the same hook.
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// Attaches a cgroup program to `targets.cgroup` at the hook its section names.
pub(super) fn attach(
    program: &Program,
    spec: &ProgramSpec,
    targets: &AttachTargets,
) -> Result<Vec<Link>, LinkError> {
    let no_target = |needs| LinkError::NoTarget {
        program: spec.name().to_owned(),
        section: spec.section().to_owned(),
        needs,
    };
    let Some(path) = targets.cgroup.as_deref() else {
        return Err(no_target("a cgroup (--cgroup PATH)"));
    };
    let Some(attach_type) = spec.attach_type else {
        return Err(no_target(
            "a hook in the section (cgroup_skb/ingress, cgroup/connect4, ...)",
        ));
    };
    let target = format!("cgroup {} {}", path.display(), spec.section());
    let cgroup = File::open(path).map_err(|source| LinkError::TargetNotFound {
        program: spec.name().to_owned(),
        section: spec.section().to_owned(),
        target: target.clone(),
        source,
    })?;
    let failed = |action, source| LinkError::Attach {
        program: spec.name().to_owned(),
        section: spec.section().to_owned(),
        target: target.clone(),
        action,
        source,
    };
    let attachment = match sys::link_create_fd(program.fd(), cgroup.as_fd(), attach_type.0, 0) {
        Ok(fd) => Attachment::Bpf(fd),
        // Kernels before 5.7 have no cgroup links: attach the program
        // itself, next to any others at that hook.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // The fd that detaches it later is had before it is attached.
            let prog = program
                .fd()
                .try_clone_to_owned()
                .map_err(|source: io::Error| failed("duplicating the program fd", source))?;
            sys::prog_attach(cgroup.as_fd(), prog.as_fd(), attach_type, BPF_F_ALLOW_MULTI)
                .map_err(|source| failed("BPF_PROG_ATTACH", source))?;
            Attachment::ProgAttach {
                target: OwnedFd::from(cgroup),
                prog,
                attach_type,
            }
        }
        Err(source) => return Err(failed("BPF_LINK_CREATE", source)),
    };
    Ok(vec![Link::new(spec.name(), target, attachment)])
}
