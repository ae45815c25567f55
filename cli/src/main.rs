//! The `rawbpf` command. Exit status: 0 success, 1 a failure the user can act
//! on (message on stderr), 2 bad usage.
//!
//! With glibc the C runtime calls our `main` directly (`#![no_main]`): std's
//! start-up shim would read `/proc/self/maps` to place a stack guard and set
//! up signal handlers, costing about a quarter of a no-op run's memory (940
//! vs 680 KiB peak RSS for a static hello-world). std still gets the
//! arguments (glibc hands them to its initialiser) and all output is flushed
//! by `print` before returning. Other C libraries (musl, the static build)
//! hand them only to std's shim, which is cheap there: it is kept.
#![cfg_attr(all(not(test), target_env = "gnu"), no_main)]
// Under `cargo test` the harness has its own main and ours goes unused.
#![cfg_attr(test, allow(dead_code))]

mod attach;
mod cli;
mod demo;
mod events;
mod group;
mod inspect;
mod json;
mod load;
mod map;
mod probe;
mod signals;

use cli::{Parsed, Request};
use std::io::Write;

/// How a command ended when it did not succeed.
pub(crate) enum Failure {
    /// Bad usage found after parsing (a malformed value): exit 2.
    Usage(String),
    /// A complete answer that is "no" (`check`): printed on stdout, exit 1.
    Report(String),
    /// Something the user can act on: exit 1 with this message.
    Error(String),
    /// stdout went away (e.g. `| head`): stop quietly.
    BrokenPipe,
}

impl From<rawbpf::Error> for Failure {
    fn from(e: rawbpf::Error) -> Failure {
        match &e {
            rawbpf::Error::Load { path, source } => {
                Failure::Error(format!("{}: {}", path.display(), load_err(source)))
            }
            _ => Failure::Error(e.to_string()),
        }
    }
}

/// A load error in the CLI's words: a prog-array slot set by `--tail` is
/// named by the flag.
pub(crate) fn load_err(e: &rawbpf::LoadError) -> String {
    match e {
        rawbpf::LoadError::Tail { spec, reason } => format!("--tail {spec}: {reason}"),
        other => other.to_string(),
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::Error(format!("writing output: {e}"))
        }
    }
}

/// The process entry point (glibc).
// SAFETY (no_mangle): with `#![no_main]` this is the only `main` symbol.
#[cfg(all(not(test), target_env = "gnu"))]
#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    // As std's shim does: a closed stdout is an EPIPE error we handle, not death.
    signals::ignore_sigpipe();
    std::ffi::c_int::from(real_main())
}

/// The process entry point (other C libraries), through std's shim, which
/// ignores SIGPIPE itself.
#[cfg(all(not(test), not(target_env = "gnu")))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(real_main())
}

fn real_main() -> u8 {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect()
    {
        Ok(args) => args,
        Err(bad) => return usage_error(&format!("argument {bad:?} is not valid UTF-8")),
    };
    let result = match cli::parse(&args) {
        Err(msg) => return usage_error(&msg),
        Ok(Request::Help(None)) => print(&cli::help()),
        Ok(Request::Help(Some(c))) => print(&cli::command_help(c)),
        Ok(Request::Version) => print(&format!("rawbpf {}\n", env!("CARGO_PKG_VERSION"))),
        Ok(Request::Run(p)) => run(&p),
    };
    match result {
        Ok(()) | Err(Failure::BrokenPipe) => 0,
        Err(Failure::Error(msg)) => {
            to_stderr(&format!("rawbpf: {msg}\n"));
            1
        }
        Err(Failure::Usage(msg)) => usage_error(&msg),
        Err(Failure::Report(text)) => {
            let _ = print(&text);
            1
        }
    }
}

fn usage_error(msg: &str) -> u8 {
    to_stderr(&format!("rawbpf: {msg}\nTry 'rawbpf --help'.\n"));
    2
}

/// Writes to stderr, ignoring errors: unlike `eprintln!`, a closed or broken
/// stderr must not turn a clean exit status into a panic.
pub(crate) fn to_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// A warning on stderr that does not change the outcome.
pub(crate) fn warn(msg: &str) {
    to_stderr(&format!("rawbpf: warning: {msg}\n"));
}

pub(crate) fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn run(p: &Parsed) -> Result<(), Failure> {
    match p.command.name {
        "load" => print(&load::load(p)?),
        _ => run_other(p),
    }
}

/// Every command but `load`, out of line: `load` is the one whose whole
/// process is timed against libbpf, and the other commands' code (the
/// netlink and attach paths above all) inlined into `run` would sit in the
/// pages `load` runs through and is mapped with them.
#[inline(never)]
fn run_other(p: &Parsed) -> Result<(), Failure> {
    match p.command.name {
        "inspect" => {
            let file = &p.positional[0];
            let spec = rawbpf::ObjectSpec::from_file(file)?;
            if p.switch("--json") {
                print(&format!("{}\n", inspect::json(file, &spec)))
            } else {
                print(&inspect::text(file, &spec))
            }
        }
        "attach" => print(&attach::attach(p)?),
        "detach" => print(&attach::detach(p)?),
        "list" => print(&attach::list(p)?),
        "swap" => print(&attach::swap(p)?),
        "probe" => print(&probe::probe(p)?),
        "check" => print(&probe::check(p)?),
        "demo" => print(&demo::demo(p.switch("--json"))?),
        "run" => print(&load::run(p)?),
        "map" => map::map(p),
        "events" => events::events(p),
        other => Err(Failure::Error(format!(
            "{other}: not implemented in this version"
        ))),
    }
}
