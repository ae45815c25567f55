//! Removing what attach made: a chain's hook (filter, TCX link or XDP
//! program), its pins, and the clsact qdisc rawbpf added once nothing is
//! left on it.

use super::lock::HookLock;
use super::reconcile::{reconcile, Leftover, Reconcile};
use super::view::{pinned_link, DeviceView, HookedProgram};
use super::{AttachError, Attached, Target, XdpMode};
use crate::hook::{Direction, Hook};
use crate::netns::NetnsError;
use crate::pins::{ChainDir, DevicePins};
use std::os::fd::AsFd;

/// What `detach` removed.
#[derive(Debug, Default)]
pub struct Detached {
    /// Priorities whose filters or links were removed (for XDP: none).
    pub priorities: Vec<u16>,
    /// Whether the clsact qdisc rawbpf had created was deleted too.
    pub deleted_qdisc: bool,
    /// For XDP: whether the device's XDP program was removed (`false` when
    /// the device no longer ran rawbpf's program: only its pins went).
    pub removed_xdp: bool,
    /// What was left by a rawbpf stopped half-way, and reconciled first.
    pub reconciled: Vec<Leftover>,
}

/// Removes the chain at `priority` (or, with `None`, every chain rawbpf
/// attached on the hook) and its pins; deletes the clsact qdisc if rawbpf
/// created it and no filter is left on it. For XDP, removes the device's
/// XDP program if it is one rawbpf pinned, and the pins. What a rawbpf
/// stopped half-way left on the hook is reconciled first; `detach` with
/// `None` succeeds if that was all there was.
///
/// Waits for other rawbpf commands changing the device (see
/// [`attach`](super::attach)) up to [`HOOK_LOCK_WAIT`](super::HOOK_LOCK_WAIT),
/// then holds the device's lock to its last step.
pub async fn detach(target: &Target, priority: Option<u16>) -> Result<Detached, AttachError> {
    let pins = target.pins();
    let (tc, ifindex) = match target.connect() {
        Ok(connected) => connected,
        // The device (or its namespace) is gone, and its hooks with it:
        // what is left to remove is our pins.
        Err(AttachError::NoDevice { .. })
        | Err(AttachError::Netns(NetnsError::NotFound { .. })) => {
            let _lock = HookLock::take(target)?;
            return remove_pins_of_gone_device(target, priority);
        }
        Err(e) => return Err(e),
    };
    let _lock = HookLock::take(target)?;
    let mut view = target.view(&tc, ifindex);
    let reconciled = reconcile(&mut view, target, Reconcile::Repair).await?;
    let mut done = if target.hook == Hook::Xdp {
        detach_xdp(&mut view, target).await?
    } else {
        detach_tc(&mut view, target, priority).await?
    };
    // Directories a stopped attach made before it pinned anything.
    DevicePins::remove_empty_parents(&pins.chain(target.hook, 0));
    let nothing = done.priorities.is_empty() && !done.removed_xdp && !done.deleted_qdisc;
    if nothing && (priority.is_some() || reconciled.is_empty()) {
        return Err(target.not_attached(priority));
    }
    done.reconciled = reconciled;
    Ok(done)
}

/// [`detach`] on a device that is gone: its chains' pins (not those a
/// running attach staged) and the clsact marker.
fn remove_pins_of_gone_device(
    target: &Target,
    priority: Option<u16>,
) -> Result<Detached, AttachError> {
    let pins = target.pins();
    let tree = pins.read();
    let ours: Vec<&ChainDir> = tree
        .chains(target.hook)
        .iter()
        .filter(|c| !c.stager_runs())
        .collect();
    let slots: Vec<u16> = ours
        .iter()
        .filter(|c| priority.is_none_or(|p| c.slot == target.slot(p)))
        .map(|c| c.slot)
        .collect();
    if slots.is_empty() {
        return Err(target.not_attached(priority));
    }
    for c in ours.iter().filter(|c| slots.contains(&c.slot)) {
        c.remove();
    }
    let _ = std::fs::remove_dir_all(pins.created_clsact());
    DevicePins::remove_empty_parents(&pins.chain(target.hook, 0));
    Ok(Detached {
        priorities: if target.hook == Hook::Xdp {
            Vec::new()
        } else {
            slots
        },
        ..Detached::default()
    })
}

/// Unhooks the TC chains asked for, then the qdisc rawbpf added if nothing
/// is left on it, then the chains' pins.
async fn detach_tc(
    view: &mut DeviceView<'_>,
    target: &Target,
    priority: Option<u16>,
) -> Result<Detached, AttachError> {
    let (tc, ifindex) = (view.tc, view.ifindex);
    let pins = target.pins();
    let direction = target.hook.direction().unwrap_or(Direction::Ingress);
    let tree = view.tree().clone();
    let prios: Vec<u16> = match priority {
        Some(p) => vec![p],
        None => tree
            .chains(target.hook)
            .iter()
            .filter(|c| c.staged_by.is_none())
            .map(|c| c.slot)
            .collect(),
    };
    let mut done = Detached::default();
    let mut unhooked = Vec::new();
    for p in prios {
        let Some(chain) = tree.hooked_chain(target.hook, p) else {
            continue;
        };
        // A TCX link goes only when its last reference does, in a kernel
        // work item after the unpin: detach it now, so that when detach
        // returns, packets no longer see the chain.
        if let Some(link) = pinned_link(chain) {
            let _ = crate::sys::link_detach(link.as_fd());
        } else {
            // Only a filter running this chain's programs is rawbpf's to
            // delete (not another tool's, nor one a running attach just
            // added and has not pinned in place yet).
            let hooked = view.hooked(target.hook, p).await?;
            if view.chain_runs(chain, &hooked) {
                tc.delete_filter(ifindex, direction, p)
                    .await
                    .map_err(|source| target.netlink_failed("deleting the filter", source))?;
                view.filter_deleted(direction, p);
            }
        }
        unhooked.push(chain);
        done.priorities.push(p);
    }
    // The qdisc rawbpf added, once no filter is left on it and no attach in
    // progress (which stages its chain before it adds the qdisc) may be
    // about to use it. Before the pins go: the unpin hands the prog arrays'
    // clearing to a kernel work item that patches the programs' code on
    // every CPU, and nothing here needs to wait behind it. A detach stopped
    // between the two leaves unhooked pins, which the next one removes.
    if tree.created_clsact && !tree.attach_in_progress() && !view.has_filters().await? {
        match tc.delete_clsact(ifindex).await {
            Ok(()) => done.deleted_qdisc = true,
            // Gone already (a detach stopped after deleting it).
            Err(e) if matches!(e.errno(), Some(libc::EINVAL) | Some(libc::ENOENT)) => {}
            Err(source) => {
                return Err(target.netlink_failed("deleting the clsact qdisc", source));
            }
        }
        let _ = std::fs::remove_dir(pins.created_clsact());
        view.pins_changed();
    }
    for chain in &unhooked {
        chain.remove();
    }
    if !unhooked.is_empty() {
        view.pins_changed();
    }
    Ok(done)
}

/// Removes the device's XDP program if it is the pinned chain's, then
/// the pins.
async fn detach_xdp(view: &mut DeviceView<'_>, target: &Target) -> Result<Detached, AttachError> {
    let Some(chain) = view.tree().hooked_chain(Hook::Xdp, 0).cloned() else {
        return Ok(Detached::default());
    };
    let held = view.xdp().await?;
    let mut removed_xdp = false;
    // Another program replaced ours: leave it, remove only our pins.
    let running = held.map(|h| HookedProgram {
        prog_id: h.prog_id,
        entry: None,
    });
    if let Some(held) = held.filter(|_| view.chain_runs(&chain, &running)) {
        view.tc
            .set_xdp(view.ifindex, None, XdpMode::of_attached(held.mode))
            .await
            .map_err(|source| target.netlink_failed("removing the XDP program", source))?;
        view.xdp_changed();
        removed_xdp = true;
    }
    chain.remove();
    view.pins_changed();
    Ok(Detached {
        removed_xdp,
        priorities: Vec::new(),
        ..Detached::default()
    })
}

impl Attached {
    /// Unhooks it: [`detach`] for a pinned chain; for an unpinned one,
    /// deletes the filter or XDP program if the hook still runs this entry
    /// program, or detaches the TCX link. Holds the device's lock as
    /// [`detach`] does.
    pub async fn detach(self) -> Result<Detached, AttachError> {
        if self.pin_dir.is_some() {
            return detach(&self.target, Some(self.priority)).await;
        }
        let target = &self.target;
        let _lock = HookLock::take(target)?;
        if let Some(link) = &self.link {
            crate::sys::link_detach(link.as_fd())
                .map_err(|source| target.syscall_failed("detaching the TCX link", source))?;
            return Ok(Detached {
                priorities: vec![self.priority],
                ..Detached::default()
            });
        }
        let (tc, ifindex) = target.connect()?;
        let mut view = target.view(&tc, ifindex);
        let slot = target.slot(self.priority);
        let hooked = view.hooked(target.hook, slot).await?;
        if hooked.map(|h| h.prog_id) != Some(self.prog_id) {
            return Err(target.not_attached(Some(self.priority)));
        }
        let mut done = Detached::default();
        match target.hook.direction() {
            Some(direction) => {
                tc.delete_filter(ifindex, direction, self.priority)
                    .await
                    .map_err(|source| target.netlink_failed("deleting the filter", source))?;
                view.filter_deleted(direction, self.priority);
                done.priorities.push(self.priority);
                // The qdisc this attach added, if nothing else uses it now.
                if self.created_qdisc && view.has_filters().await.is_ok_and(|any| !any) {
                    done.deleted_qdisc = tc.delete_clsact(ifindex).await.is_ok();
                }
            }
            None => {
                tc.set_xdp(
                    ifindex,
                    None,
                    XdpMode::of_attached(self.xdp_mode.unwrap_or("")),
                )
                .await
                .map_err(|source| target.netlink_failed("removing the XDP program", source))?;
                done.removed_xdp = true;
            }
        }
        Ok(done)
    }
}
