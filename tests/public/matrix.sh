#!/usr/bin/env bash
# Public objects on other kernels: for each kernel of the matrix, how many of
# a directory of BPF objects libbpf loads, how many of those rawbpf loads, and
# how often `rawbpf check --target` (made from that guest's probe and BTF)
# agrees with rawbpf's load there. Root, qemu (tests/vm/). Not part of
# tests/run.sh: the objects are other people's and are not committed
# (docs/public-objects.md says how to build them).
#
#   bash tests/public/matrix.sh OBJ_DIR [--kernel K]... [--out DIR] [--timeout S]
#                               [--no-run] [--targets DIR]
#
# OBJ_DIR   *.bpf.o files (e.g. libbpf-bootstrap's and libbpf-tools' objects
#           as tests/public/run.sh builds them)
# --kernel  a kernel of tests/vm/matrix.sh (default 5.10 6.1 6.12 7.3); the
#           guests run one at a time in parallel, each its own qemu
# --out     where each kernel's results are kept (default target/public-matrix):
#           OUT/K/ has matrix.sh's --save files (probe.json, vmlinux, N.rc...)
# --no-run  no guests: tally what an earlier run left in OUT
# --targets where the guests' probe.json and vmlinux are (DIR/K/; default
#           OUT), e.g. saved by a later `tests/vm/matrix.sh --save DIR`
#
# In each guest, per object: `libbpf_load OBJ` (tests/public/libbpf_load.c,
# Debian's libbpf linked statically) and `rawbpf load OBJ`. On the host:
# `rawbpf check OBJ --target OUT/K/probe.json --btf OUT/K/vmlinux`.
# Prints a markdown table per kernel and one summary line each.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
die() { echo "public/matrix: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: bash tests/public/matrix.sh OBJ_DIR [--kernel K]... [--out DIR] [--timeout S]"
OBJS=$(cd "$1" 2>/dev/null && pwd) || die "no such directory: $1"
shift
KERNELS=() OUT="$ROOT/target/public-matrix" TIMEOUT=3600 RUN=true TARGETS=""
while [ $# -gt 0 ]; do
    case "$1" in
    --kernel) KERNELS+=("${2:?--kernel needs a value}"); shift 2 ;;
    --out) OUT=${2:?--out needs a value}; shift 2 ;;
    --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift 2 ;;
    --no-run) RUN=false; shift ;;
    --targets) TARGETS=${2:?--targets needs a directory}; shift 2 ;;
    *) die "unknown option '$1'" ;;
    esac
done
[ ${#KERNELS[@]} -gt 0 ] || KERNELS=(5.10 6.1 6.12 7.3)
mapfile -t objs < <(find "$OBJS" -maxdepth 1 -name '*.bpf.o' | sort)
[ ${#objs[@]} -gt 0 ] || die "no *.bpf.o in $OBJS"
[ -e /usr/lib/x86_64-linux-gnu/libbpf.a ] || {
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        gcc libc6-dev libbpf-dev libelf-dev zlib1g-dev libzstd-dev >/dev/null
}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TARGETS=${TARGETS:-$OUT}
echo "public/matrix: building the static rawbpf" >&2
# The code-layout ordering only saves memory; a checkout whose ordering file
# is behind its code still builds without it.
BIN=$(bash cli/build-static.sh --no-order | tail -n1)
[ -x "$BIN" ] || die "the static build failed"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

if $RUN; then
    LOADER="$OUT/libbpf_load"
    gcc -O2 -Wall -static -s tests/public/libbpf_load.c -o "$LOADER" -lbpf -lelf -lz -lzstd
    # One guest per kernel, all at once; per object two commands (2i-1
    # libbpf, 2i rawbpf).
    cmds=()
    for o in "${objs[@]}"; do cmds+=(-- "$LOADER" "$o" -- rawbpf load "$o"); done
    pids=()
    for k in "${KERNELS[@]}"; do
        rm -rf "${OUT:?}/$k"
        bash tests/vm/matrix.sh --kernel "$k" --file "$OBJS" --file "$LOADER" --rawbpf "$BIN" \
            --timeout "$TIMEOUT" --save "$OUT" "${cmds[@]}" >"$OUT/$k.table" 2>"$OUT/$k.log" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
fi

first_line() { grep -m1 -v '^[[:space:]]*$' "$1" 2>/dev/null | tr -d '\r' | cut -c1-160 | sed 's/|/\\|/g' || true; }
for k in "${KERNELS[@]}"; do
    d="$OUT/$k"
    if [ ! -e "$d/1.rc" ]; then
        echo "kernel $k: the guest did not finish (see $OUT/$k.log)"
        continue
    fi
    t="$TARGETS/$k" target_ok=false
    [ -e "$t/probe.json" ] && [ -e "$t/vmlinux" ] && target_ok=true
    echo
    echo "### kernel $k ($(cat "$d/release" 2>/dev/null || echo '?'))"
    echo
    echo "| object | libbpf | rawbpf | check --target | rawbpf's first error line |"
    echo "|---|---|---|---|---|"
    lib=0 both=0 only_raw=0 agree=0 checked=0
    for i in "${!objs[@]}"; do
        o=${objs[$i]} n=$(basename "${objs[$i]}" .bpf.o)
        l=$(cat "$d/$((2 * i + 1)).rc") r=$(cat "$d/$((2 * i + 2)).rc")
        [ "$l" = 0 ] && lib=$((lib + 1))
        [ "$l" = 0 ] && [ "$r" = 0 ] && both=$((both + 1))
        [ "$l" != 0 ] && [ "$r" = 0 ] && only_raw=$((only_raw + 1))
        c=-
        if $target_ok; then
            "$BIN" check "$o" --target "$t/probe.json" --btf "$t/vmlinux" >/dev/null 2>&1 && cr=0 || cr=$?
            checked=$((checked + 1))
            if { [ "$cr" = 0 ] && [ "$r" = 0 ]; } || { [ "$cr" = 1 ] && [ "$r" != 0 ]; }; then
                agree=$((agree + 1)) c="agrees ($cr)"
            else
                c="**disagrees** (check $cr)"
            fi
        fi
        err=""
        [ "$r" = 0 ] || err=$(first_line "$d/$((2 * i + 2)).stderr")
        echo "| $n | $([ "$l" = 0 ] && echo loads || echo refused) | $([ "$r" = 0 ] && echo loads || echo refused) | $c | $err |"
    done
    echo
    echo "kernel $k: libbpf loads $lib of ${#objs[@]}; rawbpf loads $both of those (and $only_raw that libbpf refuses);" \
        "check --target agrees with rawbpf's load on $agree of $checked"
done
