-- Gloo Operator charts uploaded by admins for air-gapped sites: the .tgz as uploaded, named by its SHA-256 (job
-- specs refer to it as `meshdeck-chart:<sha256>`), with what its Chart.yaml says. At most one is `in_use`: the
-- chart new setups install and upgrades offer; with none, the chart the console was started with.
CREATE TABLE operator_charts (
    sha256      TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    file_name   TEXT    NOT NULL,
    size        BIGINT  NOT NULL,
    data        BYTEA    NOT NULL,
    uploaded_by TEXT    NOT NULL,
    uploaded_at BIGINT  NOT NULL,
    in_use      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX operator_charts_one_in_use ON operator_charts (in_use) WHERE in_use;
