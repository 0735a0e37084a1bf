#!/usr/bin/env bash
# Load benchmark of the webhook receiver: wrk POSTs unique checkout_started hooks from 32
# connections to a release build of quicket-followup (synchronous=FULL, group commit), then checks
# what was stored and compares the rate with this machine's one-fsync-per-transaction rate.
# See bench/README.md.
#
# Environment (all optional):
#   DURATION          wrk duration (default 20s)
#   CONNECTIONS       wrk connections (default 32); THREADS: wrk threads (default 2)
#   CARGO_TARGET_DIR  where to build (default: <project>/target)
#   PORT              port to listen on (default: a free one)
#   RUST_LOG          the server's log filter (default: the service's own default)
#   KEEP=1            keep the temp dir (database, server log, wrk output) for inspection
#   EXTRA_CONFIG      TOML appended to the server's config, e.g. a [quicket] section with a key so
#                     that every new event starts a lookup in the background while hooks arrive
#   FSYNC_COUNT=0     do not count the server's fsync calls with `perf stat` (counted when perf works)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
TOKEN=bench-token-0123456789abcdef
REF_COMMITS=2000
TARGET_RATE=10000
TARGET_P99_MS=20

CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $CARGO_TARGET_DIR in /*) ;; *) CARGO_TARGET_DIR=$ROOT/$CARGO_TARGET_DIR ;; esac
export CARGO_TARGET_DIR
BIN=$CARGO_TARGET_DIR/release/quicket-followup

say() { printf '== %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

WORK=""
SERVER_PID=""
PERF_PID=""
cleanup() {
    local rc=$?
    if [[ -n $PERF_PID ]]; then kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true; fi
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ ${KEEP:-0} == 1 ]]; then
            echo "bench: kept $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools ---------------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is needed (free port, row counts, reference rate)"
command -v curl >/dev/null || die "curl is needed (health check)"
if ! command -v wrk >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "wrk is missing; install it as root: apt-get install -y wrk"
    say "installing wrk"
    apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }
fi

# --- build ---------------------------------------------------------------------------------
say "building the release binary (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$ROOT" && cargo build --release)
[[ -x $BIN ]] || die "no binary at $BIN after the build"

# --- server --------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/quicket-bench.XXXXXX")
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')}
CONF=$WORK/bench.toml
cat >"$CONF" <<EOF
[server]
listen = "127.0.0.1:$PORT"
webhook_token = "$TOKEN"

[database]
path = "$WORK/followup.sqlite"

[email]
outbox_dir = "$WORK/outbox"
EOF
# The email templates are read (and checked at start) relative to the working directory by default.
if [[ -d $ROOT/templates/emails ]]; then
    printf '\n[templates]\ndir = "%s"\n' "$ROOT/templates/emails" >>"$CONF"
fi
if [[ -n ${EXTRA_CONFIG:-} ]]; then
    printf '\n%s\n' "$EXTRA_CONFIG" >>"$CONF"
fi

say "starting the server on 127.0.0.1:$PORT (data in $WORK)"
(cd "$ROOT" && exec "$BIN" --config "$CONF" serve) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
healthy=0
for _ in $(seq 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server exited at start"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz" || true)
    if [[ $code == 200 ]]; then healthy=1; break; fi
    sleep 0.1
done
[[ $healthy == 1 ]] || { cat "$WORK/server.log" >&2; die "GET /healthz did not answer 200 within 10 s"; }

cpu_snapshot() { # "tid name seconds" for every thread of a process (utime + stime)
    python3 - "$1" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
for tid in os.listdir(f"/proc/{sys.argv[1]}/task"):
    try:
        name = open(f"/proc/{sys.argv[1]}/task/{tid}/comm").read().strip().replace(" ", "_")
        fields = open(f"/proc/{sys.argv[1]}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    print(tid, name, (int(fields[11]) + int(fields[12])) / tick)
PY
}

# --- load ----------------------------------------------------------------------------------
URL="http://127.0.0.1:$PORT/webhooks/quicket/$TOKEN"
say "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s bench/ingest.lua $URL"
cpu_snapshot "$SERVER_PID" >"$WORK/cpu-before.txt"
# How many commits the server really made: with WAL and synchronous=FULL each commit is one fsync of
# the WAL (checkpoints add a few). Optional: needs perf and access to the syscall tracepoints.
if [[ ${FSYNC_COUNT:-1} == 1 ]] && command -v perf >/dev/null; then
    perf stat -x, -o "$WORK/perf.txt" -p "$SERVER_PID" \
        -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync 2>/dev/null &
    PERF_PID=$!
    sleep 0.3
fi
wall_start=$(date +%s.%N)
BENCH_RUN=$(date +%s) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -s "$BENCH_DIR/ingest.lua" "$URL" | tee "$WORK/wrk.txt"
kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; die "the server died during the run"; }
wall_end=$(date +%s.%N)
cpu_snapshot "$SERVER_PID" >"$WORK/cpu-after.txt"
FSYNCS=""
if [[ -n $PERF_PID ]]; then
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
    FSYNCS=$(awk -F, '$1 ~ /^[0-9]+$/ {n += $1; ok = 1} END {if (ok) print n}' "$WORK/perf.txt" 2>/dev/null || true)
fi

# --- stop ----------------------------------------------------------------------------------
PEAK_RSS=$(awk '/^VmHWM:/ {print $2 " " $3}' "/proc/$SERVER_PID/status")
say "stopping the server (SIGTERM)"
stop_start=$(date +%s.%N)
kill -TERM "$SERVER_PID"
server_rc=0
wait "$SERVER_PID" || server_rc=$?
stop_end=$(date +%s.%N)
SERVER_PID=""
[[ $server_rc == 0 ]] || echo "bench: WARNING: the server exited with status $server_rc after SIGTERM"

# --- what was stored -----------------------------------------------------------------------
read -r ORDERS DELIVERIES HISTORY OUTCOMES < <(python3 - "$WORK/followup.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
count = lambda table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
outcomes = ",".join(f"{o}={n}" for o, n in
                    db.execute("SELECT outcome, count(*) FROM deliveries GROUP BY outcome ORDER BY outcome"))
print(count("orders"), count("deliveries"), count("order_history"), outcomes or "-")
PY
)

# --- reference: one durable commit per transaction -----------------------------------------
say "reference: $REF_COMMITS single-insert transactions, WAL + synchronous=FULL, in $WORK"
REF_RATE=$(python3 - "$WORK/reference.sqlite" "$REF_COMMITS" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, reference TEXT NOT NULL, body BLOB NOT NULL)")
body = b"x" * 600  # about the size of a hook's body
n = int(sys.argv[2])
start = time.perf_counter()
for i in range(n):
    db.execute("BEGIN")
    db.execute("INSERT INTO t (reference, body) VALUES (?, ?)", (f"REF{i:08d}", body))
    db.execute("COMMIT")
elapsed = time.perf_counter() - start
print(f"{n / elapsed:.0f}")
PY
)

# --- summary -------------------------------------------------------------------------------
RPS=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.txt")
P99_WRK=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")
NON2XX_WRK=$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' "$WORK/wrk.txt")
RESULT=$(grep '^BENCH_RESULT' "$WORK/wrk.txt" || true)
field() { sed -n "s/.*[[:space:]]$1=\([0-9]*\).*/\1/p" <<<"$RESULT"; }
OK200=$(field ok200); NON200=$(field non200); RECORDED=$(field recorded)
P99_US=$(field p99_us); TIMEOUTS=$(field timeouts)
# CPU seconds used during the run, in all, by the SQLite writer thread, and by the tokio workers.
SERVER_CPU=$(python3 - "$WORK/cpu-before.txt" "$WORK/cpu-after.txt" "$wall_start" "$wall_end" <<'PY'
import sys
def load(path):
    return {tid: (name, float(sec)) for tid, name, sec in (l.split() for l in open(path))}
before, after = load(sys.argv[1]), load(sys.argv[2])
wall = float(sys.argv[4]) - float(sys.argv[3])
used = {}
for tid, (name, sec) in after.items():
    used[name] = used.get(name, 0.0) + sec - before.get(tid, (name, 0.0))[1]
total = sum(used.values())
writer = used.get("sqlite-writer", 0.0)
workers = used.get("tokio-rt-worker", 0.0)
print(f"{total:.1f} s in {wall:.1f} s ({total / wall:.2f} cores); sqlite-writer thread "
      f"{writer:.1f} s ({100 * writer / wall:.0f}% of a core), tokio workers {workers:.1f} s")
PY
)
STOP_S=$(python3 -c "print(f'{$stop_end - $stop_start:.2f}')")
RATIO=$(python3 -c "print(f'{$RPS / $REF_RATE:.1f}')")
P99_MS=$(python3 -c "print(f'{$P99_US / 1000:.2f}')")
if [[ -n $FSYNCS && $FSYNCS -gt 0 ]]; then
    FSYNC_LINE="$FSYNCS ($(python3 -c "print(f'{$OK200 / $FSYNCS:.1f}')") hooks answered 200 per fsync)"
else
    FSYNC_LINE="not counted (needs perf with syscall tracepoints; FSYNC_COUNT=${FSYNC_COUNT:-1})"
fi
WARNINGS=$(grep -ciE 'WARN|ERROR' "$WORK/server.log" || true)

echo
say "summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, DURATION=$DURATION, $CONNECTIONS connections)"
printf '  %-34s %s\n' \
    "hooks/s (wrk Requests/sec)" "$RPS" \
    "p99 latency (wrk --latency)" "$P99_WRK ($P99_MS ms)" \
    "200 answers / recorded" "$OK200 / $RECORDED" \
    "non-200 answers" "$NON200 (wrk Non-2xx: ${NON2XX_WRK:-0}, timeouts: $TIMEOUTS)" \
    "rows stored: orders" "$ORDERS" \
    "rows stored: deliveries" "$DELIVERIES ($OUTCOMES)" \
    "rows stored: order_history" "$HISTORY" \
    "reference fsync commits/s" "$REF_RATE (1 insert per commit, WAL, synchronous=FULL)" \
    "hooks per commit-equivalent" "$RATIO x" \
    "server fsync calls during wrk" "$FSYNC_LINE" \
    "server CPU during wrk" "$SERVER_CPU" \
    "server peak RSS (VmHWM)" "$PEAK_RSS" \
    "server stop after SIGTERM" "$STOP_S s (exit status $server_rc)" \
    "server log WARN/ERROR lines" "$WARNINGS" \
    "release binary" "$(ls -l "$BIN")"

status=0
# Every 200 must be a stored order. Requests still in flight when wrk stops may have been committed
# without wrk counting the answer, so up to CONNECTIONS extra orders are expected.
extra=$((ORDERS - OK200))
if ((extra < 0)); then
    echo "  CHECK FAILED: $OK200 hooks answered 200 but only $ORDERS orders stored"
    status=1
elif ((extra > CONNECTIONS)); then
    echo "  CHECK FAILED: $ORDERS orders stored for $OK200 answers of 200 (more than $CONNECTIONS in flight)"
    status=1
else
    echo "  check: orders ($ORDERS) = 200 answers ($OK200) + $extra in flight when wrk stopped"
fi
verdict() { if [[ $1 == 1 ]]; then echo "met"; else echo "MISSED"; fi; }
rate_ok=$(python3 -c "print(int($RPS >= $TARGET_RATE))")
p99_ok=$(python3 -c "print(int($P99_US <= $TARGET_P99_MS * 1000))")
echo "  target >= $TARGET_RATE hooks/s: $(verdict "$rate_ok"); p99 <= $TARGET_P99_MS ms: $(verdict "$p99_ok");" \
    "no non-200: $(verdict "$((NON200 == 0 ? 1 : 0))")"
if ((WARNINGS > 0)); then
    echo "  server log WARN/ERROR lines (timestamps cut, counted):"
    grep -iE 'WARN|ERROR' "$WORK/server.log" | sed 's/^[0-9T:.Z-]* *//' | sort | uniq -c | sort -rn |
        head -10 | sed 's/^/    /'
fi
exit "$status"
