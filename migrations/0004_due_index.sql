-- Schema 4: a pass reads everything it needs about a due buyer-event from one covering index,
-- instead of joining each order (a random page of a large table) for its address and date.

ALTER TABLE buyer_events ADD COLUMN email TEXT NOT NULL DEFAULT '';   -- as Quicket sent it
ALTER TABLE buyer_events ADD COLUMN event_date TEXT;                  -- local 'YYYY-MM-DD HH:MM:SS'

UPDATE buyer_events SET
    email = coalesce((SELECT o.email FROM orders o WHERE o.reference = buyer_events.reference), ''),
    event_date = (SELECT o.event_date FROM orders o WHERE o.reference = buyer_events.reference);

DROP INDEX buyer_events_due;
CREATE INDEX buyer_events_due ON buyer_events
    (next_check_at, email_key, event_id, state, changed_at, reference, email, event_date)
    WHERE next_check_at IS NOT NULL;
