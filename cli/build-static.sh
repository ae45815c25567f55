#!/usr/bin/env bash
# The release recipe: builds the static `rawbpf` that ships, and prints its
# path on the last line of stdout. docs/static-build.md explains each step.
#
#   bash cli/build-static.sh [--target-dir DIR] [--no-order] [--map FILE] [--glibc]
#
# The shipped build is musl, with the CLI's `log-off` feature (every log
# record compiled out: ~150 KiB of Debug code), linked by the toolchain's own LLD (rust-lld,
# which rustc finds in its sysroot; `-C linker=rust-lld` is stable) with:
#   --icf=all                       identical functions kept once (~25 KB)
#   --symbol-ordering-file=cli/load-order.txt (a copy named by its hash)
#                                   the functions `rawbpf load` runs first, in
#                                   the order it runs them, at the start of the
#                                   text (then attach's, list's, detach's), so
#                                   that a load's code lies in a few 64 KiB
#                                   blocks: the kernel maps a binary's text 64
#                                   KiB around each page fault, so this keeps a
#                                   load's peak RSS near 0.7 MiB instead of 1.4
#   --fatal-warnings                a symbol the ordering file names that the
#                                   binary no longer has (a renamed function, a
#                                   new dependency or toolchain) fails the
#                                   build instead of silently costing memory:
#                                   regenerate the file with
#                                   `bash bench/run.sh --layout` and commit it.
#
# --no-order   the same build without the ordering file (what `--layout`
#              single-steps, and the bench's "without layout" figures)
# --map FILE   also write the linker's map to FILE (for `--layout`)
# --glibc      the fallback static build (x86_64-unknown-linux-gnu, glibc,
#              +crt-static) for machines without Rust's musl target: linked
#              as rustc links that target by default, no ordering (the file
#              names musl's start-up functions)
#
# Only this build uses these link options: `cargo build`, `cargo test` and
# every debug or test link are plain.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
target_dir=target
order=cli/load-order.txt
map=
while (($#)); do
    case $1 in
    --target-dir) target_dir=$2; shift ;;
    --no-order) order= ;;
    --map) map=$2; shift ;;
    --glibc) target=x86_64-unknown-linux-gnu order= ;;
    *) echo "usage: cli/build-static.sh [--target-dir DIR] [--no-order] [--map FILE] [--glibc]" >&2; exit 2 ;;
    esac
    shift
done

# Every crate: a static executable, not a static PIE (no self-relocation at
# start-up, smaller). The same for every build of the recipe, so that the
# symbol names in the ordering file are the names the build produces.
export RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static'
# Link options: given to the final link only (`cargo rustc -- ...`), which
# leaves every crate's symbol names as they are.
link=()
if [ "$target" = x86_64-unknown-linux-musl ]; then
    link+=(-C linker=rust-lld -C linker-flavor=ld.lld -C link-arg=--icf=all)
    if [ -n "$order" ]; then
        # Cargo relinks when the link options change, not when a file they
        # name does: hand LLD a copy named by its contents, so that a new
        # ordering file is a new option and a relink (checked again).
        mkdir -p "$target_dir"
        copy="$target_dir/load-order-$(sha256sum "$order" | cut -c1-16).txt"
        cp "$order" "$copy"
        link+=(-C "link-arg=--symbol-ordering-file=$copy" -C link-arg=--fatal-warnings)
    fi
    # Mangled names in the map, as the ordering file needs them.
    [ -z "$map" ] || link+=(-C "link-arg=-Map=$map" -C link-arg=--no-demangle)
elif [ -n "$map" ]; then
    link+=(-C "link-arg=-Wl,-Map=$map")
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# log-off: every `log` record compiled out (cli/Cargo.toml says why).
if ! cargo rustc -q --release --locked --target "$target" --target-dir "$target_dir" \
    -p rawbpf-cli --bin rawbpf --features log-off -- "${link[@]}" 2>"$log"; then
    cat "$log" >&2
    if grep -q 'symbol ordering file' "$log"; then
        echo "cli/build-static.sh: $order names functions the binary no longer has;" \
            "regenerate it with \`bash bench/run.sh --layout\` (root) and commit it" >&2
    fi
    exit 1
fi
cat "$log" >&2
echo "$target_dir/$target/release/rawbpf"
