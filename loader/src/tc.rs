//! rtnetlink: the `clsact` qdisc, direct-action `cls_bpf` filters and a
//! device's XDP program, as tc, ip and libbpf make them.
//!
//! Every message is a netlink-packet-route type, exchanged through an
//! rtnetlink handle whose connection runs on the caller's tokio runtime:
//! the functions here are `async`. Programs without a runtime use
//! [`crate::blocking`]. rtnetlink's builders have no clsact kind and no
//! cls_bpf option, so those requests are built from netlink-packet-route's
//! `TcMessage` and sent with the handle's `request`. None of those types
//! is part of rawbpf's API: [`Tc`] takes and returns rawbpf's own
//! ([`Direction`], [`TcFilter`], [`BpfFilter`], [`XdpAttached`]), and
//! [`NetlinkError`] carries the kernel's errno and words.
//!
//! A [`Tc`] talks to the network namespace it was opened in, whatever
//! namespace the runtime's threads are in later.

use futures_util::StreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkMessage, LinkXdp};
use netlink_packet_route::tc::{
    TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::Emitable as _;
use rtnetlink::packet_core::{
    ErrorMessage, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, NLM_F_ACK,
    NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The clsact qdisc's handle, `ffff:0`.
const CLSACT_HANDLE: TcHandle = TcHandle {
    major: 0xFFFF,
    minor: 0,
};

pub use crate::hook::Direction;

/// The clsact parent a direction's filters hang on.
fn parent_handle(d: Direction) -> TcHandle {
    TcHandle {
        major: 0xFFFF,
        minor: d.parent_minor(),
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

/// One filter on a clsact direction, as a dump lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcFilter {
    /// Its priority (tc's `prio`).
    pub priority: u16,
    /// Its kind (`bpf`, `u32`, `flower`, ...).
    pub kind: String,
    /// For a `bpf` filter: its program and flags.
    pub bpf: Option<BpfFilter>,
}

/// A netlink request that failed.
#[derive(thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused the request: its errno and, when it said one, why
    /// (the extended ack).
    #[error("{}{}", io::Error::from_raw_os_error(*errno), ext_ack.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kernel {
        /// The errno.
        errno: i32,
        /// The kernel's extended-ack text.
        ext_ack: Option<String>,
    },
    /// The netlink socket could not be opened or used.
    #[error(transparent)]
    Socket(#[from] io::Error),
    /// The connection ended before the kernel answered, or answered with
    /// something other than the request's reply.
    #[error("netlink: {0}")]
    Protocol(ProtocolError),
    /// A netlink function was called outside a tokio runtime.
    #[error("rawbpf's netlink functions run on a tokio runtime (rawbpf::blocking runs them without one)")]
    NoRuntime,
}

/// How a netlink exchange went wrong without an errno from the kernel.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The kernel answered with something other than the request's reply.
    #[error("an unexpected reply")]
    UnexpectedReply,
    /// The connection stopped before the reply came.
    #[error("the connection stopped before the reply")]
    ConnectionStopped,
    /// The request or the reply could not be encoded or decoded.
    #[error("an invalid request or reply")]
    InvalidMessage,
}

impl NetlinkError {
    /// The kernel's errno, for an error the kernel answered with (or the
    /// socket's).
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            NetlinkError::Socket(e) => e.raw_os_error(),
            _ => None,
        }
    }

    /// Reads an `NLMSG_ERROR` message. rawbpf's sockets ask for capped acks
    /// (`NETLINK_CAP_ACK`) with extended acks (`NETLINK_EXT_ACK`): after the
    /// errno comes the request's 16-byte header, then `NLMSGERR_ATTR_*`.
    pub(crate) fn from_kernel(e: &ErrorMessage) -> NetlinkError {
        /// `NLMSGERR_ATTR_MSG`: the extended ack's text.
        const NLMSGERR_ATTR_MSG: u16 = 1;
        let tlvs = e.header.get(NetlinkHeader::default().buffer_len()..);
        let ext_ack = tlvs.and_then(|t| {
            NlasIterator::new(t).flatten().find_map(|nla| {
                (nla.kind() == NLMSGERR_ATTR_MSG).then(|| {
                    let v = nla.value();
                    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
                    String::from_utf8_lossy(&v[..end]).into_owned()
                })
            })
        });
        NetlinkError::Kernel {
            errno: -e.raw_code(),
            ext_ack: ext_ack.filter(|m| !m.is_empty()),
        }
    }

    /// From an error of one of rtnetlink's request builders.
    pub(crate) fn from_rtnetlink(e: rtnetlink::Error) -> NetlinkError {
        match e {
            rtnetlink::Error::NetlinkError(m) => NetlinkError::from_kernel(&m),
            // Not `to_string`: that prints a whole message with `{:?}`,
            // which links the Debug code of every message type.
            rtnetlink::Error::UnexpectedMessage(_) => {
                NetlinkError::Protocol(ProtocolError::UnexpectedReply)
            }
            rtnetlink::Error::RequestFailed => {
                NetlinkError::Protocol(ProtocolError::ConnectionStopped)
            }
            _ => NetlinkError::Protocol(ProtocolError::InvalidMessage),
        }
    }
}

/// An rtnetlink connection in one network namespace.
#[derive(Clone)]
pub struct Tc {
    handle: rtnetlink::Handle,
}

impl Tc {
    /// Opens a netlink socket in the calling thread's network namespace and
    /// spawns its connection on the current tokio runtime. The socket stays
    /// in that namespace: open it inside [`crate::netns::run_in`] to talk to
    /// another one.
    pub fn open() -> Result<Tc, NetlinkError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NetlinkError::NoRuntime)?;
        let (mut conn, handle, _) = rtnetlink::new_connection()?;
        let socket = rtnetlink::sys::AsyncSocket::socket_mut(conn.socket_mut());
        // The kernel's reason for a refusal, and errors that echo only the
        // request's header. Kernels without them still answer with an errno.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        runtime.spawn(conn);
        Ok(Tc { handle })
    }

    /// rtnetlink's handle, for its request builders (the lab's veth pair
    /// and addresses). Not public: rtnetlink's types are not rawbpf's API.
    pub(crate) fn handle(&self) -> &rtnetlink::Handle {
        &self.handle
    }

    /// Sends one request and collects the replies; an `NLMSG_ERROR` with an
    /// errno becomes [`NetlinkError::Kernel`].
    async fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | flags;
        let mut replies = self
            .handle
            .clone()
            .request(req)
            .map_err(NetlinkError::from_rtnetlink)?;
        let mut out = Vec::new();
        while let Some(m) = replies.next().await {
            match m.payload {
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(NetlinkError::from_kernel(&e))
                }
                NetlinkPayload::InnerMessage(inner) => out.push(inner),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Index, name and XDP program of every device.
    pub async fn devices(&self) -> Result<Vec<(u32, String, Option<XdpAttached>)>, NetlinkError> {
        let replies = self
            .request(RouteNetlinkMessage::GetLink(link_query(0)), NLM_F_DUMP)
            .await?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => {
                    let name = l.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })?;
                    Some((l.header.index, name, read_xdp(&l)))
                }
                _ => None,
            })
            .collect())
    }

    /// Adds a clsact qdisc unless the device has one; says whether it added it.
    pub async fn ensure_clsact(&self, ifindex: u32) -> Result<bool, NetlinkError> {
        let msg = RouteNetlinkMessage::NewQueueDiscipline(clsact_message(ifindex));
        match self
            .request(msg, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The kinds of the device's qdiscs (`clsact`, `noqueue`, ...).
    pub async fn qdisc_kinds(&self, ifindex: u32) -> Result<Vec<String>, NetlinkError> {
        let msg = RouteNetlinkMessage::GetQueueDiscipline(TcMessage::with_index(ifindex as i32));
        let replies = self.request(msg, NLM_F_DUMP).await?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewQueueDiscipline(m) if m.header.index == ifindex as i32 => {
                    kind_of(&m)
                }
                _ => None,
            })
            .collect())
    }

    /// Removes the device's clsact qdisc (and every filter on it).
    pub async fn delete_clsact(&self, ifindex: u32) -> Result<(), NetlinkError> {
        let msg = RouteNetlinkMessage::DelQueueDiscipline(clsact_message(ifindex));
        self.request(msg, NLM_F_ACK).await.map(drop)
    }

    /// Adds a direct-action BPF filter (protocol all) at `priority`, handle 1.
    /// With `replace`, an existing filter there is swapped atomically
    /// (`NLM_F_REPLACE`); without, an existing one is an `EEXIST` error.
    pub async fn add_bpf_filter(
        &self,
        ifindex: u32,
        direction: Direction,
        priority: u16,
        prog: BorrowedFd<'_>,
        name: &str,
        replace: bool,
    ) -> Result<(), NetlinkError> {
        let msg = filter_message(ifindex, direction, priority, prog.as_raw_fd(), name);
        let mode = if replace { NLM_F_REPLACE } else { NLM_F_EXCL };
        self.request(
            RouteNetlinkMessage::NewTrafficFilter(msg),
            NLM_F_ACK | NLM_F_CREATE | mode,
        )
        .await
        .map(drop)
    }

    /// Deletes the filters at `priority`; `Ok(false)` if there were none.
    pub async fn delete_filter(
        &self,
        ifindex: u32,
        direction: Direction,
        priority: u16,
    ) -> Result<bool, NetlinkError> {
        let mut msg = TcMessage::with_index(ifindex as i32);
        msg.header.parent = parent_handle(direction);
        msg.header.info = u32::from(priority) << 16;
        match self
            .request(RouteNetlinkMessage::DelTrafficFilter(msg), NLM_F_ACK)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.errno(), Some(libc::ENOENT) | Some(libc::EINVAL)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every filter on one direction of a device.
    pub async fn filters(
        &self,
        ifindex: u32,
        direction: Direction,
    ) -> Result<Vec<TcFilter>, NetlinkError> {
        let mut msg = TcMessage::with_index(ifindex as i32);
        msg.header.parent = parent_handle(direction);
        let replies = match self
            .request(RouteNetlinkMessage::GetTrafficFilter(msg), NLM_F_DUMP)
            .await
        {
            Ok(r) => r,
            // No clsact qdisc: no filters.
            Err(e) if matches!(e.errno(), Some(libc::EINVAL) | Some(libc::ENOENT)) => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(e),
        };
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewTrafficFilter(m) => read_filter(&m, ifindex, direction),
                _ => None,
            })
            .collect())
    }

    /// The XDP program attached to a device, if any: its id and the mode
    /// the kernel runs it in.
    pub async fn xdp(&self, ifindex: u32) -> Result<Option<XdpAttached>, NetlinkError> {
        Ok(self
            .link(link_query(ifindex))
            .await?
            .and_then(|(_, xdp)| xdp))
    }

    /// A device by name: its index and XDP program, in one request. No
    /// such device (or a name longer than any device's) is `ENODEV`.
    pub async fn link_by_name(
        &self,
        name: &str,
    ) -> Result<(u32, Option<XdpAttached>), NetlinkError> {
        let no_device = NetlinkError::Kernel {
            errno: libc::ENODEV,
            ext_ack: None,
        };
        if name.len() >= libc::IFNAMSIZ {
            return Err(no_device);
        }
        let mut query = link_query(0);
        query
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        self.link(query).await?.ok_or(no_device)
    }

    /// One `RTM_GETLINK`: the device's index and XDP program.
    async fn link(
        &self,
        query: LinkMessage,
    ) -> Result<Option<(u32, Option<XdpAttached>)>, NetlinkError> {
        let replies = self.request(RouteNetlinkMessage::GetLink(query), 0).await?;
        Ok(replies.into_iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(l) => Some((l.header.index, read_xdp(&l))),
            _ => None,
        }))
    }

    /// Sets a device's XDP program (`IFLA_XDP`): `prog` with `flags`
    /// ([`crate::uapi::xdp_flags`]), or with `None`, removes the one in the
    /// mode `flags` names.
    pub async fn set_xdp(
        &self,
        ifindex: u32,
        prog: Option<BorrowedFd<'_>>,
        flags: u32,
    ) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = ifindex;
        msg.attributes.push(LinkAttribute::Xdp(vec![
            LinkXdp::Fd(prog.map_or(-1, |p| p.as_raw_fd())),
            LinkXdp::Flags(flags),
        ]));
        self.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
            .await
            .map(drop)
    }
}

/// An `RTM_GETLINK` for one device (0: all) that asks the kernel to leave
/// out the statistics: rawbpf reads names and XDP only, and filling in
/// every counter is most of the kernel's work for a link message.
fn link_query(ifindex: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    msg
}

/// An XDP program on a device, as `RTM_GETLINK` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XdpAttached {
    /// The program's id.
    pub prog_id: u32,
    /// The mode: "native", "generic" or "offload" (`XDP_ATTACHED_*`).
    pub mode: &'static str,
}

fn read_xdp(l: &LinkMessage) -> Option<XdpAttached> {
    use netlink_packet_route::link::XdpAttached as A;
    let xdp = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Xdp(x) => Some(x),
        _ => None,
    })?;
    let mut mode = None;
    let mut prog_id = 0;
    for x in xdp {
        match x {
            LinkXdp::Attached(A::Driver) => mode = Some("native"),
            LinkXdp::Attached(A::SocketBuffer) => mode = Some("generic"),
            LinkXdp::Attached(A::Hardware) => mode = Some("offload"),
            LinkXdp::Attached(A::Multiple) => mode = mode.or(Some("multiple")),
            LinkXdp::ProgId(id) => prog_id = *id,
            _ => {}
        }
    }
    Some(XdpAttached {
        prog_id,
        mode: mode?,
    })
    .filter(|x| x.prog_id != 0)
}

fn kind_of(m: &TcMessage) -> Option<String> {
    m.attributes.iter().find_map(|a| match a {
        TcAttribute::Kind(k) => Some(k.clone()),
        _ => None,
    })
}

fn clsact_message(ifindex: u32) -> TcMessage {
    let mut msg = TcMessage::with_index(ifindex as i32);
    msg.header.parent = TcHandle::CLSACT;
    msg.header.handle = CLSACT_HANDLE;
    msg.attributes.push(TcAttribute::Kind("clsact".into()));
    msg
}

/// The `RTM_NEWTFILTER` message for a direct-action bpf filter.
fn filter_message(
    ifindex: u32,
    direction: Direction,
    priority: u16,
    prog_fd: i32,
    name: &str,
) -> TcMessage {
    let mut msg = TcMessage::with_index(ifindex as i32);
    msg.header.parent = parent_handle(direction);
    msg.header.handle = TcHandle::from(1);
    msg.header.info = (u32::from(priority) << 16) | u32::from((libc::ETH_P_ALL as u16).to_be());
    msg.attributes.push(TcAttribute::Kind("bpf".into()));
    msg.attributes.push(TcAttribute::Options(vec![
        TcOption::Bpf(TcFilterBpfOption::ProgFd(prog_fd as u32)),
        TcOption::Bpf(TcFilterBpfOption::ProgName(name.to_owned())),
        TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
    ]));
    msg
}

/// One entry of a filter dump. The dump lists each priority's chain head
/// too, without options: that is skipped.
fn read_filter(m: &TcMessage, ifindex: u32, direction: Direction) -> Option<TcFilter> {
    let priority = (m.header.info >> 16) as u16;
    let kind = kind_of(m).unwrap_or_default();
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
    if kind != "bpf" {
        return Some(TcFilter {
            priority,
            kind,
            bpf: None,
        });
    }
    if options.is_empty() {
        return None;
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
            TcFilterBpfOption::Flags(f) => bpf.direct_action = f.contains(TcBpfFlags::DirectAction),
            _ => {}
        }
    }
    Some(TcFilter {
        priority,
        kind,
        bpf: Some(bpf),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel receives for a filter: the bytes of our message, as
    /// netlink-packet-route writes them, carry what tc(8) would send.
    #[test]
    fn filter_message_is_a_direct_action_bpf_filter() {
        let msg = filter_message(7, Direction::Egress, 3, 42, "pipeline.bpf.o:[mark_packet]");
        assert_eq!(msg.header.index, 7);
        assert_eq!(u32::from(msg.header.parent), 0xFFFF_FFF3);
        assert_eq!(u32::from(msg.header.handle), 1);
        // Priority 3, protocol ETH_P_ALL in network byte order.
        assert_eq!(msg.header.info, (3 << 16) | 0x0300);
        let mut full = NetlinkMessage::from(RouteNetlinkMessage::NewTrafficFilter(msg));
        full.finalize();
        let mut bytes = vec![0; full.buffer_len()];
        full.serialize(&mut bytes);
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewTrafficFilter(back)) =
            back.payload
        else {
            panic!("not a filter: {back:?}");
        };
        let filter = read_filter(&back, 7, Direction::Egress).unwrap();
        assert_eq!((filter.priority, filter.kind.as_str()), (3, "bpf"));
        let bpf = filter.bpf.unwrap();
        assert_eq!(bpf.name, "pipeline.bpf.o:[mark_packet]");
        assert!(bpf.direct_action);
    }

    #[test]
    fn clsact_sits_at_ffff_fff1_with_handle_ffff_0() {
        let m = clsact_message(3);
        assert_eq!(u32::from(m.header.parent), 0xFFFF_FFF1);
        assert_eq!(u32::from(m.header.handle), 0xFFFF_0000);
        assert_eq!(kind_of(&m).as_deref(), Some("clsact"));
        assert_eq!(Direction::Ingress.parent(), 0xFFFF_FFF2);
    }

    #[test]
    fn kernel_errors_carry_errno_and_extended_ack() {
        // errno -17, the capped echo of a 16-byte header, then
        // NLMSGERR_ATTR_MSG "exists".
        let mut header = vec![0u8; 16];
        header.extend_from_slice(&[11, 0, 1, 0]);
        header.extend_from_slice(b"exists\0\0");
        let mut e = ErrorMessage::default();
        e.code = std::num::NonZeroI32::new(-17);
        e.header = header;
        let e = NetlinkError::from_kernel(&e);
        assert_eq!(e.errno(), Some(libc::EEXIST));
        assert_eq!(e.to_string(), "File exists (os error 17): exists");
        // Without an extended ack: the errno's text alone.
        let mut bare = ErrorMessage::default();
        bare.code = std::num::NonZeroI32::new(-22);
        bare.header = vec![0; 16];
        assert_eq!(
            NetlinkError::from_kernel(&bare).to_string(),
            "Invalid argument (os error 22)"
        );
    }

    #[test]
    fn xdp_reads_mode_and_program() {
        use netlink_packet_route::link::XdpAttached as A;
        let mut l = LinkMessage::default();
        assert_eq!(read_xdp(&l), None);
        l.attributes.push(LinkAttribute::Xdp(vec![
            LinkXdp::Attached(A::SocketBuffer),
            LinkXdp::ProgId(9),
        ]));
        assert_eq!(
            read_xdp(&l),
            Some(XdpAttached {
                prog_id: 9,
                mode: "generic"
            })
        );
        let mut none = LinkMessage::default();
        none.attributes
            .push(LinkAttribute::Xdp(vec![LinkXdp::Attached(A::None)]));
        assert_eq!(read_xdp(&none), None);
    }
}

debug_is_display!(NetlinkError, ProtocolError);
