#!/usr/bin/env bash
# Coverage-guided fuzzing of rawbpf with cargo-afl, on stable Rust.
#
#   bash fuzz/run.sh TARGET [SECONDS] [EXECUTIONS]
#
# TARGET is `parse` (bytes -> ObjectSpec::parse -> link every program, patch
# map fds, encode func/line info and BTF, check against two made-up kernels),
# `btf` (bytes -> Btf::parse -> every type look-up -> to_bytes, which must
# parse back to the same BTF) or `cli` (NUL-separated argument vectors -> the
# rawbpf command-line parser; each line -> the --tail and swap value parsers). The run stops
# after SECONDS (default 600) or about EXECUTIONS executions, whichever comes
# first, then prints executions, coverage, crashes and hangs, and exits 1 if
# it found any crash or hang. Not part of the normal test run.
#
# Installs cargo-afl (and builds AFL++ for this rustc) if missing. Runs
# niced, one AFL process (one core). Seeds: programs/obj/*.o and
# tests/data/malformed/* for parse, the objects' BTF for btf,
# fuzz/seeds/cli/* for cli. Output goes to
# fuzz/out/TARGET (replaced on each run); a crash replays with
#   $CARGO_TARGET_DIR/release/TARGET fuzz/out/TARGET/default/crashes/id:...
# Environment: CARGO_TARGET_DIR (default fuzz/target), AFL_TIMEOUT_MS
# (default 200: an input that takes longer is a hang).
set -euo pipefail

target=${1:?usage: fuzz/run.sh parse|btf|cli [SECONDS] [EXECUTIONS]}
seconds=${2:-600}
execs=${3:-}
case $target in parse | btf | cli) ;; *)
    echo "fuzz/run.sh: unknown target $target (parse, btf or cli)" >&2
    exit 2
    ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}

if ! cargo afl --version >/dev/null 2>&1; then
    echo "== installing cargo-afl"
    cargo install --locked cargo-afl
fi
# AFL++ itself, built once per rustc version ("already built" otherwise).
if ! config=$(cargo afl config --build 2>&1) && ! grep -q "already built" <<<"$config"; then
    echo "$config" >&2
    echo "fuzz/run.sh: building AFL++ failed (it needs make and a C compiler)" >&2
    exit 1
fi

echo "== building $target"
(cd "$here" && nice -n 19 cargo afl build --release --bin "$target" -j1)

out=$here/out/$target
rm -rf "$out"
mkdir -p "$out/seeds"
if [ "$target" = parse ]; then
    cp "$root"/programs/obj/*.o "$out/seeds/"
    find "$root/tests/data/malformed" -maxdepth 1 -type f ! -name EXPECTED \
        -exec cp {} "$out/seeds/" \; 2>/dev/null || true
elif [ "$target" = btf ]; then
    "$CARGO_TARGET_DIR/release/btf" --seeds "$out/seeds" "$root"/programs/obj/*.o
else
    cp "$here"/seeds/cli/* "$out/seeds/"
fi

limit=(-V "$seconds")
[ -n "$execs" ] && limit+=(-E "$execs")

echo "== fuzzing $target for at most ${seconds}s${execs:+ or $execs executions} (log: $out/afl.log)"
start=$(date +%s)
AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
    nice -n 19 cargo afl fuzz -i "$out/seeds" -o "$out" -t "${AFL_TIMEOUT_MS:-200}" \
    "${limit[@]}" "$CARGO_TARGET_DIR/release/$target" 2>&1 |
    { grep -v "Fuzzing test case" || true; } >"$out/afl.log" || {
    tail -20 "$out/afl.log" >&2
    exit 1
}
wall=$(($(date +%s) - start))

stats=$out/default/fuzzer_stats
stat() { sed -n "s/^$1 *: //p" "$stats"; }
crashes=$(stat saved_crashes)
hangs=$(stat saved_hangs)
echo "== $target: $(stat execs_done) executions in ${wall}s ($(stat execs_per_sec)/s)," \
    "coverage $(stat bitmap_cvg) ($(stat edges_found) of $(stat total_edges) edges)," \
    "corpus $(stat corpus_count), crashes $crashes, hangs $hangs"
if [ "$crashes" != 0 ] || [ "$hangs" != 0 ]; then
    ls "$out"/default/crashes "$out"/default/hangs
    exit 1
fi
