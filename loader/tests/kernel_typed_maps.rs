//! rawbpf::maps against the real kernel: values written from Rust are what
//! a program reads (run with BPF_PROG_TEST_RUN), values a program writes
//! read back typed, and a Rust type whose size or map type differs from
//! the kernel's is refused with an error naming both. Needs root (skips
//! with a reason otherwise; under CI=true a skip fails).

#[path = "../../tests/support/mod.rs"]
mod support;

use rawbpf::load::possible_cpus;
use rawbpf::maps::{
    Array, ArrayOfMaps, HashMap, HashOfMaps, Key, LpmTrie, Map, MapError, PerCpuArray,
    PerCpuHashMap, Pod, ProgramArray, Queue, Stack,
};
use rawbpf::packet::ipv4_udp_frame;
use rawbpf::{Collection, LoadOptions, ObjectSpec};
use std::path::Path;
use support::{kernel, kernel_has, obj, BpffsDir};

fn load(name: &str) -> Collection {
    let path = obj(name);
    let spec = ObjectSpec::from_file(&path).unwrap();
    Collection::load(&spec, &LoadOptions::for_file(Path::new(&path))).unwrap()
}

/// The return value of `program` run once on the test frame.
fn run(c: &Collection, program: &str) -> u32 {
    let frame = ipv4_udp_frame(0);
    c.program(program)
        .unwrap()
        .test_run(&frame, 1)
        .unwrap()
        .retval
}

fn map<'a>(c: &'a Collection, name: &str) -> &'a Map {
    c.map(name).unwrap()
}

/// The error text of a refused open.
fn refused<T>(r: Result<T, rawbpf::maps::MapError>) -> String {
    match r {
        Ok(_) => panic!("a mismatched type was accepted"),
        Err(e) => e.to_string(),
    }
}

const NONE: u32 = 999;

#[test]
fn hash_array_lru_and_percpu_array_of_map_types() {
    if !kernel("hash_array_lru_and_percpu_array_of_map_types") {
        return;
    }
    let c = load("map_types.bpf.o");
    // Written from Rust, read by the program: lookup_inner returns inner_b[0].
    let inner_b = Array::<u32, _>::new(map(&c, "inner_b")).unwrap();
    inner_b.set(0, &42).unwrap();
    for _ in 0..3 {
        assert_eq!(run(&c, "lookup_inner"), 42);
    }
    assert_eq!(inner_b.get(0).unwrap(), 42);

    // Written by the program, read typed: three runs counted everywhere.
    let flows = HashMap::<u32, u64, _>::new(map(&c, "flows")).unwrap();
    let protocol = u32::from(0x0800u16.to_be()); // skb->protocol, network order
    let all: Vec<(u32, u64)> = flows.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(all, vec![(protocol, 3)]);
    assert_eq!(
        flows.keys().collect::<Result<Vec<_>, _>>().unwrap(),
        vec![protocol]
    );
    let pinned = Array::<u64, _>::new(map(&c, "pinned_counter")).unwrap();
    assert_eq!(pinned.get(0).unwrap(), 3);
    let recent = HashMap::<u32, u32, _>::try_from(map(&c, "recent")).unwrap();
    assert_eq!(
        recent.get(&(ipv4_udp_frame(0).len() as u32)).unwrap(),
        Some(1)
    );
    let stats = PerCpuArray::<u64, _>::new(map(&c, "percpu_stats")).unwrap();
    let per_cpu = stats.get(0).unwrap();
    assert_eq!(per_cpu.len(), possible_cpus().unwrap());
    assert_eq!(per_cpu.iter().sum::<u64>(), 3);

    // Insert, read, take and remove from Rust.
    flows.insert(&99, &5).unwrap();
    assert_eq!(flows.get(&99).unwrap(), Some(5));
    assert!(flows
        .insert_with_flags(&99, &6, rawbpf::maps::BPF_NOEXIST)
        .is_err());
    // BPF_MAP_LOOKUP_AND_DELETE_ELEM on a hash: Linux 5.14 (ENOTSUPP before).
    match flows.take(&99) {
        // The kernel's internal errno 524 is no raw OS error that std
        // knows: rawbpf gives it as `io::ErrorKind::Unsupported`.
        Err(MapError::Syscall { source, .. })
            if source.kind() == std::io::ErrorKind::Unsupported =>
        {
            kernel_has(
                "take on a hash",
                "BPF_MAP_LOOKUP_AND_DELETE_ELEM for hashes",
                false,
            );
            assert!(flows.remove(&99).unwrap());
        }
        taken => assert_eq!(taken.unwrap(), Some(5)),
    }
    assert_eq!(flows.get(&99).unwrap(), None);
    flows.insert(&98, &1).unwrap();
    assert!(flows.remove(&98).unwrap());
    assert!(!flows.remove(&98).unwrap());
    stats.set(0, &vec![0; per_cpu.len()]).unwrap();
    assert_eq!(stats.get(0).unwrap().iter().sum::<u64>(), 0);
    // One value too many for this machine's possible CPUs (a guest may
    // have only one).
    let too_many = vec![1; per_cpu.len() + 1];
    assert!(refused(stats.set(0, &too_many))
        .contains(&format!("{} per-CPU values given", too_many.len())));

    // Refused: wrong sizes, wrong types, an index past the end.
    assert_eq!(
        refused(HashMap::<u64, u64, _>::new(map(&c, "flows"))),
        "map flows: its key is 4 bytes, but u64 is 8 bytes"
    );
    assert_eq!(
        refused(HashMap::<u32, u32, _>::new(map(&c, "flows"))),
        "map flows: its value is 8 bytes, but u32 is 4 bytes"
    );
    assert_eq!(
        refused(Array::<u64, _>::new(map(&c, "flows"))),
        "map flows: its type is hash, not an array"
    );
    assert_eq!(
        refused(PerCpuArray::<u32, _>::new(map(&c, "percpu_stats"))),
        "map percpu_stats: its value is 8 bytes, but u32 is 4 bytes"
    );
    assert_eq!(
        refused(HashMap::<u32, u64, _>::new(map(&c, "percpu_stats"))),
        "map percpu_stats: its type is percpu_array, not a hash or lru_hash"
    );
    assert_eq!(
        refused(inner_b.get(1)),
        "map inner_b: index 1 is past its 1 entries"
    );

    // Owned, from an id and from a pin: the same map.
    let by_id = Array::<u32>::from_id(map(&c, "inner_b").id()).unwrap();
    assert_eq!(by_id.get(0).unwrap(), 42);
    let dir = BpffsDir::new("typed-maps");
    c.pin(&dir.0).unwrap();
    let by_pin = Array::<u32>::from_pin(dir.0.join("inner_b")).unwrap();
    by_pin.set(0, &7).unwrap();
    assert_eq!(run(&c, "lookup_inner"), 7);
    assert!(
        refused(HashMap::<u32, u64>::from_pin(dir.0.join("inner_b")))
            .contains("its type is array, not a hash or lru_hash")
    );
    assert!(refused(Array::<u32>::from_pin(dir.0.join("absent"))).contains("absent"));
}

#[test]
fn queue_is_fifo_and_stack_is_lifo() {
    if !kernel("queue_is_fifo_and_stack_is_lifo") {
        return;
    }
    let c = load("typed_maps.bpf.o");
    let queue = Queue::<u32, _>::new(map(&c, "queue")).unwrap();
    let stack = Stack::<u32, _>::new(map(&c, "stack")).unwrap();
    // Pushed from Rust, popped by the program.
    for v in [1, 2, 3] {
        queue.push(&v).unwrap();
        stack.push(&v).unwrap();
    }
    assert_eq!(queue.peek().unwrap(), Some(1));
    assert_eq!(stack.peek().unwrap(), Some(3));
    let popped = |p: &str| (0..4).map(|_| run(&c, p)).collect::<Vec<_>>();
    assert_eq!(popped("queue_pop"), [1, 2, 3, NONE]);
    assert_eq!(popped("stack_pop"), [3, 2, 1, NONE]);

    // Pushed by the program, popped from Rust.
    assert_eq!(run(&c, "push_three"), 0);
    let drain = |pop: &dyn Fn() -> Option<u32>| std::iter::from_fn(pop).collect::<Vec<_>>();
    assert_eq!(drain(&|| queue.pop().unwrap()), [10, 20, 30]);
    assert_eq!(drain(&|| stack.pop().unwrap()), [30, 20, 10]);
    assert_eq!(queue.peek().unwrap(), None);

    // Full: push refuses, force_push drops the oldest.
    for v in 1..=8 {
        queue.push(&v).unwrap();
    }
    let full = refused(queue.push(&9));
    assert!(full.starts_with("map queue: writing: "), "{full}");
    queue.force_push(&9).unwrap();
    assert_eq!(queue.pop().unwrap(), Some(2));

    assert_eq!(
        refused(Queue::<u64, _>::new(map(&c, "queue"))),
        "map queue: its value is 4 bytes, but u64 is 8 bytes"
    );
    assert_eq!(
        refused(Stack::<u32, _>::new(map(&c, "queue"))),
        "map queue: its type is queue, not a stack"
    );
}

#[test]
fn lpm_trie_matches_the_longest_prefix() {
    if !kernel("lpm_trie_matches_the_longest_prefix") {
        return;
    }
    let c = load("typed_maps.bpf.o");
    let routes = LpmTrie::<[u8; 4], u32, _>::new(map(&c, "routes")).unwrap();
    routes.insert(&Key::new(8, [10, 0, 0, 0]), &1).unwrap();
    routes.insert(&Key::new(16, [10, 1, 0, 0]), &2).unwrap();
    routes.insert(&Key::new(24, [10, 1, 2, 0]), &3).unwrap();
    let probe = Array::<[u8; 4], _>::new(map(&c, "probe")).unwrap();
    let matched = |addr: [u8; 4]| {
        probe.set(0, &addr).unwrap();
        let in_kernel = run(&c, "lpm_match");
        let from_rust = routes.get(&Key::new(32, addr)).unwrap().unwrap_or(0);
        assert_eq!(in_kernel, from_rust, "{addr:?}");
        in_kernel
    };
    assert_eq!(matched([10, 1, 2, 3]), 3);
    assert_eq!(matched([10, 1, 9, 9]), 2);
    assert_eq!(matched([10, 9, 9, 9]), 1);
    assert_eq!(matched([11, 0, 0, 1]), 0);
    let mut stored: Vec<(u32, u32)> = routes
        .iter()
        .map(|e| e.map(|(k, v)| (k.prefix_len, v)))
        .collect::<Result<_, _>>()
        .unwrap();
    stored.sort();
    assert_eq!(stored, [(8, 1), (16, 2), (24, 3)]);
    assert!(routes.remove(&Key::new(16, [10, 1, 0, 0])).unwrap());
    assert_eq!(matched([10, 1, 9, 9]), 1);
    assert_eq!(
        refused(LpmTrie::<u64, u32, _>::new(map(&c, "routes"))),
        format!(
            "map routes: its key is 8 bytes, but {} is 12 bytes",
            std::any::type_name::<Key<u64>>()
        )
    );
}

#[test]
fn percpu_hash_has_one_value_per_cpu() {
    if !kernel("percpu_hash_has_one_value_per_cpu") {
        return;
    }
    let c = load("typed_maps.bpf.o");
    let counts = PerCpuHashMap::<u32, u64, _>::new(map(&c, "counts")).unwrap();
    assert_eq!(run(&c, "percpu_bump"), NONE); // created by the program as 1
    let created = counts.get(&7).unwrap().unwrap();
    assert_eq!(created.len(), possible_cpus().unwrap());
    assert_eq!(created.iter().sum::<u64>(), 1);

    // CPU i holds 100 * i: the program reads its own CPU's value.
    let values: Vec<u64> = (0..created.len() as u64).map(|i| 100 * i).collect();
    counts.insert(&7, &values).unwrap();
    let seen = u64::from(run(&c, "percpu_bump"));
    assert_eq!(seen % 100, 0);
    let cpu = (seen / 100) as usize;
    let after = counts.get(&7).unwrap().unwrap();
    for (i, v) in after.iter().enumerate() {
        assert_eq!(*v, values[i] + u64::from(i == cpu), "CPU {i}");
    }
    let all: Vec<(u32, Vec<u64>)> = counts.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(all, vec![(7, after)]);
    assert!(refused(counts.insert(&7, &[])).contains("per-CPU values given"));
    assert_eq!(
        refused(HashMap::<u32, u64, _>::new(map(&c, "counts"))),
        "map counts: its type is percpu_hash, not a hash or lru_hash"
    );
}

/// `struct config` of programs/typed_maps.bpf.c.
#[derive(Debug, PartialEq)]
struct Config {
    limit: u32,
    port: u16,
    bytes: u64,
    on: bool,
}
rawbpf::pod_struct!(Config {
    limit: u32,
    port: u16,
    bytes: u64,
    on: bool,
});

#[test]
fn struct_values_cross_both_ways() {
    if !kernel("struct_values_cross_both_ways") {
        return;
    }
    let c = load("typed_maps.bpf.o");
    assert_eq!(Config::SIZE, 24);
    let config = HashMap::<u32, Config, _>::new(map(&c, "config")).unwrap();
    assert_eq!(run(&c, "config_copy"), NONE);
    let cfg = Config {
        limit: 5,
        port: 80,
        bytes: 1 << 40,
        on: true,
    };
    config.insert(&1, &cfg).unwrap();
    assert_eq!(run(&c, "config_copy"), 85);
    assert_eq!(
        config.get(&2).unwrap(),
        Some(Config {
            limit: 6,
            port: 81,
            bytes: (1 << 40) + 1,
            on: false,
        })
    );
    assert_eq!(
        refused(HashMap::<u32, [u8; 16], _>::new(map(&c, "config"))),
        "map config: its value is 24 bytes, but [u8; 16] is 16 bytes"
    );
}

#[test]
fn prog_array_slot_set_then_tail_call_taken() {
    if !kernel("prog_array_slot_set_then_tail_call_taken") {
        return;
    }
    let c = load("pipeline.bpf.o");
    let slots = ProgramArray::new(map(&c, "prog_array")).unwrap();
    let mark = c.program("mark_packet").unwrap();
    let drop = c.program("inspect_and_drop").unwrap();
    assert_eq!(slots.get(1).unwrap(), Some(drop.id));
    assert_eq!(
        slots.iter().collect::<Result<Vec<_>, _>>().unwrap(),
        [(0, mark.id), (1, drop.id)]
    );
    assert_eq!(run(&c, "mark_packet"), 2); // tail call to slot 1: TC_ACT_SHOT
    assert!(slots.clear(1).unwrap());
    assert!(!slots.clear(1).unwrap());
    assert_eq!(slots.get(1).unwrap(), None);
    assert_eq!(run(&c, "mark_packet"), 0); // slot 1 empty: TC_ACT_OK
    slots.set(1, drop).unwrap();
    assert_eq!(slots.get(1).unwrap(), Some(drop.id));
    assert_eq!(run(&c, "mark_packet"), 2);
    assert_eq!(
        refused(slots.set(2, drop)),
        "map prog_array: index 2 is past its 2 entries"
    );
    assert_eq!(
        refused(HashMap::<u32, u32, _>::new(map(&c, "prog_array"))),
        "map prog_array: its type is prog_array, not a hash or lru_hash"
    );
}

#[test]
fn maps_of_maps_swap_inner_maps() {
    if !kernel("maps_of_maps_swap_inner_maps") {
        return;
    }
    let c = load("map_types.bpf.o");
    let (a, b) = (map(&c, "inner_a"), map(&c, "inner_b"));
    Array::<u32, _>::new(a).unwrap().set(0, &11).unwrap();
    Array::<u32, _>::new(b).unwrap().set(0, &22).unwrap();
    // lookup_inner returns outer[1]'s element 0; 100 when the slot is empty.
    let outer = ArrayOfMaps::new(map(&c, "outer")).unwrap();
    assert_eq!(
        outer.iter().collect::<Result<Vec<_>, _>>().unwrap(),
        [(0, a.id()), (1, b.id())]
    );
    assert_eq!(run(&c, "lookup_inner"), 22);
    outer.set(1, a).unwrap();
    assert_eq!(outer.get(1).unwrap(), Some(a.id()));
    assert_eq!(run(&c, "lookup_inner"), 11);
    assert!(outer.clear(1).unwrap());
    assert_eq!(run(&c, "lookup_inner"), 100);

    let outer_hash = HashOfMaps::<u32, _>::new(map(&c, "outer_hash")).unwrap();
    assert_eq!(outer_hash.get(&2).unwrap(), Some(a.id()));
    outer_hash.insert(&3, b).unwrap();
    let mut all: Vec<(u32, u32)> = outer_hash.iter().collect::<Result<_, _>>().unwrap();
    all.sort();
    assert_eq!(all, [(2, a.id()), (3, b.id())]);
    assert!(outer_hash.remove(&3).unwrap());
    assert_eq!(
        refused(ArrayOfMaps::new(map(&c, "outer_hash"))),
        "map outer_hash: its type is hash_of_maps, not an array_of_maps"
    );
}
