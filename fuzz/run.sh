#!/usr/bin/env bash
# Runs each fuzz target for a bounded time, one after another, and prints one summary line per
# target. Not part of CI's main run (.ci/run); see fuzz/README.md.
#
#   fuzz/run.sh                         every target, SECONDS_PER_TARGET (600) each
#   SECONDS_PER_TARGET=60 fuzz/run.sh parse_hook
#
# Environment:
#   SECONDS_PER_TARGET  seconds of fuzzing per target (default 600)
#   FUZZ_SANITIZER      address (default) or none (faster; still catches panics, hangs, OOM)
#   FUZZ_WORK           writable corpus root (default fuzz/target/work; libFuzzer adds to it)
#   FUZZ_EXTRA          extra libFuzzer flags, e.g. "-seed=1"
#
# The committed seeds in fuzz/corpus/<target>/ are only read; everything libFuzzer generates goes
# to $FUZZ_WORK/<target>/ and crash/timeout/OOM inputs to fuzz/artifacts/<target>/, both ignored
# by git. Exits 1 when any target found something (the artifact's path is printed), 2 when the
# fuzzer could not be built or run.
set -uo pipefail
cd "$(dirname "$0")"
FUZZ_DIR=$(pwd)

SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-600}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-address}
FUZZ_WORK=${FUZZ_WORK:-$FUZZ_DIR/target/work}
FUZZ_EXTRA=${FUZZ_EXTRA:-}
ALL_TARGETS=(parse_hook config_from_toml values api_event)
if (($#)); then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

# Largest input per target: a Quicket hook is a few hundred bytes (the server refuses > 1 MiB), a
# config file a few KiB, a single value a few dozen bytes.
max_len() {
    case $1 in
    parse_hook | api_event) echo 65536 ;;
    config_from_toml) echo 16384 ;;
    *) echo 1024 ;;
    esac
}

if ! command -v cargo-fuzz >/dev/null 2>&1 && ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz from crates.io ..."
    cargo install cargo-fuzz --locked || {
        echo "cargo-fuzz could not be installed" >&2
        exit 2
    }
fi

# cargo-fuzz passes nightly-only flags (-Zsanitizer, sancov); a stable toolchain accepts them with
# RUSTC_BOOTSTRAP=1.
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi
# Config::from_toml also reads these; the input alone must decide the outcome.
unset QUICKET_FOLLOWUP_WEBHOOK_TOKEN QUICKET_FOLLOWUP_ADMIN_PASSWORD QUICKET_FOLLOWUP_SMTP_URL \
    QUICKET_FOLLOWUP_CONFIG

# -O: optimised like production; -a: with debug assertions and overflow checks, so an arithmetic
# overflow is a finding rather than a silent wrap.
BUILD_FLAGS=(-O -a --sanitizer "$FUZZ_SANITIZER")
mkdir -p "$FUZZ_DIR/target"

echo "building fuzz targets (sanitizer: $FUZZ_SANITIZER) ..."
if ! cargo fuzz build "${BUILD_FLAGS[@]}" 2>"$FUZZ_DIR/target/build.log"; then
    tail -40 "$FUZZ_DIR/target/build.log" >&2
    exit 2
fi

mkdir -p "$FUZZ_WORK" "$FUZZ_DIR/target/logs"
status=0
summaries=()
for target in "${TARGETS[@]}"; do
    work="$FUZZ_WORK/$target"
    artifacts="$FUZZ_DIR/artifacts/$target"
    log="$FUZZ_DIR/target/logs/$target.log"
    mkdir -p "$work" "$artifacts"
    dict=()
    [[ -f "dict/$target.dict" ]] && dict=("-dict=dict/$target.dict")
    before=$(find "$artifacts" -type f | wc -l)
    echo "fuzzing $target for ${SECONDS_PER_TARGET}s (log: $log) ..."
    start=$(date +%s)
    # The first corpus directory is the writable one; the committed seeds are only read. cargo fuzz
    # sets -artifact_prefix to fuzz/artifacts/<target>/.
    # One process, one thread (libFuzzer's default; -jobs/-workers would fork a child per job).
    # shellcheck disable=SC2086
    cargo fuzz run "${BUILD_FLAGS[@]}" "$target" "$work" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" \
        -max_len="$(max_len "$target")" \
        -rss_limit_mb=512 \
        -timeout=5 \
        -print_final_stats=1 \
        "${dict[@]}" $FUZZ_EXTRA >"$log" 2>&1
    rc=$?
    elapsed=$(($(date +%s) - start))
    # Seconds spent fuzzing (the wall time above also counts a rebuild when the sources changed).
    fuzzed=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corpus=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
    after=$(find "$artifacts" -type f | wc -l)
    finding="none"
    if ((rc != 0 || after > before)); then
        status=1
        newest=$(find "$artifacts" -type f -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
        finding="${newest:-exit code $rc, see $log}"
        grep -m3 -E "panicked at|ERROR: libFuzzer|SUMMARY:" "$log" | sed 's/^/    /'
    fi
    line="$target: ${fuzzed:-?}s fuzzing (${elapsed}s wall), ${runs:-?} runs, ${speed:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corpus:-?}, peak RSS ${rss:-?} MB, finding: $finding"
    echo "$line"
    summaries+=("$line")
    if ((status != 0)); then
        echo "stopping at the first finding; minimise it with:"
        echo "  RUSTC_BOOTSTRAP=1 cargo fuzz tmin ${BUILD_FLAGS[*]} $target $finding"
        break
    fi
done

echo
echo "summary ($(date -u +%Y-%m-%dT%H:%MZ), ${SECONDS_PER_TARGET}s per target, sanitizer $FUZZ_SANITIZER):"
printf '  %s\n' "${summaries[@]}"
exit $status
