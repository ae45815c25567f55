//! rawbpf's errors. Each variant names what is at fault — the file, section,
//! symbol, map, program or byte offset — so that the message alone tells a
//! user where to look.

use crate::errno::{denied, if_denied, NEEDS_NET_ADMIN};
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

/// What went wrong attaching, detaching or listing.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// Loading the chain failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The network namespace is missing or could not be entered.
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    /// No device of that name.
    #[error("no network device {dev}{}", .netns.as_ref().map_or(String::new(), |n| format!(" in network namespace {n}")))]
    NoDevice {
        /// Device name.
        dev: String,
        /// Namespace.
        netns: Option<String>,
    },
    /// The object has no program the hook runs.
    #[error("the object has no {} program to attach to {}", .hook.program_type(), .hook.describe())]
    NoProgramFor {
        /// The hook.
        hook: crate::attach::Hook,
    },
    /// The chosen entry program is not of the type the hook runs.
    #[error("program {program} is of type {prog_type}{}; {} runs {} programs", crate::attach::Hook::for_program(*prog_type).map_or(String::new(), |h| format!(", which attaches to {}", h.describe())), .hook.describe(), .hook.program_type())]
    WrongProgramType {
        /// Program name.
        program: String,
        /// Its type.
        prog_type: crate::uapi::ProgramType,
        /// The hook asked for.
        hook: crate::attach::Hook,
    },
    /// Something is already attached there.
    #[error("{dev} {direction}: {}", if *.direction == "xdp" { "rawbpf has a chain attached there".to_owned() } else { format!("a filter is already attached at priority {priority}") })]
    AlreadyAttached {
        /// Device.
        dev: String,
        /// Direction.
        direction: &'static str,
        /// Priority.
        priority: u16,
    },
    /// The device runs an XDP program already.
    #[error("{dev}: an XDP program (id {prog_id}, {mode}) is already attached (detach it, or replace it)")]
    XdpBusy {
        /// Device.
        dev: String,
        /// The attached program's id.
        prog_id: u32,
        /// The mode it runs in.
        mode: &'static str,
    },
    /// Nothing to detach.
    #[error("{dev} {direction}: nothing attached{}", .priority.map_or(String::new(), |p| format!(" at priority {p}")))]
    NotAttached {
        /// Device.
        dev: String,
        /// Direction.
        direction: &'static str,
        /// Priority.
        priority: Option<u16>,
    },
    /// A replacement in another mode than the chain it replaces.
    #[error("{dev}: the chain attached there is a {attached} attachment, and a replacement keeps the mode")]
    ModeMismatch {
        /// Device.
        dev: String,
        /// The attached chain's mode.
        attached: &'static str,
    },
    /// A stage swap that cannot be made; nothing was changed.
    #[error("swap {spec}: {reason}; nothing was changed")]
    SwapRefused {
        /// The argument as given.
        spec: String,
        /// Why.
        reason: String,
    },
    /// A netlink request failed.
    #[error("{dev}: {action}: {source}{}", denied(source.errno(), NEEDS_NET_ADMIN))]
    Netlink {
        /// Device.
        dev: String,
        /// What was being done.
        action: &'static str,
        /// The kernel's answer.
        source: crate::tc::NetlinkError,
    },
    /// A system call on the device's behalf failed (a TCX link, the device's
    /// index).
    #[error("{dev}: {action}: {source}{}", if_denied(source, NEEDS_NET_ADMIN))]
    Device {
        /// Device.
        dev: String,
        /// What was being done.
        action: &'static str,
        /// errno.
        source: std::io::Error,
    },
}

pub use crate::load::LoadError;

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

debug_is_display!(Error, AttachError, ParseError);
