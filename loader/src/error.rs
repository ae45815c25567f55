//! rawbpf's errors. Each variant names what is at fault — the file, section,
//! symbol, map, program or byte offset — so that the message alone tells a
//! user where to look.

use std::path::PathBuf;

/// Any rawbpf error.
#[derive(thiserror::Error)]
pub enum Error {
    /// The object file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Loading the object into the kernel failed.
    #[error("{}: {source}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: LoadError,
    },
    /// The object file is malformed or uses something rawbpf does not support.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where in the file.
        source: ParseError,
    },
    /// Attaching, detaching or listing failed.
    #[error(transparent)]
    Attach(#[from] AttachError),
}

/// What went wrong attaching, detaching or listing: the attach layer's
/// error, defined with it.
pub use crate::attach::AttachError;

pub use crate::load::LoadError;

pub use crate::obj::ParseError;

debug_is_display!(Error);
