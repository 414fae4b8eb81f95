-- Session recordings: one row per recorded share, the file in the data directory's
-- `recordings` folder.
CREATE TABLE recordings (
    id              INTEGER PRIMARY KEY,
    session         TEXT    NOT NULL,
    title           TEXT    NOT NULL,            -- what was recorded, e.g. "Ann's computer: desktop"
    file            TEXT    NOT NULL,            -- a file name in the recordings folder
    started_by      INTEGER NOT NULL,            -- the account of the rep who started it
    started_by_name TEXT    NOT NULL,
    started_at      INTEGER NOT NULL,
    ended_at        INTEGER,
    duration_ms     INTEGER NOT NULL DEFAULT 0,
    bytes           INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL             -- recording | done | interrupted | failed
);
CREATE INDEX recordings_by_start ON recordings (started_at);
