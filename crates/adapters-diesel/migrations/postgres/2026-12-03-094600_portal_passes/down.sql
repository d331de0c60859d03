DROP INDEX portal_passes_expires_at;
DROP TABLE portal_passes;
