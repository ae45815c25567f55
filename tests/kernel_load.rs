//! Loading into the real kernel, through the CLI and the library: return
//! codes, packets, map contents and error text, as a user would check them.
//! Programs with BTF attach targets, kconfig and ksym externs and raw
//! tracepoint runs are in kernel_load_tracing.rs.
//! Needs root (skips with a reason otherwise; under CI=true a skip fails).

mod support;

use rawbpf::packet::{ipv4_checksum, ipv4_udp_frame};
use support::load::{load, retval, u64_le, unhex};
use support::{kernel, obj, rawbpf, rawbpf_json, stderr, BpffsDir, TempFile};

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

/// `probe --helpers` lists a helper only when the verifier lets that program
/// type call it, each by name: packet writers are not for tracepoints,
/// map lookups are for everyone, and bpf_loop (5.17) is there exactly when
/// the kernel is that new.
#[test]
fn probed_helpers_are_the_ones_a_program_type_may_call() {
    if !kernel("probed_helpers_are_the_ones_a_program_type_may_call") {
        return;
    }
    let doc = rawbpf_json(&[
        "probe",
        "--helpers",
        "tracepoint",
        "--helpers",
        "sched_cls",
        "--json",
    ]);
    let ids = |t: &str| -> Vec<u64> {
        doc.get("helpers")
            .get(t)
            .array()
            .iter()
            .map(|v| v.num())
            .collect()
    };
    let (tp, cls) = (ids("tracepoint"), ids("sched_cls"));
    assert!(tp.contains(&1) && cls.contains(&1), "bpf_map_lookup_elem");
    assert!(
        !tp.contains(&9),
        "bpf_skb_store_bytes is not for tracepoints"
    );
    assert!(cls.contains(&9), "bpf_skb_store_bytes is for sched_cls");
    assert!(
        !cls.contains(&44),
        "bpf_xdp_adjust_head is not for sched_cls"
    );
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let (major, minor) = (v.next().unwrap(), v.next().unwrap());
    assert_eq!(
        tp.contains(&181),
        (major, minor) >= (5, 17),
        "bpf_loop on {release}"
    );
    let text = support::stdout(&rawbpf(&["probe", "--helpers", "tracepoint"]));
    assert!(
        text.contains("1 bpf_map_lookup_elem") && text.contains("6 bpf_trace_printk"),
        "{text}"
    );
    assert!(!text.contains("bpf_skb_store_bytes"), "{text}");
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
        // Rejected by the verifier on purpose (a missing check), or by
        // extern resolution of per-CPU ksyms, which the kernel finds through
        // kallsyms only with CONFIG_KALLSYMS_ALL: neither is in what a plain
        // `check` compares. CO-RE poisoning, strong kconfig values and
        // attach types newer than the kernel (cgroup_unix) are.
        let outside_check = ["verifier_reject.bpf.o", "ksyms.bpf.o"];
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
