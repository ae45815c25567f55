//! `rawbpf list --json`'s links, which the CLI reads through the link
//! iterator it keeps pinned in /sys/fs/bpf/rawbpf/cache, say what bpf(2)
//! says of each link (the library's `list_links`, asking per link): here
//! for TCX and XDP links on a device and a group's tracing links. The
//! iterator's own link is not listed; `detach --all` removes the cache and
//! the next `list` makes it again. Needs root (skips without, except under
//! CI=true).

mod support;

use rawbpf::link::kernel_links::{default_iterator_pin, list_links, LinkIterator};
use support::json::Value;
use support::net::Net;
use support::{kernel, obj, rawbpf, rawbpf_json, stderr, unique};

fn ok(o: std::process::Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// The CLI's link with this id, if listed.
fn listed(json: &Value, id: u32) -> Option<&Value> {
    json.get("links")
        .array()
        .iter()
        .find(|l| l.get("id").num() == u64::from(id))
}

struct Group(String);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = rawbpf(&["detach", "--name", &self.0]);
    }
}

#[test]
fn list_shows_what_bpf2_says_of_each_link() {
    if !kernel("list_shows_what_bpf2_says_of_each_link") {
        return;
    }
    let net = Net::new("lslinks");
    let tcx = rawbpf::probe::probe_feature(rawbpf::probe::Feature::Tcx);
    if tcx {
        ok(net.on_b(&[
            "attach",
            &obj("pipeline.bpf.o"),
            "--mode",
            "tcx",
            "--tail",
            "prog_array:1=",
        ]));
    }
    ok(net.on_b(&[
        "attach",
        &obj("xdp.bpf.o"),
        "--xdp",
        "--xdp-mode",
        "generic",
    ]));
    // Before perf_event links (5.15) a group cannot pin tracepoints: then
    // only the object's two raw tracepoints make the group.
    let group = Group(unique("lslinks"));
    let perf_links = rawbpf::probe::probe_link_kind(rawbpf::probe::LinkKind::PerfEvent);
    let object = obj("tracing_many.bpf.o");
    let mut attach = vec!["attach", object.as_str(), "--name", &group.0];
    if !perf_links {
        attach.extend(["--prog", "raw_sys_enter", "--prog", "raw_sys_exit"]);
    }
    ok(rawbpf(&attach));

    let json = rawbpf_json(&["list", "--json"]);
    let walked: Vec<_> = list_links()
        .unwrap()
        .into_iter()
        .filter(|l| {
            l.group.as_deref() == Some(group.0.as_str())
                || ["mark_packet", "xdp_drop_port"].contains(&l.prog_name.as_str())
        })
        .collect();
    assert!(
        walked.len() >= if perf_links { 12 } else { 2 },
        "{walked:#?}"
    );
    let mut kinds: Vec<_> = walked.iter().map(|l| l.link_type).collect();
    kinds.sort();
    kinds.dedup();
    eprintln!("compared links of types {kinds:?}");
    if tcx {
        assert!(kinds.contains(&11), "no tcx link: {walked:#?}");
    }
    for l in &walked {
        let Some(cli) = listed(&json, l.id) else {
            panic!("link {} not listed: {json:?}", l.id)
        };
        assert_eq!(
            cli.get("type").str(),
            rawbpf::link::kernel_links::link_type_name(l.link_type)
        );
        assert_eq!(cli.get("prog_id").num(), u64::from(l.prog_id));
        assert_eq!(cli.get("prog_name").str(), l.prog_name, "link {}", l.id);
        assert_eq!(cli.get("target").str(), l.target, "link {}", l.id);
        match &l.group {
            Some(g) => assert_eq!(cli.get("group").str(), g),
            None => assert!(matches!(cli.get("group"), Value::Null), "{cli:?}"),
        }
    }

    // The cache is there, and its link is not listed as a user's.
    let pin = default_iterator_pin();
    if let Ok(iter) = LinkIterator::open_pinned(&pin) {
        let json = rawbpf_json(&["list", "--json"]);
        assert!(listed(&json, iter.link_id()).is_none(), "{json:?}");
    } else {
        eprintln!("no link iterator on this kernel: list walked with bpf(2)");
    }
}

#[test]
fn detach_all_removes_the_cache_and_list_makes_it_again() {
    if !kernel("detach_all_removes_the_cache_and_list_makes_it_again") {
        return;
    }
    if LinkIterator::load().is_err() {
        eprintln!("SKIP: no link iterator on this kernel");
        return;
    }
    let pin = default_iterator_pin();
    rawbpf_json(&["list", "--json"]);
    assert!(pin.exists(), "{pin:?}");
    // What detach --all does to the cache (the command itself would detach
    // the groups of the tests running beside this one).
    assert!(rawbpf::link::kernel_links::remove_iterator_cache().unwrap() >= 1);
    assert!(!pin.exists());
    rawbpf_json(&["list", "--json"]);
    assert!(pin.exists());
}
