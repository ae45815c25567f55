//! CO-RE on the running kernel: our programs (programs/core_*.bpf.c) whose
//! results depend on the kernel's layout — field offsets and sizes, a
//! type's size, a field only some kernels have (`task_struct::__state`,
//! 5.14), an enumerator only some have (`BPF_PROG_TYPE_NETFILTER`, 6.4),
//! bitfields, context accesses, and a live read of the current task's pid
//! through `BPF_CORE_READ` — run through `rawbpf run ... --dump .bss`.
//!
//! Every expected value is derived here, from the kernel's own BTF by the
//! test's own walk (tests/support/kbtf.rs: member offsets through anonymous
//! members, sizes, enumerators), from the packet the program was given, or
//! from the process tree — never through rawbpf's CO-RE code — and the BTF
//! walk is itself checked against facts of kernel history.
//!
//! Needs root and /sys/kernel/btf/vmlinux (skips with a reason otherwise;
//! under CI=true a skip for lack of root fails). On the VM matrix these run
//! on every kernel.
//!
//! `RAWBPF_CORE_BTFS=DIR` adds a host-side run against other kernels' BTF
//! (`rawbpf run --btf FILE`): DIR holds raw BTF files named by the kernel's
//! version (`5.10`, `btf-6.1`, ...), e.g. the `.BTF` section of each
//! kernel's vmlinux (`llvm-objcopy -O binary --only-section=.BTF vmlinux F`).

mod support;

use rawbpf::obj::btf::{Btf, BtfKind};
use rawbpf::packet::ipv4_udp_frame;
use rawbpf::ObjectSpec;
use std::process::{Command, Stdio};
use support::json::Value;
use support::kbtf;
use support::{kernel, kernel_has, obj, rawbpf, rawbpf_json, stderr, TempFile};

/// What the programs store where a guarded value does not exist.
const ABSENT: u64 = u64::MAX;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Whether the kernel has BTF; if not, says why the test is skipped.
fn kernel_btf(test: &str) -> bool {
    kernel_has(
        test,
        "BTF (/sys/kernel/btf/vmlinux)",
        std::path::Path::new(kbtf::VMLINUX).exists(),
    )
}

/// The `.bss` of `object` as `rawbpf run --json --dump .bss` printed it,
/// member by member of the global `struct name` (all `__u64`), the members
/// found by name in the object's own BTF.
fn bss_struct(object: &str, name: &str, doc: &Value) -> Vec<(String, u64)> {
    let spec = ObjectSpec::from_file(obj(object)).unwrap();
    let btf = spec.btf.as_ref().expect("the object has BTF");
    let id = kbtf::struct_id(btf, name);
    let rows = doc.get("maps").get(".bss").array();
    assert_eq!(rows.len(), 1, "one .bss entry");
    let bytes = unhex(rows[0].get("value").str());
    assert_eq!(
        bytes.len() as u64,
        kbtf::size(btf, id),
        "{object}: .bss holds struct {name} alone"
    );
    kbtf::member_names(btf, id)
        .into_iter()
        .map(|field| {
            let m = kbtf::member(btf, id, &field).unwrap();
            assert_eq!(kbtf::size(btf, m.type_id), 8, "{name}.{field} is a __u64");
            let at = m.byte_offset() as usize;
            let value = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
            (field, value)
        })
        .collect()
}

/// Compares every field the program wrote with what the test expects;
/// one failure lists every difference.
fn compare(what: &str, got: &[(String, u64)], want: &[(&str, u64)]) {
    let show = |v: u64| {
        if v == ABSENT {
            "ABSENT".to_owned()
        } else {
            v.to_string()
        }
    };
    let mut problems = Vec::new();
    for (field, w) in want {
        match got.iter().find(|(n, _)| n == field) {
            Some((_, g)) if g == w => {}
            Some((_, g)) => problems.push(format!(
                "{field}: the program says {}, the kernel's BTF says {}",
                show(*g),
                show(*w)
            )),
            None => problems.push(format!("{field}: not in the program's struct")),
        }
    }
    for (field, _) in got {
        if !want.iter().any(|(n, _)| n == field) {
            problems.push(format!("{field}: the test expects nothing for it"));
        }
    }
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

/// What programs/core_layout.bpf.c must find on a kernel with this BTF and
/// version, given `frame` and the object's own BTF (for local type ids).
fn expected_layout(
    kernel: &Btf,
    version: (u32, u32),
    local: &Btf,
    frame: &[u8],
) -> Vec<(&'static str, u64)> {
    let task = kbtf::struct_id(kernel, "task_struct");
    let field = |name: &str| kbtf::member(kernel, task, name);
    let need = |name: &str| field(name).unwrap_or_else(|| panic!("task_struct has no {name}"));
    let pid = need("pid");
    let comm = need("comm");
    let state_new = field("__state");
    let state_old = field("state");

    // Facts of kernel history the walk must agree with.
    assert_eq!(
        state_new.is_some(),
        version >= (5, 14),
        "task_struct::__state exists from 5.14 on (kernel {version:?})"
    );
    assert_eq!(
        state_old.is_some(),
        version < (5, 14),
        "task_struct::state was renamed __state in 5.14 (kernel {version:?})"
    );
    assert_eq!(
        kbtf::size(kernel, comm.type_id),
        16,
        "TASK_COMM_LEN is 16 on every kernel"
    );
    let sched_cls = kbtf::enumerator(kernel, "bpf_prog_type", "BPF_PROG_TYPE_SCHED_CLS");
    assert_eq!(sched_cls, Some(3), "uapi: BPF_PROG_TYPE_SCHED_CLS = 3");
    let netfilter = kbtf::enumerator(kernel, "bpf_prog_type", "BPF_PROG_TYPE_NETFILTER");
    assert_eq!(
        netfilter.is_some(),
        version >= (6, 4),
        "BPF_PROG_TYPE_NETFILTER exists from 6.4 on (kernel {version:?})"
    );
    if let Some(v) = netfilter {
        assert_eq!(v, 32, "uapi: BPF_PROG_TYPE_NETFILTER = 32");
    }

    // task_struct___ids matches: both members are the kernel's own, ints.
    let ids_match = ["tgid", "pid"].iter().all(|m| {
        kbtf::direct_member(kernel, task, m)
            .is_some_and(|m| kbtf::is_int(kernel, m.type_id, 4, true))
    });
    let alien = kbtf::direct_member(kernel, task, "rawbpf_no_such_member");

    let skb = kbtf::struct_id(kernel, "__sk_buff");
    let skb_field = |name: &str| {
        kbtf::member(kernel, skb, name).unwrap_or_else(|| panic!("__sk_buff has no {name}"))
    };
    let iph = kbtf::struct_id(kernel, "iphdr");
    let ip_field = |name: &str| {
        kbtf::member(kernel, iph, name).unwrap_or_else(|| panic!("iphdr has no {name}"))
    };
    let daddr = ip_field("daddr");
    let version_bits = ip_field("version");
    let ihl_bits = ip_field("ihl");
    // Bits of the IPv4 header (little-endian bit numbering, as BTF counts).
    let ip = &frame[14..];
    let bits = |m: kbtf::Member| {
        assert!(m.bitfield_bits > 0, "a bitfield");
        let first = (m.bit_offset / 8) as usize;
        let word = u64::from_le_bytes(ip[first..first + 8].try_into().unwrap());
        (word >> (m.bit_offset % 8)) & ((1 << m.bitfield_bits) - 1)
    };
    let at = daddr.byte_offset() as usize;

    vec![
        ("task_size", kbtf::size(kernel, task)),
        ("pid_offset", pid.byte_offset()),
        ("pid_size", kbtf::size(kernel, pid.type_id)),
        ("tgid_offset", need("tgid").byte_offset()),
        ("comm_offset", comm.byte_offset()),
        ("comm_size", kbtf::size(kernel, comm.type_id)),
        ("vruntime_offset", need("se.vruntime").byte_offset()),
        ("state_new_exists", state_new.is_some().into()),
        (
            "state_new_offset",
            state_new.map_or(ABSENT, |m| m.byte_offset()),
        ),
        (
            "state_new_size",
            state_new.map_or(ABSENT, |m| kbtf::size(kernel, m.type_id)),
        ),
        ("state_old_exists", state_old.is_some().into()),
        (
            "state_old_offset",
            state_old.map_or(ABSENT, |m| m.byte_offset()),
        ),
        (
            "state_old_size",
            state_old.map_or(ABSENT, |m| kbtf::size(kernel, m.type_id)),
        ),
        ("task_exists", 1),
        (
            "missing_type_exists",
            kbtf::named(kernel, BtfKind::Struct, "rawbpf_no_such_type")
                .is_some()
                .into(),
        ),
        ("task_ids_match", ids_match.into()),
        ("task_alien_matches", alien.is_some().into()),
        ("task_id_kernel", u64::from(task)),
        (
            "task_id_local",
            u64::from(kbtf::struct_id(local, "task_struct")),
        ),
        ("sched_cls_exists", sched_cls.is_some().into()),
        ("sched_cls_value", sched_cls.unwrap_or(ABSENT)),
        ("netfilter_exists", netfilter.is_some().into()),
        ("netfilter_value", netfilter.unwrap_or(ABSENT)),
        ("skb_len_offset", skb_field("len").byte_offset()),
        ("skb_protocol_offset", skb_field("protocol").byte_offset()),
        // The context of a test run: the frame's length, and its EtherType
        // as the kernel keeps it (network byte order in a __u32).
        ("skb_len", frame.len() as u64),
        (
            "skb_protocol",
            u64::from(u16::from_ne_bytes([frame[12], frame[13]])),
        ),
        ("iph_daddr_offset", daddr.byte_offset()),
        ("iph_version_offset", version_bits.byte_offset()),
        (
            "iph_daddr",
            u64::from(u32::from_ne_bytes(ip[at..at + 4].try_into().unwrap())),
        ),
        ("iph_version", bits(version_bits)),
        ("iph_ihl", bits(ihl_bits)),
        ("runs", 1),
    ]
}

/// Runs core_fields on the test frame (relocated against `btf`, if given)
/// and compares what it wrote with what the kernel's BTF says.
fn check_layout(btf_file: Option<&str>, version: (u32, u32)) {
    let kernel = kbtf::load(btf_file.unwrap_or(kbtf::VMLINUX));
    let spec = ObjectSpec::from_file(obj("core_layout.bpf.o")).unwrap();
    let frame = ipv4_udp_frame(0);
    // The frame's own IPv4 facts, so that a wrong bitfield walk is caught too.
    assert_eq!(
        (frame[14] >> 4, frame[14] & 0xf),
        (4, 5),
        "IPv4, 20-byte header"
    );
    let want = expected_layout(&kernel, version, spec.btf.as_ref().unwrap(), &frame);
    let frame_file = TempFile::new("core-frame", &frame);
    let object = obj("core_layout.bpf.o");
    let mut args = vec![
        "run",
        &object,
        "--prog",
        "core_fields",
        "--data-in",
        frame_file.path(),
        "--dump",
        ".bss",
        "--json",
    ];
    if let Some(f) = btf_file {
        args.extend(["--btf", f]);
    }
    let doc = rawbpf_json(&args);
    assert_eq!(doc.get("retval").num(), 0, "TC_ACT_OK");
    let got = bss_struct("core_layout.bpf.o", "core_layout", &doc);
    let what = format!(
        "core_layout.bpf.o relocated against {} (kernel {}.{})",
        btf_file.unwrap_or(kbtf::VMLINUX),
        version.0,
        version.1
    );
    compare(&what, &got, &want);
}

/// Offsets, sizes, existence, enumerators, type ids and matches, context
/// and packet fields (bitfields included) as this kernel lays them out.
#[test]
fn layout_follows_the_kernels_btf() {
    if !kernel("layout_follows_the_kernels_btf") || !kernel_btf("layout_follows_the_kernels_btf") {
        return;
    }
    check_layout(None, kbtf::running_version());
}

/// The same program relocated against other kernels' BTF (`--btf`), when
/// `RAWBPF_CORE_BTFS` names a directory of them: the values are the
/// relocations' constants, so this kernel can run them all.
#[test]
fn layout_follows_other_kernels_btf() {
    let test = "layout_follows_other_kernels_btf";
    let Some(dir) = std::env::var_os("RAWBPF_CORE_BTFS") else {
        kernel_has(
            test,
            "RAWBPF_CORE_BTFS (a directory of kernel BTF files)",
            false,
        );
        return;
    };
    if !kernel(test) {
        return;
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("RAWBPF_CORE_BTFS={}: {e}", dir.to_string_lossy()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "RAWBPF_CORE_BTFS: no files");
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let version = kbtf::version_of(&name)
            .unwrap_or_else(|| panic!("{name}: name the file by its kernel version"));
        check_layout(Some(file.to_str().unwrap()), version);
    }
}

/// BPF_CORE_READ through the live task_struct: the test run of a raw
/// tracepoint program runs in the rawbpf process, so the pid and tgid it
/// reads are that child's, and its parent's tgid is this test's.
#[test]
fn core_read_of_the_current_task() {
    if !kernel("core_read_of_the_current_task") || !kernel_btf("core_read_of_the_current_task") {
        return;
    }
    let child = Command::new(env!("CARGO_BIN_EXE_rawbpf"))
        .args([
            "run",
            &obj("core_pid.bpf.o"),
            "--prog",
            "read_current_pid",
            "--dump",
            ".bss",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rawbpf");
    let child_pid = u64::from(child.id());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "rawbpf run: {}", stderr(&o));
    let doc = support::json::parse(&support::stdout(&o)).unwrap();
    assert_eq!(doc.get("retval").num(), 0);
    let got = bss_struct("core_pid.bpf.o", "core_pid", &doc);
    let me = u64::from(std::process::id());
    compare(
        "core_pid.bpf.o",
        &got,
        &[
            // rawbpf is one process and test-runs from its main thread.
            ("pid", child_pid),
            ("tgid", child_pid),
            ("leader_pid", child_pid),
            ("parent_tgid", me),
            ("leader_parent_tgid", me),
            // The kernel's helper, for the same facts without CO-RE.
            ("helper_pid", child_pid),
            ("helper_tgid", child_pid),
            ("runs", 1),
        ],
    );
}

/// Relocations no kernel satisfies, each behind a guard the loader resolves
/// to 0: the poisoned instructions are unreachable, the program loads and
/// runs, and the guarded values stay ABSENT.
#[test]
fn guarded_unsatisfiable_relocations_load() {
    if !kernel("guarded_unsatisfiable_relocations_load")
        || !kernel_btf("guarded_unsatisfiable_relocations_load")
    {
        return;
    }
    let kernel = kbtf::load(kbtf::VMLINUX);
    let task = kbtf::struct_id(&kernel, "task_struct");
    assert!(kbtf::member(&kernel, task, "rawbpf_no_such_field").is_none());
    assert!(kbtf::named(&kernel, BtfKind::Struct, "rawbpf_no_such_type").is_none());
    assert!(kbtf::enumerator(&kernel, "bpf_prog_type", "BPF_PROG_TYPE_RAWBPF_NONE").is_none());
    let doc = rawbpf_json(&[
        "run",
        &obj("core_guarded.bpf.o"),
        "--prog",
        "guarded_missing",
        "--dump",
        ".bss",
        "--json",
    ]);
    assert_eq!(doc.get("retval").num(), 0, "TC_ACT_OK");
    let got = bss_struct("core_guarded.bpf.o", "core_guards", &doc);
    compare(
        "core_guarded.bpf.o",
        &got,
        &[
            ("field_exists", 0),
            ("field_offset", ABSENT),
            ("type_exists", 0),
            ("type_size", ABSENT),
            ("enum_exists", 0),
            ("enum_value", ABSENT),
            ("runs", 1),
        ],
    );
}

/// The same missing field without a guard: the program cannot load, and the
/// error names the program and the relocation (type and field), not only
/// the verifier's complaint about the poisoned instruction.
#[test]
fn unguarded_unsatisfiable_relocation_is_named() {
    if !kernel("unguarded_unsatisfiable_relocation_is_named")
        || !kernel_btf("unguarded_unsatisfiable_relocation_is_named")
    {
        return;
    }
    let o = rawbpf(&["load", &obj("core_unguarded.bpf.o")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    for word in [
        "core_unguarded.bpf.o",
        "unguarded_missing",
        "task_struct",
        "rawbpf_no_such_field",
    ] {
        assert!(err.contains(word), "the error names {word}: {err}");
    }
}

/// Helper calls behind CO-RE guards on `enum bpf_func_id`: the guard is
/// what the kernel's BTF says (bpf_ktime_get_coarse_ns from 5.11; helper
/// #100000 never), the program loads on every kernel, and the branch the
/// guard picks is the one that ran.
#[test]
fn helpers_behind_core_guards_run_where_the_kernel_has_them() {
    if !kernel("helpers_behind_core_guards_run_where_the_kernel_has_them")
        || !kernel_btf("helpers_behind_core_guards_run_where_the_kernel_has_them")
    {
        return;
    }
    let kernel = kbtf::load(kbtf::VMLINUX);
    let coarse = kbtf::enumerator(&kernel, "bpf_func_id", "BPF_FUNC_ktime_get_coarse_ns").is_some();
    assert!(kbtf::enumerator(&kernel, "bpf_func_id", "BPF_FUNC_rawbpf_none").is_none());
    let doc = rawbpf_json(&[
        "run",
        &obj("core_helper_guard.bpf.o"),
        "--prog",
        "guarded_helpers",
        "--dump",
        ".bss",
        "--json",
    ]);
    assert_eq!(doc.get("retval").num(), 0, "TC_ACT_OK");
    let mut got = bss_struct("core_helper_guard.bpf.o", "helper_guards", &doc);
    let time = got.iter().position(|(f, _)| f == "time").unwrap();
    assert_ne!(got.remove(time).1, 0, "the helper that ran gave a time");
    compare(
        "core_helper_guard.bpf.o",
        &got,
        &[
            ("coarse_exists", u64::from(coarse)),
            ("coarse_used", u64::from(coarse)),
            ("none_exists", 0),
            ("none", ABSENT),
            ("runs", 1),
        ],
    );
}
