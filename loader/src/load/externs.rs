//! Extern resolution at load: `__kconfig` values, `__ksym` variables and
//! kfuncs resolved against the running kernel, and written into each
//! program before it is loaded.

use super::error::LoadError;
use super::{fd_number, kernel_types, LoadOptions};
use crate::obj::core::TargetTypes;
use crate::obj::externs::{self, KsymValue};
use crate::obj::link::{ExternValue, LinkedProgram};
use crate::obj::{ExternKind, MapOrigin, MapSpec, ObjectSpec};
use std::borrow::Cow;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// The object's externs resolved for the running kernel: the `.kconfig`
/// map's value, what each `__ksym` variable and kfunc is, and the module
/// BTF objects they live in. Made by [`resolve_externs`].
#[derive(Debug, Default)]
pub struct ResolvedExterns {
    /// The `.kconfig` map's value (`None`: no `__kconfig` externs).
    pub kconfig: Option<Vec<u8>>,
    /// Each `__ksym` variable and kfunc, with its name.
    pub ksyms: Vec<(String, KsymValue)>,
    /// Module BTF objects, by module name: `fd_array[i + 1]` is the i-th
    /// (index 0 is vmlinux's, which needs no fd).
    module_btfs: Vec<(String, OwnedFd)>,
}

/// Resolves the object's externs: `__kconfig` values (the kernel's config
/// is read only for `CONFIG_*` ones), typeless ksyms from `/proc/kallsyms`,
/// typed ksyms and kfuncs from `kernel` — or, if that is `None` and the
/// object has any, from [`kernel_types`] with [`externs::extern_names`].
/// Objects with no ksyms or kfuncs never read the kernel's BTF.
pub fn resolve_externs(
    spec: &ObjectSpec,
    opts: &LoadOptions,
    kernel: Option<&dyn TargetTypes>,
    warnings: &mut Vec<String>,
) -> Result<ResolvedExterns, LoadError> {
    if spec.externs.is_empty() {
        return Ok(ResolvedExterns::default());
    }
    resolve_some_externs(spec, opts, kernel, warnings)
}

/// [`resolve_externs`] for an object that has some: kept out of line, so an
/// object without externs (most) runs through none of this code.
#[inline(never)]
fn resolve_some_externs(
    spec: &ObjectSpec,
    opts: &LoadOptions,
    kernel: Option<&dyn TargetTypes>,
    warnings: &mut Vec<String>,
) -> Result<ResolvedExterns, LoadError> {
    let mut out = ResolvedExterns {
        kconfig: super::kconfig::kconfig_data(spec, warnings)?,
        ..ResolvedExterns::default()
    };
    let typeless = spec
        .externs
        .iter()
        .find(|e| e.kind == ExternKind::Ksym { typed: None });
    if let Some(e) = typeless {
        let file = std::fs::File::open("/proc/kallsyms").map_err(|source| LoadError::Extern {
            name: e.name.clone(),
            reason: format!("a typeless __ksym's address is in /proc/kallsyms: {source}"),
        })?;
        out.ksyms
            .extend(externs::resolve_kallsyms(spec, io::BufReader::new(file))?);
    }
    let names = externs::extern_names(spec);
    if !names.is_empty() {
        let owned;
        let kernel = match kernel {
            Some(k) => k,
            None => {
                owned = kernel_types(opts, &names)?;
                owned.as_ref()
            }
        };
        out.ksyms.extend(externs::resolve_btf(spec, kernel)?);
    }
    for (name, value) in &out.ksyms {
        if let KsymValue::Btf {
            module: Some(module),
            ..
        } = value
        {
            if !out.module_btfs.iter().any(|(m, _)| m == module) {
                let fd = module_btf_fd(module, name)?;
                if out.module_btfs.len() + 1 >= i16::MAX as usize {
                    return Err(LoadError::Extern {
                        name: name.clone(),
                        reason: "more module BTFs than a kfunc call's offset can index".into(),
                    });
                }
                out.module_btfs.push((module.clone(), fd));
            }
        }
    }
    Ok(out)
}

/// The BTF object of kernel module `module`, for a ksym or kfunc it defines.
///
/// TODO(module-btf): open it (`BPF_BTF_GET_NEXT_ID`, `BPF_BTF_GET_FD_BY_ID`,
/// the one whose `btf_info.name` is `module`) once `sys` has those commands;
/// everything after this — `fd_array`, kfunc call offsets, `ld_imm64` BTF
/// fds — already handles module BTFs.
fn module_btf_fd(module: &str, extern_name: &str) -> Result<OwnedFd, LoadError> {
    Err(LoadError::Extern {
        name: extern_name.to_owned(),
        reason: format!(
            "it is in kernel module {module}'s BTF, and rawbpf cannot open module BTF objects yet"
        ),
    })
}

impl ResolvedExterns {
    /// A map as it is to be created: the `.kconfig` map with its values.
    pub fn map_spec<'a>(&self, m: &'a MapSpec) -> Cow<'a, MapSpec> {
        match &self.kconfig {
            Some(data)
                if m.origin == MapOrigin::GlobalData && m.section == externs::KCONFIG_SECTION =>
            {
                Cow::Owned(MapSpec {
                    data: Some(data.clone()),
                    ..m.clone()
                })
            }
            _ => Cow::Borrowed(m),
        }
    }

    /// `fd_array` for `BPF_PROG_LOAD`: empty without module BTFs, else
    /// index 0 unused (vmlinux) and the module BTF fds after it.
    pub fn fd_array(&self) -> Vec<i32> {
        if self.module_btfs.is_empty() {
            return Vec::new();
        }
        std::iter::once(0)
            .chain(self.module_btfs.iter().map(|(_, fd)| fd_number(fd.as_fd())))
            .collect()
    }

    /// Writes every extern's value into the linked program of `program`.
    pub fn set_externs(
        &self,
        spec: &ObjectSpec,
        program: &str,
        linked: &mut LinkedProgram,
    ) -> Result<(), LoadError> {
        let value_of = |name: &str| {
            let index = spec.externs.iter().position(|e| e.name == name)?;
            let (_, value) = self.ksyms.iter().find(|(n, _)| n == name)?;
            Some(match value {
                KsymValue::Btf { kernel_id, module } => {
                    let (btf_fd, fd_index) = match module {
                        None => (0, 0),
                        Some(m) => {
                            let i = self.module_btfs.iter().position(|(n, _)| n == m)?;
                            (fd_number(self.module_btfs[i].1.as_fd()), i as i16 + 1)
                        }
                    };
                    ExternValue::Btf {
                        id: *kernel_id,
                        btf_fd,
                        fd_index,
                    }
                }
                KsymValue::Address(a) => ExternValue::Address(*a),
                KsymValue::Missing => ExternValue::Missing {
                    index: index as u32,
                },
            })
        };
        linked
            .set_externs(value_of)
            .map_err(|name| LoadError::Extern {
                name,
                reason: format!("program {program} uses it, but it was not resolved"),
            })
    }
}
