-- The shared root of trust of the mesh. The key is sealed (encrypted) by the console; it never goes to a cluster.
CREATE TABLE roots (
    id          TEXT   PRIMARY KEY,
    cert_pem    TEXT   NOT NULL,
    key_sealed  BLOB  NOT NULL,
    fingerprint TEXT   NOT NULL,
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    active      BOOLEAN NOT NULL DEFAULT TRUE
);

-- Jobs: an applied plan. `spec` is the plan's input as JSON (no secrets); `secret` holds the sealed ones.
CREATE TABLE jobs (
    id          TEXT   PRIMARY KEY,
    kind        TEXT   NOT NULL,
    spec        TEXT   NOT NULL,
    secret      BLOB,
    state       TEXT   NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    started_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT,
    -- The replica running it, and until when its lease holds (renewed while it runs).
    lease_owner TEXT,
    lease_until BIGINT
);

-- One row per cluster and step (cross-cluster steps use the cluster they write to).
CREATE TABLE job_steps (
    job_id      TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    cluster     TEXT    NOT NULL,
    step        TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    changed     BOOLEAN,
    message     TEXT,
    started_at  BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (job_id, cluster, step)
);

CREATE TABLE job_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  TEXT   NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at      BIGINT NOT NULL,
    cluster TEXT,
    step    TEXT,
    level   TEXT   NOT NULL,
    message TEXT   NOT NULL
);
CREATE INDEX job_events_by_job ON job_events (job_id, id);

-- One job at a time per cluster: the primary key is the lock; replicas sharing a database agree on it.
CREATE TABLE cluster_locks (
    cluster     TEXT   PRIMARY KEY,
    job_id      TEXT   NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    acquired_at BIGINT NOT NULL
);
