#!/usr/bin/env bash
# What Quicket's API lookup (issue 9) adds to a reminder pass: the 1,000,000-order database kept by
# `KEEP=1 bench/pass.sh` is decided with `run-once --dry-run` without a key, then with a key and
# every event already cached (nothing sold out; every ticket type sold out, which needs no order
# read; the buyers' ticket type sold out but another on sale, the worst case: every due buyer's
# order is read to see what they chose), then with an empty cache (every event looked up first, from a
# local stand-in for the API). The cache rows this writes are removed again at the end.
#
#   KEEP=1 bench/pass.sh && bench/quicket_api.sh
#
# Environment: CARGO_TARGET_DIR (as for pass.sh), PASS_BENCH_DIR (default /tmp/quicket-pass-bench),
# RUNS (default 3).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
WORK=${PASS_BENCH_DIR:-${TMPDIR:-/tmp}/quicket-pass-bench}
BIG=$WORK/big
RUNS=${RUNS:-3}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $CARGO_TARGET_DIR in /*) ;; *) CARGO_TARGET_DIR=$ROOT/$CARGO_TARGET_DIR ;; esac
export CARGO_TARGET_DIR
BIN=$CARGO_TARGET_DIR/release/quicket-followup

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
say() { printf '== %s\n' "$*"; }
[[ -f $BIG/followup.sqlite && -f $BIG/seed.env && -f $BIG/bench.toml ]] ||
    die "no kept database in $BIG: run KEEP=1 bench/pass.sh first"
command -v python3 >/dev/null || die "python3 is needed"

say "building the release binary"
(cd "$ROOT" && cargo build --release --quiet)

API_PID=""
cleanup() {
    local rc=$?
    [[ -n $API_PID ]] && kill "$API_PID" 2>/dev/null || true
    uncache || true
    rm -f "$BIG/api.toml"
    exit "$rc"
}
trap cleanup EXIT

# shellcheck disable=SC1091
source "$BIG/seed.env"
NOW=$(date -u -d "$SEED_END + 2 hours" +%Y-%m-%dT%H:%M:%SZ)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

# The stand-in for api.quicket.co.za: every event, with its ticket type "General" (the seeded
# buyers' choice) sold out when the file $WORK/sold-out exists.
python3 - "$PORT" "$WORK/sold-out" >"$WORK/api.log" 2>&1 <<'PY' &
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, flag = int(sys.argv[1]), sys.argv[2]
class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        event = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        body = json.dumps({"results": [{
            "id": int(event) if event.isdigit() else 0, "name": f"Seed Festival {event}",
            "url": f"https://www.quicket.co.za/events/{event}-seed-festival/",
            "imageUrl": f"//images.quicket.co.za/{event}.jpg", "venue": {"name": "Seed Arena"},
            "schedules": [{}, {}],
            "tickets": [{"name": "General", "soldOut": os.path.exists(flag)}]}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", port), Api).serve_forever()
PY
API_PID=$!
for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null && break
    sleep 0.1
done

cp "$BIG/bench.toml" "$BIG/api.toml"
cat >>"$BIG/api.toml" <<EOF

[quicket]
api_key = "bench-key"
api_url = "http://127.0.0.1:$PORT"
timeout = "5s"
EOF

# cache MODE: every seeded event (1000..1499) cached as looked up at NOW; MODE open (nothing sold
# out), all (every ticket type sold out) or chosen ("General", the seeded buyers' type, sold out and
# "VIP" on sale).
cache() {
    python3 - "$BIG/followup.sqlite" "$NOW" "$1" <<'PY'
import json, sqlite3, sys
db_path, now, mode = sys.argv[1], sys.argv[2].replace("Z", ".000Z"), sys.argv[3]
types = {"open": [("General", False), ("VIP", False)], "all": [("General", True), ("VIP", True)],
         "chosen": [("General", True), ("VIP", False)]}[mode]
db = sqlite3.connect(db_path)
db.execute("DELETE FROM event_info")
for event in range(1000, 1500):
    info = {"name": f"Seed Festival {event}", "url": f"https://www.quicket.co.za/events/{event}-seed-festival/",
            "image_url": f"https://images.quicket.co.za/{event}.jpg", "venue": "Seed Arena", "schedules": 2,
            "ticket_types": [{"name": name, "sold_out": sold_out} for name, sold_out in types]}
    db.execute("INSERT INTO event_info (event_id, info, fetched_at, attempted_at, status) VALUES (?, ?, ?, ?, 'ok')",
               (str(event), json.dumps(info), now, now))
db.commit()
PY
}
uncache() { # (the table appears once the binary has migrated the kept database to schema 5)
    python3 - "$BIG/followup.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
if db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'event_info'").fetchone()[0]:
    db.execute("DELETE FROM event_info")
    db.commit()
PY
}

# measure LABEL CONFIG: RUNS dry-run passes; prints median wall ms, max RSS and the summary line.
measure() {
    local label=$1 conf=$2 times=() rss=0 t0 t1 r kb
    for r in $(seq "$RUNS"); do
        [[ $label == cold* ]] && uncache
        t0=$(date +%s%N)
        /usr/bin/time -f '%M' -o "$WORK/api.rss" "$BIN" --config "$conf" run-once --dry-run --now "$NOW" \
            >"$WORK/api-run.txt" 2>"$WORK/api-run.err" || { cat "$WORK/api-run.err" >&2; die "$label failed"; }
        t1=$(date +%s%N)
        times+=($(((t1 - t0) / 1000000)))
        kb=$(tail -1 "$WORK/api.rss")
        ((kb > rss)) && rss=$kb
    done
    local median
    median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    printf '  %-52s %6d ms median (%s), max RSS %5.1f MB; %s\n' "$label" "$median" \
        "$(IFS=/; echo "${times[*]}")" "$(python3 -c "print($rss / 1024)")" "$(tail -1 "$WORK/api-run.txt")"
}

say "run-once --dry-run --now $NOW over $BIG ($RUNS runs each)"
uncache
measure "no key (as pass.sh measures it)" "$BIG/bench.toml"
rm -f "$WORK/sold-out"
cache open
measure "key, every event cached, nothing sold out" "$BIG/api.toml"
cache all
measure "key, cached, every ticket type sold out" "$BIG/api.toml"
cache chosen
measure "key, cached, the buyers' type sold out (orders read)" "$BIG/api.toml"
measure "cold: key, empty cache (500 events looked up first)" "$BIG/api.toml"
