-- Sign-in attempts replace the failures table: every attempt is written *before* its password is checked
-- (and deleted again when it succeeds), so guesses sent in parallel are all counted. Throttled per source
-- address, per username and source, and per username from sources it has never signed in from.
DROP TABLE login_failures;
CREATE TABLE login_attempts (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    -- '' when what was typed is not a valid username (nothing unbounded is stored).
    username TEXT    NOT NULL,
    -- The client's address (IPv6 by /64), or 'device:<id>' for a browser this user signed in from before.
    source   TEXT    NOT NULL,
    trusted  BOOLEAN NOT NULL DEFAULT FALSE,
    at       BIGINT  NOT NULL
);
CREATE INDEX login_attempts_source_at ON login_attempts (source, at);
CREATE INDEX login_attempts_username_at ON login_attempts (username, at);

-- Raised on a password change, a reset and a disable: sessions begun under an older epoch end.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;

-- One active root of trust, enforced by the database (two first setups at once could both make one).
UPDATE roots SET active = FALSE
 WHERE active AND id <> (SELECT id FROM roots WHERE active ORDER BY created_at DESC, id DESC LIMIT 1);
CREATE UNIQUE INDEX roots_one_active ON roots (active) WHERE active;

-- The preflight results the server produced, by the request they were for: starting a setup needs one.
CREATE TABLE preflights (
    request_hash TEXT   PRIMARY KEY,
    at           BIGINT NOT NULL,
    by_user      TEXT   NOT NULL,
    -- JSON: the failed findings, as "cluster: title — message"; [] when nothing failed.
    failures     TEXT   NOT NULL
);

-- Check runs, so a run (a POST) can be shown and linked to afterwards (a GET).
CREATE TABLE check_reports (
    id      TEXT   PRIMARY KEY,
    at      BIGINT NOT NULL,
    by_user TEXT   NOT NULL,
    report  TEXT   NOT NULL
);
CREATE INDEX check_reports_at ON check_reports (at);
