#!/usr/bin/env bash
# Does `rawbpf check --target` predict loads on other kernels? Reads what
# `tests/vm/matrix.sh --save DIR` kept of each guest (probe.json from
# `rawbpf probe --json --full`, its BTF as vmlinux, and N.cmd / N.rc of each
# command), and for every command of the form `rawbpf load OBJ` runs, here,
#
#     rawbpf check OBJ --target DIR/K/probe.json --btf DIR/K/vmlinux
#
# then compares its verdict (exit 0 would load, 1 would not) with the
# guest's real load (exit 0 or not). Prints per kernel how often they agree
# and each disagreement. See docs/kernel-matrix.md ("Does check predict it?").
#
#   bash tests/vm/check-agree.sh DIR [--kernel K]... [--rawbpf BIN] [--json] [--dry-run]
#
# Exit status: 0 every verdict agreed; 1 some did not (or check failed to
# run); 2 bad usage (no such DIR, nothing saved in it).
set -euo pipefail
HERE=$(pwd)
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

die() {
    echo "check-agree: $*" >&2
    sed -n '13p' "$ROOT/tests/vm/check-agree.sh" | sed 's/^#   /usage: /' >&2
    exit 2
}
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$HERE/$1" ;; esac; }

DIR="" KERNELS=() BIN="" JSON=false DRY=false
while [ $# -gt 0 ]; do
    case "$1" in
    --kernel | --rawbpf)
        [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"
        case "$1" in
        --kernel) KERNELS+=("$2") ;;
        --rawbpf) BIN=$(abspath "$2") ;;
        esac
        shift 2
        ;;
    --json) JSON=true; shift ;;
    --dry-run) DRY=true; shift ;;
    -h | --help) sed -n '13p' "$ROOT/tests/vm/check-agree.sh" | sed 's/^#   /usage: /'; exit 0 ;;
    -*) die "unknown option '$1'" ;;
    *) [ -z "$DIR" ] || die "one DIR only ('$DIR', then '$1')"; DIR=$(abspath "$1"); shift ;;
    esac
done
[ -n "$DIR" ] || die "no DIR: give the directory of tests/vm/matrix.sh --save DIR"
[ -d "$DIR" ] || die "no such directory: $DIR"
if [ ${#KERNELS[@]} -eq 0 ]; then
    for d in "$DIR"/*/; do
        [ -f "$d/probe.json" ] && KERNELS+=("$(basename "$d")")
    done
fi
[ ${#KERNELS[@]} -gt 0 ] || die "$DIR holds no kernel directory with a probe.json (run matrix.sh with --save $DIR)"
for k in "${KERNELS[@]}"; do
    [ -f "$DIR/$k/probe.json" ] || die "$DIR/$k/probe.json: no such file (kernel $k not saved)"
done
if [ -z "$BIN" ]; then
    BIN=$ROOT/target/debug/rawbpf
    $DRY || [ -x "$BIN" ] || cargo build -q -p rawbpf-cli >&2
fi

# The object of a saved command `'rawbpf' 'load' 'OBJ' ...` (matrix.sh's
# quoting), or nothing for any other command.
load_object() { # N.cmd
    local line
    line=$(cat "$1")
    [[ $line =~ ^\'rawbpf\'\ \'load\'\ \'([^\']+)\'(\ |$) ]] || return 0
    echo "${BASH_REMATCH[1]}"
}

json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$(printf %s "$s" | tr -d '\000-\037\177')"
}

status=0
kj=""
for k in "${KERNELS[@]}"; do
    kd="$DIR/$k"
    cwd=$(cat "$kd/cwd" 2>/dev/null || echo "$HERE")
    btf=()
    [ ! -f "$kd/vmlinux" ] || btf=(--btf "$kd/vmlinux")
    agree=0 total=0 dj=""
    rows=()
    for cmdf in "$kd"/*.cmd; do
        [ -e "$cmdf" ] || continue
        n=$(basename "$cmdf" .cmd)
        obj=$(load_object "$cmdf")
        [ -n "$obj" ] || continue
        case "$obj" in /*) ;; *) obj="$cwd/$obj" ;; esac
        if $DRY; then
            echo "$k: $BIN check $obj --target $kd/probe.json ${btf[*]} # vs load exit $(cat "$kd/$n.rc" 2>/dev/null || echo '?')"
            continue
        fi
        if [ ! -f "$kd/$n.rc" ]; then
            # The guest saved the command but not its exit status: it
            # stopped first. Nothing to compare is a failure, not agreement.
            status=1
            rows+=("  $obj: the load left no exit status ($kd/$n.rc; did the guest stop?)")
            dj+=",{\"object\":$(json_str "$obj"),\"check\":null,\"loaded\":null,\"check_says\":\"\",\"load_error\":\"no exit status saved\"}"
            continue
        fi
        load_rc=$(cat "$kd/$n.rc")
        set +e
        out=$("$BIN" check "$obj" --target "$kd/probe.json" "${btf[@]}" 2>&1)
        check_rc=$?
        set -e
        total=$((total + 1))
        loads=$([ "$load_rc" = 0 ] && echo true || echo false)
        case "$check_rc" in
        0) says=true ;;
        1) says=false ;;
        *) says=error ;;
        esac
        if [ "$says" = "$loads" ]; then
            agree=$((agree + 1))
        else
            status=1
            why=$(grep -m1 -E 'FAIL|rawbpf:' <<<"$out" || true)
            lerr=$(grep -m1 -v '^[[:space:]]*$' "$kd/$n.stderr" 2>/dev/null || true)
            rows+=("  $obj: check $([ "$says" = true ] && echo 'would load' || { [ "$says" = false ] && echo 'would NOT load' || echo "failed ($check_rc)"; }), load $([ "$loads" = true ] && echo loaded || echo "failed: $lerr")${why:+ — $why}")
            dj+=",{\"object\":$(json_str "$obj"),\"check\":$(json_str "$says"),\"loaded\":$loads,\"check_says\":$(json_str "$why"),\"load_error\":$(json_str "$lerr")}"
        fi
    done
    $DRY && continue
    [ "$total" != 0 ] || status=1
    if $JSON; then
        kj+=",{\"kernel\":$(json_str "$k"),\"agree\":$agree,\"total\":$total,\"disagree\":[${dj#,}]}"
    else
        echo "$k: check --target agrees with load on $agree of $total objects"
        for r in "${rows[@]}"; do echo "$r"; done
    fi
done
$DRY && exit 0
! $JSON || echo "{\"kernels\":[${kj#,}]}"
exit $status
