//! Crash safety (issues 13, 21): rawbpf killed with SIGKILL at every system call
//! of `attach`, `attach --replace`, `detach` and `swap` in turn (strace's
//! fault injection: `-e inject=SYSCALL:signal=KILL:when=K` for each system
//! call the command makes, as `strace -f -c` counts them, and each K up to
//! its count). After every kill these rules hold, each checked under its
//! name:
//!
//! - `never-two`: never more than one filter or TCX link on the hook;
//! - `keeps-one`: after `attach --replace` or `swap`, the hook still has one;
//! - `whole-chain`: the hook runs the old chain or the new one, whole: with
//!   a pipeline chain on it, no datagram of a batch of 10 arrives (with none,
//!   all do; after `swap`, none, or all tagged by the new stage 2);
//! - `list-exits-0`: `rawbpf list --json` exits 0;
//! - `list-explains`: on a half-done state (staged pins or leftovers of a
//!   process gone, pins without their filter or a filter without its pins,
//!   pins of another chain than the one running, a clsact qdisc with no
//!   filter), `rawbpf list` says what clears it (names `detach`);
//! - `detach-all-exits-0`: `rawbpf detach --all` exits 0 if anything was left
//!   (1 "nothing attached" only when nothing at all is);
//! - `detach-all-cleans`: after it, no filter, link or clsact qdisc, and
//!   nothing under `/sys/fs/bpf/rawbpf/ns_NS`;
//! - `attach-after-works`, `detach-after-cleans`: a plain `attach` then
//!   works, and `detach` cleans it up.
//!
//! One test per command on clsact filters (rawbpf's default mode), and the
//! attach, replace and detach again on TCX links where the kernel has them.
//! (XDP's attach, replace and detach: kernel_crash_xdp.rs.)
//! Every kill point is tried and failures are collected: each test prints
//! its number of kill points and ends with a summary by rule and a failing
//! assertion that names the command, the system call, K, what was found
//! (filters, qdiscs, TCX programs, the bpffs tree, `tc`'s view where it is
//! installed) and the strace command that reproduces it.
//! `RAWBPF_CRASH_AT=SYSCALL` or `SYSCALL#K` runs only those kill points;
//! `RAWBPF_CRASH_DETAILS=all` shows every failure, not three per rule.
//!
//! `crash_checks_catch_broken_hooks` shows that the checks catch what they
//! are for, on states made by hand; `crash_running_staging_untouched` pauses
//! a running `attach` and checks that `detach --all` and `list` leave its
//! staging directory alone.
//!
//!     cargo test --release -p rawbpf-cli --test kernel_crash -- --nocapture
//!
//! Each test builds its own namespaces (unique names) and removes them, pass
//! or fail. They need root and strace (tests/run.sh installs it); under
//! CI=true a missing strace is a failure, like any other skip.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::crash::{command, show, strace, tree};
use support::crash_hook::{Case, Cmd, Hook};
use support::net::Net;
use support::{json, kernel, kernel_has, obj, stderr, stdout, TempFile};

const RAWBPF: &str = env!("CARGO_BIN_EXE_rawbpf");

/// A rule broken at one kill point.
struct Failure {
    rule: &'static str,
    /// Command, system call and K.
    at: String,
    detail: String,
}

/// What one test found.
struct Report {
    case: String,
    points: usize,
    killed: usize,
    failing_points: usize,
    failures: Vec<Failure>,
    /// Counted calls this run did not reach (the count varies from run to
    /// run for some system calls).
    missed: Vec<String>,
}

/// Kill points of every test in this run, for the total.
static TOTAL: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

impl Report {
    /// Prints the summary; panics with the failures, by rule, if any.
    fn finish(self, started: Instant) {
        let total = {
            let mut t = TOTAL.lock().unwrap();
            t.push((self.case.clone(), self.killed));
            t.iter().map(|(_, n)| n).sum::<usize>()
        };
        let missed = if self.missed.is_empty() {
            String::new()
        } else {
            format!(
                "; counted but not reached this time: {}",
                self.missed.join(", ")
            )
        };
        let _ = writeln!(
            std::io::stderr(),
            "{}: {} kill points, plus {} runs past a call's count that ran to the end{missed}; \
             {} of these {} runs failing; {:.1} s [kill points so far in this run: {total}]",
            self.case,
            self.killed,
            self.points - self.killed,
            self.failing_points,
            self.points,
            started.elapsed().as_secs_f64()
        );
        if self.failures.is_empty() {
            return;
        }
        let mut by_rule: BTreeMap<&str, Vec<&Failure>> = BTreeMap::new();
        for f in &self.failures {
            by_rule.entry(f.rule).or_default().push(f);
        }
        let mut msg = format!(
            "{}: {} of {} runs ({} kill points) break the crash-safety rules\n",
            self.case, self.failing_points, self.points, self.killed
        );
        for (rule, fs) in &by_rule {
            let _ = writeln!(msg, "  rule {rule}: {} kill points", fs.len());
            let ats: Vec<&str> = fs.iter().map(|f| f.at.as_str()).collect();
            let _ = writeln!(msg, "    at: {}", ats.join(", "));
        }
        // RAWBPF_CRASH_DETAILS=all shows every failure, not three per rule.
        let shown = match std::env::var("RAWBPF_CRASH_DETAILS").as_deref() {
            Ok("all") => usize::MAX,
            _ => 3,
        };
        for fs in by_rule.values() {
            for f in fs.iter().take(shown) {
                let _ = write!(msg, "\n--- {} at {}\n{}", f.rule, f.at, f.detail);
            }
        }
        panic!("{msg}");
    }
}

/// Counts the command's system calls by name (`strace -f -c`).
fn count_syscalls(hook: &Hook, strace: &str, case: Case) -> BTreeMap<String, u32> {
    let file = TempFile::new("strace-c", b"");
    let o = command(strace)
        .args(["-f", "-qq", "-c", "-o", file.path(), RAWBPF])
        .args(hook.full_args(&case.args()))
        .output()
        .expect("run strace");
    assert!(
        o.status.success(),
        "{} under strace -c: {}{}",
        case.name(),
        stdout(&o),
        stderr(&o)
    );
    let text = std::fs::read_to_string(file.path()).unwrap();
    let mut counts = BTreeMap::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("------") {
            if in_table {
                break;
            }
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        // % time, seconds, usecs/call, calls, [errors], syscall
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 5 {
            continue;
        }
        let calls: u32 = cols[3]
            .parse()
            .unwrap_or_else(|_| panic!("strace -c: {line}"));
        counts.insert(cols[cols.len() - 1].to_owned(), calls);
    }
    assert!(!counts.is_empty(), "no system calls counted:\n{text}");
    counts
}

/// The "before" state: a bare hook, or the pipeline chain attached.
fn establish(hook: &Hook, case: Case) -> Result<(), String> {
    let s = hook.state();
    if !s.is_clean() {
        return Err(format!("the hook is not bare:\n{}", hook.describe(&s)));
    }
    if !case.on_a_chain() {
        return Ok(());
    }
    let o = hook.rawbpf(&case.plain_attach());
    if !o.status.success() {
        return Err(format!("attach: {}", show(&o)));
    }
    let s = hook.state();
    if s.hooked() != 1 {
        return Err(format!(
            "attach exited 0 but the hook has {} filters/links:\n{}",
            s.hooked(),
            hook.describe(&s)
        ));
    }
    let arrived = hook.net.batch().count;
    if arrived != 0 {
        return Err(format!(
            "attach exited 0 but {arrived} of 10 datagrams pass the chain"
        ));
    }
    Ok(())
}

/// Kills the command at the K-th call of `syscall` and checks the rules;
/// leaves the hook in the case's "before" state. Returns whether rawbpf was
/// killed (false: the command made fewer such calls this time and ran to
/// its end).
fn kill_point(
    hook: &Hook,
    strace: &str,
    case: Case,
    syscall: &str,
    k: u32,
    report: &mut Report,
) -> bool {
    let args = hook.full_args(&case.args());
    let trace = format!("trace={syscall}");
    let inject = format!("inject={syscall}:signal=KILL:when={k}");
    let run = command(strace)
        .args([
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            &trace,
            "-e",
            &inject,
            RAWBPF,
        ])
        .args(&args)
        .output()
        .expect("run strace");
    let killed = run.status.signal() == Some(libc::SIGKILL);
    report.points += 1;
    report.killed += usize::from(killed);
    let at = format!("{syscall} #{k}");
    let context = format!("{} killed at {syscall} call #{k}", case.name());
    let repro = format!(
        "    reproduce: strace -f -e {trace} -e {inject} rawbpf {}\n    the killed run: {}\n",
        args.join(" "),
        show(&run)
    );
    check_after(hook, case, &at, &context, &repro, report);
    killed
}

/// The rules, checked on the hook as a command left it; then the hook is
/// set back to the case's "before" state (by rawbpf if it can, else by
/// force).
fn check_after(hook: &Hook, case: Case, at: &str, context: &str, repro: &str, report: &mut Report) {
    let before = report.failures.len();
    let mut fail = |rule: &'static str, what: String, found: String| {
        report.failures.push(Failure {
            rule,
            at: at.to_owned(),
            detail: format!("{context}: {what}\n{repro}    found:\n{found}"),
        });
    };

    // 1. The hook: never two chains; one if it had one; a whole chain.
    let s = hook.state();
    let found = hook.describe(&s);
    if s.hooked() > 1 {
        fail(
            "never-two",
            format!("{} filters/links on the hook", s.hooked()),
            found.clone(),
        );
    }
    if matches!(case.cmd, Cmd::Replace | Cmd::Swap) && s.hooked() == 0 {
        fail(
            "keeps-one",
            "the hook had a chain before and has none now".into(),
            found.clone(),
        );
    }
    let got = hook.net.batch();
    let traffic_ok = match (case.cmd, s.hooked()) {
        // The old stage 2 drops, the new one tags: one or the other.
        (Cmd::Swap, _) => got.count == 0 || (got.count == 10 && got.tos.iter().all(|&t| t == 3)),
        (_, 0) => got.count == 10,
        _ => got.count == 0,
    };
    if !traffic_ok {
        fail(
            "whole-chain",
            format!(
                "{} filters/links on the hook, and {} of 10 datagrams arrived (TOS {:?}): \
                 the hook does not run the old chain or the new one, whole",
                s.hooked(),
                got.count,
                got.tos
            ),
            found.clone(),
        );
    }

    // 2. list exits 0, and names a half-done state and what clears it.
    let listed = hook.list(true);
    if !listed.status.success() || json::parse(&stdout(&listed)).is_err() {
        fail(
            "list-exits-0",
            format!("rawbpf list --json: {}", show(&listed)),
            found.clone(),
        );
    }
    if let Some(why) = hook.half_done(&s) {
        let text = hook.list(false);
        if !text.status.success() || !stdout(&text).contains("detach") {
            fail(
                "list-explains",
                format!(
                    "half-done ({why}) but `rawbpf list` does not say so or what clears it \
                     (no \"detach\" in it): {}",
                    show(&text)
                ),
                found.clone(),
            );
        }
    }

    // 3. detach --all reconciles: exit 0 if anything was left, then nothing is.
    let anything = s.hooked() > 0 || s.clsact() || !s.tree.is_empty();
    let d = hook.rawbpf(&["detach", "--all"]);
    let nothing_attached = d.status.code() == Some(1) && stderr(&d).contains("nothing attached");
    if !(d.status.success() || (!anything && nothing_attached)) {
        fail(
            "detach-all-exits-0",
            format!("rawbpf detach --all: {}", show(&d)),
            found.clone(),
        );
    }
    let after = hook.state();
    let mut clean = after.is_clean();
    if !clean {
        fail(
            "detach-all-cleans",
            format!(
                "after rawbpf detach --all ({}) there is still:\n{}",
                show(&d),
                hook.describe(&after)
            ),
            found.clone(),
        );
    }

    // 4. A plain attach works (and is the next kill point's chain), and
    // detach cleans it up.
    if clean {
        let a = hook.rawbpf(&case.plain_attach());
        let s = hook.state();
        let arrived = hook.net.batch().count;
        if !a.status.success() || s.hooked() != 1 || arrived != 0 {
            fail(
                "attach-after-works",
                format!(
                    "rawbpf attach after detach --all: {}; {} filters/links, {arrived} of 10 \
                     datagrams arrived",
                    show(&a),
                    s.hooked()
                ),
                hook.describe(&s),
            );
            clean = false;
        } else if !case.on_a_chain() {
            let d = hook.rawbpf(&["detach"]);
            let s = hook.state();
            if !d.status.success() || !s.is_clean() {
                fail(
                    "detach-after-cleans",
                    format!("rawbpf detach after that attach: {}", show(&d)),
                    hook.describe(&s),
                );
                clean = false;
            }
        }
    }
    if report.failures.len() > before {
        report.failing_points += 1;
    }
    if !clean {
        hook.force_clean();
        if let Err(e) = establish(hook, case) {
            panic!(
                "{}: cannot set the hook up again after {at}: {e}",
                case.name()
            );
        }
    }
}

/// Kills `case`'s command at every system call in turn and checks the rules
/// after each kill.
fn crash_test(test: &str, tag: &str, case: Case) {
    if !kernel(test) {
        return;
    }
    let Some(strace) = strace(test) else { return };
    let net = Net::new(tag);
    let hook = Hook::new(&net);
    if case.tcx && !kernel_has(test, "TCX (6.6)", probe_tcx()) {
        return;
    }
    let started = Instant::now();
    establish(&hook, case).unwrap_or_else(|e| panic!("{}: {e}", case.name()));
    let counts = count_syscalls(&hook, strace, case);
    let listed: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let _ = writeln!(
        std::io::stderr(),
        "{}: {} system calls: {}",
        case.name(),
        counts.values().sum::<u32>(),
        listed.join(", ")
    );
    hook.force_clean();
    establish(&hook, case).unwrap_or_else(|e| panic!("{}: {e}", case.name()));
    let mut report = Report {
        case: case.name(),
        points: 0,
        killed: 0,
        failing_points: 0,
        failures: Vec::new(),
        missed: Vec::new(),
    };
    // RAWBPF_CRASH_AT=SYSCALL or SYSCALL#K: only those kill points (to
    // reproduce a failure).
    let only = std::env::var("RAWBPF_CRASH_AT").ok();
    let only = only.as_deref().map(|o| match o.split_once('#') {
        Some((s, k)) => (s, k.parse::<u32>().ok()),
        None => (o, None),
    });
    for (syscall, &count) in &counts {
        if only.is_some_and(|(s, _)| s != syscall) {
            continue;
        }
        if let Some((_, Some(k))) = only {
            kill_point(&hook, strace, case, syscall, k, &mut report);
            continue;
        }
        // Every K up to the count, and on while runs still reach K (a count
        // may differ from run to run, e.g. epoll_wait).
        let mut k = 1;
        loop {
            let killed = kill_point(&hook, strace, case, syscall, k, &mut report);
            if k <= count && !killed {
                report.missed.push(format!("{syscall} #{k}"));
            }
            if k >= count && !killed {
                break;
            }
            assert!(k < count + 1000, "{syscall}: K runs away");
            k += 1;
        }
    }
    report.finish(started);
}

/// Whether the kernel has TCX (rawbpf probe --json says).
fn probe_tcx() -> bool {
    let o = command(RAWBPF).args(["probe", "--json"]).output().unwrap();
    stdout(&o).contains("\"tcx\":true")
}

#[test]
fn crash_attach() {
    crash_test(
        "crash_attach",
        "crash-at",
        Case {
            cmd: Cmd::Attach,
            tcx: false,
        },
    );
}

#[test]
fn crash_attach_replace() {
    crash_test(
        "crash_attach_replace",
        "crash-re",
        Case {
            cmd: Cmd::Replace,
            tcx: false,
        },
    );
}

#[test]
fn crash_detach() {
    crash_test(
        "crash_detach",
        "crash-de",
        Case {
            cmd: Cmd::Detach,
            tcx: false,
        },
    );
}

#[test]
fn crash_swap() {
    crash_test(
        "crash_swap",
        "crash-sw",
        Case {
            cmd: Cmd::Swap,
            tcx: false,
        },
    );
}

#[test]
fn crash_attach_tcx() {
    crash_test(
        "crash_attach_tcx",
        "crash-atx",
        Case {
            cmd: Cmd::Attach,
            tcx: true,
        },
    );
}

#[test]
fn crash_attach_replace_tcx() {
    crash_test(
        "crash_attach_replace_tcx",
        "crash-rex",
        Case {
            cmd: Cmd::Replace,
            tcx: true,
        },
    );
}

#[test]
fn crash_detach_tcx() {
    crash_test(
        "crash_detach_tcx",
        "crash-dex",
        Case {
            cmd: Cmd::Detach,
            tcx: true,
        },
    );
}

/// The checks catch what they are there for: states no kill may leave (two
/// chains on the hook, a filter whose chain lost its stage 2, a bare hook
/// after a replace), made here by hand, are reported under their rule.
#[test]
fn crash_checks_catch_broken_hooks() {
    let test = "crash_checks_catch_broken_hooks";
    if !kernel(test) {
        return;
    }
    let net = Net::new("crash-self");
    let hook = Hook::new(&net);
    let ok = |o: Output| assert!(o.status.success(), "{}", show(&o));
    let case = |cmd| Case { cmd, tcx: false };
    let check = |c: Case| {
        let mut report = Report {
            case: c.name(),
            points: 0,
            killed: 0,
            failing_points: 0,
            failures: Vec::new(),
            missed: Vec::new(),
        };
        check_after(&hook, c, "made by hand", "a broken hook", "", &mut report);
        report.failures.iter().map(|f| f.rule).collect::<Vec<_>>()
    };

    // Two chains at once.
    ok(hook.rawbpf(&case(Cmd::Attach).plain_attach()));
    ok(hook.rawbpf(&["attach", &obj("pipeline.bpf.o"), "--priority", "2"]));
    let rules = check(case(Cmd::Attach));
    assert!(rules.contains(&"never-two"), "{rules:?}");

    // A filter whose chain lost its pins: the prog array is emptied, so
    // stage 2 is gone and marked packets pass.
    establish(&hook, case(Cmd::Detach)).unwrap();
    std::fs::remove_dir_all(net.pin_dir("ingress")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while net.batch().count == 0 {
        assert!(Instant::now() < deadline, "the prog array is not emptied");
        std::thread::sleep(Duration::from_millis(10));
    }
    let rules = check(case(Cmd::Detach));
    assert!(rules.contains(&"whole-chain"), "{rules:?}");

    // A replace that left the hook bare.
    hook.force_clean();
    let rules = check(case(Cmd::Replace));
    assert!(rules.contains(&"keeps-one"), "{rules:?}");
    hook.rawbpf(&["detach", "--all"]);
    hook.force_clean();
}

/// Starts `strace ... rawbpf attach pipeline.bpf.o --netns B --dev B` with
/// the given pause.
fn paused_attach(hook: &Hook, strace: &str, pause: &[&str]) -> Child {
    command(strace)
        .args(["-f", "-qq", "-o", "/dev/null"])
        .args(pause)
        .arg(RAWBPF)
        .args(hook.full_args(&["attach", &obj("pipeline.bpf.o")]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strace")
}

/// Staging of a running rawbpf is never touched: an `attach` paused after
/// pinning its chain to its staging directory (at its first netlink message,
/// before the hook runs anything; and at the rename that makes the staged
/// pins final, after the hook runs the new chain) keeps its staging through
/// `detach --all` and `list`, then finishes, and its chain works.
#[test]
fn crash_running_staging_untouched() {
    let test = "crash_running_staging_untouched";
    if !kernel(test) {
        return;
    }
    let Some(strace) = strace(test) else { return };
    let net = Net::new("crash-stage");
    let hook = Hook::new(&net);
    // 5 s: the paused attach holds the device's lock, and detach --all waits
    // for it (HOOK_LOCK_WAIT, 2 s) before giving up; list runs after that.
    let pauses: [(&str, [&str; 4]); 2] = [
        (
            "at its first netlink message",
            [
                "-e",
                "trace=sendto,sendmsg",
                "-e",
                "inject=sendto,sendmsg:delay_enter=5000000:when=1",
            ],
        ),
        (
            "at the rename of its staged pins",
            [
                "-e",
                "trace=rename,renameat,renameat2",
                "-e",
                "inject=rename,renameat,renameat2:delay_enter=5000000",
            ],
        ),
    ];
    for (when, pause) in pauses {
        assert!(hook.state().is_clean(), "{when}: the hook is not bare");
        let mut child = paused_attach(&hook, strace, &pause);
        // Wait (polling) for the staging directory to appear while the attach
        // is paused.
        let deadline = Instant::now() + Duration::from_secs(20);
        let staging = loop {
            let found = std::fs::read_dir(&hook.ingress_dir).ok().and_then(|d| {
                d.flatten().map(|e| e.path()).find(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("1_new_")
                })
            });
            if let Some(dir) = found {
                break dir;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{when}: the attach ended ({status}) before its staging directory under {} \
                     was seen (if attach no longer stages its pins before this point, move the \
                     pause): {:?}",
                    hook.ingress_dir.display(),
                    child.wait_with_output().unwrap()
                );
            }
            assert!(Instant::now() < deadline, "{when}: no staging directory");
            std::thread::sleep(Duration::from_millis(5));
        };
        // Give the attach the moment it needs to finish pinning into it.
        let staged = loop {
            let t = tree(&staging);
            if t.iter().any(|p| p == "mark_packet") && t.iter().any(|p| p == "prog_array") {
                break t;
            }
            assert!(
                child.try_wait().unwrap().is_none() && Instant::now() < deadline,
                "{when}: the staging directory {} never held the chain: {t:?}",
                staging.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let detached = hook.rawbpf(&["detach", "--all"]);
        let listed = hook.list(true);
        assert!(
            child.try_wait().unwrap().is_none(),
            "{when}: the attach was no longer paused while detach --all and list ran; \
             lengthen the pause"
        );
        let s = hook.state();
        assert_eq!(
            tree(&staging),
            staged,
            "{when}: detach --all ({}) touched the staging directory {} of a running attach\n{}",
            show(&detached),
            staging.display(),
            hook.describe(&s)
        );
        assert!(
            listed.status.success() && json::parse(&stdout(&listed)).is_ok(),
            "{when}: rawbpf list --json while an attach runs: {}",
            show(&listed)
        );
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{when}: the paused attach, after detach --all ({}) ran meanwhile: {}",
            show(&detached),
            show(&out)
        );
        let s = hook.state();
        let arrived = net.batch().count;
        assert!(
            s.hooked() == 1 && arrived == 0,
            "{when}: after the attach finished (detach --all ran meanwhile: {}), {} \
             filters/links and {arrived} of 10 datagrams arrived:\n{}",
            show(&detached),
            s.hooked(),
            hook.describe(&s)
        );
        assert!(!staging.exists(), "{when}: the staging directory stayed");
        let d = hook.rawbpf(&["detach"]);
        let s = hook.state();
        assert!(
            d.status.success() && s.is_clean(),
            "{when}: detach: {}\n{}",
            show(&d),
            hook.describe(&s)
        );
    }
}
