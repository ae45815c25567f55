//! rawbpf: a pure-Rust eBPF loader on raw `bpf(2)` syscalls and rtnetlink.
//!
//! The data flows one way: bytes → [`ObjectSpec`] (pure, [`obj`]) → live
//! kernel objects → attachment. This release has the pure half: parse a BPF
//! ELF object compiled by clang into a checked description of its programs,
//! maps, relocations and BTF.
//!
//! ```no_run
//! let spec = rawbpf::ObjectSpec::from_file("programs/obj/pipeline.bpf.o")?;
//! for prog in &spec.programs {
//!     println!("{} ({}) in section {}", prog.name(), prog.prog_type, prog.section());
//! }
//! # Ok::<(), rawbpf::Error>(())
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod load;
pub mod obj;
pub mod packet;
pub mod sys;
pub mod uapi;

pub use error::{Error, LoadError, ParseError};
pub use load::{Collection, LoadOptions, TailSlot};
pub use obj::{MapSpec, ObjectSpec, ProgramSpec};

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
