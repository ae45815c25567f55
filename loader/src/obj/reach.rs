//! The reachability pass: which instructions of a linked program a verifier
//! would reach, following only the branch a condition on known constants
//! takes. CO-RE uses it to tell whether a poisoned instruction is dead code
//! behind a guard (`if (bpf_core_field_exists(...))`), so `check` can say
//! whether a program still loads; `check` uses it to count only the helpers
//! the verifier sees: on code relocated for the kernel checked against
//! ([`super::core::relocate`]), a guard such as
//! `if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_func_ip))`
//! is the constant the load writes, and the branch it rules out is pruned.

use super::opcode::*;
use crate::uapi::{insn, Insn};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Memory whose bytes the verifier knows at load: frozen maps (`.rodata`,
/// `.kconfig`). Each entry is an `ld_imm64` of the linked program that
/// loads a pointer into such a map's value: its instruction index, the
/// map's whole value, and the offset it points at.
#[derive(Debug, Default, Clone)]
pub struct Frozen<'a> {
    by_insn: HashMap<usize, (u16, u32)>,
    values: Vec<&'a [u8]>,
}

impl<'a> Frozen<'a> {
    /// Says that the `ld_imm64` at `insn` points at `offset` in `value`.
    pub fn add(&mut self, insn: usize, value: &'a [u8], offset: u32) {
        let at = match self.values.iter().position(|v| std::ptr::eq(*v, value)) {
            Some(at) => at,
            None => {
                self.values.push(value);
                self.values.len() - 1
            }
        };
        self.by_insn.insert(insn, (at as u16, offset));
    }

    /// `size` bytes at `offset` of value `at`, little-endian, if in bounds.
    fn read(&self, at: u16, offset: i64, size: usize) -> Option<u64> {
        let value = self.values.get(usize::from(at))?;
        let start = usize::try_from(offset).ok()?;
        let bytes = value.get(start..start.checked_add(size)?)?;
        let mut word = [0u8; 8];
        word[..size].copy_from_slice(bytes);
        Some(u64::from_le_bytes(word))
    }
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
    let poisoned: HashSet<usize> = poisoned.iter().copied().collect();
    walk(insns, &Frozen::default(), &poisoned)
        .into_iter()
        .filter(|pc| poisoned.contains(pc))
        .collect()
}

/// The helpers a verifier would see called: the same walk, where loads
/// from `frozen` memory give known values, so a call behind a `.kconfig`
/// guard (`if (LINUX_HAS_BPF_COOKIE)`) or a `.rodata` flag
/// (`const volatile bool use_ringbuf`) that is false does not count, as
/// the verifier prunes it.
pub fn reachable_helpers(insns: &[Insn], frozen: &Frozen<'_>) -> BTreeSet<u32> {
    walk(insns, frozen, &HashSet::new())
        .into_iter()
        .filter_map(|pc| insns.get(pc))
        .filter(|i| i.is_helper_call())
        .map(|i| i.imm as u32)
        .collect()
}

/// The helpers program `p` of `spec` calls that a verifier would see: its
/// code linked with its subprograms, with `.rodata*` values from the
/// object and `.kconfig` values from `kconfig` (the loader's, for this
/// kernel) known. A program that does not link counts every helper call.
///
/// `spec` (and `p`, one of its programs) may be the object as parsed, or
/// as relocated for a kernel ([`super::core::relocate`]): then CO-RE
/// results (`bpf_core_*_exists`, sizes, offsets, enumerator values) are
/// constants too, as the verifier sees them. A poisoned instruction (a
/// relocation that failed, [`super::core::POISON_HELPER`]) is no helper;
/// whether it is reached is [`reachable_poison`]'s question.
pub fn program_helpers(
    spec: &super::ObjectSpec,
    p: &super::ProgramSpec,
    kconfig: Option<&[u8]>,
) -> BTreeSet<u32> {
    let poison = super::core::POISON_HELPER as u32;
    let Ok(linked) = p.link(spec) else {
        return p
            .functions(spec)
            .flat_map(|f| f.insns.iter().filter(|i| i.is_helper_call()))
            .map(|i| i.imm as u32)
            .filter(|id| *id != poison)
            .collect();
    };
    let mut frozen = Frozen::default();
    for r in &linked.map_refs {
        let (Some(offset), Some(m)) = (r.value_offset, spec.map(&r.map)) else {
            continue;
        };
        let value = if m.section == super::externs::KCONFIG_SECTION {
            kconfig
        } else if m.is_rodata() {
            m.data.as_deref()
        } else {
            None
        };
        if let Some(value) = value {
            frozen.add(r.insn, value, offset);
        }
    }
    let mut ids = reachable_helpers(&linked.insns, &frozen);
    ids.remove(&poison);
    ids
}

/// Known register values (r0..r10; r10, the frame pointer, is never known).
type Regs = [Option<u64>; 11];
/// Registers that point into frozen memory: (which value, offset).
type Ptrs = [Option<(u16, i64)>; 11];

/// The instructions a verifier would reach from 0, stopping at `stops`.
/// Over budget: every instruction of the control-flow graph (both ways at
/// every branch), an over-estimate.
fn walk(insns: &[Insn], frozen: &Frozen<'_>, stops: &HashSet<usize>) -> BTreeSet<usize> {
    const BUDGET: usize = 50_000;
    let mut hit: BTreeSet<usize> = BTreeSet::new();
    let mut seen: HashSet<(usize, Regs, Ptrs)> = HashSet::new();
    let mut work: Vec<(usize, Regs, Ptrs)> = vec![(0, [None; 11], [None; 11])];
    let mut steps = 0;
    while let Some((pc, regs, ptrs)) = work.pop() {
        steps += 1;
        if steps > BUDGET {
            return cfg_reachable(insns, stops);
        }
        if pc >= insns.len() || !seen.insert((pc, regs, ptrs)) {
            continue;
        }
        hit.insert(pc);
        if stops.contains(&pc) {
            continue;
        }
        work.extend(step(insns, pc, regs, ptrs, frozen));
    }
    hit
}

/// The successors of instruction `pc` with their register states.
fn step(
    insns: &[Insn],
    pc: usize,
    mut regs: Regs,
    mut ptrs: Ptrs,
    frozen: &Frozen<'_>,
) -> Vec<(usize, Regs, Ptrs)> {
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
            ptrs[dst] = pointer_alu(ins, class == BPF_ALU64, ptrs[dst], ptrs[src], operand);
            regs[dst] = alu(ins.code, class == BPF_ALU64, ins.off, regs[dst], operand);
            regs[10] = None;
            vec![(pc + 1, regs, ptrs)]
        }
        BPF_LD if ins.is_ld_imm64() => {
            ptrs[dst] = frozen
                .by_insn
                .get(&pc)
                .map(|&(at, off)| (at, i64::from(off)));
            regs[dst] = match (ins.src(), insns.get(pc + 1)) {
                _ if ptrs[dst].is_some() => None,
                (0, Some(n)) => Some(u64::from(ins.imm as u32) | (u64::from(n.imm as u32) << 32)),
                _ => None,
            };
            let mut out = vec![(pc + 2, regs, ptrs)];
            if ins.src() == insn::PSEUDO_FUNC {
                // A callback's address: the helper that takes it may call it.
                if let Some(t) = jump(i64::from(ins.imm)) {
                    out.push((t, [None; 11], [None; 11]));
                }
            }
            out
        }
        BPF_LD => {
            // Legacy packet loads clobber r0 and the caller-saved registers.
            for r in 0..6 {
                regs[r] = None;
                ptrs[r] = None;
            }
            vec![(pc + 1, regs, ptrs)]
        }
        BPF_LDX => {
            // BPF_MEM of 1, 2, 4 or 8 bytes from frozen memory is known.
            let size = [4, 2, 1, 8][usize::from((ins.code >> 3) & 3)];
            regs[dst] = match ptrs[src] {
                Some((at, off)) if ins.code & 0xe0 == 0x60 => {
                    frozen.read(at, off + i64::from(ins.off), size)
                }
                _ => None,
            };
            ptrs[dst] = None;
            vec![(pc + 1, regs, ptrs)]
        }
        BPF_ST => vec![(pc + 1, regs, ptrs)],
        BPF_STX => {
            if ins.code & 0xe0 == 0xc0 {
                // Atomics may write the source register (fetch) or r0 (cmpxchg).
                (regs[src], ptrs[src]) = (None, None);
                (regs[0], ptrs[0]) = (None, None);
            }
            vec![(pc + 1, regs, ptrs)]
        }
        BPF_JMP | BPF_JMP32 => jump_successors(pc, ins, regs)
            .into_iter()
            .map(|(t, r, clobbered)| {
                let mut p = if clobbered == 11 { [None; 11] } else { ptrs };
                for q in p.iter_mut().take(clobbered.min(6)) {
                    *q = None;
                }
                (t, r, p)
            })
            .collect(),
        _ => vec![(pc + 1, regs, ptrs)],
    }
}

/// A pointer into frozen memory after an ALU instruction on `dst`: moved
/// by `add`/`sub` of a known value, copied by `mov` of a pointer; any other
/// write makes `dst` no pointer.
fn pointer_alu(
    ins: Insn,
    wide: bool,
    dst: Option<(u16, i64)>,
    src: Option<(u16, i64)>,
    operand: Option<u64>,
) -> Option<(u16, i64)> {
    if !wide || ins.off != 0 {
        return None;
    }
    match ins.code & 0xf0 {
        0xb0 if ins.code & BPF_X != 0 => src,
        0x00 => dst
            .zip(operand)
            .map(|((at, off), n)| (at, off.wrapping_add(n as i64))),
        0x10 => dst
            .zip(operand)
            .map(|((at, off), n)| (at, off.wrapping_sub(n as i64))),
        _ => None,
    }
}

/// [`step`] for a jump-class instruction: `ja`, `exit`, calls (bpf-to-bpf
/// calls are followed with unknown registers) and conditional jumps, which
/// take only the way a condition on known values decides. Each successor
/// says how many registers from r0 up it clobbered (6 after a call, 11 at a
/// subprogram's entry, 0 otherwise), for the caller's pointer state.
fn jump_successors(pc: usize, ins: Insn, mut regs: Regs) -> Vec<(usize, Regs, usize)> {
    let class = ins.code & 7;
    let (dst, src) = (
        usize::from(ins.dst()).min(10),
        usize::from(ins.src()).min(10),
    );
    let jump = |off: i64| -> Option<usize> { usize::try_from(pc as i64 + 1 + off).ok() };
    let op = ins.code & 0xf0;
    match op {
        0x00 => {
            // ja (gotol in JMP32 takes its offset from imm).
            let off = if class == BPF_JMP32 {
                i64::from(ins.imm)
            } else {
                i64::from(ins.off)
            };
            jump(off).map(|t| vec![(t, regs, 0)]).unwrap_or_default()
        }
        0x90 => Vec::new(), // exit
        0x80 => {
            let mut out = Vec::new();
            if ins.is_pseudo_call() {
                if let Some(t) = jump(i64::from(ins.imm)) {
                    out.push((t, [None; 11], 11));
                }
            }
            for r in regs.iter_mut().take(6) {
                *r = None;
            }
            out.push((pc + 1, regs, 6));
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
                Some(true) => taken.map(|t| vec![(t, regs, 0)]).unwrap_or_default(),
                Some(false) => vec![(pc + 1, regs, 0)],
                None => {
                    let mut out = vec![(pc + 1, regs, 0)];
                    if let Some(t) = taken {
                        out.push((t, regs, 0));
                    }
                    out
                }
            }
        }
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

/// Every instruction reachable in the control-flow graph, both ways at
/// every branch, stopping at `stops`.
fn cfg_reachable(insns: &[Insn], stops: &HashSet<usize>) -> BTreeSet<usize> {
    let mut seen = vec![false; insns.len()];
    let mut work = vec![0usize];
    let mut hit = BTreeSet::new();
    let frozen = Frozen::default();
    while let Some(pc) = work.pop() {
        if pc >= insns.len() || seen[pc] {
            continue;
        }
        seen[pc] = true;
        hit.insert(pc);
        if stops.contains(&pc) {
            continue;
        }
        let unknown = ([None; 11], [None; 11]);
        work.extend(
            step(insns, pc, unknown.0, unknown.1, &frozen)
                .into_iter()
                .map(|(p, _, _)| p),
        );
    }
    hit
}
