//! Relocations of code: which instruction refers to which map, global-data
//! offset or `.text` function. Nothing is patched here; the loader applies
//! them once it has fds.

use super::elf::{Elf, RelEntry, Symbol};
use super::externs::{ExternKind, Externs, KCONFIG_SECTION};
use super::maps::{is_data_section, Maps};
use super::programs::Functions;
use super::ParseError;
use super::{FunctionSpec, RelocTarget, Relocation};
use crate::uapi::insn::{PSEUDO_FUNC, SIZE as INSN_SIZE};
use crate::uapi::Insn;
use std::collections::HashSet;

/// `R_BPF_NONE`.
const R_BPF_NONE: u32 = 0;
/// `R_BPF_64_64`: the 64-bit immediate of an `ld_imm64`.
const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_32`: the 32-bit pc-relative immediate of a `call`.
const R_BPF_64_32: u32 = 10;

/// Fills in every function's relocations: those the ELF lists, then the
/// bpf-to-bpf calls inside a section, which clang resolves itself and leaves
/// without a relocation entry.
pub(super) fn collect(
    elf: &Elf<'_>,
    functions: &mut Functions,
    maps: &Maps,
    externs: &Externs,
) -> Result<(), ParseError> {
    // (function, instruction) pairs already relocated: a duplicate is an
    // error, found without scanning the function's earlier relocations.
    let mut relocated: HashSet<(usize, usize)> = HashSet::new();
    for (target, entries) in &elf.rels {
        let Some(section) = elf.section(*target).filter(|s| s.is_code()) else {
            continue;
        };
        for rel in entries {
            if rel.r_type == R_BPF_NONE {
                continue;
            }
            let Some((f, relocation)) =
                code_relocation(elf, functions, maps, externs, *target, rel)?
            else {
                continue;
            };
            if !relocated.insert((f, relocation.insn)) {
                return Err(ParseError::BadRelocation {
                    section: section.name.to_owned(),
                    offset: rel.offset,
                    symbol: relocation.symbol,
                    reason: "a second relocation for the same instruction".into(),
                });
            }
            functions.list[f].spec.relocations.push(relocation);
        }
    }
    local_calls(functions)?;
    for f in &mut functions.list {
        f.spec.relocations.sort_by_key(|r| r.insn);
    }
    Ok(())
}

/// One relocation entry of a code section: returns the function it lands in
/// and what it refers to, or `None` if no function covers it (libbpf skips
/// those too: an overridden weak function leaves such entries behind).
fn code_relocation(
    elf: &Elf<'_>,
    functions: &Functions,
    maps: &Maps,
    externs: &Externs,
    section_index: usize,
    rel: &RelEntry,
) -> Result<Option<(usize, Relocation)>, ParseError> {
    let section_name = elf.section_name(section_index);
    let sym = elf
        .symbols
        .get(rel.sym as usize)
        .filter(|_| rel.sym != 0)
        .ok_or_else(|| ParseError::UnknownRelocationSymbol {
            section: section_name.to_owned(),
            offset: rel.offset,
            index: rel.sym,
            count: elf.symbols.len(),
        })?;
    let section_insns = elf.section(section_index).map_or(0, |s| s.size) / INSN_SIZE as u64;
    if !rel.offset.is_multiple_of(INSN_SIZE as u64)
        || rel.offset / INSN_SIZE as u64 >= section_insns
    {
        return Err(ParseError::BadRelocation {
            section: section_name.to_owned(),
            offset: rel.offset,
            symbol: sym.name.to_owned(),
            reason: format!(
                "offset is not an instruction of the section ({section_insns} instructions)"
            ),
        });
    }
    let section_insn = (rel.offset / INSN_SIZE as u64) as usize;
    let Some(f) = functions.containing(section_index, section_insn) else {
        return Ok(None);
    };
    let func = &functions.list[f].spec;
    let insn_idx = section_insn - func.section_offset;
    let site = RelocSite {
        elf,
        functions,
        section_name,
        rel,
        sym,
        func,
        insn_idx,
        insn: func.insns[insn_idx],
    };
    let target = if sym.undefined {
        let target = extern_target(externs, &site)?;
        if site.insn.is_ld_imm64() {
            site.check_second_half()?;
        }
        target
    } else if site.insn.is_call() {
        call_target(&site)?
    } else if site.insn.is_ld_imm64() {
        ld_imm64_target(&site, maps)?
    } else {
        return Err(site.bad(format!(
            "instruction {insn_idx} of {} (opcode {:#04x}) is neither ld_imm64 nor call",
            func.name, site.insn.code
        )));
    };
    Ok(Some((
        f,
        Relocation {
            insn: insn_idx,
            symbol: sym.name.to_owned(),
            target,
        },
    )))
}

/// The instruction a relocation entry lands on, and what the entry says:
/// what the functions that work out its target need, and their messages.
struct RelocSite<'a, 'd> {
    elf: &'a Elf<'d>,
    functions: &'a Functions,
    section_name: &'d str,
    rel: &'a RelEntry,
    sym: &'a Symbol<'d>,
    func: &'a FunctionSpec,
    /// The instruction's index in `func`.
    insn_idx: usize,
    insn: Insn,
}

impl RelocSite<'_, '_> {
    fn bad(&self, reason: String) -> ParseError {
        ParseError::BadRelocation {
            section: self.section_name.to_owned(),
            offset: self.rel.offset,
            symbol: self.sym.name.to_owned(),
            reason,
        }
    }

    /// The entry's type is not `expected`.
    fn wrong_type(&self, expected: &'static str) -> ParseError {
        wrong_type(self.section_name, self.rel, expected)
    }

    fn check_second_half(&self) -> Result<(), ParseError> {
        if self.insn_idx + 1 >= self.func.insns.len() {
            return Err(self.bad(format!(
                "the ld_imm64 at instruction {} of {} has no second half",
                self.insn_idx, self.func.name
            )));
        }
        Ok(())
    }

    /// The `.text` function starting at instruction `target` of `.text`.
    fn text_function(&self, target: Option<i64>) -> Result<String, ParseError> {
        text_function(
            self.elf,
            self.functions,
            self.sym,
            target,
            &self.func.name,
            self.insn_idx,
        )
    }
}

/// A bpf-to-bpf call relocated against a `.text` function.
fn call_target(site: &RelocSite<'_, '_>) -> Result<RelocTarget, ParseError> {
    let (sym, insn) = (site.sym, site.insn);
    if site.rel.r_type != R_BPF_64_32 {
        return Err(site.wrong_type("R_BPF_64_32 (10) on a call"));
    }
    if !insn.is_pseudo_call() {
        return Err(site.bad(format!(
            "the call at instruction {} of {} is not a bpf-to-bpf call (src_reg {})",
            site.insn_idx,
            site.func.name,
            insn.src()
        )));
    }
    // For a global callee `imm` is -1 and the symbol is the function; for
    // a static one the symbol is the section and `imm` the distance.
    let target = i64::try_from(sym.value / INSN_SIZE as u64)
        .ok()
        .and_then(|v| v.checked_add(i64::from(insn.imm) + 1));
    Ok(RelocTarget::Call {
        function: site.text_function(target)?,
    })
}

/// An `ld_imm64` of a defined symbol: a callback's address, a map, or an
/// address in a global-data map.
fn ld_imm64_target(site: &RelocSite<'_, '_>, maps: &Maps) -> Result<RelocTarget, ParseError> {
    let (sym, insn) = (site.sym, site.insn);
    if site.rel.r_type != R_BPF_64_64 {
        return Err(site.wrong_type("R_BPF_64_64 (1) on an ld_imm64"));
    }
    site.check_second_half()?;
    let Some(target_section) = sym.section.and_then(|s| site.elf.section(s)) else {
        return Err(site.bad("the symbol is not defined in any section".into()));
    };
    // clang writes a callback's address (`bpf_loop(n, cb, ...)`) as an
    // ld_imm64 with src_reg 0 relocated against the .text function (or
    // the .text section symbol plus imm bytes); the loader marks it
    // BPF_PSEUDO_FUNC, as libbpf does.
    if target_section.name == ".text" {
        let byte = sym.value.checked_add_signed(i64::from(insn.imm));
        let target = byte
            .filter(|b| b.is_multiple_of(INSN_SIZE as u64))
            .and_then(|b| i64::try_from(b / INSN_SIZE as u64).ok());
        return Ok(RelocTarget::FuncAddr {
            function: site.text_function(target)?,
        });
    }
    if target_section.name == ".maps" || target_section.name == "maps" {
        let map = maps
            .defined_at(target_section.index, sym.value)
            .ok_or_else(|| {
                site.bad(format!(
                    "no map definition starts at offset {} of section {}",
                    sym.value, target_section.name
                ))
            })?;
        return Ok(RelocTarget::Map {
            map: map.name.clone(),
        });
    }
    if !is_data_section(target_section) {
        return Err(site.bad(format!(
            "the symbol is in section {}, which holds no map, global data or .text function",
            target_section.name
        )));
    }
    let map = maps.data_map(target_section.index).ok_or_else(|| {
        site.bad(format!(
            "section {} is not a global-data map",
            target_section.name
        ))
    })?;
    let offset = sym
        .value
        .checked_add_signed(i64::from(insn.imm))
        .filter(|&o| o < target_section.size)
        .and_then(|o| u32::try_from(o).ok())
        .ok_or_else(|| {
            site.bad(format!(
                "offset {} + {} lies outside section {} ({} bytes)",
                sym.value, insn.imm, target_section.name, target_section.size
            ))
        })?;
    Ok(RelocTarget::MapValue {
        map: map.name.clone(),
        offset,
    })
}

/// A relocation against an extern: a kfunc `call`, an `ld_imm64` of a ksym
/// or kfunc (filled in at load time), or an `ld_imm64` of a kconfig value,
/// which is an address in the `.kconfig` map.
fn extern_target(externs: &Externs, site: &RelocSite<'_, '_>) -> Result<RelocTarget, ParseError> {
    let insn = site.insn;
    let Some(ext) = externs.get(site.sym.name) else {
        return Err(site.bad(
            "the symbol is undefined, and not an extern (__kconfig, __ksym) the object's BTF declares"
                .into(),
        ));
    };
    let name = ext.name.clone();
    if insn.is_call() {
        if site.rel.r_type != R_BPF_64_32 {
            return Err(site.wrong_type("R_BPF_64_32 (10) on a call"));
        }
        if !matches!(ext.kind, ExternKind::Kfunc { .. }) {
            return Err(site.bad(format!(
                "a call of extern {name}, which is a variable, not a kfunc"
            )));
        }
        return Ok(RelocTarget::Extern { name });
    }
    if !insn.is_ld_imm64() {
        return Err(site.bad(format!(
            "extern {name} is used by an instruction (opcode {:#04x}) that is neither ld_imm64 nor call",
            insn.code
        )));
    }
    if site.rel.r_type != R_BPF_64_64 {
        return Err(site.wrong_type("R_BPF_64_64 (1) on an ld_imm64"));
    }
    match ext.kind {
        ExternKind::Kconfig { offset, size, .. } => {
            // libbpf ignores the immediate; a non-zero one (an address
            // inside the value) is honoured if it stays inside it.
            let inside = i64::from(insn.imm) >= 0 && i64::from(insn.imm) < i64::from(size);
            if !inside {
                return Err(site.bad(format!(
                    "offset {} lies outside kconfig value {name} ({size} bytes)",
                    insn.imm
                )));
            }
            Ok(RelocTarget::MapValue {
                map: KCONFIG_SECTION.to_owned(),
                offset: offset + insn.imm as u32,
            })
        }
        ExternKind::Ksym { .. } | ExternKind::Kfunc { .. } => Ok(RelocTarget::Extern { name }),
    }
}

fn wrong_type(section: &str, rel: &RelEntry, expected: &'static str) -> ParseError {
    ParseError::UnknownRelocationType {
        section: section.to_owned(),
        offset: rel.offset,
        r_type: rel.r_type,
        expected,
    }
}

/// The `.text` function that starts at instruction `target` of `.text`, for a
/// call or callback relocated against `sym`.
fn text_function(
    elf: &Elf<'_>,
    functions: &Functions,
    sym: &Symbol<'_>,
    target: Option<i64>,
    caller: &str,
    insn: usize,
) -> Result<String, ParseError> {
    let in_text = sym
        .section
        .and_then(|s| elf.section(s))
        .filter(|s| s.name == ".text");
    let Some(text) = in_text else {
        return Err(ParseError::BadCall {
            function: caller.to_owned(),
            insn,
            target: format!(
                "{} in section {}; only .text functions can be called",
                sym.name,
                sym.section.map_or("(none)", |s| elf.section_name(s))
            ),
        });
    };
    target
        .and_then(|t| usize::try_from(t).ok())
        .and_then(|t| functions.starting_at(text.index, t))
        .map(|f| functions.list[f].spec.name.clone())
        .ok_or_else(|| ParseError::BadCall {
            function: caller.to_owned(),
            insn,
            target: format!(
                ".text instruction {}, where no function starts",
                target.map_or_else(|| "(overflow)".to_owned(), |t| t.to_string())
            ),
        })
}

/// Calls with no relocation entry: clang resolved them inside one section,
/// so `imm` is relative to the call. Only `.text` functions may be called.
fn local_calls(functions: &mut Functions) -> Result<(), ParseError> {
    let mut found: Vec<(usize, Relocation)> = Vec::new();
    for (fi, f) in functions.list.iter().enumerate() {
        let spec = &f.spec;
        let relocated: HashSet<usize> = spec.relocations.iter().map(|r| r.insn).collect();
        for (i, insn) in spec.insns.iter().enumerate() {
            let pseudo_func = insn.is_ld_imm64() && insn.src() == PSEUDO_FUNC;
            if !(insn.is_pseudo_call() || pseudo_func) || relocated.contains(&i) {
                continue;
            }
            let err = |target: String| ParseError::BadCall {
                function: spec.name.clone(),
                insn: i,
                target,
            };
            if pseudo_func {
                return Err(err("a function address with no relocation entry".into()));
            }
            let target = (spec.section_offset + i) as i64 + i64::from(insn.imm) + 1;
            let callee = usize::try_from(target)
                .ok()
                .and_then(|t| functions.starting_at(f.section_index, t))
                .ok_or_else(|| {
                    err(format!(
                        "instruction {target} of section {}, where no function starts",
                        spec.section
                    ))
                })?;
            if f.program.is_some() && functions.list[callee].program.is_some() {
                return Err(err(format!(
                    "program {} in the same section; only .text functions can be called",
                    functions.list[callee].spec.name
                )));
            }
            let name = functions.list[callee].spec.name.clone();
            found.push((
                fi,
                Relocation {
                    insn: i,
                    symbol: name.clone(),
                    target: RelocTarget::Call { function: name },
                },
            ));
        }
    }
    for (fi, r) in found {
        functions.list[fi].spec.relocations.push(r);
    }
    Ok(())
}
