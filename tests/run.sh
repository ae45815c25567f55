#!/usr/bin/env bash
# Runs every rawbpf test, installing what the tests need first.
#
#   bash tests/run.sh        (as root; the kernel tests need it)
#
# - Installs clang-19/llvm-19 (to prove the committed BPF objects are what
#   programs/ compiles to), iproute2 (tests compare with `tc filter show`) and
#   strace (the crash tests kill rawbpf at each system call) when they are
#   missing and we are root.
# - Rebuilds programs/*.bpf.c into a temporary directory and compares them
#   byte for byte with programs/obj/ (programs-build --check).
# - Runs the whole workspace's tests. Tests that need the kernel (root, bpf(2),
#   netns) skip with a printed reason when unprivileged; with CI=true a skip is
#   a failure.
# - Builds the shipped static binary with the release recipe
#   (cli/build-static.sh) and checks that a load's code stays within the
#   64 KiB blocks its symbol-ordering file gives it (docs/static-build.md).
# - Runs them again on Debian's 5.10, 6.1, 6.12 and 7.3 kernels under qemu
#   (tests/vm/run.sh; RAWBPF_VM_KERNELS="6.1" picks kernels, "" skips them
#   outside CI).
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v clang-19 >/dev/null || need_pkgs+=(clang-19)
command -v llvm-strip-19 >/dev/null || need_pkgs+=(llvm-19)
# tc cross-checks what rawbpf attached (a test-only tool: rawbpf never runs it)
command -v tc >/dev/null || need_pkgs+=(iproute2)
# strace kills rawbpf at each of its system calls (tests/kernel_crash*.rs)
command -v strace >/dev/null || need_pkgs+=(strace)
if ((${#need_pkgs[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "tests/run.sh: missing ${need_pkgs[*]}; run as root to install them, or apt-get install them" >&2
        exit 1
    fi
    echo "tests/run.sh: installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

echo "== programs-build --check (committed BPF objects match programs/)"
cargo run -q -p programs-build -- --check

echo "== cargo test --workspace"
cargo test --workspace --all-targets
cargo test --workspace --doc

# The embedder's example, as an application builds it (release): it loads
# the pipeline, attaches it in a throwaway namespace, sees it drop, detaches,
# and its `log` records reach its logger (the library turns no log level off).
echo "== loader/examples/pipeline.rs (release)"
if [ "$(id -u)" -ne 0 ]; then
    if [ "${CI:-}" = true ]; then
        echo "tests/run.sh: the example attaches a program: run as root" >&2
        exit 1
    fi
    echo "SKIP example: it attaches a program (run as root)"
else
    example_log=$(cargo run -q --release -p rawbpf --example pipeline 2>&1) || {
        echo "$example_log" >&2
        echo "tests/run.sh: the example failed" >&2
        exit 1
    }
    echo "$example_log" | tail -n 3
    grep -q '^\[INFO  pipeline\] done:' <<<"$example_log" || {
        echo "tests/run.sh: the example's log records did not appear in a release build" >&2
        exit 1
    }
fi

# The shipped static build (cli/build-static.sh) must link with its
# symbol-ordering file (a function the file names and the binary lacks is an
# error), and the code a load runs must stay within the 64 KiB blocks the
# ordering gives it (bench/src/layout.rs; a miss: bash bench/run.sh --layout).
echo "== layout of the shipped static build"
musl=x86_64-unknown-linux-musl
if [ "$(id -u)" -ne 0 ]; then
    if [ "${CI:-}" = true ]; then
        echo "tests/run.sh: the layout check loads a BPF object: run as root" >&2
        exit 1
    fi
    echo "SKIP layout check: it loads a BPF object (run as root)"
elif [ ! -d "$(rustc --print target-libdir --target "$musl" 2>/dev/null)" ] &&
    ! rustup target add "$musl" >/dev/null; then
    echo "tests/run.sh: no Rust $musl target for the shipped static build" >&2
    exit 1
else
    cargo run -q -p rawbpf-bench -- --check-layout --runs 3
fi

echo "== tests/vm/matrix.sh's arguments (--dry-run)"
bash tests/vm/matrix-test.sh
echo "== tests/vm/check-agree.sh on this machine's own save"
bash tests/vm/check-agree-test.sh

# The same tests on other kernels, each booted under qemu (a few minutes;
# downloads are cached). RAWBPF_VM_KERNELS="" skips them, except in CI.
kernels=${RAWBPF_VM_KERNELS-5.10 6.1 6.12 7.3}
if [ -z "$kernels" ]; then
    if [ "${CI:-}" = true ]; then
        echo "tests/run.sh: CI=true runs the kernel matrix; RAWBPF_VM_KERNELS may not be empty" >&2
        exit 1
    fi
    echo "== kernel matrix skipped (RAWBPF_VM_KERNELS is empty)"
else
    echo "== kernel matrix: $kernels"
    # shellcheck disable=SC2086
    bash tests/vm/run.sh $kernels
fi
