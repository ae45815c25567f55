//! Shared by the integration tests in `tests/`: object paths, running the
//! CLI, temporary files and bpffs directories that clean up after
//! themselves, and the gate for tests that need the kernel.
#![allow(dead_code)] // each test file uses its own part of this

pub mod crash;
pub mod crash_hook;
pub mod foreground;
pub mod groups;
pub mod json;
pub mod kbtf;
pub mod load;
pub mod net;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const OBJ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs/obj");

pub fn obj(name: &str) -> String {
    format!("{OBJ_DIR}/{name}")
}

/// The built `rawbpf` binary: cargo names it to the CLI package's tests;
/// the library's tests that share this module never run it.
pub fn rawbpf_bin() -> &'static str {
    match option_env!("CARGO_BIN_EXE_rawbpf") {
        Some(bin) => bin,
        None => panic!("only the rawbpf-cli package's tests run the binary"),
    }
}

/// Runs the built `rawbpf` binary.
pub fn rawbpf(args: &[&str]) -> Output {
    Command::new(rawbpf_bin())
        .args(args)
        .output()
        .expect("run rawbpf")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs rawbpf, expects exit 0, and parses its `--json` output.
pub fn rawbpf_json(args: &[&str]) -> json::Value {
    let o = rawbpf(args);
    assert_eq!(o.status.code(), Some(0), "rawbpf {args:?}: {}", stderr(&o));
    json::parse(&stdout(&o)).unwrap_or_else(|e| panic!("rawbpf {args:?}: {e}"))
}

/// A name no other test (or test process) uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "rawbpf-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A file removed when the test ends, pass or fail.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(tag: &str, contents: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(unique(tag));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A directory under /sys/fs/bpf, removed with everything pinned in it when
/// the test ends, pass or fail.
pub struct BpffsDir(pub PathBuf);

impl BpffsDir {
    pub fn new(tag: &str) -> BpffsDir {
        BpffsDir(Path::new("/sys/fs/bpf").join(unique(tag)))
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for BpffsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this test may use the kernel (root and a working bpf(2)). If not,
/// prints why and returns false so the test can return early — except under
/// `CI=true`, where a skipped kernel test is a failure.
pub fn kernel(test: &str) -> bool {
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("not root".to_owned())
    } else {
        rawbpf::probe::Features::usable()
            .err()
            .map(|e| format!("bpf(2) does not work here: {e}"))
    };
    let Some(reason) = reason else { return true };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs the kernel ({reason}); under CI=true a skip is a failure");
    }
    // Straight to the stderr handle: libtest captures eprintln! of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIP {test}: needs the kernel ({reason})"
    );
    false
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Whether the kernel has what a test needs; if not, says why the test is
/// skipped (a feature an older kernel lacks is a reason to skip, even in CI).
pub fn kernel_has(test: &str, what: &str, present: bool) -> bool {
    if !present {
        let _ = writeln!(std::io::stderr(), "SKIP {test}: this kernel lacks {what}");
    }
    present
}

/// Says which mechanism the kernel gave an attachment (a BPF link of some
/// type, a perf event without one, `BPF_PROG_ATTACH`), past the harness's
/// capture as SKIP lines are: the kernel matrix's logs record it per kernel
/// (docs/link-kinds.md).
pub fn mechanism(test: &str, link: &rawbpf::link::Link) {
    let how = match link.info() {
        Ok(Some(i)) => format!(
            "a {} link",
            rawbpf::link::group::link_type_name(i.link_type)
        ),
        Ok(None) if link.perf_event_fd().is_some() => {
            "a perf event with PERF_EVENT_IOC_SET_BPF (no link)".to_owned()
        }
        Ok(None) => "BPF_PROG_ATTACH (no link)".to_owned(),
        Err(e) => format!("unknown ({e})"),
    };
    let _ = writeln!(
        std::io::stderr(),
        "MECHANISM {test}: {} -> {}: {how}",
        link.program(),
        link.target()
    );
}
