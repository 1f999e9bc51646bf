#!/bin/bash
# Long fuzzing: every libFuzzer target in tests/fuzz, one after the other,
# for a total time split evenly among them (one hour by default), for
# people who want more than tests/run's bounded pass (20 s per target).
# Each target's corpus lives outside the checkout and grows from run to
# run; the checked-in seeds (tests/fuzz/corpus/TARGET) are read, never
# written. A crash, leak, timeout or out-of-memory leaves its input in
# CORPUS/artifacts/ and makes the script exit 1 once every target has run.
#
#   tests/fuzz/long.sh                        every target, 3600 s in all
#   tests/fuzz/long.sh -t 600 fuzz_virtq      one target for 10 minutes
#
# Options (or the environment variables beside them):
#   -t SECONDS  total time (VESSEL_FUZZ_TOTAL, default 3600)
#   -c DIR      corpora and artifacts (VESSEL_FUZZ_CORPUS, default
#               ${XDG_CACHE_HOME:-~/.cache}/vessel/fuzz)
#   -b DIR      the fuzz build (VESSEL_FUZZ_BUILD, default build-fuzz; made
#               with CC=clang meson setup DIR -Dfuzz=true where missing)
#   -j N        libFuzzer worker processes per target (-fork=N; default 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

total=${VESSEL_FUZZ_TOTAL:-3600}
corpus_root=${VESSEL_FUZZ_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/vessel/fuzz}
build=${VESSEL_FUZZ_BUILD:-build-fuzz}
jobs=1
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while getopts "t:c:b:j:h" o; do
    case $o in
    t) total=$OPTARG ;;
    c) corpus_root=$OPTARG ;;
    b) build=$OPTARG ;;
    j) jobs=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
case $total$jobs in *[!0-9]*) echo "long.sh: -t and -j take whole numbers" >&2; exit 2 ;; esac

case $(realpath -m "$corpus_root")/ in
"$ROOT"/*) echo "long.sh: keep the corpus outside the checkout ($corpus_root)" >&2; exit 2 ;;
esac

if [ ! -f "$build/build.ninja" ]; then
    command -v clang >/dev/null || { echo "long.sh: clang is missing (scripts/setup.sh)" >&2; exit 1; }
    CC=clang meson setup "$build" -Dfuzz=true >/dev/null
fi

# the fuzz targets the build knows (only they are built, not the rest)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(ninja -C "$build" -t targets all |
        sed -n 's|^tests/fuzz/\(fuzz_[a-z0-9_]*\):.*|\1|p' | sort -u)
fi
[ ${#targets[@]} -gt 0 ] || { echo "long.sh: no fuzz targets in $build" >&2; exit 1; }
ninja -C "$build" "${targets[@]/#/tests/fuzz/}" >/dev/null
each=$((total / ${#targets[@]}))
[ "$each" -ge 1 ] || each=1
mkdir -p "$corpus_root/artifacts"
echo "long.sh: ${#targets[@]} targets, ${each}s each, corpora in $corpus_root"

failed=()
for name in "${targets[@]}"; do
    bin=$build/tests/fuzz/$name
    [ -x "$bin" ] || { echo "long.sh: no target $name in $build" >&2; failed+=("$name"); continue; }
    dir=$corpus_root/$name
    mkdir -p "$dir"
    seeds=$ROOT/tests/fuzz/corpus/$name
    log=$corpus_root/$name.log
    before=$(find "$dir" -type f | wc -l)
    fork=()
    [ "$jobs" -gt 1 ] && fork=(-fork="$jobs" -ignore_crashes=0)
    dirs=("$dir")
    [ -d "$seeds" ] && dirs+=("$seeds")
    st=0
    "$bin" -max_total_time="$each" -timeout=60 -print_final_stats=1 "${fork[@]}" \
        -artifact_prefix="$corpus_root/artifacts/$name-" \
        "${dirs[@]}" >"$log" 2>&1 || st=$?
    after=$(find "$dir" -type f | wc -l)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    printf '%-24s %8s runs  corpus %5d -> %5d  %s\n' "$name" "${execs:-?}" "$before" "$after" \
        "$([ $st -eq 0 ] && echo ok || echo "FAILED (exit $st, $log)")"
    if [ $st -ne 0 ]; then
        grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -5 || true
        failed+=("$name")
    fi
done
if [ ${#failed[@]} -ne 0 ]; then
    echo "long.sh: FAILED: ${failed[*]} (inputs in $corpus_root/artifacts)"
    exit 1
fi
echo "long.sh: every target ran ${each}s without a finding"
