-- headers: the webhook's custom headers, sent with every delivery; NULL for
-- none. A JSON array of [name, sealed value] pairs: names in the clear (the
-- API shows them back, values masked), each value sealed like the signing
-- secret (x1: and base64), so a database dump alone reveals none. (Keep the
-- PostgreSQL and SQLite copies in step.)
ALTER TABLE webhooks ADD COLUMN headers TEXT NULL;
