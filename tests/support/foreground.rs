//! `rawbpf attach OBJ --foreground --json` as a child: started, read until
//! it says it is attached, stopped with a signal (SIGTERM if the test ends
//! first, pass or fail).

use super::json::{self, Value};
use super::stderr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Foreground(Option<Child>);

impl Foreground {
    /// Starts it and waits for the document it prints once attached.
    pub fn start(args: &[&str]) -> (Foreground, Value) {
        let mut child = Command::new(super::rawbpf_bin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let mut fg = Foreground(Some(child));
        let doc = json::parse(&first).unwrap_or_else(|e| {
            let out = fg.0.take().unwrap().wait_with_output().unwrap();
            panic!("rawbpf {args:?}: {e}: {first}{}", stderr(&out))
        });
        (fg, doc)
    }

    /// Sends `signal` and returns the exit code; it must have said nothing
    /// on stderr.
    pub fn stop(mut self, signal: nix::sys::signal::Signal) -> Option<i32> {
        let child = self.0.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.stderr.is_empty(), "{}", stderr(&out));
        out.status.code()
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}
