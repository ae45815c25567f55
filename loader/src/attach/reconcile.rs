//! Bringing rawbpf's pins in line with what the kernel runs. A rawbpf
//! killed half-way leaves a staged chain, unhooked pins, a stale clsact
//! marker or empty directories; the next command on the hook finds them
//! here (`list` only reports them) and finishes or undoes that work.

use super::view::{pinned_link, DeviceView};
use super::{c_path, AttachError, Target};
use crate::hook::Hook;
use crate::pins::{ChainDir, DevicePins, PinTree, LINK_PIN};
use crate::LoadError;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// A piece of rawbpf's bpffs state that does not match what the kernel
/// runs: left by a rawbpf killed half-way, or by a device's hook changed
/// behind rawbpf's back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The device.
    pub dev: String,
    /// The hook.
    pub hook: Hook,
    /// The directory.
    pub path: PathBuf,
    /// What it is, and what happens to it.
    pub kind: LeftoverKind,
}

/// Kinds of [`Leftover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftoverKind {
    /// A staged chain the hook runs: its attach stopped between hooking it
    /// and moving its pins into place. It is moved into place.
    StagedAndHooked {
        /// The process that staged it.
        pid: u32,
    },
    /// A staged chain the hook does not run: its attach stopped before
    /// hooking it. It is removed.
    Staged {
        /// The process that staged it.
        pid: u32,
    },
    /// A chain's pins whose programs the hook no longer runs (a detach
    /// stopped after unhooking it, or the hook was changed by another
    /// tool). They are removed.
    Unhooked,
    /// The marker of a clsact qdisc rawbpf added, which is gone. It is
    /// removed.
    QdiscGone,
    /// The clsact qdisc rawbpf added, with no filter left on it (a detach
    /// stopped before deleting it). `detach` deletes it.
    QdiscUnused,
    /// A directory with nothing in it, made by a rawbpf stopped before it
    /// pinned anything. It is removed.
    Empty,
}

impl std::fmt::Display for LeftoverKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeftoverKind::StagedAndHooked { pid } => write!(
                f,
                "chain staged by process {pid} (no longer running) and hooked: its pins are moved into place"
            ),
            LeftoverKind::Staged { pid } => write!(
                f,
                "chain staged by process {pid} (no longer running), never hooked: removed"
            ),
            LeftoverKind::Unhooked => {
                f.write_str("pins of a chain the hook no longer runs: removed")
            }
            LeftoverKind::QdiscGone => {
                f.write_str("marker of a clsact qdisc that is gone: removed")
            }
            LeftoverKind::QdiscUnused => f.write_str(
                "the clsact qdisc rawbpf added has no filter left: detach deletes it",
            ),
            LeftoverKind::Empty => f.write_str("empty directory: removed"),
        }
    }
}

/// Whether [`reconcile`] changes what it finds or only reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reconcile {
    /// Finish or undo what was left (attach, detach).
    Repair,
    /// Change nothing (list).
    Report,
}

/// What one hook's reconciling found, and whether to act on it.
struct Findings<'a> {
    target: &'a Target,
    act: bool,
    found: Vec<Leftover>,
}

impl Findings<'_> {
    /// Records a leftover; says whether to act on it.
    fn found(&mut self, path: &Path, kind: LeftoverKind) -> bool {
        self.found.push(Leftover {
            dev: self.target.dev.clone(),
            hook: self.target.hook,
            path: path.to_owned(),
            kind,
        });
        self.act
    }
}

/// Compares one hook's pins with what the kernel runs and, with
/// [`Reconcile::Repair`], brings them in line: a chain staged by a process
/// that no longer runs is moved into place if the hook runs it, else
/// removed; a hooked chain whose programs the hook no longer runs is
/// removed; the clsact marker goes with the qdisc. Chains staged by running
/// processes are left alone. Returns what it found.
pub(super) async fn reconcile(
    view: &mut DeviceView<'_>,
    target: &Target,
    how: Reconcile,
) -> Result<Vec<Leftover>, AttachError> {
    let mut findings = Findings {
        target,
        act: how == Reconcile::Repair,
        found: Vec::new(),
    };
    let tree = view.tree().clone();
    if !tree.exists {
        return Ok(findings.found);
    }
    let mut slots: Vec<u16> = tree.chains(target.hook).iter().map(|c| c.slot).collect();
    slots.dedup();
    for slot in slots {
        reconcile_slot(view, &tree, slot, &mut findings).await?;
    }
    // An attach in progress makes the marker before the qdisc, and its
    // directories before it pins anything: leave both to it.
    if !tree.attach_in_progress() {
        if target.hook != Hook::Xdp && tree.created_clsact {
            reconcile_clsact_marker(view, &tree, &mut findings).await?;
        }
        remove_empty_dirs(&tree, &mut findings);
    }
    let pins = target.pins();
    if findings.act && !findings.found.is_empty() {
        view.pins_changed();
        DevicePins::remove_empty_parents(&pins.chain(target.hook, 0));
    }
    Ok(findings.found)
}

/// The chains of one slot: staged ones whose process is gone are put in
/// place (the hook runs them) or removed; the hooked one goes if the hook
/// no longer runs it.
async fn reconcile_slot(
    view: &mut DeviceView<'_>,
    tree: &PinTree,
    slot: u16,
    findings: &mut Findings<'_>,
) -> Result<(), AttachError> {
    let hook = findings.target.hook;
    let hooked = view.hooked(hook, slot).await?;
    let final_chain = tree.hooked_chain(hook, slot);
    let final_dir = findings.target.pins().chain(hook, slot);
    let chains = tree.chains(hook);
    let mut final_ok = false;
    for staged in chains.iter().filter(|c| c.slot == slot) {
        let Some(pid) = staged.staged_by else {
            continue;
        };
        if staged.stager_runs() {
            continue;
        }
        let program = view
            .effective_program(Some(staged), &hooked)
            .or_else(|| view.effective_program(final_chain, &hooked));
        if view.chain_runs(staged, &program) {
            if findings.found(&staged.path, LeftoverKind::StagedAndHooked { pid }) {
                promote(&staged.path, staged.has_link(), final_chain, &final_dir)?;
            }
            final_ok = true;
        } else if findings.found(&staged.path, LeftoverKind::Staged { pid }) {
            staged.remove();
        }
    }
    // A running attach --replace may have hooked its chain and not yet
    // moved it into place: the old pins are its to replace.
    let replacing = chains.iter().any(|c| c.slot == slot && c.stager_runs());
    if let Some(chain) = final_chain.filter(|_| !final_ok && !replacing) {
        let program = view.effective_program(Some(chain), &hooked);
        if !view.chain_runs(chain, &program) && findings.found(&final_dir, LeftoverKind::Unhooked) {
            chain.remove();
        }
    }
    Ok(())
}

/// The marker of a clsact qdisc rawbpf added: removed if the qdisc is
/// gone; reported if the qdisc has nothing left on it (detach deletes it).
async fn reconcile_clsact_marker(
    view: &mut DeviceView<'_>,
    tree: &PinTree,
    findings: &mut Findings<'_>,
) -> Result<(), AttachError> {
    let marker = findings.target.pins().created_clsact();
    if !view.has_clsact().await? {
        if findings.found(&marker, LeftoverKind::QdiscGone) {
            let _ = std::fs::remove_dir(&marker);
        }
    } else if !findings.act
        && tree.chains(Hook::Ingress).is_empty()
        && tree.chains(Hook::Egress).is_empty()
        && !view.has_filters().await?
    {
        findings.found(&marker, LeftoverKind::QdiscUnused);
    }
    Ok(())
}

/// Directories a stopped attach made before it pinned anything.
fn remove_empty_dirs(tree: &PinTree, findings: &mut Findings<'_>) {
    let pins = findings.target.pins();
    let hook = findings.target.hook;
    let hook_dir = pins.hook_dir(hook);
    for (dir, empty) in [
        (&*hook_dir, tree.hook_dir_empty(hook)),
        (pins.dir(), tree.empty),
    ] {
        if empty && findings.found(dir, LeftoverKind::Empty) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Moves a staged chain into place over the final one (`old`, as read
/// before). A TCX link pinned only in the old chain (a replace that updated
/// the link and stopped) is pinned into the new one first, so the hook
/// never loses it.
pub(super) fn promote(
    staged: &Path,
    staged_link: bool,
    old: Option<&ChainDir>,
    final_dir: &Path,
) -> Result<(), AttachError> {
    if let Some(old) = old {
        if !staged_link {
            if let Some(link) = pinned_link(old) {
                let pin = staged.join(LINK_PIN);
                crate::sys::obj_pin(link.as_fd(), &c_path(&pin)?).map_err(|source| {
                    LoadError::Pin {
                        path: pin.clone(),
                        action: "pinning the TCX link",
                        source,
                    }
                })?;
            }
        }
        old.remove();
    }
    let moved = std::fs::rename(staged, final_dir).or_else(|e| {
        // A chain put in place since `old` was read.
        if final_dir.exists() {
            let _ = std::fs::remove_dir_all(final_dir);
            std::fs::rename(staged, final_dir)
        } else {
            Err(e)
        }
    });
    moved.map_err(|source| match source.raw_os_error() {
        // Yet another chain put in place since: a concurrent attach won.
        Some(libc::ENOTEMPTY | libc::EEXIST) => AttachError::Concurrent {
            path: final_dir.to_owned(),
        },
        _ => AttachError::Load(LoadError::Pin {
            path: final_dir.to_owned(),
            action: "moving the new pins into place",
            source,
        }),
    })
}
