//! Loading into the real kernel, through the CLI and the library: return
//! codes, packets, map contents and error text, as a user would check them.
//! Needs root (skips with a reason otherwise; under CI=true a skip fails).

mod support;

use rawbpf::load::{Collection, LoadOptions, TailSlot};
use rawbpf::packet::{ipv4_checksum, ipv4_udp_frame};
use rawbpf::{LoadError, ObjectSpec};
use support::{kernel, obj, rawbpf, rawbpf_json, stderr, BpffsDir, TempFile};

fn load(name: &str, tails: &[&str]) -> Result<Collection, LoadError> {
    let spec = ObjectSpec::from_file(obj(name)).unwrap();
    let mut opts = LoadOptions::for_file(std::path::Path::new(name));
    opts.tails = tails
        .iter()
        .map(|t| {
            let (map, rest) = t.split_once(':').unwrap();
            let (key, prog) = rest.split_once('=').unwrap();
            TailSlot {
                map: map.into(),
                key: key.parse().unwrap(),
                program: (!prog.is_empty()).then(|| prog.into()),
            }
        })
        .collect();
    Collection::load(&spec, &opts)
}

fn retval(c: &Collection, prog: &str, frame: &[u8]) -> u32 {
    c.program(prog).unwrap().test_run(frame, 1).unwrap().retval
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn u64_le(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap())
}

/// The shipped chain through `rawbpf run --json`: an IPv4 frame is marked
/// (TOS bit 0x01 with a valid checksum) and then dropped by stage 2.
#[test]
fn pipeline_marks_and_drops() {
    if !kernel("pipeline_marks_and_drops") {
        return;
    }
    let doc = rawbpf_json(&[
        "run",
        &obj("pipeline.bpf.o"),
        "--prog",
        "mark_packet",
        "--json",
    ]);
    assert_eq!(doc.get("prog").str(), "mark_packet");
    assert_eq!(doc.get("retval").num(), 2, "TC_ACT_SHOT");
    assert_eq!(doc.get("repeat").num(), 1);
    let out = unhex(doc.get("data_out").str());
    assert_eq!(out.len(), 64);
    let ip = &out[14..34];
    assert_eq!(ip[1] & 0x01, 0x01, "TOS bit set");
    assert_eq!(
        u16::from_be_bytes([ip[10], ip[11]]),
        ipv4_checksum(ip),
        "IPv4 checksum fixed"
    );
    // Everything but TOS and checksum is the frame that went in.
    let mut expect = ipv4_udp_frame(0x01);
    expect[24..26].copy_from_slice(&out[24..26]);
    assert_eq!(out, expect);
}

/// With slot 1 left empty the tail call returns and the marked frame passes.
#[test]
fn empty_slot_falls_through() {
    if !kernel("empty_slot_falls_through") {
        return;
    }
    let doc = rawbpf_json(&[
        "run",
        &obj("pipeline.bpf.o"),
        "--prog",
        "mark_packet",
        "--tail",
        "prog_array:1=",
        "--json",
    ]);
    assert_eq!(doc.get("retval").num(), 0, "TC_ACT_OK");
    let out = unhex(doc.get("data_out").str());
    assert_eq!(out[15] & 0x01, 0x01, "still marked");
    let prog_array = doc.get("maps");
    assert_eq!(prog_array, &support::json::Value::Obj(vec![]));
}

#[test]
fn non_ipv4_frames_pass() {
    if !kernel("non_ipv4_frames_pass") {
        return;
    }
    let mut frame = ipv4_udp_frame(0);
    frame[12..14].copy_from_slice(&0x86ddu16.to_be_bytes()); // IPv6 ethertype
    let f = TempFile::new("ipv6-frame", &frame);
    for prog in ["mark_packet", "inspect_and_drop"] {
        let doc = rawbpf_json(&[
            "run",
            &obj("pipeline.bpf.o"),
            "--prog",
            prog,
            "--data-in",
            f.path(),
            "--json",
        ]);
        assert_eq!(doc.get("retval").num(), 0, "{prog}");
        assert_eq!(
            unhex(doc.get("data_out").str()),
            frame,
            "{prog} left the frame alone"
        );
    }
    // A frame already marked is dropped by stage 2 alone.
    let c = load("pipeline.bpf.o", &[]).unwrap();
    assert_eq!(retval(&c, "inspect_and_drop", &ipv4_udp_frame(1)), 2);
    assert_eq!(retval(&c, "inspect_and_drop", &ipv4_udp_frame(0)), 0);
}

/// The same facts for the objects built with -mcpu=v1 and v2.
#[test]
fn pipeline_variants() {
    if !kernel("pipeline_variants") {
        return;
    }
    for name in ["pipeline.v1.bpf.o", "pipeline.v2.bpf.o"] {
        let c = load(name, &[]).unwrap();
        assert_eq!(retval(&c, "mark_packet", &ipv4_udp_frame(0)), 2, "{name}");
        let c = load(name, &["prog_array:1="]).unwrap();
        assert_eq!(retval(&c, "mark_packet", &ipv4_udp_frame(0)), 0, "{name}");
    }
}

#[test]
fn bpf2bpf_calls_with_tail_calls() {
    if !kernel("bpf2bpf_calls_with_tail_calls") {
        return;
    }
    let c = load("bpf2bpf_tail.bpf.o", &[]).unwrap();
    let frame = ipv4_udp_frame(0);
    for (prog, want) in [
        ("entry", 11),
        ("entry_missing", 107),
        ("stage_a", 42),
        ("stage_b", 11),
    ] {
        assert_eq!(retval(&c, prog, &frame), want, "{prog}");
    }
    // Rewire slot 1 to stage_a: the tail call from the subprogram follows.
    let c = load("bpf2bpf_tail.bpf.o", &["jmp_table:1=stage_a"]).unwrap();
    assert_eq!(retval(&c, "entry", &frame), 42);
    let c = load("bpf2bpf_tail.bpf.o", &["jmp_table:1="]).unwrap();
    assert_eq!(retval(&c, "entry", &frame), 7);
}

#[test]
fn tail_call_limit() {
    if !kernel("tail_call_limit") {
        return;
    }
    let doc = rawbpf_json(&[
        "run",
        &obj("tail_chain.bpf.o"),
        "--prog",
        "chain_step",
        "--dump",
        ".bss",
        "--json",
    ]);
    // Since 5.17 the kernel allows 33 tail calls (34 runs); before, 32 (33 runs).
    let runs = doc.get("retval").num();
    assert!(
        runs == 34 || runs == 33,
        "the chain stops at the kernel's limit, not {runs}"
    );
    let bss = doc.get("maps").get(".bss").array();
    assert_eq!(
        u64_le(&unhex(bss[0].get("value").str())),
        runs,
        "every run counted"
    );
}

/// Global data: counters in .bss and .data move, .rodata configures and is frozen.
#[test]
fn global_data() {
    if !kernel("global_data") {
        return;
    }
    let doc = rawbpf_json(&[
        "run",
        &obj("global_data.bpf.o"),
        "--prog",
        "count_and_verdict",
        "--repeat",
        "5",
        "--dump",
        ".bss",
        "--dump",
        "global_data.data",
        "--json",
    ]);
    assert_eq!(doc.get("retval").num(), 3, "cfg_verdict from .rodata");
    assert_eq!(doc.get("repeat").num(), 5);
    let maps = doc.get("maps");
    let bss = unhex(maps.get(".bss").array()[0].get("value").str());
    assert_eq!(u64_le(&bss[0..]), 5, "bss_runs");
    assert_eq!(u64_le(&bss[8..]), 5 * 64, "bss_bytes");
    assert_eq!(u64_le(&bss[16..]), 5, "local_runs (static)");
    let data = unhex(maps.get("global_data.data").array()[0].get("value").str());
    assert_eq!(data, 10u32.to_le_bytes(), "data_counter 5 + 5 runs");

    let c = load("global_data.bpf.o", &[]).unwrap();
    let rodata = c.map(".rodata").unwrap();
    assert_eq!(
        rodata.lookup(&0u32.to_le_bytes()).unwrap().unwrap(),
        [3, 0, 0, 0, 1, 0, 0, 0]
    );
    let err = rodata.update(&0u32.to_le_bytes(), &[9; 8]).unwrap_err();
    assert!(
        err.to_string().contains("Operation not permitted"),
        "frozen: {err}"
    );
}

#[test]
fn legacy_maps_with_and_without_btf() {
    if !kernel("legacy_maps_with_and_without_btf") {
        return;
    }
    for name in ["legacy_maps.bpf.o", "legacy_maps.nobtf.bpf.o"] {
        let c = load(name, &[]).unwrap();
        c.map("legacy_config")
            .unwrap()
            .update(&0u32.to_le_bytes(), &7u32.to_le_bytes())
            .unwrap();
        let frame = ipv4_udp_frame(0);
        assert_eq!(retval(&c, "legacy_count", &frame), 7, "{name}");
        assert_eq!(retval(&c, "legacy_count", &frame), 7, "{name}");
        let counts = c.map("legacy_counts").unwrap().entries().unwrap();
        assert_eq!(counts.len(), 1, "{name}: one protocol seen");
        assert_eq!(u64_le(&counts[0].1), 2, "{name}: two packets counted");
    }
}

/// Map-in-map slots declared with .values hold the inner maps.
#[test]
fn map_in_map_values() {
    if !kernel("map_in_map_values") {
        return;
    }
    let c = load("map_types.bpf.o", &[]).unwrap();
    let id = |m: &str| c.map(m).unwrap().id();
    let outer = c.map("outer").unwrap().entries().unwrap();
    let ids: Vec<(u32, u32)> = outer
        .iter()
        .map(|(k, v)| {
            (
                u32::from_le_bytes(k[..4].try_into().unwrap()),
                u32::from_le_bytes(v[..4].try_into().unwrap()),
            )
        })
        .collect();
    assert_eq!(ids, [(0, id("inner_a")), (1, id("inner_b"))]);
    let hash = c.map("outer_hash").unwrap().entries().unwrap();
    assert_eq!(hash.len(), 1);
    assert_eq!(
        u32::from_le_bytes(hash[0].1[..4].try_into().unwrap()),
        id("inner_a")
    );
    // The program reads inner_b[0] through outer[1].
    c.map("inner_b")
        .unwrap()
        .update(&0u32.to_le_bytes(), &77u32.to_le_bytes())
        .unwrap();
    let frame = ipv4_udp_frame(0);
    assert_eq!(retval(&c, "lookup_inner", &frame), 77);
    let percpu = c
        .map("percpu_stats")
        .unwrap()
        .lookup(&0u32.to_le_bytes())
        .unwrap()
        .unwrap();
    let total: u64 = percpu.chunks(8).map(u64_le).sum();
    assert_eq!(total, 1, "one run counted on one CPU");
}

#[test]
fn callbacks_and_string_literals() {
    if !kernel("callbacks_and_string_literals") {
        return;
    }
    let bpf_loop = rawbpf::probe::probe_helper(rawbpf::uapi::ProgramType::SCHED_CLS, 181);
    if !support::kernel_has("callbacks_and_string_literals", "bpf_loop (5.17)", bpf_loop) {
        return;
    }
    let c = load("callbacks.bpf.o", &[]).unwrap();
    let frame = ipv4_udp_frame(0);
    assert_eq!(
        retval(&c, "count_to_ten", &frame),
        10,
        "bpf_loop ran the callback 10 times"
    );
    assert_eq!(retval(&c, "say_len", &frame), 64);
}

#[test]
fn other_program_types() {
    if !kernel("other_program_types") {
        return;
    }
    let frame = ipv4_udp_frame(0);
    let c = load("xdp.bpf.o", &[]).unwrap();
    assert_eq!(
        retval(&c, "xdp_drop_port", &frame),
        1,
        "XDP_DROP for UDP to 4242"
    );
    let c = load("socket_filter.bpf.o", &[]).unwrap();
    assert_eq!(
        retval(&c, "socket_len", &frame),
        50,
        "the packet from the IP header on"
    );
    let c = load("sections.bpf.o", &[]).unwrap();
    assert_eq!(c.programs.len(), 13);
}

#[test]
fn verifier_rejection_names_program_and_shows_log() {
    if !kernel("verifier_rejection_names_program_and_shows_log") {
        return;
    }
    let o = rawbpf(&["load", &obj("verifier_reject.bpf.o")]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "rawbpf: {}: program reads_unchecked: the verifier rejected it",
            obj("verifier_reject.bpf.o")
        )),
        "{err}"
    );
    assert!(err.contains("invalid access to packet"), "{err}");
    // The program's BTF line info puts source lines in the log (newer
    // kernels add "@ file:line" after them).
    assert!(
        err.contains("; return eth->h_proto == bpf_htons(ETH_P_IP)"),
        "line info in the log: {err}"
    );
}

/// A map the kernel refuses (an array with an 8-byte key): the error names
/// the map, the errno and the rule it breaks; `check` predicts it; nothing
/// is left pinned.
#[test]
fn refused_map_names_map_and_rule() {
    if !kernel("refused_map_names_map_and_rule") {
        return;
    }
    let pins = support::BpffsDir::new("refused");
    let o = rawbpf(&["load", &obj("map_refused.bpf.o"), "--pin", pins.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "rawbpf: {}: map wide_keys: the kernel refused to create it: Invalid argument (os error 22) \
             (array maps take a 4-byte key (an index); this one's key is 8 bytes)\n",
            obj("map_refused.bpf.o")
        )
    );
    assert!(!pins.0.exists() || std::fs::read_dir(&pins.0).unwrap().next().is_none());
    let c = rawbpf(&["check", &obj("map_refused.bpf.o")]);
    assert_eq!(c.status.code(), Some(1));
    assert!(
        support::stdout(&c).contains(
            "FAIL (object): map wide_keys: array maps take a 4-byte key (an index); \
             this one's key is 8 bytes; the kernel will refuse it"
        ),
        "{}",
        support::stdout(&c)
    );
}

/// The smallest CO-RE object loads and runs: its one relocation (a flavored
/// local `__sk_buff::len`) resolves against the kernel's BTF and the program
/// returns the 64-byte default frame's length. tests/kernel_core.rs checks
/// relocations whose values differ between local and kernel types.
#[test]
fn core_relocation_is_applied() {
    if !kernel("core_relocation_is_applied") {
        return;
    }
    let o = rawbpf(&["run", &obj("core_reloc.bpf.o"), "--prog", "core_len"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        support::stdout(&o).starts_with("core_len: retval 64"),
        "{}",
        support::stdout(&o)
    );
}

#[test]
fn tail_errors_name_what_is_wrong() {
    if !kernel("tail_errors_name_what_is_wrong") {
        return;
    }
    let cases = [
        (
            "prog_array:2=mark_packet",
            "--tail prog_array:2=mark_packet: key 2 is past max_entries 2 of prog_array",
        ),
        (
            "nope:0=mark_packet",
            "--tail nope:0=mark_packet: no map nope in the object",
        ),
        (
            "prog_array:0=nope",
            "--tail prog_array:0=nope: no program nope in the object",
        ),
    ];
    for (tail, want) in cases {
        let o = rawbpf(&["load", &obj("pipeline.bpf.o"), "--tail", tail]);
        assert_eq!(o.status.code(), Some(1), "{tail}");
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }
    let o = rawbpf(&["load", &obj("pipeline.bpf.o"), "--tail", "prog_array=1"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "malformed --tail is a usage error"
    );
}

/// `load --pin DIR` pins every program and map (dots become underscores);
/// a map pinned by name is reused by the next load, and an incompatible pin
/// is refused.
#[test]
fn pinning() {
    if !kernel("pinning") {
        return;
    }
    let dir = BpffsDir::new("pin");
    let doc = rawbpf_json(&[
        "load",
        &obj("global_data.bpf.o"),
        "--pin",
        dir.path(),
        "--json",
    ]);
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["_bss", "_data", "_rodata", "count_and_verdict"]);
    assert_eq!(doc.get("pinned").array().len(), 4);
    // A pinned program, as the kernel describes it; a map's pin is not one.
    let pinned = rawbpf::Program::from_pin(dir.0.join("count_and_verdict")).unwrap();
    let id = |p: &support::json::Value| p.get("id").num();
    assert_eq!(
        u64::from(pinned.id),
        id(&doc.get("programs").array()[0]),
        "{doc:?}"
    );
    assert_eq!(pinned.name, "count_and_verdi");
    let err = rawbpf::Program::from_pin(dir.0.join("_bss")).unwrap_err();
    assert!(err.to_string().contains("not a pinned program"), "{err}");
    // A pinned map, with the kernel's sizes; a program's pin is not one.
    let bss = rawbpf::Map::from_pin(dir.0.join("_bss")).unwrap();
    assert_eq!((bss.key_size(), bss.max_entries()), (4, 1));
    let value = bss.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
    assert_eq!(value.len(), bss.value_size() as usize);
    let err = rawbpf::Map::from_pin(dir.0.join("count_and_verdict")).unwrap_err();
    assert!(err.to_string().contains("not a pinned map"), "{err}");

    let dir = BpffsDir::new("byname");
    let first = rawbpf_json(&[
        "load",
        &obj("map_types.bpf.o"),
        "--pin",
        dir.path(),
        "--json",
    ]);
    // Pins are never overwritten: loading into the same directory again fails...
    let o = rawbpf(&["load", &obj("map_types.bpf.o"), "--pin", dir.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/lookup_inner: pinning: File exists"),
        "{}",
        stderr(&o)
    );
    // ...but with only the by-name map left, the next load shares it.
    for e in std::fs::read_dir(&dir.0).unwrap() {
        let path = e.unwrap().path();
        if !path.ends_with("pinned_counter") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let second = rawbpf_json(&[
        "load",
        &obj("map_types.bpf.o"),
        "--pin",
        dir.path(),
        "--json",
    ]);
    let pinned_id = |doc: &support::json::Value| {
        doc.get("maps")
            .array()
            .iter()
            .find(|m| m.get("name").str() == "pinned_counter")
            .unwrap()
            .get("id")
            .num()
    };
    assert_eq!(
        pinned_id(&first),
        pinned_id(&second),
        "the pinned map is reused"
    );

    // Pin some other map under that name: the next load refuses it.
    let other = BpffsDir::new("mismatch");
    rawbpf_json(&[
        "load",
        &obj("pipeline.bpf.o"),
        "--pin",
        other.path(),
        "--json",
    ]);
    std::fs::rename(other.0.join("prog_array"), other.0.join("pinned_counter")).unwrap();
    let o = rawbpf(&["load", &obj("map_types.bpf.o"), "--pin", other.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("map pinned_counter: the map pinned at"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("type is 3 there, 2 in the object"),
        "{}",
        stderr(&o)
    );
}

/// `probe` finds what this kernel has, and `check` predicts what `load`
/// then does, object by object (a verifier rejection is outside what a
/// static check can see).
#[test]
fn probe_and_check_predict_load() {
    if !kernel("probe_and_check_predict_load") {
        return;
    }
    let probe = rawbpf_json(&["probe", "--json"]);
    assert_eq!(
        probe.get("prog_types").get("sched_cls"),
        &support::json::Value::Bool(true)
    );
    assert_eq!(
        probe.get("map_types").get("prog_array"),
        &support::json::Value::Bool(true)
    );
    assert_eq!(
        probe.get("features").get("test_run"),
        &support::json::Value::Bool(true)
    );
    for entry in std::fs::read_dir(support::OBJ_DIR).unwrap() {
        let path = entry.unwrap().path();
        let file = path.to_str().unwrap();
        // Rejected by the verifier on purpose (a missing check, a CO-RE
        // relocation no kernel satisfies), or by extern resolution (a strong
        // kconfig value no kernel has; per-CPU ksyms, which the kernel finds
        // through kallsyms only with CONFIG_KALLSYMS_ALL): neither is in
        // what `check` compares.
        let outside_check = [
            "verifier_reject.bpf.o",
            "core_unguarded.bpf.o",
            "kconfig_missing.bpf.o",
            "ksyms.bpf.o",
            // Attach types newer than some kernels (connect_unix: 6.7),
            // which check does not probe yet.
            "cgroup_unix.bpf.o",
        ];
        if outside_check.iter().any(|o| file.ends_with(o)) {
            continue;
        }
        let checked = rawbpf(&["check", file]);
        let loaded = rawbpf(&["load", file]);
        assert_eq!(
            checked.status.code(),
            loaded.status.code(),
            "{file}: check said\n{}\nload said\n{}",
            support::stdout(&checked),
            stderr(&loaded)
        );
    }
}

/// Whether vmlinux BTF has the string `name` (a byte search, independent
/// of the BTF reader under test).
fn vmlinux_has(name: &str) -> bool {
    let needle = format!("\0{name}\0");
    std::fs::read(rawbpf::kernel_btf::VMLINUX)
        .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

/// A type's id in vmlinux BTF by the full parse (not the lazy reader).
fn vmlinux_id(kind: rawbpf::obj::btf::BtfKind, name: &str) -> Option<u32> {
    let bytes = std::fs::read(rawbpf::kernel_btf::VMLINUX).ok()?;
    rawbpf::obj::btf::Btf::parse(&bytes)
        .ok()?
        .find_by_name(kind, name)
}

/// Whether this kernel loads trampoline programs (fentry, fexit, fmod_ret,
/// lsm): an fentry stub on bpf_fentry_test1, its id from the full BTF
/// parse. Some kernels refuse them (this project's build machine says EPERM).
fn trampolines(test: &str) -> bool {
    use rawbpf::obj::btf::BtfKind;
    let refused = match vmlinux_id(BtfKind::Func, "bpf_fentry_test1") {
        None => Some("bpf_fentry_test1 in vmlinux BTF".to_owned()),
        Some(id) => rawbpf::probe::probe_fentry(id)
            .err()
            .map(|e| format!("trampoline programs (an fentry stub on bpf_fentry_test1: {e})")),
    };
    match refused {
        None => true,
        Some(what) => support::kernel_has(test, &what, false),
    }
}

/// tp_btf and iter programs load with the BTF ids of their targets
/// (btf_trace_sched_switch, bpf_iter_task): what check shows is what the
/// full parse of vmlinux finds; `--btf` with vmlinux alone works the same;
/// a BTF without the tracepoint is an error naming program and tracepoint.
#[test]
fn btf_attach_targets_load() {
    if !kernel("btf_attach_targets_load")
        || !support::kernel_has(
            "btf_attach_targets_load",
            "task iterators (5.8)",
            vmlinux_has("bpf_iter_task"),
        )
    {
        return;
    }
    let file = obj("attach_btf.bpf.o");
    let doc = rawbpf_json(&["load", &file, "--json"]);
    let progs: Vec<(&str, &str)> = doc
        .get("programs")
        .array()
        .iter()
        .map(|p| (p.get("name").str(), p.get("type").str()))
        .collect();
    assert_eq!(
        progs,
        [("on_sched_switch", "tracing"), ("each_task", "tracing")]
    );
    let check = rawbpf_json(&["check", &file, "--json"]);
    assert_eq!(check.get("would_load"), &support::json::Value::Bool(true));
    let tp = vmlinux_id(rawbpf::obj::btf::BtfKind::Typedef, "btf_trace_sched_switch").unwrap();
    let needs = check.get("programs").array()[0].get("needs").array();
    assert!(
        needs.iter().any(|n| n.str()
            == format!("attach target TYPEDEF btf_trace_sched_switch (vmlinux BTF id {tp})")),
        "{needs:?}"
    );

    // Through the library: nothing of the kernel's BTF (fds, a mapping) stays.
    let mapped = || {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .filter(|l| l.ends_with("/sys/kernel/btf/vmlinux"))
            .count()
    };
    // (Open fds are not compared here: other tests of this binary open and
    // close fds in parallel; tests/kernel_leaks.rs counts them alone.)
    for _ in 0..3 {
        let c = load("attach_btf.bpf.o", &[]).unwrap();
        assert_eq!(c.programs.len(), 2);
    }
    assert_eq!(mapped(), 0, "the kernel BTF mapping outlived the load");

    let o = rawbpf(&["load", &file, "--btf", rawbpf::kernel_btf::VMLINUX]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let empty = TempFile::new("empty.btf", &rawbpf::obj::btf::Btf::new().to_bytes());
    let o = rawbpf(&["load", &file, "--btf", empty.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "rawbpf: {file}: program on_sched_switch: tracepoint sched_switch is not in the \
             kernel's BTF (no TYPEDEF btf_trace_sched_switch in vmlinux or a module)\n"
        )
    );
    let not_btf = TempFile::new("not.btf", b"not BTF at all, not at all");
    let o = rawbpf(&["load", &file, "--btf", not_btf.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "rawbpf: {file}: kernel BTF {}: bad BTF magic 0x6f6e (expected 0xeb9f)\n",
            not_btf.path()
        )
    );
}

/// fentry, fexit and fmod_ret programs load on kernel functions found by
/// name, and check names each target's id as the full parse finds it.
/// Attached, the fentry and fexit programs see bpf_fentry_test1(1) return
/// 2 when the kernel test-runs them: they were loaded for that function.
#[test]
fn fentry_fexit_and_fmod_ret_load_and_run() {
    let test = "fentry_fexit_and_fmod_ret_load_and_run";
    if !kernel(test) || !trampolines(test) {
        return;
    }
    let file = obj("attach_fentry.bpf.o");
    let doc = rawbpf_json(&["load", &file, "--json"]);
    let names: Vec<&str> = doc
        .get("programs")
        .array()
        .iter()
        .map(|p| p.get("name").str())
        .collect();
    assert_eq!(
        names,
        ["on_test1", "on_test1_exit", "keep_file_open_result"]
    );
    let test1 = vmlinux_id(rawbpf::obj::btf::BtfKind::Func, "bpf_fentry_test1").unwrap();
    let check = rawbpf_json(&["check", &file, "--json"]);
    assert_eq!(check.get("would_load"), &support::json::Value::Bool(true));
    let needs = check.get("programs").array()[1].get("needs").array();
    assert!(
        needs
            .iter()
            .any(|n| n.str()
                == format!("attach target FUNC bpf_fentry_test1 (vmlinux BTF id {test1})")),
        "{needs:?}"
    );

    let c = load("attach_fentry.bpf.o", &[]).unwrap();
    let entry = c.program("on_test1").unwrap();
    let exit = c.program("on_test1_exit").unwrap();
    let _links = [
        entry.raw_tracepoint_open(None).expect("attach fentry"),
        exit.raw_tracepoint_open(None).expect("attach fexit"),
    ];
    entry.test_run_ctx(&[]).expect("test-run fentry");
    let seen = c
        .map(".bss")
        .unwrap()
        .lookup(&0u32.to_le_bytes())
        .unwrap()
        .unwrap();
    let word = |i: usize| u64_le(&seen[i * 8..]);
    assert_eq!(
        (word(0), word(1), word(2)),
        (1, 1, 2),
        "one call of bpf_fentry_test1(1), which returned 2"
    );
}

/// A BPF LSM program loads on its hook's bpf_lsm_ function.
#[test]
fn lsm_program_loads() {
    if !kernel("lsm_program_loads")
        || !support::kernel_has(
            "lsm_program_loads",
            "BPF LSM (CONFIG_BPF_LSM)",
            vmlinux_has("bpf_lsm_file_open"),
        )
        || !trampolines("lsm_program_loads")
    {
        return;
    }
    let doc = rawbpf_json(&["load", &obj("attach_lsm.bpf.o"), "--json"]);
    let p = &doc.get("programs").array()[0];
    assert_eq!(
        (p.get("name").str(), p.get("type").str()),
        ("allow_file_open", "lsm")
    );
}

/// A target the kernel lacks: load and check both name the program and
/// the function.
#[test]
fn missing_attach_target_is_named() {
    if !kernel("missing_attach_target_is_named") {
        return;
    }
    let file = obj("attach_missing.bpf.o");
    let o = rawbpf(&["load", &file]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "rawbpf: {file}: program on_missing: kernel function no_such_function_xyz is not in \
             the kernel's BTF (no FUNC no_such_function_xyz in vmlinux or a module)\n"
        )
    );
    let c = rawbpf(&["check", &file]);
    assert_eq!(c.status.code(), Some(1));
    assert!(
        support::stdout(&c).contains(
            "FAIL on_missing: kernel function no_such_function_xyz is not in the kernel's BTF"
        ),
        "{}",
        support::stdout(&c)
    );
}

/// An freplace program needs the program whose function it replaces;
/// given it, it loads against that function in the program's BTF, and
/// once linked the program runs the replacement.
#[test]
fn freplace_needs_and_replaces_a_target_function() {
    if !kernel("freplace_needs_and_replaces_a_target_function") {
        return;
    }
    let frame = ipv4_udp_frame(0);
    let target = load("freplace_target.bpf.o", &[]).unwrap();
    let entry = target.program("entry").unwrap();
    assert_eq!(retval(&target, "entry", &frame), 1, "pick() of a packet");

    let spec = ObjectSpec::from_file(obj("freplace.bpf.o")).unwrap();
    let mut opts = LoadOptions::for_file(std::path::Path::new("freplace.bpf.o"));
    let e = Collection::load(&spec, &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "program new_pick: a freplace program needs a target program: the kernel id of the \
         loaded program whose function pick it replaces (LoadOptions::attach_prog)"
    );
    // A program without a function pick.
    let other = load("xdp.bpf.o", &[]).unwrap();
    let other_id = other.programs[0].id;
    opts.attach_prog = Some(other_id);
    let e = Collection::load(&spec, &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("program new_pick: target program {other_id}: its BTF has no function pick")
    );

    opts.attach_prog = Some(entry.id);
    let ext = match Collection::load(&spec, &opts) {
        Ok(ext) => ext,
        Err(e) if !trampolines("freplace_needs_and_replaces_a_target_function") => {
            eprintln!("(freplace load: {e})");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let link = ext
        .program("new_pick")
        .unwrap()
        .link_create()
        .expect("BPF_LINK_CREATE of the freplace program");
    assert_eq!(
        retval(&target, "entry", &frame),
        2,
        "new_pick() replaced pick()"
    );
    drop(link);
    assert_eq!(retval(&target, "entry", &frame), 1, "pick() again");
}

/// Runs a command and returns its stdout (a test may use tools to find
/// out what the kernel is, independently of rawbpf).
fn tool(cmd: &str, args: &[&str]) -> String {
    let o = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(o.status.success(), "{cmd} {args:?} failed");
    String::from_utf8(o.stdout).unwrap()
}

/// What uname(2) says: `release` or `version` (as `uname -r`, `uname -v`).
fn uname(field: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/kernel/{field}"))
        .unwrap()
        .trim()
        .to_owned()
}

/// The kernel's config: /boot/config-$(uname -r), else /proc/config.gz
/// (through zcat), else /usr/lib/modules/$(uname -r)/config (Debian 7.x);
/// `None` if the system has none of them.
fn kernel_config() -> Option<String> {
    let boot = format!("/boot/config-{}", uname("osrelease"));
    if let Ok(text) = std::fs::read_to_string(&boot) {
        return Some(text);
    }
    if std::path::Path::new("/proc/config.gz").exists() {
        return Some(tool("zcat", &["/proc/config.gz"]));
    }
    std::fs::read_to_string(format!("/usr/lib/modules/{}/config", uname("osrelease"))).ok()
}

/// The value of `CONFIG_name=...` in the config, if it is set.
fn config_value<'a>(config: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    config.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

/// The first three numbers in `s` (`6.1.123-1 (...)` → 6, 1, 123).
fn three_numbers(s: &str) -> [u32; 3] {
    let mut n = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap());
    [n.next().unwrap(), n.next().unwrap(), n.next().unwrap()]
}

/// __kconfig externs hold what uname and the kernel's config say: a
/// program copies each into .bss and the test compares them with values it
/// derives itself; .kconfig is frozen.
#[test]
fn kconfig_externs_hold_the_kernels_values() {
    const TEST: &str = "kconfig_externs_hold_the_kernels_values";
    if !kernel(TEST) {
        return;
    }
    let Some(config) = kernel_config() else {
        // Then the load must say that it needs the config, and where it looked.
        let o = rawbpf(&["load", &obj("kconfig.bpf.o")]);
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert!(
            err.contains("needs the kernel config, which cannot be read")
                && err.contains("/proc/config.gz"),
            "{err}"
        );
        let _ = support::kernel_has(TEST, "a kernel config to compare with", false);
        return;
    };
    let doc = rawbpf_json(&[
        "run",
        &obj("kconfig.bpf.o"),
        "--prog",
        "copy_kconfig",
        "--dump",
        ".bss",
        "--dump",
        ".kconfig",
        "--json",
    ]);
    assert_eq!(doc.get("retval").num(), 0);
    let bss = unhex(doc.get("maps").get(".bss").array()[0].get("value").str());
    let field = |i: usize| u64_le(&bss[8 * i..]);

    // LINUX_KERNEL_VERSION: Debian's uname -v has the real patch level
    // (uname -r says .0), as Ubuntu's /proc/version_signature does.
    let version = uname("version");
    let release = uname("osrelease");
    let ubuntu = std::fs::read_to_string("/proc/version_signature").ok();
    let [a, b, c] = match (&ubuntu, version.split_once("Debian ")) {
        (Some(sig), _) => three_numbers(sig.split_whitespace().nth(2).unwrap()),
        (None, Some((_, debian))) => three_numbers(debian),
        (None, None) => three_numbers(&release),
    };
    let code = (u64::from(a) << 16) + (u64::from(b) << 8) + u64::from(c.min(255));
    assert_eq!(field(0), code, "LINUX_KERNEL_VERSION of {a}.{b}.{c}");
    // bpf_get_attach_cookie came with 5.15.
    assert_eq!(
        field(1),
        u64::from((a, b) >= (5, 15)),
        "LINUX_HAS_BPF_COOKIE"
    );

    let set = |name| config_value(&config, name);
    if cfg!(target_arch = "x86_64") {
        assert_eq!(
            field(2),
            u64::from(set("CONFIG_ARCH_HAS_SYSCALL_WRAPPER") == Some("y")),
            "LINUX_HAS_SYSCALL_WRAPPER"
        );
    }
    assert_eq!(
        field(3),
        set("CONFIG_HZ").unwrap().parse::<u64>().unwrap(),
        "CONFIG_HZ"
    );
    assert_eq!(
        field(4),
        u64::from(set("CONFIG_BPF_SYSCALL") == Some("y")),
        "CONFIG_BPF_SYSCALL"
    );
    let tristate = match set("CONFIG_NET_CLS_BPF") {
        Some("y") => 1,
        Some("m") => 2,
        _ => 0,
    };
    assert_eq!(field(5), tristate, "CONFIG_NET_CLS_BPF");
    let physical_start = set("CONFIG_PHYSICAL_START").map_or(0, |v| {
        u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
    });
    assert_eq!(field(6), physical_start, "CONFIG_PHYSICAL_START (hex)");
    assert_eq!(field(7), 0, "a weak option no kernel has");
    let hostname = set("CONFIG_DEFAULT_HOSTNAME").map_or("", |v| v.trim_matches('"'));
    let mut want = [0u8; 16];
    let n = hostname.len().min(15);
    want[..n].copy_from_slice(&hostname.as_bytes()[..n]);
    assert_eq!(bss[64..80], want, "CONFIG_DEFAULT_HOSTNAME");

    // The .kconfig map itself: CONFIG_HZ at offset 8, and frozen.
    let kconfig = unhex(
        doc.get("maps").get(".kconfig").array()[0]
            .get("value")
            .str(),
    );
    assert_eq!(kconfig.len(), 43);
    assert_eq!(
        u64::from(u32::from_le_bytes(kconfig[8..12].try_into().unwrap())),
        field(3)
    );
    let c = load("kconfig.bpf.o", &[]).unwrap();
    let err = c
        .map(".kconfig")
        .unwrap()
        .update(&0u32.to_le_bytes(), &[0; 43])
        .unwrap_err();
    assert!(
        err.to_string().contains("Operation not permitted"),
        "frozen: {err}"
    );
}

/// A strong kconfig extern the kernel's config lacks stops the load, and
/// the error names it.
#[test]
fn missing_strong_kconfig_extern_is_named() {
    if !kernel("missing_strong_kconfig_extern_is_named") {
        return;
    }
    let o = rawbpf(&["load", &obj("kconfig_missing.bpf.o")]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("extern CONFIG_RAWBPF_MISSING_OPTION: the kernel config (")
            && err.contains(") does not set it"),
        "{err}"
    );
}

/// The address /proc/kallsyms gives a symbol.
fn kallsyms_address(name: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/kallsyms")
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let addr = f.next()?;
            (f.nth(1)? == name).then(|| u64::from_str_radix(addr, 16).unwrap())
        })
}

/// Whether the kernel's BTF has a FUNC of this name.
fn kernel_has_func(name: &str) -> bool {
    let btf =
        rawbpf::obj::btf::Btf::parse(&std::fs::read("/sys/kernel/btf/vmlinux").unwrap()).unwrap();
    btf.find_by_name(rawbpf::obj::btf::BtfKind::Func, name)
        .is_some()
}

/// kfuncs are called by their kernel BTF ids (bpf_task_from_pid finds
/// kthreadd), a weak kfunc the kernel lacks is never called, and typeless
/// ksyms hold their /proc/kallsyms addresses (0 for a weak missing one).
#[test]
fn kfuncs_and_typeless_ksyms() {
    if !kernel("kfuncs_and_typeless_ksyms")
        || !support::kernel_has(
            "kfuncs_and_typeless_ksyms",
            "the bpf_task_from_pid kfunc (6.2)",
            kernel_has_func("bpf_task_from_pid"),
        )
    {
        return;
    }
    let o = rawbpf(&[
        "run",
        &obj("kfuncs.bpf.o"),
        "--prog",
        "find_kthreadd",
        "--dump",
        ".bss",
        "--json",
    ]);
    let err = stderr(&o);
    if !support::kernel_has(
        "kfuncs_and_typeless_ksyms",
        "task kfuncs for sched_cls programs",
        !err.contains("is not allowed"),
    ) {
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{err}");
    let doc = support::json::parse(&support::stdout(&o)).unwrap();
    let bss = unhex(doc.get("maps").get(".bss").array()[0].get("value").str());
    assert_eq!(u64_le(&bss[0..]), 1, "bpf_task_from_pid(2) found kthreadd");
    assert_eq!(
        u64_le(&bss[8..]),
        0,
        "the missing weak kfunc was not called"
    );
    assert_eq!(
        Some(u64_le(&bss[16..])),
        kallsyms_address("bpf_prog_put"),
        "bpf_prog_put's address"
    );
    assert_eq!(u64_le(&bss[24..]), 0, "a missing weak ksym is NULL");
}

/// Typed ksyms: ld_imm64 of a per-CPU variable by its kernel BTF id. The
/// kernel also needs the variable in kallsyms (CONFIG_KALLSYMS_ALL); without
/// it, the verifier's refusal names the variable — the BTF id led it there.
#[test]
fn typed_ksyms_are_kernel_variables() {
    if !kernel("typed_ksyms_are_kernel_variables") {
        return;
    }
    // Per-CPU variables are in vmlinux BTF only where pahole emitted them
    // (not in Debian's 5.10): read with the plain BTF parser.
    let has_var = std::fs::read(rawbpf::kernel_btf::VMLINUX)
        .ok()
        .and_then(|d| rawbpf::obj::btf::Btf::parse(&d).ok())
        .is_some_and(|b| {
            b.find_by_name(rawbpf::obj::btf::BtfKind::Var, "bpf_prog_active")
                .is_some()
        });
    if !support::kernel_has(
        "typed_ksyms_are_kernel_variables",
        "per-CPU variables (VAR bpf_prog_active) in its BTF",
        has_var,
    ) {
        return;
    }
    let o = rawbpf(&[
        "run",
        &obj("ksyms.bpf.o"),
        "--prog",
        "use_ksyms",
        "--dump",
        ".bss",
        "--json",
    ]);
    if kallsyms_address("bpf_prog_active").is_none() {
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert!(
            err.contains("failed to find the address for kernel symbol 'bpf_prog_active'"),
            "{err}"
        );
        let _ = support::kernel_has(
            "typed_ksyms_are_kernel_variables (running them)",
            "CONFIG_KALLSYMS_ALL",
            false,
        );
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = support::json::parse(&support::stdout(&o)).unwrap();
    let bss = unhex(doc.get("maps").get(".bss").array()[0].get("value").str());
    // A sched_cls test run is no tracing program: bpf_prog_active is 0.
    assert_eq!(u64_le(&bss[0..]), 0, "this CPU's bpf_prog_active");
    assert_eq!(u64_le(&bss[8..]), 1, "CPU 0's runqueue");
    assert_eq!(u64_le(&bss[16..]), 0, "a missing weak ksym is NULL");
}

/// Runs `rawbpf` as a child whose pid the test knows; returns (pid, output).
fn rawbpf_child(args: &[&str]) -> (u32, std::process::Output) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rawbpf"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run rawbpf");
    let pid = child.id();
    (pid, child.wait_with_output().expect("wait for rawbpf"))
}

/// A raw tracepoint program runs once on the context `--ctx-in` gives (its
/// arguments, 8 bytes each), as the process that asked: `.bss` holds that
/// process's pid and the first argument; without `--ctx-in` the arguments
/// are zero. Not timed, no packet: the JSON says so with null and "".
#[test]
fn raw_tracepoint_runs_on_a_context() {
    if !kernel("raw_tracepoint_runs_on_a_context") {
        return;
    }
    let arg0: u64 = 0x1122_3344_5566_7788;
    let mut args = arg0.to_le_bytes().to_vec();
    args.extend_from_slice(&59u64.to_le_bytes()); // sys_enter's second: the syscall number
    let ctx = TempFile::new("raw-tp-ctx", &args);
    let file = obj("raw_tp.bpf.o");
    let run = |extra: &[&str]| {
        let mut argv = vec!["run", &file, "--prog", "record_sys_enter", "--dump", ".bss"];
        argv.extend_from_slice(extra);
        let (pid, o) = rawbpf_child(&argv);
        assert_eq!(o.status.code(), Some(0), "{argv:?}: {}", stderr(&o));
        (pid, support::stdout(&o))
    };

    let (pid, out) = run(&["--ctx-in", ctx.path(), "--json"]);
    let doc = support::json::parse(&out).unwrap();
    assert_eq!(doc.get("prog").str(), "record_sys_enter");
    assert_eq!(doc.get("retval").num(), 0x5eed);
    assert_eq!(doc.get("duration_ns"), &support::json::Value::Null);
    assert_eq!(doc.get("repeat").num(), 1);
    assert_eq!(doc.get("data_out").str(), "");
    let bss = unhex(doc.get("maps").get(".bss").array()[0].get("value").str());
    assert_eq!(
        u64_le(&bss[0..]),
        u64::from(pid),
        "pid of the rawbpf process"
    );
    assert_eq!(u64_le(&bss[8..]), arg0, "ctx->args[0] from --ctx-in");
    assert_eq!(u64_le(&bss[16..]), 1, "one run");

    // Text output, default (zeroed) context.
    let (pid, out) = run(&[]);
    assert!(
        out.starts_with("record_sys_enter: retval 24301\nran once, not timed (the kernel times only packet runs)\ncontext in (96 bytes): 0000"),
        "{out}"
    );
    let value = format!(
        "  key 00000000 value {}{}{}\n",
        rawbpf::load::hex(&u64::from(pid).to_le_bytes()),
        "00".repeat(8),
        rawbpf::load::hex(&1u64.to_le_bytes())
    );
    assert!(out.ends_with(&value), "{out}\nwanted {value}");

    // The library call behind it.
    let c = load("raw_tp.bpf.o", &[]).unwrap();
    let prog = c.program("record_sys_enter").unwrap();
    assert_eq!(prog.test_run_ctx(&args).unwrap().retval, 0x5eed);
    let bss = c.map(".bss").unwrap().lookup(&0u32.to_le_bytes()).unwrap();
    let bss = bss.unwrap();
    assert_eq!(u64_le(&bss[0..]), u64::from(std::process::id()));
    assert_eq!(u64_le(&bss[8..]), arg0);
}

/// What a raw tracepoint run cannot take is refused with the reason: packet
/// flags as bad usage (exit 2) before anything loads; a context the kernel
/// refuses, and a program type it cannot test-run, as failures (exit 1).
#[test]
fn raw_tracepoint_run_refusals() {
    if !kernel("raw_tracepoint_run_refusals") {
        return;
    }
    let file = obj("raw_tp.bpf.o");
    let frame = TempFile::new("raw-tp-frame", &ipv4_udp_frame(0));
    let o = rawbpf(&[
        "run",
        &file,
        "--prog",
        "record_sys_enter",
        "--data-in",
        frame.path(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "rawbpf: run: --data-in {}: record_sys_enter is a raw_tracepoint program, which takes no packet \
             (BPF_PROG_TEST_RUN gives it no data_in); give its context with --ctx-in FILE\nTry 'rawbpf --help'.\n",
            frame.path()
        )
    );
    let o = rawbpf(&["run", &file, "--prog", "record_sys_enter", "--repeat", "3"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(
            "rawbpf: run: --repeat 3: record_sys_enter is a raw_tracepoint program, which the kernel runs once per test run"
        ),
        "{}",
        stderr(&o)
    );
    // 4 bytes: less than the one argument the program reads (the kernel
    // refuses it); 13 arguments: more than any tracepoint has (refused
    // before the call).
    for len in [4, 13 * 8] {
        let ctx = TempFile::new("raw-tp-bad-ctx", &vec![1; len]);
        let o = rawbpf(&[
            "run",
            &file,
            "--prog",
            "record_sys_enter",
            "--ctx-in",
            ctx.path(),
        ]);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            stderr(&o),
            format!(
                "rawbpf: {file}: program record_sys_enter: BPF_PROG_TEST_RUN failed: Invalid argument (os error 22) \
                 (the context ({len} bytes) must hold every argument the program reads, 8 bytes each, and be at most 96 bytes)\n"
            )
        );
    }
    let o = rawbpf(&["run", &file, "--prog", "writable_noop"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with(
            "program writable_noop: BPF_PROG_TEST_RUN failed: Not supported by this kernel (ENOTSUPP, os error 524) \
             (the kernel cannot test-run raw_tracepoint_writable programs)\n"
        ),
        "{}",
        stderr(&o)
    );
}

/// A packet program's `--ctx-in` is its `struct __sk_buff`: the kernel
/// takes the mark from it and gives the whole context back, with what the
/// run filled in (the device: loopback).
#[test]
fn packet_run_with_a_context() {
    if !kernel("packet_run_with_a_context") {
        return;
    }
    let mut skb = vec![0u8; 12];
    skb[8..12].copy_from_slice(&0x1234u32.to_le_bytes()); // mark
    let ctx = TempFile::new("skb-ctx", &skb);
    let doc = rawbpf_json(&[
        "run",
        &obj("pipeline.bpf.o"),
        "--prog",
        "mark_packet",
        "--ctx-in",
        ctx.path(),
        "--json",
    ]);
    assert_eq!(
        doc.get("retval").num(),
        2,
        "TC_ACT_SHOT, as without a context"
    );
    let out = unhex(doc.get("ctx_out").str());
    assert!(
        out.len() > 140,
        "the kernel's whole __sk_buff: {} bytes",
        out.len()
    );
    assert_eq!(out[8..12], 0x1234u32.to_le_bytes(), "mark");
    assert_eq!(
        out[40..44],
        1u32.to_le_bytes(),
        "ifindex: loopback's, filled in by the run"
    );
}

/// Maps real objects declare: a ring buffer with key/value types and a size
/// that is not a power-of-2 multiple of the page size, a perf event array
/// without max_entries. `inspect` shows them as declared; `load` creates
/// what the kernel takes, says what it changed, and the kernel's own view of
/// the maps has the adjusted sizes.
#[test]
fn map_fixups() {
    if !kernel("map_fixups") {
        return;
    }
    let file = obj("map_fixups.bpf.o");
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .unwrap()
        .unwrap() as u32;
    let mut ring = page;
    while ring <= 10_000 {
        ring *= 2;
    }
    let cpus = rawbpf::load::possible_cpus().unwrap() as u64;
    let warnings = [
        "map events_rb: key size 4 and value size 4 changed to 0: a ring buffer has no keys or values \
         (declare only its type and max_entries)"
            .to_owned(),
        format!(
            "map events_rb: max_entries 10000 rounded up to {ring}: a ring buffer's size must be a \
             power-of-2 multiple of the page size ({page} bytes)"
        ),
    ];

    let declared = rawbpf_json(&["inspect", &file, "--json"]);
    let sizes = |m: &support::json::Value| {
        (
            m.get("key_size").num(),
            m.get("value_size").num(),
            m.get("max_entries").num(),
        )
    };
    let find = |doc: &support::json::Value, name: &str| {
        doc.get("maps")
            .array()
            .iter()
            .find(|m| m.get("name").str() == name)
            .cloned()
            .unwrap_or_else(|| panic!("no map {name}"))
    };
    assert_eq!(sizes(&find(&declared, "events_rb")), (4, 4, 10_000));
    assert_eq!(sizes(&find(&declared, "events_perf")), (4, 4, 0));

    let loaded = rawbpf_json(&["load", &file, "--json"]);
    assert_eq!(sizes(&find(&loaded, "events_rb")), (0, 0, u64::from(ring)));
    assert_eq!(sizes(&find(&loaded, "events_perf")), (4, 4, cpus));
    let said: Vec<&str> = loaded
        .get("warnings")
        .array()
        .iter()
        .map(|w| w.str())
        .collect();
    assert_eq!(said, warnings);
    let o = rawbpf(&["load", &file]);
    assert_eq!(o.status.code(), Some(0));
    let expected: String = warnings
        .iter()
        .map(|w| format!("rawbpf: warning: {w}\n"))
        .collect();
    assert_eq!(stderr(&o), expected);

    // What the kernel holds, read back from it.
    let c = load("map_fixups.bpf.o", &[]).unwrap();
    let rb = c.map("events_rb").unwrap();
    assert_eq!(
        (rb.key_size(), rb.value_size(), rb.max_entries()),
        (0, 0, ring)
    );
    let perf = c.map("events_perf").unwrap();
    assert_eq!(
        (
            perf.key_size(),
            perf.value_size(),
            u64::from(perf.max_entries())
        ),
        (4, 4, cpus)
    );
    assert_eq!(c.warnings, warnings);
}
