//! Patching an instruction with a relocation's value, or poisoning it
//! (libbpf's `bpf_core_patch_insn` and `bpf_core_poison_insn`).

use super::calc::ComputedRelo;
use super::types::CoreBtf;
use super::{
    CoreFailure, CoreReloSpec, CoreResult, FixupValues, MemSize, Outcome, Problem, TargetType,
    POISON_HELPER,
};
use crate::obj::opcode::*;
use crate::obj::FunctionSpec;
use crate::uapi::{insn, Insn};

/// The outcome for the instruction, as libbpf's `bpf_core_patch_insn`
/// would find it: a poison, a refusal, an instruction that contradicts the
/// object ([`Problem::Local`]), or the values.
pub(super) fn outcome_for_insn(
    t: CoreBtf<'_>,
    f: &FunctionSpec,
    relo: &CoreReloSpec,
    calc: &ComputedRelo,
    cand: Option<u32>,
    missing: impl Fn() -> String,
) -> CoreResult<Outcome> {
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

pub(super) fn check_value(current: u64, v: &FixupValues, what: &str) -> CoreResult<()> {
    if v.validate && current != v.local {
        return Err(Problem::Local(format!(
            "the instruction's {what} is {}, but the object's BTF says {}",
            current as i64, v.local as i64
        )));
    }
    Ok(())
}

/// `BPF_SIZE` bits for an access of `n` bytes.
pub(super) fn size_bits(n: u32) -> Option<u8> {
    Some(match n {
        4 => 0x00,
        2 => 0x08,
        1 => 0x10,
        8 => 0x18,
        _ => return None,
    })
}

pub(super) fn size_bytes(code: u8) -> u32 {
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
pub(super) fn write_fixup(insns: &mut [Insn], at: usize, v: &FixupValues) -> Result<(), String> {
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
pub(super) fn poison(insns: &mut [Insn], at: usize) -> Result<(), String> {
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
