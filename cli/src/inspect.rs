//! `rawbpf inspect OBJ [--json]`: everything the object model read.

use crate::json::Json;
use rawbpf::obj::btf::Btf;
use rawbpf::obj::externs::{describe_type, KCONFIG_SECTION};
use rawbpf::obj::{
    ExternKind, ExternSpec, FunctionSpec, MapOrigin, MapSpec, Pinning, ProgramSpec, RelocTarget,
    Relocation, SlotTarget,
};
use rawbpf::ObjectSpec;
use std::fmt::Write as _;

/// The human-readable report: a summary line, then a section for each
/// part of the object that has something in it.
pub fn text(file: &str, spec: &ObjectSpec) -> String {
    let mut out = String::new();
    summary(&mut out, file, spec);
    programs_section(&mut out, spec);
    subprograms_section(&mut out, spec);
    maps_section(&mut out, spec);
    struct_ops_section(&mut out, spec);
    externs_section(&mut out, spec);
    relocations_section(&mut out, spec);
    btf_section(&mut out, spec);
    out
}

/// `FILE: N programs, N maps, license L[, kernel version V], BTF N types`.
fn summary(out: &mut String, file: &str, spec: &ObjectSpec) {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let _ = writeln!(
        out,
        "{file}: {}, {}, license {}{}{}",
        plural(spec.programs.len(), "program"),
        plural(spec.maps.len(), "map"),
        if spec.license.is_empty() {
            "(none)"
        } else {
            &spec.license
        },
        spec.kernel_version
            .map_or(String::new(), |v| format!(", kernel version {v:#x}")),
        match &spec.btf {
            Some(btf) => format!(", BTF {} types", btf.len() - 1),
            None => ", no BTF".to_owned(),
        },
    );
}

/// PROGRAMS: always printed, empty or not.
fn programs_section(out: &mut String, spec: &ObjectSpec) {
    out.push_str("\nPROGRAMS\n");
    let mut rows = vec![row(&[
        "NAME",
        "SECTION",
        "TYPE",
        "ATTACH",
        "INSNS",
        "SUBPROGRAMS",
    ])];
    for p in &spec.programs {
        rows.push(vec![
            p.name().to_owned(),
            p.section().to_owned(),
            p.prog_type.to_string(),
            p.attach_type.map_or("-".to_owned(), |a| a.to_string()),
            p.function.insns.len().to_string(),
            list_or_dash(&p.subprograms),
        ]);
    }
    table(out, &rows);
}

/// SUBPROGRAMS (.text): the functions programs call.
fn subprograms_section(out: &mut String, spec: &ObjectSpec) {
    if spec.subprograms.is_empty() {
        return;
    }
    out.push_str("\nSUBPROGRAMS (.text)\n");
    let mut rows = vec![row(&["NAME", "LINKAGE", "INSNS"])];
    for f in &spec.subprograms {
        rows.push(vec![
            f.name.clone(),
            if f.global { "global" } else { "static" }.to_owned(),
            f.insns.len().to_string(),
        ]);
    }
    table(out, &rows);
}

/// MAPS, each with its details (BTF types, pinning, data...) under it.
fn maps_section(out: &mut String, spec: &ObjectSpec) {
    if spec.maps.is_empty() {
        return;
    }
    out.push_str("\nMAPS\n");
    let mut rows = vec![row(&[
        "NAME",
        "TYPE",
        "KEY",
        "VALUE",
        "MAX_ENTRIES",
        "FLAGS",
        "ORIGIN",
    ])];
    let mut details = Vec::new();
    for m in &spec.maps {
        rows.push(vec![
            m.name.clone(),
            m.map_type.to_string(),
            m.key_size.to_string(),
            m.value_size.to_string(),
            m.max_entries.to_string(),
            format!("{:#x}", m.flags),
            origin(m.origin).to_owned(),
        ]);
        details.push(map_details(m, spec.btf.as_ref()));
    }
    table_with_details(out, &rows, &details);
}

/// STRUCT_OPS: each struct_ops map, the struct it fills and the program
/// of each function-pointer member.
fn struct_ops_section(out: &mut String, spec: &ObjectSpec) {
    if spec.struct_ops.is_empty() {
        return;
    }
    out.push_str("\nSTRUCT_OPS\n");
    let mut rows = vec![row(&["NAME", "SECTION", "STRUCT", "MEMBERS"])];
    for s in &spec.struct_ops {
        let members: Vec<String> = s
            .members
            .iter()
            .filter_map(|m| Some(format!("{}={}", m.name, m.program.as_deref()?)))
            .collect();
        rows.push(vec![
            s.name.clone(),
            s.section.clone(),
            s.type_name.clone(),
            list_or_dash(&members),
        ]);
    }
    table(out, &rows);
}

/// EXTERNS: kconfig values, ksyms and kfuncs the kernel fills in.
fn externs_section(out: &mut String, spec: &ObjectSpec) {
    if spec.externs.is_empty() {
        return;
    }
    out.push_str("\nEXTERNS\n");
    let mut rows = vec![row(&["NAME", "KIND", "WEAK", "TYPE"])];
    for e in &spec.externs {
        rows.push(vec![
            e.name.clone(),
            extern_kind(e).to_owned(),
            if e.weak { "weak" } else { "-" }.to_owned(),
            extern_type(e, spec.btf.as_ref()),
        ]);
    }
    table(out, &rows);
}

/// Every function of the object: the programs', then the subprograms.
fn functions(spec: &ObjectSpec) -> impl Iterator<Item = &FunctionSpec> {
    spec.programs
        .iter()
        .map(|p| &p.function)
        .chain(&spec.subprograms)
}

/// RELOCATIONS of every function, programs first.
fn relocations_section(out: &mut String, spec: &ObjectSpec) {
    let relocs: Vec<_> = functions(spec)
        .flat_map(|f| f.relocations.iter().map(move |r| (f, r)))
        .collect();
    if relocs.is_empty() {
        return;
    }
    out.push_str("\nRELOCATIONS\n");
    let mut rows = vec![row(&["AT", "INSN", "TARGET"])];
    for (f, r) in relocs {
        let (kind, target) = reloc_text(f, r);
        rows.push(vec![
            format!("{}+{}", f.name, r.insn),
            kind.to_owned(),
            target,
        ]);
    }
    table(out, &rows);
}

/// BTF: the kinds used, func_info and line_info, CO-RE relocations.
fn btf_section(out: &mut String, spec: &ObjectSpec) {
    let Some(btf) = &spec.btf else {
        return;
    };
    let kinds: Vec<_> = btf.kinds_used().iter().map(|k| k.name()).collect();
    let (fi, li) = functions(spec).fold((0, 0), |(a, b), f| {
        (a + f.func_info.len(), b + f.line_info.len())
    });
    let _ = writeln!(
        out,
        "\nBTF\n  {} types: {}\n  func_info {fi}, line_info {li}, CO-RE relocations {}",
        btf.len() - 1,
        kinds.join(" "),
        spec.core_relocations
    );
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}

fn origin(o: MapOrigin) -> &'static str {
    match o {
        MapOrigin::Btf => "btf",
        MapOrigin::Legacy => "legacy",
        MapOrigin::GlobalData => "global_data",
    }
}

fn reloc_text(f: &FunctionSpec, r: &Relocation) -> (&'static str, String) {
    match &r.target {
        RelocTarget::Extern { name } => (insn_kind(f, r), format!("extern {name}")),
        RelocTarget::Map { map } => ("ld_imm64", format!("map {map}")),
        RelocTarget::MapValue { map, offset } => ("ld_imm64", format!("map value {map}+{offset}")),
        RelocTarget::Call { function } => ("call", format!("subprogram {function}")),
        RelocTarget::FuncAddr { function } => ("ld_imm64", format!("address of {function}")),
    }
}

/// `call` or `ld_imm64`: what a relocated instruction is.
fn insn_kind(f: &FunctionSpec, r: &Relocation) -> &'static str {
    if f.insns.get(r.insn).is_some_and(|i| i.is_call()) {
        "call"
    } else {
        "ld_imm64"
    }
}

fn extern_kind(e: &ExternSpec) -> &'static str {
    match e.kind {
        ExternKind::Kconfig { .. } => "kconfig",
        ExternKind::Ksym { .. } => "ksym",
        ExternKind::Kfunc { .. } => "kfunc",
    }
}

/// An extern's type in words: a kconfig value's and where it is in
/// `.kconfig`, a typed ksym's C type, a kfunc's prototype.
fn extern_type(e: &ExternSpec, btf: Option<&Btf>) -> String {
    let c_type = |id| btf.map_or_else(|| format!("[{id}]"), |b| describe_type(b, id));
    match e.kind {
        ExternKind::Kconfig { ty, offset, size } => {
            format!("{} at {KCONFIG_SECTION}+{offset}", ty.describe(size))
        }
        ExternKind::Ksym { typed: Some(id) } => c_type(id),
        ExternKind::Ksym { typed: None } => "typeless (an address from /proc/kallsyms)".into(),
        ExternKind::Kfunc { func_id } => c_type(func_id),
    }
}

fn extern_json(e: &ExternSpec, btf: Option<&Btf>) -> Json {
    let mut fields = vec![
        ("name", e.name.as_str().into()),
        ("kind", extern_kind(e).into()),
        ("weak", e.weak.into()),
        ("btf_id", e.btf_id.into()),
        ("type", extern_type(e, btf).into()),
    ];
    match e.kind {
        ExternKind::Kconfig { ty, offset, size } => fields.extend([
            ("value_type", ty.describe(size).into()),
            ("offset", offset.into()),
            ("size", size.into()),
        ]),
        ExternKind::Ksym { typed } => fields.extend([
            ("typed", typed.is_some().into()),
            ("type_id", Json::opt(typed, Json::from)),
        ]),
        ExternKind::Kfunc { func_id } => fields.push(("func_id", func_id.into())),
    }
    Json::Obj(fields)
}

fn type_name(btf: Option<&Btf>, id: u32) -> Option<String> {
    let btf = btf?;
    if id == 0 {
        return None;
    }
    let name = btf.type_name(id).ok()?;
    Some(if name.is_empty() {
        btf.type_by_id(id).ok()?.kind.name().to_ascii_lowercase()
    } else {
        name.to_owned()
    })
}

/// Indented lines under a map's row: BTF types, pinning, .values, inner map, data.
fn map_details(m: &MapSpec, btf: Option<&Btf>) -> Vec<String> {
    let mut lines = Vec::new();
    let key = type_name(btf, m.btf_key_type_id);
    let value = type_name(btf, m.btf_value_type_id);
    if key.is_some() || value.is_some() {
        let mut parts = Vec::new();
        if let Some(k) = key {
            parts.push(format!("key {k}"));
        }
        if let Some(v) = value {
            parts.push(format!("value {v}"));
        }
        lines.push(format!("btf: {}", parts.join(", ")));
    }
    if m.pinning == Pinning::ByName {
        lines.push("pinning: by name".to_owned());
    }
    if !m.initial_slots.is_empty() {
        let slots: Vec<_> = m
            .initial_slots
            .iter()
            .map(|s| match &s.target {
                SlotTarget::Program(p) => format!("[{}] = {p}", s.index),
                SlotTarget::Map(n) => format!("[{}] = map {n}", s.index),
            })
            .collect();
        lines.push(format!("values: {}", slots.join(", ")));
    }
    if let Some(inner) = &m.inner {
        lines.push(format!(
            "inner: {} {} key {} value {} max_entries {} flags {:#x}",
            inner.name,
            inner.map_type,
            inner.key_size,
            inner.value_size,
            inner.max_entries,
            inner.flags
        ));
    }
    if m.origin == MapOrigin::GlobalData && m.section == KCONFIG_SECTION {
        lines.push(format!(
            "data: {} bytes of __kconfig values, filled in at load time; read-only, frozen after loading",
            m.value_size
        ));
    } else if m.origin == MapOrigin::GlobalData {
        lines.push(match (&m.data, m.is_rodata()) {
            (None, _) => format!("data: {} zero bytes", m.value_size),
            (Some(d), true) => format!("data: {} bytes, read-only, frozen after loading", d.len()),
            (Some(d), false) => format!("data: {} bytes", d.len()),
        });
    }
    lines
}

pub(crate) fn table(out: &mut String, rows: &[Vec<String>]) {
    table_with_details(out, rows, &[]);
}

/// Aligned columns, two spaces apart, indented by two; `details[i]` are lines
/// printed under data row `i` (rows[i + 1]), indented further.
fn table_with_details(out: &mut String, rows: &[Vec<String>], details: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, r) in rows.iter().enumerate() {
        let mut line = String::from(" ");
        for (c, cell) in r.iter().enumerate() {
            let _ = write!(line, " {cell:<w$} ", w = widths[c]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i > 0 {
            for d in details.get(i - 1).into_iter().flatten() {
                let _ = writeln!(out, "      {d}");
            }
        }
    }
}

/// The JSON document.
pub fn json(file: &str, spec: &ObjectSpec) -> Json {
    Json::Obj(vec![
        ("file", file.into()),
        ("license", spec.license.as_str().into()),
        ("kernel_version", Json::opt(spec.kernel_version, Json::from)),
        (
            "programs",
            Json::Arr(spec.programs.iter().map(program_json).collect()),
        ),
        (
            "subprograms",
            Json::Arr(spec.subprograms.iter().map(subprogram_json).collect()),
        ),
        ("maps", Json::Arr(spec.maps.iter().map(map_json).collect())),
        (
            "struct_ops",
            Json::Arr(spec.struct_ops.iter().map(struct_ops_json).collect()),
        ),
        (
            "externs",
            Json::Arr(
                spec.externs
                    .iter()
                    .map(|e| extern_json(e, spec.btf.as_ref()))
                    .collect(),
            ),
        ),
        (
            "btf",
            Json::opt(spec.btf.as_ref(), |b| {
                Json::Obj(vec![
                    ("types", (b.len() - 1).into()),
                    (
                        "kinds",
                        Json::Arr(b.kinds_used().iter().map(|k| k.name().into()).collect()),
                    ),
                ])
            }),
        ),
        ("core_relocations", spec.core_relocations.into()),
    ])
}

/// A struct_ops map: its section, struct, and each function-pointer
/// member's program (null where none).
fn struct_ops_json(s: &rawbpf::obj::StructOpsSpec) -> Json {
    let members = s
        .members
        .iter()
        .filter(|m| m.func_ptr)
        .map(|m| {
            Json::Obj(vec![
                ("member", m.name.as_str().into()),
                ("program", Json::opt(m.program.as_deref(), Json::from)),
            ])
        })
        .collect();
    Json::Obj(vec![
        ("name", s.name.as_str().into()),
        ("section", s.section.as_str().into()),
        ("struct", s.type_name.as_str().into()),
        ("link", Json::Bool(s.is_link())),
        ("members", Json::Arr(members)),
    ])
}

/// A program: its ELF section, type and attach point, then its function.
fn program_json(p: &ProgramSpec) -> Json {
    let mut fields = vec![
        ("name", p.name().into()),
        ("section", p.section().into()),
        ("type", p.prog_type.to_string().into()),
        ("type_id", p.prog_type.0.into()),
        (
            "attach_type",
            Json::opt(p.attach_type, |a| Json::str(a.to_string())),
        ),
        ("prog_flags", p.prog_flags.into()),
        (
            "attach_target",
            Json::opt(p.attach_target.as_deref(), Json::from),
        ),
        (
            "subprograms",
            Json::Arr(p.subprograms.iter().map(|s| s.as_str().into()).collect()),
        ),
    ];
    fields.extend(function_fields(&p.function));
    Json::Obj(fields)
}

/// A subprogram of `.text`: its linkage, then its function.
fn subprogram_json(f: &FunctionSpec) -> Json {
    let mut fields = vec![
        ("name", f.name.as_str().into()),
        ("section", f.section.as_str().into()),
        ("global", f.global.into()),
    ];
    fields.extend(function_fields(f));
    Json::Obj(fields)
}

fn function_fields(f: &FunctionSpec) -> Vec<(&'static str, Json)> {
    vec![
        ("insns", f.insns.len().into()),
        (
            "relocations",
            Json::Arr(f.relocations.iter().map(|r| reloc_json(f, r)).collect()),
        ),
        ("btf_func_id", Json::opt(f.btf_func_id, Json::from)),
        ("func_info", f.func_info.len().into()),
        ("line_info", f.line_info.len().into()),
    ]
}

fn reloc_json(f: &FunctionSpec, r: &Relocation) -> Json {
    let mut fields = vec![
        ("insn", r.insn.into()),
        ("symbol", r.symbol.as_str().into()),
    ];
    match &r.target {
        RelocTarget::Extern { name } => fields.extend([
            ("kind", "extern".into()),
            ("extern", name.as_str().into()),
            ("insn_kind", insn_kind(f, r).into()),
        ]),
        RelocTarget::Map { map } => {
            fields.extend([("kind", "map".into()), ("map", map.as_str().into())])
        }
        RelocTarget::MapValue { map, offset } => fields.extend([
            ("kind", "map_value".into()),
            ("map", map.as_str().into()),
            ("offset", (*offset).into()),
        ]),
        RelocTarget::Call { function } => fields.extend([
            ("kind", "call".into()),
            ("function", function.as_str().into()),
        ]),
        RelocTarget::FuncAddr { function } => fields.extend([
            ("kind", "func_addr".into()),
            ("function", function.as_str().into()),
        ]),
    }
    Json::Obj(fields)
}

fn map_json(m: &MapSpec) -> Json {
    Json::Obj(vec![
        ("name", m.name.as_str().into()),
        ("type", m.map_type.to_string().into()),
        ("type_id", m.map_type.0.into()),
        ("origin", origin(m.origin).into()),
        ("section", m.section.as_str().into()),
        ("key_size", m.key_size.into()),
        ("value_size", m.value_size.into()),
        ("max_entries", m.max_entries.into()),
        ("flags", m.flags.into()),
        ("numa_node", m.numa_node.into()),
        ("map_extra", m.map_extra.into()),
        (
            "pinning",
            match m.pinning {
                Pinning::None => "none",
                Pinning::ByName => "by_name",
            }
            .into(),
        ),
        ("btf_key_type_id", m.btf_key_type_id.into()),
        ("btf_value_type_id", m.btf_value_type_id.into()),
        ("inner", Json::opt(m.inner.as_deref(), map_json)),
        (
            "values",
            Json::Arr(
                m.initial_slots
                    .iter()
                    .map(|s| {
                        let (k, v) = match &s.target {
                            SlotTarget::Program(p) => ("program", p),
                            SlotTarget::Map(n) => ("map", n),
                        };
                        Json::Obj(vec![("index", s.index.into()), (k, v.as_str().into())])
                    })
                    .collect(),
            ),
        ),
        ("data_len", Json::opt(m.data.as_ref(), |d| d.len().into())),
        ("rodata", m.is_rodata().into()),
    ])
}
