//! The netlink operations for programs without a tokio runtime: each call
//! starts a current-thread runtime, runs the `async` function on it, and
//! drops it (and the netlink socket with it) before returning.
//!
//! ```no_run
//! use rawbpf::attach::{AttachOptions, Hook, Target, XdpMode};
//! use rawbpf::ObjectSpec;
//!
//! // The XDP program of veth-b in namespace demo-b, in generic mode.
//! let file = std::path::Path::new("programs/obj/xdp.bpf.o");
//! let spec = ObjectSpec::from_file(file)?;
//! let opts = AttachOptions {
//!     target: Target::new("veth-b", Hook::Xdp).in_netns("demo-b"),
//!     xdp_mode: XdpMode::Generic,
//!     ..AttachOptions::default()
//! };
//! let attached = rawbpf::blocking::attach(file, &spec, &opts)?;
//! println!("kernel runs it in {} mode", attached.xdp_mode.unwrap_or("?"));
//! let listing = rawbpf::blocking::list(Some("demo-b"), None)?;
//! assert!(listing.leftovers.is_empty());
//! rawbpf::blocking::detach(&opts.target, None)?;
//! # Ok::<(), rawbpf::Error>(())
//! ```

use crate::attach::{self, AttachOptions, Attached, Detached, Listing, Target};
use crate::error::AttachError;
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

/// Runs `f` to completion on a new current-thread runtime.
pub fn block_on<F: Future>(f: F) -> Result<F::Output, NetlinkError> {
    Ok(runtime()?.block_on(f))
}

fn run<T>(dev: &str, f: impl Future<Output = Result<T, AttachError>>) -> Result<T, AttachError> {
    block_on(f).map_err(|source| AttachError::Netlink {
        dev: dev.to_owned(),
        action: "starting the netlink runtime",
        source,
    })?
}

/// [`attach::attach`] without a runtime.
pub fn attach(
    file: &Path,
    spec: &ObjectSpec,
    opts: &AttachOptions,
) -> Result<Attached, AttachError> {
    run(&opts.target.dev, attach::attach(file, spec, opts))
}

/// [`attach::detach`] without a runtime.
pub fn detach(target: &Target, priority: Option<u16>) -> Result<Detached, AttachError> {
    run(&target.dev, attach::detach(target, priority))
}

/// [`attach::list`] without a runtime.
pub fn list(netns: Option<&str>, dev: Option<&str>) -> Result<Listing, AttachError> {
    run(dev.unwrap_or(""), attach::list(netns, dev))
}
