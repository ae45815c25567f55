//! What went wrong turning a spec into kernel objects: the live layer's
//! errors. Each names the map, program, pin or extern at fault.

use crate::errno::{if_denied, NEEDS_BPF};
use std::path::PathBuf;

/// What went wrong turning a spec into kernel objects. Messages name the map,
/// program or pin at fault; a verifier rejection carries the verifier's log.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A CO-RE relocation that cannot be applied at all (libbpf refuses
    /// the object too): two kernel candidates disagree, an offset does not
    /// fit the instruction, the object's own data is inconsistent.
    #[error(transparent)]
    Core(#[from] Box<crate::obj::core::CoreError>),
    /// The kernel BTF that CO-RE relocations, externs or attach targets need
    /// cannot be read or parsed.
    /// It names the file (`/sys/kernel/btf/vmlinux`, a module's, or
    /// `--btf FILE`) and carries the I/O or BTF error.
    #[error("kernel BTF {0}")]
    KernelBtf(#[from] crate::kernel_btf::KernelBtfError),
    /// A program's BTF attach target (fentry/fexit/fmod_ret function,
    /// tp_btf tracepoint, LSM hook, iterator, freplace function) cannot be
    /// found or used.
    #[error(transparent)]
    AttachTarget(#[from] crate::kernel_btf::AttachTargetError),
    /// `BPF_MAP_CREATE` failed.
    #[error(
        "map {map}: the kernel refused to create it: {source}{}{}",
        rule.as_ref().map(|r| format!(" ({r})")).unwrap_or_default(),
        if_denied(source, NEEDS_BPF)
    )]
    MapCreate {
        /// Map name.
        map: String,
        /// errno.
        source: std::io::Error,
        /// The kernel rule the map breaks, when rawbpf knows it.
        rule: Option<String>,
    },
    /// Writing an element failed.
    #[error("map {map}: writing {what}: {source}{}", if_denied(source, NEEDS_BPF))]
    MapUpdate {
        /// Map name.
        map: String,
        /// Which element, in words.
        what: String,
        /// errno.
        source: std::io::Error,
    },
    /// Reading a map failed.
    #[error("map {map}: reading it: {source}")]
    MapRead {
        /// Map name.
        map: String,
        /// errno.
        source: std::io::Error,
    },
    /// The verifier rejected a program.
    #[error("program {program}: the verifier rejected it ({source}):\n{log}")]
    Verifier {
        /// Program name.
        program: String,
        /// errno.
        source: std::io::Error,
        /// The verifier's log.
        log: String,
    },
    /// `BPF_PROG_LOAD` failed without a verifier log.
    #[error(
        "program {program}: the kernel refused to load it: {source}{}",
        if_denied(source, NEEDS_BPF)
    )]
    ProgLoad {
        /// Program name.
        program: String,
        /// errno.
        source: std::io::Error,
    },
    /// Something the object needs that this loader cannot do yet.
    #[error("program {program}: {what} is not supported yet")]
    Unsupported {
        /// Program name.
        program: String,
        /// What.
        what: String,
    },
    /// A struct_ops map that cannot be made: its struct or a member does
    /// not fit the kernel's, or a program is claimed by two members.
    #[error("struct_ops map {map} (struct {struct_name}): {reason}")]
    StructOps {
        /// Map name.
        map: String,
        /// The struct it fills.
        struct_name: String,
        /// What is wrong, naming the member at fault.
        reason: String,
    },
    /// Something the whole object needs that this loader cannot do yet.
    #[error("the object has {what}, which rawbpf does not apply yet")]
    ObjectUnsupported {
        /// What.
        what: String,
    },
    /// A spec that does not hold together (a name it uses is missing).
    #[error("{0}")]
    Link(#[from] crate::obj::link::LinkError),
    /// A global variable that cannot be set as asked (unknown, an
    /// extern, or a value that does not fit its type).
    #[error(transparent)]
    Global(#[from] Box<crate::obj::GlobalError>),
    /// A prog-array slot that cannot be set as asked.
    #[error("prog array slot {spec}: {reason}")]
    Tail {
        /// The argument as given (`MAP:KEY=PROGRAM`).
        spec: String,
        /// Why.
        reason: TailSlotError,
    },
    /// Pinning or opening a pin failed.
    #[error("{}: {action}: {source}{}", path.display(), if_denied(source, NEEDS_BPF))]
    Pin {
        /// The bpffs path.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// errno.
        source: std::io::Error,
    },
    /// A map given in [`LoadOptions::replace_maps`](super::LoadOptions)
    /// does not match the object's definition of it.
    #[error("map {map}: the map given for it (id {id}) does not match its definition ({what} is {given} there, {ours} in the object)")]
    ReplacementMismatch {
        /// Map name.
        map: String,
        /// The given map's kernel id.
        id: u32,
        /// What differs: "type", "key size", "value size", "max_entries"
        /// or "flags".
        what: &'static str,
        /// The given map's value.
        given: u32,
        /// The object's.
        ours: u32,
    },
    /// A pinned map exists but does not match the object's definition.
    #[error("map {map}: the map pinned at {} does not match its definition ({what} is {pinned} there, {ours} in the object); remove the pin or pin elsewhere", path.display())]
    PinMismatch {
        /// Map name.
        map: String,
        /// The pin.
        path: PathBuf,
        /// What differs: "type", "key size", "value size", "max_entries"
        /// or "flags".
        what: &'static str,
        /// Its value in the pinned map.
        pinned: u32,
        /// Its value in the object.
        ours: u32,
    },
    /// A test run failed.
    #[error("program {program}: BPF_PROG_TEST_RUN failed: {source}")]
    TestRun {
        /// Program name.
        program: String,
        /// errno.
        source: std::io::Error,
    },
    /// An extern (`__kconfig`, `__ksym`, kfunc) that cannot be resolved
    /// against this kernel: a strong one it lacks, a value of the wrong type,
    /// a local type that does not match the kernel's.
    #[error("extern {name}: {reason}")]
    Extern {
        /// The extern's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// `CONFIG_*` externs need the kernel's config, and none could be read.
    #[error("extern {needed_by} needs the kernel config, which cannot be read: {reason}")]
    KernelConfig {
        /// The first `CONFIG_*` extern that needs it.
        needed_by: String,
        /// What was tried and what failed.
        reason: String,
    },
    /// A test run the kernel refused (or would refuse), with the rule it broke.
    #[error("program {program}: BPF_PROG_TEST_RUN failed: {source} ({rule})")]
    TestRunRule {
        /// Program name.
        program: String,
        /// The rule, in words.
        rule: String,
        /// errno (for a run refused before the call: the kernel's answer to it).
        source: std::io::Error,
    },
    /// The possible CPUs, which size per-CPU values and perf event arrays,
    /// cannot be read.
    #[error("{}: cannot read the possible CPUs, which size per-CPU map values: {source}", path.display())]
    PossibleCpus {
        /// `/sys/devices/system/cpu/possible`.
        path: PathBuf,
        /// Why (a read error, or text that is not a CPU list).
        source: std::io::Error,
    },
    /// Attaching a program to the target it was loaded for failed.
    #[error(
        "program {program}: {command} failed: {source}{}",
        if_denied(source, NEEDS_BPF)
    )]
    ProgramLink {
        /// Program name.
        program: String,
        /// The bpf(2) command (`BPF_RAW_TRACEPOINT_OPEN`, `BPF_LINK_CREATE`).
        command: &'static str,
        /// errno.
        source: std::io::Error,
    },
    /// A name that is not in the object.
    #[error("no {kind} named {name} in the object (it has: {known})")]
    NotFound {
        /// "program" or "map".
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The names it has.
        known: String,
    },
    /// A `__ksym` variable or kfunc that cannot be resolved against this
    /// kernel (the object model's [`crate::obj::ExternError`]).
    #[error(transparent)]
    ExternResolve(#[from] crate::obj::ExternError),
    /// The kernel refused the object's BTF (even sanitized for it), and a
    /// map or program that needs BTF then failed: said first, with the
    /// kernel's BTF log, before the failure itself.
    #[error("the kernel refused the object's BTF ({reason}), which {what} needs:\n{source}")]
    BtfRefused {
        /// The map or program that needed it ("map counters").
        what: String,
        /// errno and the end of the kernel's BTF log.
        reason: String,
        /// The failure itself.
        source: Box<LoadError>,
    },
}

/// Why a prog-array slot cannot be set as asked.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum TailSlotError {
    /// The object has no such map.
    #[error("no map {map} in the object")]
    NoMap {
        /// The map asked for.
        map: String,
    },
    /// The map is not a prog array.
    #[error("map {map} is a {map_type}, not a prog_array")]
    NotProgArray {
        /// The map.
        map: String,
        /// Its type.
        map_type: crate::uapi::MapType,
    },
    /// The key is outside the array.
    #[error("key {key} is past max_entries {max_entries} of {map}")]
    KeyPastEnd {
        /// The map.
        map: String,
        /// The key asked for.
        key: u32,
        /// The array's size.
        max_entries: u32,
    },
    /// The object has no such program.
    #[error("no program {program} in the object")]
    NoProgram {
        /// The program asked for.
        program: String,
    },
}

debug_is_display!(LoadError, TailSlotError);
