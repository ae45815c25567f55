//! Tracing links in the real kernel, through the library: each kind is
//! attached by its section, its event triggered from this thread, its
//! counter read; after the link goes, the counter stays still. Kinds this
//! kernel lacks (kprobes, trampolines) skip by probe; bad targets give a
//! `LinkError` naming the program and the target. Needs root (skips with a
//! reason otherwise; under CI=true a skip fails).

#[path = "../../tests/support/mod.rs"]
mod support;

use rawbpf::link::{attach_program, AttachTargets, Link, LinkError};
use rawbpf::{Collection, LoadOptions, ObjectSpec};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{kernel, kernel_has, obj};

/// Counter slots of programs/link_tracing.bpf.c.
const TP: u32 = 0;
const RAW_TP: u32 = 1;
const TP_BTF: u32 = 2;
const UPROBE: u32 = 3;
const URETPROBE: u32 = 4;
const PERF_EVENT: u32 = 5;
const LIBC_UPROBE: u32 = 6;
const UPROBE_MULTI: u32 = 7;

/// The function the uprobe tests probe, in this test binary.
#[no_mangle]
#[inline(never)]
pub extern "C" fn rawbpf_link_test_target(x: u64) -> u64 {
    black_box(x).wrapping_mul(3)
}

/// A USDT probe site `rawbpf:test` with one argument (`x`, 8 bytes in a
/// register), written as <sys/sdt.h>'s STAP_PROBE1 writes it: a nop and a
/// `.note.stapsdt` note giving its address, the `.stapsdt.base` address
/// and the argument spec.
#[cfg(target_arch = "x86_64")]
#[no_mangle]
#[inline(never)]
pub extern "C" fn rawbpf_usdt_site(x: u64) -> u64 {
    // SAFETY: the code is one nop; the rest is data in sections of their
    // own (the note, and the one-byte .stapsdt.base every site shares).
    unsafe {
        std::arch::asm!(
            "990: nop",
            ".pushsection .note.stapsdt,\"?\",\"note\"",
            ".balign 4",
            ".4byte 992f-991f, 994f-993f, 3",
            "991: .asciz \"stapsdt\"",
            "992: .balign 4",
            "993: .8byte 990b",
            ".8byte _.stapsdt.base",
            ".8byte 0",
            ".asciz \"rawbpf\"",
            ".asciz \"test\"",
            ".asciz \"8@{0}\"",
            "994: .balign 4",
            ".popsection",
            ".ifndef _.stapsdt.base",
            ".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat",
            ".weak _.stapsdt.base",
            ".hidden _.stapsdt.base",
            "_.stapsdt.base: .space 1",
            ".size _.stapsdt.base, 1",
            ".popsection",
            ".endif",
            in(reg) x,
            options(att_syntax, nostack, preserves_flags),
        );
    }
    x
}

struct Loaded {
    spec: ObjectSpec,
    c: Collection,
}

fn load(name: &str) -> Loaded {
    let spec = ObjectSpec::from_file(obj(name)).unwrap();
    let c = Collection::load(&spec, &LoadOptions::for_file(Path::new(name)))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"));
    Loaded { spec, c }
}

impl Loaded {
    fn attach(&self, prog: &str, targets: &AttachTargets) -> Result<Vec<Link>, LinkError> {
        attach_program(
            self.c.program(prog).unwrap(),
            self.spec.program(prog).unwrap(),
            targets,
        )
    }

    /// The programs count only this thread's events.
    fn watch_this_thread(&self) {
        let tid = nix::unistd::gettid().as_raw() as u32;
        self.c
            .map("target_tid")
            .unwrap()
            .update(&0u32.to_ne_bytes(), &tid.to_ne_bytes())
            .unwrap();
    }

    fn count(&self, slot: u32) -> u64 {
        let v = self
            .c
            .map("counts")
            .unwrap()
            .lookup(&slot.to_ne_bytes())
            .unwrap()
            .unwrap();
        u64::from_ne_bytes(v[..8].try_into().unwrap())
    }

    /// Attaches `prog`, triggers, sees its counter grow; drops the links,
    /// triggers again, sees it stay.
    fn runs_only_while_attached(
        &self,
        prog: &str,
        slot: u32,
        targets: &AttachTargets,
        trigger: impl Fn(),
    ) -> Vec<String> {
        self.watch_this_thread();
        let links = self
            .attach(prog, targets)
            .unwrap_or_else(|e| panic!("attach {prog}: {e}"));
        assert!(!links.is_empty(), "{prog}: no link");
        support::mechanism("kernel_link_tracing", &links[0]);
        let described = links.iter().map(|l| l.target().to_owned()).collect();
        let before = self.count(slot);
        trigger();
        let during = self.count(slot);
        assert!(
            during > before,
            "{prog}: did not run while attached ({before} then {during})"
        );
        drop(links);
        // Kernels before 6.4 free a closed link from a work item.
        std::thread::sleep(Duration::from_millis(50));
        let after = self.count(slot);
        trigger();
        assert_eq!(self.count(slot), after, "{prog}: still runs after detach");
        described
    }
}

fn getppid_a_few_times() {
    for _ in 0..5 {
        black_box(nix::unistd::getppid());
    }
}

#[test]
fn tracepoint_runs_through_a_perf_event_link() {
    if !kernel("tracepoint_runs_through_a_perf_event_link") {
        return;
    }
    let l = load("link_tracing.bpf.o");
    // What kind of attachment this kernel gave: a BPF link (5.15+) holds
    // the perf event after its fd is closed, so the program still runs.
    l.watch_this_thread();
    let links = l.attach("on_tp", &AttachTargets::default()).unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].target(), "tracepoint syscalls/sys_enter_getppid");
    if let Some(info) = links[0].info().unwrap() {
        assert_eq!(info.link_type, 7, "BPF_LINK_TYPE_PERF_EVENT");
        assert_eq!(info.prog_id, l.c.program("on_tp").unwrap().id);
    } else {
        assert!(links[0].perf_event_fd().is_some());
    }
    drop(links);
    l.runs_only_while_attached("on_tp", TP, &AttachTargets::default(), getppid_a_few_times);
}

#[test]
fn raw_tp_and_tp_btf_run() {
    if !kernel("raw_tp_and_tp_btf_run") {
        return;
    }
    let l = load("link_tracing.bpf.o");
    let t = AttachTargets::default();
    l.runs_only_while_attached("on_raw_tp", RAW_TP, &t, getppid_a_few_times);
    l.runs_only_while_attached("on_tp_btf", TP_BTF, &t, getppid_a_few_times);
}

fn own_function() -> AttachTargets {
    let mut t = AttachTargets::default();
    t.uprobe_binary = Some(std::env::current_exe().unwrap());
    t.uprobe_symbol = Some("rawbpf_link_test_target".into());
    t
}

fn call_own_function() {
    for i in 0..3 {
        black_box(rawbpf_link_test_target(black_box(i)));
    }
}

#[test]
fn uprobe_and_uretprobe_run_on_a_function_of_this_binary() {
    if !kernel("uprobe_and_uretprobe_run_on_a_function_of_this_binary")
        || !kernel_has(
            "uprobe_and_uretprobe_run_on_a_function_of_this_binary",
            "uprobes (no uprobe PMU)",
            Path::new("/sys/bus/event_source/devices/uprobe").exists(),
        )
    {
        return;
    }
    let l = load("link_tracing.bpf.o");
    let t = own_function();
    let d = l.runs_only_while_attached("on_uprobe", UPROBE, &t, call_own_function);
    assert!(
        d[0].starts_with("uprobe ") && d[0].ends_with(":rawbpf_link_test_target"),
        "{d:?}"
    );
    l.runs_only_while_attached("on_uretprobe", URETPROBE, &t, call_own_function);
    // Limited to this process, it runs too.
    let mut mine = own_function();
    mine.pid = Some(std::process::id());
    l.runs_only_while_attached("on_uprobe", UPROBE, &mine, call_own_function);
}

/// A section naming a shared library without a directory
/// (`uprobe/libc.so.6:getppid`): found in the library directories, the
/// offset from its dynamic symbols; and a uprobe multi-link on a glob.
#[test]
fn uprobe_on_a_shared_library_and_uprobe_multi() {
    let test = "uprobe_on_a_shared_library_and_uprobe_multi";
    if !kernel(test)
        || !kernel_has(
            test,
            "uprobes (no uprobe PMU)",
            Path::new("/sys/bus/event_source/devices/uprobe").exists(),
        )
        // The probe is on the C library this test process calls getppid
        // through: none when it is linked statically (the kernel matrix).
        || !kernel_has(
            test,
            "a shared libc.so.6 in this process (a static test binary)",
            std::fs::read_to_string("/proc/self/maps").is_ok_and(|m| m.contains("/libc.so.6")),
        )
    {
        return;
    }
    let l = load("link_tracing.bpf.o");
    let d = l.runs_only_while_attached(
        "on_libc_getppid",
        LIBC_UPROBE,
        &AttachTargets::default(),
        getppid_a_few_times,
    );
    assert_eq!(d, ["uprobe libc.so.6:getppid"]);

    let mut t = own_function();
    t.uprobe_symbol = Some("rawbpf_link_test_targ*".into());
    match l.attach("on_uprobe_multi", &t) {
        Err(LinkError::Unsupported { what, .. }) => {
            kernel_has(test, &format!("uprobe multi-links ({what})"), false);
        }
        other => {
            drop(other.unwrap());
            l.runs_only_while_attached("on_uprobe_multi", UPROBE_MULTI, &t, call_own_function);
        }
    }
}

/// A USDT probe of this binary: the site is found in its notes, the
/// program runs with the site's spec (cookie) and reads the argument.
#[cfg(target_arch = "x86_64")]
#[test]
fn usdt_runs_and_reads_its_argument() {
    let test = "usdt_runs_and_reads_its_argument";
    if !kernel(test)
        || !kernel_has(
            test,
            "uprobes (no uprobe PMU)",
            Path::new("/sys/bus/event_source/devices/uprobe").exists(),
        )
    {
        return;
    }
    let l = load("link_usdt.bpf.o");
    let mut t = AttachTargets::default();
    t.uprobe_binary = Some(std::env::current_exe().unwrap());
    t.uprobe_symbol = Some("rawbpf:test".into());
    if !rawbpf::kconfig::has_bpf_cookie() {
        // Before 5.15 the spec is keyed by the site's address, which for a
        // position-independent binary only one process knows.
        let pie = {
            let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
            exe.get(16..18) == Some(&3u16.to_le_bytes()[..]) // ET_DYN
        };
        if pie {
            let err = l.attach("on_usdt", &t).unwrap_err().to_string();
            assert!(
                err.contains("on_usdt") && err.contains("give its pid"),
                "{err}"
            );
        }
        eprintln!("{test}: no BPF cookies: specs keyed by address (pie: {pie})");
        t.pid = Some(std::process::id());
    }
    let fire = || {
        for x in [7, 42] {
            black_box(rawbpf_usdt_site(black_box(x)));
        }
    };
    let sites = l.runs_only_while_attached("on_usdt", 0, &t, fire);
    assert_eq!(sites.len(), 1, "{sites:?}");
    assert!(sites[0].contains(":rawbpf:test at 0x"), "{sites:?}");
    assert_eq!(l.count(1), 42, "the probe's argument");

    t.uprobe_symbol = Some("rawbpf:absent".into());
    let err = l.attach("on_usdt", &t).unwrap_err().to_string();
    assert!(
        err.contains("on_usdt") && err.contains("no USDT probe rawbpf:absent"),
        "{err}"
    );
}

/// A link pinned in bpffs outlives its value; removing the pin ends it.
#[test]
fn pinned_link_outlives_its_value() {
    let test = "pinned_link_outlives_its_value";
    if !kernel(test) {
        return;
    }
    let dir = support::BpffsDir::new("link-tracing-pin");
    std::fs::create_dir_all(&dir.0).unwrap();
    let l = load("link_tracing.bpf.o");
    l.watch_this_thread();
    let mut links = l.attach("on_tp", &AttachTargets::default()).unwrap();
    let pin = dir.0.join("on_tp");
    if links[0].fd().is_none() {
        // Before 5.15 a tracepoint is attached with an ioctl: no link to pin.
        let err = links[0].pin(&pin).unwrap_err();
        assert!(matches!(err, LinkError::NotPinnable { .. }), "{err}");
        kernel_has(test, "perf-event links (5.15)", false);
        return;
    }
    links[0].pin(&pin).unwrap();
    assert_eq!(links[0].pinned_at(), Some(pin.as_path()));
    drop(links);
    let before = l.count(TP);
    getppid_a_few_times();
    assert!(l.count(TP) > before, "the pinned link went with its value");
    std::fs::remove_file(&pin).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let after = l.count(TP);
    getppid_a_few_times();
    assert_eq!(
        l.count(TP),
        after,
        "still attached after the pin was removed"
    );
}

/// freplace through attach_program: the replacement runs while linked.
#[test]
fn freplace_replaces_while_attached() {
    use rawbpf::packet::ipv4_udp_frame;
    let test = "freplace_replaces_while_attached";
    if !kernel(test) {
        return;
    }
    let frame = ipv4_udp_frame(0);
    let target = load("freplace_target.bpf.o");
    let entry = target.c.program("entry").unwrap();
    let retval = || entry.test_run(&frame, 1).unwrap().retval;
    assert_eq!(retval(), 1, "pick() of a packet");
    let spec = ObjectSpec::from_file(obj("freplace.bpf.o")).unwrap();
    let mut opts = LoadOptions::for_file(Path::new("freplace.bpf.o"));
    opts.attach_prog = Some(entry.id);
    let c = match Collection::load(&spec, &opts) {
        Ok(c) => c,
        Err(e) if !trampolines(test) => {
            eprintln!("(freplace load: {e})");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let ext = Loaded { spec, c };
    let links = ext.attach("new_pick", &AttachTargets::default()).unwrap();
    assert_eq!(retval(), 2, "new_pick() replaced pick()");
    drop(links);
    assert_eq!(retval(), 1, "pick() again");
}

#[test]
fn perf_event_samples_on_each_cpu() {
    if !kernel("perf_event_samples_on_each_cpu") {
        return;
    }
    let l = load("link_tracing.bpf.o");
    let mut t = AttachTargets::default();
    t.sample_freq = Some(999);
    // Busy for at most 3 s, until a sample lands in this thread.
    let spin = || {
        let start = Instant::now();
        let first = l.count(PERF_EVENT);
        while start.elapsed() < Duration::from_secs(3) {
            for i in 0..100_000u64 {
                black_box(i);
            }
            if l.count(PERF_EVENT) > first && start.elapsed() > Duration::from_millis(100) {
                break;
            }
        }
    };
    let cpus = l.runs_only_while_attached("on_sample", PERF_EVENT, &t, spin);
    let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    let max = possible
        .trim()
        .rsplit(['-', ','])
        .next()
        .unwrap()
        .parse::<usize>()
        .unwrap()
        + 1;
    assert!(
        !cpus.is_empty() && cpus.len() <= max,
        "one link per online CPU: {cpus:?}"
    );
    assert!(cpus
        .iter()
        .all(|c| c.starts_with("perf_event cpu-clock 999 Hz on CPU ")));
}

#[test]
fn task_iterator_lists_this_process() {
    if !kernel("task_iterator_lists_this_process") {
        return;
    }
    let l = load("link_tracing.bpf.o");
    let links = l.attach("dump_tasks", &AttachTargets::default()).unwrap();
    let text = links[0].read_iter().unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("rawbpf tasks"), "{text}");
    let me = std::process::id().to_string();
    assert!(
        lines.any(|l| l == me),
        "pid {me} not in the iterator's text"
    );
    // Each read runs it again.
    assert!(links[0].read_iter().unwrap().starts_with("rawbpf tasks\n"));
}

#[test]
fn bad_targets_name_the_program_and_the_target() {
    if !kernel("bad_targets_name_the_program_and_the_target") {
        return;
    }
    let l = load("link_tracing.bpf.o");
    let err = l
        .attach("on_missing", &AttachTargets::default())
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LinkError::TargetNotFound { .. }), "{text}");
    assert!(
        text.contains("on_missing") && text.contains("rawbpf_none/missing"),
        "{text}"
    );
    assert!(text.contains("no such tracepoint"), "{text}");

    let mut t = own_function();
    t.uprobe_symbol = Some("rawbpf_no_such_function".into());
    let err = l.attach("on_uprobe", &t).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LinkError::TargetNotFound { .. }), "{text}");
    assert!(
        text.contains("on_uprobe") && text.contains("rawbpf_no_such_function"),
        "{text}"
    );

    let mut t = own_function();
    t.uprobe_binary = Some("/nonexistent/rawbpf-binary".into());
    let err = l.attach("on_uretprobe", &t).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LinkError::TargetNotFound { .. }), "{text}");
    assert!(
        text.contains("on_uretprobe") && text.contains("/nonexistent/rawbpf-binary"),
        "{text}"
    );

    // A process that does not exist (above the kernel's pid_max limit).
    let mut t = own_function();
    t.pid = Some(1 << 30);
    let err = l.attach("on_uprobe", &t).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LinkError::TargetNotFound { .. }), "{text}");
    assert!(
        text.contains("on_uprobe") && text.contains("in process 1073741824"),
        "{text}"
    );

    let err = l
        .attach("on_uprobe", &AttachTargets::default())
        .unwrap_err();
    assert!(matches!(err, LinkError::NoTarget { .. }), "{err}");
    assert!(err.to_string().contains("on_uprobe"), "{err}");

    // Nothing was left attached: the programs run nowhere.
    l.watch_this_thread();
    getppid_a_few_times();
    call_own_function();
    assert_eq!(l.count(UPROBE), 0);
    assert_eq!(l.count(URETPROBE), 0);
}

#[test]
fn kprobes_run_or_say_the_kernel_has_none() {
    let test = "kprobes_run_or_say_the_kernel_has_none";
    if !kernel(test) {
        return;
    }
    let l = load("link_kprobe.bpf.o");
    let t = AttachTargets::default();
    if !Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        let err = l.attach("on_getppid", &t).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("on_getppid") && text.contains("this kernel has no kprobes"),
            "{text}"
        );
        kernel_has(test, "kprobes (no kprobe PMU)", false);
        return;
    }
    l.runs_only_while_attached("on_getppid", 0, &t, getppid_a_few_times);
    l.runs_only_while_attached("on_getppid_ret", 1, &t, getppid_a_few_times);
    match l.attach("on_getppid_multi", &t) {
        Err(LinkError::Unsupported { what, .. }) => {
            kernel_has(test, &format!("kprobe multi-links ({what})"), false);
        }
        other => {
            drop(other.unwrap());
            l.runs_only_while_attached("on_getppid_multi", 2, &t, getppid_a_few_times);
        }
    }
}

/// The id of a function in vmlinux BTF.
fn vmlinux_func(name: &str) -> Option<u32> {
    let bytes = std::fs::read(rawbpf::kernel_btf::VMLINUX).ok()?;
    rawbpf::obj::btf::Btf::parse(&bytes)
        .ok()?
        .find_by_name(rawbpf::obj::btf::BtfKind::Func, name)
}

/// Whether this kernel loads trampoline programs (fentry, fexit, freplace,
/// lsm): an fentry stub on bpf_fentry_test1. This project's build machine
/// refuses them with EPERM.
fn trampolines(test: &str) -> bool {
    let refused = match vmlinux_func("bpf_fentry_test1") {
        None => Some("bpf_fentry_test1 in vmlinux BTF".to_owned()),
        Some(id) => rawbpf::probe::probe_fentry(id)
            .err()
            .map(|e| format!("trampoline programs (an fentry stub: {e})")),
    };
    match refused {
        None => true,
        Some(what) => kernel_has(test, &what, false),
    }
}

#[test]
fn fentry_runs_while_attached() {
    let test = "fentry_runs_while_attached";
    if !kernel(test) {
        return;
    }
    if !trampolines(test) {
        return;
    }
    let l = load("attach_fentry.bpf.o");
    let calls = || {
        let bss =
            l.c.map(".bss")
                .unwrap()
                .lookup(&0u32.to_ne_bytes())
                .unwrap()
                .unwrap();
        u64::from_ne_bytes(bss[..8].try_into().unwrap())
    };
    let prog = l.c.program("on_test1").unwrap();
    let links = l.attach("on_test1", &AttachTargets::default()).unwrap();
    support::mechanism(test, &links[0]);
    prog.test_run_ctx(&[]).unwrap();
    let during = calls();
    assert!(during > 0, "fentry did not run");
    drop(links);
    std::thread::sleep(Duration::from_millis(50));
    prog.test_run_ctx(&[]).unwrap();
    assert_eq!(calls(), during, "fentry still runs after detach");
}
