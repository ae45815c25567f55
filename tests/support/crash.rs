//! Shared by the crash tests (kernel_crash.rs, kernel_crash_xdp.rs):
//! running commands as a user would, strace, bpffs trees and what a
//! command's output says.

use super::{stderr, stdout};
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A command with the environment a user's rawbpf has: without the library
/// paths cargo adds for tests, whose search would add a hundred uninteresting
/// kill points (failed openat/newfstatat of the dynamic loader) per command.
pub fn command(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env_remove("LD_LIBRARY_PATH");
    c
}

/// strace, if it is here; otherwise says why the test is skipped (a failure
/// under `CI=true`, where tests/run.sh has installed it).
pub fn strace(test: &str) -> Option<&'static str> {
    let works = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some("strace");
    }
    let reason = "strace is not installed (tests/run.sh installs it)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {reason}; under CI=true a skip is a failure");
    }
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {reason}");
    None
}

/// Paths under `dir`, relative to it, sorted; directories end in `/`.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub fn exit_code(o: &Output) -> String {
    match (o.status.code(), o.status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (_, Some(s)) => format!("signal {s}"),
        _ => "?".into(),
    }
}

pub fn show(o: &Output) -> String {
    format!(
        "{}; stdout {:?}; stderr {:?}",
        exit_code(o),
        stdout(o).trim_end(),
        stderr(o).trim_end()
    )
}
