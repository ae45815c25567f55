//! CO-RE ("compile once, run everywhere") relocations: the object's own BTF
//! says which type and member an instruction meant (`.BTF.ext` core_relo
//! records); the running kernel's BTF says where that member is today. This
//! module computes each fix as plain data (pure: a [`TargetTypes`] in,
//! fixups out) and applies them to the spec's instructions afterwards, as
//! libbpf's `relo_core.c` does (the reference semantics) and cilium/ebpf's
//! `CORERelocate` does (fixups as data).

use super::btf::{Btf, BtfError, BtfType};
use std::borrow::Cow;

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
