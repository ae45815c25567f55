//! `rawbpf attach OBJ` of an object with struct_ops maps:
//! programs/struct_ops_cc.bpf.o's two `tcp_congestion_ops` (`rawbpf_cc` in
//! `.struct_ops.link`, `rawbpf_cc_map` in `.struct_ops`) are registered as
//! part of the group, so the kernel lists them among its available
//! congestion controls, and `detach --name` unregisters both. (That the
//! programs run is loader/tests/kernel_struct_ops.rs's: it connects a
//! socket with each and reads the counter.)
//!
//! The object's congestion-control names are fixed: this file's tests are
//! the only ones that register them unrenamed, one at a time. The second
//! kills `attach` and `detach` at each of their bpf(2), rename and mkdir
//! calls and checks that `detach --name` clears whatever is left.

mod support;

use std::path::Path;
use support::json::Value;
use support::{kernel, kernel_has, obj, rawbpf, rawbpf_json, stderr, unique};

/// The object's congestion-control names are global: one test at a time.
static NAMES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn names_lock() -> std::sync::MutexGuard<'static, ()> {
    NAMES.lock().unwrap_or_else(|e| e.into_inner())
}

const AVAILABLE: &str = "/proc/sys/net/ipv4/tcp_available_congestion_control";

fn available() -> Vec<String> {
    std::fs::read_to_string(AVAILABLE)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Detaches the group when the test ends, passed or not.
struct Group(String);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = rawbpf(&["detach", "--name", &self.0]);
    }
}

/// Whether the kernel's BTF has the struct_ops value type of
/// `tcp_congestion_ops` (the kernel can register one from BPF).
fn has_bpf_tcp_ca() -> bool {
    std::fs::read("/sys/kernel/btf/vmlinux")
        .is_ok_and(|b| memchr_find(&b, b"\0bpf_struct_ops_tcp_congestion_ops\0"))
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).str()
}

#[test]
fn attach_registers_struct_ops_maps_and_detach_unregisters_them() {
    let test = "attach_registers_struct_ops_maps_and_detach_unregisters_them";
    if !kernel(test)
        || !kernel_has(
            test,
            "BPF tcp_congestion_ops (bpf_struct_ops_tcp_congestion_ops)",
            has_bpf_tcp_ca(),
        )
    {
        return;
    }
    let _names = names_lock();
    let name = unique("sops").replace('-', "");
    let group = Group(name.clone());
    let object = obj("struct_ops_cc.bpf.o");
    let out = rawbpf_json(&["attach", &object, "--name", &name, "--json"]);
    let links = out.get("links").array();
    let mut kinds: Vec<(&str, &str, bool)> = links
        .iter()
        .map(|l| {
            (
                str_of(l, "program"),
                str_of(l, "section"),
                *l.get("link_id") != Value::Null,
            )
        })
        .collect();
    kinds.sort();
    let plain = ("struct_ops map rawbpf_cc_map", ".struct_ops", false);
    assert_eq!(kinds[1], plain, "{kinds:?}");
    // A link where the kernel has struct_ops links (6.4+), else held by
    // its map as the plain one.
    assert_eq!(kinds[0].0, "struct_ops map rawbpf_cc", "{kinds:?}");
    for l in links {
        assert!(Path::new(str_of(l, "pin")).exists(), "{l:?}");
        assert!(str_of(l, "target").contains("tcp_congestion_ops"), "{l:?}");
    }
    let now = available();
    assert!(
        now.iter().any(|c| c == "rawbpf_cc") && now.iter().any(|c| c == "rawbpf_cc_map"),
        "{now:?}"
    );
    // A second group of the same object: the kernel refuses the names,
    // the error names the map and the struct, and nothing of it stays.
    let second = Group(format!("{name}x"));
    let o = rawbpf(&["attach", &object, "--name", &second.0]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("struct_ops map rawbpf_cc") && e.contains("tcp_congestion_ops"),
        "{e}"
    );
    assert!(!Path::new("/sys/fs/bpf/rawbpf/groups")
        .join(&second.0)
        .exists());
    drop(second);
    assert_eq!(available(), now);

    let o = rawbpf(&["detach", "--name", &name]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let after = available();
    assert!(
        !after
            .iter()
            .any(|c| c == "rawbpf_cc" || c == "rawbpf_cc_map"),
        "{after:?}"
    );
    drop(group);
}

/// The kernel's congestion controls of this object's names.
fn ours() -> Vec<String> {
    available()
        .into_iter()
        .filter(|c| c == "rawbpf_cc" || c == "rawbpf_cc_map")
        .collect()
}

/// Runs `rawbpf ARGS` under strace, killed at its `k`-th bpf(2), rename
/// or mkdir call; whether it was killed (false: it made fewer and ended).
fn killed_at(strace: &str, k: u32, args: &[&str]) -> (bool, String) {
    use std::os::unix::process::ExitStatusExt as _;
    let inject = format!("inject=bpf,rename,renameat,renameat2,mkdir,mkdirat:signal=KILL:when={k}");
    let run = support::crash::command(strace)
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg("trace=bpf,rename,renameat,renameat2,mkdir,mkdirat")
        .args(["-e", &inject, support::rawbpf_bin()])
        .args(args)
        .output()
        .expect("run strace");
    let repro = format!("strace -f -e {inject} rawbpf {}", args.join(" "));
    (run.status.signal() == Some(libc::SIGKILL), repro)
}

/// After any kill of `attach` or `detach` of a struct_ops group, `list`
/// works, `detach --name` clears what is left (exit 0 when something was,
/// 1 "no group" when nothing was), and neither congestion control stays
/// registered. (Named crash_*: tests/vm skips those in guests without
/// strace.)
#[test]
fn crash_struct_ops_attach_or_detach_leaves_nothing_detach_cannot_clear() {
    let test = "crash_struct_ops_attach_or_detach_leaves_nothing_detach_cannot_clear";
    if !kernel(test)
        || !kernel_has(
            test,
            "BPF tcp_congestion_ops (bpf_struct_ops_tcp_congestion_ops)",
            has_bpf_tcp_ca(),
        )
    {
        return;
    }
    let Some(strace) = support::crash::strace(test) else {
        return;
    };
    let _names = names_lock();
    let name = unique("sopskill").replace('-', "");
    let _group = Group(name.clone());
    let object = obj("struct_ops_cc.bpf.o");
    let dir = Path::new("/sys/fs/bpf/rawbpf/groups").join(&name);
    for cmd in ["attach", "detach"] {
        let mut kills = 0;
        for k in 1..500 {
            if cmd == "detach" {
                let o = rawbpf(&["attach", &object, "--name", &name]);
                assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            }
            let args: Vec<&str> = match cmd {
                "attach" => vec!["attach", &object, "--name", &name],
                _ => vec!["detach", "--name", &name],
            };
            let (killed, repro) = killed_at(strace, k, &args);
            let o = rawbpf(&["list"]);
            assert_eq!(o.status.code(), Some(0), "{repro}: list: {}", stderr(&o));
            let o = rawbpf(&["detach", "--name", &name]);
            let code = o.status.code();
            assert!(
                code == Some(0) || (code == Some(1) && stderr(&o).contains("no group")),
                "{repro}: detach --name: {}",
                stderr(&o)
            );
            assert_eq!(ours(), Vec::<String>::new(), "{repro}: still registered");
            assert!(!dir.exists(), "{repro}: {} stays", dir.display());
            if !killed {
                break;
            }
            kills += 1;
        }
        // Each makes several bpf(2) calls: the kills reached past the first.
        assert!(kills >= 5, "{cmd} was killed at only {kills} points");
        eprintln!("{test}: {cmd} killed at each of {kills} calls");
    }
}

/// `inspect` shows each struct_ops map, its struct and its members'
/// programs (no kernel needed).
#[test]
fn inspect_shows_struct_ops_maps_and_their_programs() {
    let object = obj("struct_ops_cc.bpf.o");
    let doc = rawbpf_json(&["inspect", &object, "--json"]);
    let maps = doc.get("struct_ops").array();
    let names: Vec<(&str, &str, &Value)> = maps
        .iter()
        .map(|m| (str_of(m, "name"), str_of(m, "section"), m.get("link")))
        .collect();
    assert_eq!(
        names,
        [
            ("rawbpf_cc_map", ".struct_ops", &Value::Bool(false)),
            ("rawbpf_cc", ".struct_ops.link", &Value::Bool(true)),
        ]
    );
    let members: Vec<(&str, &str)> = maps[1]
        .get("members")
        .array()
        .iter()
        .map(|m| (str_of(m, "member"), str_of(m, "program")))
        .collect();
    assert_eq!(
        members,
        [
            ("ssthresh", "rawbpf_ssthresh"),
            ("cong_avoid", "rawbpf_cong_avoid"),
            ("undo_cwnd", "rawbpf_undo_cwnd"),
            ("init", "rawbpf_init"),
        ]
    );
    assert_eq!(str_of(&maps[1], "struct"), "tcp_congestion_ops");
    let text = support::stdout(&rawbpf(&["inspect", &object]));
    assert!(
        text.contains("STRUCT_OPS") && text.contains("init=rawbpf_init"),
        "{text}"
    );
}
