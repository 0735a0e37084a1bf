-- Schema 14: alerts to the organiser. One row per spell of a condition: told once when it begins,
-- reminded daily while it lasts, told again when it ends. The unique index on the open spell is
-- what keeps two processes (serve and a run-once), or a restart, from telling the same thing twice.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    condition   TEXT NOT NULL,        -- which check: paused, passes, transport, no_hooks, reload, dns, disk
    started_at  TEXT NOT NULL,
    told_at     TEXT NOT NULL,        -- when the organiser was last told (raised, or reminded)
    resolved_at TEXT,                 -- NULL while it lasts
    summary     TEXT NOT NULL,        -- the latest sentence told
    reminders   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX alerts_open ON alerts (condition) WHERE resolved_at IS NULL;
CREATE INDEX alerts_by_start ON alerts (started_at);
