//! The live half: an [`ObjectSpec`] becomes kernel objects. BTF is loaded
//! first, then maps (global data written, `.rodata` frozen, pinned maps
//! reused), then each program is linked, given its map fds and loaded, and
//! last the prog arrays and map-in-maps get their slots. Everything is held
//! by [`Collection`]; dropping it closes every fd. A failure part-way drops
//! what was made, so nothing leaks.
//!
//! Its rooms: [`map`] (creating and using maps), [`program`] (loading,
//! test runs), [`pin`] (bpffs), [`externs`] (extern resolution),
//! [`struct_ops`] (struct_ops maps and the programs they point to), `error` ([`LoadError`]),
//! [`map_btf`] (a map's key/value types read back from the kernel), `batch` (batch dumps),
//! `map_ids` (every map of the system, map pins under a directory).

mod batch;
pub mod btf;
mod error;
pub mod externs;
pub mod globals;
pub mod kconfig;
pub mod map;
pub mod map_btf;
mod map_ids;
pub mod pin;
pub mod program;
pub mod struct_ops;

pub use batch::BATCH_CHUNK;
pub use error::{LoadError, TailSlotError};
pub use externs::{resolve_externs, ResolvedExterns};
pub use map::{possible_cpus, Entry, Map};
pub use map_btf::{MapBtf, MapBtfError};
pub use map_ids::{map_ids, maps, pinned_maps};
pub use pin::{ensure_bpffs_dir, pin_name};
pub use program::{Program, RunInput, TestRunResult, RAW_TP_CTX_MAX};
pub use struct_ops::StructOpsMap;

use crate::obj::core::TargetTypes;
use crate::obj::{ObjectSpec, ProgramSpec, SlotTarget};
use crate::sys;
use crate::uapi::MapType;
use map::{create_map, find_map, map_not_found};
use program::load_program;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// Verifier log sizes: the first retry's buffer, and the most we grow it to.
pub(super) const LOG_START: usize = 64 * 1024;
pub(super) const LOG_MAX: usize = 64 * 1024 * 1024;

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
    /// Global variables to set before the maps are created, by name, in
    /// order (see [`globals`]): `.rodata`'s are frozen with their new value.
    pub globals: Vec<(String, crate::obj::GlobalValue)>,
    /// Maps the kernel holds already, used instead of creating the object's
    /// maps of those names (cilium/ebpf's map replacements): their contents
    /// stay as they are, and a map that does not match the definition is
    /// refused ([`LoadError::ReplacementMismatch`]).
    pub replace_maps: Vec<MapReplacement>,
    /// Tests only: BTF features to treat as missing from the kernel's BTF
    /// loader besides those it really lacks, to force the sanitization a
    /// kernel lacking them gets (see [`btf`]).
    #[doc(hidden)]
    pub btf_pretend_lacks: Option<crate::obj::btf::sanitize::BtfLacks>,
}

/// An existing map to use for one of the object's maps.
#[derive(Debug, Clone)]
pub struct MapReplacement {
    /// The object's map it stands for.
    pub name: String,
    fd: std::sync::Arc<std::os::fd::OwnedFd>,
}

impl MapReplacement {
    /// `map` for the object's map `name` (its fd is duplicated: `map`
    /// stays usable).
    pub fn new(name: impl Into<String>, map: &Map) -> std::io::Result<MapReplacement> {
        Ok(MapReplacement {
            name: name.into(),
            fd: std::sync::Arc::new(map.fd().try_clone_to_owned()?),
        })
    }

    pub(super) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
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

    /// Sets a global variable from text typed by its BTF type (`42`,
    /// `MODE_FAST`, `"eth0"`, `{a=1, b=2}`; see
    /// [`value::encode`](crate::obj::btf::value::encode)). Checked when
    /// the object is loaded.
    pub fn set_global(&mut self, name: &str, text: &str) -> &mut LoadOptions {
        self.globals.push((
            name.to_owned(),
            crate::obj::GlobalValue::Text(text.to_owned()),
        ));
        self
    }

    /// Sets a global variable from a Rust value, checked against its BTF
    /// type's size and kind when the object is loaded.
    pub fn set_global_value<T: crate::obj::GlobalType>(
        &mut self,
        name: &str,
        value: T,
    ) -> &mut LoadOptions {
        self.globals.push((name.to_owned(), value.global_value()));
        self
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
    }?;
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

/// Whether loading `spec` needs the kernel's BTF (CO-RE relocations, or a
/// name to look up: [`kernel_btf_names`]).
pub fn needs_kernel_btf(spec: &ObjectSpec) -> bool {
    spec.core_relocations > 0 || !kernel_btf_names(spec).is_empty()
}

/// Every name an object looks up in kernel BTF: CO-RE relocations' root
/// types, typed ksyms and kfuncs, BTF attach targets. Empty: the object
/// never needs kernel BTF.
pub fn kernel_btf_names(spec: &ObjectSpec) -> std::collections::BTreeSet<String> {
    let mut names = crate::obj::core::wanted_names(spec);
    names.extend(crate::obj::externs::extern_names(spec));
    names.extend(crate::kernel_btf::attach_btf_names(spec));
    names.extend(crate::kernel_btf::struct_ops::struct_ops_names(spec));
    names
}

/// The spec with its CO-RE relocations applied, and the plan that did it.
/// Out of line: objects without CO-RE relocations never run it.
#[inline(never)]
fn relocate(
    spec: &ObjectSpec,
    types: &dyn TargetTypes,
) -> Result<(ObjectSpec, crate::obj::core::CorePlan), LoadError> {
    Ok(crate::obj::core::relocate(spec, types).map_err(Box::new)?)
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

/// Programs and maps loaded from one object.
#[derive(Debug)]
pub struct Collection {
    /// Programs, in the object's order.
    pub programs: Vec<Program>,
    /// Maps, in the object's order.
    pub maps: Vec<Map>,
    /// The struct_ops maps (also in `maps`), ready to register
    /// ([`crate::link::struct_ops`]).
    pub struct_ops: Vec<StructOpsMap>,
    /// Things that did not stop the load but that a user should know.
    pub warnings: Vec<String>,
    /// The object's name (see [`LoadOptions::object_name`]).
    pub object_name: String,
}

impl Collection {
    /// Loads everything the spec declares.
    pub fn load(spec: &ObjectSpec, opts: &LoadOptions) -> Result<Collection, LoadError> {
        // Globals first: a bad one fails before anything is made.
        let with_globals;
        let spec = if opts.globals.is_empty() {
            spec
        } else {
            with_globals = globals::apply(spec, &opts.globals).map_err(Box::new)?;
            &with_globals
        };
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
        let btf = btf::load_object_btf(spec, opts.btf_pretend_lacks, &mut warnings);
        let btf_fd = btf.fd.as_ref().map(|f| f.as_fd());
        let mut maps = Vec::with_capacity(spec.maps.len());
        for m in &spec.maps {
            let m = externs.map_spec(m);
            maps.push(
                create_map(&m, opts, btf_fd, &mut warnings)
                    .map_err(|e| btf.map_error(spec, &m, e))?,
            );
        }
        let struct_ops = struct_ops::plan(spec, kernel.as_deref())?;
        let (struct_ops_maps, struct_ops_values) = struct_ops
            .create(btf_fd, &mut warnings)
            .map_err(|e| btf.struct_ops_error(e))?;
        maps.extend(struct_ops_maps);
        let plan = slot_plan(spec, &opts.tails, &opts.replace_maps)?;
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
            if struct_ops.unused(p) {
                continue;
            }
            let member = struct_ops.target(p)?;
            let program = load_program(
                p,
                spec,
                &maps,
                btf_fd,
                kernel.as_deref(),
                opts,
                &externs,
                member,
            )
            .map_err(|e| with_core_failures(e, p, spec, core_plan.as_ref()))
            .map_err(|e| btf.program_error(p, spec, e))?;
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
            struct_ops: struct_ops_values,
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
            m.name().starts_with('.')
                && name.strip_suffix(m.name()).is_some_and(|prefix| {
                    !prefix.is_empty() && self.object_name.starts_with(prefix)
                })
        };
        self.maps
            .iter()
            .find(|m| m.name() == name)
            .or_else(|| {
                self.maps
                    .iter()
                    .find(|m| m.kernel_name() == name || libbpf_form(m))
            })
            .ok_or_else(|| map_not_found(&self.maps, name))
    }
}

pub(super) fn fd_number(fd: BorrowedFd<'_>) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

pub(super) fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).trim_end().to_owned()
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

/// The slots to fill, checked against the spec before anything is loaded.
/// A map given in `replaced` keeps its slots: only `tails` change it.
fn slot_plan(
    spec: &ObjectSpec,
    tails: &[TailSlot],
    replaced: &[MapReplacement],
) -> Result<Vec<PlannedSlot>, LoadError> {
    let mut plan: Vec<(String, u32, Option<SlotTarget>)> = Vec::new();
    for m in &spec.maps {
        if replaced.iter().any(|r| r.name == m.name) {
            continue;
        }
        for s in &m.initial_slots {
            plan.push((m.name.clone(), s.index, Some(s.target.clone())));
        }
    }
    for t in tails {
        let spec_text = format!("{}:{}={}", t.map, t.key, t.program.as_deref().unwrap_or(""));
        let bad = |reason: TailSlotError| LoadError::Tail {
            spec: spec_text.clone(),
            reason,
        };
        let m = spec
            .map(&t.map)
            .ok_or_else(|| bad(TailSlotError::NoMap { map: t.map.clone() }))?;
        if m.map_type != MapType::PROG_ARRAY {
            return Err(bad(TailSlotError::NotProgArray {
                map: m.name.clone(),
                map_type: m.map_type,
            }));
        }
        if t.key >= m.max_entries {
            return Err(bad(TailSlotError::KeyPastEnd {
                map: m.name.clone(),
                key: t.key,
                max_entries: m.max_entries,
            }));
        }
        if let Some(p) = &t.program {
            spec.program(p)
                .ok_or_else(|| bad(TailSlotError::NoProgram { program: p.clone() }))?;
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
