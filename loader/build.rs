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
    if links_with_rust_lld() {
        // Identical code folding: the many monomorphic copies of the same
        // machine code (netlink-packet-route's parsers, iterator adaptors)
        // are kept once. ~25 KB of the static binary; LLD only.
        println!("cargo:rustc-link-arg-bin=rawbpf=-Wl,--icf=all");
    }
}

/// Whether the binary is linked by the rust-lld rustc uses by default for
/// x86_64-unknown-linux-gnu (since 1.90), not a linker chosen in flags or
/// the environment (GNU ld does not know `--icf`).
fn links_with_rust_lld() -> bool {
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let chosen_linker = flags.contains("linker")
        || std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let minor = std::process::Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| {
            let v = String::from_utf8(o.stdout).ok()?;
            v.split_whitespace()
                .nth(1)?
                .split('.')
                .nth(1)?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    target == "x86_64-unknown-linux-gnu" && !chosen_linker && minor >= 90
}
