-- Timing experiments: the arm (one of a step's delays) each buyer-event was given, when it was
-- still waiting at the earliest arm's time. Fixed from then on; a step's new list of delays is a
-- new experiment, so the list is part of the key.
CREATE TABLE timing_arms (
    email_key    TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    step         TEXT NOT NULL,
    arms         TEXT NOT NULL,      -- the step's delays then, e.g. '1h, 1d'
    arm          INTEGER NOT NULL,   -- 0-based index into them
    assigned_at  TEXT NOT NULL,
    PRIMARY KEY (email_key, event_id, step, arms)
) STRICT, WITHOUT ROWID;
CREATE INDEX timing_arms_by_step ON timing_arms (step, arms);
