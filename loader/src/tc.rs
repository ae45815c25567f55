//! Traffic control over rtnetlink: the `clsact` qdisc and direct-action
//! `cls_bpf` filters. Messages are built from netlink-packet-route's types
//! and sent through rtnetlink's `Handle::request` on a current-thread tokio
//! runtime (rtnetlink 0.24's builders have no clsact kind or cls_bpf option).
//!
//! A [`Tc`] talks to the network namespace it was created in.

use futures_util::StreamExt;
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::tc::{
    TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `TC_H_CLSACT`: the clsact qdisc's parent.
pub const TC_H_CLSACT: u32 = 0xFFFF_FFF1;
/// The clsact qdisc's handle, `ffff:0`.
const CLSACT_HANDLE: u32 = 0xFFFF_0000;
/// `ETH_P_ALL`: filters see every protocol.
const ETH_P_ALL: u16 = 0x0003;

/// Which way packets go through the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Packets the device receives (`ffff:fff2`).
    Ingress,
    /// Packets the device sends (`ffff:fff3`).
    Egress,
}

impl Direction {
    /// The filter's parent handle on clsact.
    pub fn parent(self) -> u32 {
        match self {
            Direction::Ingress => 0xFFFF_FFF2,
            Direction::Egress => 0xFFFF_FFF3,
        }
    }

    /// "ingress" or "egress".
    pub fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// A BPF filter as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfFilter {
    /// Interface index.
    pub ifindex: u32,
    /// Direction.
    pub direction: Direction,
    /// Priority.
    pub priority: u16,
    /// Filter handle.
    pub handle: u32,
    /// The name given when attaching (tc's `obj:[prog]`).
    pub name: String,
    /// The program's kernel id.
    pub prog_id: u32,
    /// The program's tag.
    pub tag: [u8; 8],
    /// Whether the filter is direct-action.
    pub direct_action: bool,
}

/// An rtnetlink connection in the current network namespace.
pub struct Tc {
    rt: tokio::runtime::Runtime,
    handle: rtnetlink::Handle,
}

fn errno_of(e: &rtnetlink::packet_core::ErrorMessage) -> io::Error {
    match e.code {
        Some(code) => io::Error::from_raw_os_error(-code.get()),
        None => io::Error::other("netlink error without a code"),
    }
}

impl Tc {
    /// Opens a netlink socket in the calling thread's network namespace.
    pub fn new() -> io::Result<Tc> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let (conn, handle, _) = rt.block_on(async { rtnetlink::new_connection() })?;
        rt.spawn(conn);
        Ok(Tc { rt, handle })
    }

    /// Runs an rtnetlink request future (from the crate's builders) to completion.
    pub(crate) fn run<F: std::future::Future>(
        &self,
        f: impl FnOnce(rtnetlink::Handle) -> F,
    ) -> F::Output {
        self.rt.block_on(f(self.handle.clone()))
    }

    /// Sends one request and collects the replies, turning a netlink error
    /// into its errno.
    fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | flags;
        let mut handle = self.handle.clone();
        self.rt.block_on(async move {
            let mut replies = handle
                .request(req)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let mut out = Vec::new();
            while let Some(m) = replies.next().await {
                match m.payload {
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(errno_of(&e)),
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    _ => {}
                }
            }
            Ok(out)
        })
    }

    /// The index of a network device; `None` if there is none of that name.
    pub fn ifindex(&self, name: &str) -> io::Result<Option<u32>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Names and indices of every device.
    pub fn devices(&self) -> io::Result<Vec<(u32, String)>> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => {
                    let name = l.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })?;
                    Some((l.header.index, name))
                }
                _ => None,
            })
            .collect())
    }

    fn clsact_message(ifindex: u32) -> TcMessage {
        let mut msg = TcMessage::default();
        msg.header.index = ifindex as i32;
        msg.header.parent = TcHandle::from(TC_H_CLSACT);
        msg.header.handle = TcHandle::from(CLSACT_HANDLE);
        msg.attributes.push(TcAttribute::Kind("clsact".into()));
        msg
    }

    /// Adds a clsact qdisc unless the device has one; says whether it added it.
    pub fn ensure_clsact(&self, ifindex: u32) -> io::Result<bool> {
        let msg = Self::clsact_message(ifindex);
        match self.request(
            RouteNetlinkMessage::NewQueueDiscipline(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the device's clsact qdisc (and every filter on it).
    pub fn delete_clsact(&self, ifindex: u32) -> io::Result<()> {
        let msg = Self::clsact_message(ifindex);
        self.request(RouteNetlinkMessage::DelQueueDiscipline(msg), NLM_F_ACK)
            .map(drop)
    }

    /// Adds a direct-action BPF filter (protocol all) at `priority`, handle 1.
    /// With `replace`, an existing filter there is swapped atomically
    /// (`NLM_F_REPLACE`); without, an existing one is an `EEXIST` error.
    pub fn add_bpf_filter(
        &self,
        ifindex: u32,
        direction: Direction,
        priority: u16,
        prog: BorrowedFd<'_>,
        name: &str,
        replace: bool,
    ) -> io::Result<()> {
        let mut msg = TcMessage::default();
        msg.header.index = ifindex as i32;
        msg.header.parent = TcHandle::from(direction.parent());
        msg.header.handle = TcHandle::from(1);
        msg.header.info = (u32::from(priority) << 16) | u32::from(ETH_P_ALL.to_be());
        msg.attributes.push(TcAttribute::Kind("bpf".into()));
        msg.attributes.push(TcAttribute::Options(vec![
            TcOption::Bpf(TcFilterBpfOption::ProgFd(prog.as_raw_fd() as u32)),
            TcOption::Bpf(TcFilterBpfOption::ProgName(name.to_owned())),
            TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
        ]));
        let mode = if replace { NLM_F_REPLACE } else { NLM_F_EXCL };
        self.request(
            RouteNetlinkMessage::NewTrafficFilter(msg),
            NLM_F_ACK | NLM_F_CREATE | mode,
        )
        .map(drop)
    }

    /// Deletes the filters at `priority`; `Ok(false)` if there were none.
    pub fn delete_filter(
        &self,
        ifindex: u32,
        direction: Direction,
        priority: u16,
    ) -> io::Result<bool> {
        let mut msg = TcMessage::default();
        msg.header.index = ifindex as i32;
        msg.header.parent = TcHandle::from(direction.parent());
        msg.header.info = u32::from(priority) << 16;
        match self.request(RouteNetlinkMessage::DelTrafficFilter(msg), NLM_F_ACK) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EINVAL)) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Every filter on one direction of a device: (priority, kind, BPF details if a bpf filter).
    pub fn filters(
        &self,
        ifindex: u32,
        direction: Direction,
    ) -> io::Result<Vec<(u16, String, Option<BpfFilter>)>> {
        let mut msg = TcMessage::default();
        msg.header.index = ifindex as i32;
        msg.header.parent = TcHandle::from(direction.parent());
        let replies = match self.request(RouteNetlinkMessage::GetTrafficFilter(msg), NLM_F_DUMP) {
            Ok(r) => r,
            // No clsact qdisc: no filters.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewTrafficFilter(m) = r else {
                continue;
            };
            let priority = (m.header.info >> 16) as u16;
            let kind = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    TcAttribute::Kind(k) => Some(k.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let options: Vec<&TcFilterBpfOption> = m
                .attributes
                .iter()
                .filter_map(|a| match a {
                    TcAttribute::Options(o) => Some(o),
                    _ => None,
                })
                .flatten()
                .filter_map(|o| match o {
                    TcOption::Bpf(b) => Some(b),
                    _ => None,
                })
                .collect();
            // The dump lists the priority's chain head too, without options.
            if kind == "bpf" && options.is_empty() {
                continue;
            }
            let mut bpf = BpfFilter {
                ifindex,
                direction,
                priority,
                handle: u32::from(m.header.handle),
                name: String::new(),
                prog_id: 0,
                tag: [0; 8],
                direct_action: false,
            };
            for o in options {
                match o {
                    TcFilterBpfOption::ProgName(n) => bpf.name = n.clone(),
                    TcFilterBpfOption::ProgId(id) => bpf.prog_id = *id,
                    TcFilterBpfOption::ProgTag(t) => bpf.tag = *t,
                    TcFilterBpfOption::Flags(f) => {
                        bpf.direct_action = f.contains(TcBpfFlags::DirectAction)
                    }
                    _ => {}
                }
            }
            out.push((priority, kind.clone(), (kind == "bpf").then_some(bpf)));
        }
        Ok(out)
    }
}
