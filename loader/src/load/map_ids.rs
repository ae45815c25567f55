//! Every map of the system by id, programs by id, and the map pins under
//! a bpffs directory: what `rawbpf map list` shows and how a prog array's
//! or map-in-map's ids are named.

use super::error::LoadError;
use super::map::Map;
use super::program::Program;
use crate::sys;
use std::path::{Path, PathBuf};

/// The ids of every map the kernel holds (`BPF_MAP_GET_NEXT_ID`), in
/// ascending order. Needs `CAP_SYS_ADMIN`.
pub fn map_ids() -> Result<Vec<u32>, LoadError> {
    let mut ids = Vec::new();
    let mut id = 0;
    while let Some(next) = sys::map_next_id(id).map_err(|source| LoadError::MapRead {
        map: "BPF_MAP_GET_NEXT_ID".into(),
        source,
    })? {
        ids.push(next);
        id = next;
    }
    Ok(ids)
}

/// Every map the kernel holds, opened by id; a map freed between listing
/// and opening is left out.
pub fn maps() -> Result<Vec<Map>, LoadError> {
    let mut out = Vec::new();
    for id in map_ids()? {
        match Map::from_id(id) {
            Ok(m) => out.push(m),
            Err(LoadError::MapRead { source, .. })
                if source.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

impl Program {
    /// The program with this kernel id (`BPF_PROG_GET_FD_BY_ID`), as the
    /// kernel describes it (its name is the kernel's, at most 15 bytes).
    pub fn from_id(id: u32) -> Result<Program, LoadError> {
        let read = |source| LoadError::Pin {
            path: PathBuf::from(format!("program id {id}")),
            action: "opening the program by id",
            source,
        };
        let fd = sys::prog_get_fd_by_id(id).map_err(read)?;
        Program::from_fd(fd).map_err(read)
    }
}

/// The maps pinned anywhere under `dir` (walked recursively; pins of
/// programs and links are skipped): (map id, pin path), in path order.
/// A missing `dir` has none.
pub fn pinned_maps(dir: &Path) -> Vec<(u32, PathBuf)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(path),
                Ok(t) if t.is_file() => {
                    if let Ok(m) = Map::from_pin(&path) {
                        out.push((m.id(), path));
                    }
                }
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}
