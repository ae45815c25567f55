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
# $RAWBPF_VM_CACHE (default /var/cache/rawbpf-vm).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
CACHE=${RAWBPF_VM_CACHE:-/var/cache/rawbpf-vm}
WORK=$(mktemp -d /tmp/rawbpf-vm.XXXXXX)
LOGS="$ROOT/target/vm-logs"
mkdir -p "$LOGS"
trap 'rm -rf "$WORK"' EXIT
KERNELS=("$@")
[ ${#KERNELS[@]} -gt 0 ] || KERNELS=(5.10 6.1 6.12 7.3)

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

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx insmod || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v xz >/dev/null || need+=(xz-utils)
command -v zstd >/dev/null || need+=(zstd)
command -v strace >/dev/null || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
    echo "vm: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# --- Kernel packages -------------------------------------------------------
MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
APT="$CACHE/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$CACHE/debs"
cat >"$APT/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR}-security bookworm-security main
deb $MIRROR bullseye main
deb ${MIRROR}-security bullseye-security main
deb $MIRROR trixie-backports main
EOF
apt_opts=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o Debug::NoLocking=1)
if [ -z "$(find "$APT/lists" -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
    echo "vm: refreshing the package lists"
    apt-get -q "${apt_opts[@]}" update >/dev/null
fi

# The newest package whose name matches a pattern.
newest() {
    apt-cache "${apt_opts[@]}" search --names-only "$1" 2>/dev/null | awk '{print $1}' | sort -V | tail -n1
}

# Packages holding the kernel and its modules, per version.
packages_for() {
    case "$1" in
    5.10) newest '^linux-image-5\.10\.0-[0-9]+-amd64-unsigned$' ;;
    6.1) newest '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
    6.12) newest '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' ;;
    7.*)
        local v=${1//./\\.}
        # the kernel, its modules, and its config (for __kconfig externs)
        echo "$(newest "^linux-binary-$v\\.[0-9]+\\+deb13-amd64\$") $(newest "^linux-modules-$v\\.[0-9]+\\+deb13-amd64\$")" \
            "$(newest "^linux-base-$v\\.[0-9]+\\+deb13-amd64\$")"
        ;;
    *) echo "vm: unknown kernel $1 (try 5.10 6.1 6.12 7.3)" >&2; return 1 ;;
    esac
}

fetch() { # package → path of the cached .deb
    local deb
    deb=$(ls "$CACHE/debs/$1"_*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
        (cd "$CACHE/debs" && apt-get -q "${apt_opts[@]}" download "$1" >/dev/null)
        deb=$(ls "$CACHE/debs/$1"_*.deb | head -n1)
    fi
    echo "$deb"
}

# --- Static test binaries --------------------------------------------------
# musl, as rawbpf's static build is (docs/static-build.md); glibc when
# rustup cannot add Rust's musl target (the host run tests glibc anyway).
TARGET=x86_64-unknown-linux-musl
if [ ! -d "$(rustc --print target-libdir --target "$TARGET" 2>/dev/null)" ] &&
    ! rustup target add "$TARGET" >/dev/null; then
    echo "vm: no Rust $TARGET target: the guests run glibc static binaries" >&2
    TARGET=x86_64-unknown-linux-gnu
fi
echo "vm: building static test binaries ($TARGET)"
export RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static'
# Symbols kept: the uprobe tests find functions of their own binary by name.
export CARGO_PROFILE_RELEASE_STRIP=false
cargo build -q --release --target "$TARGET" -p rawbpf-cli --bin rawbpf
# The library's tests and the CLI package's (tests/*.rs, which run the
# binary). A failed build must fail the run, not boot guests with fewer tests.
cargo test -q --release --target "$TARGET" -p rawbpf -p rawbpf-cli --no-run --message-format=json >"$WORK/tests.json"
mapfile -t TESTS < <(grep -o '"executable":"[^"]*/deps/[^"]*"' "$WORK/tests.json" |
    sed 's/"executable":"\(.*\)"/\1/' | sort -u)
echo "vm: ${#TESTS[@]} test binaries"
BIN="$ROOT/target/$TARGET/release/rawbpf"

# --- One guest per kernel --------------------------------------------------
build_initramfs() { # kver-dir out kernel
    local kdir=$1 out=$2 k=$3 rootfs="$WORK/rootfs"
    rm -rf "$rootfs"
    mkdir -p "$rootfs"/{bin,dev,proc,sys,tmp,run,modules,etc,boot}
    # The kernel's config where its package puts it, for __kconfig externs:
    # /boot/config-VERSION up to 6.x, /usr/lib/modules/VERSION/config from 7.x.
    cp "$kdir"/x/boot/config-* "$rootfs/boot/" 2>/dev/null || true
    for c in "$kdir"/x/usr/lib/modules/*/config; do
        [ -f "$c" ] || continue
        mkdir -p "$rootfs/${c#"$kdir"/x/}" && rmdir "$rootfs/${c#"$kdir"/x/}"
        cp "$c" "$rootfs/${c#"$kdir"/x/}"
    done
    cp /bin/busybox "$rootfs/bin/busybox"
    # bash, with the libraries ldd names: tests/cli_groups.rs moves a shell
    # into a cgroup and connects with bash's /dev/tcp.
    local lib
    for lib in /bin/bash $(ldd /bin/bash | grep -o '/[^ ]*'); do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
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
    cp "$kdir"/*.ko "$rootfs/modules/" 2>/dev/null || true
    local skips="" crash_skip=""
    for s in "${HOST_ONLY[@]}"; do skips+=" --skip $s"; done
    if [[ $CRASH_KERNELS == *" $k "* ]]; then
        local f
        for f in /usr/bin/strace $(ldd /usr/bin/strace | grep -o '/[^ ]*'); do
            mkdir -p "$rootfs$(dirname "$f")"
            cp -L "$f" "$rootfs$f"
        done
    else
        skips+=" --skip crash_"
        crash_skip="echo 'SKIP crash_* (tests/kernel_crash*.rs): strace is only in the guests of:$CRASH_KERNELS'"
    fi
    # No tmpfs over /tmp: the initramfs is writable, and the checkout (with
    # the paths the tests were built with) may itself live under /tmp.
    cat >"$rootfs/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for m in veth sch_ingress cls_bpf; do [ -f /modules/\$m.ko ] && insmod /modules/\$m.ko; done
ip link set lo up
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
    chmod +x "$rootfs/init"
    (cd "$rootfs" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
}

declare -A SUMMARY
for k in "${KERNELS[@]}"; do
    echo "vm: kernel $k"
    kdir="$WORK/k-$k"
    mkdir -p "$kdir/x"
    for pkg in $(packages_for "$k"); do
        [ -n "$pkg" ] || { echo "vm: no package for $k" >&2; SUMMARY[$k]="no package"; continue 2; }
        dpkg-deb -x "$(fetch "$pkg")" "$kdir/x"
    done
    vmlinuz=$(ls "$kdir"/x/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
    [ -n "$vmlinuz" ] || vmlinuz=$(find "$kdir/x" -name 'vmlinuz*' | head -n1)
    for m in veth sch_ingress cls_bpf; do
        f=$(find "$kdir/x" -name "$m.ko*" | head -n1)
        case "$f" in
        *.ko.xz) xz -dc "$f" >"$kdir/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" >"$kdir/$m.ko" ;;
        *.ko) cp "$f" "$kdir/$m.ko" ;;
        esac
    done
    build_initramfs "$kdir" "$kdir/initrd.gz" "$k"
    log="$LOGS/$k.log"
    timeout 1800 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 1 -m 1G -nodefaults -no-user-config \
        -display none -serial stdio -no-reboot -kernel "$vmlinuz" -initrd "$kdir/initrd.gz" \
        -append 'console=ttyS0 panic=-1 quiet oops=panic rdinit=/init' </dev/null >"$log" 2>&1 || true
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
