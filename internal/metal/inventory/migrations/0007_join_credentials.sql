-- A join target carries only what a machine needs to join (the API server,
-- its CA bundle and a short-lived bootstrap token), never a kubeconfig: the
-- kubeconfigs 0002 stored are blanked (the column stays, as 0001's portable
-- subset has no DROP COLUMN on every engine we support) and the pool
-- controller hands each pool a bootstrap token again. On SQLite, VACUUM
-- removes the old values from free pages; see docs/broker.md.

UPDATE pools SET join_kubeconfig = '';

ALTER TABLE pools ADD COLUMN join_api_server TEXT NOT NULL DEFAULT '';
-- PEM text; the token is <token-id>.<token-secret>.
ALTER TABLE pools ADD COLUMN join_ca_bundle TEXT NOT NULL DEFAULT '';
ALTER TABLE pools ADD COLUMN join_bootstrap_token TEXT NOT NULL DEFAULT '';
