-- Schema 8: /admin/problems lists every delivery with something to say (refused, ignored, failed,
-- or recorded with a field that could not be read or was cut to its cap), newest first, and
-- /healthz counts the hooks whose event date could not be read: both from this index.
CREATE INDEX deliveries_with_problems ON deliveries (id) WHERE error IS NOT NULL;
