//! Hooking a loaded chain's entry program to a device: a direct-action
//! filter on the clsact qdisc or a TCX link for the TC hooks, the device's
//! XDP program for XDP. A pinned chain is staged on bpffs first and moved
//! into place only once the hook runs it, so a rawbpf killed at any point
//! leaves state the next command reconciles.

use super::lock::HookLock;
use super::reconcile::{promote, reconcile, Reconcile};
use super::view::DeviceView;
use super::{c_path, AttachError, AttachOptions, Attached, Mode, Pinning, Target};
use crate::hook::{Direction, Hook};
use crate::load::Collection;
use crate::pins::{ChainDir, DevicePins, LINK_PIN};
use crate::tc::Tc;
use crate::uapi::{xdp_flags, AttachType};
use crate::LoadError;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What hooking made.
enum HookedBy {
    /// A cls_bpf filter (and the clsact qdisc, if the device had none).
    Filter { created_qdisc: bool },
    /// A TCX link, new or updated.
    TcxLink { link: OwnedFd },
    /// The device's XDP program, in the mode the kernel reports.
    Xdp { mode: &'static str },
}

/// Hooks program `entry` of `chain` as `opts` say, pinning the chain under
/// the target's pins with [`Pinning::Pinned`]. Nothing is left behind on
/// failure: the staged pins are removed and a qdisc rawbpf just created is
/// deleted. Holds the device's lock from before reconciling until it
/// returns (declared before the staging guard, it is dropped after it).
pub(super) async fn hook_chain(
    chain: &Collection,
    entry: &str,
    filter_name: &str,
    opts: &AttachOptions,
    pinning: Pinning,
) -> Result<Attached, AttachError> {
    let target = &opts.target;
    let slot = target.slot(opts.priority);
    let (tc, ifindex) = target.connect()?;
    let _lock = HookLock::take(target)?;
    let mut view = target.view(&tc, ifindex);
    // The chain hooked in this slot now, if rawbpf pinned one.
    let existing = match pinning {
        Pinning::Pinned => pinned_chain_in_slot(&mut view, opts, slot).await?,
        Pinning::Unpinned => None,
    };
    let program = chain.program(entry)?;
    // Pin into a staging directory first; it takes the final name only once
    // the hook runs the new chain (the guard removes it again on failure).
    let staged =
        StagedDir((pinning == Pinning::Pinned).then(|| target.pins().staging(target.hook, slot)));
    if let Some(dir) = staged.path() {
        chain.pin(dir)?;
    }
    let replacing = opts.replace && existing.is_some();
    let replacing_tcx = replacing && existing.as_ref().is_some_and(|c| c.has_link());
    if replacing && target.hook != Hook::Xdp {
        check_mode_kept(target, opts.mode, replacing_tcx)?;
    }
    let prog_fd = program.fd();
    let hooked = match target.hook.direction() {
        None => set_xdp(&tc, ifindex, opts, prog_fd).await?,
        Some(_) if replacing_tcx => update_tcx_link(existing.as_ref(), target, prog_fd)?,
        Some(direction) => {
            let mark = staged.path().is_some();
            hook_tc(
                &mut view,
                opts,
                direction,
                prog_fd,
                filter_name,
                replacing,
                mark,
            )
            .await?
        }
    };
    drop(view);
    drop(tc);
    let mut attached = describe(chain, entry, program.id, ifindex, filter_name, opts);
    match hooked {
        HookedBy::Filter { created_qdisc } => attached.created_qdisc = created_qdisc,
        HookedBy::Xdp { mode } => {
            attached.mode = Mode::Xdp;
            attached.xdp_mode = Some(mode);
        }
        HookedBy::TcxLink { link } => {
            attached.mode = Mode::Tcx;
            // The link lives as long as a pin of it: pin it with the chain.
            match staged.path() {
                Some(dir) => pin_tcx_link(&link, dir)?,
                None => attached.link = Some(link),
            }
        }
    }
    // The hook now runs the new chain: its pins replace the old ones.
    if let Some(dir) = staged.path() {
        let chain_dir = target.pins().chain(target.hook, slot);
        promote(
            dir,
            attached.mode == Mode::Tcx,
            existing.as_ref(),
            &chain_dir,
        )?;
        attached.pin_dir = Some(chain_dir);
    }
    staged.keep();
    Ok(attached)
}

/// What [`hook_chain`] reports of a chain hooked by a cls_bpf filter, not
/// pinned; the caller fills in what else it did.
fn describe(
    chain: &Collection,
    entry: &str,
    prog_id: u32,
    ifindex: u32,
    filter_name: &str,
    opts: &AttachOptions,
) -> Attached {
    Attached {
        program: entry.to_owned(),
        prog_id,
        ifindex,
        created_qdisc: false,
        mode: Mode::Tc,
        xdp_mode: None,
        pin_dir: None,
        filter_name: filter_name.to_owned(),
        programs: chain
            .programs
            .iter()
            .map(|p| (p.name.clone(), p.id))
            .collect(),
        maps: chain
            .maps
            .iter()
            .map(|m| (m.name().to_owned(), m.id()))
            .collect(),
        warnings: chain.warnings.clone(),
        target: opts.target.clone(),
        priority: opts.priority,
        link: None,
    }
}

/// Reconciles the hook, then finds the chain rawbpf pinned in `slot`: one
/// there is an error unless `opts` replace it.
async fn pinned_chain_in_slot(
    view: &mut DeviceView<'_>,
    opts: &AttachOptions,
    slot: u16,
) -> Result<Option<ChainDir>, AttachError> {
    let target = &opts.target;
    reconcile(view, target, Reconcile::Repair).await?;
    let existing = view.tree().hooked_chain(target.hook, slot).cloned();
    if existing.is_some() && !opts.replace {
        return Err(target.already_attached(opts.priority));
    }
    Ok(existing)
}

/// A replacement keeps the mode of the chain it replaces (auto takes it).
fn check_mode_kept(target: &Target, wanted: Mode, replacing_tcx: bool) -> Result<(), AttachError> {
    let attached = if replacing_tcx { Mode::Tcx } else { Mode::Tc };
    if matches!(wanted, Mode::Tc | Mode::Tcx) && wanted != attached {
        return Err(AttachError::ModeMismatch {
            dev: target.dev.clone(),
            attached,
        });
    }
    Ok(())
}

/// Sets the device's XDP program; without `replace`, only if it has none.
async fn set_xdp(
    tc: &Tc,
    ifindex: u32,
    opts: &AttachOptions,
    prog_fd: BorrowedFd<'_>,
) -> Result<HookedBy, AttachError> {
    let target = &opts.target;
    let mut flags = opts.xdp_mode.flags();
    if !opts.replace {
        flags |= xdp_flags::UPDATE_IF_NOEXIST;
    }
    match tc.set_xdp(ifindex, Some(prog_fd), flags).await {
        Ok(()) => {}
        Err(e) if matches!(e.errno(), Some(libc::EBUSY) | Some(libc::EEXIST)) => {
            let held = tc.xdp(ifindex).await.ok().flatten();
            return Err(match held {
                Some(h) if !opts.replace => AttachError::XdpBusy {
                    dev: target.dev.clone(),
                    prog_id: h.prog_id,
                    mode: h.mode,
                },
                _ => target.netlink_failed("setting the XDP program", e),
            });
        }
        Err(e) => return Err(target.netlink_failed("setting the XDP program", e)),
    }
    let mode = match tc.xdp(ifindex).await {
        Ok(Some(x)) => x.mode,
        _ => "unknown",
    };
    Ok(HookedBy::Xdp { mode })
}

/// Points the TCX link pinned with the chain being replaced at the new
/// entry program: one update, no window.
fn update_tcx_link(
    existing: Option<&ChainDir>,
    target: &Target,
    prog_fd: BorrowedFd<'_>,
) -> Result<HookedBy, AttachError> {
    let old_link = existing.map(|c| c.link_pin()).unwrap_or_default();
    let link = crate::sys::obj_get(&c_path(&old_link)?)
        .map_err(|source| target.syscall_failed("opening the pinned TCX link", source))?;
    crate::sys::link_update(link.as_fd(), prog_fd)
        .map_err(|source| target.syscall_failed("updating the TCX link", source))?;
    Ok(HookedBy::TcxLink { link })
}

/// A TC hook: a new TCX link (modes tcx and auto, unless replacing a
/// filter), else a cls_bpf filter.
async fn hook_tc(
    view: &mut DeviceView<'_>,
    opts: &AttachOptions,
    direction: Direction,
    prog_fd: BorrowedFd<'_>,
    filter_name: &str,
    replacing: bool,
    mark: bool,
) -> Result<HookedBy, AttachError> {
    if opts.mode != Mode::Tc && !replacing {
        if let Some(link) = create_tcx_link(opts, direction, prog_fd, view.ifindex)? {
            return Ok(HookedBy::TcxLink { link });
        }
    }
    add_filter(view, opts, direction, prog_fd, filter_name, mark).await
}

/// A TCX link, made in the target's namespace (bpf(2) reads the device
/// index there). `None`: mode auto on a kernel without TCX.
fn create_tcx_link(
    opts: &AttachOptions,
    direction: Direction,
    prog_fd: BorrowedFd<'_>,
    ifindex: u32,
) -> Result<Option<OwnedFd>, AttachError> {
    let target = &opts.target;
    let attach_type = match direction {
        Direction::Ingress => AttachType::TCX_INGRESS,
        Direction::Egress => AttachType::TCX_EGRESS,
    };
    target.in_ns(
        || match crate::sys::link_create_ifindex(prog_fd, ifindex, attach_type.0, 0) {
            Ok(link) => Ok(Some(link)),
            // An older kernel does not know TCX: auto falls back to tc.
            Err(e) if opts.mode == Mode::Auto && e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
            Err(source) => Err(target.syscall_failed("creating the TCX link", source)),
        },
    )
}

/// Pins a TCX link with its chain: the link lives as long as a pin of it.
fn pin_tcx_link(link: &OwnedFd, dir: &Path) -> Result<(), AttachError> {
    let pin = dir.join(LINK_PIN);
    crate::sys::obj_pin(link.as_fd(), &c_path(&pin)?).map_err(|source| {
        AttachError::Load(LoadError::Pin {
            path: pin,
            action: "pinning the TCX link",
            source,
        })
    })
}

/// Adds the clsact qdisc if the device has none, then the filter. The
/// marker saying rawbpf added the qdisc is made before the qdisc, so a
/// rawbpf killed in between leaves a marker (which reconciling removes if
/// there is no qdisc) rather than a qdisc nobody knows to remove.
async fn add_filter(
    view: &mut DeviceView<'_>,
    opts: &AttachOptions,
    direction: Direction,
    prog_fd: BorrowedFd<'_>,
    filter_name: &str,
    mark: bool,
) -> Result<HookedBy, AttachError> {
    let target = &opts.target;
    let (tc, ifindex) = (view.tc, view.ifindex);
    let marker = target.pins().created_clsact();
    let has_clsact = view.has_clsact().await?;
    let mut created = false;
    if !has_clsact {
        if mark {
            std::fs::create_dir_all(&marker).map_err(|source| LoadError::Pin {
                path: marker.clone(),
                action: "marking the clsact qdisc as rawbpf's",
                source,
            })?;
        }
        created = tc
            .ensure_clsact(ifindex)
            .await
            .map_err(|source| target.netlink_failed("adding the clsact qdisc", source))?;
    }
    let added = tc
        .add_bpf_filter(
            ifindex,
            direction,
            opts.priority,
            prog_fd,
            filter_name,
            opts.replace,
        )
        .await;
    if let Err(source) = added {
        if created {
            // Another rawbpf may have put its filter on the qdisc we just
            // made (two attaches racing): delete the qdisc only if it is
            // empty, else leave it (and the marker) to that chain's detach.
            view.hooks_changed();
            if view.has_filters().await.is_ok_and(|any| !any)
                && tc.delete_clsact(ifindex).await.is_ok()
            {
                let _ = std::fs::remove_dir(&marker);
            }
        }
        return Err(match source.errno() {
            Some(libc::EEXIST) => target.already_attached(opts.priority),
            _ => target.netlink_failed("adding the bpf filter", source),
        });
    }
    Ok(HookedBy::Filter {
        created_qdisc: created,
    })
}

/// The directory a chain is pinned in before the hook runs it, removed on
/// drop unless kept (`None`: an unpinned attach, nothing to remove).
struct StagedDir(Option<PathBuf>);

impl StagedDir {
    fn path(&self) -> Option<&Path> {
        self.0.as_deref()
    }

    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
            DevicePins::remove_empty_parents(dir);
        }
    }
}
