//! Links the `rawbpf` binary with `hot-text.ld`, which places the code
//! `rawbpf load` runs together at the start of the text (see that file and
//! bench/src/hot_text.rs, which makes it). The kernel maps a binary's text
//! 64 KiB around each page fault, so this is what keeps `load` at a few
//! hundred KiB of RSS and page-fault time however large the rest of the
//! binary grows. Only the `rawbpf` binary, and only ELF targets on Linux with
//! GNU ld or LLD, which both read an `INSERT BEFORE` script as an addition to
//! their default layout; elsewhere nothing changes.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=hot-text.ld");
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || !matches!(env.as_str(), "gnu" | "musl") {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = Path::new(&dir).join("hot-text.ld");
    println!("cargo:rustc-link-arg-bin=rawbpf=-T{}", script.display());
    // bench/src/hot_text.rs asks for a link map here rather than through
    // RUSTFLAGS: cargo hashes RUSTFLAGS into the symbol names, so a map
    // made with other flags names generic functions that the measured
    // build does not have.
    println!("cargo:rerun-if-env-changed=RAWBPF_LINK_MAP");
    if let Some(map) = std::env::var_os("RAWBPF_LINK_MAP") {
        println!(
            "cargo:rustc-link-arg-bin=rawbpf=-Wl,-Map={}",
            Path::new(&map).display()
        );
    }
    let gcc_ld = match linker() {
        Linker::Other => return,
        Linker::RustLld => None,
        Linker::RustLldFor(dir) => Some(dir),
    };
    if let Some(dir) = gcc_ld {
        // The musl target links with the C compiler's default (GNU ld);
        // link it with the toolchain's own LLD, as rustc does for
        // x86_64-unknown-linux-gnu, so that the static build gets the
        // folding below.
        println!("cargo:rustc-link-arg-bin=rawbpf=-fuse-ld=lld");
        println!("cargo:rustc-link-arg-bin=rawbpf=-B{}", dir.display());
    }
    // Identical code folding: the many monomorphic copies of the same
    // machine code (netlink-packet-route's parsers, iterator adaptors) are
    // kept once. ~25 KB of the static binary; LLD only.
    println!("cargo:rustc-link-arg-bin=rawbpf=-Wl,--icf=all");
}

/// Who links the binary.
enum Linker {
    /// A linker chosen in flags or the environment, or another target:
    /// left alone.
    Other,
    /// The rust-lld rustc uses by default for x86_64-unknown-linux-gnu
    /// (since 1.90).
    RustLld,
    /// The C compiler's default linker, which we replace with the rust-lld
    /// in this `gcc-ld` directory (x86_64-unknown-linux-musl).
    RustLldFor(std::path::PathBuf),
}

/// Who links the binary: see [`Linker`]. GNU ld does not know `--icf`, and
/// other targets are left as they are.
fn linker() -> Linker {
    let target = std::env::var("TARGET").unwrap_or_default();
    let var = format!(
        "CARGO_TARGET_{}_LINKER",
        target.to_uppercase().replace('-', "_")
    );
    println!("cargo:rerun-if-env-changed={var}");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("linker") || flags.contains("fuse-ld") || std::env::var_os(&var).is_some() {
        return Linker::Other;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let ask = |arg: &str| {
        std::process::Command::new(&rustc)
            .arg(arg)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
    };
    match target.as_str() {
        "x86_64-unknown-linux-gnu" => {
            let minor = ask("-V")
                .and_then(|v| {
                    v.split_whitespace()
                        .nth(1)?
                        .split('.')
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
                .unwrap_or(0);
            if minor >= 90 {
                Linker::RustLld
            } else {
                Linker::Other
            }
        }
        "x86_64-unknown-linux-musl" => {
            let host = std::env::var("HOST").unwrap_or_default();
            let gcc_ld = ask("--print=sysroot").map(|sysroot| {
                Path::new(sysroot.trim())
                    .join("lib/rustlib")
                    .join(host)
                    .join("bin/gcc-ld")
            });
            match gcc_ld {
                Some(dir) if dir.join("ld.lld").exists() => Linker::RustLldFor(dir),
                _ => Linker::Other,
            }
        }
        _ => Linker::Other,
    }
}
