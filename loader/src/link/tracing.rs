//! Tracing hooks: tracepoints, kprobes, uprobes and USDT, raw tracepoints,
//! BTF-typed tracing (tp_btf, fentry, fexit, fmod_ret), LSM, freplace,
//! iterators and perf events.

use super::{unsupported, AttachTargets, Attachment, Link, LinkError};
use crate::load::Program;
use crate::obj::ProgramSpec;
use crate::sys;
use crate::uapi::ProgramType;
use std::ffi::CString;
use std::io;

/// Attaches a tracing program where its section says.
pub(super) fn attach(
    program: &Program,
    spec: &ProgramSpec,
    _targets: &AttachTargets,
) -> Result<Vec<Link>, LinkError> {
    match spec.prog_type {
        ProgramType::RAW_TRACEPOINT | ProgramType::RAW_TRACEPOINT_WRITABLE => {
            raw_tracepoint(program, spec).map(|l| vec![l])
        }
        _ => Err(unsupported(spec, format!("section {}", spec.section()))),
    }
}

/// `raw_tp/NAME`, `raw_tracepoint/NAME`: `BPF_RAW_TRACEPOINT_OPEN` on the
/// tracepoint the section names.
fn raw_tracepoint(program: &Program, spec: &ProgramSpec) -> Result<Link, LinkError> {
    let Some(name) = spec.attach_target.as_deref().filter(|n| !n.is_empty()) else {
        return Err(LinkError::NoTarget {
            program: spec.name().to_owned(),
            section: spec.section().to_owned(),
            needs: "a tracepoint name in the section (raw_tp/NAME)",
        });
    };
    let target = format!("raw tracepoint {name}");
    let fail = |source: io::Error| {
        if source.raw_os_error() == Some(libc::ENOENT) {
            LinkError::TargetNotFound {
                program: spec.name().to_owned(),
                section: spec.section().to_owned(),
                target: target.clone(),
                source,
            }
        } else {
            LinkError::Attach {
                program: spec.name().to_owned(),
                section: spec.section().to_owned(),
                target: target.clone(),
                action: "BPF_RAW_TRACEPOINT_OPEN",
                source,
            }
        }
    };
    let c = CString::new(name).map_err(|_| fail(io::Error::from_raw_os_error(libc::EINVAL)))?;
    let fd = sys::raw_tracepoint_open(program.fd(), Some(&c)).map_err(fail)?;
    Ok(Link::new(spec.name(), target.clone(), Attachment::Bpf(fd)))
}
