//! What a loader run as root on a shared host must get right: two attaches
//! racing for one priority, detach racing attach, and commands run without
//! the capabilities they need. Each test makes its own namespaces (unique
//! names) and removes them, pass or fail.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use support::net::Net;
use support::{kernel, obj, stderr};

impl Net {
    /// How many of 10 datagrams arrive.
    fn arriving(&self) -> usize {
        self.batch().count
    }

    fn chain_dir(&self) -> PathBuf {
        self.pin_dir("ingress")
    }

    /// (BPF filters at priority 1, clsact present), as the kernel says.
    fn kernel_state(&self) -> (usize, bool) {
        rawbpf::blocking::block_on(async {
            let tc = rawbpf::netns::run_in(Some(&self.lab.ns_b), rawbpf::tc::Tc::open)
                .unwrap()
                .unwrap();
            let devices = tc.devices().await.unwrap();
            let (ifindex, _, _) = devices
                .iter()
                .find(|(_, name, _)| *name == self.lab.dev_b)
                .unwrap();
            let filters = tc
                .filters(*ifindex, rawbpf::tc::Direction::Ingress)
                .await
                .unwrap()
                .into_iter()
                .filter(|f| f.priority == 1 && f.kind == "bpf")
                .count();
            let clsact = tc
                .qdisc_kinds(*ifindex)
                .await
                .unwrap()
                .iter()
                .any(|k| k == "clsact");
            (filters, clsact)
        })
        .unwrap()
    }
}

/// Two `rawbpf attach` at the same device and priority at once: one wins,
/// the other says a filter is already there, the winner's chain drops, and
/// detach then leaves nothing behind (the qdisc either of them made).
#[test]
fn racing_attaches_one_wins() {
    if !kernel("racing_attaches_one_wins") {
        return;
    }
    let net = Net::new("race");
    for round in 0..10 {
        let a = net.spawn_on_b(&["attach", &obj("pipeline.bpf.o")]);
        let b = net.spawn_on_b(&["attach", &obj("pipeline.bpf.o")]);
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let won: Vec<&Output> = outs.iter().filter(|o| o.status.success()).collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: exactly one attach wins: {outs:?}"
        );
        let lost = outs.iter().find(|o| !o.status.success()).unwrap();
        assert_eq!(lost.status.code(), Some(1));
        assert!(
            stderr(lost).contains("a filter is already attached at priority 1"),
            "round {round}: {}",
            stderr(lost)
        );
        assert_eq!(net.kernel_state(), (1, true), "round {round}");
        assert_eq!(net.arriving(), 0, "round {round}: the winner's chain drops");
        let d = net.on_b(&["detach"]);
        assert!(d.status.success(), "round {round}: {}", stderr(&d));
        assert_eq!(
            net.kernel_state(),
            (0, false),
            "round {round}: nothing left"
        );
        assert!(!net.chain_dir().exists(), "round {round}: no pins left");
        assert_eq!(net.arriving(), 10, "round {round}");
    }
}

/// `detach` racing `attach`: whichever order the kernel sees, the end state
/// is consistent: a filter if and only if its pins, and traffic that agrees.
#[test]
fn detach_racing_attach_is_consistent() {
    if !kernel("detach_racing_attach_is_consistent") {
        return;
    }
    let net = Net::new("racedet");
    for round in 0..10 {
        let a = net.spawn_on_b(&["attach", &obj("pipeline.bpf.o")]);
        let d = net.spawn_on_b(&["detach"]);
        let (a, d) = (a.wait_with_output().unwrap(), d.wait_with_output().unwrap());
        assert!(a.status.success(), "round {round}: attach: {}", stderr(&a));
        // detach either removed the new chain or found nothing yet.
        assert!(
            d.status.success() || stderr(&d).contains("nothing attached at priority 1"),
            "round {round}: detach: {}",
            stderr(&d)
        );
        let (filters, _) = net.kernel_state();
        let pinned = net.chain_dir().exists();
        assert_eq!(filters == 1, pinned, "round {round}: filter iff pins");
        let expected = if pinned { 0 } else { 10 };
        assert_eq!(net.arriving(), expected, "round {round}");
        if pinned {
            assert!(net.on_b(&["detach"]).status.success());
        }
        assert_eq!(
            net.kernel_state(),
            (0, false),
            "round {round}: nothing left"
        );
    }
}

/// Run as root but without CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN and
/// CAP_PERFMON (setpriv drops them from the bounding set), every command that
/// needs them says which, and leaves nothing behind.
#[test]
fn commands_without_capabilities_say_what_they_need() {
    if !kernel("commands_without_capabilities_say_what_they_need") {
        return;
    }
    let net = Net::new("caps");
    let attached = net.on_b(&["attach", &obj("pipeline.bpf.o")]);
    assert!(attached.status.success(), "{}", stderr(&attached));
    let dropped = "-bpf,-net_admin,-sys_admin,-perfmon";
    let without_caps = |args: &[&str]| -> String {
        let o = Command::new("setpriv")
            .args([
                &format!("--bounding-set={dropped}"),
                &format!("--inh-caps={dropped}"),
                env!("CARGO_BIN_EXE_rawbpf"),
            ])
            .args(args)
            .output()
            .expect("setpriv (util-linux)");
        assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
        stderr(&o)
    };
    let pipeline = obj("pipeline.bpf.o");
    let (ns, dev) = (net.lab.ns_b.as_str(), net.lab.dev_b.as_str());
    let swap_arg = format!("prog_array:1={pipeline}:inspect_and_drop");
    let groups = obj("groups.bpf.o");
    let group = support::unique("caps");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["load", &pipeline], "needs root, or CAP_BPF"),
        (
            vec!["run", &pipeline, "--prog", "mark_packet"],
            "needs root, or CAP_BPF",
        ),
        (
            vec!["attach", &pipeline, "--dev", "lo"],
            "needs root, or CAP_BPF",
        ),
        (
            vec!["attach", &pipeline, "--netns", ns, "--dev", dev, "--egress"],
            "needs root, or CAP_BPF",
        ),
        // rawbpf pinned nothing on lo: detach deletes only filters whose
        // programs it pinned, so it has nothing to ask the kernel.
        (
            vec!["detach", "--dev", "lo"],
            "lo ingress: nothing attached",
        ),
        (
            vec!["detach", "--netns", ns, "--dev", dev],
            "needs root, or CAP_SYS_ADMIN",
        ),
        (vec!["list", "--netns", ns], "needs root, or CAP_SYS_ADMIN"),
        (
            vec!["swap", "--netns", ns, "--dev", dev, &swap_arg],
            "needs root, or CAP_BPF",
        ),
        (
            vec!["attach", &groups, "--prog", "on_tp", "--name", &group],
            "needs root, or CAP_BPF",
        ),
        (
            vec!["attach", &groups, "--prog", "on_tp", "--foreground"],
            "needs root, or CAP_BPF",
        ),
        (vec!["probe"], "needs root, or CAP_BPF"),
        (vec!["check", &pipeline], "needs root, or CAP_BPF"),
        (vec!["demo"], "needs root, or CAP_SYS_ADMIN"),
    ];
    let demo_namespaces = || {
        std::fs::read_dir(rawbpf::netns::NETNS_DIR)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("rawbpf-demo-")
            })
            .count()
    };
    let demos_before = demo_namespaces();
    for (args, needs) in cases {
        let e = without_caps(&args);
        assert!(e.contains(needs), "{args:?} should say {needs:?}: {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
    assert_eq!(
        demo_namespaces(),
        demos_before,
        "demo left a namespace behind"
    );
    assert!(
        !rawbpf::link::group::group_dir(&group).exists(),
        "a refused group attach left its directory"
    );
    // The chain attached before is untouched, and the failed commands left nothing.
    assert_eq!(net.kernel_state(), (1, true));
    assert_eq!(net.arriving(), 0);
    let chains: Vec<_> = std::fs::read_dir(net.chain_dir().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(chains, vec![std::ffi::OsString::from("1")]);
    assert!(net.on_b(&["detach"]).status.success());
}

/// Entering a namespace never leaves the thread in it: the guard `enter`
/// returns moves the thread back when dropped, `run_in` inside the guard
/// runs right there, and `run_in` elsewhere comes back to the guard's
/// namespace.
#[test]
fn entering_a_namespace_ends_with_its_guard() {
    use std::os::unix::fs::MetadataExt;
    if !kernel("entering_a_namespace_ends_with_its_guard") {
        return;
    }
    let current = || std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
    let net = Net::new("enter");
    let (a, b) = (net.lab.ns_a.as_str(), net.lab.ns_b.as_str());
    let own = current();
    let in_a = rawbpf::netns::run_in(Some(a), current).unwrap();
    let in_b = rawbpf::netns::run_in(Some(b), current).unwrap();
    assert!(own != in_a && own != in_b && in_a != in_b);
    assert_eq!(current(), own, "run_in returns");

    let inside = rawbpf::netns::enter(b).unwrap();
    assert_eq!(current(), in_b);
    assert_eq!(rawbpf::netns::run_in(Some(b), current).unwrap(), in_b);
    assert_eq!(rawbpf::netns::run_in(Some(a), current).unwrap(), in_a);
    assert_eq!(current(), in_b, "run_in elsewhere comes back to b");
    let again = rawbpf::netns::enter(b).unwrap();
    drop(again);
    assert_eq!(current(), in_b, "entering b from b and leaving stays in b");
    drop(inside);
    assert_eq!(current(), own, "the guard moved the thread back");
    assert!(rawbpf::netns::enter("no/such").is_err());
    assert_eq!(current(), own);
}
