#!/usr/bin/env bash
# Checks tests/vm/matrix.sh's argument handling without booting anything:
# --dry-run prints the plan, bad input exits 2 with a message. Needs no root
# and no network (bash tests/vm/matrix-test.sh [-v]; tests/run.sh runs it).
set -uo pipefail
cd "$(dirname "$0")/../.."
M=tests/vm/matrix.sh
fails=0 passed=0
verbose=false
[ "${1:-}" != -v ] || verbose=true
check() { # NAME WANT_RC WANT_TEXT ARG...  (WANT_TEXT: a fixed string in stdout+stderr)
    local name=$1 want_rc=$2 want=$3 out rc
    shift 3
    out=$(bash "$M" "$@" 2>&1)
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

obj=programs/obj/pipeline.bpf.o
check "default kernels are the four of the matrix" 0 "kernels: 5.10 6.1 6.12 7.3" --dry-run -- rawbpf probe
check "kernels as given, in order" 0 "kernels: 6.1 5.10" --dry-run --kernel 6.1 --kernel 5.10 -- rawbpf probe
check "a Debian kernel version and a package name are kernels" 0 \
    "kernels: 6.1.0-57 linux-image-6.12.118+deb12-amd64-unsigned 7.3.4" \
    --dry-run --kernel 6.1.0-57 --kernel linux-image-6.12.118+deb12-amd64-unsigned --kernel 7.3.4 -- rawbpf probe
check "a relative file goes to its absolute path" 0 "file: $(pwd)/$obj" --dry-run --file "$obj" -- rawbpf load "$obj"
check "commands split at --" 0 "command 2: 'rawbpf' 'check' '$obj'" \
    --dry-run --file "$obj" -- rawbpf load "$obj" -- rawbpf check "$obj" -- rawbpf probe
check "the third command too" 0 "command 3: 'rawbpf' 'probe'" \
    --dry-run -- rawbpf load "$obj" -- rawbpf check "$obj" -- rawbpf probe
check "quotes survive" 0 "command 1: 'echo' 'it'\\''s'" --dry-run -- echo "it's"
check "--save names each kernel's directory" 0 "save: /tmp/m/6.1/probe.json /tmp/m/6.1/vmlinux" \
    --dry-run --kernel 6.1 --save /tmp/m -- rawbpf probe
check "--json" 0 "output: json" --dry-run --json -- rawbpf probe
check "--help" 0 "usage: bash tests/vm/matrix.sh" --help

check "no command" 2 "no command" --kernel 6.1
check "nothing after --" 2 "no command" --kernel 6.1 --
check "an empty command" 2 "an empty command" -- rawbpf probe -- -- rawbpf probe
check "a trailing --" 2 "an empty command" -- rawbpf probe --
check "an unknown kernel" 2 "unknown kernel 'bogus'" --kernel bogus -- rawbpf probe
check "a kernel twice" 2 "kernel 6.1 given twice" --kernel 6.1 --kernel 6.1 -- rawbpf probe
check "a missing file" 2 "no such file: /nonexistent/x.bpf.o" --file /nonexistent/x.bpf.o -- rawbpf probe
check "an unknown option" 2 "unknown option '--kernels'" --kernels 6.1 -- rawbpf probe
check "an option without its value" 2 "--kernel needs a value" --kernel
check "a bad timeout" 2 "--timeout takes seconds" --timeout soon -- rawbpf probe

[ "$fails" = 0 ] || { echo "matrix-test: $fails failed"; exit 1; }
echo "matrix-test: $passed passed"
