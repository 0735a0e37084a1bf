#!/usr/bin/env bash
# Benchmark of the reminder pass: seeds 1,000,000 orders (100,000 of them dormant checkouts)
# through the real webhook endpoint of a release build, then times `run-once --dry-run` (deciding
# what is due) and, on a second, smaller database, a real `run-once` sending to a local SMTP sink.
# See bench/README.md ("Reminder pass").
#
# Environment (all optional):
#   ORDERS, DORMANT             the big database: orders, and how many of them are dormant
#                               checkout_started buyer-events (default 1000000 and 100000)
#   SEND_ORDERS, SEND_DORMANT   the send database (default 50000 and 5000: every dormant one is sent)
#   RUNS                        dry-run passes to time (default 3)
#   CONNECTIONS, THREADS        wrk while seeding (default 32 and 2)
#   CARGO_TARGET_DIR            where to build (default: <project>/target)
#   SMTP_PORT                   the SMTP sink's port (default: a free one)
#   RUST_LOG                    the service's log filter (default: the service's own)
#   KEEP=1                      keep the work dir (/tmp/quicket-pass-bench, or PASS_BENCH_DIR) and
#                               reuse its big database on the next KEEP=1 run when ORDERS/DORMANT match
#   RESEED=1                    with KEEP=1: seed the big database again even when one is kept
#   STRACE=0                    do not count the system calls of a dry-run pass (strace -c)
#   PROFILE=1                   also profile a dry-run pass and a second send (on a copy of the
#                               send database) with perf (builds a second binary that keeps its
#                               symbols in CARGO_TARGET_DIR-profile: about 4 more minutes)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
ORDERS=${ORDERS:-1000000}
DORMANT=${DORMANT:-100000}
SEND_ORDERS=${SEND_ORDERS:-50000}
SEND_DORMANT=${SEND_DORMANT:-5000}
RUNS=${RUNS:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
TOKEN=bench-token-0123456789abcdef
TARGET_DECIDE_MS=150
TARGET_RSS_MB=40
TARGET_EMAILS_PER_S=500

CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $CARGO_TARGET_DIR in /*) ;; *) CARGO_TARGET_DIR=$ROOT/$CARGO_TARGET_DIR ;; esac
export CARGO_TARGET_DIR
BIN=$CARGO_TARGET_DIR/release/quicket-followup

say() { printf '== %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

WORK=""
SERVER_PID=""
WRK_PID=""
SINK_PID=""
stop_pid() { # SIGTERM, wait up to 5 s, then SIGKILL
    local pid=$1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    stop_pid "$WRK_PID"
    stop_pid "$SERVER_PID"
    stop_pid "$SINK_PID"
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ ${KEEP:-0} == 1 ]]; then
            echo "bench: kept $WORK (the big database is reused by the next KEEP=1 run)"
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
command -v python3 >/dev/null || die "python3 is needed (free ports, row counts, SQL timing)"
command -v curl >/dev/null || die "curl is needed (health check)"
apt_install() { # package: installs it as root, or stops
    [[ $(id -u) -eq 0 ]] || die "$1 is missing; install it as root: apt-get install -y $1"
    say "installing $1"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$1" ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$1"; }
}
command -v wrk >/dev/null || apt_install wrk
[[ -x /usr/bin/time ]] || apt_install time
# smtp-sink comes with postfix (Debian's package only installs it; policy-rc.d keeps its daemon
# off in containers, and the bench never starts it).
[[ -x /usr/sbin/smtp-sink ]] || apt_install postfix

# --- build ---------------------------------------------------------------------------------
say "building the release binary (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$ROOT" && cargo build --release)
[[ -x $BIN ]] || die "no binary at $BIN after the build"
BUILT="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
if [[ -n $(cd "$ROOT" && git status --porcelain -- src migrations Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    BUILT="$BUILT + uncommitted changes in src/ (binary built $(date -u -r "$BIN" +%H:%M:%SZ))"
fi

if [[ ${KEEP:-0} == 1 ]]; then
    WORK=${PASS_BENCH_DIR:-${TMPDIR:-/tmp}/quicket-pass-bench}
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/quicket-pass-bench.XXXXXX")
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

# write_config DIR PORT [extra TOML for [email]]: the config every command of this bench uses.
# A scan cron that never comes (1 January, midnight) keeps the server's own scheduler from running
# passes while it is being seeded; send_window = "" lets every due reminder go at any hour.
write_config() {
    local dir=$1 port=$2 email_extra=${3:-}
    cat >"$dir/bench.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
webhook_token = "$TOKEN"

[database]
path = "$dir/followup.sqlite"

[email]
outbox_dir = "$dir/outbox"
$email_extra

[schedule]
scan = "0 0 0 1 1 *"
send_window = ""

[templates]
dir = "$ROOT/templates/emails"
EOF
}

# seed DIR TOTAL DORMANT: a fresh database in DIR with TOTAL orders, DORMANT of them dormant
# buyer-events, all through POST /webhooks/quicket/{token} of a running server. Writes DIR/seed.env
# (SEED_END: when the last hook was answered, UTC; SEED_RATE: hooks/s) and checks the counts.
seed() {
    local dir=$1 total=$2 dormant=$3
    rm -rf "$dir"
    mkdir -p "$dir/done"
    local port
    port=$(free_port)
    write_config "$dir" "$port"
    say "seeding $total orders ($dormant dormant) into $dir/followup.sqlite through 127.0.0.1:$port"
    (cd "$ROOT" && exec "$BIN" --config "$dir/bench.toml" serve) >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    local healthy=0 code
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/server.log" >&2; die "the server exited at start"; }
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true)
        if [[ $code == 200 ]]; then healthy=1; break; fi
        sleep 0.1
    done
    [[ $healthy == 1 ]] || { cat "$dir/server.log" >&2; die "GET /healthz did not answer 200 within 10 s"; }

    local start end
    start=$(date +%s.%N)
    # -d is only an upper bound: the script marks each thread done and wrk is stopped with SIGINT.
    SEED_TOTAL=$total SEED_DORMANT=$dormant SEED_THREADS=$THREADS SEED_RUN=$(date +%s) \
        SEED_DONE_DIR="$dir/done" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d3600s -s "$BENCH_DIR/pass_seed.lua" \
        "http://127.0.0.1:$port/webhooks/quicket/$TOKEN" >"$dir/wrk.txt" 2>&1 &
    WRK_PID=$!
    local n
    while :; do
        n=$(find "$dir/done" -name 'done-*' | wc -l)
        ((n >= THREADS)) && break
        kill -0 "$WRK_PID" 2>/dev/null || { cat "$dir/wrk.txt" >&2; die "wrk exited before seeding was done"; }
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$dir/server.log" >&2; die "the server died while seeding"; }
        sleep 0.2
    done
    end=$(date +%s.%N)
    kill -INT "$WRK_PID"
    wait "$WRK_PID" || true
    WRK_PID=""
    grep '^seed:' "$dir/wrk.txt" | tail -"$THREADS" | sed 's/^/  /' || true
    local result
    result=$(grep '^SEED_RESULT' "$dir/wrk.txt" || true)
    [[ -n $result ]] || { cat "$dir/wrk.txt" >&2; die "wrk printed no SEED_RESULT"; }
    echo "  $result"

    say "stopping the seeding server (SIGTERM)"
    kill -TERM "$SERVER_PID"
    local server_rc=0
    wait "$SERVER_PID" || server_rc=$?
    SERVER_PID=""
    [[ $server_rc == 0 ]] || echo "bench: WARNING: the server exited with status $server_rc after SIGTERM"

    local rate seed_end
    rate=$(python3 -c "print(f'{$total / ($end - $start):.0f}')")
    seed_end=$(date -u -d "@${end%.*}" +%Y-%m-%dT%H:%M:%SZ)
    printf 'SEED_TOTAL=%s\nSEED_DORMANT=%s\nSEED_END=%s\nSEED_RATE=%s\nSEED_SECONDS=%s\nSEED_BUILT=%q\n' \
        "$total" "$dormant" "$seed_end" "$rate" "$(python3 -c "print(f'{$end - $start:.0f}')")" \
        "$BUILT" >"$dir/seed.env"
    echo "  seeded $total hooks in $(python3 -c "print(f'{$end - $start:.1f}')") s: $rate hooks/s"
    check_counts "$dir" "$total" "$dormant" || die "the seeded database is not what was asked for"
}

# check_counts DIR TOTAL DORMANT: orders = TOTAL and not-completed buyer-events = DORMANT.
check_counts() {
    python3 - "$1/followup.sqlite" "$2" "$3" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
total, dormant = int(sys.argv[2]), int(sys.argv[3])
one = lambda sql: db.execute(sql).fetchone()[0]
orders = one("SELECT count(*) FROM orders")
started = one("SELECT count(*) FROM orders WHERE state <> 'checkout_completed'")
be = one("SELECT count(*) FROM buyer_events")
open_be = one("SELECT count(*) FROM buyer_events WHERE state <> 'checkout_completed'")
with_check = one("SELECT count(*) FROM buyer_events WHERE next_check_at IS NOT NULL")
deliveries = one("SELECT count(*) FROM deliveries")
print(f"  rows: orders {orders} ({started} not completed), buyer_events {be} ({open_be} not completed, "
      f"{with_check} with a next check), deliveries {deliveries}")
ok = orders == total and open_be == dormant and with_check == dormant
print("  check: " + ("orders and dormant buyer-events as asked" if ok else
      f"FAILED: wanted {total} orders and {dormant} dormant buyer-events"))
sys.exit(0 if ok else 1)
PY
}

# timed OUT TIMEFILE CONFIG ARGS...: runs the binary under /usr/bin/time -v, stdout to OUT, its
# log (stderr) to OUT.err. time -v gives the wall time in 10 ms steps only, so the wall time in ms
# is measured here too and appended to TIMEFILE as "Wall ms: N".
timed() {
    local out=$1 tfile=$2 conf=$3 t0 t1 rc=0
    shift 3
    t0=$(date +%s%N)
    (cd "$ROOT" && /usr/bin/time -v -o "$tfile" "$BIN" --config "$conf" "$@") >"$out" 2>"$out.err" || rc=$?
    t1=$(date +%s%N)
    echo "Wall ms: $(((t1 - t0) / 1000000))" >>"$tfile"
    return "$rc"
}
elapsed_ms() { awk -F': ' '/^Wall ms/ {print $2}' "$1"; }
max_rss_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
cpu_ms() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.0f", s * 1000}' "$1"; }
plus_2h() { date -u -d "$1 + 2 hours" +%Y-%m-%dT%H:%M:%SZ; }

# --- 1. the big database -------------------------------------------------------------------
BIG=$WORK/big
reuse=0
if [[ ${KEEP:-0} == 1 && ${RESEED:-0} != 1 && -f $BIG/seed.env && -f $BIG/followup.sqlite ]]; then
    # shellcheck disable=SC1091
    if (source "$BIG/seed.env" && [[ $SEED_TOTAL == "$ORDERS" && $SEED_DORMANT == "$DORMANT" ]]); then
        reuse=1
    fi
fi
if [[ $reuse == 1 ]]; then
    say "reusing the seeded database in $BIG (RESEED=1 seeds it again)"
    check_counts "$BIG" "$ORDERS" "$DORMANT" || die "the kept database is not what was asked for; RESEED=1"
else
    seed "$BIG" "$ORDERS" "$DORMANT"
fi
# shellcheck disable=SC1091
source "$BIG/seed.env"
BIG_RATE=$SEED_RATE
BIG_SECONDS=$SEED_SECONDS
BIG_SEEDED_BY=$SEED_BUILT
NOW=$(plus_2h "$SEED_END")
DB_SIZE=$(du -sh "$BIG" | cut -f1)

# --- 2. deciding: run-once --dry-run -------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "timing run-once --dry-run --now $NOW, $RUNS times (one line per buyer-event to a file; load average $LOAD_BEFORE)"
DRY_LINES=()
for r in $(seq "$RUNS"); do
    out=$WORK/dry-$r.txt
    timed "$out" "$WORK/dry-$r.time" "$BIG/bench.toml" run-once --dry-run --now "$NOW" ||
        { cat "$out.err" >&2; die "run-once --dry-run failed"; }
    summary=$(tail -1 "$out")
    lines=$(($(wc -l <"$out") - 1))
    ms=$(elapsed_ms "$WORK/dry-$r.time")
    rss=$(max_rss_kb "$WORK/dry-$r.time")
    cpu=$(cpu_ms "$WORK/dry-$r.time")
    DRY_LINES+=("$(printf 'run %d: %5d ms wall, %5d ms CPU, max RSS %6.1f MB, %d lines; %s' \
        "$r" "$ms" "$cpu" "$(python3 -c "print($rss / 1024)")" "$lines" "$summary")")
    echo "  ${DRY_LINES[-1]}"
    echo "$ms $rss" >>"$WORK/dry-times.txt"
done
echo "  decisions of the last run: $(awk '{print $1, $2}' "$WORK/dry-$RUNS.txt" | head -n -1 |
    sort | uniq -c | sort -rn | awk '{printf "%s%s %s %s", sep, $1, $2, $3; sep = ", "}')"
read -r BEST_MS MEDIAN_MS WORST_MS MAX_RSS_KB < <(python3 - "$WORK/dry-times.txt" <<'PY'
import statistics, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
ms = sorted(r[0] for r in rows)
print(ms[0], int(statistics.median(ms)), ms[-1], max(r[1] for r in rows))
PY
)
rm -f "$WORK/dry-times.txt"

# The fixed cost of run-once (start, open, migrations check, templates): a pass with nothing due.
timed "$WORK/empty.txt" "$WORK/empty.time" "$BIG/bench.toml" run-once --dry-run --now 2020-01-01T00:00:00Z ||
    { cat "$WORK/empty.txt.err" >&2; die "run-once --dry-run (nothing due) failed"; }
EMPTY_MS=$(elapsed_ms "$WORK/empty.time")
echo "  nothing due (--now 2020-01-01T00:00:00Z): $EMPTY_MS ms wall, max RSS $(python3 -c "print(f'{$(max_rss_kb "$WORK/empty.time") / 1024:.1f}')") MB; $(tail -1 "$WORK/empty.txt")"

# --- 3. where the time goes: the due query on its own, and a profile -----------------------
say "the due query (load_due in src/store/reminders.rs) on its own, python3's sqlite3 $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)')"
python3 - "$BIG/followup.sqlite" "$ROOT/src" "$NOW" <<'PY' | tee "$WORK/sql.txt" || true
import re, sqlite3, sys, time
db_path, src, now = sys.argv[1], sys.argv[2], sys.argv[3]
source = open(f"{src}/store/reminders.rs").read()
# The statement as the code has it now: the first string literal after `fn load_due`.
m = re.search(r'fn load_due\b.*?prepare_cached\(\s*"((?:[^"\\]|\\.)*)"', source, re.S)
if not m:
    print("  (could not find load_due's statement in the source)")
    sys.exit(0)
sql = m.group(1).replace('\\"', '"')
try:
    page = int(re.search(r'const PAGE: usize = (\d+);', open(f"{src}/reminders/pass.rs").read()).group(1))
except (AttributeError, OSError):
    page = 2000
db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
at = now.replace("Z", ".000Z")  # the service's timestamps: RFC 3339 UTC with milliseconds
# The statement's parameters by number, as load_due binds them: ?1 the pass time, ?2..?4 the
# previous page's last key, ?5 the page size, ?6 the reason a held-out step is recorded with.
try:
    held_out = re.search(r'pub const HELD_OUT: &str = "([^"]*)";', open(f"{src}/experiment.rs").read()).group(1)
except (AttributeError, OSError):
    held_out = "held out"
used = sorted({int(n) for n in re.findall(r"\?(\d+)", sql)})
if used and used[-1] > 6:
    print(f"  (load_due now uses ?{used[-1]}: teach bench/pass.sh what it binds)")
    sys.exit(0)
def params(after, limit):
    return (at, *after, limit, held_out)[: (used[-1] if used else 0)]
print("  EXPLAIN QUERY PLAN:")
for row in db.execute("EXPLAIN QUERY PLAN " + sql, params(("", "", ""), page)):
    print(f"    {row[3]}")
def best(f, n=5):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = f()
        out.append((time.perf_counter() - t) * 1000)
    return min(out), r
def pages():
    after, n = ("", "", ""), 0
    while True:
        rows = db.execute(sql, params(after, page)).fetchall()
        n += len(rows)
        if len(rows) < page:
            return n
        after = (rows[-1][5], rows[-1][0], rows[-1][1])
ms, n = best(pages, 3)
print(f"  as the pass reads it (pages of {page}, rows into Python): {n} rows, best of 3 {ms:.0f} ms")
agg = f"SELECT count(*), sum(length(email)) FROM ({sql})"
ms, r = best(lambda: db.execute(agg, params(("", "", ""), 10**9)).fetchone())
print(f"  the same rows as one query counted inside SQLite: {r[0]} rows, best of 5 {ms:.0f} ms")
# What each part of the statement costs: the covering index, then each correlated subquery.
w = "FROM buyer_events be INDEXED BY buyer_events_due WHERE be.next_check_at IS NOT NULL AND be.next_check_at <= ?1"
parts = [
    ("the due index alone (count)", f"SELECT count(*) {w}"),
    ("+ the columns the pass reads", f"SELECT count(*), sum(length(be.reference) + length(be.changed_at) + length(be.email) + length(be.event_date)) {w}"),
    ("+ the reminders subquery", f"SELECT count(*), sum(length((SELECT group_concat(r.step || r.status || r.decided_at, char(30)) FROM reminders r WHERE r.email_key = be.email_key AND r.event_id = be.event_id))) {w}"),
    ("+ the experiment subquery", f"SELECT count(*), sum((SELECT x.held_out FROM experiment x WHERE x.email_key = be.email_key AND x.event_id = be.event_id)) {w}"),
]
print("  its parts, counted inside SQLite (best of 5; each row's reads from the covering index):")
for name, q in parts:
    try:
        ms, r = best(lambda: db.execute(q, (at,)).fetchone())
        print(f"    {name:42s} {ms:6.1f} ms")
    except sqlite3.Error as e:
        print(f"    {name:42s} ({e})")
PY

# System calls of one dry-run pass: `write` is one per printed line unless stdout is buffered,
# `pread64` one per database page SQLite's own cache did not have.
SYSCALLS=""
if [[ ${STRACE:-1} == 1 ]] && command -v strace >/dev/null; then
    (cd "$ROOT" && strace -f -c -o "$WORK/strace.txt" \
        "$BIN" --config "$BIG/bench.toml" run-once --dry-run --now "$NOW") >/dev/null 2>&1 || true
    SYSCALLS=$(awk '$NF ~ /^(write|pread64|read|fsync|fdatasync)$/ {printf "%s%s %s", sep, $NF, $4; sep = ", "}' \
        "$WORK/strace.txt" 2>/dev/null || true)
    say "system calls of one dry-run pass (strace -c): ${SYSCALLS:-none counted}"
fi

# PROFILE=1: where the CPU time of a dry-run pass goes, from a second build that keeps its symbols
# (CARGO_TARGET_DIR-profile; the release profile strips them) and perf's DWARF call graphs.
if [[ ${PROFILE:-0} == 1 ]] && command -v perf >/dev/null; then
    PROF_TARGET=$CARGO_TARGET_DIR-profile
    say "PROFILE=1: building a release binary with symbols in $PROF_TARGET"
    (cd "$ROOT" && CARGO_TARGET_DIR=$PROF_TARGET CARGO_PROFILE_RELEASE_STRIP=false \
        CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release)
    # cpu-clock: a software event, so that it works in VMs without hardware counters.
    (cd "$ROOT" && perf record -q -e cpu-clock --call-graph dwarf,16384 -F 1000 -o "$WORK/perf.data" -- \
        "$PROF_TARGET/release/quicket-followup" --config "$BIG/bench.toml" run-once --dry-run --now "$NOW") \
        >/dev/null 2>"$WORK/perf.err" || true
    say "perf: share of the pass's samples spent in (inclusive)"
    perf report -q -i "$WORK/perf.data" --children --sort sym -g none 2>/dev/null |
        grep -E '\] (load_due|sqlite3_step|readDbPage|<std::io::stdio::StdoutLock as std::io::Write>::write_all|quicket_followup::reminders::pass::Engine::pass::\{\{closure\}\}|quicket_followup::reminders::planner::plan|check_deliverable|chrono::format::parse::parse_internal|malloc)( |$)' |
        cut -c1-120 | sed 's/^/  /' || true
    say "perf: the pass's top entries (self)"
    perf report -q -i "$WORK/perf.data" --no-children --sort dso,sym -g none 2>/dev/null |
        head -15 | cut -c1-120 | sed 's/^/  /' || true
fi

# --- 4. sending: run-once to an SMTP sink --------------------------------------------------
SEND=$WORK/send
seed "$SEND" "$SEND_ORDERS" "$SEND_DORMANT"
# shellcheck disable=SC1091
source "$SEND/seed.env"
SEND_NOW=$(plus_2h "$SEED_END")
SMTP_PORT=${SMTP_PORT:-$(free_port)}
say "smtp-sink on 127.0.0.1:$SMTP_PORT; run-once --now $SEND_NOW (sending for real)"
/usr/sbin/smtp-sink -c -u postfix "127.0.0.1:$SMTP_PORT" 1000 >"$WORK/sink.txt" 2>&1 &
SINK_PID=$!
for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $SMTP_PORT), 1).close()" 2>/dev/null && break
    kill -0 "$SINK_PID" 2>/dev/null || { cat "$WORK/sink.txt" >&2; die "smtp-sink exited at start"; }
    sleep 0.1
done
write_config "$SEND" "$(free_port)" "transport = \"smtp\"
smtp_url = \"smtp://127.0.0.1:$SMTP_PORT\"
max_per_minute = 1000000
from = \"Seed Festival <tickets@mail.co.za>\""
[[ ${PROFILE:-0} == 1 ]] && cp "$SEND/followup.sqlite" "$WORK/send-before.sqlite"
timed "$WORK/send.txt" "$WORK/send.time" "$SEND/bench.toml" run-once --now "$SEND_NOW" ||
    { tail -20 "$WORK/send.txt.err" >&2; die "run-once (sending) failed"; }
sleep 0.3
stop_pid "$SINK_PID"
SINK_PID=""
SINK_MESSAGES=$(tr '\r' '\n' <"$WORK/sink.txt" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
SEND_SUMMARY=$(tail -1 "$WORK/send.txt")
SENT=$(sed -n 's/.*sent \([0-9]*\),.*/\1/p' <<<"$SEND_SUMMARY")
SEND_MS=$(elapsed_ms "$WORK/send.time")
SEND_RSS_KB=$(max_rss_kb "$WORK/send.time")
SEND_CPU_MS=$(cpu_ms "$WORK/send.time")
EMAILS_PER_S=$(python3 -c "print(f'{${SENT:-0} / ($SEND_MS / 1000):.0f}')")
echo "  $SEND_SUMMARY"
PER_EMAIL=$(python3 -c "n = max(${SENT:-0}, 1); print(f'{$SEND_MS / n:.1f} ms wall, {$SEND_CPU_MS / n:.2f} ms CPU')")
echo "  $SENT sent in $SEND_MS ms ($SEND_CPU_MS ms CPU): $EMAILS_PER_S emails/s, $PER_EMAIL per email;" \
    "smtp-sink counted ${SINK_MESSAGES:-?} messages"
SEND_WARN=$(grep -ciE 'WARN|ERROR' "$WORK/send.txt.err" || true)
# PROFILE=1: the same send again, from the copy taken before it, under perf (not timed).
if [[ ${PROFILE:-0} == 1 && -n ${PROF_TARGET:-} ]]; then
    cp "$WORK/send-before.sqlite" "$SEND/followup.sqlite"
    rm -f "$SEND/followup.sqlite-wal" "$SEND/followup.sqlite-shm"
    /usr/sbin/smtp-sink -c -u postfix "127.0.0.1:$SMTP_PORT" 1000 >"$WORK/sink-profile.txt" 2>&1 &
    SINK_PID=$!
    sleep 0.3
    (cd "$ROOT" && perf record -q -e cpu-clock --call-graph dwarf,16384 -F 1000 -o "$WORK/perf-send.data" -- \
        "$PROF_TARGET/release/quicket-followup" --config "$SEND/bench.toml" run-once --now "$SEND_NOW") \
        >"$WORK/send-profile.txt" 2>"$WORK/perf-send.err" || true
    stop_pid "$SINK_PID"
    SINK_PID=""
    say "perf: the send's top entries (self; $(tail -1 "$WORK/send-profile.txt"))"
    perf report -q -i "$WORK/perf-send.data" --no-children --sort dso,sym -g none 2>/dev/null |
        head -15 | cut -c1-120 | sed 's/^/  /' || true
fi

# --- summary -------------------------------------------------------------------------------
verdict() { if [[ $1 == 1 ]]; then echo "met"; else echo "MISSED"; fi; }
echo
say "summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores)"
printf '  %-36s %s\n' \
    "code built" "$BUILT" \
    "big database" "$ORDERS orders, $DORMANT dormant buyer-events; $DB_SIZE on disk" \
    "seeding (through the webhook)" "$BIG_RATE hooks/s ($BIG_SECONDS s; seeded by: $BIG_SEEDED_BY)" \
    "dry-run pass at" "$NOW (load average before: $LOAD_BEFORE)"
for l in "${DRY_LINES[@]}"; do printf '  %-36s %s\n' "" "$l"; done
printf '  %-36s %s\n' \
    "dry-run wall (best / median / worst)" "$BEST_MS / $MEDIAN_MS / $WORST_MS ms" \
    "run-once with nothing due" "$EMPTY_MS ms (the fixed cost in the figures above)" \
    "dry-run max RSS (worst)" "$(python3 -c "print(f'{$MAX_RSS_KB / 1024:.1f}')") MB" \
    "send database" "$SEND_ORDERS orders, $SEND_DORMANT dormant ($SEED_RATE hooks/s seeding)" \
    "send pass" "$SEND_SUMMARY" \
    "send rate" "${SENT:-0} emails in $SEND_MS ms = $EMAILS_PER_S emails/s (smtp-sink: ${SINK_MESSAGES:-?})" \
    "per email" "$PER_EMAIL" \
    "send pass max RSS / CPU" "$(python3 -c "print(f'{$SEND_RSS_KB / 1024:.1f}')") MB / $SEND_CPU_MS ms" \
    "send pass WARN/ERROR log lines" "$SEND_WARN" \
    "dry-run system calls" "${SYSCALLS:-not counted}" \
    "load average at the end" "$(cut -d' ' -f1-3 /proc/loadavg)"
status=0
considered=$(sed -n 's/.*considered \([0-9]*\),.*/\1/p' <<<"$(tail -1 "$WORK/dry-1.txt")")
if [[ $considered != "$DORMANT" ]]; then
    echo "  CHECK FAILED: the dry run considered $considered buyer-events, not $DORMANT"
    status=1
fi
if [[ ${SENT:-0} != "$SEND_DORMANT" ]]; then
    echo "  CHECK FAILED: the send pass sent ${SENT:-0} emails, not $SEND_DORMANT"
    status=1
fi
echo "  target decide <= $TARGET_DECIDE_MS ms (median): $(verdict "$((MEDIAN_MS <= TARGET_DECIDE_MS ? 1 : 0))");" \
    "RSS < $TARGET_RSS_MB MB: $(verdict "$((MAX_RSS_KB < TARGET_RSS_MB * 1024 ? 1 : 0))");" \
    ">= $TARGET_EMAILS_PER_S emails/s: $(verdict "$((EMAILS_PER_S >= TARGET_EMAILS_PER_S ? 1 : 0))")"
exit "$status"
