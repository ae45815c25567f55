//! Commands racing on one hook take turns: 20 `attach --replace` and a few
//! `detach` started at once on one TC hook (a filter, a TCX link) and on
//! one XDP hook each
//! succeed, or fail saying another rawbpf is changing the device (or, for
//! a detach, that nothing is attached), never with a raw errno; afterwards
//! `list --json` shows one chain or none, with nothing half-done, and the
//! packets agree. A lock held by another process makes a command wait, and
//! give up cleanly after `HOOK_LOCK_WAIT`; a holder killed lets it through.
//! Each test makes its own namespaces (unique names) and removes them, pass
//! or fail.

mod support;

use rawbpf::attach::HOOK_LOCK_WAIT;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::net::Net;
use support::{json, kernel, obj, rawbpf_json, stderr, stdout};

/// What a command that waited too long says.
fn busy() -> String {
    format!(
        "another rawbpf is changing this device (waited {} s); nothing was changed",
        HOOK_LOCK_WAIT.as_secs()
    )
}

/// One of the racing commands, started.
struct Racer {
    args: Vec<String>,
    child: Child,
}

/// How a racing command ended.
struct Ended {
    args: Vec<String>,
    out: Output,
}

impl Ended {
    /// Exit 0, or exit 1 with one of the clean messages (`allowed`, or the
    /// busy one); never a raw errno.
    fn assert_clean(&self, allowed: &[&str]) {
        let err = stderr(&self.out);
        let clean = match self.out.status.code() {
            Some(0) => true,
            Some(1) => err.contains(&busy()) || allowed.iter().any(|a| err.contains(a)),
            _ => false,
        };
        assert!(
            clean && !err.contains("os error"),
            "rawbpf {:?} ended {} with: {err}",
            self.args,
            self.out.status
        );
    }

    fn succeeded(&self) -> bool {
        self.out.status.success()
    }
}

/// Starts every command at once, on the receiver's device, then waits for
/// them all.
fn race(net: &Net, commands: &[Vec<String>]) -> Vec<Ended> {
    let racers: Vec<Racer> = commands
        .iter()
        .map(|args| Racer {
            args: args.clone(),
            child: net.spawn_on_b(&args.iter().map(String::as_str).collect::<Vec<_>>()),
        })
        .collect();
    racers
        .into_iter()
        .map(|r| Ended {
            args: r.args,
            out: r.child.wait_with_output().unwrap(),
        })
        .collect()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `rawbpf list --json` of the receiver's device.
fn listed(net: &Net) -> json::Value {
    rawbpf_json(&[
        "list",
        "--netns",
        &net.lab.ns_b,
        "--dev",
        &net.lab.dev_b,
        "--json",
    ])
}

/// The chain directories under a hook's pins (`1`, `1_new_PID`, ...).
fn chain_dirs(hook_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(hook_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// After a race on `direction` (`ingress` or `xdp`): one chain (its pins
/// in place, nothing staged, `list` agreeing, the kernel running a program
/// one of the winners reported) or none, and nothing half-done. Returns
/// whether a chain is attached.
fn assert_one_consistent_chain(net: &Net, direction: &str, ended: &[Ended]) -> bool {
    let list = listed(net);
    let leftovers = list.get("leftovers").array();
    assert!(leftovers.is_empty(), "half-done after the race: {list:?}");
    let filters: Vec<&json::Value> = list
        .get("filters")
        .array()
        .iter()
        .filter(|f| f.get("direction").str() == direction)
        .collect();
    assert!(filters.len() <= 1, "more than one chain: {list:?}");
    let chain_dir = net.pin_dir(direction).with_file_name(match direction {
        "xdp" => "0",
        _ => "1",
    });
    let hook_dir = chain_dir.parent().unwrap().to_owned();
    let Some(f) = filters.first() else {
        assert!(
            chain_dirs(&hook_dir).is_empty(),
            "pins without a chain: {:?}",
            chain_dirs(&hook_dir)
        );
        return false;
    };
    assert_eq!(
        chain_dirs(&hook_dir),
        [chain_dir.file_name().unwrap().to_string_lossy()],
        "the hook's pins: {list:?}"
    );
    assert_eq!(
        f.get("pin_dir").str(),
        chain_dir.to_str().unwrap(),
        "{list:?}"
    );
    let prog_id = f.get("prog_id").num();
    let reported: Vec<u64> = ended
        .iter()
        .filter(|e| e.succeeded() && e.args[0] == "attach")
        .map(|e| json::parse(&stdout(&e.out)).unwrap().get("prog_id").num())
        .collect();
    assert!(
        reported.contains(&prog_id),
        "the hook runs program {prog_id}, which no successful attach reported ({reported:?})"
    );
    true
}

/// 20 `attach --replace` of two dropping versions of the pipeline and 4
/// `detach` on one TC hook (`mode`: a clsact filter or a TCX link), all at
/// once, twice; then 20 replaces alone.
fn race_on_the_ingress_hook(tag: &str, mode: &str) {
    let net = Net::new(tag);
    let attach = |i: usize| {
        let o = if i.is_multiple_of(2) {
            "pipeline.bpf.o"
        } else {
            "pipeline.v2.bpf.o"
        };
        args(&["attach", &obj(o), "--mode", mode, "--replace", "--json"])
    };
    let ok = net.on_b(&["attach", &obj("pipeline.bpf.o"), "--mode", mode]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    for round in 0..3 {
        let detaches = if round < 2 { 4 } else { 0 };
        let mut commands: Vec<Vec<String>> = (0..20).map(attach).collect();
        for k in 0..detaches {
            commands.insert(5 * k + 2, args(&["detach"]));
        }
        let started = Instant::now();
        let ended = race(&net, &commands);
        for e in &ended {
            e.assert_clean(&["nothing attached at priority 1"]);
        }
        let won = ended.iter().filter(|e| e.succeeded()).count();
        eprintln!(
            "{mode} round {round}: {won} of {} commands succeeded in {:?}",
            ended.len(),
            started.elapsed()
        );
        assert!(won > 0, "{mode} round {round}: every command gave up");
        let attached = assert_one_consistent_chain(&net, "ingress", &ended);
        let arrived = net.batch().count;
        assert_eq!(
            arrived,
            if attached { 0 } else { 10 },
            "{mode} round {round}: attached: {attached}, {arrived} of 10 datagrams arrived"
        );
        if round == 2 {
            assert!(
                attached,
                "{mode} round {round}: the replaces left nothing attached"
            );
        }
    }
    let d = net.on_b(&["detach"]);
    assert!(d.status.success(), "{}", stderr(&d));
    assert_eq!(net.batch().count, 10, "{mode}: traffic passes after detach");
    assert!(
        !net.pin_dir("ingress").exists(),
        "{mode}: pins after detach"
    );
}

#[test]
fn racing_replaces_and_detaches_on_a_tc_hook_take_turns() {
    if kernel("racing_replaces_and_detaches_on_a_tc_hook_take_turns") {
        race_on_the_ingress_hook("conctc", "tc");
    }
}

#[test]
fn racing_replaces_and_detaches_on_a_tcx_hook_take_turns() {
    let test = "racing_replaces_and_detaches_on_a_tcx_hook_take_turns";
    if !kernel(test) {
        return;
    }
    let tcx = rawbpf::probe::probe_feature(rawbpf::probe::Feature::Tcx);
    if support::kernel_has(test, "TCX links (6.6)", tcx) {
        race_on_the_ingress_hook("conctcx", "tcx");
    }
}

/// The same on the XDP hook: 20 `attach --xdp --replace` and 4
/// `detach --xdp` at once, then 20 replaces alone.
#[test]
fn racing_replaces_and_detaches_on_an_xdp_hook_take_turns() {
    let test = "racing_replaces_and_detaches_on_an_xdp_hook_take_turns";
    if !kernel(test) {
        return;
    }
    let net = Net::new("concxdp");
    let dropped = net.lab.receiver(4242).unwrap();
    let to_4242 = || {
        net.tx.send_batch(4242, 10).unwrap();
        dropped.collect_batch().unwrap().count
    };
    let attach = args(&["attach", &obj("xdp.bpf.o"), "--xdp", "--replace", "--json"]);
    let ok = net.on_b(&["attach", &obj("xdp.bpf.o"), "--xdp"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    for round in 0..2 {
        let mut commands = vec![attach.clone(); 20];
        if round == 0 {
            for k in 0..4 {
                commands.insert(5 * k + 2, args(&["detach", "--xdp"]));
            }
        }
        let ended = race(&net, &commands);
        for e in &ended {
            e.assert_clean(&["xdp: nothing attached"]);
        }
        assert!(
            ended.iter().any(Ended::succeeded),
            "round {round}: every command gave up"
        );
        let attached = assert_one_consistent_chain(&net, "xdp", &ended);
        let arrived = to_4242();
        assert_eq!(
            arrived,
            if attached { 0 } else { 10 },
            "round {round}: attached: {attached}, {arrived} of 10 datagrams to port 4242 arrived"
        );
        assert_eq!(net.batch().count, 10, "round {round}: other ports pass");
        if round == 1 {
            assert!(
                attached,
                "round {round}: the replaces left nothing attached"
            );
        }
    }
    let d = net.on_b(&["detach", "--xdp"]);
    assert!(d.status.success(), "{}", stderr(&d));
    assert_eq!(to_4242(), 10, "port 4242 passes after detach");
}

/// Another process holding the device's lock (a shell that had `flock(1)`
/// lock it, then became `sleep`), killed when the test ends, pass or fail.
struct Holder {
    child: Child,
    lock_file: PathBuf,
}

impl Holder {
    /// Takes the lock of the receiver's device; `None` (and says why) if
    /// the `flock` command is missing.
    fn take(net: &Net, test: &str) -> Option<Holder> {
        let lock_file = rawbpf::pins::DevicePins::new(Some(&net.lab.ns_b), &net.lab.dev_b)
            .lock_file()
            .to_owned();
        std::fs::create_dir_all(lock_file.parent().unwrap()).unwrap();
        // The shell opens the file, has flock(1) lock it, and becomes the
        // sleep: one process holds the lock, and dies by kill().
        let spawned = Command::new("sh")
            .args([
                "-c",
                "exec 9>\"$0\" && flock 9 && echo held && exec sleep 600",
            ])
            .arg(&lock_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = spawned.expect("start sh");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "held" {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "SKIP {test}: flock(1) (util-linux) did not lock {}",
                lock_file.display()
            );
            return None;
        }
        Some(Holder { child, lock_file })
    }

    /// Kills the holder (SIGKILL): the kernel drops its lock.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether process `pid` has the lock file open (it is waiting for it).
    fn waited_on_by(&self, pid: u32) -> bool {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p == self.lock_file))
        })
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.lock_file);
    }
}

/// The program id the receiver's ingress hook runs, per `list --json`.
fn ingress_prog(net: &Net) -> Option<u64> {
    let list = listed(net);
    let filters = list.get("filters").array();
    filters.first().map(|f| f.get("prog_id").num())
}

/// While another process holds the device's lock, `attach --replace` and
/// `detach` wait, then give up saying so, having changed nothing; an
/// `attach --replace` waiting when the holder is killed goes through.
#[test]
fn a_held_lock_makes_commands_wait_then_give_up() {
    let test = "a_held_lock_makes_commands_wait_then_give_up";
    if !kernel(test) {
        return;
    }
    let net = Net::new("conclock");
    let ok = net.on_b(&["attach", &obj("pipeline.bpf.o")]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let before = ingress_prog(&net).expect("attached");
    let Some(mut holder) = Holder::take(&net, test) else {
        return;
    };
    for cmd in [
        vec!["attach", "--replace", &obj("pipeline.v2.bpf.o")],
        vec!["detach"],
    ] {
        let started = Instant::now();
        let o = net.on_b(&cmd);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&busy()), "{cmd:?}: {}", stderr(&o));
        assert!(
            started.elapsed() >= HOOK_LOCK_WAIT,
            "{cmd:?} gave up after {:?}",
            started.elapsed()
        );
        assert_eq!(ingress_prog(&net), Some(before), "{cmd:?} changed the hook");
        assert_eq!(
            chain_dirs(net.pin_dir("ingress").parent().unwrap()),
            ["1"],
            "{cmd:?} changed the pins"
        );
        assert_eq!(net.batch().count, 0, "{cmd:?}: the chain still drops");
    }
    // A replace waiting for the lock goes through once its holder dies.
    let replace = net.spawn_on_b(&["attach", "--replace", &obj("pipeline.v2.bpf.o")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !holder.waited_on_by(replace.id()) {
        assert!(Instant::now() < deadline, "the replace never waited");
        std::thread::sleep(Duration::from_millis(1));
    }
    holder.kill();
    let o = replace.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let after = ingress_prog(&net).expect("attached");
    assert_ne!(after, before, "the replace did not replace");
    assert_eq!(net.batch().count, 0, "the new chain drops");
    assert!(
        !holder.lock_file.exists(),
        "the lock file stayed after the last command"
    );
    let d = net.on_b(&["detach"]);
    assert!(d.status.success(), "{}", stderr(&d));
    assert_eq!(net.batch().count, 10);
}
