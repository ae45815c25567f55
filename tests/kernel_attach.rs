//! Attaching over rtnetlink, with UDP across a veth pair between two
//! namespaces: what arrives, with which TOS, after which command. Each test
//! builds its own namespaces (unique names) and removes them, pass or fail.

mod support;

use rawbpf::lab::Arrivals;
use std::process::Command;
use support::net::Net;
use support::{json, kernel, obj, rawbpf, rawbpf_json, stderr, stdout, unique};

/// What only these tests ask of the network.
trait Inspect {
    fn tc_filters(&self, dir: &str) -> String;
    fn qdiscs(&self) -> String;
}

impl Inspect for Net {
    fn tc_filters(&self, dir: &str) -> String {
        let o = Command::new("tc")
            .args([
                "-n",
                &self.lab.ns_b,
                "filter",
                "show",
                "dev",
                &self.lab.dev_b,
                dir,
            ])
            .output()
            .expect("tc (iproute2) is installed by tests/run.sh");
        String::from_utf8(o.stdout).unwrap()
    }

    fn qdiscs(&self) -> String {
        let o = Command::new("tc")
            .args([
                "-n",
                &self.lab.ns_b,
                "qdisc",
                "show",
                "dev",
                &self.lab.dev_b,
            ])
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    }
}

fn ok(o: std::process::Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

fn all_marked(a: &Arrivals) -> bool {
    a.tos.iter().all(|t| t & 0x01 == 0x01)
}

/// The chain outlives the attach process: both stages keep working until
/// detach, which leaves no filter, pin or qdisc behind.
#[test]
fn chain_drops_after_attach_exits_and_detach_cleans_up() {
    if !kernel("chain_drops_after_attach_exits_and_detach_cleans_up") {
        return;
    }
    let net = Net::new("persist");
    let before = net.batch();
    assert_eq!(
        (before.count, before.tos.iter().sum::<u8>()),
        (10, 0),
        "nothing attached yet"
    );

    ok(net.on_b(&["attach", &obj("pipeline.bpf.o")]));
    // The rawbpf process has exited: stage 2 must still be reached.
    assert_eq!(net.batch().count, 0, "the full chain drops everything");
    assert!(net.pin_dir("ingress").join("prog_array").exists());

    let out = ok(net.on_b(&["detach"]));
    assert!(out.contains("deleted the clsact qdisc"), "{out}");
    assert_eq!(net.batch().count, 10, "all arrive after detach");
    assert_eq!(net.tc_filters("ingress"), "");
    assert!(!net.qdiscs().contains("clsact"), "{}", net.qdiscs());
    assert!(!net.pin_dir("ingress").exists());
    assert!(
        !std::path::Path::new(rawbpf::attach::PIN_ROOT)
            .join(format!("ns_{}", net.lab.ns_b))
            .exists(),
        "empty pin directories are removed too"
    );
}

/// Stage 1 alone marks: datagrams arrive with TOS 0x01 (the receiving
/// kernel accepted them, so the checksum was fixed).
#[test]
fn stage_one_alone_marks() {
    if !kernel("stage_one_alone_marks") {
        return;
    }
    let net = Net::new("mark");
    ok(net.on_b(&["attach", &obj("pipeline.bpf.o"), "--tail", "prog_array:1="]));
    let got = net.batch();
    assert_eq!(got.count, 10);
    assert!(all_marked(&got), "{:?}", got.tos);
    ok(net.on_b(&["detach"]));
}

/// On the sender's egress the chain drops before the packets leave.
#[test]
fn egress_attach() {
    if !kernel("egress_attach") {
        return;
    }
    let net = Net::new("egress");
    let a = [
        "--netns",
        net.lab.ns_a.as_str(),
        "--dev",
        net.lab.dev_a.as_str(),
        "--egress",
    ];
    ok(rawbpf(
        &[
            &["attach", &obj("pipeline.bpf.o"), "--tail", "prog_array:1="][..],
            &a,
        ]
        .concat(),
    ));
    let got = net.batch();
    assert_eq!(got.count, 10);
    assert!(all_marked(&got), "marked on the way out: {:?}", got.tos);
    ok(rawbpf(
        &[&["attach", &obj("pipeline.bpf.o"), "--replace"][..], &a].concat(),
    ));
    assert_eq!(net.batch().count, 0);
    ok(rawbpf(&[&["detach"][..], &a].concat()));
    assert_eq!(net.batch().count, 10);
}

/// `tc filter show` sees our filter as direct-action with the program name,
/// and `list --json` agrees with it.
#[test]
fn tc_and_list_agree() {
    if !kernel("tc_and_list_agree") {
        return;
    }
    let net = Net::new("list");
    let attached = {
        let o = net.on_b(&["attach", &obj("pipeline.bpf.o"), "--json"]);
        json::parse(&ok(o)).unwrap()
    };
    let shown = net.tc_filters("ingress");
    assert!(
        shown.contains("pipeline.bpf.o:[mark_packet] direct-action"),
        "{shown}"
    );
    let prog_id = attached.get("prog_id").num();
    assert!(
        shown.contains(&format!(" id {prog_id} name mark_packet ")),
        "{shown}"
    );

    let listed = rawbpf_json(&["list", "--netns", &net.lab.ns_b, "--json"]);
    let filters = listed.get("filters").array();
    assert_eq!(filters.len(), 1, "{filters:?}");
    let f = &filters[0];
    assert_eq!(f.get("dev").str(), net.lab.dev_b);
    assert_eq!(f.get("direction").str(), "ingress");
    assert_eq!(f.get("priority").num(), 1);
    assert_eq!(f.get("name").str(), "pipeline.bpf.o:[mark_packet]");
    assert_eq!(f.get("prog_id").num(), prog_id);
    assert_eq!(f.get("direct_action"), &json::Value::Bool(true));
    assert_eq!(f.get("pin_dir").str(), attached.get("pin_dir").str());
    ok(net.on_b(&["detach"]));
    let listed = rawbpf_json(&["list", "--netns", &net.lab.ns_b, "--json"]);
    assert!(listed.get("filters").array().is_empty());
}

/// --replace swaps the filter with no window where traffic passes: two
/// dropping versions replace each other over and over under traffic.
#[test]
fn replace_has_no_window() {
    if !kernel("replace_has_no_window") {
        return;
    }
    let net = Net::new("replace");
    ok(net.on_b(&["attach", &obj("pipeline.bpf.o")]));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let sender = s.spawn(|| {
            let mut sent = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                net.tx.send_batch(net.rx.port, 5).unwrap();
                // Each batch's end marker arrives too: take it, count the rest.
                let got = net.rx.collect_batch().unwrap();
                assert_eq!(got.count, 0, "a datagram passed while replacing");
                sent += 5;
            }
            sent
        });
        for i in 0..20 {
            let obj_name = if i % 2 == 0 {
                "pipeline.v2.bpf.o"
            } else {
                "pipeline.bpf.o"
            };
            ok(net.on_b(&["attach", &obj(obj_name), "--replace"]));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(sender.join().unwrap() > 0);
    });
    ok(net.on_b(&["detach"]));
}

/// Errors say what is wrong and leave nothing behind.
#[test]
fn attach_errors() {
    if !kernel("attach_errors") {
        return;
    }
    let net = Net::new("errors");
    let err = |o: std::process::Output| {
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        stderr(&o)
    };
    let e = err(rawbpf(&[
        "attach",
        &obj("pipeline.bpf.o"),
        "--netns",
        &net.lab.ns_b,
        "--dev",
        "nodev0",
    ]));
    assert!(
        e.contains(&format!(
            "no network device nodev0 in network namespace {}",
            net.lab.ns_b
        )),
        "{e}"
    );
    let missing_ns = unique("nons");
    let e = err(rawbpf(&[
        "attach",
        &obj("pipeline.bpf.o"),
        "--netns",
        &missing_ns,
        "--dev",
        "x",
    ]));
    assert!(
        e.contains(&format!("network namespace {missing_ns} does not exist")),
        "{e}"
    );
    let e = err(net.on_b(&["attach", &obj("xdp.bpf.o")]));
    assert!(
        e.contains("program xdp_drop_port is of type xdp, which attaches to a device's XDP hook; a TC hook (ingress or egress) runs sched_cls programs (use --xdp)"),
        "{e}"
    );
    let e = err(net.on_b(&["attach", &obj("sections.bpf.o"), "--prog", "on_xdp"]));
    assert!(
        e.contains("program on_xdp is of type xdp, which attaches to a device's XDP hook; a TC hook (ingress or egress) runs sched_cls programs"),
        "{e}"
    );
    // Nothing of the failed attempts is left.
    assert!(!net.qdiscs().contains("clsact"));
    assert!(!std::path::Path::new(rawbpf::attach::PIN_ROOT)
        .join(format!("ns_{}", net.lab.ns_b))
        .exists());
    assert!(!std::path::Path::new(rawbpf::attach::PIN_ROOT)
        .join(format!("ns_{missing_ns}"))
        .exists());

    ok(net.on_b(&["attach", &obj("pipeline.bpf.o")]));
    let e = err(net.on_b(&["attach", &obj("pipeline.bpf.o")]));
    assert!(
        e.contains("a filter is already attached at priority 1"),
        "{e}"
    );
    ok(net.on_b(&["detach"]));
    let e = err(net.on_b(&["detach"]));
    assert!(e.contains("nothing attached at priority 1"), "{e}");
}

/// `swap` replaces stage 2 of an attached chain in one update: 100 swaps
/// between a dropping and a tagging stage 2 under traffic. Right after each
/// swap its effect shows; meanwhile every packet that arrives carries TOS
/// 0x03 — it went through one stage 2 or the other, never none.
#[test]
fn swap_stage_two_under_traffic() {
    if !kernel("swap_stage_two_under_traffic") {
        return;
    }
    let net = Net::new("swap");
    ok(net.on_b(&["attach", &obj("pipeline.bpf.o")]));
    let background_rx = net.lab.receiver(0).unwrap();
    let background_tx = net.lab.sender().unwrap();
    let tag = format!("prog_array:1={}:tag_and_pass", obj("stage2_tag.bpf.o"));
    let drop = format!("prog_array:1={}:inspect_and_drop", obj("pipeline.bpf.o"));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut seen = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                background_tx.send_batch(background_rx.port, 5).unwrap();
                let got = background_rx.collect_batch().unwrap();
                assert!(
                    got.tos.iter().all(|&t| t == 0x03),
                    "a packet skipped stage 2: {:?}",
                    got.tos
                );
                seen += got.count;
            }
            seen
        });
        for i in 0..100 {
            let (slot, want) = if i % 2 == 0 { (&tag, 10) } else { (&drop, 0) };
            ok(net.on_b(&["swap", slot]));
            let got = net.batch();
            assert_eq!(got.count, want, "swap {i}: {slot}");
            assert!(
                got.tos.iter().all(|&t| t == 0x03),
                "swap {i}: {:?}",
                got.tos
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            watcher.join().unwrap() > 0,
            "the background traffic got through at some point"
        );
    });

    // Refused, and nothing changes: the dropping stage stays in place.
    let o = net.on_b(&[
        "swap",
        &format!("prog_array:1={}:xdp_drop_port", obj("xdp.bpf.o")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("program xdp_drop_port is a xdp program; this prog array holds sched_cls programs; nothing was changed"), "{}", stderr(&o));
    let o = net.on_b(&[
        "swap",
        &format!(
            "prog_array:1={}:reads_unchecked",
            obj("verifier_reject.bpf.o")
        ),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("program reads_unchecked: the verifier rejected it"),
        "{}",
        stderr(&o)
    );
    let o = net.on_b(&[
        "swap",
        &format!("prog_array:2={}:tag_and_pass", obj("stage2_tag.bpf.o")),
    ]);
    assert!(
        stderr(&o).contains("key 2 is past max_entries 2 of prog_array"),
        "{}",
        stderr(&o)
    );
    assert_eq!(net.batch().count, 0, "still the dropping stage");
    ok(net.on_b(&["detach"]));
}

/// The same chain as a TCX link: it outlives the attach process, --replace
/// updates the link, list shows it, detach (unpinning) removes it.
#[test]
fn tcx_mode() {
    if !kernel("tcx_mode") {
        return;
    }
    let tcx = rawbpf::probe::probe_feature(rawbpf::probe::Feature::Tcx);
    if !support::kernel_has("tcx_mode", "TCX links (6.6)", tcx) {
        return;
    }
    let net = Net::new("tcx");
    let out = ok(net.on_b(&[
        "attach",
        &obj("pipeline.bpf.o"),
        "--mode",
        "tcx",
        "--tail",
        "prog_array:1=",
    ]));
    assert!(out.contains("(mode tcx)"), "{out}");
    let got = net.batch();
    assert_eq!(got.count, 10);
    assert!(all_marked(&got), "{:?}", got.tos);
    assert!(!net.qdiscs().contains("clsact"), "TCX needs no qdisc");

    ok(net.on_b(&[
        "attach",
        &obj("pipeline.bpf.o"),
        "--mode",
        "tcx",
        "--replace",
    ]));
    assert_eq!(net.batch().count, 0, "the updated link runs the full chain");
    let o = net.on_b(&["attach", &obj("pipeline.bpf.o"), "--replace"]);
    assert!(
        stderr(&o)
            .contains("is a tcx attachment, and a replacement keeps the mode (pass --mode tcx)"),
        "{}",
        stderr(&o)
    );

    let listed = rawbpf_json(&["list", "--netns", &net.lab.ns_b, "--json"]);
    let filters = listed.get("filters").array();
    assert_eq!(filters.len(), 1);
    assert_eq!(filters[0].get("mode").str(), "tcx");
    assert_eq!(filters[0].get("name").str(), "mark_packet");

    ok(net.on_b(&["detach"]));
    assert_eq!(net.batch().count, 10, "unpinning the link detached it");
    assert!(!net.pin_dir("ingress").exists());
    let auto = ok(net.on_b(&["attach", &obj("pipeline.bpf.o"), "--mode", "auto"]));
    assert!(auto.contains("(mode tcx)"), "this kernel has TCX: {auto}");
    ok(net.on_b(&["detach"]));
}

/// `rawbpf demo` shows the four phases with the right counts and removes
/// its namespaces.
#[test]
fn demo_reports_four_phases() {
    if !kernel("demo_reports_four_phases") {
        return;
    }
    let out = ok(rawbpf(&["demo"]));
    let counts: Vec<(String, String)> = out
        .lines()
        .filter(|l| l.contains("sent 20"))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = |w: &str| words[words.iter().position(|x| *x == w).unwrap() + 1].to_owned();
            (at("arrived"), words.last().unwrap().to_string())
        })
        .collect();
    let expect = [("20", "0"), ("20", "20"), ("0", "0"), ("20", "0")];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(counts, expect, "{out}");
    assert!(out.contains("result: as expected"), "{out}");
    let ns = out
        .split_whitespace()
        .find(|w| w.starts_with("rawbpf-demo-"))
        .unwrap();
    assert!(
        !std::path::Path::new("/run/netns").join(ns).exists(),
        "{ns} removed"
    );
}

/// `rawbpf demo --json`: the same four phases, as data.
#[test]
fn demo_json_has_the_four_phases() {
    if !kernel("demo_json_has_the_four_phases") {
        return;
    }
    let doc = rawbpf_json(&["demo", "--json"]);
    let counts: Vec<(u64, u64, u64)> = doc
        .get("phases")
        .array()
        .iter()
        .map(|p| {
            (
                p.get("sent").num(),
                p.get("arrived").num(),
                p.get("marked").num(),
            )
        })
        .collect();
    assert_eq!(counts, [(20, 20, 0), (20, 20, 20), (20, 0, 0), (20, 20, 0)]);
    let chain: Vec<&str> = doc
        .get("chain")
        .array()
        .iter()
        .map(|p| p.get("name").str())
        .collect();
    assert!(
        chain.contains(&"mark_packet") && chain.contains(&"inspect_and_drop"),
        "{chain:?}"
    );
    assert_eq!(doc.get("as_expected"), &json::Value::Bool(true));
}

/// Without privileges every command says what it needs instead of a bare EPERM.
#[test]
fn missing_privileges_are_named() {
    if !kernel("missing_privileges_are_named") {
        return;
    }
    let as_nobody = |args: &[&str]| {
        let o = Command::new("runuser")
            .args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_rawbpf")])
            .args(args)
            .output()
            .expect("runuser (util-linux)");
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        stderr(&o)
    };
    let e = as_nobody(&["load", &obj("pipeline.bpf.o")]);
    assert!(e.contains("needs root, or CAP_BPF"), "{e}");
    let e = as_nobody(&["run", &obj("pipeline.bpf.o"), "--prog", "mark_packet"]);
    assert!(e.contains("needs root, or CAP_BPF"), "{e}");
    let e = as_nobody(&["attach", &obj("pipeline.bpf.o"), "--dev", "lo"]);
    assert!(e.contains("needs root, or CAP_BPF"), "{e}");
}

/// When the device is gone (and its filters with it), detach still removes
/// the chain's pins.
#[test]
fn detach_after_the_device_is_gone() {
    if !kernel("detach_after_the_device_is_gone") {
        return;
    }
    let net = Net::new("gone");
    ok(net.on_b(&["attach", &obj("pipeline.bpf.o")]));
    let del = Command::new("ip")
        .args(["-n", &net.lab.ns_b, "link", "del", &net.lab.dev_b])
        .status()
        .unwrap();
    assert!(del.success());
    let out = ok(net.on_b(&["detach"]));
    assert!(out.contains("removed its pins"), "{out}");
    assert!(!net.pin_dir("ingress").exists());
}

/// `attach --xdp` in each mode a veth offers: the XDP program drops IPv4
/// UDP to port 4242 (its `.rodata` default) and passes the rest, after the
/// CLI has exited; `list` shows it with the mode the kernel runs it in;
/// `detach --xdp` removes it and its pins.
#[test]
fn xdp_drops_one_udp_port_in_each_mode() {
    if !kernel("xdp_drops_one_udp_port_in_each_mode") {
        return;
    }
    let net = Net::new("xdp");
    let dropped = net.lab.receiver(4242).unwrap();
    let to_4242 = || {
        net.tx.send_batch(4242, 10).unwrap();
        dropped.collect_batch().unwrap().count
    };
    let xdp_pins = || {
        std::path::Path::new(rawbpf::attach::PIN_ROOT)
            .join(format!("ns_{}", net.lab.ns_b))
            .join(&net.lab.dev_b)
            .join("xdp")
            .join("0")
    };
    for mode in ["generic", "native"] {
        assert_eq!(to_4242(), 10, "{mode}: nothing attached yet");
        let out = ok(net.on_b(&["attach", &obj("xdp.bpf.o"), "--xdp", "--xdp-mode", mode]));
        assert!(out.contains(&format!("xdp (mode {mode})")), "{out}");
        assert_eq!(to_4242(), 0, "{mode}: port 4242 is dropped");
        assert_eq!(net.batch().count, 10, "{mode}: other ports pass");
        assert!(xdp_pins().join("xdp_drop_port").exists());

        let listed = rawbpf_json(&["list", "--netns", &net.lab.ns_b, "--json"]);
        let progs = listed.get("filters").array();
        assert_eq!(progs.len(), 1, "{listed:?}");
        assert_eq!(progs[0].get("direction").str(), "xdp");
        assert_eq!(progs[0].get("mode").str(), mode);
        assert_eq!(progs[0].get("name").str(), "xdp_drop_port");

        // Taken: a second attach fails, --replace swaps it atomically.
        let o = net.on_b(&["attach", &obj("xdp.bpf.o"), "--xdp", "--xdp-mode", mode]);
        assert!(
            stderr(&o).contains("xdp: rawbpf has a chain attached there"),
            "{}",
            stderr(&o)
        );
        let again = ok(net.on_b(&[
            "attach",
            &obj("xdp.bpf.o"),
            "--xdp",
            "--xdp-mode",
            mode,
            "--replace",
        ]));
        assert!(again.contains(&format!("xdp (mode {mode})")), "{again}");
        assert_eq!(to_4242(), 0, "{mode}: the replacement drops too");

        let out = ok(net.on_b(&["detach", "--xdp"]));
        assert!(out.contains("detached"), "{out}");
        assert_eq!(to_4242(), 10, "{mode}: all arrive after detach");
        assert!(!xdp_pins().exists());
        let listed = rawbpf_json(&["list", "--netns", &net.lab.ns_b, "--json"]);
        assert!(listed.get("filters").array().is_empty(), "{listed:?}");
    }
}

/// An XDP program given to a TC attach, or a TC program to an XDP attach:
/// the error names the hook it needs, and nothing is left behind.
#[test]
fn wrong_hook_names_the_one_needed() {
    if !kernel("wrong_hook_names_the_one_needed") {
        return;
    }
    let net = Net::new("hook");
    let o = net.on_b(&["attach", &obj("pipeline.bpf.o"), "--xdp"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("program mark_packet is of type sched_cls, which attaches to a TC hook (ingress or egress); a device's XDP hook runs xdp programs (use --ingress or --egress)"),
        "{}",
        stderr(&o)
    );
    let o = net.on_b(&["attach", &obj("xdp.bpf.o"), "--egress"]);
    assert!(stderr(&o).contains("(use --xdp)"), "{}", stderr(&o));
    let o = net.on_b(&["attach", &obj("xdp.bpf.o"), "--xdp", "--mode", "tcx"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = net.on_b(&["detach", "--xdp"]);
    assert!(
        stderr(&o).contains("xdp: nothing attached"),
        "{}",
        stderr(&o)
    );
    assert!(!std::path::Path::new(rawbpf::attach::PIN_ROOT)
        .join(format!("ns_{}", net.lab.ns_b))
        .exists());
}

/// An embedder hooks a collection it loaded itself, unpinned: the chain
/// runs while the collection lives, nothing goes to bpffs, and
/// `Attached::detach` unhooks it. The same through XDP.
#[test]
fn embedder_hooks_a_loaded_collection_without_pins() {
    use rawbpf::attach::{AttachOptions, Hook, Pinning, Target};
    use rawbpf::{Collection, LoadOptions, ObjectSpec};
    if !kernel("embedder_hooks_a_loaded_collection_without_pins") {
        return;
    }
    let net = Net::new("embed");
    let ns_pins =
        std::path::Path::new(rawbpf::attach::PIN_ROOT).join(format!("ns_{}", net.lab.ns_b));
    let netlink = rawbpf::blocking::Netlink::new().unwrap();

    let spec = ObjectSpec::from_file(obj("pipeline.bpf.o")).unwrap();
    let chain = Collection::load(&spec, &LoadOptions::default()).unwrap();
    let opts = AttachOptions {
        target: Target::new(net.lab.dev_b.clone(), Hook::Ingress).in_netns(net.lab.ns_b.clone()),
        ..AttachOptions::default()
    };
    let hooked = netlink
        .attach_loaded(&chain, "mark_packet", &opts, Pinning::Unpinned)
        .unwrap();
    assert!(hooked.pin_dir.is_none());
    assert_eq!(net.batch().count, 0, "the whole chain runs");
    assert!(!ns_pins.exists(), "nothing pinned");
    netlink.detach_attached(hooked).unwrap();
    assert_eq!(net.batch().count, 10, "unhooked");

    let xdp_spec = ObjectSpec::from_file(obj("xdp.bpf.o")).unwrap();
    let xdp = Collection::load(&xdp_spec, &LoadOptions::default()).unwrap();
    let xdp_opts = AttachOptions {
        target: Target::new(net.lab.dev_b.clone(), Hook::Xdp).in_netns(net.lab.ns_b.clone()),
        ..AttachOptions::default()
    };
    let wrong = netlink.attach_loaded(&chain, "mark_packet", &xdp_opts, Pinning::Unpinned);
    assert!(wrong
        .unwrap_err()
        .to_string()
        .contains("a device's XDP hook runs xdp programs"),);
    let dropped = net.lab.receiver(4242).unwrap();
    let hooked = netlink
        .attach_loaded(&xdp, "xdp_drop_port", &xdp_opts, Pinning::Unpinned)
        .unwrap();
    net.tx.send_batch(4242, 10).unwrap();
    assert_eq!(dropped.collect_batch().unwrap().count, 0);
    netlink.detach_attached(hooked).unwrap();
    net.tx.send_batch(4242, 10).unwrap();
    assert_eq!(dropped.collect_batch().unwrap().count, 10);
    assert!(!ns_pins.exists(), "nothing pinned");
}
