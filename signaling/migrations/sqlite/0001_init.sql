-- Accounts of reps and admins.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    is_webacd     INTEGER NOT NULL DEFAULT 0,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- Login cookies: only a hash of the token is kept.
CREATE TABLE logins (
    token_hash  TEXT    PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- WebACD queues and the agents who take their sessions (R10).
CREATE TABLE queues (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    created_at INTEGER NOT NULL
);

CREATE TABLE queue_members (
    queue_id   INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    PRIMARY KEY (queue_id, account_id)
);

-- Every session that ran, for history; live state stays in memory.
CREATE TABLE sessions (
    number      TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    started_by  INTEGER NOT NULL REFERENCES accounts(id),
    ended_at    INTEGER,
    end_reason  TEXT,
    PRIMARY KEY (number, started_at)
);

-- The audit log (C3): append-only, enforced by the database itself.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    actor   TEXT,
    action  TEXT    NOT NULL,
    record  TEXT    NOT NULL
);
CREATE INDEX audit_by_session ON audit (session, id);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
