-- Live sessions survive a restart: each live session's state as of its last change,
-- written before the change's effects go out (signaling/src/live/journal.rs). A row goes
-- when its session ends; rows found at start are the sessions to rebuild.
CREATE TABLE live_sessions (
    number   TEXT PRIMARY KEY,
    state    TEXT NOT NULL,
    saved_at INTEGER NOT NULL
);
