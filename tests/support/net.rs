//! Two namespaces joined by veth, with a UDP sender in one and a receiver in
//! the other, for the tests that attach and send traffic. The namespaces go
//! when the `Net` is dropped, and so do the pins rawbpf made for them.

use super::unique;
use rawbpf::lab::{Arrivals, Lab, Receiver, Sender};
use std::process::{Child, Command, Output, Stdio};

pub struct Net {
    pub lab: Lab,
    pub rx: Receiver,
    pub tx: Sender,
}

impl Net {
    pub fn new(tag: &str) -> Net {
        let lab = Lab::create(&unique(tag)).expect("build the two namespaces");
        let rx = lab.receiver(0).unwrap();
        let tx = lab.sender().unwrap();
        Net { lab, rx, tx }
    }

    /// Sends 10 datagrams from a to b: what arrived.
    pub fn batch(&self) -> Arrivals {
        self.tx.send_batch(self.rx.port, 10).unwrap();
        self.rx.collect_batch().unwrap()
    }

    /// Starts `rawbpf ARGS --netns B --dev B` (the receiver's side).
    pub fn spawn_on_b(&self, args: &[&str]) -> Child {
        Command::new(super::rawbpf_bin())
            .args(args)
            .args(["--netns", &self.lab.ns_b, "--dev", &self.lab.dev_b])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rawbpf")
    }

    /// Runs `rawbpf ARGS --netns B --dev B`.
    pub fn on_b(&self, args: &[&str]) -> Output {
        self.spawn_on_b(args).wait_with_output().unwrap()
    }

    /// The pin directory of the chain at priority 1 in direction `dir`.
    pub fn pin_dir(&self, dir: &str) -> std::path::PathBuf {
        std::path::Path::new(rawbpf::attach::PIN_ROOT)
            .join(format!("ns_{}", self.lab.ns_b))
            .join(&self.lab.dev_b)
            .join(dir)
            .join("1")
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Pins outlive the namespaces: remove this test's, pass or fail.
        let _ = std::fs::remove_dir_all(
            std::path::Path::new(rawbpf::attach::PIN_ROOT).join(format!("ns_{}", self.lab.ns_b)),
        );
    }
}
