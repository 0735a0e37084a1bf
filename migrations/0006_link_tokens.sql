-- Schema 6: opaque link tokens. A link in an email carries a random identifier (128 bits) that
-- names nothing by itself; this table says which buyer-event, step and route it is for, and until
-- when it works. forget and retention delete a buyer's rows, which makes their links do nothing.

CREATE TABLE link_tokens (
    token      TEXT PRIMARY KEY,      -- base64url of 16 random bytes
    purpose    TEXT NOT NULL CHECK (purpose IN ('event', 'unsubscribe')),  -- the one route it works on
    email_key  TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    step       TEXT NOT NULL,
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;
-- One token per buyer-event, step and purpose: a retried send carries the same links.
CREATE UNIQUE INDEX link_tokens_once ON link_tokens (email_key, event_id, step, purpose);
CREATE INDEX link_tokens_by_expiry ON link_tokens (expires_at);
