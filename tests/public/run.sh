#!/usr/bin/env bash
# Attaches public libbpf objects with `rawbpf attach OBJ`, as their own
# loaders' skeletons would, and sets each result beside libbpf's (bpftool
# prog loadall) on the same object. Root. Not part of tests/run.sh: the
# sources are other people's and are not committed here (docs/public-objects.md).
#
#   bash tests/public/run.sh LIBBPF_BOOTSTRAP_DIR BCC_DIR [RAWBPF]
#
# LIBBPF_BOOTSTRAP_DIR: a clone of github.com/libbpf/libbpf-bootstrap
# BCC_DIR:              a clone of github.com/iovisor/bcc (libbpf-tools/)
# RAWBPF:               the binary to try (default: target/release/rawbpf)
# PUBLIC_OBJ_DIR=DIR    (environment) also keep the built objects in DIR, for
#                       tests/public/matrix.sh DIR (the same objects on other kernels)
#
# Needs clang-19, libbpf-dev (its headers) and bpftool (vmlinux.h, and the
# libbpf side of the comparison). Prints one row per object and a summary.
set -euo pipefail
cd "$(dirname "$0")/../.."
bs=${1:?usage: tests/public/run.sh LIBBPF_BOOTSTRAP_DIR BCC_DIR [RAWBPF]}
bcc=${2:?usage: tests/public/run.sh LIBBPF_BOOTSTRAP_DIR BCC_DIR [RAWBPF]}
rawbpf=${3:-target/release/rawbpf}
[ -x "$rawbpf" ] || cargo build -q --release -p rawbpf-cli
for tool in clang-19 bpftool; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done
[ -e /usr/include/bpf/bpf_helpers.h ] || { echo "run.sh: libbpf-dev is needed" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$work/vmlinux.h"
cflags=(-g -O2 -target bpf -D__TARGET_ARCH_x86 -I"$work" -I/usr/include/x86_64-linux-gnu)
mkdir -p "$work/obj"
build() { # prefix dir extra-includes...
    local prefix=$1 dir=$2 f n
    shift 2
    for f in "$dir"/*.bpf.c; do
        n=$(basename "$f" .bpf.c)
        clang-19 "${cflags[@]}" "$@" -c "$f" -o "$work/obj/${prefix}_$n.bpf.o" 2>/dev/null ||
            echo "| ${prefix}_$n | does not build with this libbpf-dev's headers | | |"
    done
}
echo "| object | rawbpf attach | libbpf (bpftool prog loadall) | rawbpf's first line |"
echo "|---|---|---|---|"
build bs "$bs/examples/c"
build lt "$bcc/libbpf-tools" -I"$bcc/libbpf-tools" -I"$bcc/libbpf-tools/x86"

if [ -n "${PUBLIC_OBJ_DIR:-}" ]; then
    mkdir -p "$PUBLIC_OBJ_DIR"
    cp "$work"/obj/*.bpf.o "$PUBLIC_OBJ_DIR"/
fi
attached=0 failed=0 both=0
for o in "$work"/obj/*.bpf.o; do
    n=$(basename "$o" .bpf.o)
    group="public_$$_$n"
    if out=$(timeout 120 "$rawbpf" attach "$o" --name "$group" 2>&1); then
        r="attached: $(grep -c ' -> ' <<<"$out") links"
        attached=$((attached + 1))
        "$rawbpf" detach --name "$group" >/dev/null
    else
        r="refused"
        failed=$((failed + 1))
    fi
    pin="/sys/fs/bpf/public_$$_$n"
    mkdir -p "$pin"
    if bpftool prog loadall "$o" "$pin" >/dev/null 2>&1; then l=loads; else
        l="refused"
        [ "$r" = refused ] && both=$((both + 1))
    fi
    rm -rf "$pin"
    first=$(head -1 <<<"$out" | sed 's/|/\\|/g' | cut -c1-220)
    echo "| $n | $r | $l | $first |"
done
echo
echo "rawbpf attached $attached objects and refused $failed ($both of them libbpf refuses to load too)."
