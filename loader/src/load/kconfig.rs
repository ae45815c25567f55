//! Values of `__kconfig` externs, as libbpf computes them:
//!
//! - `CONFIG_*` from the kernel's config: `/boot/config-$(uname -r)` (plain
//!   or gzipped), else `/proc/config.gz`. `y`/`n`/`m` fill bools (`m` is
//!   refused), tristates (`enum libbpf_tristate`: no 0, yes 1, module 2) and
//!   chars; numbers (decimal, `0x` hex, `0` octal, as `strtoull`) fill
//!   integers they fit; quoted strings fill char arrays (cut to fit).
//!   A weak option the config lacks reads 0; a strong one is an error.
//! - `LINUX_KERNEL_VERSION`: `KERNEL_VERSION(a, b, c)` of the running
//!   kernel, Ubuntu's `/proc/version_signature` and Debian's `uname -v`
//!   first, as libbpf's `get_kernel_version`.
//! - `LINUX_HAS_BPF_COOKIE`: whether tracing programs may call
//!   `bpf_get_attach_cookie` (probed by loading one).
//! - `LINUX_HAS_SYSCALL_WRAPPER`: whether syscalls go through
//!   `__<arch>_sys_*` wrappers. libbpf opens a kprobe on `__<arch>_sys_bpf`;
//!   the kprobe exists exactly when `/proc/kallsyms` lists that symbol, which
//!   is what is checked here, with no kprobe left to clean up.
//!
//! Any other `LINUX_*` name is an error unless weak (then 0), and a name
//! with neither prefix is an error, as in libbpf.
//!
//! [`fill`], [`parse_kernel_version`] and [`gunzip`] are pure; the rest read
//! the running system.

use super::error::LoadError;
use crate::obj::externs::{ExternKind, ExternSpec, KconfigType, KCONFIG_SECTION};
use crate::obj::ObjectSpec;
use std::io::BufRead;
use std::path::PathBuf;

/// The most a gzipped config may inflate to; real ones are ~300 KiB.
const CONFIG_MAX: usize = 64 << 20;
/// `BPF_FUNC_get_attach_cookie`.
const GET_ATTACH_COOKIE: u32 = 174;

/// The kernel's config as text, and where it came from (for messages).
#[derive(Debug, Clone)]
pub struct KernelConfig {
    /// The file it was read from.
    pub source: PathBuf,
    /// Its lines (`CONFIG_HZ=250`, `# CONFIG_X is not set`, ...).
    pub text: String,
}

/// The object's `__kconfig` externs and the `.kconfig` map they fill;
/// `None` if it has none.
pub(crate) fn kconfig_externs(
    spec: &ObjectSpec,
) -> Option<(Vec<&ExternSpec>, &crate::obj::MapSpec)> {
    let externs: Vec<&ExternSpec> = spec
        .externs
        .iter()
        .filter(|e| matches!(e.kind, ExternKind::Kconfig { .. }))
        .collect();
    let map = spec.map(KCONFIG_SECTION).filter(|_| !externs.is_empty())?;
    Some((externs, map))
}

/// The `.kconfig` map's value for the running kernel, or `None` if the
/// object has no `__kconfig` externs. Reads the config only if a `CONFIG_*`
/// extern needs it, and probes only what `LINUX_*` externs ask for.
/// Warnings (a string cut to fit) are added to `warnings`.
pub fn kconfig_data(
    spec: &ObjectSpec,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<u8>>, LoadError> {
    let Some((externs, map)) = kconfig_externs(spec) else {
        return Ok(None);
    };
    let config = match externs.iter().find(|e| e.name.starts_with("CONFIG_")) {
        Some(e) => Some(read_config().map_err(|reason| LoadError::KernelConfig {
            needed_by: e.name.clone(),
            reason,
        })?),
        None => None,
    };
    fill(
        &externs,
        map.value_size,
        config.as_ref(),
        &linux_value,
        warnings,
    )
    .map(Some)
}

/// A `LINUX_*` value the loader computes, `None` for a name it does not know.
fn linux_value(name: &str) -> Option<Result<u64, String>> {
    Some(match name {
        "LINUX_KERNEL_VERSION" => kernel_version()
            .map(u64::from)
            .ok_or_else(|| "cannot tell the kernel's version from uname".to_owned()),
        "LINUX_HAS_BPF_COOKIE" => Ok(u64::from(has_bpf_cookie())),
        "LINUX_HAS_SYSCALL_WRAPPER" => Ok(u64::from(has_syscall_wrapper())),
        _ => return None,
    })
}

/// Lays out the `.kconfig` value (`size` bytes): each extern's value at its
/// offset. `config` is the kernel's config (needed if any extern is a
/// `CONFIG_*` one); `linux` computes a `LINUX_*` value (`None`: unknown
/// name, `Some(Err)`: known but not computable).
pub fn fill(
    externs: &[&ExternSpec],
    size: u32,
    config: Option<&KernelConfig>,
    linux: &dyn Fn(&str) -> Option<Result<u64, String>>,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>, LoadError> {
    let mut data = vec![0u8; size as usize];
    let mut wanted = set_linux_values(externs, &mut data, linux)?;
    crate::obj::externs::sort_by(&mut wanted, &|a, b| a.spec.name.cmp(&b.spec.name));
    let Some(first) = wanted.first() else {
        return Ok(data);
    };
    let Some(config) = config else {
        return Err(LoadError::KernelConfig {
            needed_by: first.spec.name.clone(),
            reason: "no config was given".into(),
        });
    };
    set_config_values(config, &mut wanted, &mut data, warnings)?;
    if let Some(c) = wanted.iter().find(|c| !c.spec.weak && !c.set) {
        return Err(LoadError::Extern {
            name: c.spec.name.clone(),
            reason: format!(
                "the kernel config ({}) does not set it (declare it __weak to read 0 instead)",
                config.source.display()
            ),
        });
    }
    Ok(data)
}

/// A `CONFIG_*` extern, where its value goes, and whether the config has
/// set it yet.
struct ConfigExtern<'a> {
    spec: &'a ExternSpec,
    slot: Slot,
    set: bool,
}

/// Checks every extern's slot against the map's value, writes the
/// `LINUX_*` values, and returns the `CONFIG_*` externs, still unset.
fn set_linux_values<'a>(
    externs: &[&'a ExternSpec],
    data: &mut [u8],
    linux: &dyn Fn(&str) -> Option<Result<u64, String>>,
) -> Result<Vec<ConfigExtern<'a>>, LoadError> {
    let mut wanted = Vec::new();
    for &e in externs {
        let ExternKind::Kconfig { ty, offset, size } = e.kind else {
            continue;
        };
        let slot = Slot { ty, offset, size };
        let err = |reason: String| LoadError::Extern {
            name: e.name.clone(),
            reason,
        };
        if size == 0 || slot.range().end > data.len() {
            return Err(err(format!(
                "{size} bytes at offset {offset}: not a value inside the .kconfig map ({} bytes)",
                data.len()
            )));
        }
        if e.name.starts_with("CONFIG_") {
            wanted.push(ConfigExtern {
                spec: e,
                slot,
                set: false,
            });
            continue;
        }
        match linux(&e.name) {
            Some(Ok(v)) => slot.set_number(data, v).map_err(err)?,
            Some(Err(reason)) => return Err(err(reason)),
            None if e.name.starts_with("LINUX_") && e.weak => {}
            None if e.name.starts_with("LINUX_") => {
                return Err(err("unknown LINUX_ value (rawbpf computes LINUX_KERNEL_VERSION, LINUX_HAS_BPF_COOKIE and LINUX_HAS_SYSCALL_WRAPPER; declare others __weak to read 0)".into()))
            }
            None => {
                return Err(err(
                    "a __kconfig name must start with CONFIG_ (the kernel's config) or LINUX_ (computed by the loader)".into(),
                ))
            }
        }
    }
    Ok(wanted)
}

/// Writes the value of each `CONFIG_*` extern in `wanted` (sorted by name)
/// that the config sets; the first line of a name counts, as in libbpf.
fn set_config_values(
    config: &KernelConfig,
    wanted: &mut [ConfigExtern<'_>],
    data: &mut [u8],
    warnings: &mut Vec<String>,
) -> Result<(), LoadError> {
    for line in config.text.lines() {
        let Some(rest) = line.strip_prefix("CONFIG_") else {
            continue;
        };
        let (name, value) = match rest.split_once('=') {
            Some((n, v)) => (&line[..n.len() + 7], v),
            None => (line, ""),
        };
        let Ok(k) = wanted.binary_search_by(|w| w.spec.name.as_str().cmp(name)) else {
            continue;
        };
        let c = &mut wanted[k];
        if c.set {
            continue;
        }
        let err = |reason: String| LoadError::Extern {
            name: c.spec.name.clone(),
            reason: format!("{} has {line:?}: {reason}", config.source.display()),
        };
        if value.is_empty() {
            return Err(err("no value".into()));
        }
        c.slot
            .set(data, value, warnings, &c.spec.name)
            .map_err(err)?;
        c.set = true;
    }
    Ok(())
}

/// Where one kconfig value goes and how it is stored.
#[derive(Clone, Copy)]
struct Slot {
    ty: KconfigType,
    offset: u32,
    size: u32,
}

impl Slot {
    fn range(self) -> std::ops::Range<usize> {
        self.offset as usize..self.offset as usize + self.size as usize
    }

    /// One config value (what follows `=`), as libbpf's
    /// `bpf_object__process_kconfig_line`.
    fn set(
        self,
        data: &mut [u8],
        value: &str,
        warnings: &mut Vec<String>,
        name: &str,
    ) -> Result<(), String> {
        match value.as_bytes().first() {
            Some(&c @ (b'y' | b'n' | b'm')) => self.set_tristate(data, c),
            Some(b'"') => self.set_string(data, value, warnings, name),
            _ => {
                let v = parse_u64(value)?;
                if !matches!(self.ty, KconfigType::Int { .. } | KconfigType::Char) {
                    return Err(format!("a {} cannot hold a number", self.describe()));
                }
                self.set_number(data, v)
            }
        }
    }

    fn describe(self) -> String {
        self.ty.describe(self.size)
    }

    fn set_tristate(self, data: &mut [u8], c: u8) -> Result<(), String> {
        let v = match (self.ty, c) {
            (KconfigType::Bool, b'm') => {
                return Err("m (a module) needs a tristate or char, not a bool".into())
            }
            (KconfigType::Bool, _) => u64::from(c == b'y'),
            (KconfigType::Tristate, b'y') => 1,
            (KconfigType::Tristate, b'm') => 2,
            (KconfigType::Tristate, _) => 0,
            (KconfigType::Char, _) => u64::from(c),
            _ => {
                return Err(format!(
                    "{} needs a bool, tristate or char, not a {}",
                    c as char,
                    self.describe()
                ))
            }
        };
        self.write(data, v);
        Ok(())
    }

    fn set_string(
        self,
        data: &mut [u8],
        value: &str,
        warnings: &mut Vec<String>,
        name: &str,
    ) -> Result<(), String> {
        if self.ty != KconfigType::CharArray {
            return Err(format!("a {} cannot hold a string", self.describe()));
        }
        let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
            return Err("a string without its closing quote".into());
        };
        let mut bytes = inner.as_bytes();
        if bytes.len() >= self.size as usize {
            warnings.push(format!(
                "extern {name}: the config's {}-byte string is cut to {} bytes to fit char[{}]",
                bytes.len(),
                self.size - 1,
                self.size
            ));
            bytes = &bytes[..self.size as usize - 1];
        }
        let out = &mut data[self.range()];
        out.fill(0);
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    /// A number, range-checked as libbpf's `is_kcfg_value_in_range` (a
    /// negative number arrives as its two's complement).
    fn set_number(self, data: &mut [u8], v: u64) -> Result<(), String> {
        if !matches!(
            self.ty,
            KconfigType::Int { .. } | KconfigType::Char | KconfigType::Bool
        ) {
            return Err(format!("a {} cannot hold a number", self.describe()));
        }
        if self.ty == KconfigType::Bool && v > 1 {
            return Err(format!("{v} is not a bool (0 or 1)"));
        }
        let bits = self.size * 8;
        let fits = match self.ty {
            _ if bits >= 64 => true,
            KconfigType::Int { signed: true } => v.wrapping_add(1 << (bits - 1)) < (1u64 << bits),
            _ => v >> bits == 0,
        };
        if !fits {
            let signed = matches!(self.ty, KconfigType::Int { signed: true });
            return Err(format!(
                "{} does not fit in a {}",
                if signed {
                    (v as i64).to_string()
                } else {
                    v.to_string()
                },
                self.describe()
            ));
        }
        self.write(data, v);
        Ok(())
    }

    /// Little-endian, as the BPF target is.
    fn write(self, data: &mut [u8], v: u64) {
        let n = (self.size as usize).min(8);
        data[self.range()][..n].copy_from_slice(&v.to_le_bytes()[..n]);
    }
}

/// An unsigned number as C's `strtoull(s, &end, 0)` reads it, the whole
/// string: optional sign, `0x` hex, `0` octal, else decimal.
fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim_start();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    let valid = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
    if !valid {
        return Err(format!("{s:?} is not a number"));
    }
    let v = u64::from_str_radix(digits, radix)
        .map_err(|_| format!("{s:?} is out of range for 64 bits"))?;
    Ok(if negative { v.wrapping_neg() } else { v })
}

/// `KERNEL_VERSION(a, b, c)`: the patch level saturates at 255, as the
/// kernel's own macro does.
pub fn kernel_version_code(a: u32, b: u32, c: u32) -> u32 {
    (a << 16).wrapping_add(b << 8).wrapping_add(c.min(255))
}

/// libbpf's `get_kernel_version` from its inputs: Ubuntu's
/// `/proc/version_signature` (`Ubuntu 5.4.0-12.15-generic 5.4.8`: the last
/// is the real version), else Debian's `uname -v` (`#1 SMP Debian
/// 4.19.260-1 (...)`: `uname -r` says 4.19.0), else `uname -r`.
pub fn parse_kernel_version(
    release: &str,
    version: &str,
    ubuntu_signature: Option<&str>,
) -> Option<u32> {
    let ubuntu = ubuntu_signature
        .and_then(|s| s.split_ascii_whitespace().nth(2))
        .and_then(three_numbers);
    let debian = || {
        version
            .find("Debian ")
            .and_then(|at| three_numbers(&version[at + 7..]))
    };
    let (a, b, c) = ubuntu.or_else(debian).or_else(|| three_numbers(release))?;
    Some(kernel_version_code(a, b, c))
}

/// `sscanf(s, "%u.%u.%u")`: three numbers at the start of `s`; the rest is ignored.
fn three_numbers(s: &str) -> Option<(u32, u32, u32)> {
    let mut rest = s;
    let mut next = |sep: bool| -> Option<u32> {
        if sep {
            rest = rest.strip_prefix('.')?;
        }
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n = rest[..end].parse().ok()?;
        rest = &rest[end..];
        Some(n)
    };
    Some((next(false)?, next(true)?, next(true)?))
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// The running kernel's `LINUX_VERSION_CODE`, or `None` if uname's release
/// is not `A.B.C...`.
pub fn kernel_version() -> Option<u32> {
    parse_kernel_version(
        &read_trimmed("/proc/sys/kernel/osrelease")?,
        &read_trimmed("/proc/sys/kernel/version").unwrap_or_default(),
        read_trimmed("/proc/version_signature").as_deref(),
    )
}

/// Whether tracing programs may call `bpf_get_attach_cookie` (5.15).
pub fn has_bpf_cookie() -> bool {
    crate::probe::probe_helper(crate::uapi::ProgramType::TRACEPOINT, GET_ATTACH_COOKIE)
}

/// The arch's syscall wrapper prefix, as libbpf's `arch_specific_syscall_pfx`.
pub(crate) fn syscall_prefix() -> Option<&'static str> {
    Some(if cfg!(target_arch = "x86_64") {
        "x64"
    } else if cfg!(target_arch = "x86") {
        "ia32"
    } else if cfg!(target_arch = "s390x") {
        "s390x"
    } else if cfg!(target_arch = "arm") {
        "arm"
    } else if cfg!(target_arch = "aarch64") {
        "arm64"
    } else if cfg!(any(target_arch = "mips", target_arch = "mips64")) {
        "mips"
    } else if cfg!(any(target_arch = "riscv32", target_arch = "riscv64")) {
        "riscv"
    } else if cfg!(target_arch = "powerpc") {
        "powerpc"
    } else if cfg!(target_arch = "powerpc64") {
        "powerpc64"
    } else {
        return None;
    })
}

/// Whether the kernel has `__<arch>_sys_bpf` (syscalls behind wrappers, 4.17+ on x86-64).
pub fn has_syscall_wrapper() -> bool {
    if syscall_prefix().is_none() {
        return false;
    }
    let Ok(file) = std::fs::File::open("/proc/kallsyms") else {
        return false;
    };
    has_syscall_wrapper_in(std::io::BufReader::new(file).lines().map_while(Result::ok))
}

/// [`has_syscall_wrapper`] on `/proc/kallsyms` lines already read.
pub fn has_syscall_wrapper_in(lines: impl IntoIterator<Item = impl AsRef<str>>) -> bool {
    let Some(prefix) = syscall_prefix() else {
        return false;
    };
    let wanted = format!("__{prefix}_sys_bpf");
    lines
        .into_iter()
        .any(|line| line.as_ref().split_ascii_whitespace().nth(2) == Some(wanted.as_str()))
}

/// The kernel's config: `/boot/config-$(uname -r)`, else `/proc/config.gz`
/// (libbpf's order), else `/usr/lib/modules/$(uname -r)/config`, where
/// Debian's kernels put it from 7.x on (libbpf does not look there); any may
/// be gzipped. The error lists what was tried.
pub fn read_config() -> Result<KernelConfig, String> {
    let release = read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut tried = Vec::new();
    for path in [
        format!("/boot/config-{release}"),
        "/proc/config.gz".into(),
        format!("/usr/lib/modules/{release}/config"),
    ] {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                tried.push(format!("{path}: {e}"));
                continue;
            }
        };
        let text = if bytes.starts_with(&GZIP_MAGIC) {
            gunzip(&bytes).map_err(|e| format!("{path}: {e}"))?
        } else {
            bytes
        };
        let text = String::from_utf8(text).map_err(|_| format!("{path}: not UTF-8 text"))?;
        return Ok(KernelConfig {
            source: path.into(),
            text,
        });
    }
    Err(tried.join("; "))
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The contents of a one-member gzip file (RFC 1952), checked against its
/// length and CRC-32.
pub fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    let short = || "gzip data is truncated".to_owned();
    if data.len() < 18 || !data.starts_with(&GZIP_MAGIC) {
        return Err("not gzip data".into());
    }
    if data[2] != 8 {
        return Err(format!(
            "gzip compression method {} is not deflate (8)",
            data[2]
        ));
    }
    let flags = data[3];
    if flags & 0xe0 != 0 {
        return Err(format!("gzip header has reserved flags set ({flags:#04x})"));
    }
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let len = data.get(pos..pos + 2).ok_or_else(short)?;
        pos += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let end = data
                .get(pos..)
                .and_then(|rest| rest.iter().position(|&b| b == 0))
                .ok_or_else(short)?;
            pos += end + 1;
        }
    }
    if flags & FHCRC != 0 {
        pos += 2;
    }
    let body_end = data.len() - 8;
    let body = data.get(pos..body_end).ok_or_else(short)?;
    let out = miniz_oxide::inflate::decompress_to_vec_with_limit(body, CONFIG_MAX)
        .map_err(|e| format!("inflating gzip data: {e}"))?;
    let trailer = &data[body_end..];
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let len = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    if len != out.len() as u32 {
        return Err(format!(
            "gzip data inflates to {} bytes, its trailer says {len}",
            out.len()
        ));
    }
    if crc32(&out) != crc {
        return Err("gzip data does not match its CRC-32".into());
    }
    Ok(out)
}

/// CRC-32 (IEEE 802.3, reflected), as gzip uses.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !data.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_known_strings() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn strtoull_forms() {
        assert_eq!(parse_u64("250"), Ok(250));
        assert_eq!(parse_u64("0x1000000"), Ok(0x100_0000));
        assert_eq!(parse_u64("0X1f"), Ok(31));
        assert_eq!(parse_u64("010"), Ok(8));
        assert_eq!(parse_u64("0"), Ok(0));
        assert_eq!(parse_u64("-1"), Ok(u64::MAX));
        assert!(parse_u64("0x").is_err());
        assert!(parse_u64("12a").is_err());
        assert!(parse_u64("099").is_err());
        assert!(parse_u64("18446744073709551616").is_err());
    }
}
