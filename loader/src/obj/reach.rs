//! The reachability pass: which instructions of a linked program a verifier
//! would reach, following only the branch a condition on known constants
//! takes. CO-RE uses it to tell whether a poisoned instruction is dead code
//! behind a guard (`if (bpf_core_field_exists(...))`), so `check` can say
//! whether a program still loads.

use super::opcode::*;
use crate::uapi::{insn, Insn};
use std::collections::{BTreeSet, HashSet};

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
        BPF_JMP | BPF_JMP32 => jump_successors(pc, ins, regs),
        _ => vec![(pc + 1, regs)],
    }
}

/// [`step`] for a jump-class instruction: `ja`, `exit`, calls (bpf-to-bpf
/// calls are followed with unknown registers) and conditional jumps, which
/// take only the way a condition on known values decides.
fn jump_successors(pc: usize, ins: Insn, mut regs: Regs) -> Vec<(usize, Regs)> {
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
