-- Schema 3: clicks on the tracked event link, and where suppressions came from.

-- One row per click on a reminder's event link (GET /r/{token}).
CREATE TABLE clicks (
    id         INTEGER PRIMARY KEY,
    email_key  TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    step       TEXT NOT NULL,
    clicked_at TEXT NOT NULL
) STRICT;
CREATE INDEX clicks_by_buyer_event ON clicks (email_key, event_id);
CREATE INDEX clicks_by_time ON clicks (clicked_at);

-- Which event and step an unsubscribe came from (NULL for the CLI, bounces and the operator).
ALTER TABLE suppressions ADD COLUMN event_id TEXT;
ALTER TABLE suppressions ADD COLUMN step TEXT;

-- Retention replaces a buyer's address by a pseudonym once their event is long past; remember when.
ALTER TABLE buyer_events ADD COLUMN anonymised_at TEXT;
