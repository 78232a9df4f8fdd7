#!/usr/bin/env bash
# Coverage-guided fuzzing of everything that reads what a store sends: the S3 answer
# classifier, the XML and header readers, and the lease, member and slot record decoders
# (tests/fuzz, cargo-fuzz + libFuzzer, nightly Rust).
#
#   .ci/fuzz.sh [seconds-per-target] [target ...]      (default: 30 s, every target)
#
# Each target starts from its hand-written seeds (tests/fuzz/seeds/<target>, tracked) plus
# what earlier runs found (tests/fuzz/target/corpus/<target>, scratch, never committed).
# A crash leaves its input under tests/fuzz/artifacts/<target>/ and fails the run.
#
# Without a nightly toolchain this fails, unless S3E_FUZZ_OPTIONAL=1, in which case it says
# SKIPPED and exits 0: it never passes silently.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-30}
shift || true
FUZZ_DIR=tests/fuzz
ALL=(classify xml headers lease_record member_record slot_record elector)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
case $SECS in '' | *[!0-9]*) echo "usage: $0 [seconds-per-target] [target ...]" >&2; exit 2 ;; esac

if ! cargo +nightly --version >/dev/null 2>&1; then
    if [ "${S3E_FUZZ_OPTIONAL:-0}" = 1 ]; then
        echo "SKIPPED: no nightly toolchain (cargo +nightly); nothing was fuzzed (S3E_FUZZ_OPTIONAL=1)"
        exit 0
    fi
    echo "FAILED: fuzzing needs a nightly toolchain: rustup toolchain install nightly" >&2
    echo "        (set S3E_FUZZ_OPTIONAL=1 to skip instead)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz ..."
    cargo install cargo-fuzz --locked
fi

echo "building the fuzz targets ..."
cargo +nightly fuzz build --fuzz-dir "$FUZZ_DIR" >/dev/null

LOGS=$FUZZ_DIR/target/logs
mkdir -p "$LOGS"
failed=0
rows=()
for t in "${TARGETS[@]}"; do
    if [ ! -d "$FUZZ_DIR/seeds/$t" ]; then
        echo "no such target: $t (targets: ${ALL[*]})" >&2
        exit 2
    fi
    corpus=$FUZZ_DIR/target/corpus/$t
    mkdir -p "$corpus"
    log=$LOGS/$t.log
    echo "fuzzing $t for ${SECS}s ..."
    # -timeout: one input taking 10 s is a hang, and a failure. -max_len: room for a
    # 64 KiB record and list pages near their bounds.
    set +e
    cargo +nightly fuzz run --fuzz-dir "$FUZZ_DIR" "$t" "$corpus" "$FUZZ_DIR/seeds/$t" -- \
        -max_total_time="$SECS" -timeout=10 -max_len=70000 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
    rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -1)
    # The last status line: "#123 DONE cov: 1 ft: 2 corp: 34/5678b ...".
    units=$(grep -Eo 'corp: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    if [ "$rc" = 0 ]; then
        result=ok
    else
        failed=1
        artifact=$(grep -Eo 'Test unit written to [^ ]+' "$log" | tail -1 | awk '{print $NF}')
        result="FAILED (exit $rc${artifact:+, input $artifact}; log $log)"
    fi
    rows+=("$(printf '%-14s %12s %8s %8s %6s  %s' "$t" "${execs:--}" "${rate:--}" "${units:--}" "${cov:--}" "$result")")
done

echo
printf '%-14s %12s %8s %8s %6s  %s\n' target executions exec/s corpus cov result
for r in "${rows[@]}"; do echo "$r"; done
exit $failed
