//! `rawbpf map`: maps named by id, pin, group or chain; keys and values
//! typed by the map's BTF (struct members by name, enums by name, per-CPU
//! lists, prog-array and map-in-map ids), hex without BTF; a datapath's
//! configuration map filled from the CLI and the traffic following it;
//! bad keys and values refused with exit 2, missing maps with exit 1.

mod support;

use rawbpf::Map;
use support::groups::{fails, Group};
use support::json::{self, Value};
use support::net::Net;
use support::{kernel, obj, rawbpf, stderr, stdout, BpffsDir};

fn ok(o: std::process::Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

fn ok_json(o: std::process::Output) -> Value {
    let out = ok(o);
    json::parse(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `rawbpf map ARGS... --json` on a pinned map: its JSON.
fn map_json(args: &[&str]) -> Value {
    let mut all = vec!["map"];
    all.extend_from_slice(args);
    all.push("--json");
    ok_json(rawbpf(&all))
}

/// The program drops everything (the batch's end marker too): a batch is
/// sent, `pass` (a `map update`) makes it pass again, and the next batch's
/// marker collects only that batch: the first one's 10 were dropped.
fn dropped_then_passed(net: &Net, pass: &[&str]) {
    net.tx.send_batch(net.rx.port, 10).unwrap();
    ok(net.on_b(pass));
    assert_eq!(
        net.batch().count,
        10,
        "the batch sent while dropping is gone"
    );
}

/// `rawbpf load OBJ --pin DIR`.
fn load_pinned(object: &str, dir: &BpffsDir) {
    ok(rawbpf(&["load", &obj(object), "--pin", dir.path()]));
}

fn pin(dir: &BpffsDir, name: &str) -> String {
    format!("{}/{name}", dir.path())
}

/// An attached TC program returns what its config map holds: the CLI
/// writes TC_ACT_SHOT and the traffic stops, writes 0 and it flows again;
/// the chain's maps are named by the chain (`NAME --dev D --netns NS`).
#[test]
fn traffic_follows_a_map_filled_from_the_cli() {
    if !kernel("traffic_follows_a_map_filled_from_the_cli") {
        return;
    }
    let net = Net::new("mapcfg");
    let shared = BpffsDir::new("mapcfg-shared");
    ok(net.on_b(&[
        "attach",
        &obj("map_types.bpf.o"),
        "--pin-maps",
        shared.path(),
    ]));
    assert_eq!(net.batch().count, 10, "inner_b[0] is 0: TC_ACT_OK");

    // lookup_inner returns inner_b[0], reached through outer[1].
    let out = ok(net.on_b(&["map", "update", "inner_b", "0", "2"]));
    assert!(out.contains("updated key: 0  value: 2"), "{out}");
    let got = ok_json(net.on_b(&["map", "lookup", "inner_b", "0", "--json"]));
    assert_eq!(got.get("value").num(), 2);
    dropped_then_passed(&net, &["map", "update", "inner_b", "0", "0"]);

    // The map-in-map shows its slots as map ids and names.
    let outer = ok_json(net.on_b(&["map", "dump", "outer", "--json"]));
    let names: Vec<(u64, &str)> = outer
        .array()
        .iter()
        .map(|e| (e.get("key").num(), e.get("value").get("name").str()))
        .collect();
    assert_eq!(names, [(0, "inner_a"), (1, "inner_b")]);
    let inner_b_id = outer.array()[1].get("value").get("id").num();
    let shown = map_json(&["show", "id", &inner_b_id.to_string()]);
    assert_eq!(shown.get("name").str(), "inner_b");
    assert!(
        shown
            .get("pins")
            .array()
            .iter()
            .any(|p| p.str().ends_with("/ingress/1/inner_b")),
        "{shown:?}"
    );

    // Counters the program keeps: a typed hash and a per-CPU array.
    let flows = ok_json(net.on_b(&["map", "dump", "flows", "--json"]));
    let ip = flows
        .array()
        .iter()
        .find(|e| e.get("key").num() == 0x0008)
        .unwrap_or_else(|| panic!("no IPv4 (0x0008 in network order) key: {flows:?}"));
    assert!(ip.get("value").num() >= 20, "{flows:?}");
    let stats = ok_json(net.on_b(&["map", "lookup", "percpu_stats", "0", "--json"]));
    let per_cpu = stats.get("value").array();
    assert_eq!(per_cpu.len(), rawbpf::load::possible_cpus().unwrap());
    let total: u64 = per_cpu.iter().map(|c| c.get("value").num()).sum();
    assert!(total >= 20, "{stats:?}");
    assert_eq!(per_cpu[0].get("cpu").num(), 0);

    assert_eq!(net.batch().count, 10, "still TC_ACT_OK");
    ok(net.on_b(&["detach"]));
}

/// A map without BTF (an object built without it): keys of an array are
/// indexes, values hex bytes, and the datapath follows them too.
#[test]
fn maps_without_btf_take_hex() {
    if !kernel("maps_without_btf_take_hex") {
        return;
    }
    let net = Net::new("maphex");
    ok(net.on_b(&["attach", &obj("legacy_maps.nobtf.bpf.o")]));
    // Passing first: the neighbours are resolved before anything drops ARP.
    assert_eq!(net.batch().count, 10, "legacy_config[0] is 0: TC_ACT_OK");
    let shown = ok(net.on_b(&["map", "show", "legacy_config"]));
    assert!(shown.contains("no BTF"), "{shown}");
    ok(net.on_b(&["map", "update", "legacy_config", "0", "0x02 0x00 0x00 0x00"]));
    let got = ok_json(net.on_b(&["map", "lookup", "legacy_config", "0", "--json"]));
    let bytes: Vec<&str> = got.get("value").array().iter().map(Value::str).collect();
    assert_eq!(bytes, ["0x02", "0x00", "0x00", "0x00"]);
    let o = net.on_b(&["map", "update", "legacy_config", "0", "0x02 0x00"]);
    let err = fails(&o, 2);
    assert!(
        err.contains("value (4 bytes, no BTF): 2 bytes given"),
        "{err}"
    );
    dropped_then_passed(
        &net,
        &["map", "update", "legacy_config", "0", "00 00 00 00"],
    );
    // A hash without BTF: hex keys (IPv4's protocol, 0x0008 in network
    // order), looked up in the form dump prints them.
    let counts = ok_json(net.on_b(&["map", "dump", "legacy_counts", "--json"]));
    let ipv4 = counts
        .array()
        .iter()
        .find(|e| e.get("key") == &json::parse(r#"["0x08","0x00","0x00","0x00"]"#).unwrap())
        .unwrap_or_else(|| panic!("no IPv4 key: {counts:?}"));
    assert_eq!(ipv4.get("value").array().len(), 8);
    let got = ok_json(net.on_b(&[
        "map",
        "lookup",
        "legacy_counts",
        r#"["0x08","0x00","0x00","0x00"]"#,
        "--json",
    ]));
    assert_eq!(got.get("value"), ipv4.get("value"));
    // One word for a 4-byte key is a number.
    let got = ok_json(net.on_b(&["map", "lookup", "legacy_counts", "8", "--json"]));
    assert_eq!(got.get("value"), ipv4.get("value"));
    ok(net.on_b(&["detach"]));
}

/// Global data of a group, by the group's name: structs by member, enums
/// by name, char arrays as strings; `.data` written with a struct-like
/// text, `.rodata` refused (frozen). `map list` shows the group's pins.
#[test]
fn group_globals_read_and_written_by_name() {
    let test = "group_globals_read_and_written_by_name";
    if !kernel(test) || !support::groups::pinnable_perf_events(test, "a tracepoint") {
        return;
    }
    let g = Group::new("mapglob");
    g.attach_json("globals.bpf.o", &["--prog", "count_getppid"]);
    let by_name = |args: &[&str]| {
        let mut all = vec!["map"];
        all.extend_from_slice(args);
        all.extend(["--name", &g.name]);
        rawbpf(&all)
    };
    let rodata = ok_json(by_name(&["lookup", ".rodata", "0", "--json"]));
    let v = rodata.get("value");
    assert_eq!(v.get("mode").str(), "MODE_ADD");
    assert_eq!(v.get("tag").str(), "abc");
    assert_eq!(v.get("pair").get("b").num(), 3);
    assert_eq!(v.get("enabled"), &Value::Bool(true));

    let out = ok(by_name(&["update", ".data", "0", "{data_add=7}"]));
    assert!(out.contains(r#"value: {"data_add":7}"#), "{out}");
    let data = ok_json(by_name(&["dump", ".data", "--json"]));
    assert_eq!(data.array()[0].get("value").get("data_add").num(), 7);

    let err = fails(&by_name(&["update", ".rodata", "0", "{base=2}"]), 1);
    assert!(err.contains("rodata"), "{err}");
    let err = fails(&by_name(&["update", ".data", "0", "{nope=1}"]), 2);
    assert!(err.contains("no field 'nope'"), "{err}");
    let err = fails(&by_name(&["update", ".data", "0", "{data_add=-1}"]), 2);
    assert!(
        err.contains("data_add (__u32)") && err.contains("out of range"),
        "{err}"
    );

    let listed = map_json(&["list"]);
    let ours: Vec<&Value> = listed
        .array()
        .iter()
        .filter(|m| {
            m.get("pins")
                .array()
                .iter()
                .any(|p| p.str().contains(&format!("/groups/{}/maps/", g.name)))
        })
        .collect();
    let mut names: Vec<&str> = ours.iter().map(|m| m.get("name").str()).collect();
    names.sort();
    assert_eq!(names, ["globals..bss", "globals..data", "globals..rodata"]);
    let rodata = ours
        .iter()
        .find(|m| m.get("name").str() == "globals..rodata")
        .unwrap();
    assert_eq!(rodata.get("type").str(), "array");
    assert_eq!(rodata.get("max_entries").num(), 1);
    g.detach();
}

/// A prog array: slots shown as program ids and names, set from a program
/// id, deleted; update flags; a hash and an LRU hash filled and emptied.
#[test]
fn prog_arrays_and_hashes_update_and_delete() {
    if !kernel("prog_arrays_and_hashes_update_and_delete") {
        return;
    }
    let dir = BpffsDir::new("mapprog");
    load_pinned("pipeline.bpf.o", &dir);
    let arr = pin(&dir, "prog_array");
    let slots = map_json(&["dump", "pinned", &arr]);
    let names: Vec<&str> = slots
        .array()
        .iter()
        .map(|e| e.get("value").get("name").str())
        .collect();
    // The kernel's names, at most 15 bytes.
    assert_eq!(names, ["mark_packet", "inspect_and_dro"]);
    let mark_id = slots.array()[0].get("value").get("id").num().to_string();

    ok(rawbpf(&["map", "update", "pinned", &arr, "1", &mark_id]));
    let slot = map_json(&["lookup", "pinned", &arr, "1"]);
    assert_eq!(slot.get("value").get("name").str(), "mark_packet");
    ok(rawbpf(&["map", "delete", "pinned", &arr, "1"]));
    let err = fails(&rawbpf(&["map", "lookup", "pinned", &arr, "1"]), 1);
    assert!(err.contains("no element with key 1"), "{err}");
    let err = fails(&rawbpf(&["map", "delete", "pinned", &arr, "1"]), 1);
    assert!(err.contains("no element with key 1"), "{err}");
    let err = fails(
        &rawbpf(&["map", "update", "pinned", &arr, "1", "4294967295"]),
        1,
    );
    assert!(err.contains("no program with id 4294967295"), "{err}");

    let types = BpffsDir::new("maptypes");
    load_pinned("map_types.bpf.o", &types);
    for name in ["flows", "recent"] {
        let m = pin(&types, name);
        ok(rawbpf(&["map", "update", "pinned", &m, "7", "70"]));
        ok(rawbpf(&[
            "map",
            "update",
            "pinned",
            &m,
            "8",
            "80",
            "--noexist",
        ]));
        let err = fails(
            &rawbpf(&["map", "update", "pinned", &m, "8", "81", "--noexist"]),
            1,
        );
        assert!(err.contains("exists"), "{err}");
        let err = fails(
            &rawbpf(&["map", "update", "pinned", &m, "9", "90", "--exist"]),
            1,
        );
        assert!(err.contains("No such file"), "{err}");
        let all = map_json(&["dump", "pinned", &m]);
        let mut kv: Vec<(u64, u64)> = all
            .array()
            .iter()
            .map(|e| (e.get("key").num(), e.get("value").num()))
            .collect();
        kv.sort();
        assert_eq!(kv, [(7, 70), (8, 80)], "{name}");
        ok(rawbpf(&["map", "delete", "pinned", &m, "7"]));
        assert_eq!(map_json(&["dump", "pinned", &m]).array().len(), 1);
    }
    // `recent` holds __u32 values: 2^32 does not fit, and nothing is written.
    let recent = pin(&types, "recent");
    let err = fails(
        &rawbpf(&["map", "update", "pinned", &recent, "8", "4294967296"]),
        2,
    );
    assert!(
        err.contains("value (__u32)") && err.contains("out of range"),
        "{err}"
    );
    assert_eq!(
        map_json(&["lookup", "pinned", &recent, "8"])
            .get("value")
            .num(),
        80
    );
}

/// What is looked for and not found is named, exit 1; bad usage and
/// keys that do not parse, exit 2.
#[test]
fn missing_maps_and_bad_input_are_named() {
    if !kernel("missing_maps_and_bad_input_are_named") {
        return;
    }
    let dir = BpffsDir::new("mapbad");
    load_pinned("map_types.bpf.o", &dir);
    let flows = pin(&dir, "flows");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["show", "id", "4294967295"],
            1,
            "no map with id 4294967295",
        ),
        (
            &["show", "pinned", "/sys/fs/bpf/rawbpf-no-such-pin"],
            1,
            "/sys/fs/bpf/rawbpf-no-such-pin",
        ),
        (
            &["show", "x", "--name", "rawbpf-no-such-group"],
            1,
            "no group 'rawbpf-no-such-group'",
        ),
        (
            &["show", "x", "--dev", "lo", "--priority", "777"],
            1,
            "no ingress chain of lo at priority 777",
        ),
        (&["lookup", "pinned", &flows, "abc"], 2, "key (__u32)"),
        (&["lookup", "pinned", &flows, "--", "-1"], 2, "key (__u32)"),
        (&["update", "pinned", &flows, "1", "x"], 2, "value (__u64)"),
        (&["frob"], 2, "unknown subcommand 'frob'"),
        (&["show"], 2, "which map?"),
        (&["show", "flows"], 2, "needs --name GROUP or --dev IFACE"),
        (&["lookup", "pinned", &flows], 2, "expected KEY after MAP"),
        (
            &["update", "pinned", &flows, "1", "2", "--exist", "--noexist"],
            2,
            "exclude each other",
        ),
        (&["dump", "pinned", &flows, "--exist"], 2, "are for update"),
    ];
    for (args, code, want) in cases {
        let mut all = vec!["map"];
        all.extend_from_slice(args);
        let err = fails(&rawbpf(&all), *code);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(map_json(&["dump", "pinned", &flows]).array().is_empty());

    // A group that exists but has no such map lists those it has (a
    // tracepoint group: where the kernel can pin it).
    let test = "missing_maps_and_bad_input_are_named";
    if !support::groups::pinnable_perf_events(test, "a tracepoint") {
        return;
    }
    let g = Group::new("mapmiss");
    g.attach_json("globals.bpf.o", &["--prog", "count_getppid"]);
    let err = fails(&rawbpf(&["map", "show", "nope", "--name", &g.name]), 1);
    assert!(
        err.contains("has no map 'nope'") && err.contains("_bss"),
        "{err}"
    );
    g.detach();
}

/// The library's batch dump sees every element once, in chunks smaller
/// than the map, and agrees with the one-key-at-a-time walk.
#[test]
fn batch_dump_sees_every_element_once() {
    if !kernel("batch_dump_sees_every_element_once") {
        return;
    }
    let dir = BpffsDir::new("mapbatch");
    load_pinned("map_types.bpf.o", &dir);
    for name in ["flows", "recent", "percpu_stats"] {
        let m = Map::from_pin(pin(&dir, name)).unwrap();
        let n = if name == "percpu_stats" { 4 } else { 50 };
        for k in 0..n as u32 {
            let v = m.same_on_every_cpu(&[k as u8; 8][..m.value_size() as usize]);
            m.update(&k.to_ne_bytes(), &v).unwrap();
        }
        let mut seen = Vec::new();
        m.for_each_entry(7, |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            true
        })
        .unwrap();
        let mut walked = m.entries().unwrap();
        seen.sort();
        walked.sort();
        assert_eq!(seen.len(), n, "{name}");
        assert_eq!(seen, walked, "{name}");
        // Stopping early stops.
        let mut count = 0;
        m.for_each_entry(3, |_, _| {
            count += 1;
            count < 5
        })
        .unwrap();
        assert_eq!(count, 5.min(n), "{name}");
        // The typed decode agrees with the bytes.
        let btf = m.btf().unwrap().expect("map_types has BTF");
        assert_eq!(btf.key_type_name().as_deref(), Some("__u32"));
        let key = btf.decode_key(&seen[1].0).unwrap().unwrap();
        assert_eq!(
            key.to_json(),
            u32::from_ne_bytes(seen[1].0[..4].try_into().unwrap()).to_string()
        );
    }
}
