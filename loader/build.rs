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
}
