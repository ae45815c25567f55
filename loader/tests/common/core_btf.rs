//! CO-RE tests' helpers: a BTF builder, relocations, one-program objects,
//! the instructions they patch, and running one relocation.

use rawbpf::obj::btf::{
    Btf, BtfEnum, BtfEnum64, BtfKind, BtfMember, BtfParam, BtfType, BtfTypeData,
};
use rawbpf::obj::core::{self, CoreFixup, CoreReloKind, CoreReloSpec, FixupValues, POISON_HELPER};
use rawbpf::obj::{FunctionSpec, ProgramSpec};
use rawbpf::uapi::{Insn, ProgramType};
use rawbpf::ObjectSpec;

/// A BTF under construction, one type per call; ids come back.
pub struct B(pub Btf);

impl B {
    pub fn new() -> B {
        B(Btf::new())
    }
    pub fn add(
        &mut self,
        name: &str,
        kind: BtfKind,
        flag: bool,
        size_or_type: u32,
        data: BtfTypeData,
    ) -> u32 {
        let name_off = if name.is_empty() {
            0
        } else {
            self.0.add_string(name)
        };
        self.0.add_type(BtfType {
            name_off,
            kind,
            kind_flag: flag,
            vlen_extra: 0,
            size_or_type,
            data,
        })
    }
    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let data = BtfTypeData::Int {
            encoding: u8::from(signed),
            offset: 0,
            bits: (size * 8) as u8,
        };
        self.add(name, BtfKind::Int, false, size, data)
    }
    pub fn members(&mut self, m: &[(&str, u32, u32)]) -> Vec<BtfMember> {
        m.iter()
            .map(|&(n, type_id, offset)| BtfMember {
                name_off: if n.is_empty() {
                    0
                } else {
                    self.0.add_string(n)
                },
                type_id,
                offset,
            })
            .collect()
    }
    /// Members as (name, type, bit offset).
    pub fn strukt(&mut self, name: &str, size: u32, m: &[(&str, u32, u32)]) -> u32 {
        let m = self.members(m);
        self.add(name, BtfKind::Struct, false, size, BtfTypeData::Members(m))
    }
    pub fn union(&mut self, name: &str, size: u32, m: &[(&str, u32, u32)]) -> u32 {
        let m = self.members(m);
        self.add(name, BtfKind::Union, false, size, BtfTypeData::Members(m))
    }
    /// Members as (name, type, bit offset, bitfield bits): kind_flag layout.
    pub fn bitfields(&mut self, name: &str, size: u32, m: &[(&str, u32, u32, u32)]) -> u32 {
        let flat: Vec<(&str, u32, u32)> = m
            .iter()
            .map(|&(n, t, off, bits)| (n, t, bits << 24 | off))
            .collect();
        let m = self.members(&flat);
        self.add(name, BtfKind::Struct, true, size, BtfTypeData::Members(m))
    }
    pub fn enum32(&mut self, name: &str, signed: bool, v: &[(&str, i32)]) -> u32 {
        let v = v
            .iter()
            .map(|&(n, val)| BtfEnum {
                name_off: self.0.add_string(n),
                val,
            })
            .collect();
        self.add(name, BtfKind::Enum, signed, 4, BtfTypeData::Enum(v))
    }
    pub fn enum64(&mut self, name: &str, signed: bool, v: &[(&str, u64)]) -> u32 {
        let v = v
            .iter()
            .map(|&(n, val)| BtfEnum64 {
                name_off: self.0.add_string(n),
                val,
            })
            .collect();
        self.add(name, BtfKind::Enum64, signed, 8, BtfTypeData::Enum64(v))
    }
    pub fn ptr(&mut self, to: u32) -> u32 {
        self.add("", BtfKind::Ptr, false, to, BtfTypeData::None)
    }
    pub fn array(&mut self, elem: u32, n: u32) -> u32 {
        let data = BtfTypeData::Array {
            elem_type: elem,
            index_type: elem,
            nelems: n,
        };
        self.add("", BtfKind::Array, false, 0, data)
    }
    pub fn typedef(&mut self, name: &str, to: u32) -> u32 {
        self.add(name, BtfKind::Typedef, false, to, BtfTypeData::None)
    }
    pub fn konst(&mut self, to: u32) -> u32 {
        self.add("", BtfKind::Const, false, to, BtfTypeData::None)
    }
    pub fn fwd(&mut self, name: &str, union: bool) -> u32 {
        self.add(name, BtfKind::Fwd, union, 0, BtfTypeData::None)
    }
    pub fn proto(&mut self, ret: u32, params: &[u32]) -> u32 {
        let p = params
            .iter()
            .map(|&type_id| BtfParam {
                name_off: 0,
                type_id,
            })
            .collect();
        self.add("", BtfKind::FuncProto, false, ret, BtfTypeData::Params(p))
    }
}

pub fn relo(insn: usize, type_id: u32, access: &str, kind: CoreReloKind) -> CoreReloSpec {
    CoreReloSpec {
        insn,
        type_id,
        access: access.into(),
        kind,
    }
}

pub fn function(name: &str, insns: Vec<Insn>, core_relos: Vec<CoreReloSpec>) -> FunctionSpec {
    FunctionSpec {
        name: name.into(),
        section: "tc".into(),
        section_offset: 0,
        insns,
        relocations: Vec::new(),
        global: true,
        btf_func_id: None,
        func_info: Vec::new(),
        line_info: Vec::new(),
        core_relos,
    }
}

/// An object with one program `prog` holding `insns` and `relos`.
pub fn object(local: &Btf, insns: Vec<Insn>, relos: Vec<CoreReloSpec>) -> ObjectSpec {
    ObjectSpec {
        programs: vec![ProgramSpec {
            function: function("prog", insns, relos),
            prog_type: ProgramType::SCHED_CLS,
            attach_type: None,
            prog_flags: 0,
            attach_target: None,
            subprograms: Vec::new(),
        }],
        subprograms: Vec::new(),
        maps: Vec::new(),
        externs: Vec::new(),
        struct_ops: Vec::new(),
        license: "GPL".into(),
        kernel_version: None,
        btf: Some(local.clone()),
        core_relocations: 1,
    }
}

pub const EXIT: Insn = Insn {
    code: 0x95,
    regs: 0,
    off: 0,
    imm: 0,
};

pub fn mov64(dst: u8, imm: i32) -> Insn {
    Insn {
        code: 0xb7,
        regs: dst,
        off: 0,
        imm,
    }
}

/// `dst = *(size *)(src + off)`; size in bytes.
pub fn ldx(size: u32, dst: u8, src: u8, off: i16) -> Insn {
    let sz = match size {
        4 => 0x00,
        2 => 0x08,
        1 => 0x10,
        _ => 0x18,
    };
    Insn {
        code: 0x61 | sz,
        regs: src << 4 | dst,
        off,
        imm: 0,
    }
}

pub fn ld_imm64(dst: u8, v: u64) -> [Insn; 2] {
    [
        Insn {
            code: 0x18,
            regs: dst,
            off: 0,
            imm: v as u32 as i32,
        },
        Insn {
            code: 0,
            regs: 0,
            off: 0,
            imm: (v >> 32) as u32 as i32,
        },
    ]
}

pub const POISON: Insn = Insn {
    code: 0x85,
    regs: 0,
    off: 0,
    imm: POISON_HELPER,
};

/// Plans one relocation on instruction 0 of `[insn, exit]`; returns the
/// fixup and the patched instructions (`None` if apply refuses).
pub fn run(
    local: &Btf,
    target: &Btf,
    insns: &[Insn],
    r: CoreReloSpec,
) -> (CoreFixup, Option<Vec<Insn>>) {
    let mut all = insns.to_vec();
    all.push(EXIT);
    let mut spec = object(local, all, vec![r]);
    let plan = core::plan(&spec, target).unwrap_or_else(|e| panic!("{e}"));
    let fixup = plan.fixups().next().expect("one fixup").clone();
    let patched = plan
        .apply(&mut spec)
        .ok()
        .map(|()| spec.programs[0].function.insns.clone());
    (fixup, patched)
}

pub fn values(f: &CoreFixup) -> &FixupValues {
    f.outcome
        .as_ref()
        .unwrap_or_else(|e| panic!("{}: {}", f.description, e.reason))
}

pub fn failure(f: &CoreFixup) -> (&str, bool) {
    match &f.outcome {
        Err(e) => (e.reason.as_str(), e.poisoned),
        Ok(v) => panic!("{}: expected a failure, got {v:?}", f.description),
    }
}

/// struct foo { int a; int b; } and whatever `extra` adds; ids: int 1, foo 2.
pub fn foo_local() -> B {
    let mut b = B::new();
    let int = b.int("int", 4, true);
    b.strukt("foo", 8, &[("a", int, 0), ("b", int, 32)]);
    b
}

/// A BTF with only `enum bpf_func_id`, what CO-RE guards on helpers
/// (`bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_x)`) look up in
/// a kernel's BTF: 5.10-like (no `BPF_FUNC_ktime_get_coarse_ns`, 5.11), or
/// 5.11+ (`coarse`).
pub fn kernel_func_ids(coarse: bool) -> Btf {
    let mut names = vec![
        ("BPF_FUNC_unspec", 0),
        ("BPF_FUNC_map_lookup_elem", 1),
        ("BPF_FUNC_ktime_get_ns", 5),
    ];
    if coarse {
        names.push(("BPF_FUNC_ktime_get_coarse_ns", 160));
    }
    let mut b = B::new();
    b.enum32("bpf_func_id", false, &names);
    b.0
}
