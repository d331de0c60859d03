-- Organizations own groups and API keys; groups own webhook endpoints.
-- Every instant is BIGINT Unix milliseconds, so this file reads the same on
-- PostgreSQL and SQLite (keep the two copies in step).

CREATE TABLE organizations (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The group id is the public API's numeric `groupID`, chosen by the service
-- or an operator, so it is a plain BIGINT key, not a sequence.
CREATE TABLE groups (
    id BIGINT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX groups_organization_id ON groups (organization_id);

-- Only the SHA-256 of a key is stored; the UNIQUE index serves the lookup of
-- every authenticated request.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT NULL
);

-- enabled_events: comma-separated event names, e.g. "user.created,user.session.result".
-- rate_limit is BIGINT because the domain allows any positive 32-bit unsigned value.
-- secret holds the sealed (encrypted) signing secret; previous_secret* keep the
-- old secret signing during a rotation.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    group_id BIGINT NOT NULL REFERENCES groups (id),
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    enabled_events TEXT NOT NULL,
    rate_limit BIGINT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT NULL,
    previous_secret_expires_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Serves `list_by_group` (oldest first) and every lookup by group.
CREATE INDEX webhooks_group_id_created_at_id ON webhooks (group_id, created_at, id);
