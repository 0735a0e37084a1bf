#!/usr/bin/env bash
# Footprint of a release build: binary size, time from start to the first answered /healthz on an
# existing database, and idle RSS after a minute of scheduled passes. (RSS under load is measured
# by bench/ingest.sh.) See bench/README.md.
#
# Environment (all optional):
#   CARGO_TARGET_DIR  where to build (default: <project>/target)
#   STARTS            how many timed starts (default 10)
#   IDLE_SECONDS      how long to let it idle before reading RSS (default 65)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
STARTS=${STARTS:-10}
IDLE_SECONDS=${IDLE_SECONDS:-65}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $CARGO_TARGET_DIR in /*) ;; *) CARGO_TARGET_DIR=$ROOT/$CARGO_TARGET_DIR ;; esac
export CARGO_TARGET_DIR
BIN=$CARGO_TARGET_DIR/release/quicket-followup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/quicket-footprint.XXXXXX")
PID=""
cleanup() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID"; wait "$PID" || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && cargo build --release)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cat >"$WORK/c.toml" <<CONF
[server]
listen = "127.0.0.1:$PORT"
webhook_token = "footprint-token-0123456789"
[database]
path = "$WORK/followup.sqlite"
[email]
outbox_dir = "$WORK/outbox"
[templates]
dir = "$ROOT/templates/emails"
CONF

echo "== binary: $(stat -c %s "$BIN") bytes ($BIN)"

# First start creates and migrates the database; the timed starts reuse it.
"$BIN" --config "$WORK/c.toml" serve >/dev/null 2>&1 &
PID=$!
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.05; done
kill -TERM "$PID"; wait "$PID" || true; PID=""

python3 - "$BIN" "$WORK/c.toml" "$PORT" "$STARTS" <<'PY'
import subprocess, sys, time, urllib.request
bin_, conf, port, starts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
times = []
for _ in range(starts):
    t0 = time.monotonic()
    p = subprocess.Popen([bin_, "--config", conf, "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            break
        except Exception:
            time.sleep(0.002)
    times.append((time.monotonic() - t0) * 1000)
    p.terminate(); p.wait()
times.sort()
print(f"== start to first /healthz (existing database, {starts} starts): "
      f"median {times[len(times)//2]:.1f} ms, max {times[-1]:.1f} ms")
PY

"$BIN" --config "$WORK/c.toml" serve >/dev/null 2>&1 &
PID=$!
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.05; done
sleep "$IDLE_SECONDS"
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
echo "== idle after ${IDLE_SECONDS}s (passes every minute): RSS $((RSS / 1024)) MB (${RSS} kB), peak ${HWM} kB"
