-- wrk script for bench/pass.sh: seeds exactly SEED_TOTAL orders through the real webhook endpoint,
-- one hook per order, each with a reference never used before. SEED_DORMANT of them (spread
-- evenly) are `checkout_started` orders of a buyer seen nowhere else (a deliverable address,
-- buyerNNNNNNN@mail.co.za) for an event in 2030: each makes one dormant buyer-event. All the others
-- are `checkout_completed` orders (fanNNNNNN@mail.co.za, the same address across many events):
-- stored, but never a reminder candidate.
--
-- Every order has a global index i in [0, SEED_TOTAL); thread t (1-based) of SEED_THREADS sends
-- i = t-1, t-1+SEED_THREADS, ... so the threads share the work with no gap and no overlap. Once a
-- thread has built all its hooks it asks for GET /healthz instead (never a write), and when all its
-- hooks have been answered it writes SEED_DONE_DIR/done-<t> and stops. pass.sh waits for every
-- done file, then stops wrk with SIGINT (wrk runs for as long as -d says otherwise).
--
-- Environment: SEED_TOTAL, SEED_DORMANT, SEED_THREADS (= wrk -t), SEED_RUN (put into every
-- reference), SEED_DONE_DIR.

local total = tonumber(os.getenv("SEED_TOTAL") or "0")
local dormant = tonumber(os.getenv("SEED_DORMANT") or "0")
local nthreads = tonumber(os.getenv("SEED_THREADS") or "2")
local run = os.getenv("SEED_RUN") or tostring(os.time())
local done_dir = os.getenv("SEED_DONE_DIR") or "."

local threads = {}
local next_id = 0

function setup(thread)
   next_id = next_id + 1
   thread:set("id", next_id)
   table.insert(threads, thread)
end

-- Per thread (globals, so that done() can read them with thread:get()).
built = 0      -- hooks built (sent)
answered = 0   -- hooks answered
quota = 0      -- hooks this thread must send
statuses = {}  -- HTTP status of hook answers -> count
outcomes = {}  -- "status" field of 200 hook answers -> count
dormant_sent = 0
finished = false
-- wrk calls request() once on the first thread before the run only to check the request's shape
-- (script_verify_request): that call must not use up an index.
verified = true

local post_headers = { ["Content-Type"] = "application/json" }

local started = [[{
  "reference": "%s",
  "event_id": %d,
  "event_name": "Seed Festival %d",
  "amount": 300.00,
  "email": "buyer%07d@mail.co.za",
  "event_date": "2030-06-%02d 19:00",
  "action": "checkout_started",
  "tickets": [
    {"id": 122, "attendee_name": "Buyer %d", "attendee_email": "", "ticket_type": "General", "price": 150.00, "barcode": 0},
    {"id": 122, "attendee_name": "", "attendee_email": "", "ticket_type": "General", "price": 150.00, "barcode": 0}
  ]
}]]

local completed = [[{
  "reference": "%s",
  "event_id": %d,
  "event_name": "Seed Festival %d",
  "amount": 150.00,
  "email": "fan%06d@mail.co.za",
  "event_date": "2030-06-%02d 19:00",
  "action": "checkout_completed",
  "tickets": [
    {"id": 122, "attendee_name": "Fan %d", "attendee_email": "", "ticket_type": "General", "price": 150.00, "barcode": 12345}
  ]
}]]

function init(args)
   if id == 1 then verified = false end
   if id <= total % nthreads or total % nthreads == 0 then
      quota = math.ceil(total / nthreads)
   else
      quota = math.floor(total / nthreads)
   end
end

-- Whether order i is a dormant checkout: exactly `dormant` of the `total`, spread evenly.
local function is_dormant(i)
   return math.floor((i + 1) * dormant / total) > math.floor(i * dormant / total)
end

local function hook(i)
   local reference = string.format("PASS-%s-%07d", run, i)
   local event_id = 1000 + (i % 500)
   local day = 1 + (i % 28)
   if is_dormant(i) then
      return string.format(started, reference, event_id, event_id, i, day, i), true
   end
   return string.format(completed, reference, event_id, event_id, i % 150001, day, i), false
end

function request()
   if not verified then
      verified = true
      return wrk.format("POST", nil, post_headers, (hook(0)))
   end
   if built >= quota then
      return wrk.format("GET", "/healthz")
   end
   local i = built * nthreads + (id - 1)
   built = built + 1
   local body, is_started = hook(i)
   if is_started then dormant_sent = dormant_sent + 1 end
   return wrk.format("POST", nil, post_headers, body)
end

function response(status, resp_headers, body)
   -- A hook's answer is {"status":"recorded"|"duplicate"|"ignored"} or an error; /healthz's has
   -- "version" in it.
   if body and body:find('"version"', 1, true) then return end
   answered = answered + 1
   local s = tostring(status)
   statuses[s] = (statuses[s] or 0) + 1
   if status == 200 then
      local outcome = body and body:match('"status"%s*:%s*"([^"]*)"') or "?"
      outcomes[outcome] = (outcomes[outcome] or 0) + 1
   end
   if answered % 100000 == 0 then
      io.write(string.format("seed: thread %d: %d of %d hooks answered\n", id, answered, quota))
      io.flush()
   end
   if answered >= quota and not finished then
      finished = true
      local f = io.open(string.format("%s/done-%d", done_dir, id), "w")
      if f then f:write(tostring(answered), "\n"); f:close() end
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local by_status, by_outcome = {}, {}
   local sent, got, started_sent = 0, 0, 0
   for _, thread in ipairs(threads) do
      sent = sent + (thread:get("built") or 0)
      got = got + (thread:get("answered") or 0)
      started_sent = started_sent + (thread:get("dormant_sent") or 0)
      for k, v in pairs(thread:get("statuses") or {}) do by_status[k] = (by_status[k] or 0) + v end
      for k, v in pairs(thread:get("outcomes") or {}) do by_outcome[k] = (by_outcome[k] or 0) + v end
   end
   local ok, non200 = 0, 0
   for k, v in pairs(by_status) do
      if k == "200" then ok = ok + v else non200 = non200 + v end
   end
   local e = summary.errors
   io.write(string.format(
      "SEED_RESULT built=%d answered=%d ok200=%d non200=%d recorded=%d duplicate=%d started=%d" ..
      " socket_errors=%d p99_us=%d\n",
      sent, got, ok, non200, by_outcome["recorded"] or 0, by_outcome["duplicate"] or 0,
      started_sent, e.connect + e.read + e.write + e.timeout, latency:percentile(99)))
end
