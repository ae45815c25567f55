//! struct_ops maps the kernel holds: each program a map member points to
//! is loaded with `attach_btf_id` = the kernel struct's id and
//! `expected_attach_type` = the member's index; a struct_ops program no
//! map points to is not loaded (as libbpf). The map is created with type
//! `BPF_MAP_TYPE_STRUCT_OPS`, a 4-byte key, one entry, the value size of
//! the kernel's `bpf_struct_ops_<name>`, the object's BTF and
//! `btf_vmlinux_value_type_id` = that wrapper's id (`BPF_F_LINK` for a
//! `.struct_ops.link` map). Its value ([`StructOpsMap::value`]) is the
//! wrapper with the local members copied in by name and each function
//! pointer replaced by its program's fd; writing it is registering, which
//! [`crate::link::struct_ops`] does (libbpf's `bpf_map__attach_struct_ops`).

use super::error::LoadError;
use super::map::Map;
use super::program::Program;
use crate::kernel_btf::struct_ops::{layout, StructOpsLayout, StructOpsSlot};
use crate::obj::core::TargetTypes;
use crate::obj::{ObjectSpec, ProgramSpec, StructOpsSpec};
use crate::sys;
use crate::uapi::{MapType, ProgramType, BPF_F_LINK};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// A struct_ops map of a load, ready to register.
#[derive(Debug, Clone)]
pub struct StructOpsMap {
    /// The map's name (the object's variable; also its name in
    /// [`super::Collection::maps`]).
    pub name: String,
    /// The kernel struct it fills (`tcp_congestion_ops`).
    pub struct_name: String,
    /// Its section in the object.
    pub section: String,
    /// Whether it registers through a BPF link (`.struct_ops.link`).
    pub link: bool,
    /// The value without program fds.
    base: Vec<u8>,
    /// Where each program's fd goes.
    slots: Vec<StructOpsSlot>,
}

impl StructOpsMap {
    /// The programs its members point to, with the member each fills.
    pub fn programs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.slots
            .iter()
            .map(|s| (s.member.as_str(), s.program.as_str()))
    }

    /// The map's value: the kernel wrapper's bytes with the programs' fds
    /// (from `programs`, the load's) in their members.
    pub fn value(&self, programs: &[Program]) -> Result<Vec<u8>, LoadError> {
        let mut value = self.base.clone();
        for s in &self.slots {
            let p = programs
                .iter()
                .find(|p| p.name == s.program)
                .ok_or_else(|| {
                    self.error(format!(
                        "member {}: program {} was not loaded",
                        s.member, s.program
                    ))
                })?;
            let fd = u64::try_from(p.fd().as_raw_fd()).unwrap_or(0);
            let at = s.value_offset as usize;
            value[at..at + 8].copy_from_slice(&fd.to_le_bytes());
        }
        Ok(value)
    }

    fn error(&self, reason: String) -> LoadError {
        LoadError::StructOps {
            map: self.name.clone(),
            struct_name: self.struct_name.clone(),
            reason,
        }
    }
}

/// Each struct_ops map's kernel side, in the object's order: what the
/// programs are loaded for and what the maps are made of.
pub(super) struct Plan<'a> {
    maps: Vec<(&'a StructOpsSpec, StructOpsLayout)>,
}

/// Finds each struct_ops map's struct in `kernel` and checks that no
/// program is claimed by two members that need it loaded differently.
pub(super) fn plan<'a>(
    spec: &'a ObjectSpec,
    kernel: Option<&dyn TargetTypes>,
) -> Result<Plan<'a>, LoadError> {
    let mut maps = Vec::with_capacity(spec.struct_ops.len());
    for s in &spec.struct_ops {
        let fail = |reason: String| LoadError::StructOps {
            map: s.name.clone(),
            struct_name: s.type_name.clone(),
            reason,
        };
        let kernel =
            kernel.ok_or_else(|| fail("the kernel's BTF was not opened to look it up".into()))?;
        maps.push((s, layout(kernel, s).map_err(fail)?));
    }
    let plan = Plan { maps };
    for p in &spec.programs {
        plan.target(p)?;
    }
    Ok(plan)
}

impl Plan<'_> {
    /// A struct_ops program's `(attach_btf_id, expected_attach_type)`;
    /// `None` for other programs and for struct_ops programs no map points
    /// to (which are not loaded).
    pub fn target(&self, p: &ProgramSpec) -> Result<Option<(u32, u32)>, LoadError> {
        if p.prog_type != ProgramType::STRUCT_OPS {
            return Ok(None);
        }
        let mut found: Option<(u32, u32, &str, &str)> = None;
        for (spec, l) in &self.maps {
            for slot in l.programs.iter().filter(|s| s.program == p.name()) {
                let this = (
                    l.struct_id,
                    slot.index,
                    spec.name.as_str(),
                    slot.member.as_str(),
                );
                match found {
                    Some((id, index, map, member)) if (id, index) != (this.0, this.1) => {
                        return Err(LoadError::StructOps {
                            map: spec.name.clone(),
                            struct_name: l.struct_name.clone(),
                            reason: format!(
                                "member {} points to program {}, which member {member} of map {map} needs loaded for another struct or member",
                                slot.member,
                                p.name()
                            ),
                        });
                    }
                    Some(_) => {}
                    None => found = Some(this),
                }
            }
        }
        Ok(found.map(|(id, index, ..)| (id, index)))
    }

    /// Whether `p` is a struct_ops program no map points to: not loaded.
    pub fn unused(&self, p: &ProgramSpec) -> bool {
        p.prog_type == ProgramType::STRUCT_OPS
            && !self
                .maps
                .iter()
                .any(|(_, l)| l.programs.iter().any(|s| s.program == p.name()))
    }

    /// Creates each struct_ops map (empty: writing its value registers it).
    /// A `.struct_ops.link` map the kernel refuses with `EINVAL` (no
    /// `BPF_F_LINK` before 6.4) is made without the flag and registers as
    /// a plain one; `warnings` says so.
    pub fn create(
        &self,
        btf: Option<BorrowedFd<'_>>,
        warnings: &mut Vec<String>,
    ) -> Result<(Vec<Map>, Vec<StructOpsMap>), LoadError> {
        let mut maps = Vec::with_capacity(self.maps.len());
        let mut values = Vec::with_capacity(self.maps.len());
        for (s, l) in &self.maps {
            let mut value = StructOpsMap {
                name: s.name.clone(),
                struct_name: l.struct_name.clone(),
                section: s.section.clone(),
                link: s.is_link(),
                base: l.value.clone(),
                slots: l.programs.clone(),
            };
            let Some(btf) = btf else {
                return Err(value.error(
                    "the kernel refused the object's BTF, which a struct_ops map needs".into(),
                ));
            };
            let attrs = sys::MapCreate {
                map_type: MapType::STRUCT_OPS.0,
                key_size: 4,
                value_size: l.value.len() as u32,
                max_entries: 1,
                flags: if s.is_link() { BPF_F_LINK } else { 0 },
                numa_node: 0,
                map_extra: 0,
                name: &s.name,
                inner_map_fd: None,
                btf: Some((btf, 0, 0)),
            };
            let created = |source| LoadError::MapCreate {
                map: s.name.clone(),
                source,
                rule: Some(format!(
                    "a struct_ops map of struct {}, value bpf_struct_ops_{} (BTF id {}){}",
                    l.struct_name,
                    l.struct_name,
                    l.wrapper_id,
                    if s.is_link() {
                        ", BPF_F_LINK (kernel 6.4+)"
                    } else {
                        ""
                    }
                )),
            };
            let fd = match sys::map_create_vmlinux_value(&attrs, l.wrapper_id) {
                Err(e) if s.is_link() && e.raw_os_error() == Some(libc::EINVAL) => {
                    let plain = sys::MapCreate { flags: 0, ..attrs };
                    let fd = sys::map_create_vmlinux_value(&plain, l.wrapper_id)
                        .map_err(|_| created(e))?;
                    warnings.push(format!(
                        "struct_ops map {}: the kernel has no struct_ops links (BPF_F_LINK, 6.4+); it registers by its map update instead",
                        s.name
                    ));
                    value.link = false;
                    fd
                }
                r => r.map_err(created)?,
            };
            let info = sys::map_info(fd.as_fd()).map_err(created)?;
            let kernel_name = String::from_utf8_lossy(&sys::obj_name(&s.name))
                .trim_end_matches('\0')
                .to_owned();
            maps.push(Map::from_fd(&s.name, &kernel_name, fd, &info)?);
            values.push(value);
        }
        Ok((maps, values))
    }
}
