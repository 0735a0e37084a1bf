-- Schema 12: a bounce or complaint counts only when it names a message that was sent. Anyone who
-- holds the webhook URL can post one; only the Message-ID of a reminder sent to that address ties
-- it to something we did. Any other event is kept and listed, and changes nothing.
ALTER TABLE email_events ADD COLUMN matched INTEGER NOT NULL DEFAULT 0;

-- Events stored before: matched when their Message-ID is a reminder sent to their address.
-- Earlier versions also tied an event without one to the latest reminder sent to the address,
-- which proves nothing: those are untied.
UPDATE email_events SET matched = 1
WHERE message_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM reminders r
              WHERE r.message_id = '<' || email_events.message_id || '>'
                AND r.email_key = email_events.email_key);
UPDATE email_events SET event_id = NULL, step = NULL WHERE matched = 0;
