//! Linking a program for `BPF_PROG_LOAD`: the program's own instructions,
//! then every `.text` subprogram it reaches (each once), with bpf-to-bpf
//! call offsets fixed for the new layout and func_info/line_info moved
//! along. Map and extern references are listed for the loader, which knows
//! the fds and what the kernel calls each extern.

use super::btf_ext::{FuncInfo, LineInfo};
use super::{FunctionSpec, ObjectSpec, ProgramSpec, RelocTarget};
use crate::uapi::{insn, Insn};
use std::collections::HashMap;

/// An instruction that must be given a map's fd before loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRef {
    /// Index of the `ld_imm64` in [`LinkedProgram::insns`].
    pub insn: usize,
    /// The map's name.
    pub map: String,
    /// `Some(offset)` for an address inside a global-data map's value
    /// (`BPF_PSEUDO_MAP_VALUE`), `None` for the map itself (`BPF_PSEUDO_MAP_FD`).
    pub value_offset: Option<u32>,
}

/// An instruction that refers to a `__ksym` variable or a kfunc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternRef {
    /// Index of the `ld_imm64` or `call` in [`LinkedProgram::insns`].
    pub insn: usize,
    /// The extern's name ([`super::ObjectSpec::externs`]).
    pub name: String,
    /// A kfunc `call` (else an `ld_imm64` of the extern's address).
    pub call: bool,
}

/// What an extern turned out to be, as [`LinkedProgram::set_externs`] writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternValue {
    /// A kernel BTF `VAR` or `FUNC`: an `ld_imm64` becomes
    /// `BPF_PSEUDO_BTF_ID` with the id and the BTF object's fd (0: vmlinux);
    /// a call becomes `BPF_PSEUDO_KFUNC_CALL` with the id and `off` the
    /// index of that BTF's fd in `fd_array` (0: vmlinux).
    Btf {
        /// The kernel's BTF id.
        id: u32,
        /// The module BTF's fd, 0 for vmlinux.
        btf_fd: i32,
        /// The module BTF's index in `fd_array`, 0 for vmlinux.
        fd_index: i16,
    },
    /// A typeless ksym's address, as the 64-bit immediate.
    Address(u64),
    /// A weak extern the kernel lacks: the address is 0, and a call becomes
    /// a call of the invalid helper `2002000000 + index` (libbpf's poison),
    /// which the verifier only refuses if it can be reached.
    Missing {
        /// The extern's index in [`super::ObjectSpec::externs`].
        index: u32,
    },
}

/// libbpf's `POISON_CALL_KFUNC_BASE`: `call` of this plus the extern's index
/// marks a weak kfunc the kernel lacks.
pub const POISON_CALL_KFUNC_BASE: i32 = 2_002_000_000;

/// A program ready to load but for map fds.
#[derive(Debug, Clone)]
pub struct LinkedProgram {
    /// The whole instruction stream.
    pub insns: Vec<Insn>,
    /// func_info for the program and each appended subprogram, in instructions.
    pub func_info: Vec<FuncInfo>,
    /// line_info, likewise.
    pub line_info: Vec<LineInfo>,
    /// Where map fds go.
    pub map_refs: Vec<MapRef>,
    /// Where ksym addresses, BTF ids and kfunc ids go.
    pub extern_refs: Vec<ExternRef>,
}

impl LinkedProgram {
    /// Puts each referenced map's fd into its `ld_imm64` (`BPF_PSEUDO_MAP_FD`,
    /// or `BPF_PSEUDO_MAP_VALUE` with the offset for global data). `fd_of`
    /// gives a map's fd by name; a map it does not know is returned as the
    /// error.
    pub fn set_map_fds(&mut self, fd_of: impl Fn(&str) -> Option<i32>) -> Result<(), String> {
        for r in &self.map_refs {
            let fd = fd_of(&r.map).ok_or_else(|| r.map.clone())?;
            let ld = &mut self.insns[r.insn];
            ld.set_src(if r.value_offset.is_some() {
                insn::PSEUDO_MAP_VALUE
            } else {
                insn::PSEUDO_MAP_FD
            });
            ld.imm = fd;
            self.insns[r.insn + 1].imm = r.value_offset.unwrap_or(0) as i32;
        }
        Ok(())
    }

    /// Writes each extern's value into the instructions that use it.
    /// `value_of` gives an extern's value by name; one it does not know (or
    /// an address where a kfunc is called) is returned as the error.
    pub fn set_externs(
        &mut self,
        value_of: impl Fn(&str) -> Option<ExternValue>,
    ) -> Result<(), String> {
        for r in &self.extern_refs {
            let value = value_of(&r.name).ok_or_else(|| r.name.clone())?;
            let at = r.insn;
            match (r.call, value) {
                (true, ExternValue::Btf { id, fd_index, .. }) => {
                    let call = &mut self.insns[at];
                    call.set_src(insn::PSEUDO_KFUNC_CALL);
                    call.imm = id as i32;
                    call.off = fd_index;
                }
                (true, ExternValue::Missing { index }) => {
                    self.insns[at] = Insn {
                        code: insn::CALL,
                        regs: 0,
                        off: 0,
                        imm: POISON_CALL_KFUNC_BASE.wrapping_add(index as i32),
                    };
                }
                (true, ExternValue::Address(_)) => return Err(r.name.clone()),
                (false, value) => {
                    let (src, lo, hi) = match value {
                        ExternValue::Btf { id, btf_fd, .. } => {
                            (insn::PSEUDO_BTF_ID, id as i32, btf_fd)
                        }
                        ExternValue::Address(a) => (0, a as u32 as i32, (a >> 32) as u32 as i32),
                        ExternValue::Missing { .. } => (0, 0, 0),
                    };
                    self.insns[at].set_src(src);
                    self.insns[at].imm = lo;
                    self.insns[at + 1].imm = hi;
                }
            }
        }
        Ok(())
    }

    /// The instructions as the kernel takes them.
    pub fn code(&self) -> Vec<u8> {
        self.insns.iter().flat_map(|i| i.to_bytes()).collect()
    }
}

/// Why a program cannot be linked (the spec is inconsistent: a parser bug or
/// a hand-built spec).
#[derive(thiserror::Error, PartialEq, Eq)]
#[error("program {program}: {kind}")]
pub struct LinkError {
    /// The program.
    pub program: String,
    /// What is wrong.
    pub kind: LinkErrorKind,
}

/// What is wrong with a program's links.
#[derive(thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkErrorKind {
    /// The program calls a subprogram the spec does not have.
    #[error("needs subprogram {name}, which the object lacks")]
    MissingSubprogram {
        /// The subprogram.
        name: String,
    },
    /// A call of a function that is not among the program's subprograms.
    #[error("calls {function}, which is not linked in")]
    NotLinkedIn {
        /// The callee.
        function: String,
    },
    /// A call offset that does not fit the instruction's immediate.
    #[error("call offset {offset} out of range")]
    CallOutOfRange {
        /// The offset, in instructions.
        offset: i64,
    },
    /// An extern's `ld_imm64` cut short.
    #[error("the ld_imm64 of extern {name} at instruction {insn} has no second half")]
    TruncatedLdImm64 {
        /// The extern.
        name: String,
        /// The instruction, in the linked program.
        insn: usize,
    },
}

impl ProgramSpec {
    /// Lays the program out with its subprograms and fixes call offsets.
    pub fn link(&self, spec: &ObjectSpec) -> Result<LinkedProgram, LinkError> {
        let err = |kind: LinkErrorKind| LinkError {
            program: self.name().to_owned(),
            kind,
        };
        let mut linked = LinkedProgram {
            insns: self.function.insns.clone(),
            func_info: self.function.func_info.clone(),
            line_info: self.function.line_info.clone(),
            map_refs: Vec::new(),
            extern_refs: Vec::new(),
        };
        let layout = self.append_subprograms(spec, &mut linked).map_err(err)?;
        // Names to start offsets, so linking is linear in what is linked,
        // not subprograms × relocations.
        let mut starts: HashMap<&str, usize> = HashMap::new();
        for &(f, start) in layout.iter().rev() {
            starts.insert(f.name.as_str(), start); // the first of a name wins
        }
        let start_of = |name: &str| starts.get(name).copied();
        for &(f, start) in &layout {
            for r in &f.relocations {
                linked
                    .relocate(start + r.insn, &r.target, &start_of)
                    .map_err(err)?;
            }
        }
        Ok(linked)
    }

    /// Appends the program's subprograms to its code (and their func_info
    /// and line_info, shifted); returns each function with its start.
    fn append_subprograms<'a>(
        &'a self,
        spec: &'a ObjectSpec,
        linked: &mut LinkedProgram,
    ) -> Result<Vec<(&'a FunctionSpec, usize)>, LinkErrorKind> {
        let subprograms = super::by_name(&spec.subprograms);
        let mut layout: Vec<(&FunctionSpec, usize)> = vec![(&self.function, 0)];
        for name in &self.subprograms {
            let sub = *subprograms
                .get(name.as_str())
                .ok_or_else(|| LinkErrorKind::MissingSubprogram { name: name.clone() })?;
            let start = linked.insns.len();
            let shift = |off: u32| off + start as u32;
            linked.insns.extend_from_slice(&sub.insns);
            linked
                .func_info
                .extend(sub.func_info.iter().map(|r| FuncInfo {
                    insn_off: shift(r.insn_off),
                    ..*r
                }));
            linked
                .line_info
                .extend(sub.line_info.iter().map(|r| LineInfo {
                    insn_off: shift(r.insn_off),
                    ..*r
                }));
            layout.push((sub, start));
        }
        Ok(layout)
    }
}

impl LinkedProgram {
    /// Applies one relocation at instruction `at`: a call's or callback's
    /// offset now, a map or extern reference noted for the loader.
    fn relocate(
        &mut self,
        at: usize,
        target: &RelocTarget,
        start_of: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<(), LinkErrorKind> {
        match target {
            RelocTarget::Call { function } | RelocTarget::FuncAddr { function } => {
                let callee = start_of(function).ok_or_else(|| LinkErrorKind::NotLinkedIn {
                    function: function.clone(),
                })?;
                let rel = callee as i64 - (at as i64 + 1);
                self.insns[at].imm = i32::try_from(rel)
                    .map_err(|_| LinkErrorKind::CallOutOfRange { offset: rel })?;
                if matches!(target, RelocTarget::FuncAddr { .. }) {
                    // A callback's address: pc-relative like a call,
                    // marked BPF_PSEUDO_FUNC (clang leaves src_reg 0).
                    self.insns[at].set_src(insn::PSEUDO_FUNC);
                    if let Some(second) = self.insns.get_mut(at + 1) {
                        second.imm = 0;
                    }
                }
            }
            RelocTarget::Map { map } => self.map_refs.push(MapRef {
                insn: at,
                map: map.clone(),
                value_offset: None,
            }),
            RelocTarget::MapValue { map, offset } => self.map_refs.push(MapRef {
                insn: at,
                map: map.clone(),
                value_offset: Some(*offset),
            }),
            RelocTarget::Extern { name } => {
                let call = self.insns[at].is_call();
                if !call && at + 1 >= self.insns.len() {
                    return Err(LinkErrorKind::TruncatedLdImm64 {
                        name: name.clone(),
                        insn: at,
                    });
                }
                self.extern_refs.push(ExternRef {
                    insn: at,
                    name: name.clone(),
                    call,
                })
            }
        }
        Ok(())
    }
}

debug_is_display!(LinkError, LinkErrorKind);
