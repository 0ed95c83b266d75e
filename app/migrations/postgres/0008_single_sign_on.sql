-- Sign-in through the organisation's OpenID provider. `origin` is 'local' (a password) or 'sso' (the provider
-- vouches; no password, `password_hash` is ''); `subject` is the provider's issuer and subject of an sso user;
-- `groups` the provider's groups at the last sign-in (JSON), from which the role is derived again whenever the
-- mappings change.
ALTER TABLE users ADD COLUMN origin TEXT NOT NULL DEFAULT 'local' CHECK (origin IN ('local', 'sso'));
ALTER TABLE users ADD COLUMN subject TEXT;
ALTER TABLE users ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
CREATE UNIQUE INDEX users_by_subject ON users (subject);

-- A membership given by a provider group ('' = added by hand); such memberships follow the groups.
ALTER TABLE team_members ADD COLUMN via TEXT NOT NULL DEFAULT '';

-- Which provider group gives what: a console role ('role', target = the role) or a team membership
-- ('team', target = the team, team_role = its role in the team).
CREATE TABLE group_mappings (
    group_name TEXT   NOT NULL,
    kind       TEXT   NOT NULL CHECK (kind IN ('role', 'team')),
    target     TEXT   NOT NULL,
    team_role  TEXT   NOT NULL DEFAULT '',
    created_by TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_name, kind, target)
);
