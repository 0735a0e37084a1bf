-- Schema 2: the reminder engine. The unit is a buyer and an event (email_key, event_id).

-- One row per buyer and event, kept up to date by every hook: what the reminder passes look at.
CREATE TABLE buyer_events (
    email_key     TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('checkout_started', 'checkout_cancelled', 'eft_pending', 'checkout_completed')),
    changed_at    TEXT NOT NULL,      -- the latest checkout change of any of the buyer's orders for the event
    reference     TEXT NOT NULL,      -- the order a reminder is about: the latest changed one (or the paid one)
    completed_at  TEXT,               -- when the first order for the event was paid
    next_check_at TEXT,               -- when a pass should look again; NULL: nothing more will happen
    last_decision TEXT,               -- the latest pass's decision: sent, deferred, skipped, failed, done
    last_reason   TEXT,
    last_pass_at  TEXT,
    PRIMARY KEY (email_key, event_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX buyer_events_due ON buyer_events (next_check_at) WHERE next_check_at IS NOT NULL;

-- Each step at most once per buyer and event, ever: the row is claimed before the email is sent.
CREATE TABLE reminders (
    email_key   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    step        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('claimed', 'sent', 'skipped', 'failed')),
    reason      TEXT,                 -- why skipped or failed
    reference   TEXT,                 -- the order the email was about
    email       TEXT,                 -- the address it went to
    message_id  TEXT NOT NULL,
    decided_at  TEXT NOT NULL,        -- when it was claimed or skipped (pass time)
    sent_at     TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    retry_at    TEXT,                 -- a claim waiting after a temporary failure
    last_error  TEXT,
    PRIMARY KEY (email_key, event_id, step)
) STRICT, WITHOUT ROWID;
CREATE INDEX reminders_by_status ON reminders (status, retry_at);
CREATE INDEX reminders_by_sent ON reminders (sent_at) WHERE sent_at IS NOT NULL;

-- Addresses never to email (unsubscribed, bounced, added by the operator).
CREATE TABLE suppressions (
    email_key TEXT PRIMARY KEY,
    added_at  TEXT NOT NULL,
    source    TEXT NOT NULL,          -- unsubscribe, bounce, cli, admin
    reason    TEXT
) STRICT;

-- One row per reminder pass: what /healthz and run-once report.
CREATE TABLE passes (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,        -- wall clock
    finished_at TEXT,
    pass_time   TEXT NOT NULL,        -- the "now" the pass decided for (run-once --now)
    considered  INTEGER NOT NULL DEFAULT 0,
    sent        INTEGER NOT NULL DEFAULT 0,
    deferred    INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    error       TEXT
) STRICT;

-- Buyer-events for the orders already stored.
INSERT INTO buyer_events (email_key, event_id, state, changed_at, reference, completed_at, next_check_at)
SELECT o.email_key, o.event_id,
       CASE WHEN c.reference IS NOT NULL THEN 'checkout_completed' ELSE o.state END,
       o.changed_at,
       COALESCE(c.reference, o.reference),
       c.state_since,
       CASE WHEN c.reference IS NULL THEN o.changed_at END
FROM orders o
LEFT JOIN orders c ON c.email_key = o.email_key AND c.event_id = o.event_id AND c.state = 'checkout_completed'
WHERE o.email_key <> '' AND o.event_id IS NOT NULL
  AND o.changed_at = (SELECT max(changed_at) FROM orders x WHERE x.email_key = o.email_key AND x.event_id = o.event_id)
GROUP BY o.email_key, o.event_id;
