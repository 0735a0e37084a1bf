-- Schema 13: a step is sent at most once, whatever is killed when. A claim is marked durably just
-- before its SMTP transaction begins (send_started_at) and unmarked when the transaction ends. A
-- claim found still marked after a crash may or may not have reached the mail server: it becomes
-- 'interrupted' and is never sent again; a claim never marked provably never started, and is sent.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt with the new status.
CREATE TABLE reminders_new (
    email_key       TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    step            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('claimed', 'sent', 'skipped', 'failed', 'interrupted')),
    reason          TEXT,             -- why skipped, failed or interrupted
    reference       TEXT,             -- the order the email was about
    email           TEXT,             -- the address it went to
    message_id      TEXT NOT NULL,
    decided_at      TEXT NOT NULL,    -- when it was claimed or skipped (pass time)
    sent_at         TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    retry_at        TEXT,             -- a claim waiting after a temporary failure
    last_error      TEXT,
    sent_local      TEXT,             -- schema 7: the local time it left
    send_rule       TEXT,             -- schema 7: the send-window rule that allowed it
    template        TEXT,             -- schema 10: the variant chosen when it was claimed
    send_started_at TEXT,             -- set before an SMTP transaction begins, cleared when it ends
    PRIMARY KEY (email_key, event_id, step)
) STRICT, WITHOUT ROWID;

INSERT INTO reminders_new (email_key, event_id, step, status, reason, reference, email, message_id,
                           decided_at, sent_at, attempts, retry_at, last_error, sent_local,
                           send_rule, template)
SELECT email_key, event_id, step, status, reason, reference, email, message_id,
       decided_at, sent_at, attempts, retry_at, last_error, sent_local, send_rule, template
FROM reminders;

DROP TABLE reminders;
ALTER TABLE reminders_new RENAME TO reminders;
CREATE INDEX reminders_by_status ON reminders (status, retry_at);
CREATE INDEX reminders_by_sent ON reminders (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX reminders_by_message_id ON reminders (message_id);

-- How many sends a crash had interrupted, found by each pass.
ALTER TABLE passes ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;
