DROP TABLE webhooks;
DROP TABLE api_keys;
DROP TABLE groups;
DROP TABLE organizations;
