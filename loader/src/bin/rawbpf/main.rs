//! The `rawbpf` command. Exit status: 0 success, 1 a failure the user can act
//! on (message on stderr), 2 bad usage.

mod attach;
mod cli;
mod demo;
mod inspect;
mod json;
mod load;
mod probe;

use cli::{Parsed, Request};
use std::io::Write;
use std::process::ExitCode;

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
        Failure::Error(e.to_string())
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

fn main() -> ExitCode {
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
        Ok(()) | Err(Failure::BrokenPipe) => ExitCode::SUCCESS,
        Err(Failure::Error(msg)) => {
            to_stderr(&format!("rawbpf: {msg}\n"));
            ExitCode::from(1)
        }
        Err(Failure::Usage(msg)) => usage_error(&msg),
        Err(Failure::Report(text)) => match print(&text) {
            Ok(()) | Err(Failure::BrokenPipe) => ExitCode::from(1),
            Err(_) => ExitCode::from(1),
        },
    }
}

fn usage_error(msg: &str) -> ExitCode {
    to_stderr(&format!("rawbpf: {msg}\nTry 'rawbpf --help'.\n"));
    ExitCode::from(2)
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

fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn run(p: &Parsed) -> Result<(), Failure> {
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
        "load" => print(&load::load(p)?),
        "attach" => print(&attach::attach(p)?),
        "detach" => print(&attach::detach(p)?),
        "list" => print(&attach::list(p)?),
        "swap" => print(&attach::swap(p)?),
        "probe" => print(&probe::probe(p)?),
        "check" => print(&probe::check(p)?),
        "demo" => print(&demo::demo()?),
        "run" => print(&load::run(p)?),
        other => Err(Failure::Error(format!(
            "{other}: not implemented in this version"
        ))),
    }
}
