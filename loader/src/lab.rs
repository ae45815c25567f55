//! A throwaway two-host network for `rawbpf demo` and the traffic tests:
//! two network namespaces joined by a veth pair, with IPv4 and IPv6
//! addresses, and UDP between them. Dropping a [`Lab`] deletes both
//! namespaces, and the veth pair with them.

use crate::netlink::{flags, rtm, IfAddrMsg, IfInfoMsg, Request};
use crate::netns::{self, NetnsError};
use crate::tc::Tc;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

/// What went wrong building or using the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A namespace could not be made, entered or deleted.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// A netlink or socket operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Why.
        source: io::Error,
    },
}

fn io_err(action: &'static str) -> impl FnOnce(io::Error) -> LabError {
    move |source| LabError::Io { action, source }
}

// Attribute numbers and flags (`linux/if_link.h`, `linux/veth.h`,
// `linux/if_addr.h`).
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_F_NODAD: u8 = 0x02;
const IFF_UP: u32 = 1;

/// Sender side: namespace `a`, device `dev_a`, 10.199.0.1 / fd00:199::1.
/// Receiver side: namespace `b`, device `dev_b`, 10.199.0.2 / fd00:199::2.
pub struct Lab {
    /// The sender's namespace.
    pub ns_a: String,
    /// The receiver's namespace.
    pub ns_b: String,
    /// The sender's veth end.
    pub dev_a: String,
    /// The receiver's veth end.
    pub dev_b: String,
}

/// IPv4 address of side a.
pub const ADDR_A: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 1);
/// IPv4 address of side b.
pub const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 2);
const ADDR6_A: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x199, 0, 0, 0, 0, 0, 1);
const ADDR6_B: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x199, 0, 0, 0, 0, 0, 2);

/// What arrived in one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrivals {
    /// IPv4 datagrams received.
    pub count: usize,
    /// Their TOS bytes, in order.
    pub tos: Vec<u8>,
}

impl Lab {
    /// Creates the namespaces `<prefix>-a`/`<prefix>-b` and the veth pair
    /// `<prefix>a`/`<prefix>b` (device names are cut to 15 bytes).
    pub fn create(prefix: &str) -> Result<Lab, LabError> {
        let short: String = prefix.chars().take(13).collect();
        let lab = Lab {
            ns_a: format!("{prefix}-a"),
            ns_b: format!("{prefix}-b"),
            dev_a: format!("{short}a"),
            dev_b: format!("{short}b"),
        };
        netns::create(&lab.ns_a)?;
        // From here on, dropping `lab` on an error cleans up whatever was made
        // (deleting a namespace that was not created fails harmlessly).
        netns::create(&lab.ns_b)?;
        let ns_b = File::open(std::path::Path::new(netns::NETNS_DIR).join(&lab.ns_b))
            .map_err(io_err("opening the receiver's namespace"))?;
        netns::run_in(Some(&lab.ns_a), || -> Result<(), LabError> {
            let tc = Tc::new().map_err(io_err("opening netlink"))?;
            let req = veth_request(&lab.dev_a, &lab.dev_b, ns_b.as_fd().as_raw_fd());
            tc.request(req).map_err(io_err("creating the veth pair"))?;
            configure(&tc, &lab.dev_a, ADDR_A, ADDR6_A)
        })??;
        netns::run_in(Some(&lab.ns_b), || -> Result<(), LabError> {
            let tc = Tc::new().map_err(io_err("opening netlink"))?;
            configure(&tc, &lab.dev_b, ADDR_B, ADDR6_B)
        })??;
        Ok(lab)
    }

    /// A socket bound in namespace b on `port` (0: any), IPv4 with TOS
    /// reporting, and its IPv6 twin for the end-of-batch sentinel.
    pub fn receiver(&self, port: u16) -> Result<Receiver, LabError> {
        netns::run_in(Some(&self.ns_b), || -> Result<Receiver, LabError> {
            let v4 = UdpSocket::bind((ADDR_B, port)).map_err(io_err("binding the receiver"))?;
            crate::sys::set_recv_tos(v4.as_fd()).map_err(io_err("asking for IP_RECVTOS"))?;
            let port = v4
                .local_addr()
                .map_err(io_err("reading the receiver's port"))?
                .port();
            let v6 =
                UdpSocket::bind((ADDR6_B, port)).map_err(io_err("binding the IPv6 receiver"))?;
            for s in [&v4, &v6] {
                s.set_read_timeout(Some(Duration::from_secs(5)))
                    .map_err(io_err("setting a timeout"))?;
            }
            Ok(Receiver { v4, v6, port })
        })?
    }

    /// A socket in namespace a to send from.
    pub fn sender(&self) -> Result<Sender, LabError> {
        netns::run_in(Some(&self.ns_a), || -> Result<Sender, LabError> {
            Ok(Sender {
                v4: UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
                    .map_err(io_err("binding the sender"))?,
                v6: UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0))
                    .map_err(io_err("binding the IPv6 sender"))?,
            })
        })?
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = netns::delete(ns);
        }
    }
}

/// The `RTM_NEWLINK` request for a veth pair whose peer is made straight
/// in the namespace `peer_ns_fd` refers to.
fn veth_request(dev: &str, peer: &str, peer_ns_fd: i32) -> Request {
    let mut req = Request::link(
        rtm::NEWLINK,
        flags::CREATE | flags::EXCL,
        IfInfoMsg::default(),
    );
    req.attr_str(IFLA_IFNAME, dev)
        .begin(IFLA_LINKINFO)
        .attr_str(IFLA_INFO_KIND, "veth")
        .begin(IFLA_INFO_DATA)
        .begin_with_link(VETH_INFO_PEER, IfInfoMsg::default())
        .attr_str(IFLA_IFNAME, peer)
        .attr_u32(IFLA_NET_NS_FD, peer_ns_fd as u32);
    req
}

/// Brings `lo` and `dev` up and gives `dev` its addresses (IPv6 without
/// duplicate address detection, so it works at once).
fn configure(tc: &Tc, dev: &str, v4: Ipv4Addr, v6: Ipv6Addr) -> Result<(), LabError> {
    let mut index = 0;
    for name in ["lo", dev] {
        index = tc
            .ifindex(name)
            .map_err(io_err("finding a device"))?
            .unwrap_or(0);
        let up = IfInfoMsg {
            index: index as i32,
            flags: IFF_UP,
            change: IFF_UP,
            ..IfInfoMsg::default()
        };
        tc.request(Request::link(rtm::NEWLINK, 0, up))
            .map_err(io_err("bringing a device up"))?;
    }
    let header = IfAddrMsg {
        family: libc::AF_INET as u8,
        prefix_len: 24,
        index,
        ..IfAddrMsg::default()
    };
    let mut req = Request::addr(rtm::NEWADDR, flags::CREATE | flags::EXCL, header);
    req.attr(IFA_LOCAL, &v4.octets())
        .attr(IFA_ADDRESS, &v4.octets());
    tc.request(req).map_err(io_err("adding the IPv4 address"))?;
    let header = IfAddrMsg {
        family: libc::AF_INET6 as u8,
        prefix_len: 64,
        flags: IFA_F_NODAD,
        index,
        ..IfAddrMsg::default()
    };
    let mut req = Request::addr(rtm::NEWADDR, flags::CREATE | flags::EXCL, header);
    req.attr(IFA_ADDRESS, &v6.octets());
    tc.request(req).map_err(io_err("adding the IPv6 address"))?;
    Ok(())
}

/// The sending end.
pub struct Sender {
    v4: UdpSocket,
    v6: UdpSocket,
}

/// The receiving end.
pub struct Receiver {
    v4: UdpSocket,
    v6: UdpSocket,
    /// The port it listens on (IPv4 and IPv6).
    pub port: u16,
}

impl Sender {
    /// Sends `count` IPv4 datagrams to `port` on side b, then one IPv6
    /// datagram that marks the end of the batch.
    pub fn send_batch(&self, port: u16, count: usize) -> Result<(), LabError> {
        for i in 0..count {
            self.v4
                .send_to(
                    format!("rawbpf {i}").as_bytes(),
                    SocketAddr::new(IpAddr::V4(ADDR_B), port),
                )
                .map_err(io_err("sending"))?;
        }
        self.v6
            .send_to(b"end", SocketAddr::new(IpAddr::V6(ADDR6_B), port))
            .map_err(io_err("sending the end marker"))?;
        Ok(())
    }
}

impl Receiver {
    /// Waits for the batch's end marker, then takes every IPv4 datagram that
    /// arrived before it. The pipeline passes IPv6 untouched and veth keeps
    /// order, so once the marker is in, the batch has been through the filter.
    pub fn collect_batch(&self) -> Result<Arrivals, LabError> {
        let mut buf = [0u8; 64];
        self.v6
            .recv(&mut buf)
            .map_err(io_err("waiting for the end-of-batch marker"))?;
        self.v4.set_nonblocking(true).map_err(io_err("polling"))?;
        let mut arrivals = Arrivals {
            count: 0,
            tos: Vec::new(),
        };
        loop {
            match crate::sys::recv_with_tos(self.v4.as_fd(), &mut buf) {
                Ok((_, tos)) => {
                    arrivals.count += 1;
                    arrivals.tos.push(tos.unwrap_or(0));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(io_err("receiving")(e)),
            }
        }
        self.v4.set_nonblocking(false).map_err(io_err("polling"))?;
        Ok(arrivals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
    use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo};
    use netlink_packet_route::RouteNetlinkMessage;

    /// netlink-packet-route (a dev-dependency) reads our bytes as a veth pair.
    #[test]
    fn veth_request_is_a_veth_pair() {
        let bytes = veth_request("va", "vb", 11).wire();
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) = msg.payload else {
            panic!("not a new link: {msg:?}");
        };
        assert!(link
            .attributes
            .contains(&LinkAttribute::IfName("va".into())));
        let info = link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(i) => Some(i.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(info[0], LinkInfo::Kind(InfoKind::Veth));
        let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) = &info[1] else {
            panic!("no veth peer: {info:?}");
        };
        assert_eq!(
            peer.attributes,
            vec![
                LinkAttribute::IfName("vb".into()),
                LinkAttribute::NetNsFd(11)
            ]
        );
    }
}
