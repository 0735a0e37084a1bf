-- Schema 15: every address taken off the suppression list, with why. Emailing someone again who
-- unsubscribed needs a reason that can be shown later; `forget` removes an address's rows.
CREATE TABLE suppression_removals (
    id          INTEGER PRIMARY KEY,
    email_key   TEXT NOT NULL,
    removed_at  TEXT NOT NULL,                         -- when (UTC, RFC 3339)
    removed_by  TEXT NOT NULL CHECK (removed_by IN ('admin', 'cli', 'buyer')),
    client      TEXT NOT NULL,                         -- the browser's address; '' otherwise
    source      TEXT NOT NULL,                         -- how it had come onto the list
    added_at    TEXT NOT NULL,                         -- since when it had been on it
    reason      TEXT NOT NULL
) STRICT;
CREATE INDEX suppression_removals_by_time ON suppression_removals (removed_at);
CREATE INDEX suppression_removals_by_key ON suppression_removals (email_key);
