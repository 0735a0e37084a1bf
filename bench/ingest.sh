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
#   BENCH_BIN         run this quicket-followup binary instead of building one (to compare builds)
#   PORT              port to listen on (default: a free one)
#   RUST_LOG          the server's log filter (default: the service's own default)
#   KEEP=1            keep the temp dir (database, server log, wrk output) for inspection
#   SCAN              the server's [schedule] scan (default "0 0 0 1 1 *": no reminder pass during the
#                     load; SCAN=default keeps the service's own, a pass every minute, which lands in
#                     a run that crosses a minute boundary and shows in its p99)
#   EXTRA_CONFIG      TOML appended to the server's config, e.g. a [quicket] section with a key so
#                     that every new event starts a lookup in the background while hooks arrive
#   FSYNC_COUNT=0     do not count the server's fsync calls with `perf stat` (counted when perf works)
#   PROFILE=1         build with symbols (in CARGO_TARGET_DIR-profile; same optimisation) and
#                     record the server with perf (cpu-clock) during the load; prints the top entries
#   PIN=1             pin the server to CPU SERVER_CPU (0) and wrk to WRK_CPU (1) with taskset
#                     (default: on with PEER=1, off otherwise)
#   PEER=1            then run the same load against bench/peer/server.js (Node's http +
#                     better-sqlite3 12, WAL, synchronous=FULL, one transaction per request),
#                     pinned the same way, and print both figures and their ratio. better-sqlite3
#                     is installed from npm into PEER_DIR (default ~/.cache/quicket-followup-bench-peer)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
TOKEN=bench-token-0123456789abcdef
REF_COMMITS=2000
TARGET_RATE=10000
TARGET_P99_MS=8
PEER=${PEER:-0}
PIN=${PIN:-$PEER}
PIN_SERVER_CPU=${SERVER_CPU:-0}
PIN_WRK_CPU=${WRK_CPU:-1}
PEER_DIR=${PEER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quicket-followup-bench-peer}

CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $CARGO_TARGET_DIR in /*) ;; *) CARGO_TARGET_DIR=$ROOT/$CARGO_TARGET_DIR ;; esac
export CARGO_TARGET_DIR
BIN=${BENCH_BIN:-$CARGO_TARGET_DIR/release/quicket-followup}

say() { printf '== %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

WORK=""
SERVER_PID=""
PERF_PID=""
PEER_PID=""
cleanup() {
    local rc=$?
    if [[ -n $PEER_PID ]]; then kill -TERM "$PEER_PID" 2>/dev/null || true; wait "$PEER_PID" 2>/dev/null || true; fi
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
# With PIN=1 each server runs on SERVER_CPU and wrk on WRK_CPU, so that neither steals the other's.
SERVER_PIN=()
on_wrk_cpu() { if [[ $PIN == 1 ]]; then taskset -c "$PIN_WRK_CPU" "$@"; else "$@"; fi; }
if [[ $PIN == 1 ]]; then
    command -v taskset >/dev/null || die "PIN=1 needs taskset (util-linux)"
    (($(nproc) >= 2)) || die "PIN=1 needs two CPUs"
    SERVER_PIN=(taskset -c "$PIN_SERVER_CPU")
fi
if [[ $PEER == 1 ]]; then
    command -v node >/dev/null && command -v npm >/dev/null ||
        die "PEER=1 needs Node.js 20 and npm (better-sqlite3 12 builds from source when no prebuilt binary can be fetched: python3, make, g++)"
fi

# --- build ---------------------------------------------------------------------------------
if [[ ${PROFILE:-0} == 1 ]]; then
    command -v perf >/dev/null || die "PROFILE=1 needs perf"
    CARGO_TARGET_DIR=$CARGO_TARGET_DIR-profile
    export CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
    BIN=${BENCH_BIN:-$CARGO_TARGET_DIR/release/quicket-followup}
fi
if [[ -z ${BENCH_BIN:-} ]]; then
    say "building the release binary (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$ROOT" && cargo build --release)
fi
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
SCAN=${SCAN:-0 0 0 1 1 *}
if [[ $SCAN != default ]]; then
    printf '\n[schedule]\nscan = "%s"\n' "$SCAN" >>"$CONF"
fi
# The email templates are read (and checked at start) relative to the working directory by default.
if [[ -d $ROOT/templates/emails ]]; then
    printf '\n[templates]\ndir = "%s"\n' "$ROOT/templates/emails" >>"$CONF"
fi
if [[ -n ${EXTRA_CONFIG:-} ]]; then
    printf '\n%s\n' "$EXTRA_CONFIG" >>"$CONF"
fi

say "starting the server on 127.0.0.1:$PORT (data in $WORK)"
(cd "$ROOT" && exec "${SERVER_PIN[@]}" "$BIN" --config "$CONF" serve) >"$WORK/server.log" 2>&1 &
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
say "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s bench/ingest.lua $URL$([[ $PIN == 1 ]] && echo " (server on CPU $PIN_SERVER_CPU, wrk on CPU $PIN_WRK_CPU)")"
cpu_snapshot "$SERVER_PID" >"$WORK/cpu-before.txt"
# How many commits the server really made: with WAL and synchronous=FULL each commit is one fsync of
# the WAL (checkpoints add a few). Optional: needs perf and access to the syscall tracepoints.
if [[ ${FSYNC_COUNT:-1} == 1 ]] && command -v perf >/dev/null; then
    perf stat -x, -o "$WORK/perf.txt" -p "$SERVER_PID" \
        -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync 2>/dev/null &
    PERF_PID=$!
    sleep 0.3
fi
PROF_PID=""
if [[ ${PROFILE:-0} == 1 ]]; then
    perf record -q -e cpu-clock -F 999 -g -p "$SERVER_PID" -o "$WORK/perf.data" 2>"$WORK/perf-record.err" &
    PROF_PID=$!
    sleep 0.3
fi
wall_start=$(date +%s.%N)
BENCH_RUN=$(date +%s) on_wrk_cpu wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -s "$BENCH_DIR/ingest.lua" "$URL" | tee "$WORK/wrk.txt"
kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; die "the server died during the run"; }
wall_end=$(date +%s.%N)
cpu_snapshot "$SERVER_PID" >"$WORK/cpu-after.txt"
if [[ -n $PROF_PID ]]; then
    kill -INT "$PROF_PID" 2>/dev/null || true
    wait "$PROF_PID" 2>/dev/null || true
    say "perf: the server's top entries during the load (self, all threads)"
    perf report -q -i "$WORK/perf.data" --no-children --sort dso,sym -g none 2>/dev/null |
        head -20 | cut -c1-120 | sed 's/^/  /' || true
fi
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

# --- PEER=1: the same load against a minimal Node + better-sqlite3 receiver ----------------
if [[ $PEER == 1 ]]; then
    say "peer: installing better-sqlite3 12 from npm into $PEER_DIR (once; builds from source when no prebuilt binary can be fetched)"
    mkdir -p "$PEER_DIR"
    cp "$BENCH_DIR/peer/package.json" "$BENCH_DIR/peer/server.js" "$PEER_DIR/"
    if ! (cd "$PEER_DIR" && node -e "require('better-sqlite3')" 2>/dev/null); then
        (cd "$PEER_DIR" && npm install --no-audit --no-fund --loglevel=error) >"$WORK/npm.log" 2>&1 ||
            { tail -30 "$WORK/npm.log" >&2; die "npm install of better-sqlite3 failed"; }
    fi
    PEER_VERSION=$(cd "$PEER_DIR" && node -p "require('better-sqlite3/package.json').version")
    PEER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    say "peer: node $(node --version) + better-sqlite3 $PEER_VERSION on 127.0.0.1:$PEER_PORT"
    "${SERVER_PIN[@]}" node "$PEER_DIR/server.js" "$PEER_PORT" "$TOKEN" "$WORK/peer.sqlite" >"$WORK/peer.log" 2>&1 &
    PEER_PID=$!
    healthy=0
    for _ in $(seq 100); do
        kill -0 "$PEER_PID" 2>/dev/null || { cat "$WORK/peer.log" >&2; die "the peer exited at start"; }
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PEER_PORT/healthz" || true)
        if [[ $code == 200 ]]; then healthy=1; break; fi
        sleep 0.1
    done
    [[ $healthy == 1 ]] || { cat "$WORK/peer.log" >&2; die "the peer did not answer within 10 s"; }
    BENCH_RUN=$(($(date +%s) + 1)) on_wrk_cpu wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -s "$BENCH_DIR/ingest.lua" "http://127.0.0.1:$PEER_PORT/webhooks/quicket/$TOKEN" | tee "$WORK/peer-wrk.txt"
    kill -0 "$PEER_PID" 2>/dev/null || { tail -20 "$WORK/peer.log" >&2; die "the peer died during the run"; }
    PEER_RSS=$(awk '/^VmHWM:/ {print $2 " " $3}' "/proc/$PEER_PID/status")
    kill -TERM "$PEER_PID"
    wait "$PEER_PID" 2>/dev/null || true
    PEER_PID=""
    PEER_ORDERS=$(python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM orders').fetchone()[0])" "$WORK/peer.sqlite")
    PEER_RESULT=$(grep '^BENCH_RESULT' "$WORK/peer-wrk.txt" || true)
    pfield() { sed -n "s/.*[[:space:]]$1=\([0-9]*\).*/\1/p" <<<"$PEER_RESULT"; }
    PEER_OK=$(pfield ok200); PEER_NON200=$(pfield non200); PEER_P99_US=$(pfield p99_us)
    PEER_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/peer-wrk.txt")
    echo
    say "peer against quicket-followup (same run, DURATION=$DURATION, $CONNECTIONS connections, each server on CPU $PIN_SERVER_CPU, wrk on CPU $PIN_WRK_CPU)"
    printf '  %-34s %s\n' \
        "quicket-followup hooks/s, p99" "$RPS, $P99_MS ms; $OK200 answers of 200, $ORDERS orders stored" \
        "peer hooks/s, p99" "$PEER_RPS, $(python3 -c "print(f'{$PEER_P99_US / 1000:.2f}')") ms; $PEER_OK answers of 200, $PEER_ORDERS orders stored; non-200 $PEER_NON200" \
        "peer peak RSS (VmHWM)" "$PEER_RSS" \
        "ratio (quicket-followup / peer)" "$(python3 -c "print(f'{$RPS / $PEER_RPS:.2f}')") x hooks/s"
    extra=$((PEER_ORDERS - PEER_OK))
    if ((extra < 0 || extra > CONNECTIONS)); then
        echo "  CHECK FAILED: the peer stored $PEER_ORDERS orders for $PEER_OK answers of 200"
        status=1
    else
        echo "  check: peer orders ($PEER_ORDERS) = 200 answers ($PEER_OK) + $extra in flight when wrk stopped"
    fi
fi
exit "$status"
