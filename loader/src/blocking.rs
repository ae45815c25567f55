//! The netlink operations for programs without a tokio runtime. A
//! [`Netlink`] holds one current-thread runtime: create it once and call
//! it for every attach, detach and list; each call runs the `async`
//! function on that runtime and returns when it is done. Nothing is kept
//! between calls but the runtime (each call opens its netlink socket in
//! the target's namespace and closes it before returning).
//!
//! ```no_run
//! use rawbpf::attach::{AttachOptions, Hook, Target, XdpMode};
//! use rawbpf::blocking::Netlink;
//! use rawbpf::{LoadOptions, ObjectSpec};
//!
//! // The XDP program of veth-b in namespace demo-b, in generic mode.
//! let file = std::path::Path::new("programs/obj/xdp.bpf.o");
//! let spec = ObjectSpec::from_file(file)?;
//! let opts = AttachOptions {
//!     target: Target::new("veth-b", Hook::Xdp).in_netns("demo-b"),
//!     xdp_mode: XdpMode::Generic,
//!     ..AttachOptions::default()
//! };
//! let netlink = Netlink::new()?;
//! let attached = netlink.attach(file, &spec, &LoadOptions::for_file(file), &opts)?;
//! println!("kernel runs it in {} mode", attached.xdp_mode.unwrap_or("?"));
//! let listing = netlink.list(Some("demo-b"), None)?;
//! assert!(listing.leftovers.is_empty());
//! netlink.detach(&opts.target, None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::attach::{
    self, AttachError, AttachOptions, Attached, Detached, Listing, Pinning, Target,
};
use crate::load::{Collection, LoadOptions};
use crate::obj::ObjectSpec;
use crate::tc::NetlinkError;
use std::future::Future;
use std::path::Path;

/// A current-thread runtime with I/O: what the netlink functions need.
/// They wait on one socket, so the driver's event buffer holds a few
/// events, not tokio's default 1024 (12 KiB of heap a short-lived CLI
/// process would fault in).
pub fn runtime() -> Result<tokio::runtime::Runtime, NetlinkError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .max_io_events_per_tick(IO_EVENTS)
        .build()?)
}

/// Events taken from epoll per wait: the netlink socket and tokio's own
/// waker are all a netlink command registers.
const IO_EVENTS: usize = 16;

/// Runs `f` to completion on a new current-thread runtime, for one-off
/// work; [`Netlink`] keeps its runtime for many calls.
pub fn block_on<F: Future>(f: F) -> Result<F::Output, NetlinkError> {
    Ok(runtime()?.block_on(f))
}

/// rawbpf's netlink operations on a runtime of their own, made once and
/// used for every call.
pub struct Netlink {
    runtime: tokio::runtime::Runtime,
}

impl Netlink {
    /// Starts the runtime (a current-thread one, on the calling thread).
    pub fn new() -> Result<Netlink, NetlinkError> {
        Ok(Netlink {
            runtime: runtime()?,
        })
    }

    /// Runs `f` to completion, then lets the netlink connections it dropped
    /// close their sockets: one `yield` hands the runtime to their tasks,
    /// which end once their handles are gone. Without it each socket would
    /// stay open until the next call.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(async {
            let out = f.await;
            tokio::task::yield_now().await;
            out
        })
    }

    /// [`attach::attach`], here.
    pub fn attach(
        &self,
        file: &Path,
        spec: &ObjectSpec,
        load: &LoadOptions,
        opts: &AttachOptions,
    ) -> Result<Attached, AttachError> {
        self.block_on(attach::attach(file, spec, load, opts))
    }

    /// [`attach::attach_loaded`], here.
    pub fn attach_loaded(
        &self,
        chain: &Collection,
        entry: &str,
        opts: &AttachOptions,
        pinning: Pinning,
    ) -> Result<Attached, AttachError> {
        self.block_on(attach::attach_loaded(chain, entry, opts, pinning))
    }

    /// [`attach::detach`], here.
    pub fn detach(&self, target: &Target, priority: Option<u16>) -> Result<Detached, AttachError> {
        self.block_on(attach::detach(target, priority))
    }

    /// [`Attached::detach`], here.
    pub fn detach_attached(&self, attached: Attached) -> Result<Detached, AttachError> {
        self.block_on(attached.detach())
    }

    /// [`attach::list`], here.
    pub fn list(&self, netns: Option<&str>, dev: Option<&str>) -> Result<Listing, AttachError> {
        self.block_on(attach::list(netns, dev))
    }
}
