# Sourced by tests/vm/run.sh (rawbpf's tests on other kernels) and
# tests/vm/matrix.sh (a user's commands on other kernels): what both need to
# boot Debian's kernels under qemu. Not a script of its own.
#
# The caller sets ROOT (the checkout) and WORK (a scratch directory it
# removes), then calls, in this order:
#   vm_install_tools [strace]    qemu, busybox-static, cpio, xz, zstd (+ strace)
#   vm_apt_setup                 a private apt configuration over Debian's mirror
#   vm_build_rawbpf              the static rawbpf binary: VM_TARGET, VM_BIN
# and per kernel:
#   vm_packages_for K            Debian packages holding kernel K (empty: none)
#   vm_extract_kernel K DIR      unpacks them into DIR: VM_VMLINUZ, DIR/*.ko
#   vm_rootfs_base ROOTFS DIR    the guest's tree: busybox, modules, kernel config
#   vm_init_prelude              the first lines of the guest's /init
#   vm_pack ROOTFS OUT           the initramfs
#   vm_boot VMLINUZ INITRD LOG TIMEOUT [QEMU_ARG]...
# Downloads are cached in $RAWBPF_VM_CACHE (default /var/cache/rawbpf-vm).
# Progress goes to file descriptor VM_SAY_FD (default 1, stdout).

VM_CACHE=${RAWBPF_VM_CACHE:-/var/cache/rawbpf-vm}
VM_DEFAULT_KERNELS=(5.10 6.1 6.12 7.3)
# Modules the guests load when the kernel has them as modules: the tests
# attach to veth pairs with tc (sch_ingress, cls_bpf).
VM_MODULES=(veth sch_ingress cls_bpf)

vm_say() { echo "vm: $*" >&"${VM_SAY_FD:-1}"; }

# Installs what booting needs when it is missing; extra arguments name more
# commands (each also its Debian package's name).
vm_install_tools() {
    local need=() c
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx insmod || need+=(busybox-static)
    command -v cpio >/dev/null || need+=(cpio)
    command -v xz >/dev/null || need+=(xz-utils)
    command -v zstd >/dev/null || need+=(zstd)
    for c in "$@"; do command -v "$c" >/dev/null || need+=("$c"); done
    if [ ${#need[@]} -gt 0 ]; then
        vm_say "installing ${need[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    fi
}

# --- Kernel packages -------------------------------------------------------
# A private apt configuration (5.10 from bullseye(-security), 6.1 and 6.12
# from bookworm, 7.x from trixie-backports) so the system's apt setup is
# untouched; its lists are refreshed once a day.
vm_apt_setup() {
    local mirror apt
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
    mirror=${mirror:-http://deb.debian.org/debian}
    apt="$VM_CACHE/apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$VM_CACHE/debs"
    cat >"$apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror}-security bookworm-security main
deb $mirror bullseye main
deb ${mirror}-security bullseye-security main
deb $mirror trixie-backports main
EOF
    VM_APT_OPTS=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=1)
    if [ -z "$(find "$apt/lists" -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
        vm_say "refreshing the package lists"
        apt-get -q "${VM_APT_OPTS[@]}" update >/dev/null
    fi
}

# The newest package whose name matches a pattern.
vm_newest() {
    apt-cache "${VM_APT_OPTS[@]}" search --names-only "$1" 2>/dev/null | awk '{print $1}' | sort -V | tail -n1
}

# Whether a kernel name has a form vm_packages_for understands (no lookup):
# a series (5.10, 6.1, 6.12, 7.3, any X.Y), a Debian kernel version (6.1.0-57,
# 6.12.118, 7.3.4) or a package name (linux-image-…-amd64-unsigned,
# linux-binary-…-amd64).
vm_kernel_name_ok() {
    [[ $1 =~ ^[0-9]+\.[0-9]+$ || $1 =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9]+)?$ ||
        $1 =~ ^linux-image-[0-9][0-9a-z.+-]*-amd64-unsigned$ || $1 =~ ^linux-binary-[0-9][0-9a-z.+-]*-amd64$ ]]
}

# From 7.x Debian splits the kernel: the image, its modules, and the base
# package with its config (for __kconfig externs). Argument: the part after
# "linux-binary-", e.g. 7.3.4+deb13-amd64 (or a pattern of it).
vm_split_packages() {
    local bin
    bin=$(vm_newest "^linux-binary-$1\$")
    [ -n "$bin" ] || return 0
    local rest=${bin#linux-binary-}
    echo "$bin linux-modules-$rest linux-base-$rest"
}

# Packages holding the kernel and its modules: one line, empty when the
# mirrors have none. Fails (with a message) on a name of no known form.
vm_packages_for() {
    local k=$1 v=${1//./\\.}
    case "$k" in
    5.10) vm_newest '^linux-image-5\.10\.0-[0-9]+-amd64-unsigned$' ;;
    6.1) vm_newest '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
    6.12) vm_newest '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' ;;
    7.*)
        if [[ $k =~ ^7\.[0-9]+$ ]]; then
            # the kernel, its modules, and its config (for __kconfig externs)
            echo "$(vm_newest "^linux-binary-$v\\.[0-9]+\\+deb13-amd64\$") $(vm_newest "^linux-modules-$v\\.[0-9]+\\+deb13-amd64\$")" \
                "$(vm_newest "^linux-base-$v\\.[0-9]+\\+deb13-amd64\$")"
        else
            vm_split_packages "$v\\+deb[0-9]+-amd64"
        fi
        ;;
    linux-image-*) vm_newest "^${k//+/\\+}\$" ;;
    linux-binary-*) vm_split_packages "$(printf %s "${k#linux-binary-}" | sed 's/[.+]/\\&/g')" ;;
    *)
        if [[ $k =~ ^[0-9]+\.[0-9]+$ ]]; then
            # another series: whatever image the suites above hold
            vm_newest "^linux-image-$v\\.[0-9]+(-[0-9]+)?(\\+deb[0-9]+)?-amd64-unsigned\$"
        elif vm_kernel_name_ok "$k"; then
            # a Debian kernel version: 6.1.0-57, 6.12.118 (+deb12), 7.3.4 (+deb13)
            local p
            p=$(vm_newest "^linux-image-$v(\\+deb[0-9]+)?-amd64-unsigned\$")
            [ -n "$p" ] && echo "$p" || vm_split_packages "$v\\+deb[0-9]+-amd64"
        else
            echo "vm: unknown kernel $k (try 5.10 6.1 6.12 7.3)" >&2
            return 1
        fi
        ;;
    esac
}

vm_fetch() { # package → path of the cached .deb
    local deb
    deb=$(ls "$VM_CACHE/debs/$1"_*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
        (cd "$VM_CACHE/debs" && apt-get -q "${VM_APT_OPTS[@]}" download "$1" >/dev/null)
        deb=$(ls "$VM_CACHE/debs/$1"_*.deb | head -n1)
    fi
    echo "$deb"
}

# Unpacks kernel K's packages into DIR/x and its modules (VM_MODULES,
# decompressed) into DIR; sets VM_VMLINUZ. Fails when no package holds K.
vm_extract_kernel() { # K DIR
    local k=$1 kdir=$2 pkgs pkg m f
    mkdir -p "$kdir/x"
    pkgs=$(vm_packages_for "$k") || return 1
    [ -n "${pkgs// /}" ] || return 1
    # A failed download or unpack is no "unknown kernel": it stops the run.
    local deb
    for pkg in $pkgs; do
        deb=$(vm_fetch "$pkg") && dpkg-deb -x "$deb" "$kdir/x" || {
            echo "vm: cannot download or unpack $pkg" >&2
            exit 1
        }
    done
    VM_VMLINUZ=$(ls "$kdir"/x/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
    [ -n "$VM_VMLINUZ" ] || VM_VMLINUZ=$(find "$kdir/x" -name 'vmlinuz*' | head -n1)
    for m in "${VM_MODULES[@]}"; do
        f=$(find "$kdir/x" -name "$m.ko*" | head -n1)
        case "$f" in
        *.ko.xz) xz -dc "$f" >"$kdir/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" >"$kdir/$m.ko" ;;
        *.ko) cp "$f" "$kdir/$m.ko" ;;
        esac
    done
}

# --- The static rawbpf binary ----------------------------------------------
# musl, as rawbpf's static build is (docs/static-build.md); glibc when
# rustup cannot add Rust's musl target. Sets VM_TARGET and VM_BIN, and
# exports the RUSTFLAGS further static builds (the tests) use.
vm_build_rawbpf() {
    VM_TARGET=x86_64-unknown-linux-musl
    if [ ! -d "$(rustc --print target-libdir --target "$VM_TARGET" 2>/dev/null)" ] &&
        ! rustup target add "$VM_TARGET" >/dev/null; then
        echo "vm: no Rust $VM_TARGET target: the guests run glibc static binaries" >&2
        VM_TARGET=x86_64-unknown-linux-gnu
    fi
    export RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static'
    # Symbols kept: the uprobe tests find functions of their own binary by name.
    export CARGO_PROFILE_RELEASE_STRIP=false
    (cd "$ROOT" && cargo build -q --release --target "$VM_TARGET" -p rawbpf-cli --bin rawbpf)
    VM_BIN="$ROOT/target/$VM_TARGET/release/rawbpf"
}

# --- The guest -------------------------------------------------------------
# Copies programs into the guest's tree with the libraries ldd names.
vm_copy_with_libs() { # ROOTFS FILE...
    local rootfs=$1 bin f
    shift
    for bin in "$@"; do
        for f in "$bin" $(ldd "$bin" | grep -o '/[^ ]*'); do
            mkdir -p "$rootfs$(dirname "$f")"
            cp -L "$f" "$rootfs$f"
        done
    done
}

# A fresh guest tree: busybox, kernel K's config where its package puts it
# (/boot/config-VERSION up to 6.x, /usr/lib/modules/VERSION/config from
# 7.x; for __kconfig externs) and the modules vm_extract_kernel left in DIR.
vm_rootfs_base() { # ROOTFS DIR
    local rootfs=$1 kdir=$2 c
    rm -rf "$rootfs"
    mkdir -p "$rootfs"/{bin,dev,proc,sys,tmp,run,modules,etc,boot}
    cp "$kdir"/x/boot/config-* "$rootfs/boot/" 2>/dev/null || true
    for c in "$kdir"/x/usr/lib/modules/*/config; do
        [ -f "$c" ] || continue
        mkdir -p "$rootfs/${c#"$kdir"/x/}" && rmdir "$rootfs/${c#"$kdir"/x/}"
        cp "$c" "$rootfs/${c#"$kdir"/x/}"
    done
    cp /bin/busybox "$rootfs/bin/busybox"
    cp "$kdir"/*.ko "$rootfs/modules/" 2>/dev/null || true
}

# The start of every guest's /init: file systems, modules, loopback.
vm_init_prelude() {
    cat <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for m in ${VM_MODULES[*]}; do [ -f /modules/\$m.ko ] && insmod /modules/\$m.ko; done
ip link set lo up
EOF
}

vm_pack() { # ROOTFS OUT
    chmod +x "$1/init"
    (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) >"$2"
}

# Boots a kernel under qemu's TCG (nested KVM does not work on our machines)
# with the console on stdout into LOG; the guest's /init powers off. Extra
# arguments go to qemu (e.g. a second serial port). Never fails: the log
# says how far the guest got.
vm_boot() { # VMLINUZ INITRD LOG TIMEOUT [QEMU_ARG]...
    local vmlinuz=$1 initrd=$2 log=$3 secs=$4
    shift 4
    timeout "$secs" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 1 -m 1G -nodefaults -no-user-config \
        -display none -serial stdio "$@" -no-reboot -kernel "$vmlinuz" -initrd "$initrd" \
        -append 'console=ttyS0 panic=-1 quiet oops=panic rdinit=/init' </dev/null >"$log" 2>&1 || true
}
