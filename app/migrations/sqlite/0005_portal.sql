-- The team self-service portal: teams, who is in them, what they may touch, what they asked for, what the
-- portal applied, and the append-only audit of all of it.
CREATE TABLE teams (
    name           TEXT    PRIMARY KEY,
    description    TEXT    NOT NULL DEFAULT '',
    contact        TEXT    NOT NULL DEFAULT '',
    max_namespaces BIGINT  NOT NULL,
    max_services   BIGINT  NOT NULL,
    -- JSON: per kind of request (enrol, leave, share, unshare), "auto" or "approval".
    rules          TEXT    NOT NULL,
    created_by     TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

CREATE TABLE team_members (
    team     TEXT   NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    username TEXT   NOT NULL,
    role     TEXT   NOT NULL CHECK (role IN ('admin', 'member')),
    added_at BIGINT NOT NULL,
    PRIMARY KEY (team, username)
);
CREATE INDEX team_members_by_user ON team_members (username);

-- Which namespaces (a name, or a prefix ending in '*') a team may touch in which cluster.
CREATE TABLE team_grants (
    team    TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    cluster TEXT NOT NULL,
    pattern TEXT NOT NULL,
    PRIMARY KEY (team, cluster, pattern)
);

CREATE TABLE portal_requests (
    id           TEXT   PRIMARY KEY,
    team         TEXT   NOT NULL,
    kind         TEXT   NOT NULL CHECK (kind IN ('enrol', 'leave', 'share', 'unshare', 'reapply')),
    -- JSON: the request as asked (namespace, service, clusters, options).
    action       TEXT   NOT NULL,
    state        TEXT   NOT NULL CHECK (state IN ('pending', 'started', 'rejected', 'withdrawn')),
    -- Why it waits for an operator (the rule or the limit), when it does.
    waits_for    TEXT,
    requested_by TEXT   NOT NULL,
    source       TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    decided_by   TEXT,
    decided_at   BIGINT,
    comment      TEXT,
    job_id       TEXT
);
CREATE INDEX portal_requests_by_team ON portal_requests (team, created_at);
CREATE INDEX portal_requests_by_state ON portal_requests (state, created_at);

-- What the portal keeps applied on each namespace ('' service) or Service: the whole set of labels and
-- annotations it owns there (server-side apply of this set releases what left it).
CREATE TABLE portal_objects (
    cluster     TEXT   NOT NULL,
    namespace   TEXT   NOT NULL,
    service     TEXT   NOT NULL DEFAULT '',
    team        TEXT   NOT NULL,
    labels      TEXT   NOT NULL,
    annotations TEXT   NOT NULL,
    job_id      TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (cluster, namespace, service)
);
CREATE INDEX portal_objects_by_team ON portal_objects (team);

-- Append-only: who did what, when, from where. Nothing updates or deletes a record.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    source  TEXT   NOT NULL DEFAULT '',
    team    TEXT   NOT NULL DEFAULT '',
    cluster TEXT   NOT NULL DEFAULT '',
    kind    TEXT   NOT NULL,
    subject TEXT   NOT NULL DEFAULT '',
    detail  TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_team ON audit (team, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;
