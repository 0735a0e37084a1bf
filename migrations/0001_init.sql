-- Schema 1: the webhook receiver. Times are UTC, RFC 3339 with milliseconds ('2026-11-27T07:35:22.123Z'),
-- so that text order is time order. Never edit this file once it has landed: add 0002_... instead.

-- Small facts the service keeps about itself (the generated webhook token, later the signing secret).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Every request that came with the right token, as received: append-only.
CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    body        BLOB,                 -- the raw body; NULL only once retention has removed it
    outcome     TEXT NOT NULL CHECK (outcome IN ('recorded', 'duplicate', 'ignored', 'rejected', 'failed')),
    error       TEXT,                 -- why it was rejected or failed, or what could not be read
    reference   TEXT,
    action      TEXT
) STRICT;
CREATE INDEX deliveries_by_outcome ON deliveries (outcome, id);
CREATE INDEX deliveries_by_reference ON deliveries (reference);

-- One row per Quicket order (reference): its current state and the latest details Quicket sent.
CREATE TABLE orders (
    reference    TEXT PRIMARY KEY,
    state        TEXT NOT NULL CHECK (state IN ('checkout_started', 'checkout_cancelled', 'eft_pending', 'checkout_completed')),
    state_since  TEXT NOT NULL,       -- when the current state began
    changed_at   TEXT NOT NULL,       -- the latest hook that changed anything about the order
    first_seen   TEXT NOT NULL,
    event_id     TEXT,                -- Quicket's event id as text ('123'); NULL when the hook had none
    event_name   TEXT NOT NULL DEFAULT '',
    event_date   TEXT,                -- local wall-clock time 'YYYY-MM-DD HH:MM:SS', read in schedule.timezone
    amount_cents INTEGER,
    email        TEXT NOT NULL DEFAULT '',
    email_key    TEXT NOT NULL DEFAULT '',   -- trimmed, lower-cased: how a buyer is recognised
    buyer_name   TEXT NOT NULL DEFAULT '',
    tickets      TEXT NOT NULL DEFAULT '[]'  -- JSON list of {type, price, attendee_name, attendee_email}
) STRICT;
CREATE INDEX orders_by_buyer_event ON orders (email_key, event_id);
CREATE INDEX orders_by_event ON orders (event_id);
CREATE INDEX orders_by_state ON orders (state, changed_at);

-- Every hook that named an order, in arrival order: the order's timeline.
CREATE TABLE order_history (
    id          INTEGER PRIMARY KEY,
    reference   TEXT NOT NULL,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    received_at TEXT NOT NULL,
    action      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,        -- SHA-256 of the canonical body: equal bodies are one hook
    applied     INTEGER NOT NULL CHECK (applied IN (0, 1)),  -- 1 when it moved the order to a new state
    note        TEXT
) STRICT;
CREATE INDEX order_history_by_reference ON order_history (reference, id);
CREATE UNIQUE INDEX order_history_once ON order_history (reference, fingerprint);
