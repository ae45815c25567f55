//! `check --btf FILE`: a kernel's BTF as raw BTF or a vmlinux ELF.

use std::path::Path;

/// Why a `--btf` file cannot be read as a kernel's BTF.
#[derive(Debug, thiserror::Error)]
pub enum BtfFileError {
    /// Reading failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Neither raw BTF nor ELF.
    #[error("{}: {}", path.display(), self.reason())]
    NotBtf {
        /// The file.
        path: std::path::PathBuf,
    },
    /// An ELF file without `.BTF`.
    #[error("{}: {}", path.display(), self.reason())]
    NoBtfSection {
        /// The file.
        path: std::path::PathBuf,
    },
}

impl BtfFileError {
    /// What is wrong, without the file name.
    pub fn reason(&self) -> String {
        match self {
            BtfFileError::Io { source, .. } => source.to_string(),
            BtfFileError::NotBtf { .. } => {
                "neither raw BTF (magic 0xeb9f) nor an ELF file (a vmlinux) with a .BTF section"
                    .into()
            }
            BtfFileError::NoBtfSection { .. } => {
                "an ELF file without a .BTF section (a kernel built without CONFIG_DEBUG_INFO_BTF?)"
                    .into()
            }
        }
    }
}

/// A kernel's BTF from `path`: raw BTF (`/sys/kernel/btf/vmlinux` copied
/// from the target) as it is, or the `.BTF` section of an ELF file (the
/// target's `vmlinux`).
pub fn read_btf_file(path: &Path) -> Result<Vec<u8>, BtfFileError> {
    let data = std::fs::read(path).map_err(|source| BtfFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    if data.starts_with(&[0x9f, 0xeb]) || data.starts_with(&[0xeb, 0x9f]) {
        return Ok(data);
    }
    if !data.starts_with(b"\x7fELF") {
        return Err(BtfFileError::NotBtf {
            path: path.to_owned(),
        });
    }
    use object::{Object, ObjectSection};
    let file = object::File::parse(&*data).map_err(|_| BtfFileError::NotBtf {
        path: path.to_owned(),
    })?;
    let section = file
        .section_by_name(".BTF")
        .ok_or_else(|| BtfFileError::NoBtfSection {
            path: path.to_owned(),
        })?;
    section
        .data()
        .map(<[u8]>::to_vec)
        .map_err(|_| BtfFileError::NoBtfSection {
            path: path.to_owned(),
        })
}
