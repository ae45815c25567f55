//! Crash safety of XDP attach (issue 21): `attach --xdp`, `attach --xdp
//! --replace` and `detach --xdp` killed with SIGKILL at every system call
//! (strace's fault injection), as kernel_crash.rs does for clsact filters
//! and TCX links; the rules checked after each kill are below. Needs root
//! and strace (tests/run.sh installs it); under CI=true a missing strace
//! is a failure, like any other skip.
//!
//!     cargo test --release -p rawbpf-cli --test kernel_crash_xdp -- --nocapture

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::time::Instant;
use support::crash::{command, show, strace, tree};
use support::net::Net;
use support::{json, kernel, obj, stdout, TempFile};

const RAWBPF: &str = env!("CARGO_BIN_EXE_rawbpf");

// ---------------------------------------------------------------------- XDP
//
// `attach --xdp` on a bare device, `attach --xdp --replace` over it and
// `detach --xdp`, each killed at every system call (issue 21). xdp.bpf.o
// drops UDP to port 4242, so a batch of 10 datagrams to that port says
// whether the device runs it: all (none) arrive. After each kill:
// `list --json` exits 0 (`list-exits-0`); the device runs the program
// whole or not at all, and still runs it after a killed replace
// (`keeps-one`); pins and hook agree, or `list` names what is half-done
// (`list-explains`); `detach --xdp --all` then exits 0 (1 only when
// nothing at all was left) and leaves neither program nor pins (`detach-cleans`); a
// plain attach then works (`attach-after-works`).

/// The command killed, on the XDP hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XdpCmd {
    Attach,
    Replace,
    Detach,
}

fn xdp_args(cmd: XdpCmd, net: &Net) -> Vec<String> {
    let mut v: Vec<String> = match cmd {
        XdpCmd::Attach => vec!["attach".into(), obj("xdp.bpf.o")],
        XdpCmd::Replace => vec!["attach".into(), obj("xdp.bpf.o"), "--replace".into()],
        XdpCmd::Detach => vec!["detach".into()],
    };
    v.extend([
        "--xdp".into(),
        "--netns".into(),
        net.lab.ns_b.clone(),
        "--dev".into(),
        net.lab.dev_b.clone(),
    ]);
    v
}

/// The rules after one kill; returns what broke them and leaves the device
/// as `cmd` expects it before (bare, or the program attached).
fn xdp_check(net: &Net, to_4242: &dyn Fn() -> usize, cmd: XdpCmd) -> Vec<String> {
    let mut broken = Vec::new();
    let pins = Path::new(rawbpf::attach::PIN_ROOT)
        .join(format!("ns_{}", net.lab.ns_b))
        .join(&net.lab.dev_b)
        .join("xdp");
    let arrived = to_4242();
    let runs = arrived == 0;
    if arrived != 0 && arrived != 10 {
        broken.push(format!("whole-program: {arrived} of 10 arrived"));
    }
    if cmd == XdpCmd::Replace && !runs {
        broken.push("keeps-one: a killed replace left the device without XDP".into());
    }
    let list = command(RAWBPF)
        .args(["list", "--netns", &net.lab.ns_b, "--json"])
        .output()
        .unwrap();
    if !list.status.success() {
        broken.push(format!("list-exits-0: {}", show(&list)));
    } else {
        let doc = json::parse(&stdout(&list)).unwrap();
        let hooked = doc
            .get("filters")
            .array()
            .iter()
            .any(|f| f.get("direction").str() == "xdp");
        let whole = pins.join("0").join("xdp_drop_port").exists();
        let explained = !doc.get("leftovers").array().is_empty();
        let tree_left = !tree(&pins).is_empty();
        if hooked != runs {
            broken.push(format!(
                "list-shows: list says {hooked}, packets say {runs}"
            ));
        }
        let half_done = (runs && !whole) || (!runs && tree_left);
        if half_done && !explained {
            broken.push(format!(
                "list-explains: runs {runs}, pins {:?}, nothing listed as half-done",
                tree(&pins)
            ));
        }
    }
    // Anything of rawbpf's for the namespace, empty directories included.
    let anything = runs || !tree(pins.parent().unwrap().parent().unwrap()).is_empty();
    let d = command(RAWBPF)
        .args(xdp_args(XdpCmd::Detach, net))
        .arg("--all")
        .output()
        .unwrap();
    let want = if anything { 0 } else { 1 };
    if d.status.code() != Some(want) {
        broken.push(format!("detach-exits-{want}: {}", show(&d)));
    }
    if to_4242() != 10 || !tree(&pins).is_empty() {
        broken.push(format!("detach-cleans: pins {:?}", tree(&pins)));
        let _ = std::fs::remove_dir_all(&pins);
    }
    let a = command(RAWBPF)
        .args(xdp_args(XdpCmd::Attach, net))
        .output()
        .unwrap();
    if !a.status.success() || to_4242() != 0 {
        broken.push(format!("attach-after-works: {}", show(&a)));
    }
    if cmd == XdpCmd::Attach {
        let d = command(RAWBPF)
            .args(xdp_args(XdpCmd::Detach, net))
            .output()
            .unwrap();
        if !d.status.success() || to_4242() != 10 {
            broken.push(format!("detach-after-cleans: {}", show(&d)));
        }
    }
    broken
}

fn crash_xdp(test: &str, cmd: XdpCmd) {
    if !kernel(test) {
        return;
    }
    let Some(strace) = strace(test) else { return };
    let net = Net::new("crash-xdp");
    let dropped = net.lab.receiver(4242).unwrap();
    let to_4242 = || {
        net.tx.send_batch(4242, 10).unwrap();
        dropped.collect_batch().unwrap().count
    };
    // The pin root exists throughout (see Hook::keeper).
    let keeper = Path::new(rawbpf::attach::PIN_ROOT).join(format!("crash-test-{}", net.lab.ns_b));
    std::fs::create_dir_all(&keeper).unwrap();
    let before_state = |cmd: XdpCmd| {
        if cmd != XdpCmd::Attach {
            let o = command(RAWBPF)
                .args(xdp_args(XdpCmd::Attach, &net))
                .output()
                .unwrap();
            assert!(o.status.success(), "attach --xdp: {}", show(&o));
        }
    };
    before_state(cmd);
    let args = xdp_args(cmd, &net);
    let file = TempFile::new("strace-c", b"");
    let o = command(strace)
        .args(["-f", "-qq", "-c", "-o", file.path(), RAWBPF])
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?} under strace: {}", show(&o));
    let text = std::fs::read_to_string(file.path()).unwrap();
    let mut counts = BTreeMap::new();
    for line in text.lines().skip_while(|l| !l.starts_with("---")).skip(1) {
        if line.starts_with("---") {
            break;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 5 {
            counts.insert(
                cols[cols.len() - 1].to_owned(),
                cols[3].parse::<u32>().unwrap(),
            );
        }
    }
    // Back to the state before the command.
    let _ = command(RAWBPF)
        .args(xdp_args(XdpCmd::Detach, &net))
        .output();
    before_state(cmd);
    let (mut points, mut kills, mut failures) = (0, 0, Vec::new());
    let started = Instant::now();
    for (syscall, &count) in &counts {
        let mut k = 1;
        loop {
            let run = command(strace)
                .args(["-f", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("trace={syscall}"))
                .arg("-e")
                .arg(format!("inject={syscall}:signal=KILL:when={k}"))
                .arg(RAWBPF)
                .args(&args)
                .output()
                .unwrap();
            let killed = run.status.signal() == Some(libc::SIGKILL);
            points += 1;
            kills += usize::from(killed);
            for b in xdp_check(&net, &to_4242, cmd) {
                failures.push(format!("{syscall} #{k}: {b}"));
            }
            if k >= count && !killed {
                break;
            }
            assert!(k < count + 1000, "{syscall}: K runs away");
            k += 1;
        }
    }
    let _ = std::fs::remove_dir(&keeper);
    let _ = writeln!(
        std::io::stderr(),
        "{test}: {points} kill points, {kills} kills, {} failing, {:.1} s",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(kills > 0, "{test}: no kill point was reached");
    failures.truncate(12);
    assert!(
        failures.is_empty(),
        "kill points broke a rule:\n{}",
        failures.join("\n")
    );
}

#[test]
fn crash_attach_xdp() {
    crash_xdp("crash_attach_xdp", XdpCmd::Attach);
}

#[test]
fn crash_attach_replace_xdp() {
    crash_xdp("crash_attach_replace_xdp", XdpCmd::Replace);
}

#[test]
fn crash_detach_xdp() {
    crash_xdp("crash_detach_xdp", XdpCmd::Detach);
}
