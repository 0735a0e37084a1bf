-- Schema 16: signed-in browsers of /admin. Only the SHA-256 of each session's random token is
-- kept (the token itself lives only in the browser's cookie); a session ends when it has been idle
-- too long, when it is too old, when its browser signs out, or when the password is set again.
CREATE TABLE admin_sessions (
    token_sha256 TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    last_seen    TEXT NOT NULL
) STRICT;
