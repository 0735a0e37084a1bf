-- Schema 7: the proof of when each reminder was sent, and under which rule (issue 19): the local
-- time it left and the send-window rule that allowed it, kept as they were at that moment.
ALTER TABLE reminders ADD COLUMN sent_local TEXT;
ALTER TABLE reminders ADD COLUMN send_rule TEXT;
