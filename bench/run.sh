#!/usr/bin/env bash
# Benchmarks rawbpf against a libbpf loader doing the same job, in one run,
# and prints a markdown table (see README "Benchmarks"). Root; not part of
# the test run.
#
#   bash bench/run.sh [--runs N]      # default 200 runs per measurement, of
#                                     # the shipped static build
#                                     # (cli/build-static.sh)
#   bash bench/run.sh --no-layout ... # the same build without the ordering
#                                     # file, to see what it gains
#   bash bench/run.sh --links-only [--runs N]
#                                     # issue 21's rows alone: a 12-program
#                                     # tracing attach + detach against
#                                     # bench/anchor/libbpf_attach.c, and
#                                     # `list --json` with 1,000 links
#                                     # against `bpftool link list -j`
#   bash bench/run.sh --layout        # regenerate cli/load-order.txt (the
#                                     # load path's code layout; see
#                                     # bench/src/layout.rs), then commit it
#   bash bench/run.sh --check-layout  # what tests/run.sh checks: the shipped
#                                     # build links, and a load's code spans
#                                     # at most LOAD_BLOCKS_MAX 64 KiB blocks
#
# Installs what it needs (gcc, libbpf-dev and the static libraries it links
# with, strace, linux-perf, bpftool, Rust's musl target) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/run.sh: run as root (it loads BPF programs and makes a network namespace)" >&2
    exit 1
fi
need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
[ -e /usr/lib/x86_64-linux-gnu/libbpf.a ] || need+=(libbpf-dev)
[ -e /usr/lib/x86_64-linux-gnu/libelf.a ] || need+=(libelf-dev)
[ -e /usr/lib/x86_64-linux-gnu/libz.a ] || need+=(zlib1g-dev)
[ -e /usr/lib/x86_64-linux-gnu/libzstd.a ] || need+=(libzstd-dev)
command -v strace >/dev/null || need+=(strace)
[ -x /usr/bin/time ] || need+=(time)
command -v perf >/dev/null || need+=(linux-perf)
command -v bpftool >/dev/null || [ -x /usr/sbin/bpftool ] || need+=(bpftool)
if ((${#need[@]})); then
    echo "bench/run.sh: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
# rawbpf's static build is musl (docs/static-build.md); without Rust's
# target for it the bench measures the glibc static build alone.
musl=x86_64-unknown-linux-musl
if [ ! -d "$(rustc --print target-libdir --target "$musl" 2>/dev/null)" ]; then
    echo "bench/run.sh: adding Rust's $musl target"
    rustup target add "$musl" >/dev/null ||
        echo "bench/run.sh: no $musl target: measuring the glibc static build only" >&2
fi
exec cargo run -q --profile bench -p rawbpf-bench -- "$@"
