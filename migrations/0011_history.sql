-- Schema 11: the workshop's history. Every change to an editable file (an email template's part,
-- the schedule file), saved from the browser or noticed on disk, with the content before and
-- after. It holds no buyer data: `forget` and retention leave it alone, `backup` copies it.

-- One save (or one reload that found files changed by hand): who, when, and what in one line.
CREATE TABLE history (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,                                -- when (UTC, RFC 3339)
    via      TEXT NOT NULL CHECK (via IN ('browser', 'file')),
    client   TEXT NOT NULL,                                -- the browser's address; '' on disk
    summary  TEXT NOT NULL
) STRICT;
CREATE INDEX history_by_time ON history (at);

-- The files one change touched, each with its content before and after (NULL: no such file).
CREATE TABLE history_files (
    change    INTEGER NOT NULL REFERENCES history (id),
    file      TEXT NOT NULL,                               -- e.g. 'templates/abandoned/subject.txt'
    previous  TEXT,
    content   TEXT,
    PRIMARY KEY (change, file)
) STRICT, WITHOUT ROWID;
CREATE INDEX history_files_by_file ON history_files (file, change);

-- The content last known of each editable file: a reload compares the files on disk with it to
-- notice changes made by hand (NULL: known to be absent).
CREATE TABLE history_seen (
    file     TEXT PRIMARY KEY,
    content  TEXT,
    seen_at  TEXT NOT NULL
) STRICT, WITHOUT ROWID;
