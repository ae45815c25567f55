//! rawbpf's errors. Each variant names what is at fault — the file, section,
//! symbol, map, program or byte offset — so that the message alone tells a
//! user where to look.

use crate::errno::{if_denied, NEEDS_BPF};
use crate::obj::btf::BtfError;
use crate::obj::btf_ext::BtfExtError;
use std::path::PathBuf;

/// Any rawbpf error.
#[derive(thiserror::Error)]
pub enum Error {
    /// The object file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Loading the object into the kernel failed.
    #[error("{}: {source}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: LoadError,
    },
    /// The object file is malformed or uses something rawbpf does not support.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where in the file.
        source: ParseError,
    },
    /// Attaching, detaching or listing failed.
    #[error(transparent)]
    Attach(#[from] AttachError),
}

/// What went wrong attaching, detaching or listing: the attach layer's
/// error, defined with it.
pub use crate::attach::AttachError;

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
    #[error("kernel BTF {}: {reason}", path.display())]
    KernelBtf {
        /// The file (`/sys/kernel/btf/vmlinux` or `--btf FILE`).
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A program's BTF attach target (fentry/fexit/fmod_ret function,
    /// tp_btf tracepoint, LSM hook, iterator, freplace function) cannot be
    /// found or used.
    #[error("program {program}: {reason}")]
    AttachTarget {
        /// Program name.
        program: String,
        /// What is missing, naming the target.
        reason: String,
    },
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
    /// Something the whole object needs that this loader cannot do yet.
    #[error("the object has {what}, which rawbpf does not apply yet")]
    ObjectUnsupported {
        /// What.
        what: String,
    },
    /// A spec that does not hold together (a name it uses is missing).
    #[error("{0}")]
    Link(#[from] crate::obj::link::LinkError),
    /// A prog-array slot that cannot be set as asked.
    #[error("prog array slot {spec}: {reason}")]
    Tail {
        /// The argument as given.
        spec: String,
        /// Why.
        reason: String,
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
    /// A pinned map exists but does not match the object's definition.
    #[error("map {map}: the map pinned at {} does not match its definition ({reason}); remove the pin or pin elsewhere", path.display())]
    PinMismatch {
        /// Map name.
        map: String,
        /// The pin.
        path: PathBuf,
        /// What differs.
        reason: String,
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
}

/// What is wrong with a BPF ELF object. Messages start lower-case and name the
/// section, symbol or offset at fault; [`Error::Parse`] puts the file name first.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not an ELF file at all.
    #[error("not an ELF file (no \\x7fELF magic at offset 0)")]
    NotElf,
    /// An ELF file of the wrong class.
    #[error("ELF class {0} is not 64-bit: BPF objects are ELF64")]
    NotElf64(u8),
    /// A big-endian object (clang `-target bpfeb`).
    #[error("big-endian ELF (clang -target bpfeb): this host's kernel runs little-endian BPF, rebuild with -target bpf or bpfel")]
    WrongEndian,
    /// An ELF file for another machine.
    #[error("ELF machine {0} is not BPF (EM_BPF = 247): not a BPF object")]
    NotBpf(u16),
    /// Not a relocatable object (`ET_REL`).
    #[error("ELF type {0} is not a relocatable object (ET_REL = 1): pass the .o clang wrote, not a linked file")]
    NotRelocatable(u16),
    /// The file ends before a structure its header points to.
    #[error(
        "truncated file: {what} at bytes {start}..{end} lies outside the file ({file_len} bytes)"
    )]
    Truncated {
        /// What is missing.
        what: &'static str,
        /// Its start.
        start: u64,
        /// Its end.
        end: u64,
        /// File length.
        file_len: usize,
    },
    /// The ELF structure itself is damaged (headers, tables, string offsets).
    #[error("malformed ELF: {0}")]
    Elf(String),
    /// A section's bytes lie (partly) outside the file.
    #[error("section {section}: bytes {offset}..{end} lie outside the file ({file_len} bytes): truncated file or bad section header")]
    SectionOutOfBounds {
        /// Section name.
        section: String,
        /// Start offset in the file.
        offset: u64,
        /// End offset (may exceed the file).
        end: u64,
        /// File length.
        file_len: usize,
    },
    /// Two sections claim the same bytes.
    #[error("sections {first} (bytes {first_start}..{first_end}) and {second} (bytes {second_start}..{second_end}) overlap")]
    SectionsOverlap {
        /// One section.
        first: String,
        /// Its start.
        first_start: u64,
        /// Its end.
        first_end: u64,
        /// The other section.
        second: String,
        /// Its start.
        second_start: u64,
        /// Its end.
        second_end: u64,
    },
    /// A code section whose size is not a whole number of instructions.
    #[error(
        "section {section}: size {size} is not a multiple of 8 (BPF instructions are 8 bytes)"
    )]
    BadCodeSize {
        /// Section name.
        section: String,
        /// Its size.
        size: u64,
    },
    /// Code in a section whose name gives no program type.
    #[error("section {section} (program {program}): unknown section name, no program type for it (known: tc, classifier, xdp, socket, kprobe/..., tracepoint/..., cgroup_skb/ingress, ... as in libbpf's SEC() table)")]
    UnknownSection {
        /// Section name.
        section: String,
        /// The first program in it.
        program: String,
    },
    /// A code section without function symbols to split it into programs.
    #[error("section {section}: holds {size} bytes of code but no function symbol, so no program can be named")]
    NoFunctionSymbols {
        /// Section name.
        section: String,
        /// Code size.
        size: u64,
    },
    /// A function symbol of size 0.
    #[error("{what} {symbol} in section {section} has no instructions (symbol size 0)")]
    EmptyProgram {
        /// "program" or "function" (a `.text` subprogram).
        what: &'static str,
        /// Section name.
        section: String,
        /// Symbol name.
        symbol: String,
    },
    /// A function symbol whose range is not inside its section, or not instruction-aligned.
    #[error("function {symbol}: bytes {start}..{end} are not whole instructions inside section {section} ({size} bytes)")]
    FunctionOutOfSection {
        /// Section name.
        section: String,
        /// Symbol name.
        symbol: String,
        /// Start offset in the section.
        start: u64,
        /// End offset in the section.
        end: u64,
        /// Section size.
        size: u64,
    },
    /// Two function symbols claim the same instructions.
    #[error("section {section}: functions {first} and {second} overlap")]
    FunctionsOverlap {
        /// Section name.
        section: String,
        /// One function.
        first: String,
        /// The other.
        second: String,
    },
    /// A static function in a program section (libbpf refuses these too).
    #[error("section {section}: program {symbol} is static; programs must be global functions (static helpers belong in .text)")]
    StaticProgram {
        /// Section name.
        section: String,
        /// Symbol name.
        symbol: String,
    },
    /// The `license` section is not a NUL-terminated string.
    #[error("section license: not a NUL-terminated UTF-8 string")]
    BadLicense,
    /// The `version` section is not one u32.
    #[error("section version: {0} bytes, expected 4 (a u32 kernel version)")]
    BadVersion(u64),
    /// `.BTF` is malformed.
    #[error("section .BTF: {0}")]
    Btf(#[source] BtfError),
    /// `.BTF.ext` is malformed.
    #[error("section .BTF.ext: {0}")]
    BtfExt(#[source] BtfExtError),
    /// `.maps` without the BTF that describes it.
    #[error("section .maps: BTF-defined maps need the object's .BTF section (compile with clang -g), and there is none")]
    MapsNeedBtf,
    /// A BTF map definition is not what libbpf's macros produce.
    #[error("map {map}: {reason}")]
    BadMapDefinition {
        /// Map name.
        map: String,
        /// What is wrong.
        reason: String,
    },
    /// A map definition that does not say which type of map it is.
    #[error("map {map} (section {section}): definition has no type (add __uint(type, BPF_MAP_TYPE_...))")]
    MapWithoutType {
        /// Map name.
        map: String,
        /// Section name.
        section: String,
    },
    /// The legacy `maps` section does not divide evenly into definitions.
    #[error("section maps: {size} bytes do not divide into {count} map definitions of equal size")]
    BadLegacyMapsSection {
        /// Section size.
        size: u64,
        /// Number of map symbols.
        count: usize,
    },
    /// A relocation entry of a type rawbpf does not apply.
    #[error(
        "section {section}: relocation at offset {offset} has type {r_type}, expected {expected}"
    )]
    UnknownRelocationType {
        /// The type(s) that fit there.
        expected: &'static str,
        /// Relocated section.
        section: String,
        /// Byte offset in it.
        offset: u64,
        /// `r_type`.
        r_type: u32,
    },
    /// A relocation whose symbol index is not in the symbol table.
    #[error("section {section}: relocation at offset {offset} names symbol #{index}, which is not in the symbol table ({count} symbols)")]
    UnknownRelocationSymbol {
        /// Relocated section.
        section: String,
        /// Byte offset in it.
        offset: u64,
        /// Symbol index.
        index: u32,
        /// Symbols in the table.
        count: usize,
    },
    /// A relocation that cannot be applied where it points.
    #[error("section {section}: relocation at offset {offset} (symbol {symbol}): {reason}")]
    BadRelocation {
        /// Relocated section.
        section: String,
        /// Byte offset in it.
        offset: u64,
        /// Symbol name.
        symbol: String,
        /// What is wrong.
        reason: String,
    },
    /// A `.BTF.ext` CO-RE relocation record that cannot mean anything: an
    /// unknown kind, an access string that does not walk the local type.
    #[error("section {section}: CO-RE relocation at instruction {insn}: {reason}")]
    CoreRelo {
        /// ELF section.
        section: String,
        /// Instruction index in the section.
        insn: usize,
        /// What is wrong.
        reason: String,
    },
    /// An extern symbol (`__kconfig`, `__ksym`, a kfunc) the object declares
    /// in a way rawbpf (and libbpf) cannot resolve: no BTF for it, an unknown
    /// section, a type a kconfig value cannot have.
    #[error("extern {name}: {reason}")]
    BadExtern {
        /// The extern's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A bpf-to-bpf call that lands somewhere other than the start of a `.text` function.
    #[error("function {function}: call at instruction {insn} targets {target}")]
    BadCall {
        /// Calling function.
        function: String,
        /// Instruction index in the caller.
        insn: usize,
        /// Where it leads, in words.
        target: String,
    },
}

impl From<BtfError> for ParseError {
    fn from(e: BtfError) -> Self {
        ParseError::Btf(e)
    }
}

impl From<BtfExtError> for ParseError {
    fn from(e: BtfExtError) -> Self {
        ParseError::BtfExt(e)
    }
}

impl From<object::Error> for ParseError {
    fn from(e: object::Error) -> Self {
        ParseError::Elf(e.to_string())
    }
}

debug_is_display!(Error, LoadError, ParseError);
