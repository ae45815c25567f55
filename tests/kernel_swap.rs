//! `rawbpf swap` on chains whose stages share maps (programs/chain3.bpf.c):
//! the swapped-in stage runs with the chain's own prog array and counters,
//! so a three-stage chain keeps dropping after its middle stage is swapped,
//! its counters keep counting, and both still hold once the swap command
//! has exited. XDP chains swap too. And chains on two devices share the
//! maps their object pins by name (`LIBBPF_PIN_BY_NAME`), in one directory.

mod support;

use rawbpf::Map;
use std::path::Path;
use support::net::Net;
use support::{kernel, obj, stderr};

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}", stderr(&o));
    support::stdout(&o)
}

/// counts[0..8] of the chain pinned in `dir`.
fn counts(dir: &Path) -> [u64; 8] {
    let map = Map::from_pin(dir.join("counts")).unwrap();
    let mut out = [0; 8];
    for (i, n) in out.iter_mut().enumerate() {
        let v = map.lookup(&(i as u32).to_le_bytes()).unwrap().unwrap();
        *n = u64::from_le_bytes(v[..8].try_into().unwrap());
    }
    out
}

/// Ten datagrams: how many arrived, and how the counters moved.
fn batch_moves(net: &Net, dir: &Path) -> (usize, [u64; 8]) {
    let before = counts(dir);
    let arrived = net.batch().count;
    let after = counts(dir);
    let mut moved = [0; 8];
    for i in 0..8 {
        moved[i] = after[i] - before[i];
    }
    (arrived, moved)
}

#[test]
fn three_stage_chain_keeps_dropping_and_counting_after_a_swap() {
    if !kernel("three_stage_chain_keeps_dropping_and_counting_after_a_swap") {
        return;
    }
    let net = Net::new("swap3");
    let file = obj("chain3.bpf.o");
    ok(net.on_b(&["attach", &file, "--prog", "tc_entry"]));
    let dir = net.pin_dir("ingress");
    // entry, mid, drop: every datagram through all three, none arrives.
    let (arrived, moved) = batch_moves(&net, &dir);
    assert_eq!((arrived, &moved[..4]), (0, &[10, 10, 10, 0][..]));

    let out = ok(net.on_b(&["swap", &format!("jmp:1={file}:tc_mid_b")]));
    assert!(out.contains("to tc_mid_b"), "{out}");
    // list says what each slot of the chain's prog array holds now.
    let listed = support::rawbpf_json(&["list", "--netns", &net.lab.ns_b, "--json"]);
    let slots: Vec<(u64, String)> = listed
        .get("filters")
        .array()
        .iter()
        .flat_map(|f| f.get("slots").array())
        .filter(|s| s.get("map").str() == "jmp")
        .map(|s| (s.get("key").num(), s.get("program").str().to_owned()))
        .collect();
    assert_eq!(
        slots,
        [
            (0, "tc_entry".into()),
            (1, "tc_mid_b".into()),
            (2, "tc_drop_udp".into())
        ]
    );
    let text = ok(support::rawbpf(&["list", "--netns", &net.lab.ns_b]));
    assert!(text.contains("jmp[1] = tc_mid_b (id "), "{text}");
    // The new middle stage counts in the chain's counters and tail-calls
    // through the chain's prog array into the chain's slot 2, after the
    // swap command exited (its own fds closed).
    for round in 0..2 {
        let (arrived, moved) = batch_moves(&net, &dir);
        assert_eq!(
            (arrived, &moved[..4]),
            (0, &[10, 0, 10, 10][..]),
            "round {round} after the swap"
        );
    }
    // And back.
    ok(net.on_b(&["swap", &format!("jmp:1={file}:tc_mid")]));
    let (arrived, moved) = batch_moves(&net, &dir);
    assert_eq!((arrived, &moved[..4]), (0, &[10, 10, 10, 0][..]));
    ok(net.on_b(&["detach"]));
    assert_eq!(net.batch().count, 10, "nothing runs after detach");
}

#[test]
fn xdp_chain_swaps_its_stage() {
    if !kernel("xdp_chain_swaps_its_stage") {
        return;
    }
    let net = Net::new("swapx");
    let file = obj("chain3.bpf.o");
    ok(net.on_b(&["attach", &file, "--xdp", "--prog", "xdp_entry"]));
    let dir = net.pin_dir("xdp").with_file_name("0");
    let (arrived, moved) = batch_moves(&net, &dir);
    assert_eq!((arrived, &moved[4..7]), (0, &[10, 10, 0][..]));

    let out = ok(net.on_b(&["swap", "--xdp", &format!("xjmp:1={file}:xdp_count_pass")]));
    assert!(out.contains("xdp to xdp_count_pass"), "{out}");
    let (arrived, moved) = batch_moves(&net, &dir);
    assert_eq!((arrived, &moved[4..7]), (10, &[10, 0, 10][..]));

    // A TC stage is refused for an XDP chain, and nothing changes.
    let o = net.on_b(&["swap", "--xdp", &format!("xjmp:1={file}:tc_mid_b")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("this prog array holds xdp programs"),
        "{}",
        stderr(&o)
    );
    assert_eq!(net.batch().count, 10);
    ok(net.on_b(&["detach", "--xdp"]));
}

/// A map given for one of the object's maps must match its definition:
/// chain3's `jmp` has 3 slots, pipeline's `prog_array` 2.
#[test]
fn a_replacement_map_that_differs_is_refused() {
    if !kernel("a_replacement_map_that_differs_is_refused") {
        return;
    }
    use rawbpf::load::MapReplacement;
    use rawbpf::{Collection, LoadOptions, ObjectSpec};
    let pipeline = ObjectSpec::from_file(obj("pipeline.bpf.o")).unwrap();
    let pipeline = Collection::load(&pipeline, &LoadOptions::default()).unwrap();
    let array = pipeline.map("prog_array").unwrap();
    let chain = ObjectSpec::from_file(obj("chain3.bpf.o")).unwrap();
    let opts = LoadOptions {
        replace_maps: vec![MapReplacement::new("jmp", array).unwrap()],
        ..LoadOptions::default()
    };
    let e = Collection::load(&chain, &opts).unwrap_err().to_string();
    assert!(
        e.contains("map jmp: the map given for it")
            && e.contains("max_entries is 2 there, 3 in the object"),
        "{e}"
    );
}

/// map_types.bpf.o pins `pinned_counter` by name: attached on two devices
/// with one `--pin-maps DIR`, both chains count into the one map pinned
/// there, and neither chain directory holds a copy. Detaching both leaves
/// it (as libbpf leaves by-name pins).
#[test]
fn chains_on_two_devices_share_a_map_pinned_by_name() {
    if !kernel("chains_on_two_devices_share_a_map_pinned_by_name") {
        return;
    }
    let shared = support::BpffsDir::new("pinmaps");
    let (one, two) = (Net::new("pinm1"), Net::new("pinm2"));
    let file = obj("map_types.bpf.o");
    for net in [&one, &two] {
        ok(net.on_b(&["attach", &file, "--pin-maps", shared.path()]));
        assert!(!net.pin_dir("ingress").join("pinned_counter").exists());
    }
    let counter = || {
        let map = Map::from_pin(shared.0.join("pinned_counter")).unwrap();
        let v = map.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
        u64::from_le_bytes(v[..8].try_into().unwrap())
    };
    for net in [&one, &two] {
        let before = counter();
        net.batch();
        assert!(counter() >= before + 10, "{} counted", net.lab.dev_b);
    }
    for net in [&one, &two] {
        ok(net.on_b(&["detach"]));
    }
    assert!(
        shared.0.join("pinned_counter").exists(),
        "by-name pins stay"
    );
}
