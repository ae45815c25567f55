//! The pure half of rawbpf: bytes of a BPF ELF object in, an [`ObjectSpec`]
//! out. Nothing here opens a file descriptor or calls the kernel, so every
//! part of it is testable without privileges.
//!
//! The spec says what the object *declares*: its programs (split per function
//! symbol, typed by their `SEC()` name), its maps (BTF `.maps`, legacy `maps`
//! and global-data sections), the relocations each function needs, the
//! `.text` subprograms each program pulls in, and the BTF that describes it.

pub mod btf;
pub mod btf_ext;
pub mod core;
mod elf;
mod error;
pub mod externs;
pub mod globals;
pub mod link;
mod maps;
mod opcode;
mod programs;
pub mod reach;
mod relocs;
pub mod struct_ops;

pub use externs::{ExternError, ExternKind, ExternSpec, KconfigType};
pub use globals::{GlobalError, GlobalType, GlobalValue, GlobalVar};
pub use programs::{section_def, SectionDef};
pub use struct_ops::{StructOpsMember, StructOpsSpec};

use crate::uapi::{AttachType, Insn, MapType, ProgramType};
use btf::Btf;
use btf_ext::{FuncInfo, LineInfo};
pub use error::{BadExternReason, ParseError};

/// Everything a BPF object declares.
#[derive(Debug, Clone)]
pub struct ObjectSpec {
    /// Programs, in the order their symbols appear in the file.
    pub programs: Vec<ProgramSpec>,
    /// `.text` functions that programs call (bpf-to-bpf) or take the address of.
    pub subprograms: Vec<FunctionSpec>,
    /// Maps: BTF `.maps`, legacy `maps`, then global-data sections.
    pub maps: Vec<MapSpec>,
    /// The `license` section (`"GPL"`, ...); empty if the object has none.
    pub license: String,
    /// The `version` section, if present (only old kprobe loaders need it).
    pub kernel_version: Option<u32>,
    /// The object's `.BTF`, if it has one.
    pub btf: Option<Btf>,
    /// Number of CO-RE relocations in `.BTF.ext` (each function holds its own).
    pub core_relocations: usize,
    /// Extern symbols (`__kconfig`, `__ksym`, kfuncs), in libbpf's order:
    /// kconfig ones first, as laid out in the `.kconfig` map, then by name.
    pub externs: Vec<ExternSpec>,
    /// struct_ops maps (`.struct_ops`, `.struct_ops.link` variables).
    pub struct_ops: Vec<StructOpsSpec>,
}

/// A function's code and the relocations it needs. Programs and `.text`
/// subprograms share this shape.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The function's symbol name.
    pub name: String,
    /// The ELF section it lives in.
    pub section: String,
    /// Its first instruction's index within that section.
    pub section_offset: usize,
    /// Its instructions, as in the file (before relocation).
    pub insns: Vec<Insn>,
    /// Relocations, sorted by instruction index (relative to `insns`).
    pub relocations: Vec<Relocation>,
    /// Whether the symbol is global (`STB_GLOBAL`/`STB_WEAK`) or static.
    pub global: bool,
    /// The BTF `FUNC` type id from `.BTF.ext` func_info, if any.
    pub btf_func_id: Option<u32>,
    /// `.BTF.ext` func_info records inside this function, `insn_off` in
    /// instructions relative to its start (the kernel's unit).
    pub func_info: Vec<FuncInfo>,
    /// `.BTF.ext` line_info records inside this function, likewise.
    pub line_info: Vec<LineInfo>,
    /// `.BTF.ext` CO-RE relocations of this function's instructions.
    pub core_relos: Vec<core::CoreReloSpec>,
}

/// A program: a function in a program section, with the type its section name gives.
#[derive(Debug, Clone)]
pub struct ProgramSpec {
    /// The code, relocations and BTF info of the program's own function.
    pub function: FunctionSpec,
    /// `BPF_PROG_TYPE_*` from the section name.
    pub prog_type: ProgramType,
    /// `expected_attach_type`, when the section name implies one.
    pub attach_type: Option<AttachType>,
    /// Program flags the section implies (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`).
    pub prog_flags: u32,
    /// What follows the section's prefix (`kprobe/do_sys_open` → `do_sys_open`), if anything.
    pub attach_target: Option<String>,
    /// The `.text` subprograms this program needs, transitively, in the order
    /// they are first reached (the loader appends them in this order).
    pub subprograms: Vec<String>,
}

impl ProgramSpec {
    /// The program's (function's) name.
    pub fn name(&self) -> &str {
        &self.function.name
    }

    /// The ELF section the program lives in.
    pub fn section(&self) -> &str {
        &self.function.section
    }

    /// Its own function, then the `.text` subprograms it reaches.
    pub fn functions<'a>(
        &'a self,
        spec: &'a ObjectSpec,
    ) -> impl Iterator<Item = &'a FunctionSpec> + 'a {
        std::iter::once(&self.function).chain(
            self.subprograms
                .iter()
                .filter_map(move |name| spec.subprogram(name)),
        )
    }
}

/// Where an instruction must be patched before loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relocation {
    /// Index of the patched instruction within its function.
    pub insn: usize,
    /// The ELF symbol the relocation names.
    pub symbol: String,
    /// What the instruction refers to.
    pub target: RelocTarget,
}

/// What a relocated instruction refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelocTarget {
    /// `ld_imm64` of a map: becomes `BPF_PSEUDO_MAP_FD` with the map's fd.
    Map {
        /// The map's name in [`ObjectSpec::maps`].
        map: String,
    },
    /// `ld_imm64` of an address in global data: becomes `BPF_PSEUDO_MAP_VALUE`
    /// with the data map's fd and this offset into its value.
    MapValue {
        /// The data map's name (its section name: `.bss`, `.data`, `.rodata`, ...).
        map: String,
        /// Byte offset into the section.
        offset: u32,
    },
    /// A `__ksym` variable or a kfunc ([`ObjectSpec::externs`]): an
    /// `ld_imm64` of its address or BTF id, or a `call` of a kfunc, filled in
    /// once the kernel's BTF (or `/proc/kallsyms`) says what it is. A
    /// `__kconfig` extern is a [`RelocTarget::MapValue`] into `.kconfig`.
    Extern {
        /// The extern's name in [`ObjectSpec::externs`].
        name: String,
    },
    /// A bpf-to-bpf `call` of a `.text` subprogram.
    Call {
        /// The callee's name in [`ObjectSpec::subprograms`].
        function: String,
    },
    /// `ld_imm64` of a `.text` subprogram's address (a callback, `BPF_PSEUDO_FUNC`).
    FuncAddr {
        /// The function's name in [`ObjectSpec::subprograms`].
        function: String,
    },
}

/// Where a map's definition comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapOrigin {
    /// A BTF-defined map in `.maps`.
    Btf,
    /// A `struct bpf_map_def` in the legacy `maps` section.
    Legacy,
    /// A global-data section (`.data*`, `.rodata*`, `.bss*`) as a one-element array.
    GlobalData,
}

/// How a map is pinned (`__uint(pinning, LIBBPF_PIN_BY_NAME)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pinning {
    /// Not pinned by the object's request.
    #[default]
    None,
    /// Pinned under the pin directory by its name; an existing compatible pin is reused.
    ByName,
}

/// What a `.values` slot refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotTarget {
    /// A program, for a prog array.
    Program(String),
    /// A map, for a map-in-map.
    Map(String),
}

/// One declared initial element of a prog array or map-in-map (`.values = { [i] = &x }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialSlot {
    /// The array index.
    pub index: u32,
    /// What goes in it.
    pub target: SlotTarget,
}

/// A map as the object declares it.
#[derive(Debug, Clone)]
pub struct MapSpec {
    /// The map's name as libbpf names it: its symbol, or the section name for global data.
    pub name: String,
    /// Where the definition comes from.
    pub origin: MapOrigin,
    /// The ELF section holding the definition (or the data).
    pub section: String,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// `max_entries`.
    pub max_entries: u32,
    /// `map_flags`.
    pub flags: u32,
    /// `numa_node` (meaningful with `BPF_F_NUMA_NODE`).
    pub numa_node: u32,
    /// `map_extra` (bloom filter hashes, arena address).
    pub map_extra: u64,
    /// Pinning requested by the object.
    pub pinning: Pinning,
    /// BTF type id of the key (0: none).
    pub btf_key_type_id: u32,
    /// BTF type id of the value (0: none; a `DATASEC` for global data).
    pub btf_value_type_id: u32,
    /// For a map-in-map: the template of its inner maps.
    pub inner: Option<Box<MapSpec>>,
    /// Declared initial slots (`.values`), for prog arrays and map-in-maps.
    pub initial_slots: Vec<InitialSlot>,
    /// Initial bytes of a global-data map's single value (`None` for `.bss`: zeroes).
    pub data: Option<Vec<u8>>,
}

impl MapSpec {
    /// A rule of the kernel's this map breaks, in words, if rawbpf knows
    /// one (`BPF_MAP_CREATE` would fail with a bare `EINVAL`).
    ///
    /// Perf event arrays are not judged: the loader gives them their 4-byte
    /// key and value and a slot per CPU ([`MapSpec::for_kernel`]).
    pub fn kernel_rule_broken(&self) -> Option<String> {
        if matches!(self.map_type, MapType::RINGBUF | MapType::USER_RINGBUF)
            && self.max_entries == 0
        {
            return Some(format!(
                "{} maps need max_entries above 0 (their size in bytes, a power-of-2 multiple of the page size)",
                self.map_type
            ));
        }
        let array_like = matches!(
            self.map_type,
            MapType::ARRAY
                | MapType::PERCPU_ARRAY
                | MapType::PROG_ARRAY
                | MapType::CGROUP_ARRAY
                | MapType::ARRAY_OF_MAPS
                | MapType::DEVMAP
                | MapType::CPUMAP
                | MapType::XSKMAP
        );
        if array_like && self.key_size != 4 {
            return Some(format!(
                "{} maps take a 4-byte key (an index); this one's key is {} bytes",
                self.map_type, self.key_size
            ));
        }
        let sized = array_like
            || matches!(
                self.map_type,
                MapType::HASH
                    | MapType::PERCPU_HASH
                    | MapType::LRU_HASH
                    | MapType::LRU_PERCPU_HASH
                    | MapType::HASH_OF_MAPS
                    | MapType::LPM_TRIE
            );
        if sized && self.max_entries == 0 {
            return Some(format!("{} maps need max_entries above 0", self.map_type));
        }
        // libbpf-tools declare stack maps without sizes and set them from
        // their command line (`bpf_map__set_value_size`) before the load.
        if self.map_type == MapType::STACK_TRACE
            && (self.max_entries == 0 || self.value_size == 0 || !self.value_size.is_multiple_of(8))
        {
            return Some(format!(
                "{} maps need max_entries above 0 and a value size that is a multiple of 8 (the stack depth × 8); this one has {} entries of {} bytes, sizes its object leaves to its own loader",
                self.map_type, self.max_entries, self.value_size
            ));
        }
        None
    }

    /// Whether the kernel should see this map as read-only to programs and frozen
    /// after its initial value is written (`.rodata*` and `.kconfig`, as libbpf does).
    pub fn is_rodata(&self) -> bool {
        self.origin == MapOrigin::GlobalData
            && (self.section.starts_with(".rodata") || self.section == externs::KCONFIG_SECTION)
    }
}

impl ObjectSpec {
    /// Parses a BPF ELF object (little-endian, as clang's `-target bpf`/`bpfel` writes it).
    ///
    /// Errors name the section, symbol or byte offset at fault; the caller adds the file name.
    pub fn parse(data: &[u8]) -> Result<ObjectSpec, ParseError> {
        elf::parse(data)
    }

    /// A program by name.
    pub fn program(&self, name: &str) -> Option<&ProgramSpec> {
        self.programs.iter().find(|p| p.name() == name)
    }

    /// A map by name.
    pub fn map(&self, name: &str) -> Option<&MapSpec> {
        self.maps.iter().find(|m| m.name == name)
    }

    /// A `.text` subprogram by name.
    pub fn subprogram(&self, name: &str) -> Option<&FunctionSpec> {
        self.subprograms.iter().find(|f| f.name == name)
    }

    /// An extern by name.
    pub fn extern_spec(&self, name: &str) -> Option<&ExternSpec> {
        self.externs.iter().find(|e| e.name == name)
    }
}

/// Subprograms by name, for code that looks many up (linking, call-graph
/// walks): the first of a name wins, as [`ObjectSpec::subprogram`] finds it.
pub(crate) fn by_name(
    subprograms: &[FunctionSpec],
) -> std::collections::HashMap<&str, &FunctionSpec> {
    subprograms
        .iter()
        .rev()
        .map(|f| (f.name.as_str(), f))
        .collect()
}
