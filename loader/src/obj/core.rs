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
//!   refusals); [`CorePlan::apply`] patches the spec's instructions.
//! - [`reachable_poison`] tells whether a verifier would reach a poisoned
//!   instruction, so `check` can say whether a program still loads.

use super::btf::{Btf, BtfError, BtfKind, BtfMember, BtfType, BtfTypeData};
use super::{FunctionSpec, ObjectSpec};
use crate::uapi::{insn, Insn};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

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

type Res<T> = Result<T, Problem>;

/// One side of a relocation: the object's types (`local`) or the target's.
#[derive(Clone, Copy)]
struct Side<'a> {
    src: &'a dyn TargetTypes,
    local: bool,
}

impl<'a> Side<'a> {
    fn local(btf: &'a Btf) -> Side<'a> {
        Side {
            src: btf,
            local: true,
        }
    }

    fn target(src: &'a dyn TargetTypes) -> Side<'a> {
        Side { src, local: false }
    }

    fn btf_err(self, e: BtfError) -> Problem {
        if self.local {
            Problem::Local(e.to_string())
        } else {
            Problem::Target(e)
        }
    }

    /// Types that make no sense for the relocation: the object's fault on
    /// the local side, a refusal on the target's.
    fn invalid(self, msg: String) -> Problem {
        if self.local {
            Problem::Local(msg)
        } else {
            Problem::Fatal(format!("in the kernel's BTF: {msg}"))
        }
    }

    fn ty(self, id: u32) -> Res<Cow<'a, BtfType>> {
        self.src.type_by_id(id).map_err(|e| self.btf_err(e))
    }

    fn name(self, off: u32) -> Res<Cow<'a, str>> {
        self.src.string(off).map_err(|e| self.btf_err(e))
    }

    /// libbpf's `skip_mods_and_typedefs`.
    fn skip(self, id: u32) -> Res<(u32, Cow<'a, BtfType>)> {
        let mut cur = id;
        for _ in 0..=MAX_DEPTH {
            let t = self.ty(cur)?;
            if !is_mod_or_typedef(t.kind) {
                return Ok((cur, t));
            }
            cur = t.size_or_type;
        }
        Err(self.btf_err(BtfError::Loop { id, max: MAX_DEPTH }))
    }

    /// libbpf's `btf__resolve_size`.
    fn size(self, id: u32) -> Res<u32> {
        use BtfKind::*;
        let overflow = || self.invalid(format!("the size of {} overflows", self.label(id)));
        let mut cur = id;
        let mut nelems: u32 = 1;
        for _ in 0..=MAX_DEPTH {
            let t = self.ty(cur)?;
            let size = match (t.kind, &t.data) {
                (Int | Struct | Union | Enum | Enum64 | Datasec | Float, _) => t.size_or_type,
                (Ptr, _) => 8,
                (Typedef | Volatile | Const | Restrict | Var | DeclTag | TypeTag, _) => {
                    cur = t.size_or_type;
                    continue;
                }
                (
                    Array,
                    BtfTypeData::Array {
                        elem_type,
                        nelems: n,
                        ..
                    },
                ) => {
                    nelems = nelems.checked_mul(*n).ok_or_else(overflow)?;
                    cur = *elem_type;
                    continue;
                }
                _ => return Err(self.invalid(format!("{} has no size", self.label(cur)))),
            };
            return size.checked_mul(nelems).ok_or_else(overflow);
        }
        Err(self.btf_err(BtfError::Loop { id, max: MAX_DEPTH }))
    }

    /// "struct foo", "enum bar", "typedef u32", "int"; never fails.
    fn label(self, id: u32) -> String {
        match self.ty(id) {
            Ok(t) => {
                let name = self.name(t.name_off).unwrap_or(Cow::Borrowed("?"));
                kind_label(&t, &name)
            }
            Err(_) => format!("type {id}"),
        }
    }
}

fn kind_label(t: &BtfType, name: &str) -> String {
    use BtfKind::*;
    let word = match t.kind {
        Struct => "struct",
        Union => "union",
        Enum | Enum64 => "enum",
        Fwd if t.kind_flag => "union",
        Fwd => "struct",
        Typedef => "typedef",
        Void => return "void".into(),
        Int | Float if !name.is_empty() => return name.to_owned(),
        k if name.is_empty() => return k.name().to_ascii_lowercase(),
        k => return format!("{} {name}", k.name().to_ascii_lowercase()),
    };
    if name.is_empty() {
        format!("anonymous {word}")
    } else {
        format!("{word} {name}")
    }
}

fn is_mod_or_typedef(k: BtfKind) -> bool {
    use BtfKind::*;
    matches!(k, Typedef | Volatile | Const | Restrict | TypeTag)
}

fn is_composite(t: &BtfType) -> bool {
    matches!(t.kind, BtfKind::Struct | BtfKind::Union)
}

fn is_any_enum(t: &BtfType) -> bool {
    matches!(t.kind, BtfKind::Enum | BtfKind::Enum64)
}

/// libbpf's `btf_kind_core_compat`: the same kind, or enum and enum64.
fn kind_core_compat(a: &BtfType, b: &BtfType) -> bool {
    a.kind == b.kind || (is_any_enum(a) && is_any_enum(b))
}

fn members(t: &BtfType) -> &[BtfMember] {
    match &t.data {
        BtfTypeData::Members(m) => m,
        _ => &[],
    }
}

fn params(t: &BtfType) -> &[super::btf::BtfParam] {
    match &t.data {
        BtfTypeData::Params(p) => p,
        _ => &[],
    }
}

fn vlen(t: &BtfType) -> usize {
    match &t.data {
        BtfTypeData::Members(v) => v.len(),
        BtfTypeData::Enum(v) => v.len(),
        BtfTypeData::Enum64(v) => v.len(),
        BtfTypeData::Params(v) => v.len(),
        _ => 0,
    }
}

/// An enumerator's name and value; a 32-bit enum's value is sign-extended
/// as libbpf does (`__u64 val = (__s32)e->val`).
fn enumerator(t: &BtfType, idx: usize) -> Option<(u32, u64)> {
    match &t.data {
        BtfTypeData::Enum(v) => v.get(idx).map(|e| (e.name_off, e.val as i64 as u64)),
        BtfTypeData::Enum64(v) => v.get(idx).map(|e| (e.name_off, e.val)),
        _ => None,
    }
}

fn array(t: &BtfType) -> Option<(u32, u32)> {
    match (t.kind, &t.data) {
        (
            BtfKind::Array,
            BtfTypeData::Array {
                elem_type, nelems, ..
            },
        ) => Some((*elem_type, *nelems)),
        _ => None,
    }
}

fn member_bit_offset(t: &BtfType, m: &BtfMember) -> u32 {
    if t.kind_flag {
        m.offset & 0x00ff_ffff
    } else {
        m.offset
    }
}

fn member_bitfield_size(t: &BtfType, m: &BtfMember) -> u32 {
    if t.kind_flag {
        m.offset >> 24
    } else {
        0
    }
}

fn int_encoding(t: &BtfType) -> u8 {
    match t.data {
        BtfTypeData::Int { encoding, .. } => encoding,
        _ => 0,
    }
}

fn int_offset(t: &BtfType) -> u8 {
    match t.data {
        BtfTypeData::Int { offset, .. } => offset,
        _ => 0,
    }
}

/// `idx` elements of `size` bytes, in bits.
fn elem_bits(idx: u32, size: u32) -> u64 {
    // At most 2^31 * 2^32 * 8: saturates rather than wraps; `add_bits` refuses it.
    (u64::from(idx) * u64::from(size)).saturating_mul(8)
}

/// One step of a parsed access that means something: a named member or an
/// array index (libbpf's high-level `bpf_core_accessor`).
#[derive(Clone, Debug, Default)]
struct Accessor {
    /// The struct/union holding the member, or the array's element type
    /// (modifiers skipped); the enum for an enumerator.
    type_id: u32,
    /// Member, element or enumerator index.
    idx: u32,
    /// The member's or enumerator's name; `None` for an array index.
    name: Option<String>,
}

/// An access string walked over one BTF (libbpf's `bpf_core_spec`).
#[derive(Clone, Debug, Default)]
struct Spec {
    /// The root type (as recorded, modifiers not skipped).
    root: u32,
    /// Named members and array indices.
    acc: Vec<Accessor>,
    /// Every index, anonymous members included.
    raw: Vec<u32>,
    /// Offset of the field in bits.
    bit_offset: u64,
}

impl Spec {
    fn add_bits(&mut self, side: Side<'_>, bits: u64) -> Res<()> {
        self.bit_offset = self.bit_offset.saturating_add(bits);
        if self.bit_offset > u64::from(u32::MAX) {
            return Err(side.invalid("the field's bit offset overflows 32 bits".into()));
        }
        Ok(())
    }

    /// "struct foo::a.b[3]", "enum e::X", "struct foo[2]".
    fn path(&self, side: Side<'_>) -> String {
        let mut s = side.label(self.root);
        let mut named = false;
        for (i, a) in self.acc.iter().enumerate() {
            match &a.name {
                Some(n) => {
                    s.push_str(if named { "." } else { "::" });
                    s.push_str(n);
                    named = true;
                }
                None if i > 0 || a.idx > 0 => {
                    let _ = write!(s, "[{}]", a.idx);
                }
                None => {}
            }
        }
        s
    }
}

/// Splits `0:1:2` into indices as libbpf does, but strictly: decimal digits
/// only, each at most `i32::MAX`.
fn parse_access(access: &str) -> Result<Vec<u32>, String> {
    if access.is_empty() {
        return Err("the access string is empty".into());
    }
    let mut out = Vec::new();
    for part in access.split(':') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "access string \"{access}\" is not a list of indices separated by ':'"
            ));
        }
        let v = part
            .parse::<u32>()
            .ok()
            .filter(|&v| v <= i32::MAX as u32)
            .ok_or_else(|| format!("access string \"{access}\": index {part} is too large"))?;
        if out.len() == MAX_SPEC_LEN {
            return Err(format!(
                "access string \"{access}\" has more than {MAX_SPEC_LEN} indices"
            ));
        }
        out.push(v);
    }
    Ok(out)
}

/// libbpf's `is_flex_arr`: a zero-length array that is the last member of
/// the struct the previous accessor named.
fn is_flex_arr(side: Side<'_>, prev: Option<&Accessor>, nelems: u32) -> Res<bool> {
    let Some(prev) = prev else { return Ok(false) };
    if prev.name.is_none() || nelems > 0 {
        return Ok(false);
    }
    let t = side.ty(prev.type_id)?;
    Ok(prev.idx as usize + 1 == vlen(&t))
}

/// libbpf's `bpf_core_parse_spec`: the access string walked over the
/// object's BTF. Every problem is the object's ([`Problem::Local`]).
fn parse_spec(l: Side<'_>, relo: &CoreReloSpec) -> Res<Spec> {
    let bad = Problem::Local;
    l.ty(relo.type_id)?;
    let mut spec = Spec {
        root: relo.type_id,
        ..Spec::default()
    };
    if relo.kind.is_type() {
        if relo.access != "0" {
            return Err(bad(format!(
                "a {} relocation's access string must be \"0\", not \"{}\"",
                relo.kind.name(),
                relo.access
            )));
        }
        return Ok(spec);
    }
    spec.raw = parse_access(&relo.access).map_err(bad)?;
    let (mut id, t) = l.skip(relo.type_id)?;
    let first = spec.raw[0];
    if relo.kind.is_enumval() {
        if !is_any_enum(&t) {
            return Err(bad(format!(
                "an enumerator relocation needs an enum, {} is not one",
                l.label(relo.type_id)
            )));
        }
        if spec.raw.len() > 1 {
            return Err(bad(format!(
                "access string \"{}\": an enumerator relocation takes one index",
                relo.access
            )));
        }
        let (name_off, _) = enumerator(&t, first as usize).ok_or_else(|| {
            bad(format!(
                "index {first} is past the {} enumerators of {}",
                vlen(&t),
                l.label(id)
            ))
        })?;
        spec.acc.push(Accessor {
            type_id: id,
            idx: first,
            name: Some(l.name(name_off)?.into_owned()),
        });
        return Ok(spec);
    }
    spec.acc.push(Accessor {
        type_id: id,
        idx: first,
        name: None,
    });
    let size = l.size(id)?;
    spec.add_bits(l, elem_bits(first, size))?;
    let raw = spec.raw.clone();
    for &idx in &raw[1..] {
        let (tid, t) = l.skip(id)?;
        id = tid;
        if is_composite(&t) {
            let m = *members(&t).get(idx as usize).ok_or_else(|| {
                bad(format!(
                    "access string \"{}\": index {idx} is past the {} members of {}",
                    relo.access,
                    vlen(&t),
                    spec.path(l)
                ))
            })?;
            spec.add_bits(l, u64::from(member_bit_offset(&t, &m)))?;
            if m.name_off != 0 {
                let name = l.name(m.name_off)?;
                if name.is_empty() {
                    return Err(bad(format!(
                        "member {idx} of {} has an empty name",
                        l.label(id)
                    )));
                }
                spec.acc.push(Accessor {
                    type_id: id,
                    idx,
                    name: Some(name.into_owned()),
                });
            }
            id = m.type_id;
        } else if let Some((elem, nelems)) = array(&t) {
            let (eid, _) = l.skip(elem)?;
            if !is_flex_arr(l, spec.acc.last(), nelems)? && idx >= nelems {
                return Err(bad(format!(
                    "access string \"{}\": index {idx} is out of bounds of {} ({nelems} elements)",
                    relo.access,
                    spec.path(l)
                )));
            }
            id = eid;
            spec.acc.push(Accessor {
                type_id: id,
                idx,
                name: None,
            });
            let size = l.size(id)?;
            spec.add_bits(l, elem_bits(idx, size))?;
        } else {
            return Err(bad(format!(
                "access string \"{}\": index {idx} reaches {} ({}), which has no members or elements",
                relo.access,
                spec.path(l),
                l.label(id)
            )));
        }
    }
    Ok(spec)
}

/// What libbpf's `bpf_core_calc_field_relo` computes for one side.
struct FieldValue {
    val: u64,
    /// Size of the loaded/stored unit (an array's element), for byte_off.
    mem_size: u32,
    /// The field's type, for deciding whether a load may change size.
    type_id: u32,
    validate: bool,
}

fn calc_field(side: Side<'_>, kind: CoreReloKind, spec: &Spec) -> Res<FieldValue> {
    use CoreReloKind::*;
    let acc = spec
        .acc
        .last()
        .ok_or_else(|| side.invalid("the access has no steps".into()))?;
    let innermost_elem_size = |id: u32| -> Res<u32> {
        let (mut eid, mut t) = side.skip(id)?;
        for _ in 0..=MAX_DEPTH {
            let Some((elem, _)) = array(&t) else { break };
            (eid, t) = side.skip(elem)?;
        }
        side.size(eid)
    };
    let mut out = FieldValue {
        val: 0,
        mem_size: 0,
        type_id: 0,
        validate: true,
    };
    if acc.name.is_none() {
        // The access ends at an array element (or the root itself).
        match kind {
            FieldByteOffset => {
                out.val = spec.bit_offset / 8;
                out.mem_size = innermost_elem_size(acc.type_id)?;
                out.type_id = acc.type_id;
            }
            FieldByteSize => out.val = u64::from(side.size(acc.type_id)?),
            _ => {
                return Err(side.invalid(format!(
                    "a {} relocation cannot apply to an array element or a whole type (only byte_off and byte_sz can)",
                    kind.name()
                )))
            }
        }
        return Ok(out);
    }
    let t = side.ty(acc.type_id)?;
    let m = *members(&t).get(acc.idx as usize).ok_or_else(|| {
        side.invalid(format!(
            "{} has no member {}",
            side.label(acc.type_id),
            acc.idx
        ))
    })?;
    let (field_type_id, mt) = side.skip(m.type_id)?;
    let bit_off = spec.bit_offset as u32;
    let mut bit_sz = member_bitfield_size(&t, &m);
    let bitfield = bit_sz > 0;
    let (mut byte_off, mut byte_sz);
    if bitfield {
        if !matches!(mt.kind, BtfKind::Int | BtfKind::Enum | BtfKind::Enum64)
            || mt.size_or_type == 0
        {
            return Err(side.invalid(format!(
                "bitfield {} has type {}, which is not an integer",
                spec.path(side),
                side.label(field_type_id)
            )));
        }
        byte_sz = mt.size_or_type;
        byte_off = bit_off / 8 / byte_sz * byte_sz;
        // The smallest power-of-two load that holds the whole bitfield.
        while u64::from(bit_off) + u64::from(bit_sz) - u64::from(byte_off) * 8
            > u64::from(byte_sz) * 8
        {
            if byte_sz >= 8 {
                return Err(side.invalid(format!(
                    "bitfield {} cannot be read with one 64-bit load",
                    spec.path(side)
                )));
            }
            byte_sz *= 2;
            byte_off = bit_off / 8 / byte_sz * byte_sz;
        }
    } else {
        byte_sz = side.size(field_type_id)?;
        byte_off = bit_off / 8;
        bit_sz = byte_sz.wrapping_mul(8);
    }
    // For bitfields the compiler may pick another load than libbpf does, so
    // only the unambiguous values are checked against the instruction.
    out.validate = !bitfield;
    match kind {
        FieldByteOffset => {
            out.val = u64::from(byte_off);
            if !bitfield {
                out.mem_size = innermost_elem_size(field_type_id)?;
                out.type_id = field_type_id;
            }
        }
        FieldByteSize => out.val = u64::from(byte_sz),
        FieldSigned => {
            let signed = (is_any_enum(&mt) && mt.kind_flag)
                || (mt.kind == BtfKind::Int && int_encoding(&mt) & BTF_INT_SIGNED != 0);
            out.val = u64::from(signed);
            out.validate = true;
        }
        FieldLshiftU64 => {
            // Little-endian: the bits above the field go out to the left.
            out.val = u64::from(
                64u32.wrapping_sub(
                    bit_off
                        .wrapping_add(bit_sz)
                        .wrapping_sub(byte_off.wrapping_mul(8)),
                ),
            );
        }
        FieldRshiftU64 => {
            out.val = u64::from(64u32.wrapping_sub(bit_sz));
            out.validate = true;
        }
        _ => return Err(side.invalid(format!("{} is not a field relocation", kind.name()))),
    }
    Ok(out)
}

fn enum_value(side: Side<'_>, spec: &Spec) -> Res<u64> {
    let acc = spec
        .acc
        .first()
        .ok_or_else(|| side.invalid("no enumerator".into()))?;
    let t = side.ty(acc.type_id)?;
    enumerator(&t, acc.idx as usize)
        .map(|(_, v)| v)
        .ok_or_else(|| {
            side.invalid(format!(
                "{} has no enumerator {}",
                side.label(acc.type_id),
                acc.idx
            ))
        })
}

/// libbpf's `bpf_core_relo_res`.
#[derive(Clone, Debug, Default)]
struct Calc {
    orig: u64,
    new: u64,
    poison: bool,
    validate: bool,
    orig_sz: u32,
    new_sz: u32,
    fail_memsz_adjust: bool,
}

/// libbpf's `bpf_core_calc_relo`: the local and target values, given the
/// target's match (`None`: no candidate matched).
fn calc_relo(
    l: Side<'_>,
    t: Side<'_>,
    kind: CoreReloKind,
    lspec: &Spec,
    tspec: Option<&Spec>,
) -> Res<Calc> {
    use CoreReloKind::*;
    let mut c = Calc {
        validate: true,
        ..Calc::default()
    };
    if kind == FieldExists {
        c.orig = 1;
        c.new = u64::from(tspec.is_some());
    } else if kind.is_field() {
        let lv = calc_field(l, kind, lspec)?;
        c.orig = lv.val;
        c.validate = lv.validate;
        c.orig_sz = lv.mem_size;
        let Some(ts) = tspec else {
            c.poison = true;
            return Ok(c);
        };
        let tv = calc_field(t, kind, ts)?;
        c.new = tv.val;
        c.new_sz = tv.mem_size;
        if c.orig_sz != c.new_sz {
            // Only a pointer (a 32-bit kernel's) or an unsigned integer
            // reads the same value at another size.
            let (ot, nt) = (l.ty(lv.type_id)?, t.ty(tv.type_id)?);
            let ptrs = ot.kind == BtfKind::Ptr && nt.kind == BtfKind::Ptr;
            let uints = ot.kind == BtfKind::Int
                && nt.kind == BtfKind::Int
                && int_encoding(&ot) != BTF_INT_SIGNED
                && int_encoding(&nt) != BTF_INT_SIGNED;
            c.fail_memsz_adjust = !(ptrs || uints);
        }
    } else if kind.is_type() {
        c.orig = match kind {
            TypeIdTarget | TypeIdLocal => {
                c.validate = false;
                u64::from(lspec.root)
            }
            TypeSize => u64::from(l.size(lspec.root)?),
            _ => 1,
        };
        // Type relocations give 0 when no candidate matches, type_size and
        // target_type_id included (libbpf).
        c.new = match (kind, tspec) {
            (TypeIdLocal, _) => u64::from(lspec.root),
            (_, None) => 0,
            (TypeIdTarget, Some(ts)) => u64::from(t.src.kernel_id(ts.root)),
            (TypeSize, Some(ts)) => u64::from(t.size(ts.root)?),
            (_, Some(_)) => 1,
        };
    } else {
        c.orig = match kind {
            EnumvalExists => 1,
            _ => enum_value(l, lspec)?,
        };
        match (tspec, kind) {
            (None, EnumvalExists) => c.new = 0,
            (None, _) => c.poison = true,
            (Some(_), EnumvalExists) => c.new = 1,
            (Some(ts), _) => c.new = enum_value(t, ts)?,
        }
    }
    Ok(c)
}

/// libbpf's `bpf_core_fields_are_compat`.
fn fields_are_compat(l: Side<'_>, lid: u32, t: Side<'_>, tid: u32) -> Res<bool> {
    use BtfKind::*;
    let (mut lid, mut tid) = (lid, tid);
    for _ in 0..=MAX_DEPTH {
        let (_, lt) = l.skip(lid)?;
        let (_, tt) = t.skip(tid)?;
        if is_composite(&lt) && is_composite(&tt) {
            return Ok(true);
        }
        if !kind_core_compat(&lt, &tt) {
            return Ok(false);
        }
        match lt.kind {
            Ptr | Float => return Ok(true),
            Fwd | Enum | Enum64 => {
                let (ln, tn) = (l.name(lt.name_off)?, t.name(tt.name_off)?);
                let (le, te) = (essential_name(&ln), essential_name(&tn));
                return Ok(le.is_empty() || te.is_empty() || le == te);
            }
            Int => return Ok(int_offset(&lt) == 0 && int_offset(&tt) == 0),
            Array => match (array(&lt), array(&tt)) {
                (Some((le, _)), Some((te, _))) => (lid, tid) = (le, te),
                _ => return Ok(false),
            },
            _ => return Ok(false),
        }
    }
    Err(Problem::Fatal(format!(
        "arrays nest deeper than {MAX_DEPTH} levels"
    )))
}

/// libbpf's `__bpf_core_types_are_compat`, for type_exists, type_size and
/// target_type_id.
fn types_are_compat(l: Side<'_>, lid: u32, t: Side<'_>, tid: u32, level: u32) -> Res<bool> {
    use BtfKind::*;
    if !kind_core_compat(&*l.ty(lid)?, &*t.ty(tid)?) {
        return Ok(false);
    }
    let (mut lid, mut tid) = (lid, tid);
    for _ in 0..MAX_DEPTH {
        let (_, lt) = l.skip(lid)?;
        let (_, tt) = t.skip(tid)?;
        if !kind_core_compat(&lt, &tt) {
            return Ok(false);
        }
        match lt.kind {
            Void | Struct | Union | Enum | Enum64 | Fwd => return Ok(true),
            Int => return Ok(int_offset(&lt) == 0 && int_offset(&tt) == 0),
            Ptr => (lid, tid) = (lt.size_or_type, tt.size_or_type),
            Array => match (array(&lt), array(&tt)) {
                (Some((le, _)), Some((te, _))) => (lid, tid) = (le, te),
                _ => return Ok(false),
            },
            FuncProto => {
                let (lp, tp) = (params(&lt), params(&tt));
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (a, b) in lp.iter().zip(tp) {
                    if level == 0 {
                        return Err(Problem::Fatal("function types nest too deep".into()));
                    }
                    let (a, _) = l.skip(a.type_id)?;
                    let (b, _) = t.skip(b.type_id)?;
                    if !types_are_compat(l, a, t, b, level - 1)? {
                        return Ok(false);
                    }
                }
                lid = l.skip(lt.size_or_type)?.0;
                tid = t.skip(tt.size_or_type)?.0;
            }
            _ => return Ok(false),
        }
    }
    Err(Problem::Fatal(format!(
        "types nest deeper than {MAX_DEPTH} levels"
    )))
}

/// libbpf's `bpf_core_names_match`.
fn names_match(l: Side<'_>, loff: u32, t: Side<'_>, toff: u32) -> Res<bool> {
    let (ln, tn) = (l.name(loff)?, t.name(toff)?);
    if tn.is_empty() {
        return Ok(ln.is_empty());
    }
    Ok(essential_name(&ln) == essential_name(&tn))
}

/// libbpf's `bpf_core_enums_match`.
fn enums_match(l: Side<'_>, lt: &BtfType, t: Side<'_>, tt: &BtfType) -> Res<bool> {
    if lt.size_or_type != tt.size_or_type || vlen(lt) > vlen(tt) {
        return Ok(false);
    }
    for i in 0..vlen(lt) {
        let (loff, _) = enumerator(lt, i).unwrap_or_default();
        let mut matched = false;
        for j in 0..vlen(tt) {
            let (toff, _) = enumerator(tt, j).unwrap_or_default();
            if names_match(l, loff, t, toff)? {
                matched = true;
                break;
            }
        }
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

/// libbpf's `bpf_core_composites_match`.
fn composites_match(
    l: Side<'_>,
    lt: &BtfType,
    t: Side<'_>,
    tt: &BtfType,
    behind_ptr: bool,
    level: u32,
) -> Res<bool> {
    let (lm, tm) = (members(lt), members(tt));
    if lm.len() > tm.len() {
        return Ok(false);
    }
    for a in lm {
        let mut matched = false;
        for b in tm {
            if !names_match(l, a.name_off, t, b.name_off)? {
                continue;
            }
            if types_match(l, a.type_id, t, b.type_id, behind_ptr, level - 1)? {
                matched = true;
                break;
            }
        }
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

/// libbpf's `__bpf_core_types_match`, for type_matches.
fn types_match(
    l: Side<'_>,
    lid: u32,
    t: Side<'_>,
    tid: u32,
    behind_ptr: bool,
    level: u32,
) -> Res<bool> {
    use BtfKind::*;
    if level == 0 {
        return Err(Problem::Fatal("types nest too deep to match".into()));
    }
    let (mut lid, mut tid, mut behind_ptr) = (lid, tid, behind_ptr);
    for _ in 0..MAX_DEPTH {
        let (_, lt) = l.skip(lid)?;
        let (_, tt) = t.skip(tid)?;
        if !names_match(l, lt.name_off, t, tt.name_off)? {
            return Ok(false);
        }
        let (lk, tk) = (lt.kind, tt.kind);
        match lk {
            Void => return Ok(lk == tk),
            Fwd => {
                let lf = lt.kind_flag;
                return Ok(if behind_ptr && tk != Fwd {
                    // A forward declaration's kind_flag says struct (0) or union (1).
                    (tk == Struct && !lf) || (tk == Union && lf)
                } else {
                    tk == Fwd && lf == tt.kind_flag
                });
            }
            Enum | Enum64 => {
                return if is_any_enum(&tt) {
                    enums_match(l, &lt, t, &tt)
                } else {
                    Ok(false)
                }
            }
            Struct | Union => {
                if behind_ptr {
                    return Ok(lk == tk || (tk == Fwd && (lk == Union) == tt.kind_flag));
                }
                if lk != tk {
                    return Ok(false);
                }
                return composites_match(l, &lt, t, &tt, behind_ptr, level);
            }
            Int => {
                return Ok(lk == tk
                    && lt.size_or_type == tt.size_or_type
                    && int_encoding(&lt) & BTF_INT_SIGNED == int_encoding(&tt) & BTF_INT_SIGNED)
            }
            Ptr => {
                if lk != tk {
                    return Ok(false);
                }
                behind_ptr = true;
                (lid, tid) = (lt.size_or_type, tt.size_or_type);
            }
            Array => match (array(&lt), array(&tt)) {
                (Some((le, ln)), Some((te, tn))) if ln == tn => (lid, tid) = (le, te),
                _ => return Ok(false),
            },
            FuncProto => {
                let (lp, tp) = (params(&lt), params(&tt));
                if lk != tk || lp.len() != tp.len() {
                    return Ok(false);
                }
                for (a, b) in lp.iter().zip(tp) {
                    if !types_match(l, a.type_id, t, b.type_id, behind_ptr, level - 1)? {
                        return Ok(false);
                    }
                }
                (lid, tid) = (lt.size_or_type, tt.size_or_type);
            }
            _ => return Ok(false),
        }
    }
    Err(Problem::Fatal(format!(
        "types nest deeper than {MAX_DEPTH} levels"
    )))
}

/// How a member name fared in a target struct.
enum Member {
    Found,
    Missing,
    Incompatible(String),
}

/// libbpf's `bpf_core_match_member`: the local accessor's member, by name,
/// in the target struct `targ_id`, searching anonymous members too; extends
/// `ts` along the way.
fn match_member(
    l: Side<'_>,
    la: &Accessor,
    t: Side<'_>,
    targ_id: u32,
    ts: &mut Spec,
    next: &mut u32,
) -> Res<Member> {
    let (targ_id, tt) = t.skip(targ_id)?;
    if !is_composite(&tt) {
        return Ok(Member::Missing);
    }
    let lt = l.ty(la.type_id)?;
    let lm = *members(&lt).get(la.idx as usize).ok_or_else(|| {
        Problem::Local(format!("{} has no member {}", l.label(la.type_id), la.idx))
    })?;
    let lname = la.name.as_deref().unwrap_or_default();
    for (i, m) in members(&tt).iter().enumerate() {
        if ts.raw.len() == MAX_SPEC_LEN {
            return Err(Problem::Fatal(format!(
                "the kernel's {} nests deeper than {MAX_SPEC_LEN} levels",
                t.label(targ_id)
            )));
        }
        let bits = u64::from(member_bit_offset(&tt, m));
        ts.bit_offset += bits;
        ts.raw.push(i as u32);
        let tname = t.name(m.name_off)?;
        if tname.is_empty() {
            match match_member(l, la, t, m.type_id, ts, next)? {
                Member::Missing => {}
                found => return Ok(found),
            }
        } else if tname == lname {
            ts.acc.push(Accessor {
                type_id: targ_id,
                idx: i as u32,
                name: Some(tname.into_owned()),
            });
            *next = m.type_id;
            if fields_are_compat(l, lm.type_id, t, m.type_id)? {
                return Ok(Member::Found);
            }
            ts.acc.pop();
            let tkind = t
                .skip(m.type_id)
                .map_or_else(|_| "?".into(), |(id, _)| t.label(id));
            let lkind = l
                .skip(lm.type_id)
                .map_or_else(|_| "?".into(), |(id, _)| l.label(id));
            return Ok(Member::Incompatible(format!(
                "is {tkind} in the kernel but {lkind} in the object"
            )));
        }
        ts.bit_offset -= bits;
        ts.raw.pop();
    }
    Ok(Member::Missing)
}

/// libbpf's `bpf_core_spec_match` for field and enumerator relocations:
/// the local spec's counterpart in target candidate `cand`, or why there is
/// none.
fn spec_match(
    l: Side<'_>,
    kind: CoreReloKind,
    lspec: &Spec,
    t: Side<'_>,
    cand: u32,
) -> Res<Result<Spec, String>> {
    let mut ts = Spec {
        root: cand,
        ..Spec::default()
    };
    if kind.is_enumval() {
        let (tid, tt) = t.skip(cand)?;
        if !is_any_enum(&tt) {
            return Ok(Err(format!(
                "{} is not an enum in the kernel",
                t.label(cand)
            )));
        }
        let lname = lspec.acc[0].name.as_deref().unwrap_or_default();
        let want = essential_name(lname);
        for i in 0..vlen(&tt) {
            let (off, _) = enumerator(&tt, i).unwrap_or_default();
            let name = t.name(off)?;
            if essential_name(&name) == want {
                ts.acc.push(Accessor {
                    type_id: tid,
                    idx: i as u32,
                    name: Some(name.into_owned()),
                });
                ts.raw.push(i as u32);
                return Ok(Ok(ts));
            }
        }
        return Ok(Err(format!(
            "{} has no enumerator {lname} in the kernel",
            t.label(tid)
        )));
    }
    let mut targ_id = cand;
    for (i, la) in lspec.acc.iter().enumerate() {
        let (tid, tt) = t.skip(targ_id)?;
        targ_id = tid;
        if let Some(name) = &la.name {
            match match_member(l, la, t, tid, &mut ts, &mut targ_id)? {
                Member::Found => {}
                Member::Missing => {
                    return Ok(Err(format!(
                        "{} has no member {name} in the kernel",
                        ts.path(t)
                    )))
                }
                Member::Incompatible(why) => {
                    let mut path = ts.path(t);
                    path.push_str(if ts.acc.iter().any(|a| a.name.is_some()) {
                        "."
                    } else {
                        "::"
                    });
                    return Ok(Err(format!("{path}{name} {why}")));
                }
            }
        } else {
            if i > 0 {
                let Some((elem, nelems)) = array(&tt) else {
                    return Ok(Err(format!("{} is not an array in the kernel", ts.path(t))));
                };
                if !is_flex_arr(t, ts.acc.last(), nelems)? && la.idx >= nelems {
                    return Ok(Err(format!(
                        "{} has {nelems} elements in the kernel, index {} is out of bounds",
                        ts.path(t),
                        la.idx
                    )));
                }
                targ_id = t.skip(elem)?.0;
            }
            if ts.raw.len() == MAX_SPEC_LEN {
                return Err(Problem::Fatal(format!(
                    "the access nests deeper than {MAX_SPEC_LEN} levels"
                )));
            }
            ts.acc.push(Accessor {
                type_id: targ_id,
                idx: la.idx,
                name: None,
            });
            ts.raw.push(la.idx);
            let size = t.size(targ_id)?;
            ts.add_bits(t, elem_bits(la.idx, size))?;
        }
    }
    if ts.bit_offset > u64::from(u32::MAX) {
        return Err(t.invalid("the field's bit offset overflows 32 bits".into()));
    }
    Ok(Ok(ts))
}

/// The type-relocation match of candidate `cand`.
fn type_match(
    l: Side<'_>,
    kind: CoreReloKind,
    root: u32,
    t: Side<'_>,
    cand: u32,
) -> Res<Result<Spec, String>> {
    let ok = if kind == CoreReloKind::TypeMatches {
        types_match(l, root, t, cand, false, MAX_DEPTH as u32)?
    } else {
        types_are_compat(l, root, t, cand, MAX_DEPTH as u32)?
    };
    if ok {
        return Ok(Ok(Spec {
            root: cand,
            ..Spec::default()
        }));
    }
    Ok(Err(if kind == CoreReloKind::TypeMatches {
        format!(
            "{} in the kernel does not match the object's definition",
            t.label(cand)
        )
    } else {
        format!(
            "{} in the kernel is not compatible with the object's",
            t.label(cand)
        )
    }))
}

/// Checks that a relocation's local side makes sense: the access string
/// parses and walks the object's BTF from the root type (member and element
/// indices in range, an enum for enumerator kinds, `"0"` for type kinds),
/// and the local value can be computed (no `signed` of an array element, no
/// bitfield wider than a 64-bit load). The error is the reason, in words.
pub fn validate(local: &Btf, relo: &CoreReloSpec) -> Result<(), String> {
    let l = Side::local(local);
    let spec = parse_spec(l, relo).map_err(Problem::text)?;
    calc_relo(l, Side::target(local), relo.kind, &spec, None).map_err(Problem::text)?;
    Ok(())
}

/// The relocation in words, from the object's BTF: `struct task_struct::pid
/// (0:17)`, `enum bpf_prog_type::BPF_PROG_TYPE_NETFILTER (31)`, `struct foo
/// (0)`. Never fails: a relocation that does not walk is shown by its root
/// type and access string.
pub fn describe(local: &Btf, relo: &CoreReloSpec) -> String {
    let l = Side::local(local);
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

/// Candidates of a root type in the target: types of a compatible kind
/// whose essential name is the root's; vmlinux's if it has any, else the
/// modules' (libbpf's `bpf_core_find_cands`).
fn find_candidates(l: Side<'_>, t: Side<'_>, root: u32) -> Res<Vec<u32>> {
    let lt = l.ty(root)?;
    let name = l.name(lt.name_off)?;
    let ids = t
        .src
        .ids_by_essential_name(essential_name(&name))
        .map_err(Problem::Target)?;
    let mut out = Vec::new();
    for id in ids {
        if kind_core_compat(&lt, &*t.ty(id)?) {
            out.push(id);
        }
    }
    if out.iter().any(|&id| t.src.module(id).is_none()) {
        out.retain(|&id| t.src.module(id).is_none());
    }
    Ok(out)
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
    let t = Side::target(target);
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
            let l = Side::local(local);
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

type Outcome = Result<FixupValues, CoreFailure>;

fn plan_one(
    l: Side<'_>,
    t: Side<'_>,
    f: &FunctionSpec,
    relo: &CoreReloSpec,
    cache: &mut HashMap<u32, Vec<u32>>,
) -> Res<Outcome> {
    let lspec = parse_spec(l, relo)?;
    if relo.kind == CoreReloKind::TypeIdLocal {
        let calc = calc_relo(l, t, relo.kind, &lspec, None)?;
        return settle(t, f, relo, &calc, None, String::new);
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
    let mut chosen: Option<(u32, Spec, Calc)> = None;
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
        if let Some((first, fspec, fcalc)) = &chosen {
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
        } else {
            chosen = Some((cand, tspec, calc));
        }
        kept.push(cand);
    }
    match chosen {
        Some((cand, _, calc)) => {
            // Later relocations of this root see only the candidates that matched.
            cache.insert(relo.type_id, kept);
            settle(t, f, relo, &calc, Some(cand), String::new)
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
            settle(t, f, relo, &calc, None, missing)
        }
    }
}

/// The outcome for the instruction, as libbpf's `bpf_core_patch_insn`
/// would find it: a poison, a refusal, an instruction that contradicts the
/// object ([`Problem::Local`]), or the values.
fn settle(
    t: Side<'_>,
    f: &FunctionSpec,
    relo: &CoreReloSpec,
    calc: &Calc,
    cand: Option<u32>,
    missing: impl Fn() -> String,
) -> Res<Outcome> {
    let ins = *f.insns.get(relo.insn).ok_or_else(|| {
        Problem::Local(format!(
            "instruction {} is past the end of the function ({} instructions)",
            relo.insn,
            f.insns.len()
        ))
    })?;
    if calc.poison {
        return Ok(Err(CoreFailure {
            reason: missing(),
            poisoned: true,
        }));
    }
    let mut values = FixupValues {
        local: calc.orig,
        target: calc.new,
        validate: calc.validate,
        mem_size: None,
        target_type: cand.map(|id| TargetType {
            id,
            kernel_id: t.src.kernel_id(id),
            module: t.src.module(id).map(str::to_owned),
        }),
    };
    if matches!(ins.code & 7, BPF_LDX | BPF_ST | BPF_STX) {
        // In libbpf's order: the local value, the range, the size.
        check_value(ins.off as i64 as u64, &values, "offset")?;
        if calc.new > i16::MAX as u64 {
            return Err(Problem::Fatal(format!(
                "the kernel's offset {} does not fit an instruction's 16-bit offset",
                calc.new
            )));
        }
        if calc.fail_memsz_adjust {
            return Ok(Err(CoreFailure {
                reason: format!(
                    "the kernel's field is {} bytes where the object's is {}, and only a pointer or an unsigned integer can be read at another size",
                    calc.new_sz, calc.orig_sz
                ),
                poisoned: true,
            }));
        }
        if calc.orig_sz != calc.new_sz {
            if size_bits(calc.new_sz).is_none() {
                return Err(Problem::Fatal(format!(
                    "the kernel's field is {} bytes, which no load or store accesses",
                    calc.new_sz
                )));
            }
            values.mem_size = Some(MemSize {
                from: calc.orig_sz,
                to: calc.new_sz,
            });
        }
    }
    // A dry run on copies: anything left wrong is the instruction's fault.
    let mut scratch: Vec<Insn> = f.insns[relo.insn..f.insns.len().min(relo.insn + 2)].to_vec();
    write_fixup(&mut scratch, 0, &values).map_err(Problem::Local)?;
    Ok(Ok(values))
}

const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_ST: u8 = 0x02;
const BPF_STX: u8 = 0x03;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_JMP32: u8 = 0x06;
const BPF_ALU64: u8 = 0x07;
const BPF_X: u8 = 0x08;

fn check_value(current: u64, v: &FixupValues, what: &str) -> Res<()> {
    if v.validate && current != v.local {
        return Err(Problem::Local(format!(
            "the instruction's {what} is {}, but the object's BTF says {}",
            current as i64, v.local as i64
        )));
    }
    Ok(())
}

/// `BPF_SIZE` bits for an access of `n` bytes.
fn size_bits(n: u32) -> Option<u8> {
    Some(match n {
        4 => 0x00,
        2 => 0x08,
        1 => 0x10,
        8 => 0x18,
        _ => return None,
    })
}

fn size_bytes(code: u8) -> u32 {
    match code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

/// libbpf's `bpf_core_patch_insn` for a resolved relocation: checks the
/// instruction holds the local value (unless the relocation is not
/// checked), then writes the target value.
fn write_fixup(insns: &mut [Insn], at: usize, v: &FixupValues) -> Result<(), String> {
    let len = insns.len();
    let ins = *insns.get(at).ok_or_else(|| {
        format!("instruction {at} is past the end of the function ({len} instructions)")
    })?;
    match ins.code & 7 {
        BPF_ALU | BPF_ALU64 => {
            if ins.code & BPF_X != 0 {
                return Err(format!(
                    "instruction {ins:?} is an operation on registers; only an immediate can be relocated"
                ));
            }
            check_value(ins.imm as i64 as u64, v, "immediate").map_err(Problem::text)?;
            insns[at].imm = v.target as i32;
        }
        BPF_LDX | BPF_ST | BPF_STX => {
            check_value(ins.off as i64 as u64, v, "offset").map_err(Problem::text)?;
            let off = i16::try_from(v.target)
                .map_err(|_| format!("offset {} does not fit an instruction", v.target))?;
            insns[at].off = off;
            if let Some(ms) = v.mem_size {
                if size_bytes(ins.code) != ms.from {
                    return Err(format!(
                        "the instruction accesses {} bytes, but the object's field is {} bytes",
                        size_bytes(ins.code),
                        ms.from
                    ));
                }
                let bits = size_bits(ms.to)
                    .ok_or_else(|| format!("no load or store accesses {} bytes", ms.to))?;
                insns[at].code = (ins.code & 0xe0) | bits | (ins.code & 7);
            }
        }
        BPF_LD => {
            let next = insns.get(at + 1).copied();
            let plain = ins.is_ld_imm64()
                && ins.src() == 0
                && ins.off == 0
                && next.is_some_and(|n| n.code == 0 && n.regs == 0 && n.off == 0);
            let Some(next) = next.filter(|_| plain) else {
                return Err(format!(
                    "instruction {ins:?} is not a plain 64-bit immediate load"
                ));
            };
            let imm = u64::from(ins.imm as u32) | (u64::from(next.imm as u32) << 32);
            check_value(imm, v, "64-bit immediate").map_err(Problem::text)?;
            insns[at].imm = v.target as u32 as i32;
            insns[at + 1].imm = (v.target >> 32) as u32 as i32;
        }
        _ => {
            return Err(format!(
                "instruction {ins:?} cannot be relocated (only immediates of ALU operations and ld_imm64, and offsets of loads and stores can)"
            ))
        }
    }
    Ok(())
}

/// libbpf's `bpf_core_poison_insn`: `call 0xbad2310`, both halves of an
/// `ld_imm64`.
fn poison(insns: &mut [Insn], at: usize) -> Result<(), String> {
    let len = insns.len();
    let ins = insns.get(at).copied().ok_or_else(|| {
        format!("instruction {at} is past the end of the function ({len} instructions)")
    })?;
    let bad = Insn {
        code: insn::CALL,
        regs: 0,
        off: 0,
        imm: POISON_HELPER,
    };
    if ins.is_ld_imm64() {
        if let Some(next) = insns.get_mut(at + 1) {
            *next = bad;
        }
    }
    insns[at] = bad;
    Ok(())
}

/// Which of the `poisoned` instructions a verifier would reach, in order:
/// a small abstract interpretation from instruction 0 that tracks constant
/// register values (`mov r, imm`, `ld_imm64`, ALU on known values, such as
/// the results of relocated `mov r, imm`) and follows only the branch a
/// conditional jump on known values takes; unknown values take both. A
/// path ends at `exit` or at a poisoned instruction. bpf-to-bpf calls are
/// followed with unknown arguments. If the work exceeds a fixed budget, the
/// answer falls back to every poisoned instruction reachable in the
/// control-flow graph (an over-estimate, never an under-estimate).
pub fn reachable_poison(insns: &[Insn], poisoned: &[usize]) -> Vec<usize> {
    const BUDGET: usize = 50_000;
    let poisoned: HashSet<usize> = poisoned.iter().copied().collect();
    let mut hit: BTreeSet<usize> = BTreeSet::new();
    let mut seen: HashSet<(usize, Regs)> = HashSet::new();
    let mut work: Vec<(usize, Regs)> = vec![(0, [None; 11])];
    let mut steps = 0;
    while let Some((pc, regs)) = work.pop() {
        steps += 1;
        if steps > BUDGET {
            return cfg_reachable(insns, &poisoned);
        }
        if pc >= insns.len() || !seen.insert((pc, regs)) {
            continue;
        }
        if poisoned.contains(&pc) {
            hit.insert(pc);
            continue;
        }
        for next in step(insns, pc, regs) {
            work.push(next);
        }
    }
    hit.into_iter().collect()
}

/// Known register values (r0..r10; r10, the frame pointer, is never known).
type Regs = [Option<u64>; 11];

/// The successors of instruction `pc` with their register states.
fn step(insns: &[Insn], pc: usize, mut regs: Regs) -> Vec<(usize, Regs)> {
    let ins = insns[pc];
    let (dst, src) = (
        usize::from(ins.dst()).min(10),
        usize::from(ins.src()).min(10),
    );
    let class = ins.code & 7;
    let jump = |off: i64| -> Option<usize> { usize::try_from(pc as i64 + 1 + off).ok() };
    match class {
        BPF_ALU | BPF_ALU64 => {
            let operand = if ins.code & BPF_X != 0 {
                regs[src]
            } else if class == BPF_ALU64 {
                Some(ins.imm as i64 as u64)
            } else {
                Some(u64::from(ins.imm as u32))
            };
            regs[dst] = alu(ins.code, class == BPF_ALU64, ins.off, regs[dst], operand);
            regs[10] = None;
            vec![(pc + 1, regs)]
        }
        BPF_LD if ins.is_ld_imm64() => {
            regs[dst] = match (ins.src(), insns.get(pc + 1)) {
                (0, Some(n)) => Some(u64::from(ins.imm as u32) | (u64::from(n.imm as u32) << 32)),
                _ => None,
            };
            let mut out = vec![(pc + 2, regs)];
            if ins.src() == insn::PSEUDO_FUNC {
                // A callback's address: the helper that takes it may call it.
                if let Some(t) = jump(i64::from(ins.imm)) {
                    out.push((t, [None; 11]));
                }
            }
            out
        }
        BPF_LD => {
            // Legacy packet loads clobber r0 and the caller-saved registers.
            for r in regs.iter_mut().take(6) {
                *r = None;
            }
            vec![(pc + 1, regs)]
        }
        BPF_LDX => {
            regs[dst] = None;
            vec![(pc + 1, regs)]
        }
        BPF_ST => vec![(pc + 1, regs)],
        BPF_STX => {
            if ins.code & 0xe0 == 0xc0 {
                // Atomics may write the source register (fetch) or r0 (cmpxchg).
                regs[src] = None;
                regs[0] = None;
            }
            vec![(pc + 1, regs)]
        }
        BPF_JMP | BPF_JMP32 => {
            let op = ins.code & 0xf0;
            match op {
                0x00 => {
                    // ja (gotol in JMP32 takes its offset from imm).
                    let off = if class == BPF_JMP32 {
                        i64::from(ins.imm)
                    } else {
                        i64::from(ins.off)
                    };
                    jump(off).map(|t| vec![(t, regs)]).unwrap_or_default()
                }
                0x90 => Vec::new(), // exit
                0x80 => {
                    let mut out = Vec::new();
                    if ins.is_pseudo_call() {
                        if let Some(t) = jump(i64::from(ins.imm)) {
                            out.push((t, [None; 11]));
                        }
                    }
                    for r in regs.iter_mut().take(6) {
                        *r = None;
                    }
                    out.push((pc + 1, regs));
                    out
                }
                _ => {
                    let a = regs[dst];
                    let b = if ins.code & BPF_X != 0 {
                        regs[src]
                    } else {
                        Some(ins.imm as i64 as u64)
                    };
                    let taken = jump(i64::from(ins.off));
                    let decided = match (a, b) {
                        (Some(a), Some(b)) => condition(op, class == BPF_JMP32, a, b),
                        _ => None,
                    };
                    match decided {
                        Some(true) => taken.map(|t| vec![(t, regs)]).unwrap_or_default(),
                        Some(false) => vec![(pc + 1, regs)],
                        None => {
                            let mut out = vec![(pc + 1, regs)];
                            if let Some(t) = taken {
                                out.push((t, regs));
                            }
                            out
                        }
                    }
                }
            }
        }
        _ => vec![(pc + 1, regs)],
    }
}

/// An ALU operation on known values; `None` when either is unknown or the
/// operation is not modelled.
fn alu(code: u8, wide: bool, off: i16, dst: Option<u64>, src: Option<u64>) -> Option<u64> {
    let op = code & 0xf0;
    if off != 0 && op != 0xd0 {
        return None; // sdiv/smod/movsx (cpu v4): not modelled
    }
    let src = src?;
    let v = match op {
        0xb0 => src, // mov
        0x80 => dst?.wrapping_neg(),
        0xd0 => return None, // byte swaps
        _ => {
            let d = dst?;
            let (d, s) = if wide {
                (d, src)
            } else {
                (d & 0xffff_ffff, src & 0xffff_ffff)
            };
            let bits = if wide { 63 } else { 31 };
            match op {
                0x00 => d.wrapping_add(s),
                0x10 => d.wrapping_sub(s),
                0x20 => d.wrapping_mul(s),
                0x30 => d.checked_div(s).unwrap_or(0),
                0x40 => d | s,
                0x50 => d & s,
                0x60 => d << (s & bits),
                0x70 => d >> (s & bits),
                0x90 => d.checked_rem(s).unwrap_or(d),
                0xa0 => d ^ s,
                0xc0 if wide => ((d as i64) >> (s & bits)) as u64,
                0xc0 => (((d as u32 as i32) >> (s & bits)) as u32).into(),
                _ => return None,
            }
        }
    };
    Some(if wide { v } else { v & 0xffff_ffff })
}

/// A conditional jump's outcome on known values.
fn condition(op: u8, narrow: bool, a: u64, b: u64) -> Option<bool> {
    let (a, b) = if narrow {
        (a & 0xffff_ffff, b & 0xffff_ffff)
    } else {
        (a, b)
    };
    let (sa, sb) = if narrow {
        (i64::from(a as u32 as i32), i64::from(b as u32 as i32))
    } else {
        (a as i64, b as i64)
    };
    Some(match op {
        0x10 => a == b,
        0x20 => a > b,
        0x30 => a >= b,
        0x40 => a & b != 0,
        0x50 => a != b,
        0x60 => sa > sb,
        0x70 => sa >= sb,
        0xa0 => a < b,
        0xb0 => a <= b,
        0xc0 => sa < sb,
        0xd0 => sa <= sb,
        _ => return None,
    })
}

/// Poisoned instructions reachable in the control-flow graph, both ways at
/// every branch.
fn cfg_reachable(insns: &[Insn], poisoned: &HashSet<usize>) -> Vec<usize> {
    let mut seen = vec![false; insns.len()];
    let mut work = vec![0usize];
    let mut hit = BTreeSet::new();
    while let Some(pc) = work.pop() {
        if pc >= insns.len() || seen[pc] {
            continue;
        }
        seen[pc] = true;
        if poisoned.contains(&pc) {
            hit.insert(pc);
            continue;
        }
        let unknown: Regs = [None; 11];
        work.extend(step(insns, pc, unknown).into_iter().map(|(p, _)| p));
    }
    hit.into_iter().collect()
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
