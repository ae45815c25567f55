//! A throwaway two-host network for `rawbpf demo` and the traffic tests:
//! two network namespaces joined by a veth pair, with IPv4 and IPv6
//! addresses, and UDP between them. Dropping a [`Lab`] deletes both
//! namespaces, and the veth pair with them.

use crate::netns::{self, NetnsError};
use crate::tc::{NetlinkError, Tc};
use netlink_packet_route::address::AddressFlags;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkMessage};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

/// What went wrong building or using the lab.
#[derive(thiserror::Error)]
pub enum LabError {
    /// A namespace could not be made, entered or deleted.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// A netlink request failed.
    #[error("{action}: {source}")]
    Netlink {
        /// What was being done.
        action: &'static str,
        /// Why.
        source: NetlinkError,
    },
    /// A socket operation failed.
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
        crate::blocking::block_on(async {
            let a = netns::run_in(Some(&lab.ns_a), Tc::open)?.map_err(nl_err("opening netlink"))?;
            a.handle()
                .link()
                .add(veth_message(
                    &lab.dev_a,
                    &lab.dev_b,
                    ns_b.as_fd().as_raw_fd(),
                ))
                .execute()
                .await
                .map_err(|e| nl_err("creating the veth pair")(NetlinkError::from_rtnetlink(e)))?;
            configure(&a, &lab.ns_a, &lab.dev_a, ADDR_A, ADDR6_A).await?;
            let b = netns::run_in(Some(&lab.ns_b), Tc::open)?.map_err(nl_err("opening netlink"))?;
            configure(&b, &lab.ns_b, &lab.dev_b, ADDR_B, ADDR6_B).await
        })
        .map_err(nl_err("starting the netlink runtime"))??;
        Ok(lab)
    }

    /// A socket bound in namespace b on `port` (0: any), IPv4 with TOS
    /// reporting, and its IPv6 twin for the end-of-batch sentinel.
    pub fn receiver(&self, port: u16) -> Result<Receiver, LabError> {
        netns::run_in(Some(&self.ns_b), || -> Result<Receiver, LabError> {
            let v4 = UdpSocket::bind((ADDR_B, port)).map_err(io_err("binding the receiver"))?;
            set_recv_tos(v4.as_fd()).map_err(io_err("asking for IP_RECVTOS"))?;
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

fn nl_err(action: &'static str) -> impl FnOnce(NetlinkError) -> LabError {
    move |source| LabError::Netlink { action, source }
}

/// The `RTM_NEWLINK` message for a veth pair whose peer is made straight in
/// the namespace `peer_ns_fd` refers to.
fn veth_message(dev: &str, peer: &str, peer_ns_fd: i32) -> LinkMessage {
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.to_owned())
        .setns_by_fd(peer_ns_fd)
        .build();
    LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(dev.to_owned())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build()
}

/// Brings `lo` and `dev` up and gives `dev` its addresses (IPv6 without
/// duplicate address detection, so it works at once).
async fn configure(
    tc: &Tc,
    ns: &str,
    dev: &str,
    v4: Ipv4Addr,
    v6: Ipv6Addr,
) -> Result<(), LabError> {
    let index = |name: &str| {
        netns::run_in(Some(ns), || nix::net::if_::if_nametoindex(name))?
            .map_err(|e| io_err("finding a device")(io::Error::from(e)))
    };
    let mut dev_index = 0;
    for name in ["lo", dev] {
        dev_index = index(name)?;
        tc.handle()
            .link()
            .set(LinkUnspec::new_with_index(dev_index).up().build())
            .execute()
            .await
            .map_err(|e| nl_err("bringing a device up")(NetlinkError::from_rtnetlink(e)))?;
    }
    tc.handle()
        .address()
        .add(dev_index, IpAddr::V4(v4), 24)
        .execute()
        .await
        .map_err(|e| nl_err("adding the IPv4 address")(NetlinkError::from_rtnetlink(e)))?;
    let mut add6 = tc.handle().address().add(dev_index, IpAddr::V6(v6), 64);
    add6.message_mut()
        .attributes
        .push(netlink_packet_route::address::AddressAttribute::Flags(
            AddressFlags::Nodad,
        ));
    add6.execute()
        .await
        .map_err(|e| nl_err("adding the IPv6 address")(NetlinkError::from_rtnetlink(e)))?;
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
            match recv_with_tos(self.v4.as_fd(), &mut buf) {
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

/// Asks a UDP socket to report each datagram's IPv4 TOS byte (`IP_RECVTOS`).
fn set_recv_tos(sock: BorrowedFd<'_>) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt::IpRecvTos};
    setsockopt(&sock, IpRecvTos, &true)?;
    Ok(())
}

/// Receives one datagram into `buf`; returns its length and, if the socket
/// has `IP_RECVTOS` on, the TOS byte it carried.
fn recv_with_tos(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<u8>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut iov = [io::IoSliceMut::new(buf)];
    // Room for the one cmsg asked for: IP_TOS, a byte (padded as cmsgs are).
    let mut control = nix::cmsg_space!(u8);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )?;
    // A truncated control buffer (MSG_CTRUNC) is an error to nix: no TOS then.
    let tos = msg
        .cmsgs()
        .ok()
        .into_iter()
        .flatten()
        .find_map(|c| match c {
            ControlMessageOwned::Ipv4Tos(tos) => Some(tos),
            _ => None,
        });
    Ok((msg.bytes, tos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::{LinkAttribute, LinkInfo};

    /// The veth message makes the peer straight in the other namespace.
    #[test]
    fn veth_message_is_a_veth_pair() {
        let link = veth_message("va", "vb", 11);
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
        assert!(peer
            .attributes
            .contains(&LinkAttribute::IfName("vb".into())));
        assert!(peer.attributes.contains(&LinkAttribute::NetNsFd(11)));
    }
}

debug_is_display!(LabError);
