//! Loading tracing programs into the real kernel, through the CLI and the
//! library: BTF attach targets (tp_btf, iter, fentry/fexit/fmod_ret, lsm,
//! freplace), kconfig and ksym externs, and raw tracepoint runs.
//! Needs root (skips with a reason otherwise; under CI=true a skip fails).

mod support;

use rawbpf::load::{Collection, LoadOptions};
use rawbpf::packet::ipv4_udp_frame;
use rawbpf::ObjectSpec;
use support::load::{load, retval, u64_le, unhex};
use support::{kernel, obj, rawbpf, rawbpf_json, stderr, TempFile};
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
