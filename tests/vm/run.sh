#!/usr/bin/env bash
# Runs rawbpf's tests on other kernels, each booted under qemu (TCG: nested
# KVM does not work on our machines), and prints a pass/fail table.
#
#   bash tests/vm/run.sh [KERNEL...]     # default: 5.10 6.1 6.12 7.3
#
# For each kernel it downloads Debian's kernel package (5.10 from
# bullseye(-security), 6.1 and 6.12 from bookworm, 7.3 from
# trixie-backports, through a private apt configuration so the system's apt
# setup is untouched), takes the vmlinuz and the veth / sch_ingress /
# cls_bpf modules, and builds an initramfs with busybox-static, the static
# rawbpf binary, the statically linked test binaries and the committed BPF
# objects (at the paths the tests were built with). The guest runs every
# test binary with CI=true and powers off. Downloads are cached in
# $RAWBPF_VM_CACHE (default /var/cache/rawbpf-vm). What this script and
# tests/vm/matrix.sh (your own commands on these kernels) share is in
# tests/vm/lib.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=$(mktemp -d /tmp/rawbpf-vm.XXXXXX)
LOGS="$ROOT/target/vm-logs"
mkdir -p "$LOGS"
trap 'rm -rf "$WORK"' EXIT
KERNELS=("$@")
[ ${#KERNELS[@]} -gt 0 ] || KERNELS=(5.10 6.1 6.12 7.3) # lib.sh's VM_DEFAULT_KERNELS

# Tests that need host tools the guest has no real version of (iproute2's
# tc and ip -n, util-linux's runuser and setpriv): they run on the host only.
HOST_ONLY=(tc_and_list_agree detach_after_the_device_is_gone missing_privileges_are_named
    commands_without_capabilities_say_what_they_need
    # loader/tests/layering.rs reads the sources, which the guests lack
    no_import_circle_among_modules no_library_file_over_1000_lines
    obj_uses_nothing_of_rawbpf_but_uapi)

# The crash tests (tests/kernel_crash*.rs, named crash_*) kill rawbpf at each
# of its system calls with strace. Debian's strace is dynamically linked: the
# guests of these kernels get it with the libraries ldd lists and the dynamic
# loader; the others skip the crash tests and say why.
CRASH_KERNELS=" ${RAWBPF_VM_CRASH_KERNELS-6.12} "

VM_SAY_FD=1
. tests/vm/lib.sh
vm_install_tools strace
vm_apt_setup

# --- Static test binaries --------------------------------------------------
# musl, as rawbpf's static build is (docs/static-build.md); glibc when
# rustup cannot add Rust's musl target (lib.sh; the host run tests glibc anyway).
vm_build_rawbpf
echo "vm: building static test binaries ($VM_TARGET)"
# The library's tests and the CLI package's (tests/*.rs, which run the
# binary). A failed build must fail the run, not boot guests with fewer tests.
cargo test -q --release --target "$VM_TARGET" -p rawbpf -p rawbpf-cli --no-run --message-format=json >"$WORK/tests.json"
mapfile -t TESTS < <(grep -o '"executable":"[^"]*/deps/[^"]*"' "$WORK/tests.json" |
    sed 's/"executable":"\(.*\)"/\1/' | sort -u)
echo "vm: ${#TESTS[@]} test binaries"
BIN=$VM_BIN

# --- One guest per kernel --------------------------------------------------
build_initramfs() { # kver-dir out kernel
    local kdir=$1 out=$2 k=$3 rootfs="$WORK/rootfs"
    vm_rootfs_base "$rootfs" "$kdir"
    # bash, with the libraries ldd names: tests/cli_groups.rs moves a shell
    # into a cgroup and connects with bash's /dev/tcp.
    vm_copy_with_libs "$rootfs" /bin/bash
    # The tests find the binary and the objects at the paths they were built
    # with, which go through each package's directory (loader/../programs/obj,
    # cli/../tests/data): both must exist.
    mkdir -p "$rootfs$(dirname "$BIN")" "$rootfs$ROOT/programs" "$rootfs$ROOT/loader" "$rootfs$ROOT/cli"
    cp "$BIN" "$rootfs$BIN"
    cp -r "$ROOT/programs/obj" "$rootfs$ROOT/programs/obj"
    mkdir -p "$rootfs$ROOT/tests"
    cp -r "$ROOT/tests/data" "$rootfs$ROOT/tests/data"
    mkdir -p "$rootfs/tests"
    for t in "${TESTS[@]}"; do cp "$t" "$rootfs/tests/"; done
    local skips="" crash_skip=""
    for s in "${HOST_ONLY[@]}"; do skips+=" --skip $s"; done
    if [[ $CRASH_KERNELS == *" $k "* ]]; then
        vm_copy_with_libs "$rootfs" /usr/bin/strace
    else
        skips+=" --skip crash_"
        crash_skip="echo 'SKIP crash_* (tests/kernel_crash*.rs): strace is only in the guests of:$CRASH_KERNELS'"
    fi
    # No tmpfs over /tmp: the initramfs is writable, and the checkout (with
    # the paths the tests were built with) may itself live under /tmp.
    {
        vm_init_prelude
        cat <<EOF
cd $ROOT/loader
export CI=true RUST_BACKTRACE=1
echo "VM kernel \$(uname -r)"
$crash_skip
for t in /tests/*; do
    name=\$(basename "\$t" | sed 's/-[0-9a-f]*\$//')
    "\$t" --test-threads=1 $skips >/tmp/out 2>&1
    rc=\$?
    cat /tmp/out
    echo "VMRESULT \$name \$rc \$(grep -o '[0-9]* passed; [0-9]* failed' /tmp/out | tail -n1)"
done
echo VMDONE
poweroff -f
EOF
    } >"$rootfs/init"
    vm_pack "$rootfs" "$out"
}

declare -A SUMMARY
for k in "${KERNELS[@]}"; do
    echo "vm: kernel $k"
    kdir="$WORK/k-$k"
    if ! vm_extract_kernel "$k" "$kdir"; then
        echo "vm: no package for $k" >&2
        SUMMARY[$k]="no package"
        continue
    fi
    vmlinuz=$VM_VMLINUZ
    build_initramfs "$kdir" "$kdir/initrd.gz" "$k"
    log="$LOGS/$k.log"
    vm_boot "$vmlinuz" "$kdir/initrd.gz" "$log" 1800
    grep -A2 -E '^(SKIP|VM kernel|VMRESULT)|panicked' "$log" | grep -v '^--$' | sed "s/^/[$k] /" || true
    if ! grep -q VMDONE "$log"; then
        SUMMARY[$k]="did not finish (see log)"
        tail -n 30 "$log" | sed "s/^/[$k] /"
    elif grep -E '^VMRESULT' "$log" | awk '$3 != 0 {bad=1} END {exit bad}'; then
        SUMMARY[$k]="pass ($(grep -c 'SKIP [a-z_]*: this kernel lacks' "$log" || true) skipped for missing features)"
    else
        SUMMARY[$k]="FAIL: $(grep -E '^VMRESULT' "$log" | awk '$3 != 0 {print $2}' | tr '\n' ' ')"
    fi
done

echo
echo "| kernel | result |"
echo "|---|---|"
status=0 passed=0 failed=0
for k in "${KERNELS[@]}"; do
    echo "| $k | ${SUMMARY[$k]} |"
    case "${SUMMARY[$k]}" in pass*) passed=$((passed + 1)) ;; *) status=1 failed=$((failed + 1)) ;; esac
done
echo
echo "kernels: $passed passed, $failed failed"
exit $status
