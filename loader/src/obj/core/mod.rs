//! CO-RE ("compile once, run everywhere") relocations: the object's own BTF
//! says which type and member an instruction meant (`.BTF.ext` core_relo
//! records); the running kernel's BTF says where that member is today. This
//! module computes each fix as plain data (pure: a [`TargetTypes`] in,
//! fixups out) and applies them to the spec's instructions afterwards, as
//! libbpf's `relo_core.c` does (the reference semantics) and cilium/ebpf's
//! `CORERelocate` does (fixups as data).
//!
//! - [`validate`] checks a record's local side when the object is parsed;
//!   [`describe`] puts it in words.
//! - [`wanted_names`] lists the root names a lazily indexed kernel BTF must
//!   index; [`plan`] computes every relocation against a [`TargetTypes`]
//!   into a [`CorePlan`], whose failures are data (poisoned instructions,
//!   refusals); [`CorePlan::apply`] patches the spec's instructions;
//!   [`relocate`] does both on a copy.
//! - [`reachable_poison`] tells whether a verifier would reach a poisoned
//!   instruction, so `check` can say whether a program still loads.

//!
//! The computation follows `relo_core.c`'s parts: `spec` parses access
//! strings, `candidates` finds and matches the target's types, `calc`
//! computes values, `patch` writes (or poisons) instructions; `types` reads
//! either side's BTF. The reachability pass is [`super::reach`].

mod calc;
mod candidates;
mod patch;
mod spec;
mod types;

pub use super::reach::reachable_poison;

use super::btf::{Btf, BtfError, BtfType};
use super::{FunctionSpec, ObjectSpec};
use crate::uapi::Insn;
use calc::{calc_relo, ComputedRelo};
use candidates::{find_candidates, spec_match, type_match};
use patch::{outcome_for_insn, poison, write_fixup};
use spec::{parse_spec, AccessSpec};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use types::{kind_label, CoreBtf};

/// `enum bpf_core_relo_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum CoreReloKind {
    FieldByteOffset = 0,
    FieldByteSize = 1,
    FieldExists = 2,
    FieldSigned = 3,
    FieldLshiftU64 = 4,
    FieldRshiftU64 = 5,
    TypeIdLocal = 6,
    TypeIdTarget = 7,
    TypeExists = 8,
    TypeSize = 9,
    EnumvalExists = 10,
    EnumvalValue = 11,
    TypeMatches = 12,
}

impl CoreReloKind {
    /// The kind a `bpf_core_relo.kind` number stands for.
    pub fn from_u32(v: u32) -> Option<CoreReloKind> {
        use CoreReloKind::*;
        Some(match v {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// libbpf's name for the kind (`byte_off`, `field_exists`, ...).
    pub fn name(self) -> &'static str {
        use CoreReloKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLshiftU64 => "lshift_u64",
            FieldRshiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
        }
    }
}

/// One CO-RE relocation of a function, as the object declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreReloSpec {
    /// Index of the instruction to fix, relative to the function.
    pub insn: usize,
    /// The root type in the object's BTF.
    pub type_id: u32,
    /// The access string: `0:1:2` (field), `0` (type) or an enumerator index.
    pub access: String,
    /// What to compute.
    pub kind: CoreReloKind,
}

/// Where relocations find the types they are matched against: the running
/// kernel's BTF (vmlinux and module split BTF, read lazily) or any parsed
/// [`Btf`] (a `--btf FILE`, or a test's hand-built BTF).
pub trait TargetTypes {
    /// A type by id.
    fn type_by_id(&self, id: u32) -> Result<Cow<'_, BtfType>, BtfError>;
    /// The string at a name offset.
    fn string(&self, offset: u32) -> Result<Cow<'_, str>, BtfError>;
    /// Ids of every type whose name, less any `___flavor` suffix, is `name`
    /// (the candidates of libbpf's `bpf_core_find_cands`), in id order. A
    /// lazily indexed source only answers for names it was asked to index.
    fn ids_by_essential_name(&self, name: &str) -> Result<Vec<u32>, BtfError>;
    /// The id the kernel knows a type by (module BTF ids may be renumbered
    /// by a source that merges several BTFs).
    fn kernel_id(&self, id: u32) -> u32 {
        id
    }
    /// The kernel module whose BTF holds the type, `None` for vmlinux (or a
    /// single BTF file).
    fn module(&self, _id: u32) -> Option<&str> {
        None
    }
}

/// A name without its `___flavor` suffix (`task_struct___old` →
/// `task_struct`); libbpf's `bpf_core_essential_name_len`.
pub fn essential_name(name: &str) -> &str {
    // The last "X___Y" where neither X nor Y is '_' ends the essential name after X.
    let b = name.as_bytes();
    for i in (0..b.len().saturating_sub(4)).rev() {
        if b[i] != b'_' && &b[i + 1..i + 4] == b"___" && b[i + 4] != b'_' {
            return &name[..i + 1];
        }
    }
    name
}

impl TargetTypes for Btf {
    fn type_by_id(&self, id: u32) -> Result<Cow<'_, BtfType>, BtfError> {
        Btf::type_by_id(self, id).map(Cow::Borrowed)
    }

    fn string(&self, offset: u32) -> Result<Cow<'_, str>, BtfError> {
        Btf::string(self, offset).map(Cow::Borrowed)
    }

    fn ids_by_essential_name(&self, name: &str) -> Result<Vec<u32>, BtfError> {
        let mut out = Vec::new();
        for (id, t) in self.types() {
            if id != 0 && t.name_off != 0 && essential_name(Btf::string(self, t.name_off)?) == name
            {
                out.push(id);
            }
        }
        Ok(out)
    }
}

impl CoreReloKind {
    /// A field relocation (`byte_off` .. `rshift_u64`): the access string
    /// walks members and array elements.
    pub fn is_field(self) -> bool {
        (self as u32) <= CoreReloKind::FieldRshiftU64 as u32
    }

    /// A type relocation (type ids, `type_exists`, `type_size`,
    /// `type_matches`): the access string is `"0"`.
    pub fn is_type(self) -> bool {
        use CoreReloKind::*;
        matches!(
            self,
            TypeIdLocal | TypeIdTarget | TypeExists | TypeSize | TypeMatches
        )
    }

    /// An enumerator relocation: the access string is the enumerator's index.
    pub fn is_enumval(self) -> bool {
        matches!(
            self,
            CoreReloKind::EnumvalExists | CoreReloKind::EnumvalValue
        )
    }
}

/// libbpf's `BPF_CORE_SPEC_MAX_LEN`: how many indices an access string may
/// have, and how deep a target's nesting a match may walk.
const MAX_SPEC_LEN: usize = 64;
/// How many modifiers or nested types a walk follows (libbpf: 32).
const MAX_DEPTH: usize = 32;
/// The helper a poisoned instruction calls: `0xbad2310` ("bad relo"), as
/// libbpf writes it; the verifier says "invalid func unknown#195896080" if,
/// and only if, it is reachable.
pub const POISON_HELPER: i32 = 0xbad_2310;
const BTF_INT_SIGNED: u8 = 1;

/// Why one relocation of a function cannot be computed or applied: the
/// object's own data is inconsistent, the target's types cannot be read, or
/// (when applying) the plan says libbpf would refuse the relocation.
#[derive(Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoreError {
    /// The object's BTF, access string or instruction does not agree with
    /// the relocation.
    #[error(
        "function {function}: CO-RE relocation at instruction {insn} ({relocation}): {reason}"
    )]
    Invalid {
        /// The function (program or `.text` subprogram).
        function: String,
        /// Instruction index in the function.
        insn: usize,
        /// The relocation: kind and access (`byte_off struct foo::bar (0:1)`).
        relocation: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading the target's types failed.
    #[error("function {function}: CO-RE relocation at instruction {insn} ({relocation}): reading the kernel's BTF: {source}")]
    Target {
        /// The function.
        function: String,
        /// Instruction index in the function.
        insn: usize,
        /// The relocation.
        relocation: String,
        /// The BTF error.
        #[source]
        source: BtfError,
    },
    /// A relocation libbpf would refuse (ambiguous candidates, an offset
    /// that does not fit the instruction, ...): the object cannot load.
    #[error("function {function}: CO-RE relocation at instruction {insn} ({relocation}) cannot be resolved: {reason}")]
    Unresolved {
        /// The function.
        function: String,
        /// Instruction index in the function.
        insn: usize,
        /// The relocation.
        relocation: String,
        /// Why.
        reason: String,
    },
}

/// What went wrong inside the computation, by whose fault.
#[derive(Debug)]
enum Problem {
    /// The object's own BTF or access string is inconsistent.
    Local(String),
    /// Reading the target's types failed.
    Target(BtfError),
    /// The relocation cannot be resolved against this target; libbpf
    /// refuses the object.
    Fatal(String),
}

impl Problem {
    fn text(self) -> String {
        match self {
            Problem::Local(s) | Problem::Fatal(s) => s,
            Problem::Target(e) => e.to_string(),
        }
    }
}

/// A step of the computation: a value, or a [`Problem`] blamed on one side.
type CoreResult<T> = Result<T, Problem>;

/// Checks that a relocation's local side makes sense: the access string
/// parses and walks the object's BTF from the root type (member and element
/// indices in range, an enum for enumerator kinds, `"0"` for type kinds),
/// and the local value can be computed (no `signed` of an array element, no
/// bitfield wider than a 64-bit load). The error is the reason, in words.
pub fn validate(local: &Btf, relo: &CoreReloSpec) -> Result<(), String> {
    let l = CoreBtf::local(local);
    let spec = parse_spec(l, relo).map_err(Problem::text)?;
    calc_relo(l, CoreBtf::target(local), relo.kind, &spec, None).map_err(Problem::text)?;
    Ok(())
}

/// A candidate that matches after `first` did must give the same offset
/// and value, or the relocation is ambiguous (libbpf refuses it).
fn check_same_result(
    t: CoreBtf<'_>,
    first: &(u32, AccessSpec, ComputedRelo),
    (cand, tspec, calc): (u32, &AccessSpec, &ComputedRelo),
) -> CoreResult<()> {
    let (first, fspec, fcalc) = first;
    let both = || {
        format!(
            "{} [{first}] and {} [{cand}]",
            t.label(*first),
            t.label(cand)
        )
    };
    if tspec.bit_offset != fspec.bit_offset {
        return Err(Problem::Fatal(format!(
            "ambiguous: candidates {} give different offsets (bit {} vs {})",
            both(),
            fspec.bit_offset,
            tspec.bit_offset
        )));
    }
    if calc.poison != fcalc.poison || calc.new != fcalc.new {
        return Err(Problem::Fatal(format!(
            "ambiguous: candidates {} give different values ({} vs {})",
            both(),
            fcalc.new,
            calc.new
        )));
    }
    Ok(())
}

/// The relocation in words, from the object's BTF: `struct task_struct::pid
/// (0:17)`, `enum bpf_prog_type::BPF_PROG_TYPE_NETFILTER (31)`, `struct foo
/// (0)`. Never fails: a relocation that does not walk is shown by its root
/// type and access string.
pub fn describe(local: &Btf, relo: &CoreReloSpec) -> String {
    let l = CoreBtf::local(local);
    match parse_spec(l, relo) {
        Ok(spec) => format!("{} ({})", spec.path(l), relo.access),
        Err(_) => format!("{} ({})", l.label(relo.type_id), relo.access),
    }
}

/// Essential names (flavor suffix dropped) of the root types the object's
/// relocations look up in the target: what a lazily indexed kernel BTF must
/// index. `local_type_id` relocations need none; anonymous roots have none.
pub fn wanted_names(spec: &ObjectSpec) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(btf) = &spec.btf else { return out };
    for (_, f) in functions(spec) {
        for r in &f.core_relos {
            if r.kind == CoreReloKind::TypeIdLocal {
                continue;
            }
            if let Ok(name) = btf.type_name(r.type_id) {
                if !name.is_empty() {
                    out.insert(essential_name(name).to_owned());
                }
            }
        }
    }
    out
}

/// The kernel type a relocation resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetType {
    /// Its id in the [`TargetTypes`] the plan was made against.
    pub id: u32,
    /// The id the kernel knows it by.
    pub kernel_id: u32,
    /// The module whose BTF holds it (`None`: vmlinux).
    pub module: Option<String>,
}

/// A load or store whose access size changes with the field's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemSize {
    /// Bytes the instruction accesses now (the object's field size).
    pub from: u32,
    /// Bytes it will access (the kernel's field size).
    pub to: u32,
}

/// A relocation's values: what the compiler wrote, what goes in its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixupValues {
    /// The value computed from the object's own BTF: what the instruction
    /// holds (its immediate, offset or 64-bit immediate).
    pub local: u64,
    /// The value for the target: what the instruction will hold.
    pub target: u64,
    /// Whether the instruction must hold `local` before patching (libbpf
    /// skips the check for bitfield offsets and sizes, and type ids).
    pub validate: bool,
    /// For `byte_off` on a load or store: the access size change, when the
    /// kernel's field is another size (pointers and unsigned integers only).
    pub mem_size: Option<MemSize>,
    /// The kernel type the relocation matched (`None`: none did, and the
    /// value is the "missing" one: 0 for the `*_exists` kinds and the type
    /// kinds; also `None` for `local_type_id`).
    pub target_type: Option<TargetType>,
}

/// Why a relocation has no value for the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreFailure {
    /// In words: "no candidate: struct foo has no member bar in the kernel",
    /// "ambiguous: candidates ... give different offsets".
    pub reason: String,
    /// `true`: the instruction is poisoned (a call of helper
    /// [`POISON_HELPER`]) and the program loads if the verifier never reaches
    /// it; `false`: libbpf refuses the whole object (ambiguity, an offset
    /// that does not fit), and so does [`CorePlan::apply`].
    pub poisoned: bool,
}

/// Where a function is in the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum FuncRef {
    Program(usize),
    Subprogram(usize),
}

/// One relocation computed against a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreFixup {
    /// The function (program or `.text` subprogram) holding the instruction.
    pub function: String,
    /// Instruction index in the function.
    pub insn: usize,
    /// What the relocation computes.
    pub kind: CoreReloKind,
    /// The relocation in words ([`describe`]).
    pub description: String,
    /// The values, or why there are none.
    pub outcome: Result<FixupValues, CoreFailure>,
    at: FuncRef,
}

impl CoreFixup {
    /// "byte_off struct foo::bar (0:1)": kind and description.
    pub fn relocation(&self) -> String {
        format!("{} {}", self.kind.name(), self.description)
    }
}

/// Every CO-RE relocation of an object, computed against one target: data
/// to show (`inspect`, `check`) and to apply before loading.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorePlan {
    fixups: Vec<CoreFixup>,
}

impl CorePlan {
    /// Every relocation, function by function, in instruction order.
    pub fn fixups(&self) -> impl Iterator<Item = &CoreFixup> {
        self.fixups.iter()
    }

    /// The relocations without a value (poisoned or refused).
    pub fn failures(&self) -> impl Iterator<Item = &CoreFixup> {
        self.fixups.iter().filter(|f| f.outcome.is_err())
    }

    /// One function's relocations.
    pub fn for_function<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a CoreFixup> {
        self.fixups.iter().filter(move |f| f.function == name)
    }

    /// Instructions of a function that [`CorePlan::apply`] poisons (an
    /// `ld_imm64`'s second half is poisoned with it).
    pub fn poisoned(&self, function: &str) -> Vec<usize> {
        self.for_function(function)
            .filter(|f| matches!(&f.outcome, Err(e) if e.poisoned))
            .map(|f| f.insn)
            .collect()
    }

    /// Number of relocations.
    pub fn len(&self) -> usize {
        self.fixups.len()
    }

    /// Whether the object has no relocations.
    pub fn is_empty(&self) -> bool {
        self.fixups.is_empty()
    }

    /// Patches the instructions of `spec` (the spec the plan was made
    /// from): values where a relocation resolved, libbpf's poison where it
    /// failed. A refused relocation, or an instruction that no longer holds
    /// what the plan expects, is an error and leaves `spec` unchanged.
    /// Apply a plan once: afterwards the instructions hold target values.
    pub fn apply(&self, spec: &mut ObjectSpec) -> Result<(), CoreError> {
        let mut patched: HashMap<FuncRef, Vec<Insn>> = HashMap::new();
        for fx in &self.fixups {
            let invalid = |reason: String| CoreError::Invalid {
                function: fx.function.clone(),
                insn: fx.insn,
                relocation: fx.relocation(),
                reason,
            };
            let f = function(spec, fx.at)
                .filter(|f| f.name == fx.function)
                .ok_or_else(|| {
                    invalid(
                        "the object has no such function (a plan made for another object?)".into(),
                    )
                })?;
            let insns = patched.entry(fx.at).or_insert_with(|| f.insns.clone());
            match &fx.outcome {
                Ok(v) => write_fixup(insns, fx.insn, v).map_err(invalid)?,
                Err(e) if e.poisoned => poison(insns, fx.insn).map_err(invalid)?,
                Err(e) => {
                    return Err(CoreError::Unresolved {
                        function: fx.function.clone(),
                        insn: fx.insn,
                        relocation: fx.relocation(),
                        reason: e.reason.clone(),
                    })
                }
            }
        }
        for (at, insns) in patched {
            if let Some(f) = function_mut(spec, at) {
                f.insns = insns;
            }
        }
        Ok(())
    }
}

fn function(spec: &ObjectSpec, at: FuncRef) -> Option<&FunctionSpec> {
    match at {
        FuncRef::Program(i) => spec.programs.get(i).map(|p| &p.function),
        FuncRef::Subprogram(i) => spec.subprograms.get(i),
    }
}

fn function_mut(spec: &mut ObjectSpec, at: FuncRef) -> Option<&mut FunctionSpec> {
    match at {
        FuncRef::Program(i) => spec.programs.get_mut(i).map(|p| &mut p.function),
        FuncRef::Subprogram(i) => spec.subprograms.get_mut(i),
    }
}

/// Every function of the spec in the order libbpf meets their relocations
/// (section by section, by offset): candidates one relocation rules out
/// are not seen by the next relocation of the same root type.
fn functions(spec: &ObjectSpec) -> Vec<(FuncRef, &FunctionSpec)> {
    let mut all: Vec<(FuncRef, &FunctionSpec)> = spec
        .programs
        .iter()
        .enumerate()
        .map(|(i, p)| (FuncRef::Program(i), &p.function))
        .chain(
            spec.subprograms
                .iter()
                .enumerate()
                .map(|(i, f)| (FuncRef::Subprogram(i), f)),
        )
        .collect();
    let mut sections: Vec<&str> = Vec::new();
    for (_, f) in &all {
        if !sections.contains(&f.section.as_str()) {
            sections.push(&f.section);
        }
    }
    all.sort_by_key(|(_, f)| {
        let s = sections.iter().position(|s| *s == f.section).unwrap_or(0);
        (s, f.section_offset)
    });
    all
}

/// Computes every CO-RE relocation of every function (programs and `.text`
/// subprograms) against `target`, as libbpf's `bpf_core_calc_relo_insn`
/// does. A relocation that fails against this target is data in the plan
/// ([`CoreFixup::outcome`]); the error is for relocations the object's own
/// data contradicts (a bad access string, an instruction that does not hold
/// the compiler's value) and for a target that cannot be read.
pub fn plan(spec: &ObjectSpec, target: &dyn TargetTypes) -> Result<CorePlan, CoreError> {
    let mut out = CorePlan::default();
    let funcs = functions(spec);
    let t = CoreBtf::target(target);
    let mut cache: HashMap<u32, Vec<u32>> = HashMap::new();
    for (at, f) in funcs {
        for relo in &f.core_relos {
            let Some(local) = &spec.btf else {
                return Err(CoreError::Invalid {
                    function: f.name.clone(),
                    insn: relo.insn,
                    relocation: format!(
                        "{} type {} ({})",
                        relo.kind.name(),
                        relo.type_id,
                        relo.access
                    ),
                    reason: "the object has CO-RE relocations but no .BTF".into(),
                });
            };
            let l = CoreBtf::local(local);
            let description = describe(local, relo);
            let relocation = format!("{} {}", relo.kind.name(), description);
            let outcome = match plan_one(l, t, f, relo, &mut cache) {
                Ok(o) => o,
                Err(Problem::Fatal(reason)) => Err(CoreFailure {
                    reason,
                    poisoned: false,
                }),
                Err(Problem::Local(reason)) => {
                    return Err(CoreError::Invalid {
                        function: f.name.clone(),
                        insn: relo.insn,
                        relocation,
                        reason,
                    })
                }
                Err(Problem::Target(source)) => {
                    return Err(CoreError::Target {
                        function: f.name.clone(),
                        insn: relo.insn,
                        relocation,
                        source,
                    })
                }
            };
            out.fixups.push(CoreFixup {
                function: f.name.clone(),
                insn: relo.insn,
                kind: relo.kind,
                description,
                outcome,
                at,
            });
        }
    }
    Ok(out)
}

/// A copy of `spec` with every CO-RE relocation computed against `target`
/// and applied ([`plan`], then [`CorePlan::apply`]): the instructions a
/// load would give the kernel, so `check` can see what the verifier sees
/// (existence guards and sizes as constants, poisoned instructions).
pub fn relocate(
    spec: &ObjectSpec,
    target: &dyn TargetTypes,
) -> Result<(ObjectSpec, CorePlan), CoreError> {
    let plan = plan(spec, target)?;
    let mut copy = spec.clone();
    plan.apply(&mut copy)?;
    Ok((copy, plan))
}

/// A relocation's values, or why it has none.
type Outcome = Result<FixupValues, CoreFailure>;

/// One relocation against the target, as libbpf's
/// `bpf_core_calc_relo_insn`: every candidate of the root type is matched;
/// those that match must agree (offset and value), and later relocations
/// of the same root see only them (`cache`).
fn plan_one(
    l: CoreBtf<'_>,
    t: CoreBtf<'_>,
    f: &FunctionSpec,
    relo: &CoreReloSpec,
    cache: &mut HashMap<u32, Vec<u32>>,
) -> CoreResult<Outcome> {
    let lspec = parse_spec(l, relo)?;
    if relo.kind == CoreReloKind::TypeIdLocal {
        let calc = calc_relo(l, t, relo.kind, &lspec, None)?;
        return outcome_for_insn(t, f, relo, &calc, None, String::new);
    }
    let root = l.ty(relo.type_id)?;
    let name = l.name(root.name_off)?;
    if name.is_empty() {
        return Err(Problem::Local(format!(
            "a {} relocation of an anonymous type cannot be matched by name (libbpf allows only local_type_id)",
            relo.kind.name()
        )));
    }
    let cands = match cache.get(&relo.type_id) {
        Some(c) => c.clone(),
        None => {
            let c = find_candidates(l, t, relo.type_id)?;
            cache.insert(relo.type_id, c.clone());
            c
        }
    };
    let mut chosen: Option<(u32, AccessSpec, ComputedRelo)> = None;
    let mut kept = Vec::new();
    let mut why_not: Vec<String> = Vec::new();
    for &cand in &cands {
        let matched = if relo.kind.is_type() {
            type_match(l, relo.kind, relo.type_id, t, cand)?
        } else {
            spec_match(l, relo.kind, &lspec, t, cand)?
        };
        let tspec = match matched {
            Ok(s) => s,
            Err(why) => {
                if !why_not.contains(&why) {
                    why_not.push(why);
                }
                continue;
            }
        };
        let calc = calc_relo(l, t, relo.kind, &lspec, Some(&tspec))?;
        if let Some(first) = &chosen {
            check_same_result(t, first, (cand, &tspec, &calc))?;
        } else {
            chosen = Some((cand, tspec, calc));
        }
        kept.push(cand);
    }
    match chosen {
        Some((cand, _, calc)) => {
            // Later relocations of this root see only the candidates that matched.
            cache.insert(relo.type_id, kept);
            outcome_for_insn(t, f, relo, &calc, Some(cand), String::new)
        }
        None => {
            let calc = calc_relo(l, t, relo.kind, &lspec, None)?;
            let missing = || {
                if cands.is_empty() {
                    format!(
                        "no candidate: the kernel has no {}",
                        kind_label(&root, essential_name(&name))
                    )
                } else {
                    format!("no candidate: {}", why_not.join("; "))
                }
            };
            outcome_for_insn(t, f, relo, &calc, None, missing)
        }
    }
}

#[cfg(test)]
mod essential_tests {
    use super::essential_name;

    #[test]
    fn flavors_are_dropped() {
        assert_eq!(essential_name("task_struct___old"), "task_struct");
        assert_eq!(essential_name("task_struct"), "task_struct");
        assert_eq!(essential_name("a___b___c"), "a___b");
        assert_eq!(essential_name("___x"), "___x");
        assert_eq!(essential_name("x____y"), "x____y");
        assert_eq!(essential_name("x___"), "x___");
        assert_eq!(essential_name(""), "");
    }
}

debug_is_display!(CoreError);
