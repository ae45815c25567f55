//! A device's hook, in a network namespace or the caller's: where its
//! chains are pinned, how to reach the device, and the errors that name it.

use super::view::DeviceView;
use super::AttachError;
use crate::hook::Hook;
use crate::netns;
use crate::pins::DevicePins;
use crate::tc::{NetlinkError, Tc};
use std::io;
use std::path::PathBuf;

/// A device and hook, in a network namespace or the caller's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// Named network namespace (`/run/netns/NAME`); `None` for the caller's.
    pub netns: Option<String>,
    /// Device name.
    pub dev: String,
    /// The hook.
    pub hook: Hook,
}

impl Target {
    /// A device's hook in the caller's network namespace.
    pub fn new(dev: impl Into<String>, hook: Hook) -> Target {
        Target {
            netns: None,
            dev: dev.into(),
            hook,
        }
    }

    /// The same hook in the named network namespace (`/run/netns/NAME`).
    pub fn in_netns(mut self, netns: impl Into<String>) -> Target {
        self.netns = Some(netns.into());
        self
    }

    /// The same device and namespace, another hook.
    pub fn with_hook(&self, hook: Hook) -> Target {
        Target {
            hook,
            ..self.clone()
        }
    }

    /// The device's pins (see [`crate::pins`]).
    pub fn pins(&self) -> DevicePins {
        DevicePins::new(self.netns.as_deref(), &self.dev)
    }

    /// The slot of a chain at `priority`: the priority, or 0 for XDP.
    pub(super) fn slot(&self, priority: u16) -> u16 {
        if self.hook == Hook::Xdp {
            0
        } else {
            priority
        }
    }

    /// The pin directory of the hooked chain at `priority` (XDP: its one chain).
    pub fn chain_dir(&self, priority: u16) -> PathBuf {
        self.pins().chain(self.hook, self.slot(priority))
    }

    pub(super) fn not_attached(&self, priority: Option<u16>) -> AttachError {
        AttachError::NotAttached {
            dev: self.dev.clone(),
            hook: self.hook,
            priority: priority.filter(|_| self.hook != Hook::Xdp),
        }
    }

    pub(super) fn no_device(&self) -> AttachError {
        AttachError::NoDevice {
            dev: self.dev.clone(),
            netns: self.netns.clone(),
        }
    }

    pub(super) fn already_attached(&self, priority: u16) -> AttachError {
        AttachError::AlreadyAttached {
            dev: self.dev.clone(),
            hook: self.hook,
            priority,
        }
    }

    pub(super) fn netlink_failed(&self, action: &'static str, source: NetlinkError) -> AttachError {
        AttachError::Netlink {
            dev: self.dev.clone(),
            action,
            source,
        }
    }

    pub(super) fn syscall_failed(&self, action: &'static str, source: io::Error) -> AttachError {
        AttachError::Device {
            dev: self.dev.clone(),
            action,
            source,
        }
    }

    /// Runs `f` in the target's namespace, on the calling thread.
    pub(super) fn in_ns<T>(
        &self,
        f: impl FnOnce() -> Result<T, AttachError>,
    ) -> Result<T, AttachError> {
        netns::run_in(self.netns.as_deref(), f)?
    }

    /// The device's index, in the calling thread's namespace.
    fn ifindex(&self) -> Result<u32, AttachError> {
        match nix::net::if_::if_nametoindex(self.dev.as_str()) {
            Ok(i) => Ok(i),
            Err(nix::errno::Errno::ENODEV) => Err(self.no_device()),
            Err(e) => Err(self.syscall_failed("looking up the device", io::Error::from(e))),
        }
    }

    /// Opens a netlink connection in the target's namespace and finds the
    /// device there.
    pub(super) fn connect(&self) -> Result<(Tc, u32), AttachError> {
        self.in_ns(|| {
            let tc = self.open_netlink()?;
            Ok((tc, self.ifindex()?))
        })
    }

    /// A netlink connection in the calling thread's namespace.
    pub(super) fn open_netlink(&self) -> Result<Tc, AttachError> {
        Tc::open().map_err(|e| self.netlink_failed("opening a netlink socket", e))
    }

    /// What this command reads of the target's device, read once.
    pub(super) fn view<'t>(&self, tc: &'t Tc, ifindex: u32) -> DeviceView<'t> {
        DeviceView::new(tc, ifindex, self.netns.as_deref(), &self.dev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn pin_layout() {
        let t = Target {
            netns: Some("blue".into()),
            dev: "eth0.100".into(),
            hook: Hook::Egress,
        };
        assert_eq!(
            t.chain_dir(7),
            Path::new("/sys/fs/bpf/rawbpf/ns_blue/eth0_2e100/egress/7")
        );
        let host = Target { netns: None, ..t };
        assert_eq!(
            host.chain_dir(1),
            Path::new("/sys/fs/bpf/rawbpf/host/eth0_2e100/egress/1")
        );
        assert_eq!(
            host.with_hook(Hook::Xdp).chain_dir(9),
            host.pins().chain(Hook::Xdp, 0)
        );
    }
}
