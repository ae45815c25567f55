//! Traffic control over rtnetlink: the `clsact` qdisc and direct-action
//! `cls_bpf` filters, as tc and libbpf make them (see [`crate::netlink`]).
//!
//! A [`Tc`] talks to the network namespace it was created in.

use crate::netlink::{self, flags, rtm, Attrs, IfInfoMsg, Request, Socket, TcMsg};
use std::cell::RefCell;
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

/// An rtnetlink socket in one network namespace.
pub struct Tc {
    sock: RefCell<Socket>,
}

/// Attribute numbers (`linux/rtnetlink.h`, `linux/if_link.h`, `linux/pkt_cls.h`).
const IFLA_IFNAME: u16 = 3;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_BPF_FD: u16 = 6;
const TCA_BPF_NAME: u16 = 7;
const TCA_BPF_FLAGS: u16 = 8;
const TCA_BPF_TAG: u16 = 10;
const TCA_BPF_ID: u16 = 11;
const TCA_BPF_FLAG_ACT_DIRECT: u32 = 1;

impl Tc {
    /// Opens a netlink socket in the calling thread's network namespace.
    pub fn new() -> io::Result<Tc> {
        Ok(Tc {
            sock: RefCell::new(Socket::open()?),
        })
    }

    /// Sends any request on this namespace's socket (see [`Socket::request`]).
    pub(crate) fn request(&self, req: Request) -> io::Result<Vec<netlink::Reply>> {
        self.sock.borrow_mut().request(req)
    }

    /// The index of a network device; `None` if there is none of that name.
    /// An ioctl on this namespace's socket: a netlink `RTM_GETLINK` would
    /// make the kernel fill in the device's every attribute and statistic.
    pub fn ifindex(&self, name: &str) -> io::Result<Option<u32>> {
        crate::sys::ifindex_of(self.sock.borrow().fd(), name)
    }

    /// Names and indices of every device.
    pub fn devices(&self) -> io::Result<Vec<(u32, String)>> {
        let replies = self.request(Request::link(
            rtm::GETLINK,
            flags::DUMP,
            IfInfoMsg::default(),
        ))?;
        Ok(replies
            .iter()
            .filter(|r| r.kind == rtm::NEWLINK)
            .filter_map(|r| {
                let (h, attrs) = r.link()?;
                Some((h.index as u32, attrs.string(IFLA_IFNAME)?))
            })
            .collect())
    }

    fn clsact(kind: u16, flags: u16, ifindex: u32) -> Request {
        let mut req = Request::tc(
            kind,
            flags,
            TcMsg {
                ifindex: ifindex as i32,
                parent: TC_H_CLSACT,
                handle: CLSACT_HANDLE,
                ..TcMsg::default()
            },
        );
        req.attr_str(TCA_KIND, "clsact");
        req
    }

    /// Adds a clsact qdisc unless the device has one; says whether it added it.
    pub fn ensure_clsact(&self, ifindex: u32) -> io::Result<bool> {
        let req = Self::clsact(rtm::NEWQDISC, flags::CREATE | flags::EXCL, ifindex);
        match self.request(req) {
            Ok(_) => Ok(true),
            Err(e) if netlink::errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The kinds of the device's qdiscs (`clsact`, `noqueue`, ...).
    pub fn qdisc_kinds(&self, ifindex: u32) -> io::Result<Vec<String>> {
        let replies = self.request(Request::tc(
            rtm::GETQDISC,
            flags::DUMP,
            TcMsg {
                ifindex: ifindex as i32,
                ..TcMsg::default()
            },
        ))?;
        Ok(replies
            .iter()
            .filter(|r| r.kind == rtm::NEWQDISC)
            .filter_map(|r| r.tc())
            .filter(|(h, _)| h.ifindex == ifindex as i32)
            .filter_map(|(_, attrs)| attrs.string(TCA_KIND))
            .collect())
    }

    /// Removes the device's clsact qdisc (and every filter on it).
    pub fn delete_clsact(&self, ifindex: u32) -> io::Result<()> {
        self.request(Self::clsact(rtm::DELQDISC, 0, ifindex))
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
        let req = filter_request(
            ifindex,
            direction,
            priority,
            prog.as_raw_fd(),
            name,
            replace,
        );
        self.request(req).map(drop)
    }

    /// Deletes the filters at `priority`; `Ok(false)` if there were none.
    pub fn delete_filter(
        &self,
        ifindex: u32,
        direction: Direction,
        priority: u16,
    ) -> io::Result<bool> {
        let req = Request::tc(
            rtm::DELTFILTER,
            0,
            TcMsg {
                ifindex: ifindex as i32,
                parent: direction.parent(),
                info: u32::from(priority) << 16,
                ..TcMsg::default()
            },
        );
        match self.request(req) {
            Ok(_) => Ok(true),
            Err(e) if matches!(netlink::errno(&e), Some(libc::ENOENT) | Some(libc::EINVAL)) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether any filter is on the device's clsact qdisc, either way.
    pub fn has_filters(&self, ifindex: u32) -> io::Result<bool> {
        for d in [Direction::Ingress, Direction::Egress] {
            if !self.filters(ifindex, d)?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every filter on one direction of a device: (priority, kind, BPF details if a bpf filter).
    pub fn filters(
        &self,
        ifindex: u32,
        direction: Direction,
    ) -> io::Result<Vec<(u16, String, Option<BpfFilter>)>> {
        let req = Request::tc(
            rtm::GETTFILTER,
            flags::DUMP,
            TcMsg {
                ifindex: ifindex as i32,
                parent: direction.parent(),
                ..TcMsg::default()
            },
        );
        let replies = match self.request(req) {
            Ok(r) => r,
            // No clsact qdisc: no filters.
            Err(e) if matches!(netlink::errno(&e), Some(libc::EINVAL) | Some(libc::ENOENT)) => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for r in replies.iter().filter(|r| r.kind == rtm::NEWTFILTER) {
            let Some((header, attrs)) = r.tc() else {
                continue;
            };
            let priority = (header.info >> 16) as u16;
            let kind = attrs.string(TCA_KIND).unwrap_or_default();
            let options = attrs.nested(TCA_OPTIONS);
            // The dump lists the priority's chain head too, without options.
            if kind == "bpf" && options.is_none_or(|o| o.0.is_empty()) {
                continue;
            }
            let bpf =
                (kind == "bpf").then(|| bpf_filter(ifindex, direction, priority, &header, options));
            out.push((priority, kind, bpf));
        }
        Ok(out)
    }
}

/// The `RTM_NEWTFILTER` request for a direct-action bpf filter.
fn filter_request(
    ifindex: u32,
    direction: Direction,
    priority: u16,
    prog_fd: i32,
    name: &str,
    replace: bool,
) -> Request {
    let mode = if replace { flags::REPLACE } else { flags::EXCL };
    let mut req = Request::tc(
        rtm::NEWTFILTER,
        flags::CREATE | mode,
        TcMsg {
            ifindex: ifindex as i32,
            parent: direction.parent(),
            handle: 1,
            info: (u32::from(priority) << 16) | u32::from(ETH_P_ALL.to_be()),
            ..TcMsg::default()
        },
    );
    req.attr_str(TCA_KIND, "bpf")
        .begin(TCA_OPTIONS)
        .attr_u32(TCA_BPF_FD, prog_fd as u32)
        .attr_str(TCA_BPF_NAME, name)
        .attr_u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT)
        .end();
    req
}

fn bpf_filter(
    ifindex: u32,
    direction: Direction,
    priority: u16,
    header: &TcMsg,
    options: Option<Attrs<'_>>,
) -> BpfFilter {
    let options = options.unwrap_or(Attrs(&[]));
    let mut tag = [0; 8];
    if let Some(t) = options.get(TCA_BPF_TAG).and_then(|t| t.get(..8)) {
        tag.copy_from_slice(t);
    }
    BpfFilter {
        ifindex,
        direction,
        priority,
        handle: header.handle,
        name: options.string(TCA_BPF_NAME).unwrap_or_default(),
        prog_id: options.u32(TCA_BPF_ID).unwrap_or(0),
        tag,
        direct_action: options
            .u32(TCA_BPF_FLAGS)
            .is_some_and(|f| f & TCA_BPF_FLAG_ACT_DIRECT != 0),
    }
}

#[cfg(test)]
mod tests {
    //! The bytes we send, read back by netlink-packet-route (a dev-dependency
    //! only), and its bytes read by us.
    use super::*;
    use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
    use netlink_packet_route::tc::{
        TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
    };
    use netlink_packet_route::RouteNetlinkMessage;

    fn parse(mut req: Request) -> (u16, TcMessage) {
        let bytes = req.wire();
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).unwrap();
        let flags = msg.header.flags;
        match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewTrafficFilter(m))
            | NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewQueueDiscipline(m)) => {
                (flags, m)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn filter_request_is_what_tc_sends() {
        let (flags, m) = parse(filter_request(7, Direction::Egress, 3, 42, "o:[p]", false));
        assert_eq!(flags, 0x01 | 0x400 | 0x200);
        assert_eq!(m.header.index, 7);
        assert_eq!(m.header.parent, TcHandle::from(0xFFFF_FFF3));
        assert_eq!(m.header.info, (3 << 16) | u32::from(0x0003u16.to_be()));
        assert!(m.attributes.contains(&TcAttribute::Kind("bpf".into())));
        let options = m.attributes.iter().find_map(|a| match a {
            TcAttribute::Options(o) => Some(o.clone()),
            _ => None,
        });
        assert_eq!(
            options.unwrap(),
            vec![
                TcOption::Bpf(TcFilterBpfOption::ProgFd(42)),
                TcOption::Bpf(TcFilterBpfOption::ProgName("o:[p]".into())),
                TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
            ]
        );
        let (flags, _) = parse(filter_request(7, Direction::Egress, 3, 42, "o", true));
        assert_eq!(flags, 0x01 | 0x400 | 0x100);
    }

    #[test]
    fn clsact_request_is_what_tc_sends() {
        let (_, m) = parse(Tc::clsact(rtm::NEWQDISC, flags::CREATE, 5));
        assert_eq!(m.header.index, 5);
        assert_eq!(m.header.parent, TcHandle::from(TC_H_CLSACT));
        assert_eq!(m.header.handle, TcHandle::from(0xFFFF_0000));
        assert_eq!(m.attributes, vec![TcAttribute::Kind("clsact".into())]);
    }

    #[test]
    fn filter_dump_replies_are_read() {
        use netlink_packet_core::Emitable;
        let mut m = TcMessage::default();
        m.header.index = 9;
        m.header.parent = TcHandle::from(0xFFFF_FFF2);
        m.header.handle = TcHandle::from(1);
        m.header.info = 5 << 16;
        m.attributes.push(TcAttribute::Kind("bpf".into()));
        m.attributes.push(TcAttribute::Options(vec![
            TcOption::Bpf(TcFilterBpfOption::ProgName("x.o:[mark]".into())),
            TcOption::Bpf(TcFilterBpfOption::ProgId(77)),
            TcOption::Bpf(TcFilterBpfOption::ProgTag([1, 2, 3, 4, 5, 6, 7, 8])),
            TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
        ]));
        let mut payload = vec![0; m.buffer_len()];
        m.emit(&mut payload);
        let reply = netlink::Reply {
            kind: rtm::NEWTFILTER,
            payload,
        };
        let (header, attrs) = reply.tc().unwrap();
        assert_eq!(attrs.string(TCA_KIND).as_deref(), Some("bpf"));
        let f = bpf_filter(9, Direction::Ingress, 5, &header, attrs.nested(TCA_OPTIONS));
        assert_eq!(
            f,
            BpfFilter {
                ifindex: 9,
                direction: Direction::Ingress,
                priority: 5,
                handle: 1,
                name: "x.o:[mark]".into(),
                prog_id: 77,
                tag: [1, 2, 3, 4, 5, 6, 7, 8],
                direct_action: true,
            }
        );
    }
}
