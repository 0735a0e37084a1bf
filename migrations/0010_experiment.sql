-- Schema 10: honest numbers. The control group (which buyer-events were emailed and which held
-- out, decided when their first step fell due), the variant each email used, and clicks that
-- were link scanners rather than people.

-- One row per buyer-event whose first step fell due: its group, fixed from then on.
CREATE TABLE experiment (
    email_key   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    held_out    INTEGER NOT NULL CHECK (held_out IN (0, 1)),
    share       INTEGER NOT NULL,     -- [experiment] holdout in force then, in hundredths of a percent
    step        TEXT NOT NULL,        -- the first step, sent or (held out) not
    decided_at  TEXT NOT NULL,        -- when it was sent or would have been (pass time)
    PRIMARY KEY (email_key, event_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX experiment_by_time ON experiment (decided_at);

-- The template (the step's variant) a reminder was rendered from; NULL before schema 6.
ALTER TABLE reminders ADD COLUMN template TEXT;

-- Which link of the email was fetched ('event', or 'unsubscribe' for the page a GET shows), and
-- why the fetch looks like a link scanner (NULL: a person). Only people's event clicks count.
ALTER TABLE clicks ADD COLUMN link TEXT NOT NULL DEFAULT 'event';
ALTER TABLE clicks ADD COLUMN scanner TEXT;
CREATE INDEX clicks_by_email ON clicks (email_key, event_id, step, clicked_at);
