-- wrk script for bench/ingest.sh: POSTs a realistic Quicket `checkout_started` hook, each with a
-- reference never used before (run nonce + thread id + per-thread counter), so every request is a
-- new order and must be committed (no "duplicate" short cut). Counts the answers by status and
-- by the `status` field of a 200 body, and prints them when the run is over.
--
-- Usage: wrk -t2 -c32 -d20s --latency -s bench/ingest.lua http://HOST:PORT/webhooks/quicket/TOKEN
-- BENCH_RUN (environment, optional) is put into every reference; default: the start time.

local threads = {}
local next_id = 0
local run = os.getenv("BENCH_RUN") or tostring(os.time())

-- Runs in the main interpreter, once per thread, before the run.
function setup(thread)
   next_id = next_id + 1
   thread:set("id", next_id)
   thread:set("run", run)
   table.insert(threads, thread)
end

-- The rest runs in each thread's own interpreter. These are globals on purpose: done() reads
-- them with thread:get(), which only sees globals.
counter = 0
statuses = {}   -- HTTP status -> count
outcomes = {}   -- "status" field of a 200 answer -> count
local headers = { ["Content-Type"] = "application/json" }

local template = [[{
  "reference": "%s",
  "event_id": %d,
  "event_name": "Bench Festival %d",
  "amount": 300.00,
  "email": "buyer%d.t%d@example.com",
  "event_date": "2027-02-18 17:15",
  "action": "checkout_started",
  "tickets": [
    {"id": 122, "attendee_name": "", "attendee_email": "", "ticket_type": "General", "price": 150.00, "barcode": 0},
    {"id": 122, "attendee_name": "", "attendee_email": "", "ticket_type": "General", "price": 150.00, "barcode": 0}
  ]
}]]

function init(args)
   -- `id` and `run` were set by setup() before init() runs.
end

function request()
   counter = counter + 1
   local reference = string.format("BENCH-%s-T%d-%09d", run, id, counter)
   local event_id = 100 + (counter % 50)
   local body = string.format(template, reference, event_id, event_id, counter, id)
   return wrk.format("POST", nil, headers, body)
end

function response(status, resp_headers, body)
   local s = tostring(status)
   statuses[s] = (statuses[s] or 0) + 1
   if status == 200 then
      local outcome = body and body:match('"status"%s*:%s*"([^"]*)"') or "?"
      outcomes[outcome] = (outcomes[outcome] or 0) + 1
   end
end

-- Back in the main interpreter.
function done(summary, latency, requests)
   local by_status, by_outcome = {}, {}
   local sent = 0
   for _, thread in ipairs(threads) do
      sent = sent + (thread:get("counter") or 0)
      for k, v in pairs(thread:get("statuses") or {}) do
         by_status[k] = (by_status[k] or 0) + v
      end
      for k, v in pairs(thread:get("outcomes") or {}) do
         by_outcome[k] = (by_outcome[k] or 0) + v
      end
   end
   local ok, non200 = 0, 0
   local keys = {}
   for k in pairs(by_status) do table.insert(keys, k) end
   table.sort(keys)
   io.write("bench: answers by HTTP status:")
   for _, k in ipairs(keys) do
      io.write(string.format(" %s=%d", k, by_status[k]))
      if k == "200" then ok = ok + by_status[k] else non200 = non200 + by_status[k] end
   end
   io.write("\n")
   keys = {}
   for k in pairs(by_outcome) do table.insert(keys, k) end
   table.sort(keys)
   io.write("bench: 200 answers by outcome:")
   for _, k in ipairs(keys) do io.write(string.format(" %s=%d", k, by_outcome[k])) end
   io.write("\n")
   local e = summary.errors
   io.write(string.format("bench: requests built=%d answered=%d ok200=%d non200=%d\n",
      sent, summary.requests, ok, non200))
   io.write(string.format("bench: socket errors connect=%d read=%d write=%d timeout=%d status(>399)=%d\n",
      e.connect, e.read, e.write, e.timeout, e.status))
   io.write(string.format("bench: latency us p50=%d p90=%d p99=%d p99.9=%d max=%d\n",
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
   -- Machine-readable line for ingest.sh.
   io.write(string.format("BENCH_RESULT ok200=%d non200=%d recorded=%d built=%d p99_us=%d timeouts=%d\n",
      ok, non200, by_outcome["recorded"] or 0, sent, latency:percentile(99), e.timeout))
end
