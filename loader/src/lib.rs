//! rawbpf: a pure-Rust eBPF loader on raw `bpf(2)` syscalls and rtnetlink.
//!
//! The data flows one way: bytes → [`ObjectSpec`] (pure, [`obj`]) → live
//! kernel objects ([`Collection`], [`load`]) → attachment. Every `unsafe` is
//! in the crate's private `sys` module: one safe function per `bpf(2)`
//! command, and the mapping of the BTF the kernel exports; nix makes every
//! other POSIX call. `sys` is not reachable from outside the crate:
//!
//! ```compile_fail,E0603
//! let _ = rawbpf::sys::obj_get(c"/sys/fs/bpf/x"); // error[E0603]: module `sys` is private
//! ```
//!
//! Load the shipped pipeline, let its `.values` wire the prog array, and run
//! the entry program on a packet:
//!
//! ```no_run
//! use rawbpf::{Collection, LoadOptions, ObjectSpec};
//!
//! let spec = ObjectSpec::from_file("programs/obj/pipeline.bpf.o")?;
//! let chain = Collection::load(&spec, &LoadOptions::default())?;
//! let frame = rawbpf::packet::ipv4_udp_frame(0);
//! let run = chain.program("mark_packet")?.test_run(&frame, 1)?;
//! assert_eq!(run.retval, 2); // TC_ACT_SHOT: marked by stage 1, dropped by stage 2
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Dropping the collection closes every fd; pin it (`Collection::pin`) to
//! keep programs and maps after the process exits.
//!
//! Attach a chain to a device so that it outlives the process (its pins
//! keep the prog arrays filled), then remove it. [`attach`]'s functions are
//! `async` (netlink on a tokio runtime); a [`blocking::Netlink`] runs them
//! on a runtime of its own, made once:
//!
//! ```no_run
//! use rawbpf::attach::{AttachOptions, Hook, Target};
//! use rawbpf::blocking::Netlink;
//! use rawbpf::{LoadOptions, ObjectSpec};
//!
//! let file = std::path::Path::new("programs/obj/pipeline.bpf.o");
//! let spec = ObjectSpec::from_file(file)?;
//! let opts = AttachOptions {
//!     target: Target::new("eth0", Hook::Ingress),
//!     ..AttachOptions::default()
//! };
//! let netlink = Netlink::new()?;
//! let attached = netlink.attach(file, &spec, &LoadOptions::for_file(file), &opts)?;
//! println!("{} runs, pinned under {:?}", attached.program, attached.pin_dir);
//! netlink.detach(&opts.target, Some(opts.priority))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `loader/examples/pipeline.rs` does the whole job an embedder does: load,
//! attach to a device in a network namespace, read a map, detach.
//!
//! `lab` and `packet` are rawbpf's internals, public only for its CLI and
//! tests: they are not part of the API and may change.

#![deny(unsafe_code)]
#![warn(missing_docs)]

/// Errors print their message under `{:?}` too (what `unwrap` and `main`
/// show): one formatting path, and no derived Debug code for every field
/// of every variant in the binary.
macro_rules! debug_is_display {
    ($($t:ty),* $(,)?) => {
        $(impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self, f)
            }
        })*
    };
}

pub mod attach;
pub mod blocking;
pub mod compat;
mod errno;
pub mod error;
pub mod events;
mod helper_names;
pub mod hook;
pub mod kernel_btf;
#[doc(hidden)]
pub mod lab;
pub mod link;
pub mod load;
pub mod maps;
pub mod netns;
pub mod obj;
#[doc(hidden)]
pub mod packet;
pub mod pins;
pub mod probe;
mod sys;
pub mod tc;
pub mod uapi;

pub use attach::AttachError;
pub use error::Error;
pub use load::kconfig;
pub use load::pin;
pub use load::{Collection, LoadError, LoadOptions, Map, Program, TailSlot};
pub use obj::{MapSpec, ObjectSpec, ParseError, ProgramSpec};

use std::path::Path;

impl ObjectSpec {
    /// Reads and parses a BPF object file; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<ObjectSpec, Error> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        ObjectSpec::parse(&data).map_err(|source| Error::Parse {
            path: path.to_owned(),
            source,
        })
    }
}
