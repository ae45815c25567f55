//! Network hooks that are not a device's: network namespace links
//! (sk_lookup, flow_dissector), sockmap and sockhash programs (sk_msg,
//! sk_skb), netfilter links, and socket filters on a caller's socket.
//!
//! Each uses the newest mechanism the running kernel has, found by trying
//! it: a namespace link (5.8+; flow_dissector falls back to
//! `BPF_PROG_ATTACH` in the caller's own namespace), a sockmap link (6.10+;
//! `BPF_PROG_ATTACH` on the map before), a netfilter link (6.4+, no older
//! mechanism), `SO_ATTACH_BPF` for socket filters.

use super::{unsupported, AttachTargets, Attachment, Link, LinkError};
use crate::load::{Map, Program};
use crate::netns::{self, NetnsError};
use crate::obj::ProgramSpec;
use crate::sys;
use crate::uapi::{AttachType, MapType, ProgramType};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::str::FromStr;

/// Attaches a network program where its section says: sk_lookup and
/// flow_dissector programs to `targets.netns` (the caller's namespace when
/// `None`), netfilter programs at `targets.netfilter` in that namespace.
/// sk_msg and sk_skb programs need a map: [`attach_to_sockmap`].
pub(super) fn attach(
    program: &Program,
    spec: &ProgramSpec,
    targets: &AttachTargets,
) -> Result<Vec<Link>, LinkError> {
    let link = match spec.prog_type {
        ProgramType::SK_LOOKUP | ProgramType::FLOW_DISSECTOR => netns_link(program, spec, targets),
        ProgramType::NETFILTER => netfilter(program, spec, targets),
        ProgramType::SK_MSG | ProgramType::SK_SKB => Err(no_target(
            spec,
            "a sockmap or sockhash: attach it with link::net::attach_to_sockmap",
        )),
        _ => Err(unsupported(spec, format!("section {}", spec.section()))),
    };
    link.map(|l| vec![l])
}

fn no_target(spec: &ProgramSpec, needs: &'static str) -> LinkError {
    LinkError::NoTarget {
        program: spec.name().to_owned(),
        section: spec.section().to_owned(),
        needs,
    }
}

fn attach_failed(
    spec: &ProgramSpec,
    target: &str,
    action: &'static str,
) -> impl Fn(io::Error) -> LinkError {
    let (program, section, target) = (
        spec.name().to_owned(),
        spec.section().to_owned(),
        target.to_owned(),
    );
    move |source| LinkError::Attach {
        program: program.clone(),
        section: section.clone(),
        target: target.clone(),
        action,
        source,
    }
}

fn not_found(spec: &ProgramSpec, target: &str, source: io::Error) -> LinkError {
    LinkError::TargetNotFound {
        program: spec.name().to_owned(),
        section: spec.section().to_owned(),
        target: target.to_owned(),
        source,
    }
}

/// The namespace `targets.netns` names (opened like `ip netns`), or the
/// calling thread's own; with its name in words.
fn open_netns(spec: &ProgramSpec, targets: &AttachTargets) -> Result<(File, String), LinkError> {
    let Some(name) = targets.netns.as_deref() else {
        let file = File::open("/proc/thread-self/ns/net")
            .map_err(|e| not_found(spec, "the caller's network namespace", e))?;
        return Ok((file, "the caller's network namespace".to_owned()));
    };
    let words = format!("network namespace {name}");
    if name.is_empty() || name.contains('/') {
        return Err(not_found(
            spec,
            &words,
            io::Error::from_raw_os_error(libc::EINVAL),
        ));
    }
    let file = File::open(Path::new(netns::NETNS_DIR).join(name))
        .map_err(|e| not_found(spec, &words, e))?;
    Ok((file, words))
}

/// sk_lookup and flow_dissector: a link on the namespace. Kernels before
/// 5.8 have no namespace links; there a flow dissector is attached with
/// `BPF_PROG_ATTACH`, which (like its detach) acts on the calling
/// thread's namespace, so that fallback is taken only for the caller's own.
fn netns_link(
    program: &Program,
    spec: &ProgramSpec,
    targets: &AttachTargets,
) -> Result<Link, LinkError> {
    let attach_type = spec.attach_type.unwrap_or(match spec.prog_type {
        ProgramType::SK_LOOKUP => AttachType::SK_LOOKUP,
        _ => AttachType::FLOW_DISSECTOR,
    });
    let (ns, words) = open_netns(spec, targets)?;
    let target = format!("{words} {attach_type}");
    let failed = attach_failed(spec, &target, "BPF_LINK_CREATE");
    let attachment = match sys::link_create_fd(program.fd(), ns.as_fd(), attach_type.0, 0) {
        Ok(fd) => Attachment::Bpf(fd),
        Err(e)
            if e.raw_os_error() == Some(libc::EINVAL)
                && attach_type == AttachType::FLOW_DISSECTOR
                && targets.netns.is_none() =>
        {
            prog_attach(program, spec, &target, OwnedFd::from(ns), attach_type)?
        }
        Err(e) => return Err(failed(e)),
    };
    Ok(Link::new(spec.name(), target, attachment))
}

/// `BPF_PROG_ATTACH` of `program` on `target_fd`, as an attachment that
/// `BPF_PROG_DETACH` ends.
fn prog_attach(
    program: &Program,
    spec: &ProgramSpec,
    target: &str,
    target_fd: OwnedFd,
    attach_type: AttachType,
) -> Result<Attachment, LinkError> {
    let failed = attach_failed(spec, target, "BPF_PROG_ATTACH");
    // The fd that detaches it later is had before it is attached.
    let prog = program.fd().try_clone_to_owned().map_err(&failed)?;
    sys::prog_attach(target_fd.as_fd(), prog.as_fd(), attach_type, 0).map_err(&failed)?;
    Ok(Attachment::ProgAttach {
        target: target_fd,
        prog,
        attach_type,
    })
}

/// The protocol family of a netfilter hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NfFamily {
    /// `NFPROTO_IPV4`.
    Ipv4,
    /// `NFPROTO_IPV6`.
    Ipv6,
}

/// A netfilter hook of the inet families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NfHook {
    /// `NF_INET_PRE_ROUTING`: every packet received, before routing.
    PreRouting,
    /// `NF_INET_LOCAL_IN`: received packets for this host.
    LocalIn,
    /// `NF_INET_FORWARD`: packets routed through.
    Forward,
    /// `NF_INET_LOCAL_OUT`: packets this host sends.
    LocalOut,
    /// `NF_INET_POST_ROUTING`: every packet sent, after routing.
    PostRouting,
}

/// Where a netfilter program hooks, which its section cannot say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetfilterHook {
    /// The protocol family.
    pub family: NfFamily,
    /// The hook.
    pub hook: NfHook,
    /// Its place among the hook's functions (lower runs first; the
    /// kernel refuses `i32::MIN` and `i32::MAX`).
    pub priority: i32,
    /// Have IP fragments reassembled before the program sees them
    /// (`BPF_F_NETFILTER_IP_DEFRAG`, 6.6+).
    pub defrag: bool,
}

impl NetfilterHook {
    /// A hook without defragmentation.
    pub fn new(family: NfFamily, hook: NfHook, priority: i32) -> NetfilterHook {
        NetfilterHook {
            family,
            hook,
            priority,
            defrag: false,
        }
    }

    fn raw(self) -> sys::NetfilterHook {
        sys::NetfilterHook {
            pf: match self.family {
                NfFamily::Ipv4 => 2,
                NfFamily::Ipv6 => 10,
            },
            hooknum: self.hook as u32,
            priority: self.priority,
            flags: u32::from(self.defrag),
        }
    }
}

impl fmt::Display for NfFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NfFamily::Ipv4 => "ipv4",
            NfFamily::Ipv6 => "ipv6",
        })
    }
}

impl fmt::Display for NfHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NfHook::PreRouting => "prerouting",
            NfHook::LocalIn => "input",
            NfHook::Forward => "forward",
            NfHook::LocalOut => "output",
            NfHook::PostRouting => "postrouting",
        })
    }
}

/// `FAMILY:HOOK:PRIORITY`, with `:defrag` when it has defragmentation
/// (`ipv4:output:10`): what [`NetfilterHook::from_str`] reads back.
impl fmt::Display for NetfilterHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.family, self.hook, self.priority)?;
        if self.defrag {
            f.write_str(":defrag")?;
        }
        Ok(())
    }
}

impl FromStr for NetfilterHook {
    type Err = BadNetfilterName;

    /// `FAMILY:HOOK:PRIORITY[:defrag]` (`ipv4:output:10`,
    /// `ipv6:prerouting:-100:defrag`), as a command line gives it.
    fn from_str(s: &str) -> Result<NetfilterHook, BadNetfilterName> {
        let bad = || BadNetfilterName {
            what: "netfilter hook",
            name: s.to_owned(),
            expected: "FAMILY:HOOK:PRIORITY[:defrag], e.g. ipv4:output:10",
        };
        let mut parts = s.split(':');
        let (Some(family), Some(hook), Some(priority)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let defrag = match parts.next() {
            None => false,
            Some("defrag") => true,
            Some(_) => return Err(bad()),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(NetfilterHook {
            family: family.parse()?,
            hook: hook.parse()?,
            priority: priority.parse().map_err(|_| bad())?,
            defrag,
        })
    }
}

/// A family or hook name netfilter does not have.
#[derive(Debug, thiserror::Error)]
#[error("{what} {name:?}: expected {expected}")]
pub struct BadNetfilterName {
    what: &'static str,
    name: String,
    expected: &'static str,
}

impl FromStr for NfFamily {
    type Err = BadNetfilterName;

    /// `ipv4` (`ip`, `inet`) or `ipv6` (`ip6`, `inet6`).
    fn from_str(s: &str) -> Result<NfFamily, BadNetfilterName> {
        match s.to_ascii_lowercase().as_str() {
            "ipv4" | "ip" | "inet" => Ok(NfFamily::Ipv4),
            "ipv6" | "ip6" | "inet6" => Ok(NfFamily::Ipv6),
            _ => Err(BadNetfilterName {
                what: "netfilter family",
                name: s.to_owned(),
                expected: "one of ipv4, ipv6",
            }),
        }
    }
}

impl FromStr for NfHook {
    type Err = BadNetfilterName;

    /// nft's names (`prerouting`, `input`, `forward`, `output`,
    /// `postrouting`) or the kernel's (`pre_routing`, `local_in`, ...).
    fn from_str(s: &str) -> Result<NfHook, BadNetfilterName> {
        match s.to_ascii_lowercase().as_str() {
            "prerouting" | "pre_routing" => Ok(NfHook::PreRouting),
            "input" | "local_in" => Ok(NfHook::LocalIn),
            "forward" => Ok(NfHook::Forward),
            "output" | "local_out" => Ok(NfHook::LocalOut),
            "postrouting" | "post_routing" => Ok(NfHook::PostRouting),
            _ => Err(BadNetfilterName {
                what: "netfilter hook",
                name: s.to_owned(),
                expected: "one of prerouting, input, forward, output, postrouting",
            }),
        }
    }
}

/// netfilter: a link at `targets.netfilter`, in `targets.netns` (the
/// caller's namespace when `None`): the kernel hooks it in the namespace
/// of the thread that creates it.
fn netfilter(
    program: &Program,
    spec: &ProgramSpec,
    targets: &AttachTargets,
) -> Result<Link, LinkError> {
    let Some(hook) = targets.netfilter else {
        return Err(no_target(
            spec,
            "a netfilter hook (--netfilter FAMILY:HOOK:PRIORITY)",
        ));
    };
    let ns_words = targets
        .netns
        .as_deref()
        .map_or(String::new(), |n| format!(" in network namespace {n}"));
    let target = format!("netfilter {hook}{ns_words}");
    let created = netns::run_in(targets.netns.as_deref(), || {
        sys::link_create_netfilter(program.fd(), hook.raw())
    });
    let fd = match created {
        Ok(made) => made.map_err(attach_failed(spec, &target, "BPF_LINK_CREATE"))?,
        Err(NetnsError::NotFound { name, source }) => {
            return Err(not_found(
                spec,
                &format!("network namespace {name}"),
                source,
            ))
        }
        Err(NetnsError::Failed { action, source, .. }) => {
            return Err(attach_failed(spec, &target, action)(source))
        }
    };
    Ok(Link::new(spec.name(), target, Attachment::Bpf(fd)))
}

/// Attaches an sk_msg or sk_skb program onto a sockmap or sockhash, at the
/// hook its section names (`sk_msg`, `sk_skb/stream_parser`,
/// `sk_skb/stream_verdict`, `sk_skb/verdict`): with a sockmap link where
/// the kernel has them (6.10+), with `BPF_PROG_ATTACH` on the map before.
/// Sockets added to the map afterwards run the program; sockets already
/// in it keep the programs they had (as the kernel does).
pub fn attach_to_sockmap(
    program: &Program,
    spec: &ProgramSpec,
    map: &Map,
) -> Result<Link, LinkError> {
    if !matches!(spec.prog_type, ProgramType::SK_MSG | ProgramType::SK_SKB) {
        return Err(unsupported(
            spec,
            format!(
                "a {} program onto a sockmap: it takes sk_msg and sk_skb programs",
                spec.prog_type
            ),
        ));
    }
    let Some(attach_type) = spec.attach_type else {
        return Err(no_target(
            spec,
            "a hook in the section (sk_skb/stream_parser, sk_skb/stream_verdict, sk_skb/verdict)",
        ));
    };
    if !matches!(map.map_type(), MapType::SOCKMAP | MapType::SOCKHASH) {
        return Err(unsupported(
            spec,
            format!(
                "onto map {} (a {}): only a sockmap or sockhash takes it",
                map.name(),
                map.map_type()
            ),
        ));
    }
    let target = format!("{} {} {attach_type}", map.map_type(), map.name());
    let attachment = match sys::link_create_fd(program.fd(), map.fd(), attach_type.0, 0) {
        Ok(fd) => Attachment::Bpf(fd),
        // Kernels before 6.10 have no sockmap links.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let map_fd = map.fd().try_clone_to_owned().map_err(attach_failed(
                spec,
                &target,
                "duplicating the map fd",
            ))?;
            prog_attach(program, spec, &target, map_fd, attach_type)?
        }
        Err(e) => return Err(attach_failed(spec, &target, "BPF_LINK_CREATE")(e)),
    };
    Ok(Link::new(spec.name(), target, attachment))
}

/// The one sockmap or sockhash among `maps` (a loaded object's), which an
/// sk_msg or sk_skb program of that object goes onto.
pub fn sockmap_of<'m>(spec: &ProgramSpec, maps: &'m [Map]) -> Result<&'m Map, LinkError> {
    let mut socks = maps
        .iter()
        .filter(|m| matches!(m.map_type(), MapType::SOCKMAP | MapType::SOCKHASH));
    match (socks.next(), socks.next()) {
        (Some(map), None) => Ok(map),
        (None, _) => Err(no_target(spec, "a sockmap or sockhash, and the object declares none")),
        (Some(_), Some(_)) => Err(no_target(
            spec,
            "one sockmap or sockhash, and the object declares several: pick one (link::net::attach_to_sockmap)",
        )),
    }
}

/// A socket filter program on a socket the caller owns: detached
/// (`SO_DETACH_BPF`) when dropped, unless kept; it also goes when the
/// socket is closed, which the borrow makes sure happens after this value.
#[derive(Debug)]
pub struct SocketFilter<'s> {
    program: String,
    socket: BorrowedFd<'s>,
    keep: bool,
}

/// Attaches a socket filter program to `socket` (`SO_ATTACH_BPF`),
/// replacing any filter it had: the program sees each packet the socket
/// receives, from its network header on, and keeps as many bytes as it
/// returns (0 drops the packet).
pub fn attach_socket_filter<'s>(
    program: &Program,
    socket: BorrowedFd<'s>,
) -> Result<SocketFilter<'s>, LinkError> {
    let target = format!("socket fd {}", socket.as_raw_fd());
    if program.prog_type != ProgramType::SOCKET_FILTER {
        return Err(LinkError::Link {
            program: program.name.clone(),
            target,
            action: "SO_ATTACH_BPF: a socket runs socket_filter programs, not this type",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    sys::attach_socket_filter(socket, program.fd()).map_err(|source| LinkError::Link {
        program: program.name.clone(),
        target,
        action: "SO_ATTACH_BPF",
        source,
    })?;
    Ok(SocketFilter {
        program: program.name.clone(),
        socket,
        keep: false,
    })
}

impl SocketFilter<'_> {
    /// The attached program's name.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Leaves the filter on the socket, until the socket is closed.
    pub fn keep(mut self) {
        self.keep = true;
    }

    /// Takes the filter off the socket now.
    pub fn detach(mut self) -> Result<(), LinkError> {
        self.keep = true; // done: nothing more for Drop
        sys::detach_socket_filter(self.socket).map_err(|source| LinkError::Link {
            program: self.program.clone(),
            target: format!("socket fd {}", self.socket.as_raw_fd()),
            action: "SO_DETACH_BPF",
            source,
        })
    }
}

impl Drop for SocketFilter<'_> {
    fn drop(&mut self) {
        if !self.keep {
            let _ = sys::detach_socket_filter(self.socket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netfilter_names() {
        assert_eq!("IPv4".parse::<NfFamily>().unwrap(), NfFamily::Ipv4);
        assert_eq!("inet6".parse::<NfFamily>().unwrap(), NfFamily::Ipv6);
        assert_eq!("output".parse::<NfHook>().unwrap(), NfHook::LocalOut);
        assert_eq!("pre_routing".parse::<NfHook>().unwrap(), NfHook::PreRouting);
        let e = "arp".parse::<NfFamily>().unwrap_err().to_string();
        assert!(e.contains("\"arp\"") && e.contains("ipv4, ipv6"), "{e}");
        let raw = NetfilterHook::new(NfFamily::Ipv6, NfHook::PostRouting, -5).raw();
        assert_eq!(
            (raw.pf, raw.hooknum, raw.priority, raw.flags),
            (10, 4, -5, 0)
        );
        let hook: NetfilterHook = "ipv4:output:10".parse().unwrap();
        assert_eq!(
            hook,
            NetfilterHook::new(NfFamily::Ipv4, NfHook::LocalOut, 10)
        );
        assert_eq!(hook.to_string(), "ipv4:output:10");
        let defrag: NetfilterHook = "IPv6:pre_routing:-100:defrag".parse().unwrap();
        assert!(defrag.defrag && defrag.raw().flags == 1);
        assert_eq!(defrag.to_string(), "ipv6:prerouting:-100:defrag");
        for bad in [
            "ipv4:output",
            "ipv4:output:x",
            "ipv4:output:1:frag",
            "ipv4:out:1",
            "ipv4:output:1:defrag:2",
        ] {
            assert!(bad.parse::<NetfilterHook>().is_err(), "{bad}");
        }
    }
}
