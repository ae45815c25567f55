//! A program the kernel holds: loading one (linked, given its map fds and
//! externs, with its BTF attach target), test runs, and attaching it to
//! the target it was loaded for.

use super::error::LoadError;
use super::externs::ResolvedExterns;
use super::map::{find_map, map_not_found, Map};
use super::{fd_number, log_text, LoadOptions, LOG_MAX, LOG_START};
use crate::obj::btf_ext::{encode_func_info, encode_line_info};
use crate::obj::{ObjectSpec, ProgramSpec};
use crate::sys;
use crate::uapi::ProgramType;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A program the kernel holds.
#[derive(Debug)]
pub struct Program {
    /// Its name (the function's).
    pub name: String,
    /// Type.
    pub prog_type: ProgramType,
    /// Kernel id.
    pub id: u32,
    /// The kernel's tag (hash of the instructions).
    pub tag: [u8; 8],
    /// `expected_attach_type` it was loaded with (0: none).
    attach_type: u32,
    fd: OwnedFd,
}

/// What one test run gave.
#[derive(Debug, Clone)]
pub struct TestRunResult {
    /// The program's return value.
    pub retval: u32,
    /// Average ns per run (0 for context-only runs: the kernel does not time them).
    pub duration_ns: u32,
    /// The packet after the run (empty for context-only runs).
    pub data_out: Vec<u8>,
    /// The context after the run, when one was given to a packet program.
    pub ctx_out: Vec<u8>,
}

/// What `BPF_PROG_TEST_RUN` feeds a program of some type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunInput {
    /// A packet, repeated and timed, and optionally a context
    /// (`struct __sk_buff`, `struct xdp_md`) that the run gives back.
    Packet,
    /// Only a context: no packet, no repeat, no timing (the kernel refuses
    /// them with `EINVAL`). `max` is the most bytes it takes; `default_len`
    /// the zeroed context used when none is given.
    Context {
        /// The largest context the kernel takes.
        max: usize,
        /// Bytes of the default (zeroed) context.
        default_len: usize,
    },
}

/// A raw tracepoint's context: 8 bytes per argument, at most
/// `MAX_BPF_FUNC_ARGS` (12) of them.
pub const RAW_TP_CTX_MAX: usize = 12 * 8;

impl RunInput {
    /// What a program of type `t` takes in a test run.
    pub fn of(t: ProgramType) -> RunInput {
        match t {
            // Arguments as u64s. The default is all 12, zeroed: a context
            // shorter than what the program reads is refused.
            ProgramType::RAW_TRACEPOINT | ProgramType::RAW_TRACEPOINT_WRITABLE => {
                RunInput::Context {
                    max: RAW_TP_CTX_MAX,
                    default_len: RAW_TP_CTX_MAX,
                }
            }
            // fentry/fexit/fmod_ret: the kernel calls its own bpf_fentry_test*
            // functions and ignores any context.
            ProgramType::TRACING => RunInput::Context {
                max: RAW_TP_CTX_MAX,
                default_len: 0,
            },
            // Whatever struct the program defines, copied back after the run.
            ProgramType::SYSCALL => RunInput::Context {
                max: usize::from(u16::MAX),
                default_len: 0,
            },
            _ => RunInput::Packet,
        }
    }
}

impl Program {
    /// A program from its fd, as the kernel describes it (its kernel name,
    /// type, id and tag).
    pub(super) fn from_fd(fd: OwnedFd) -> io::Result<Program> {
        let info = sys::prog_info(fd.as_fd())?;
        let end = info
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(info.name.len());
        Ok(Program {
            name: String::from_utf8_lossy(&info.name[..end]).into_owned(),
            prog_type: ProgramType(info.prog_type),
            id: info.id,
            tag: info.tag,
            attach_type: 0,
            fd,
        })
    }

    /// The program's fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The `expected_attach_type` it was loaded with (0: none).
    pub(crate) fn attach_type(&self) -> u32 {
        self.attach_type
    }

    /// `BPF_RAW_TRACEPOINT_OPEN`: attaches a raw tracepoint program to the
    /// tracepoint `name`, or (`None`) a tracing or LSM program (fentry,
    /// fexit, fmod_ret, tp_btf, lsm) to the target it was loaded for. The
    /// program stays attached while the returned link fd is open.
    pub fn raw_tracepoint_open(&self, name: Option<&str>) -> Result<OwnedFd, LoadError> {
        let err = |source| LoadError::ProgramLink {
            program: self.name.clone(),
            command: "BPF_RAW_TRACEPOINT_OPEN",
            source,
        };
        let name = name
            .map(CString::new)
            .transpose()
            .map_err(|_| err(io::Error::from_raw_os_error(libc::EINVAL)))?;
        sys::raw_tracepoint_open(self.fd(), name.as_deref()).map_err(err)
    }

    /// `BPF_LINK_CREATE` with no target of its own: attaches the program to
    /// the target it was loaded for (an freplace program to the function it
    /// replaces, a tracing program to its kernel function). The program
    /// stays attached while the returned link fd is open.
    pub fn link_create(&self) -> Result<OwnedFd, LoadError> {
        sys::link_create_ifindex(self.fd(), 0, self.attach_type, 0).map_err(|source| {
            LoadError::ProgramLink {
                program: self.name.clone(),
                command: "BPF_LINK_CREATE",
                source,
            }
        })
    }

    /// Runs the program on a packet with `BPF_PROG_TEST_RUN`.
    pub fn test_run(&self, data: &[u8], repeat: u32) -> Result<TestRunResult, LoadError> {
        self.test_run_with(data, None, repeat)
    }

    /// Runs the program on a packet with a context (`struct __sk_buff` for
    /// TC and socket programs, `struct xdp_md` for XDP) as `BPF_PROG_TEST_RUN`
    /// allows; the context after the run is in [`TestRunResult::ctx_out`].
    pub fn test_run_with(
        &self,
        data: &[u8],
        ctx: Option<&[u8]>,
        repeat: u32,
    ) -> Result<TestRunResult, LoadError> {
        let mut out = vec![0u8; data.len() + 4096];
        // Room for the kernel's whole context struct, which may be longer
        // than what was given (a shorter one is zero-extended).
        let mut ctx_out = vec![0u8; ctx.map_or(0, |c| c.len().max(1024))];
        let bufs = sys::TestRunBufs {
            data_in: data,
            data_out: &mut out,
            ctx_in: ctx.unwrap_or_default(),
            ctx_out: &mut ctx_out,
            repeat,
        };
        let run = sys::prog_test_run(self.fd(), bufs).map_err(|e| self.test_run_error(e, None))?;
        out.truncate((run.data_size_out as usize).min(out.len()));
        ctx_out.truncate((run.ctx_size_out as usize).min(ctx_out.len()));
        Ok(TestRunResult {
            retval: run.retval,
            duration_ns: run.duration_ns,
            data_out: out,
            ctx_out,
        })
    }

    /// Runs a program that takes no packet (raw tracepoint, tracing,
    /// syscall; see [`RunInput::of`]) once, on context `ctx` — for a raw
    /// tracepoint its arguments, 8 bytes each. No packet, repeat or timing:
    /// the kernel refuses them for these programs.
    pub fn test_run_ctx(&self, ctx: &[u8]) -> Result<TestRunResult, LoadError> {
        let RunInput::Context { max, .. } = RunInput::of(self.prog_type) else {
            return Err(LoadError::TestRunRule {
                program: self.name.clone(),
                rule: format!(
                    "a {} program runs on a packet, not on a context alone",
                    self.prog_type
                ),
                source: io::Error::from_raw_os_error(libc::EINVAL),
            });
        };
        if ctx.len() > max {
            return Err(LoadError::TestRunRule {
                program: self.name.clone(),
                rule: self.ctx_rule(ctx.len(), max),
                source: io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let bufs = sys::TestRunBufs {
            ctx_in: ctx,
            ..sys::TestRunBufs::default()
        };
        let run = sys::prog_test_run(self.fd(), bufs)
            .map_err(|e| self.test_run_error(e, Some((ctx.len(), max))))?;
        Ok(TestRunResult {
            retval: run.retval,
            duration_ns: 0,
            data_out: Vec::new(),
            ctx_out: Vec::new(),
        })
    }

    fn ctx_rule(&self, len: usize, max: usize) -> String {
        if self.prog_type == ProgramType::SYSCALL {
            format!("the context ({len} bytes) must cover every byte the program reads and be at most {max} bytes")
        } else {
            format!(
                "the context ({len} bytes) must hold every argument the program reads, 8 bytes each, and be at most {max} bytes"
            )
        }
    }

    /// The error for a failed test run, with the rule broken where the
    /// errno says which. `ctx` is (context length, most allowed) for
    /// context-only runs.
    fn test_run_error(&self, source: io::Error, ctx: Option<(usize, usize)>) -> LoadError {
        let rule = match (source.raw_os_error(), ctx) {
            // ENOTSUPP: this program type has no test run.
            _ if crate::sys::is_enotsupp(&source) => Some(format!(
                "the kernel cannot test-run {} programs",
                self.prog_type
            )),
            (Some(libc::EINVAL), Some((len, max))) => Some(self.ctx_rule(len, max)),
            _ => None,
        };
        match rule {
            Some(rule) => LoadError::TestRunRule {
                program: self.name.clone(),
                rule,
                source,
            },
            None => LoadError::TestRun {
                program: self.name.clone(),
                source,
            },
        }
    }
}

/// Loads one program; `kernel` is the kernel's BTF when a program of the
/// object has a BTF attach target (tracing, LSM), `opts.attach_prog` the
/// program freplace programs replace a function of; `struct_ops` the
/// `(attach_btf_id, member index)` of a struct_ops program (see
/// [`super::struct_ops`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn load_program(
    p: &ProgramSpec,
    spec: &ObjectSpec,
    maps: &[Map],
    btf: Option<BorrowedFd<'_>>,
    kernel: Option<&dyn crate::obj::core::TargetTypes>,
    opts: &LoadOptions,
    externs: &ResolvedExterns,
    struct_ops: Option<(u32, u32)>,
) -> Result<Program, LoadError> {
    let attach = match struct_ops {
        Some((btf_id, _)) => Some(crate::kernel_btf::LoadAttach {
            btf_id,
            btf_obj_fd: None,
            prog_fd: None,
        }),
        None => crate::kernel_btf::load_attach(p, kernel, opts.attach_prog)?,
    };
    let mut linked = p.link(spec)?;
    linked
        .set_map_fds(|name| find_map(maps, name).ok().map(|m| fd_number(m.fd())))
        .map_err(|name| map_not_found(maps, &name))?;
    externs.set_externs(spec, p.name(), &mut linked)?;
    let fd_array = externs.fd_array();
    let code = linked.code();

    let license = CString::new(spec.license.as_str()).unwrap_or_default();
    let func_info = encode_func_info(&linked.func_info);
    let line_info = encode_line_info(&linked.line_info);
    let attrs = sys::ProgLoad {
        prog_type: p.prog_type.0,
        expected_attach_type: struct_ops.map_or(p.attach_type.map_or(0, |a| a.0), |(_, m)| m),
        prog_flags: p.prog_flags,
        name: p.name(),
        insns: &code,
        license: &license,
        kern_version: spec.kernel_version.unwrap_or(0),
        btf: btf.map(|fd| (fd, func_info.as_slice(), line_info.as_slice())),
        attach_btf_id: attach.as_ref().map_or(0, |a| a.btf_id),
        attach_btf_obj_fd: attach
            .as_ref()
            .and_then(|a| a.btf_obj_fd.as_ref())
            .map(|fd| fd.as_fd()),
        attach_prog_fd: attach
            .as_ref()
            .and_then(|a| a.prog_fd.as_ref())
            .map(|fd| fd.as_fd()),
        fd_array: &fd_array,
    };
    let fd = match sys::prog_load(&attrs, None) {
        Ok(fd) => fd,
        Err(first) => return Err(rejection(p.name(), &attrs, first)),
    };
    let info = sys::prog_info(fd.as_fd()).map_err(|source| LoadError::ProgLoad {
        program: p.name().to_owned(),
        source,
    })?;
    Ok(Program {
        name: p.name().to_owned(),
        prog_type: p.prog_type,
        id: info.id,
        tag: info.tag,
        attach_type: attrs.expected_attach_type,
        fd,
    })
}

/// After a failed load: load again with a verifier log (growing the buffer
/// while the kernel says it is too small) so the user sees why.
#[cold]
fn rejection(name: &str, attrs: &sys::ProgLoad<'_>, first: io::Error) -> LoadError {
    let mut size = LOG_START;
    loop {
        let mut buf = vec![0u8; size];
        match sys::prog_load(attrs, Some((&mut buf, 1))) {
            // Accepted with a log after all (a transient failure): report the first error.
            Ok(_) => break,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && size < LOG_MAX => size *= 4,
            Err(e) => {
                let log = log_text(&buf);
                if log.is_empty() {
                    return LoadError::ProgLoad {
                        program: name.to_owned(),
                        source: e,
                    };
                }
                return LoadError::Verifier {
                    program: name.to_owned(),
                    source: e,
                    log,
                };
            }
        }
    }
    LoadError::ProgLoad {
        program: name.to_owned(),
        source: first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_inputs_by_program_type() {
        assert_eq!(
            RunInput::of(ProgramType::RAW_TRACEPOINT),
            RunInput::Context {
                max: 96,
                default_len: 96
            }
        );
        assert!(matches!(
            RunInput::of(ProgramType::TRACING),
            RunInput::Context { default_len: 0, .. }
        ));
        assert_eq!(RunInput::of(ProgramType::SCHED_CLS), RunInput::Packet);
        assert_eq!(RunInput::of(ProgramType::XDP), RunInput::Packet);
    }
}
