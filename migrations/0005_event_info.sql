-- Schema 5: what Quicket's public API says about each event (its page, image, venue, start and
-- sold-out ticket types), cached so that a pass never waits on the API for an event it knows.

CREATE TABLE event_info (
    event_id     TEXT PRIMARY KEY,
    info         TEXT,                -- JSON of what the latest successful lookup said; NULL: none yet
    fetched_at   TEXT,                -- when `info` was looked up
    attempted_at TEXT NOT NULL,       -- the latest lookup, successful or not
    status       TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'not_found')),  -- of the latest lookup
    error        TEXT,                -- why the latest lookup failed
    retry_at     TEXT                 -- no lookup before this (a 429's Retry-After, or a pause after a failure)
) STRICT;
