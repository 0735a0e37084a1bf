-- Schema 9: bounces and complaints reported by the email provider (POST /webhooks/email-events/...).

-- Every request from a provider that came with the right token and signature, as received.
CREATE TABLE email_deliveries (
    id          INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    provider    TEXT NOT NULL CHECK (provider IN ('postmark', 'mailgun', 'sendgrid', 'ses')),
    body        BLOB,                 -- the raw body; NULL once `forget` or retention removed it
    outcome     TEXT NOT NULL CHECK (outcome IN ('recorded', 'ignored', 'rejected', 'confirmed', 'unconfirmed')),
    error       TEXT                  -- why it was rejected, or what went wrong confirming
) STRICT;

-- One row per bounce or complaint about one address, tied to the reminder it answers when known.
CREATE TABLE email_events (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES email_deliveries (id),
    received_at TEXT NOT NULL,
    provider    TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('hard_bounce', 'soft_bounce', 'complaint')),
    email_key   TEXT NOT NULL,
    message_id  TEXT,                 -- our Message-ID as the provider gave it back, without <>
    event_id    TEXT,                 -- the reminder it answers (by Message-ID, else the latest sent)
    step        TEXT,
    detail      TEXT,
    fingerprint TEXT NOT NULL         -- the same event reported twice is kept once
) STRICT;
CREATE UNIQUE INDEX email_events_once ON email_events (fingerprint);
CREATE INDEX email_events_by_buyer ON email_events (email_key, event_id);
CREATE INDEX email_events_by_time ON email_events (received_at, kind);

-- Bounces name the reminder by its Message-ID.
CREATE INDEX reminders_by_message_id ON reminders (message_id);
