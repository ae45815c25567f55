//! `rawbpf inspect` as a user runs it: exit codes, what the table shows, and
//! the `--json` document, parsed.

mod support;

use support::{json, obj, rawbpf, stderr, stdout, TempFile, OBJ_DIR};

#[test]
fn table_shows_the_pipeline() {
    let o = rawbpf(&["inspect", &obj("pipeline.bpf.o")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let line = |start: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("mark_packet "),
        ["mark_packet", "tc", "sched_cls", "-", "48", "-"]
    );
    assert_eq!(
        line("inspect_and_drop "),
        ["inspect_and_drop", "tc", "sched_cls", "-", "18", "-"]
    );
    assert_eq!(
        line("prog_array "),
        ["prog_array", "prog_array", "4", "4", "2", "0x0", "btf"]
    );
    assert!(
        out.contains("values: [0] = mark_packet, [1] = inspect_and_drop"),
        "{out}"
    );
    assert_eq!(
        line("mark_packet+"),
        ["mark_packet+40", "ld_imm64", "map", "prog_array"]
    );
    assert!(out.lines().all(|l| l == l.trim_end()), "trailing spaces");
}

#[test]
fn json_has_the_same_facts() {
    let o = rawbpf(&["inspect", &obj("pipeline.bpf.o"), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = json::parse(&stdout(&o)).expect("valid JSON");
    let programs = doc.get("programs").array();
    assert_eq!(programs.len(), 2);
    for (p, name) in programs.iter().zip(["mark_packet", "inspect_and_drop"]) {
        assert_eq!(p.get("name").str(), name);
        assert_eq!(p.get("type").str(), "sched_cls");
        assert_eq!(p.get("section").str(), "tc");
    }
    let relocs = programs[0].get("relocations").array();
    assert_eq!(relocs.len(), 1);
    assert_eq!(relocs[0].get("kind").str(), "map");
    assert_eq!(relocs[0].get("map").str(), "prog_array");
    assert_eq!(relocs[0].get("insn").num(), 40);

    let maps = doc.get("maps").array();
    assert_eq!(maps.len(), 1);
    let m = &maps[0];
    assert_eq!(m.get("name").str(), "prog_array");
    assert_eq!(m.get("type").str(), "prog_array");
    assert_eq!(
        (
            m.get("key_size").num(),
            m.get("value_size").num(),
            m.get("max_entries").num()
        ),
        (4, 4, 2)
    );
    let values = m.get("values").array();
    assert_eq!(values[0].get("index").num(), 0);
    assert_eq!(values[0].get("program").str(), "mark_packet");
    assert_eq!(values[1].get("index").num(), 1);
    assert_eq!(values[1].get("program").str(), "inspect_and_drop");
    assert_eq!(doc.get("license").str(), "GPL");
}

#[test]
fn every_committed_object_inspects() {
    for entry in std::fs::read_dir(OBJ_DIR).unwrap() {
        let path = entry.unwrap().path();
        let path = path.to_str().unwrap();
        for json in [false, true] {
            let args: &[&str] = if json {
                &["inspect", path, "--json"]
            } else {
                &["inspect", path]
            };
            let o = rawbpf(args);
            assert_eq!(o.status.code(), Some(0), "{path}: {}", stderr(&o));
            if json {
                json::parse(&stdout(&o)).unwrap_or_else(|e| panic!("{path}: {e}"));
            }
        }
    }
}

#[test]
fn errors_name_the_file_and_exit_1() {
    let o = rawbpf(&["inspect", "/nonexistent/x.bpf.o"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("rawbpf: /nonexistent/x.bpf.o: "),
        "{}",
        stderr(&o)
    );

    let f = TempFile::new("notelf", b"#!/bin/sh\n");
    let o = rawbpf(&["inspect", f.0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim_end(),
        format!(
            "rawbpf: {}: not an ELF file (no \\x7fELF magic at offset 0)",
            f.0.display()
        )
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["inspect"],
        &["inspect", "a", "b"],
        &["inspect", "x.o", "--jsn"],
        &["frob"],
    ] {
        let o = rawbpf(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("Try 'rawbpf --help'"), "{args:?}");
    }
    assert!(stderr(&rawbpf(&["inspect", "x.o", "--jsn"])).contains("unknown option '--jsn'"));
    // A short option is an option too, not a file name.
    for args in [
        &["inspect", "-x"][..],
        &["inspect", "x.o", "-j"],
        &["help", "frob"],
    ] {
        let o = rawbpf(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(args.last().unwrap()), "{args:?}");
    }
}

#[test]
fn closed_stdout_is_not_a_crash() {
    use std::process::{Command, Stdio};
    for json in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rawbpf"));
        cmd.args(["inspect", &obj("map_types.bpf.o")]);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run rawbpf");
        // Like `rawbpf inspect OBJ | head -0`: the reader is gone before
        // (or while) rawbpf writes.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(o.stderr.is_empty(), "{}", stderr(&o));
    }
}

#[test]
fn help_lists_every_command() {
    let o = rawbpf(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    for c in [
        "inspect", "load", "run", "attach", "detach", "list", "swap", "probe", "check", "demo",
    ] {
        assert!(
            stdout(&o).contains(&format!("rawbpf {c}")),
            "{c} missing from --help"
        );
    }
    for args in [
        &["inspect", "-h"][..],
        &["-h", "inspect"],
        &["help", "inspect"],
    ] {
        let o = rawbpf(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(
            stdout(&o).starts_with("usage: rawbpf inspect OBJ [--json]"),
            "{args:?}: {}",
            stdout(&o)
        );
    }
    let o = rawbpf(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("rawbpf "), "{}", stdout(&o));
    let o = rawbpf(&["attach", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).starts_with("usage: rawbpf attach OBJ --dev IFACE"),
        "{}",
        stdout(&o)
    );
}

/// Externs are listed with their kind, weakness and type, in the table and
/// in `--json`; kconfig values with their place in the `.kconfig` map.
#[test]
fn externs_are_listed() {
    let o = rawbpf(&["inspect", &obj("kconfig.bpf.o")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let line = |start: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert!(out.contains("\nEXTERNS\n"), "{out}");
    assert_eq!(
        line("CONFIG_HZ "),
        ["CONFIG_HZ", "kconfig", "-", "s32", "at", ".kconfig+8"]
    );
    assert_eq!(
        line("CONFIG_DEFAULT_HOSTNAME "),
        [
            "CONFIG_DEFAULT_HOSTNAME",
            "kconfig",
            "weak",
            "char[16]",
            "at",
            ".kconfig+27"
        ]
    );
    assert_eq!(
        line(".kconfig "),
        [".kconfig", "array", "4", "43", "1", "0x80", "global_data"]
    );
    assert_eq!(
        line("copy_kconfig+59 "),
        ["copy_kconfig+59", "ld_imm64", "map", "value", ".kconfig+8"]
    );

    let o = rawbpf(&["inspect", &obj("kfuncs.bpf.o")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let line = |start: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("bpf_task_from_pid "),
        [
            "bpf_task_from_pid",
            "kfunc",
            "-",
            "struct",
            "task_struct",
            "*",
            "(__s32)"
        ]
    );
    assert_eq!(
        line("rawbpf_no_such_kfunc "),
        ["rawbpf_no_such_kfunc", "kfunc", "weak", "void", "(void)"]
    );
    assert_eq!(line("bpf_prog_put ")[..3], ["bpf_prog_put", "ksym", "-"]);
    assert_eq!(
        line("find_kthreadd+1 "),
        ["find_kthreadd+1", "call", "extern", "bpf_task_from_pid"]
    );

    let o = rawbpf(&["inspect", &obj("kfuncs.bpf.o"), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = json::parse(&stdout(&o)).expect("valid JSON");
    let externs = doc.get("externs").array();
    let names: Vec<&str> = externs.iter().map(|e| e.get("name").str()).collect();
    assert_eq!(
        names,
        [
            "bpf_prog_put",
            "bpf_task_from_pid",
            "bpf_task_release",
            "rawbpf_no_such_kfunc",
            "rawbpf_no_such_symbol"
        ]
    );
    let from_pid = &externs[1];
    assert_eq!(from_pid.get("kind").str(), "kfunc");
    assert_eq!(from_pid.get("weak"), &json::Value::Bool(false));
    assert_eq!(from_pid.get("type").str(), "struct task_struct * (__s32)");
    assert_eq!(externs[3].get("weak"), &json::Value::Bool(true));
    assert_eq!(externs[0].get("kind").str(), "ksym");
    assert_eq!(externs[0].get("typed"), &json::Value::Bool(false));
    let reloc = &doc.get("programs").array()[0].get("relocations").array()[0];
    assert_eq!(reloc.get("kind").str(), "extern");
    assert_eq!(reloc.get("extern").str(), "bpf_task_from_pid");
    assert_eq!(reloc.get("insn_kind").str(), "call");

    let o = rawbpf(&["inspect", &obj("kconfig.bpf.o"), "--json"]);
    let doc = json::parse(&stdout(&o)).expect("valid JSON");
    let hz = doc
        .get("externs")
        .array()
        .iter()
        .find(|e| e.get("name").str() == "CONFIG_HZ")
        .expect("CONFIG_HZ");
    assert_eq!(hz.get("kind").str(), "kconfig");
    assert_eq!(hz.get("value_type").str(), "s32");
    assert_eq!((hz.get("offset").num(), hz.get("size").num()), (8, 4));
}

/// The malformed-input corpus (`tests/data/malformed/`, made and checked
/// against the library by loader/tests/malformed_corpus.rs) as the user sees
/// it: `rawbpf inspect FILE` exits 1 with `rawbpf: FILE: TEXT`, TEXT from
/// the corpus's `EXPECTED` (`file<TAB>text` per line).
#[test]
fn inspect_prints_the_error() {
    let corpus = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/malformed"
    ));
    let manifest = std::fs::read_to_string(corpus.join("EXPECTED")).unwrap();
    let mut wrong = Vec::new();
    for line in manifest.lines() {
        let (name, want) = line.split_once('\t').expect("EXPECTED: file<TAB>text");
        let path = corpus.join(name);
        let o = rawbpf(&["inspect", path.to_str().unwrap()]);
        let stderr = stderr(&o);
        let line = format!("rawbpf: {}: {want}\n", path.display());
        if o.status.code() != Some(1) || stderr != line || !o.stdout.is_empty() {
            wrong.push(format!(
                "{name}: exit {:?}, stderr {stderr:?}, expected {line:?}",
                o.status.code()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
