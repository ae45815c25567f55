#!/usr/bin/env bash
# Checks tests/vm/check-agree.sh without booting anything: a save directory
# laid out as `matrix.sh --save` leaves it, made from this machine (its
# probe --json --full, its BTF, real loads here), must agree everywhere;
# a made-up wrong load result must show as a disagreement; bad input exits 2.
# Usage errors and --dry-run need no root; the rest is skipped without it.
#   bash tests/vm/check-agree-test.sh [-v]
set -uo pipefail
cd "$(dirname "$0")/../.."
S=tests/vm/check-agree.sh
BIN=target/debug/rawbpf
fails=0 passed=0
verbose=false
[ "${1:-}" != -v ] || verbose=true
check() { # NAME WANT_RC WANT_TEXT ARG...
    local name=$1 want_rc=$2 want=$3 out rc
    shift 3
    out=$(bash "$S" "$@" 2>&1)
    rc=$?
    if [ "$rc" != "$want_rc" ] || ! grep -qF -- "$want" <<<"$out"; then
        echo "FAIL $name: exit $rc (want $want_rc), output lacks '$want':"
        sed 's/^/    /' <<<"$out"
        fails=$((fails + 1))
    else
        passed=$((passed + 1))
        ! $verbose || echo "ok   $name"
    fi
}

D=$(mktemp -d /tmp/rawbpf-check-agree.XXXXXX)
trap 'rm -rf "$D"' EXIT
mkdir -p "$D/host" "$D/empty"
objs=(xdp.bpf.o cgroup_unix.bpf.o kconfig_missing.bpf.o core_reloc.bpf.o map_refused.bpf.o)
for i in "${!objs[@]}"; do
    echo "'rawbpf' 'load' 'programs/obj/${objs[$i]}'" >"$D/host/$((i + 1)).cmd"
done
echo "'rawbpf' 'probe'" >"$D/host/9.cmd"
pwd >"$D/host/cwd"
echo '{}' >"$D/host/probe.json"

check "usage: no DIR" 2 "no DIR"
check "usage: no such DIR" 2 "no such directory" /nonexistent/saved
check "usage: nothing saved" 2 "holds no kernel directory" "$D/empty"
check "usage: a kernel not saved" 2 "kernel 6.1 not saved" "$D" --kernel 6.1
check "dry run: one check per load command" 0 \
    "host: $(pwd)/$BIN check $(pwd)/programs/obj/cgroup_unix.bpf.o --target $D/host/probe.json" \
    "$D" --dry-run --rawbpf "$BIN"

if [ "$(id -u)" = 0 ] && [ -x "$BIN" ]; then
    "$BIN" probe --json --full >"$D/host/probe.json"
    cp /sys/kernel/btf/vmlinux "$D/host/vmlinux"
    for i in "${!objs[@]}"; do
        n=$((i + 1))
        "$BIN" load "programs/obj/${objs[$i]}" >"$D/host/$n.stdout" 2>"$D/host/$n.stderr"
        echo $? >"$D/host/$n.rc"
    done
    check "this machine's own save agrees" 0 "host: check --target agrees with load on 5 of 5 objects" "$D" --rawbpf "$BIN"
    echo 1 >"$D/host/1.rc"
    echo "made-up failure" >"$D/host/1.stderr"
    check "a wrong load result disagrees" 1 "xdp.bpf.o: check would load, load failed: made-up failure" "$D" --rawbpf "$BIN"
    check "--json counts" 1 '"kernel":"host","agree":4,"total":5' "$D" --rawbpf "$BIN" --json
    rm "$D/host/2.rc"
    check "a load without its exit status fails" 1 \
        "cgroup_unix.bpf.o: the load left no exit status" "$D" --rawbpf "$BIN"
    rm "$D"/host/*.rc
    check "no load results at all fails" 1 "agrees with load on 0 of 0 objects" "$D" --rawbpf "$BIN"
elif [ "${CI:-}" = true ]; then
    echo "FAIL the runs against this kernel: need root and $BIN; under CI=true a skip is a failure"
    fails=$((fails + 1))
else
    echo "SKIP the runs against this kernel: need root and $BIN (cargo build -p rawbpf-cli)"
fi

[ "$fails" = 0 ] || { echo "check-agree-test: $fails failed"; exit 1; }
echo "check-agree-test: $passed passed"
