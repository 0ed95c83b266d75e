-- Users of the console. Roles: admin, operator, viewer.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT      NOT NULL UNIQUE,
    password_hash TEXT      NOT NULL,
    role          TEXT      NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    disabled      BOOLEAN   NOT NULL DEFAULT FALSE,
    created_at    BIGINT    NOT NULL,
    updated_at    BIGINT    NOT NULL
);

-- Registered clusters. `credentials` is the encrypted minimal kubeconfig (never stored in clear).
CREATE TABLE clusters (
    name                     TEXT    PRIMARY KEY,
    network                  TEXT    NOT NULL,
    labels                   TEXT    NOT NULL DEFAULT '{}',
    server                   TEXT    NOT NULL,
    credentials              BYTEA   NOT NULL,
    insecure_skip_tls_verify BOOLEAN NOT NULL DEFAULT FALSE,
    connectivity             TEXT,
    created_at               BIGINT  NOT NULL,
    updated_at               BIGINT  NOT NULL
);
