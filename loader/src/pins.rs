//! Where rawbpf keeps an attachment on bpffs, and the only code that spells
//! it out:
//!
//! ```text
//! /sys/fs/bpf/rawbpf/<host|ns_NS>/<DEV>/created_clsact      rawbpf added the clsact qdisc
//! /sys/fs/bpf/rawbpf/<host|ns_NS>/<DEV>/<HOOK>/<SLOT>/       a hooked chain: its programs,
//!                                                            maps and (TCX) link pinned
//! /sys/fs/bpf/rawbpf/<host|ns_NS>/<DEV>/<HOOK>/<SLOT>_new_<PID>/
//!                                                            staged by process PID, not
//!                                                            hooked yet (or killed before
//!                                                            it could rename it)
//! ```
//!
//! HOOK is `ingress`, `egress` or `xdp`; SLOT is the filter priority (0 for
//! XDP). bpffs refuses dots in names, so names are escaped injectively:
//! `_` becomes `__` and `.` becomes `_2e` (`eth0.100` → `eth0_2e100`,
//! `eth0_100` → `eth0__100`).
//!
//! Commands that change a device's hooks serialize on a lock file outside
//! bpffs (bpffs holds no plain files), one per device:
//!
//! ```text
//! /run/rawbpf/locks/<host|ns_NS>.<DEV>                     flock(2)ed while a command
//!                                                            changes the device's hooks
//! ```
//!
//! (names escaped as above, and `/` as `_2f`).

use crate::hook::Hook;
use std::path::{Path, PathBuf};

/// Where rawbpf pins attached chains.
pub const PIN_ROOT: &str = "/sys/fs/bpf/rawbpf";
/// Marks a device whose clsact qdisc rawbpf added (a directory: bpffs holds
/// only pins and directories).
const CREATED_CLSACT: &str = "created_clsact";
/// The pin of a chain's TCX link.
pub const LINK_PIN: &str = "link";
const STAGED: &str = "_new_";
/// Where the devices' lock files are.
pub const LOCK_DIR: &str = "/run/rawbpf/locks";

/// A name as a bpffs directory name: injective, no dots.
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '_' => out.push_str("__"),
            '.' => out.push_str("_2e"),
            c => out.push(c),
        }
    }
    out
}

/// A name as one file name: [`escape`]d, and `/` as `_2f` (still
/// injective: every escape starts with `_`, and a `_` of the name is `__`).
fn escape_file_name(name: &str) -> String {
    escape(name).replace('/', "_2f")
}

/// The pins of one device (in one namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePins {
    dir: PathBuf,
    lock: PathBuf,
}

/// A chain directory found on bpffs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainDir {
    /// Its slot (priority; 0 for XDP).
    pub slot: u16,
    /// The directory.
    pub path: PathBuf,
    /// `None` for a hooked chain; the staging process's pid otherwise.
    pub staged_by: Option<u32>,
    /// The names of the pins in it (programs, maps, `link`), as read.
    pub pins: Vec<String>,
}

impl ChainDir {
    /// Whether the process that staged it still runs.
    pub fn stager_runs(&self) -> bool {
        self.staged_by
            .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists())
    }

    /// The chain's pinned TCX link, if it has one.
    pub fn link_pin(&self) -> PathBuf {
        self.path.join(LINK_PIN)
    }

    /// Removes the chain's pins and directory: the pins it was read with,
    /// then the directory; whatever appeared since goes too.
    pub fn remove(&self) {
        for pin in &self.pins {
            let _ = std::fs::remove_file(self.path.join(pin));
        }
        if std::fs::remove_dir(&self.path).is_err() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }

    /// The paths of the chain's programs and maps (every pin but the link).
    pub fn object_pins(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.pins
            .iter()
            .filter(|p| *p != LINK_PIN)
            .map(|p| self.path.join(p))
    }

    /// Whether a TCX link is pinned with the chain.
    pub fn has_link(&self) -> bool {
        self.pins.iter().any(|p| p == LINK_PIN)
    }
}

/// A device's pins as one read found them: the device directory, each hook
/// directory in it and each chain directory in those, read once. A command
/// decides from this and reads again only after it changed something.
#[derive(Debug, Clone, Default)]
pub struct PinTree {
    /// Whether the device's directory exists.
    pub exists: bool,
    /// Whether it was empty.
    pub empty: bool,
    /// Whether the clsact marker is there.
    pub created_clsact: bool,
    hooks: [HookPins; 3],
}

/// One hook directory of a [`PinTree`].
#[derive(Debug, Clone, Default)]
struct HookPins {
    exists: bool,
    empty: bool,
    chains: Vec<ChainDir>,
}

fn hook_index(hook: Hook) -> usize {
    match hook {
        Hook::Ingress => 0,
        Hook::Egress => 1,
        Hook::Xdp => 2,
    }
}

impl PinTree {
    /// Every chain directory of a hook, hooked or staged, by slot.
    pub fn chains(&self, hook: Hook) -> &[ChainDir] {
        &self.hooks[hook_index(hook)].chains
    }

    /// The hooked (not staged) chain in `slot`, if there is one.
    pub fn hooked_chain(&self, hook: Hook, slot: u16) -> Option<&ChainDir> {
        self.chains(hook)
            .iter()
            .find(|c| c.slot == slot && c.staged_by.is_none())
    }

    /// Whether the hook's directory exists and is empty.
    pub fn hook_dir_empty(&self, hook: Hook) -> bool {
        let h = &self.hooks[hook_index(hook)];
        h.exists && h.empty
    }

    /// Whether a running process has a chain staged on any hook of the
    /// device: an attach in progress, which may be adding the clsact qdisc.
    pub fn attach_in_progress(&self) -> bool {
        self.hooks
            .iter()
            .flat_map(|h| &h.chains)
            .any(|c| c.stager_runs())
    }
}

/// The names in a directory; `None` if it cannot be read (it is gone).
fn names(dir: &Path) -> Option<Vec<String>> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
    )
}

impl DevicePins {
    /// The pins of device `dev` in namespace `netns` (`None`: the caller's).
    pub fn new(netns: Option<&str>, dev: &str) -> DevicePins {
        let ns = match netns {
            Some(n) => format!("ns_{}", escape(n)),
            None => "host".to_owned(),
        };
        let lock_ns = match netns {
            Some(n) => format!("ns_{}", escape_file_name(n)),
            None => "host".to_owned(),
        };
        DevicePins {
            dir: Path::new(PIN_ROOT).join(ns).join(escape(dev)),
            lock: Path::new(LOCK_DIR).join(format!("{lock_ns}.{}", escape_file_name(dev))),
        }
    }

    /// The device's lock file: a command holds an exclusive `flock(2)` on
    /// it while it changes the device's hooks or pins.
    pub fn lock_file(&self) -> &Path {
        &self.lock
    }

    /// The device's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of one hook's chains.
    pub fn hook_dir(&self, hook: Hook) -> PathBuf {
        self.dir.join(hook.name())
    }

    /// The pin directory of the hooked chain in `slot`.
    pub fn chain(&self, hook: Hook, slot: u16) -> PathBuf {
        self.hook_dir(hook).join(slot.to_string())
    }

    /// Where this process stages a chain for `slot` before hooking it.
    pub fn staging(&self, hook: Hook, slot: u16) -> PathBuf {
        self.hook_dir(hook)
            .join(format!("{slot}{STAGED}{}", std::process::id()))
    }

    /// The marker saying rawbpf added the device's clsact qdisc.
    pub fn created_clsact(&self) -> PathBuf {
        self.dir.join(CREATED_CLSACT)
    }

    /// Reads the device's pins (see [`PinTree`]).
    pub fn read(&self) -> PinTree {
        let Some(top) = names(&self.dir) else {
            return PinTree::default();
        };
        let mut tree = PinTree {
            exists: true,
            empty: top.is_empty(),
            created_clsact: top.iter().any(|n| n == CREATED_CLSACT),
            hooks: Default::default(),
        };
        for hook in Hook::ALL {
            if !top.iter().any(|n| n == hook.name()) {
                continue;
            }
            let dir = self.hook_dir(hook);
            let Some(entries) = names(&dir) else { continue };
            let h = &mut tree.hooks[hook_index(hook)];
            h.exists = true;
            h.empty = entries.is_empty();
            h.chains = entries
                .iter()
                .filter_map(|name| {
                    let (slot, staged_by) = match name.split_once(STAGED) {
                        Some((slot, pid)) => (slot.parse().ok()?, Some(pid.parse().ok()?)),
                        None => (name.parse().ok()?, None),
                    };
                    let path = dir.join(name);
                    // Gone since the hook directory was read: not a chain.
                    let pins = names(&path)?;
                    Some(ChainDir {
                        slot,
                        path,
                        staged_by,
                        pins,
                    })
                })
                .collect();
            h.chains.sort_by_key(|c| (c.slot, c.staged_by));
        }
        tree
    }

    /// Removes the directories above `path` that are empty, up to and
    /// including the pin root.
    pub fn remove_empty_parents(path: &Path) {
        let mut dir = path.to_path_buf();
        while dir.pop() && dir.starts_with(PIN_ROOT) {
            match std::fs::remove_dir(&dir) {
                // Gone already (a process stopped half-way through this).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => break,
                Ok(()) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_injectively_without_dots() {
        assert_eq!(escape("eth0.100"), "eth0_2e100");
        assert_eq!(escape("eth0_100"), "eth0__100");
        assert_eq!(escape("eth0_2e100"), "eth0__2e100");
        let names = ["a.b", "a_b", "a__b", "a_2eb", "a._b", "a_.b", "ab"];
        let escaped: std::collections::BTreeSet<_> = names.iter().map(|n| escape(n)).collect();
        assert_eq!(escaped.len(), names.len());
        assert!(escaped.iter().all(|e| !e.contains('.')));
    }

    #[test]
    fn layout() {
        let p = DevicePins::new(Some("blue.1"), "eth0.100");
        assert_eq!(
            p.chain(Hook::Egress, 7),
            Path::new("/sys/fs/bpf/rawbpf/ns_blue_2e1/eth0_2e100/egress/7")
        );
        assert_eq!(
            DevicePins::new(None, "eth0").chain(Hook::Xdp, 0),
            Path::new("/sys/fs/bpf/rawbpf/host/eth0/xdp/0")
        );
        assert_eq!(
            p.lock_file(),
            Path::new("/run/rawbpf/locks/ns_blue_2e1.eth0_2e100")
        );
        assert_eq!(
            DevicePins::new(Some("a/b"), "a_2fb").lock_file(),
            Path::new("/run/rawbpf/locks/ns_a_2fb.a__2fb")
        );
        assert_eq!(
            DevicePins::new(None, "eth0").lock_file(),
            Path::new("/run/rawbpf/locks/host.eth0")
        );
        let staging = p.staging(Hook::Ingress, 1);
        assert!(staging
            .to_str()
            .unwrap()
            .ends_with(&format!("/ingress/1_new_{}", std::process::id())));
    }
}
