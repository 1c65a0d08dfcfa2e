-- Machines join their pool's cluster as Kubernetes Nodes: a pool carries its
-- node config ('' for its profile's) and an optional join target, a machine
-- where it is between bare metal and a joined Node. Portable as 0001: plain
-- ADD COLUMN with constant defaults, so existing rows are valid as they are.

ALTER TABLE pools ADD COLUMN node_config TEXT NOT NULL DEFAULT '';

-- The join target; join_cluster '' means none. The kubeconfig is base64
-- (BLOB and BYTEA differ between the engines), labels a JSON object and
-- taints a JSON array.
ALTER TABLE pools ADD COLUMN join_cluster TEXT NOT NULL DEFAULT '';
ALTER TABLE pools ADD COLUMN join_kubeconfig TEXT NOT NULL DEFAULT '';
ALTER TABLE pools ADD COLUMN join_node_labels TEXT NOT NULL DEFAULT '';
ALTER TABLE pools ADD COLUMN join_node_taints TEXT NOT NULL DEFAULT '';

ALTER TABLE machines ADD COLUMN provision TEXT NOT NULL DEFAULT 'clean';

-- The provisioning loop reads machines by provision state.
CREATE INDEX machines_provision ON machines (provision);
