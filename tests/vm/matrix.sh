#!/usr/bin/env bash
# Runs your rawbpf commands on other kernels: boots each of Debian's kernels
# under qemu (TCG) with busybox, the static rawbpf binary and your files, runs
# the commands there and prints kernel × command → exit status and the first
# line of the error. See docs/kernel-matrix.md ("Your objects on other kernels").
#
#   bash tests/vm/matrix.sh [--kernel K]... [--file PATH]... [--json] [--save DIR]
#                           [--rawbpf BIN] [--timeout SECONDS] [--dry-run]
#                           -- COMMAND [ARG]... [-- COMMAND [ARG]...]...
#
# e.g.  bash tests/vm/matrix.sh --kernel 5.10 --kernel 6.1 --file my.bpf.o \
#           -- rawbpf load my.bpf.o -- rawbpf check my.bpf.o
#
# Exit status: 0 every command exited 0 on every kernel; 1 a command failed or
# a guest did not finish; 2 bad usage (unknown kernel, missing file, no command).
set -euo pipefail
HERE=$(pwd)
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

usage() {
    sed -n '7,9p' "$ROOT/tests/vm/matrix.sh" | sed 's/^#   //; s/^bash/usage: bash/'
}
die() { # usage errors: exit 2
    echo "matrix: $*" >&2
    echo "$(usage)" >&2
    exit 2
}
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$HERE/$1" ;; esac; }

KERNELS=() FILES=() CMDS=() JSON=false SAVE="" BINARG="" TIMEOUT=900 DRY=false
while [ $# -gt 0 ]; do
    case "$1" in
    --kernel | --file | --save | --rawbpf | --timeout)
        [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"
        case "$1" in
        --kernel) KERNELS+=("$2") ;;
        --file) FILES+=("$2") ;;
        --save) SAVE=$2 ;;
        --rawbpf) BINARG=$2 ;;
        --timeout) [[ $2 =~ ^[1-9][0-9]*$ ]] || die "--timeout takes seconds, not '$2'"; TIMEOUT=$2 ;;
        esac
        shift 2
        ;;
    --json) JSON=true; shift ;;
    --dry-run) DRY=true; shift ;;
    -h | --help) usage; exit 0 ;;
    --) break ;;
    *) die "unknown option '$1' (commands come after --)" ;;
    esac
done
[ $# -gt 1 ] || die "no command: give one after --, e.g. -- rawbpf load my.bpf.o"

# The commands, split at each "--"; each kept as one shell-quoted line.
quote() { # ARG... → 'ARG' 'ARG' (POSIX sh quoting, as the guest's busybox reads it)
    local a out=""
    for a in "$@"; do out+=" '${a//\'/\'\\\'\'}'"; done
    echo "${out# }"
}
CMD_JSON=()
cur=()
flush() {
    [ ${#cur[@]} -gt 0 ] || die "an empty command (two -- in a row, or -- at the end)"
    CMDS+=("$(quote "${cur[@]}")")
    local a j=""
    for a in "${cur[@]}"; do j+=",$(json_str "$a")"; done
    CMD_JSON+=("[${j#,}]")
    cur=()
}
json_str() { # a JSON string; control characters other than tab and newline dropped
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\t'/\\t}
    s=${s//$'\n'/\\n}
    printf '"%s"' "$(printf %s "$s" | tr -d '\000-\037\177')"
}
shift # the first --
while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then flush; else cur+=("$1"); fi
    shift
done
flush

. tests/vm/lib.sh
VM_SAY_FD=2
[ ${#KERNELS[@]} -gt 0 ] || KERNELS=("${VM_DEFAULT_KERNELS[@]}")
declare -A seen=()
for k in "${KERNELS[@]}"; do
    vm_kernel_name_ok "$k" || die "unknown kernel '$k': give a series (5.10 6.1 6.12 7.3), a Debian kernel version (6.1.0-57, 6.12.118, 7.3.4) or a package name (linux-image-6.1.0-57-amd64-unsigned)"
    [ -z "${seen[$k]:-}" ] || die "kernel $k given twice"
    seen[$k]=1
done
ABS_FILES=()
for f in "${FILES[@]}"; do
    a=$(abspath "$f")
    [ -e "$a" ] || die "no such file: $f"
    [ -r "$a" ] || die "cannot read $f"
    ABS_FILES+=("$a")
done
[ -z "$SAVE" ] || SAVE=$(abspath "$SAVE")
[ -z "$BINARG" ] || { BINARG=$(abspath "$BINARG"); [ -x "$BINARG" ] || die "--rawbpf $BINARG is not an executable file"; }

if $DRY; then
    echo "kernels: ${KERNELS[*]}"
    for f in "${ABS_FILES[@]}"; do echo "file: $f"; done
    echo "cwd: $HERE"
    for i in "${!CMDS[@]}"; do echo "command $((i + 1)): ${CMDS[$i]}"; done
    [ -z "$SAVE" ] || for k in "${KERNELS[@]}"; do echo "save: $SAVE/$k/probe.json $SAVE/$k/vmlinux"; done
    echo "rawbpf: ${BINARG:-built from $ROOT (static, release)}"
    echo "output: $($JSON && echo json || echo table)"
    exit 0
fi

# --- Preparation -----------------------------------------------------------
WORK=$(mktemp -d /tmp/rawbpf-matrix.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
LOGS="$ROOT/target/vm-logs"
mkdir -p "$LOGS"
vm_install_tools
vm_apt_setup
declare -A PKGS=()
for k in "${KERNELS[@]}"; do
    PKGS[$k]=$(vm_packages_for "$k") || true
    [ -n "${PKGS[$k]// /}" ] && [[ ${PKGS[$k]} != *"  "* ]] && [[ ${PKGS[$k]} != " "* ]] ||
        die "no Debian kernel package for '$k' on the mirrors (bullseye, bookworm, trixie-backports)"
done
if [ -n "$BINARG" ]; then
    BIN=$BINARG
else
    vm_say "building the static rawbpf"
    vm_build_rawbpf >&2
    BIN=$VM_BIN
fi

build_initramfs() { # kver-dir out
    local kdir=$1 out=$2 rootfs="$WORK/rootfs" f i
    vm_rootfs_base "$rootfs" "$kdir"
    cp "$BIN" "$rootfs/bin/rawbpf"
    # Your files at the same absolute paths as on the host.
    for f in "${ABS_FILES[@]}"; do
        mkdir -p "$rootfs$(dirname "$f")"
        cp -r "$f" "$rootfs$f"
    done
    mkdir -p "$rootfs/matrix" "$rootfs/out" "$rootfs$HERE"
    for i in "${!CMDS[@]}"; do echo "${CMDS[$i]}" >"$rootfs/matrix/$((i + 1))"; done
    # The results travel back as a gzipped tar on the second serial port
    # (raw mode); the console (ttyS0) only feeds the log.
    {
        vm_init_prelude
        cat <<EOF
export PATH=/bin
cd '${HERE//\'/\'\\\'\'}'
uname -r >/out/release
echo "VM kernel \$(uname -r)"
for i in \$(ls /matrix | sort -n); do
    echo "VMCMD \$i: \$(cat /matrix/\$i)"
    sh /matrix/\$i </dev/null >/out/\$i.stdout 2>/out/\$i.stderr
    echo \$? >/out/\$i.rc
    cat /out/\$i.stdout /out/\$i.stderr
    echo "VMCMD \$i exit \$(cat /out/\$i.rc)"
done
EOF
        if [ -n "$SAVE" ]; then
            cat <<'EOF'
rawbpf probe --json --full >/out/probe.json 2>/out/probe.stderr || echo "VMSAVE probe failed: $(head -n1 /out/probe.stderr)"
cp /sys/kernel/btf/vmlinux /out/vmlinux 2>/dev/null || echo "VMSAVE this kernel has no /sys/kernel/btf/vmlinux"
EOF
        fi
        cat <<'EOF'
stty -F /dev/ttyS1 raw -echo
tar -c -C /out . | gzip -1 >/dev/ttyS1
echo VMDONE
poweroff -f
EOF
    } >"$rootfs/init"
    vm_pack "$rootfs" "$out"
}

# --- One guest per kernel --------------------------------------------------
declare -A STATE=() RELEASE=()
for k in "${KERNELS[@]}"; do
    vm_say "kernel $k (${PKGS[$k]})"
    kdir="$WORK/k-$k"
    vm_extract_kernel "$k" "$kdir" || die "no Debian kernel package for '$k'"
    build_initramfs "$kdir" "$kdir/initrd.gz"
    log="$LOGS/matrix-$k.log"
    vm_boot "$VM_VMLINUZ" "$kdir/initrd.gz" "$log" "$TIMEOUT" -serial "file:$kdir/out.tgz"
    mkdir -p "$kdir/out"
    if grep -q VMDONE "$log" && tar -xzf "$kdir/out.tgz" -C "$kdir/out" 2>/dev/null; then
        STATE[$k]=done
        RELEASE[$k]=$(cat "$kdir/out/release")
        if [ -n "$SAVE" ]; then
            mkdir -p "$SAVE/$k"
            cp -f "$kdir"/out/* "$SAVE/$k/"
            rm -f "$SAVE/$k/probe.stderr"
            # What each N.rc answers, and where the commands ran, for
            # tests/vm/check-agree.sh.
            for i in "${!CMDS[@]}"; do echo "${CMDS[$i]}" >"$SAVE/$k/$((i + 1)).cmd"; done
            echo "$HERE" >"$SAVE/$k/cwd"
        fi
    else
        STATE[$k]="the guest did not finish (see $log)"
        RELEASE[$k]=""
        tail -n 20 "$log" | sed "s/^/[$k] /" >&2
    fi
done

# --- Results ---------------------------------------------------------------
# The error of a command: the first non-empty line of its stderr; when it
# wrote none and failed, the first of its stdout.
error_of() { # kdir i
    local e
    e=$(grep -m1 -v '^[[:space:]]*$' "$1/out/$2.stderr" 2>/dev/null || true)
    if [ -z "$e" ] && [ "$(cat "$1/out/$2.rc")" != 0 ]; then
        e=$(grep -m1 -v '^[[:space:]]*$' "$1/out/$2.stdout" 2>/dev/null || true)
    fi
    printf %s "$e" | tr -d '\r'
}
status=0
if $JSON; then
    kj=""
    for k in "${KERNELS[@]}"; do
        kdir="$WORK/k-$k"
        rj=""
        for i in "${!CMDS[@]}"; do
            n=$((i + 1))
            if [ "${STATE[$k]}" = done ]; then
                rc=$(cat "$kdir/out/$n.rc")
                [ "$rc" = 0 ] || status=1
                err=$(error_of "$kdir" "$n")
                rj+=",{\"command\":${CMD_JSON[$i]},\"exit\":$rc,\"error\":$([ -n "$err" ] && json_str "$err" || echo null)}"
            else
                status=1
                rj+=",{\"command\":${CMD_JSON[$i]},\"exit\":null,\"error\":$(json_str "${STATE[$k]}")}"
            fi
        done
        pj=""
        for p in ${PKGS[$k]}; do pj+=",$(json_str "$p")"; done
        saved=null
        [ -z "$SAVE" ] || [ "${STATE[$k]}" != done ] || saved=$(json_str "$SAVE/$k")
        kj+=",{\"kernel\":$(json_str "$k"),\"release\":$([ -n "${RELEASE[$k]}" ] && json_str "${RELEASE[$k]}" || echo null),\"packages\":[${pj#,}],\"finished\":$([ "${STATE[$k]}" = done ] && echo true || echo false),\"saved\":$saved,\"results\":[${rj#,}]}"
    done
    echo "{\"kernels\":[${kj#,}]}"
else
    echo "| kernel | command | exit | error |"
    echo "|---|---|---|---|"
    for k in "${KERNELS[@]}"; do
        kdir="$WORK/k-$k"
        label="$k${RELEASE[$k]:+ (${RELEASE[$k]})}"
        for i in "${!CMDS[@]}"; do
            n=$((i + 1))
            if [ "${STATE[$k]}" = done ]; then
                rc=$(cat "$kdir/out/$n.rc")
                [ "$rc" = 0 ] || status=1
                err=$(error_of "$kdir" "$n")
            else
                rc=- err=${STATE[$k]} status=1
            fi
            echo "| $label | ${CMDS[$i]//\'/} | $rc | ${err//|/\\|} |"
        done
    done
    [ -z "$SAVE" ] || echo "saved: $SAVE/<kernel>/ (probe.json, vmlinux, N.cmd, N.stdout, N.stderr, N.rc, cwd)"
fi
exit $status
