//! What one command has read of a device: the kernel's side (filters,
//! qdiscs, the XDP program) and rawbpf's pins, each read at most once and
//! read again only after the command changed it. `attach`, `detach` and
//! `list` decide from the same reads instead of asking the kernel and
//! bpffs the same question at every step.

use super::{c_path, AttachError};
use crate::hook::{Direction, Hook};
use crate::pins::{ChainDir, DevicePins, PinTree};
use crate::tc::{NetlinkError, Tc, TcFilter, XdpAttached};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The program a hook runs (a filter's, a TCX link's or the device's XDP
/// program), as far as a chain is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HookedProgram {
    /// Its kernel id.
    pub prog_id: u32,
    /// The entry program's name, when the hook says it (a filter named
    /// `obj:[prog]`, as rawbpf names them): its pin is checked first.
    pub entry: Option<String>,
}

pub(super) struct DeviceView<'t> {
    pub tc: &'t Tc,
    pub ifindex: u32,
    dev: String,
    pins: DevicePins,
    filters: [Option<Vec<TcFilter>>; 2],
    clsact: Option<bool>,
    xdp: Option<Option<XdpAttached>>,
    tree: Option<PinTree>,
    /// The program id behind a pin, by path (`None`: not a program). A
    /// few entries: a list, which needs no hasher seeded from getrandom.
    pinned: Vec<(PathBuf, Option<u32>)>,
}

fn index(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

impl<'t> DeviceView<'t> {
    pub fn new(tc: &'t Tc, ifindex: u32, netns: Option<&str>, dev: &str) -> DeviceView<'t> {
        DeviceView {
            tc,
            ifindex,
            dev: dev.to_owned(),
            pins: DevicePins::new(netns, dev),
            filters: [None, None],
            clsact: None,
            xdp: None,
            tree: None,
            pinned: Vec::new(),
        }
    }

    fn netlink_failed(&self, action: &'static str, source: NetlinkError) -> AttachError {
        AttachError::Netlink {
            dev: self.dev.clone(),
            action,
            source,
        }
    }

    /// The device's pins.
    pub fn tree(&mut self) -> &PinTree {
        self.tree.get_or_insert_with(|| self.pins.read())
    }

    /// The command changed the pins: read them again when next asked.
    pub fn pins_changed(&mut self) {
        self.tree = None;
        self.pinned.clear();
    }

    /// The filters on one direction.
    pub async fn filters(&mut self, d: Direction) -> Result<&[TcFilter], AttachError> {
        if self.filters[index(d)].is_none() {
            let read = self
                .tc
                .filters(self.ifindex, d)
                .await
                .map_err(|source| self.netlink_failed("listing filters", source))?;
            self.filters[index(d)] = Some(read);
        }
        Ok(self.filters[index(d)].as_deref().unwrap_or_default())
    }

    /// The command added or deleted a filter or a qdisc.
    pub fn hooks_changed(&mut self) {
        self.filters = [None, None];
        self.clsact = None;
    }

    /// The command deleted the filters at `priority` on one direction: the
    /// direction holds what it held before but those.
    pub fn filter_deleted(&mut self, d: Direction, priority: u16) {
        if let Some(filters) = &mut self.filters[index(d)] {
            filters.retain(|f| f.priority != priority);
        }
    }

    /// Whether any filter is on the device's clsact qdisc, either way.
    pub async fn has_filters(&mut self) -> Result<bool, AttachError> {
        Ok(!self.filters(Direction::Ingress).await?.is_empty()
            || !self.filters(Direction::Egress).await?.is_empty())
    }

    /// Whether the device has a clsact qdisc. A filter already read on
    /// either direction says so without asking: filters live on it.
    pub async fn has_clsact(&mut self) -> Result<bool, AttachError> {
        if let Some(c) = self.clsact {
            return Ok(c);
        }
        let seen_filter = self.filters.iter().flatten().any(|f| !f.is_empty());
        let c = seen_filter
            || self
                .tc
                .qdisc_kinds(self.ifindex)
                .await
                .map_err(|source| self.netlink_failed("listing qdiscs", source))?
                .iter()
                .any(|k| k == "clsact");
        self.clsact = Some(c);
        Ok(c)
    }

    /// The device's XDP program.
    pub async fn xdp(&mut self) -> Result<Option<XdpAttached>, AttachError> {
        if self.xdp.is_none() {
            let read = self
                .tc
                .xdp(self.ifindex)
                .await
                .map_err(|source| self.netlink_failed("reading the XDP program", source))?;
            self.xdp = Some(read);
        }
        Ok(self.xdp.flatten())
    }

    /// The XDP program, as a read of every device found it.
    pub fn knowing_xdp(mut self, xdp: Option<XdpAttached>) -> Self {
        self.xdp = Some(xdp);
        self
    }

    /// The command set or removed the XDP program.
    pub fn xdp_changed(&mut self) {
        self.xdp = None;
    }

    /// The program the kernel runs at a hook's slot: the filter at
    /// priority `slot`, or the device's XDP program.
    pub async fn hooked(
        &mut self,
        hook: Hook,
        slot: u16,
    ) -> Result<Option<HookedProgram>, AttachError> {
        Ok(match hook.direction() {
            Some(d) => self
                .filters(d)
                .await?
                .iter()
                .find_map(|f| f.bpf.as_ref().filter(|_| f.priority == slot))
                .map(|b| HookedProgram {
                    prog_id: b.prog_id,
                    entry: entry_of(&b.name),
                }),
            None => self.xdp().await?.map(|x| HookedProgram {
                prog_id: x.prog_id,
                entry: None,
            }),
        })
    }

    /// What a hook runs, as far as `chain` is concerned: the program of
    /// the chain's own TCX link if it pinned one (and the link is still
    /// attached), else `hooked`.
    pub fn effective_program(
        &self,
        chain: Option<&ChainDir>,
        hooked: &Option<HookedProgram>,
    ) -> Option<HookedProgram> {
        match chain.and_then(pinned_link) {
            Some(link) => crate::sys::link_info(link.as_fd())
                .ok()
                .filter(|i| i.ifindex != 0)
                .map(|i| HookedProgram {
                    prog_id: i.prog_id,
                    entry: None,
                }),
            None => hooked.clone(),
        }
    }

    /// Whether `running` is one of the programs pinned in `chain`. The
    /// entry program's pin, when the hook names it, is the only one read.
    pub fn chain_runs(&mut self, chain: &ChainDir, running: &Option<HookedProgram>) -> bool {
        let Some(running) = running else {
            return false;
        };
        let hinted = running
            .entry
            .as_deref()
            .map(crate::load::pin_name)
            .filter(|p| chain.pins.contains(p));
        if let Some(pin) = hinted {
            return self.pinned_prog(&chain.path.join(pin)) == Some(running.prog_id);
        }
        chain
            .object_pins()
            .any(|p| self.pinned_prog(&p) == Some(running.prog_id))
    }

    fn pinned_prog(&mut self, pin: &Path) -> Option<u32> {
        if let Some((_, id)) = self.pinned.iter().find(|(p, _)| p == pin) {
            return *id;
        }
        let id = c_path(pin)
            .ok()
            .and_then(|c| crate::sys::obj_get(&c).ok())
            .and_then(|fd| crate::sys::prog_info(fd.as_fd()).ok())
            .map(|i| i.id);
        self.pinned.push((pin.to_owned(), id));
        id
    }
}

/// The TCX link pinned with `chain`, if there is one.
pub(super) fn pinned_link(chain: &ChainDir) -> Option<OwnedFd> {
    if !chain.has_link() {
        return None;
    }
    crate::sys::obj_get(&c_path(&chain.link_pin()).ok()?).ok()
}

/// The program name in a filter name rawbpf gave (`obj:[prog]`).
fn entry_of(filter_name: &str) -> Option<String> {
    let inner = filter_name.strip_suffix(']')?;
    let open = inner.rfind(":[")?;
    Some(inner[open + 2..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::entry_of;

    #[test]
    fn entry_program_from_filter_name() {
        assert_eq!(
            entry_of("pipeline.bpf.o:[mark_packet]").as_deref(),
            Some("mark_packet")
        );
        assert_eq!(entry_of("a:[b]:[c]").as_deref(), Some("c"));
        assert_eq!(entry_of("tc-filter"), None);
        assert_eq!(entry_of("x:[]").as_deref(), Some(""));
    }
}
