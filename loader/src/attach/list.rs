//! What is hooked on a namespace's devices: BPF filters, TCX links rawbpf
//! pinned and XDP programs, each with the chain rawbpf pinned for it, and
//! what rawbpf left half-done there. Changes nothing.

use super::reconcile::{reconcile, Leftover, Reconcile};
use super::view::{pinned_link, DeviceView};
use super::{AttachError, Mode, Target};
use crate::hook::{Direction, Hook};
use crate::pins::{ChainDir, PinTree};
use crate::tc::{BpfFilter, XdpAttached};
use std::os::fd::AsFd;
use std::path::PathBuf;

/// A BPF program found by `list` on a device hook, with where rawbpf pinned
/// its chain if it did.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The device's name.
    pub dev: String,
    /// The hook.
    pub hook: Hook,
    /// The filter (for TCX and XDP: the program, described like one).
    pub filter: BpfFilter,
    /// The chain's pins, for programs rawbpf attached.
    pub pin_dir: Option<PathBuf>,
    /// tc (a cls_bpf filter), tcx (a link rawbpf pinned) or xdp.
    pub mode: Mode,
    /// For XDP: the mode the kernel runs it in.
    pub xdp_mode: Option<&'static str>,
    /// What each slot of the chain's pinned prog arrays holds now, in pin
    /// name and key order (empty slots left out).
    pub slots: Vec<Slot>,
}

/// One filled slot of a chain's prog array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The prog array's pin name.
    pub map: String,
    /// The key.
    pub key: u32,
    /// The program there: its kernel id and name.
    pub prog_id: u32,
    /// Its name as the kernel keeps it (at most 15 bytes).
    pub program: String,
}

/// The filled slots of the prog arrays pinned in `dir` (a prog array read
/// from user space gives program ids).
fn slots(dir: &std::path::Path) -> Vec<Slot> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let Ok(map) = crate::load::Map::from_pin(dir.join(&name)) else {
            continue; // a program's pin, or one another command removes
        };
        if map.map_type() != crate::uapi::MapType::PROG_ARRAY {
            continue;
        }
        for key in 0..map.max_entries() {
            let Ok(Some(v)) = map.lookup(&key.to_ne_bytes()) else {
                continue;
            };
            let prog_id = u32::from_ne_bytes(v[..4].try_into().unwrap_or_default());
            let program = crate::sys::prog_get_fd_by_id(prog_id)
                .and_then(|fd| crate::sys::prog_info(fd.as_fd()))
                .map(|i| {
                    let end = i.name.iter().position(|&b| b == 0).unwrap_or(i.name.len());
                    String::from_utf8_lossy(&i.name[..end]).into_owned()
                })
                .unwrap_or_default();
            out.push(Slot {
                map: name.clone(),
                key,
                prog_id,
                program,
            });
        }
    }
    out
}

/// What `list` found.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Programs on device hooks.
    pub attached: Vec<Listed>,
    /// rawbpf state that does not match the kernel's, and what the next
    /// command on its hook will do with it.
    pub leftovers: Vec<Leftover>,
}

/// A program by id, described like a filter: its name, id and tag.
fn program_as_filter(
    prog_id: u32,
    ifindex: u32,
    direction: Direction,
    priority: u16,
) -> Option<BpfFilter> {
    use crate::sys;
    let prog = sys::prog_info(sys::prog_get_fd_by_id(prog_id).ok()?.as_fd()).ok()?;
    let end = prog
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(prog.name.len());
    Some(BpfFilter {
        ifindex,
        direction,
        priority,
        handle: 0,
        name: String::from_utf8_lossy(&prog.name[..end]).into_owned(),
        prog_id,
        tag: prog.tag,
        direct_action: true,
    })
}

/// The TCX link pinned for a chain, described like a filter.
fn pinned_tcx(chain: &ChainDir, ifindex: u32, direction: Direction) -> Option<BpfFilter> {
    let link = pinned_link(chain)?;
    let info = crate::sys::link_info(link.as_fd()).ok()?;
    if info.ifindex == 0 {
        return None;
    }
    program_as_filter(info.prog_id, ifindex, direction, chain.slot)
}

/// BPF filters, TCX links and XDP programs on every device (or one) of a
/// namespace, and what rawbpf left half-done there. Changes nothing.
pub async fn list(netns: Option<&str>, dev: Option<&str>) -> Result<Listing, AttachError> {
    let namespace = Target {
        netns: netns.map(str::to_owned),
        dev: dev.unwrap_or("").to_owned(),
        hook: Hook::Ingress,
    };
    let tc = namespace.in_ns(|| namespace.open_netlink())?;
    let devices = match dev {
        // One request names the device's index and its XDP program.
        Some(d) => match tc.link_by_name(d).await {
            Ok((ifindex, xdp)) => vec![(ifindex, d.to_owned(), xdp)],
            Err(e) if e.errno() == Some(libc::ENODEV) => return Err(namespace.no_device()),
            Err(source) => return Err(namespace.netlink_failed("reading the device", source)),
        },
        None => tc
            .devices()
            .await
            .map_err(|source| namespace.netlink_failed("listing devices", source))?,
    };
    let mut out = Listing::default();
    for (ifindex, name, xdp) in devices {
        let device = Target {
            dev: name,
            ..namespace.clone()
        };
        let mut view = device.view(&tc, ifindex).knowing_xdp(xdp);
        list_device(&mut view, &device, xdp, &mut out).await?;
    }
    Ok(out)
}

/// One device's hooks, into `out`.
async fn list_device(
    view: &mut DeviceView<'_>,
    device: &Target,
    xdp: Option<XdpAttached>,
    out: &mut Listing,
) -> Result<(), AttachError> {
    let tree = view.tree().clone();
    let ifindex = view.ifindex;
    let listed = |hook, filter, pin_dir: Option<PathBuf>, mode| Listed {
        dev: device.dev.clone(),
        hook,
        filter,
        slots: pin_dir.as_deref().map(slots).unwrap_or_default(),
        pin_dir,
        mode,
        xdp_mode: None,
    };
    for hook in Hook::ALL {
        let target = device.with_hook(hook);
        for l in reconcile(view, &target, Reconcile::Report).await? {
            if !out.leftovers.iter().any(|o| o.path == l.path) {
                out.leftovers.push(l);
            }
        }
        let Some(direction) = hook.direction() else {
            continue;
        };
        for f in view.filters(direction).await? {
            let Some(filter) = f.bpf.clone() else {
                continue;
            };
            let pin_dir = chain_path(&tree, hook, filter.priority);
            out.attached.push(listed(hook, filter, pin_dir, Mode::Tc));
        }
        for chain in tree.chains(hook).iter().filter(|c| c.staged_by.is_none()) {
            if let Some(filter) = pinned_tcx(chain, ifindex, direction) {
                let pin_dir = Some(chain.path.clone());
                out.attached.push(listed(hook, filter, pin_dir, Mode::Tcx));
            }
        }
    }
    if let Some(x) = xdp {
        let filter =
            program_as_filter(x.prog_id, ifindex, Direction::Ingress, 0).unwrap_or(BpfFilter {
                ifindex,
                direction: Direction::Ingress,
                priority: 0,
                handle: 0,
                name: String::new(),
                prog_id: x.prog_id,
                tag: [0; 8],
                direct_action: true,
            });
        let pin_dir = chain_path(&tree, Hook::Xdp, 0);
        out.attached.push(Listed {
            xdp_mode: Some(x.mode),
            ..listed(Hook::Xdp, filter, pin_dir, Mode::Xdp)
        });
    }
    Ok(())
}

/// Where the hooked chain in `slot` is pinned, if rawbpf pinned one.
fn chain_path(tree: &PinTree, hook: Hook, slot: u16) -> Option<PathBuf> {
    tree.hooked_chain(hook, slot).map(|c| c.path.clone())
}
