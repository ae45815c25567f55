//! The live half: an [`ObjectSpec`] becomes kernel objects. BTF is loaded
//! first, then maps (global data written, `.rodata` frozen, pinned maps
//! reused), then each program is linked, given its map fds and loaded, and
//! last the prog arrays and map-in-maps get their slots. Everything is held
//! by [`Collection`]; dropping it closes every fd. A failure part-way drops
//! what was made, so nothing leaks.

use crate::error::LoadError;
use crate::obj::btf_ext::{encode_func_info, encode_line_info};
use crate::obj::core::TargetTypes;
use crate::obj::externs::{self, KsymValue};
use crate::obj::link::{ExternValue, LinkedProgram};
use crate::obj::{ExternKind, MapOrigin, MapSpec, ObjectSpec, Pinning, ProgramSpec, SlotTarget};
use crate::sys::{self, ElemSizes};
use crate::uapi::{MapType, ProgramType};
use std::borrow::Cow;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Verifier log sizes: the first retry's buffer, and the most we grow it to.
const LOG_START: usize = 64 * 1024;
const LOG_MAX: usize = 64 * 1024 * 1024;

/// A prog-array slot to set (or, with no program, to leave empty) after
/// the object's own `.values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailSlot {
    /// The prog array.
    pub map: String,
    /// The index.
    pub key: u32,
    /// The program to put there; `None` leaves the slot empty.
    pub program: Option<String>,
}

/// How to load an object.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The object's name (libbpf's: the file name without `.o`), used in the
    /// kernel names of global-data maps (`pipeline.bss`).
    pub object_name: String,
    /// Prog-array slots to set or clear after the object's own `.values`.
    pub tails: Vec<TailSlot>,
    /// Where maps with `pinning = LIBBPF_PIN_BY_NAME` are pinned and reused.
    /// Without it they are not pinned.
    pub pin_by_name_dir: Option<PathBuf>,
    /// The kernel BTF to relocate against (CO-RE, externs, attach targets)
    /// instead of `/sys/kernel/btf/vmlinux` (`--btf FILE`).
    pub target_btf: Option<PathBuf>,
    /// The kernel id of the program whose functions `freplace` programs
    /// replace (libbpf's `attach_prog_fd`).
    pub attach_prog: Option<u32>,
}

impl LoadOptions {
    /// Options for a file: its name without `.o` names the object.
    pub fn for_file(path: &Path) -> LoadOptions {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        LoadOptions {
            object_name: file.strip_suffix(".o").unwrap_or(&file).to_owned(),
            ..LoadOptions::default()
        }
    }
}

/// The kernel's types, for CO-RE relocations, externs and BTF attach
/// targets: `--btf FILE` if given (that file alone), else
/// `/sys/kernel/btf/vmlinux` and, for names it lacks, module BTF. `wanted`
/// names what the object will look up: only those are indexed (see
/// [`KernelBtf`](crate::kernel_btf::KernelBtf)), and looking up any other
/// name is an error.
pub fn kernel_types(
    opts: &LoadOptions,
    wanted: &std::collections::BTreeSet<String>,
) -> Result<Box<dyn crate::obj::core::TargetTypes>, LoadError> {
    use crate::kernel_btf::KernelBtf;
    let btf = match &opts.target_btf {
        Some(path) => KernelBtf::open(path, wanted),
        None => KernelBtf::open_kernel(wanted),
    }
    .map_err(|e| LoadError::KernelBtf {
        path: e.path().to_owned(),
        reason: e.reason(),
    })?;
    Ok(Box::new(btf))
}

/// The kernel's types if the object needs them (CO-RE relocations, typed
/// ksyms and kfuncs, BTF attach targets), indexed for the names it looks
/// up; `None` for an object that never needs kernel BTF, which then is
/// never opened. `load` and `check` both decide it here.
pub fn kernel_types_for(
    spec: &ObjectSpec,
    opts: &LoadOptions,
) -> Result<Option<Box<dyn crate::obj::core::TargetTypes>>, LoadError> {
    let wanted = kernel_btf_names(spec);
    if wanted.is_empty() && spec.core_relocations == 0 {
        return Ok(None);
    }
    kernel_types(opts, &wanted).map(Some)
}

/// Every name an object looks up in kernel BTF: CO-RE relocations' root
/// types, typed ksyms and kfuncs, BTF attach targets. Empty: the object
/// never needs kernel BTF.
pub fn kernel_btf_names(spec: &ObjectSpec) -> std::collections::BTreeSet<String> {
    let mut names = crate::obj::core::wanted_names(spec);
    names.extend(crate::obj::externs::extern_names(spec));
    names.extend(crate::kernel_btf::attach_btf_names(spec));
    names
}

/// The spec with its CO-RE relocations applied, and the plan that did it.
/// Out of line: objects without CO-RE relocations never run it.
#[inline(never)]
fn relocate(
    spec: &ObjectSpec,
    types: &dyn TargetTypes,
) -> Result<(ObjectSpec, crate::obj::core::CorePlan), LoadError> {
    let plan = crate::obj::core::plan(spec, types).map_err(Box::new)?;
    let mut copy = spec.clone();
    plan.apply(&mut copy).map_err(Box::new)?;
    Ok((copy, plan))
}

/// A verifier rejection of a program with CO-RE relocations that failed:
/// the user sees which relocations (type, access string, field) were
/// poisoned, which is what the verifier's "invalid func unknown#195896080"
/// means.
#[cold]
fn with_core_failures(
    e: LoadError,
    p: &ProgramSpec,
    spec: &ObjectSpec,
    plan: Option<&crate::obj::core::CorePlan>,
) -> LoadError {
    let (LoadError::Verifier { .. }, Some(plan)) = (&e, plan) else {
        return e;
    };
    let failed: Vec<String> = p
        .functions(spec)
        .flat_map(|f| plan.for_function(&f.name))
        .filter_map(|fix| {
            fix.outcome.as_ref().err().map(|why| {
                format!(
                    "  {} instruction {}: {}: {}",
                    fix.function,
                    fix.insn,
                    fix.relocation(),
                    why.reason
                )
            })
        })
        .collect();
    if failed.is_empty() {
        return e;
    }
    let mut e = e;
    if let LoadError::Verifier { log: l, .. } = &mut e {
        l.push_str(&format!(
            "\nCO-RE relocations that failed against this kernel (their instructions were poisoned: the verifier rejects them only where they are reachable):\n{}",
            failed.join("\n")
        ));
    }
    e
}

/// A map element: key bytes and value bytes.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A map the kernel holds.
#[derive(Debug)]
pub struct Map {
    /// Its name in the object (`prog_array`, `.bss`).
    pub name: String,
    /// The (at most 15-byte) name the kernel knows it by.
    pub kernel_name: String,
    /// Type.
    pub map_type: MapType,
    /// Key size.
    pub key_size: u32,
    /// Value size (per CPU for per-CPU maps).
    pub value_size: u32,
    /// max_entries.
    pub max_entries: u32,
    /// Kernel id.
    pub id: u32,
    /// Whether an existing pin was reused rather than a map created.
    pub reused_pin: bool,
    /// Where the map is pinned by name (`LIBBPF_PIN_BY_NAME`), if it is.
    pub pinned_by_name: Option<PathBuf>,
    fd: OwnedFd,
}

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
    /// The program's fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
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
        let run =
            sys::prog_test_run_with(self.fd(), bufs).map_err(|e| self.test_run_error(e, None))?;
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
        let run = sys::prog_test_run_with(self.fd(), bufs)
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

impl Map {
    /// The map's fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Bytes of a key and of a value as user space sees them.
    pub fn elem_sizes(&self) -> ElemSizes {
        let value = if is_percpu(self.map_type) {
            (self.value_size as usize).next_multiple_of(8) * possible_cpus()
        } else {
            self.value_size as usize
        };
        ElemSizes {
            key: self.key_size as usize,
            value,
        }
    }

    /// Writes one element.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), LoadError> {
        sys::map_update(self.fd(), self.elem_sizes(), key, value, 0).map_err(|source| {
            LoadError::MapUpdate {
                map: self.name.clone(),
                what: format!("key {}", hex(key)),
                source,
            }
        })
    }

    /// Reads one element.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LoadError> {
        let mut value = vec![0u8; self.elem_sizes().value];
        let found =
            sys::map_lookup(self.fd(), self.elem_sizes(), key, &mut value).map_err(|source| {
                LoadError::MapRead {
                    map: self.name.clone(),
                    source,
                }
            })?;
        Ok(found.then_some(value))
    }

    /// Every (key, value), in the kernel's key order. Prog arrays and
    /// map-in-maps read back program and map ids.
    pub fn entries(&self) -> Result<Vec<Entry>, LoadError> {
        let sizes = self.elem_sizes();
        let read_err = |source| LoadError::MapRead {
            map: self.name.clone(),
            source,
        };
        let mut out = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        // Bounded: a hash can change under us, so never walk more than max_entries.
        for _ in 0..self.max_entries.max(1) {
            let mut next = vec![0u8; sizes.key];
            if !sys::map_next_key(self.fd(), sizes, key.as_deref(), &mut next).map_err(read_err)? {
                break;
            }
            if let Some(value) = self.lookup(&next)? {
                out.push((next.clone(), value));
            }
            key = Some(next);
        }
        Ok(out)
    }
}

/// Programs and maps loaded from one object.
#[derive(Debug)]
pub struct Collection {
    /// Programs, in the object's order.
    pub programs: Vec<Program>,
    /// Maps, in the object's order.
    pub maps: Vec<Map>,
    /// Things that did not stop the load but that a user should know.
    pub warnings: Vec<String>,
    /// The object's name (see [`LoadOptions::object_name`]).
    pub object_name: String,
}

impl Collection {
    /// Loads everything the spec declares.
    pub fn load(spec: &ObjectSpec, opts: &LoadOptions) -> Result<Collection, LoadError> {
        // Kernel BTF only for objects that need it (CO-RE relocations, typed
        // ksyms and kfuncs, BTF attach targets), indexed for the names they
        // look up and shared by all three.
        let kernel = kernel_types_for(spec, opts)?;
        // CO-RE: every relocation computed against the kernel's types, then
        // applied to a copy of the spec before anything is linked.
        let relocated;
        let (spec, core_plan) = match kernel.as_deref() {
            Some(types) if spec.core_relocations > 0 => {
                let (copy, plan) = relocate(spec, types)?;
                relocated = copy;
                (&relocated, Some(plan))
            }
            _ => (spec, None),
        };
        let mut warnings = Vec::new();
        let externs = resolve_externs(spec, opts, kernel.as_deref(), &mut warnings)?;
        let btf = load_btf(spec, &mut warnings);
        let btf_fd = btf.as_ref().map(|f| f.as_fd());
        let mut maps = Vec::with_capacity(spec.maps.len());
        for m in &spec.maps {
            maps.push(create_map(
                &externs.map_spec(m),
                opts,
                btf_fd,
                &mut warnings,
            )?);
        }
        let plan = slot_plan(spec, &opts.tails)?;
        for slot in &plan {
            if let SlotTarget::Map(inner) = &slot.target {
                let fd = find_map(&maps, inner)?.fd();
                slot.fill(&maps, fd)?;
            }
        }
        // Each program goes into its prog-array slots as soon as it is
        // loaded, and programs that tail-call load after those that do not:
        // the JIT then finds its direct tail-call targets in place, instead
        // of every slot update patching live code on all CPUs (~0.1 ms each).
        let mut loaded: Vec<Option<Program>> = spec.programs.iter().map(|_| None).collect();
        for i in load_order(spec) {
            let p = &spec.programs[i];
            let program = load_program(p, spec, &maps, btf_fd, kernel.as_deref(), opts, &externs)
                .map_err(|e| with_core_failures(e, p, spec, core_plan.as_ref()))?;
            for slot in &plan {
                if matches!(&slot.target, SlotTarget::Program(name) if name == p.name()) {
                    slot.fill(&maps, program.fd())?;
                }
            }
            loaded[i] = Some(program);
        }
        let mut collection = Collection {
            programs: loaded.into_iter().flatten().collect(),
            maps,
            warnings,
            object_name: opts.object_name.clone(),
        };
        if let Some(dir) = &opts.pin_by_name_dir {
            collection.pin_by_name(spec, dir)?;
        }
        Ok(collection)
    }

    /// A program by name.
    pub fn program(&self, name: &str) -> Result<&Program, LoadError> {
        self.programs
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| LoadError::NotFound {
                kind: "program",
                name: name.to_owned(),
                known: self
                    .programs
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// A map by name: its name in the object, its kernel name, or libbpf's
    /// `<object>.bss` form for global data.
    pub fn map(&self, name: &str) -> Result<&Map, LoadError> {
        let libbpf_form = |m: &Map| {
            m.name.starts_with('.')
                && name.strip_suffix(m.name.as_str()).is_some_and(|prefix| {
                    !prefix.is_empty() && self.object_name.starts_with(prefix)
                })
        };
        self.maps
            .iter()
            .find(|m| m.name == name)
            .or_else(|| {
                self.maps
                    .iter()
                    .find(|m| m.kernel_name == name || libbpf_form(m))
            })
            .ok_or_else(|| map_not_found(&self.maps, name))
    }

    /// Pins the maps that ask for it by name, unless a pin was reused.
    #[inline(never)]
    fn pin_by_name(&mut self, spec: &ObjectSpec, dir: &Path) -> Result<(), LoadError> {
        let wanted: Vec<&str> = spec
            .maps
            .iter()
            .filter(|m| m.pinning == Pinning::ByName)
            .map(|m| m.name.as_str())
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        ensure_bpffs_dir(dir)?;
        let mut made = PinGuard::default();
        for map in self
            .maps
            .iter_mut()
            .filter(|m| wanted.contains(&m.name.as_str()))
        {
            let path = dir.join(pin_name(&map.name));
            if !map.reused_pin {
                made.pin(map.fd.as_fd(), &path)?;
            }
            map.pinned_by_name = Some(path);
        }
        made.keep();
        Ok(())
    }

    /// Pins every program and map under `dir` (created if missing; bpffs is
    /// mounted at /sys/fs/bpf first if it is not). bpffs refuses dots in
    /// names, so each `.` becomes `_` (`.bss` → `_bss`). Returns the paths.
    /// If any pin fails, those made before it are removed.
    pub fn pin(&self, dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
        ensure_bpffs_dir(dir)?;
        let mut made = PinGuard::default();
        for p in &self.programs {
            made.pin(p.fd(), &dir.join(pin_name(&p.name)))?;
        }
        for m in self.maps.iter().filter(|m| m.pinned_by_name.is_none()) {
            let path = dir.join(pin_name(&m.name));
            if made.paths.contains(&path) {
                return Err(LoadError::Pin {
                    path,
                    action: "two objects map to this pin name",
                    source: io::Error::from_raw_os_error(libc::EEXIST),
                });
            }
            made.pin(m.fd(), &path)?;
        }
        Ok(made.keep())
    }
}

/// Pins made so far, removed on drop unless kept.
#[derive(Default)]
struct PinGuard {
    paths: Vec<PathBuf>,
}

impl PinGuard {
    fn pin(&mut self, fd: BorrowedFd<'_>, path: &Path) -> Result<(), LoadError> {
        sys::obj_pin(fd, &c_path(path)?).map_err(|source| LoadError::Pin {
            path: path.to_owned(),
            action: "pinning",
            source,
        })?;
        self.paths.push(path.to_owned());
        Ok(())
    }

    fn keep(mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.paths)
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A bpffs file name for an object name: bpffs refuses dots.
pub fn pin_name(name: &str) -> String {
    name.replace('.', "_")
}

fn c_path(path: &Path) -> Result<CString, LoadError> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| LoadError::Pin {
        path: path.to_owned(),
        action: "using the path",
        source: io::Error::from_raw_os_error(libc::EINVAL),
    })
}

/// `create_dir_all`, but when `dir`'s parent is missing, the levels below
/// `known` (a directory that exists) are made top-down: a new chain's path
/// takes one call per level instead of a failed call and a call per level.
fn make_dirs(dir: &Path, known: &Path) -> io::Result<()> {
    let exists = |r: io::Result<()>, d: &Path| match r {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => Ok(()),
        r => r,
    };
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        r => return exists(r, dir),
    }
    if !dir.starts_with(known) {
        return std::fs::create_dir_all(dir);
    }
    let mut levels: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| a.starts_with(known) && *a != known)
        .collect();
    levels.reverse();
    for level in levels {
        exists(std::fs::create_dir(level), level)?;
    }
    Ok(())
}

/// Creates `dir` on bpffs, mounting bpffs at /sys/fs/bpf if it is not there yet.
pub fn ensure_bpffs_dir(dir: &Path) -> Result<(), LoadError> {
    let root = Path::new("/sys/fs/bpf");
    if dir.starts_with(root) && !sys::is_bpffs(c"/sys/fs/bpf").unwrap_or(false) {
        sys::mount_bpffs(c"/sys/fs/bpf").map_err(|source| LoadError::Pin {
            path: root.to_owned(),
            action: "mounting bpffs",
            source,
        })?;
    }
    // Another rawbpf may remove an empty parent (its own failed attach
    // tidying up) between create_dir_all making it and making the next
    // level: make the path again.
    let mut tries = 0;
    loop {
        match make_dirs(dir, root) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 8 => tries += 1,
            Err(source) => {
                return Err(LoadError::Pin {
                    path: dir.to_owned(),
                    action: "creating the directory",
                    source,
                })
            }
        }
    }
    if !sys::is_bpffs(&c_path(dir)?).unwrap_or(false) {
        return Err(LoadError::Pin {
            path: dir.to_owned(),
            action: "not on a bpffs mount (mount -t bpf bpf DIR, or use /sys/fs/bpf/...)",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    Ok(())
}

fn fd_number(fd: BorrowedFd<'_>) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

/// Loads the object's BTF; if the kernel refuses it, go on without and say so.
fn load_btf(spec: &ObjectSpec, warnings: &mut Vec<String>) -> Option<OwnedFd> {
    let bytes = spec.btf.as_ref()?.to_bytes();
    match sys::btf_load(&bytes, None) {
        Ok(fd) => Some(fd),
        Err(e) => {
            warnings.push(btf_refused(&bytes, &e));
            None
        }
    }
}

/// The warning for BTF the kernel refused, with the last line of its log
/// (the BTF is loaded again to get it).
#[cold]
fn btf_refused(bytes: &[u8], e: &io::Error) -> String {
    let mut log = vec![0u8; LOG_START];
    let _ = sys::btf_load(bytes, Some(&mut log));
    let log = log_text(&log);
    format!(
        "the kernel refused the object's BTF ({e}); loading without it (no func/line info, no BTF map types){}",
        if log.is_empty() { String::new() } else { format!(": {}", log.lines().last().unwrap_or("")) }
    )
}

fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).trim_end().to_owned()
}

fn is_percpu(t: MapType) -> bool {
    matches!(
        t,
        MapType::PERCPU_HASH
            | MapType::PERCPU_ARRAY
            | MapType::LRU_PERCPU_HASH
            | MapType::PERCPU_CGROUP_STORAGE
    )
}

/// Map types that refuse BTF key/value type ids (their values are fds or
/// kernel-defined).
fn takes_btf_types(t: MapType) -> bool {
    !matches!(
        t,
        MapType::PROG_ARRAY
            | MapType::PERF_EVENT_ARRAY
            | MapType::CGROUP_ARRAY
            | MapType::ARRAY_OF_MAPS
            | MapType::HASH_OF_MAPS
            | MapType::DEVMAP
            | MapType::DEVMAP_HASH
            | MapType::SOCKMAP
            | MapType::SOCKHASH
            | MapType::CPUMAP
            | MapType::XSKMAP
            | MapType::REUSEPORT_SOCKARRAY
            | MapType::STACK_TRACE
            | MapType::QUEUE
            | MapType::STACK
            | MapType::RINGBUF
            | MapType::USER_RINGBUF
    )
}

/// The number of possible CPUs (per-CPU values are this many times larger;
/// a perf event array has a slot for each). Read once: it never changes
/// while the system runs.
pub fn possible_cpus() -> usize {
    static POSSIBLE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *POSSIBLE.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|s| parse_cpu_list(s.trim()))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// Counts CPUs in a list like `0-3,5`.
fn parse_cpu_list(s: &str) -> Option<usize> {
    let mut n = 0;
    for part in s.split(',') {
        n += match part.split_once('-') {
            Some((a, b)) => {
                b.parse::<usize>()
                    .ok()?
                    .checked_sub(a.parse::<usize>().ok()?)?
                    + 1
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    Some(n)
}

/// The kernel name of a map: its own name, or for global data libbpf's
/// `<first 8 bytes of the object name><section>` (`pipeline.bss`), with
/// characters the kernel refuses replaced by `_`.
fn kernel_map_name(m: &MapSpec, object_name: &str) -> String {
    let name = if m.origin == MapOrigin::GlobalData {
        let prefix: String = object_name.chars().take(8).collect();
        format!("{prefix}{}", m.name)
    } else {
        m.name.clone()
    };
    name.chars()
        .take(sys::OBJ_NAME_LEN - 1)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn map_create_attrs<'a>(
    m: &MapSpec,
    name: &'a str,
    inner: Option<BorrowedFd<'a>>,
    btf: Option<BorrowedFd<'a>>,
) -> sys::MapCreate<'a> {
    let has_types = m.btf_key_type_id != 0 || m.btf_value_type_id != 0;
    sys::MapCreate {
        map_type: m.map_type.0,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        flags: m.flags,
        numa_node: m.numa_node,
        map_extra: m.map_extra,
        name,
        inner_map_fd: inner,
        btf: btf
            .filter(|_| has_types && takes_btf_types(m.map_type))
            .map(|fd| (fd, m.btf_key_type_id, m.btf_value_type_id)),
    }
}

fn create_map(
    m: &MapSpec,
    opts: &LoadOptions,
    btf: Option<BorrowedFd<'_>>,
    warnings: &mut Vec<String>,
) -> Result<Map, LoadError> {
    // What the kernel is asked for: the declaration with libbpf's fix-ups
    // (perf event arrays sized to the CPUs, ring buffers' sizes). Only maps
    // that may need them read the CPU count and page size.
    let (m, fixups) = if m.needs_kernel_fixups() {
        m.for_kernel(
            u32::try_from(possible_cpus()).unwrap_or(u32::MAX),
            sys::page_size(),
        )
    } else {
        (Cow::Borrowed(m), Vec::new())
    };
    warnings.extend(fixups);
    let m: &MapSpec = &m;
    let kernel_name = kernel_map_name(m, &opts.object_name);
    let create_err = |source: io::Error| LoadError::MapCreate {
        map: m.name.clone(),
        rule: (source.raw_os_error() == Some(libc::EINVAL))
            .then(|| m.kernel_rule_broken())
            .flatten(),
        source,
    };
    if let (Pinning::ByName, Some(dir)) = (m.pinning, &opts.pin_by_name_dir) {
        if let Some(map) = reuse_pin(m, &dir.join(pin_name(&m.name)), &kernel_name)? {
            return Ok(map);
        }
    }
    // A map-in-map is created with a template of its inner maps, closed after.
    let inner = match &m.inner {
        Some(inner) => {
            let name = kernel_map_name(inner, &opts.object_name);
            Some(sys::map_create(&map_create_attrs(inner, &name, None, btf)).map_err(create_err)?)
        }
        None => None,
    };
    let attrs = map_create_attrs(m, &kernel_name, inner.as_ref().map(|f| f.as_fd()), btf);
    let fd = match sys::map_create(&attrs) {
        Ok(fd) => fd,
        // Some kernels refuse BTF type ids for some maps: libbpf retries without.
        Err(e) if attrs.btf.is_some() => {
            let fd = sys::map_create(&sys::MapCreate { btf: None, ..attrs }).map_err(create_err)?;
            warnings.push(format!(
                "map {}: created without BTF types, the kernel refused them ({e})",
                m.name
            ));
            fd
        }
        Err(e) => return Err(create_err(e)),
    };
    let info = sys::map_info(fd.as_fd()).map_err(create_err)?;
    let map = Map {
        name: m.name.clone(),
        kernel_name,
        map_type: m.map_type,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        id: info.id,
        reused_pin: false,
        pinned_by_name: None,
        fd,
    };
    if let Some(data) = &m.data {
        map.update(&0u32.to_le_bytes(), data).map_err(|e| match e {
            LoadError::MapUpdate { map, source, .. } => LoadError::MapUpdate {
                map,
                what: "its initial data".into(),
                source,
            },
            other => other,
        })?;
    }
    if m.is_rodata() {
        sys::map_freeze(map.fd()).map_err(|source| LoadError::MapUpdate {
            map: m.name.clone(),
            what: "freezing it".into(),
            source,
        })?;
    }
    Ok(map)
}

/// Opens a map pinned by name and checks it matches the definition.
#[inline(never)]
fn reuse_pin(m: &MapSpec, path: &Path, kernel_name: &str) -> Result<Option<Map>, LoadError> {
    let fd = match sys::obj_get(&c_path(path)?) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(source) => {
            return Err(LoadError::Pin {
                path: path.to_owned(),
                action: "opening the pinned map",
                source,
            })
        }
    };
    let info = sys::map_info(fd.as_fd()).map_err(|source| LoadError::Pin {
        path: path.to_owned(),
        action: "reading the pinned map",
        source,
    })?;
    let checks = [
        ("type", info.map_type, m.map_type.0),
        ("key size", info.key_size, m.key_size),
        ("value size", info.value_size, m.value_size),
        ("max_entries", info.max_entries, m.max_entries),
        ("flags", info.map_flags, m.flags),
    ];
    if let Some((what, pinned, ours)) = checks.into_iter().find(|(_, a, b)| a != b) {
        return Err(LoadError::PinMismatch {
            map: m.name.clone(),
            path: path.to_owned(),
            reason: format!("{what} is {pinned} there, {ours} in the object"),
        });
    }
    Ok(Some(Map {
        name: m.name.clone(),
        kernel_name: kernel_name.to_owned(),
        map_type: m.map_type,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        id: info.id,
        reused_pin: true,
        pinned_by_name: Some(path.to_owned()),
        fd,
    }))
}

/// Program types rawbpf cannot load: struct_ops programs are members of a
/// struct_ops map, which rawbpf does not create.
fn needs_attach_btf(t: ProgramType) -> bool {
    t == ProgramType::STRUCT_OPS
}

/// Loads one program; `kernel` is the kernel's BTF when a program of the
/// object has a BTF attach target (tracing, LSM), `opts.attach_prog` the
/// program freplace programs replace a function of.
fn load_program(
    p: &ProgramSpec,
    spec: &ObjectSpec,
    maps: &[Map],
    btf: Option<BorrowedFd<'_>>,
    kernel: Option<&dyn crate::obj::core::TargetTypes>,
    opts: &LoadOptions,
    externs: &ResolvedExterns,
) -> Result<Program, LoadError> {
    if needs_attach_btf(p.prog_type) {
        return Err(LoadError::Unsupported {
            program: p.name().to_owned(),
            what: format!(
                "a {} program (it is loaded as a member of a struct_ops map)",
                p.prog_type
            ),
        });
    }
    let attach = crate::kernel_btf::load_attach(p, kernel, opts.attach_prog)?;
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
        expected_attach_type: p.attach_type.map_or(0, |a| a.0),
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

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One prog-array or map-in-map slot to set: from the object's `.values`,
/// or from a `--tail` flag (which wins over `.values`).
struct PlannedSlot {
    map: String,
    key: u32,
    target: SlotTarget,
}

impl PlannedSlot {
    fn fill(&self, maps: &[Map], fd: BorrowedFd<'_>) -> Result<(), LoadError> {
        let map = find_map(maps, &self.map)?;
        let value = (fd_number(fd) as u32).to_le_bytes();
        sys::map_update(
            map.fd(),
            map.elem_sizes(),
            &self.key.to_le_bytes(),
            &value,
            0,
        )
        .map_err(|source| LoadError::MapUpdate {
            map: self.map.clone(),
            what: match &self.target {
                SlotTarget::Program(p) => format!("slot {} = program {p}", self.key),
                SlotTarget::Map(n) => format!("slot {} = map {n}", self.key),
            },
            source,
        })
    }
}

/// The error for a map `maps` does not have, listing those it has.
fn map_not_found(maps: &[Map], name: &str) -> LoadError {
    LoadError::NotFound {
        kind: "map",
        name: name.to_owned(),
        known: maps
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A map by its name in the object.
fn find_map<'a>(maps: &'a [Map], name: &str) -> Result<&'a Map, LoadError> {
    maps.iter()
        .find(|m| m.name == name)
        .ok_or_else(|| map_not_found(maps, name))
}

/// The slots to fill, checked against the spec before anything is loaded.
fn slot_plan(spec: &ObjectSpec, tails: &[TailSlot]) -> Result<Vec<PlannedSlot>, LoadError> {
    let mut plan: Vec<(String, u32, Option<SlotTarget>)> = Vec::new();
    for m in &spec.maps {
        for s in &m.initial_slots {
            plan.push((m.name.clone(), s.index, Some(s.target.clone())));
        }
    }
    for t in tails {
        let spec_text = format!("{}:{}={}", t.map, t.key, t.program.as_deref().unwrap_or(""));
        let bad = |reason: String| LoadError::Tail {
            spec: spec_text.clone(),
            reason,
        };
        let m = spec
            .map(&t.map)
            .ok_or_else(|| bad(format!("no map {} in the object", t.map)))?;
        if m.map_type != MapType::PROG_ARRAY {
            return Err(bad(format!(
                "map {} is a {}, not a prog_array",
                m.name, m.map_type
            )));
        }
        if t.key >= m.max_entries {
            return Err(bad(format!(
                "key {} is past max_entries {} of {}",
                t.key, m.max_entries, m.name
            )));
        }
        if let Some(p) = &t.program {
            spec.program(p)
                .ok_or_else(|| bad(format!("no program {p} in the object")))?;
        }
        plan.retain(|(name, key, _)| !(*name == m.name && *key == t.key));
        plan.push((
            m.name.clone(),
            t.key,
            t.program.clone().map(SlotTarget::Program),
        ));
    }
    Ok(plan
        .into_iter()
        .filter_map(|(map, key, target)| {
            Some(PlannedSlot {
                map,
                key,
                target: target?,
            })
        })
        .collect())
}

/// The order to load programs in: those that use no prog array first (they
/// are what others tail-call into), then the rest, last first (chains are
/// usually written entry first).
fn load_order(spec: &ObjectSpec) -> Vec<usize> {
    let uses_prog_array = |p: &ProgramSpec| {
        p.functions(spec).any(|f| {
            f.relocations.iter().any(|r| match &r.target {
                crate::obj::RelocTarget::Map { map } => spec
                    .map(map)
                    .is_some_and(|m| m.map_type == MapType::PROG_ARRAY),
                _ => false,
            })
        })
    };
    let (users, others): (Vec<usize>, Vec<usize>) =
        (0..spec.programs.len()).partition(|&i| uses_prog_array(&spec.programs[i]));
    others.into_iter().chain(users.into_iter().rev()).collect()
}

/// The object's externs resolved for the running kernel: the `.kconfig`
/// map's value, what each `__ksym` variable and kfunc is, and the module
/// BTF objects they live in. Made by [`resolve_externs`].
#[derive(Debug, Default)]
pub struct ResolvedExterns {
    /// The `.kconfig` map's value (`None`: no `__kconfig` externs).
    pub kconfig: Option<Vec<u8>>,
    /// Each `__ksym` variable and kfunc, with its name.
    pub ksyms: Vec<(String, KsymValue)>,
    /// Module BTF objects, by module name: `fd_array[i + 1]` is the i-th
    /// (index 0 is vmlinux's, which needs no fd).
    module_btfs: Vec<(String, OwnedFd)>,
}

/// Resolves the object's externs: `__kconfig` values (the kernel's config
/// is read only for `CONFIG_*` ones), typeless ksyms from `/proc/kallsyms`,
/// typed ksyms and kfuncs from `kernel` — or, if that is `None` and the
/// object has any, from [`kernel_types`] with [`externs::extern_names`].
/// Objects with no ksyms or kfuncs never read the kernel's BTF.
pub fn resolve_externs(
    spec: &ObjectSpec,
    opts: &LoadOptions,
    kernel: Option<&dyn TargetTypes>,
    warnings: &mut Vec<String>,
) -> Result<ResolvedExterns, LoadError> {
    if spec.externs.is_empty() {
        return Ok(ResolvedExterns::default());
    }
    resolve_some_externs(spec, opts, kernel, warnings)
}

/// [`resolve_externs`] for an object that has some: kept out of line, so an
/// object without externs (most) runs through none of this code.
#[inline(never)]
fn resolve_some_externs(
    spec: &ObjectSpec,
    opts: &LoadOptions,
    kernel: Option<&dyn TargetTypes>,
    warnings: &mut Vec<String>,
) -> Result<ResolvedExterns, LoadError> {
    let mut out = ResolvedExterns {
        kconfig: crate::kconfig::kconfig_data(spec, warnings)?,
        ..ResolvedExterns::default()
    };
    let typeless = spec
        .externs
        .iter()
        .find(|e| e.kind == ExternKind::Ksym { typed: None });
    if let Some(e) = typeless {
        let file = std::fs::File::open("/proc/kallsyms").map_err(|source| LoadError::Extern {
            name: e.name.clone(),
            reason: format!("a typeless __ksym's address is in /proc/kallsyms: {source}"),
        })?;
        out.ksyms
            .extend(externs::resolve_kallsyms(spec, io::BufReader::new(file))?);
    }
    let names = externs::extern_names(spec);
    if !names.is_empty() {
        let owned;
        let kernel = match kernel {
            Some(k) => k,
            None => {
                owned = kernel_types(opts, &names)?;
                owned.as_ref()
            }
        };
        out.ksyms.extend(externs::resolve_btf(spec, kernel)?);
    }
    for (name, value) in &out.ksyms {
        if let KsymValue::Btf {
            module: Some(module),
            ..
        } = value
        {
            if !out.module_btfs.iter().any(|(m, _)| m == module) {
                let fd = module_btf_fd(module, name)?;
                if out.module_btfs.len() + 1 >= i16::MAX as usize {
                    return Err(LoadError::Extern {
                        name: name.clone(),
                        reason: "more module BTFs than a kfunc call's offset can index".into(),
                    });
                }
                out.module_btfs.push((module.clone(), fd));
            }
        }
    }
    Ok(out)
}

/// The BTF object of kernel module `module`, for a ksym or kfunc it defines.
///
/// TODO(module-btf): open it (`BPF_BTF_GET_NEXT_ID`, `BPF_BTF_GET_FD_BY_ID`,
/// the one whose `btf_info.name` is `module`) once `sys` has those commands;
/// everything after this — `fd_array`, kfunc call offsets, `ld_imm64` BTF
/// fds — already handles module BTFs.
fn module_btf_fd(module: &str, extern_name: &str) -> Result<OwnedFd, LoadError> {
    Err(LoadError::Extern {
        name: extern_name.to_owned(),
        reason: format!(
            "it is in kernel module {module}'s BTF, and rawbpf cannot open module BTF objects yet"
        ),
    })
}

impl ResolvedExterns {
    /// A map as it is to be created: the `.kconfig` map with its values.
    pub fn map_spec<'a>(&self, m: &'a MapSpec) -> Cow<'a, MapSpec> {
        match &self.kconfig {
            Some(data)
                if m.origin == MapOrigin::GlobalData && m.section == externs::KCONFIG_SECTION =>
            {
                Cow::Owned(MapSpec {
                    data: Some(data.clone()),
                    ..m.clone()
                })
            }
            _ => Cow::Borrowed(m),
        }
    }

    /// `fd_array` for `BPF_PROG_LOAD`: empty without module BTFs, else
    /// index 0 unused (vmlinux) and the module BTF fds after it.
    pub fn fd_array(&self) -> Vec<i32> {
        if self.module_btfs.is_empty() {
            return Vec::new();
        }
        std::iter::once(0)
            .chain(self.module_btfs.iter().map(|(_, fd)| fd_number(fd.as_fd())))
            .collect()
    }

    /// Writes every extern's value into the linked program of `program`.
    pub fn set_externs(
        &self,
        spec: &ObjectSpec,
        program: &str,
        linked: &mut LinkedProgram,
    ) -> Result<(), LoadError> {
        let value_of = |name: &str| {
            let index = spec.externs.iter().position(|e| e.name == name)?;
            let (_, value) = self.ksyms.iter().find(|(n, _)| n == name)?;
            Some(match value {
                KsymValue::Btf { kernel_id, module } => {
                    let (btf_fd, fd_index) = match module {
                        None => (0, 0),
                        Some(m) => {
                            let i = self.module_btfs.iter().position(|(n, _)| n == m)?;
                            (fd_number(self.module_btfs[i].1.as_fd()), i as i16 + 1)
                        }
                    };
                    ExternValue::Btf {
                        id: *kernel_id,
                        btf_fd,
                        fd_index,
                    }
                }
                KsymValue::Address(a) => ExternValue::Address(*a),
                KsymValue::Missing => ExternValue::Missing {
                    index: index as u32,
                },
            })
        };
        linked
            .set_externs(value_of)
            .map_err(|name| LoadError::Extern {
                name,
                reason: format!("program {program} uses it, but it was not resolved"),
            })
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

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-3,6,8-9"), Some(7));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn kernel_names() {
        let spec = ObjectSpec::parse(
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../programs/obj/global_data.bpf.o"
            ))
            .unwrap(),
        )
        .unwrap();
        let name = |m: &str| kernel_map_name(spec.map(m).unwrap(), "global_data.bpf");
        assert_eq!(name(".bss"), "global_d.bss");
        assert_eq!(name(".rodata"), "global_d.rodata");
        assert_eq!(pin_name(".rodata"), "_rodata");
    }
}
