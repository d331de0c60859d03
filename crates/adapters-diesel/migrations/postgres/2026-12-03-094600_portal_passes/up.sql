-- The portal's single-use links and its sessions, one row each, kept by the
-- SHA-256 (hex) of their secret only: a dump of this table opens nothing.
-- kind: 'link' or 'session'. expires_at serves the deletion of ended rows.
CREATE TABLE portal_passes (
    hash TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    group_id BIGINT NOT NULL REFERENCES groups (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    api_key_id TEXT NOT NULL REFERENCES api_keys (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX portal_passes_expires_at ON portal_passes (expires_at);
