-- Email invitations (R3): kept so that a failed one can be retried and none is lost.
CREATE TABLE invitations (
    id          INTEGER PRIMARY KEY,
    session     TEXT    NOT NULL,
    invitee     TEXT    NOT NULL,            -- customer | support_rep
    address     TEXT    NOT NULL,
    by_name     TEXT    NOT NULL,
    link        TEXT    NOT NULL,            -- where the invitee is sent
    join_page   TEXT    NOT NULL,
    state       TEXT    NOT NULL,            -- sending | sent | failed
    reason      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX invitations_by_session ON invitations (session, id);
