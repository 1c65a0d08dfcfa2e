-- The fleet aggregator's store: a copy of every cluster's and the broker's
-- objects that the console shows, trimmed to what it shows. It is derived
-- data: when schemaVersion (store.go) changes, the tables are dropped and
-- made again, and the aggregator lists everything anew. Valid on SQLite
-- and PostgreSQL. Times are unix milliseconds; booleans are 0 or 1.
-- The hub is the cluster named "hub" (HubCluster); the broker's objects
-- have their own tables.

-- One row per watched stream: a cluster's kind, or the broker's.
CREATE TABLE IF NOT EXISTS sources (
	cluster          TEXT NOT NULL,
	kind             TEXT NOT NULL,
	-- resource_version the watch resumes from after a restart ('' for the broker).
	resource_version TEXT NOT NULL DEFAULT '',
	-- synced: listed in full at least once since the source was added.
	synced           INTEGER NOT NULL DEFAULT 0,
	-- last_seen: the last list, event or bookmark received: how fresh the view is.
	last_seen        BIGINT NOT NULL DEFAULT 0,
	-- last_error is the stream's last failure, '' once it works again; error_since when it began.
	last_error       TEXT NOT NULL DEFAULT '',
	error_since      BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (cluster, kind)
);

-- revisions: kind '' is the store's revision, bumped by every write; each
-- other kind's is the revision of its last change. The console polls them
-- to push changes to browsers.
CREATE TABLE IF NOT EXISTS revisions (
	kind TEXT PRIMARY KEY,
	rev  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS nodes (
	cluster          TEXT NOT NULL,
	name             TEXT NOT NULL,
	-- From the Node's fleet.strata.dev labels; '' or 0 when missing.
	machine          TEXT NOT NULL DEFAULT '',
	datacenter       TEXT NOT NULL DEFAULT '',
	maintenance_zone INTEGER NOT NULL DEFAULT 0,
	rack             TEXT NOT NULL DEFAULT '',
	pool             TEXT NOT NULL DEFAULT '',
	profile          TEXT NOT NULL DEFAULT '',
	-- ready: the Ready condition's status: True, False or Unknown ('' when none).
	ready            TEXT NOT NULL DEFAULT '',
	unschedulable    INTEGER NOT NULL DEFAULT 0,
	-- problems: the conditions that are not as they should be, in words.
	problems         TEXT NOT NULL DEFAULT '',
	kubelet_version  TEXT NOT NULL DEFAULT '',
	cpu_milli        BIGINT NOT NULL DEFAULT 0,
	memory_bytes     BIGINT NOT NULL DEFAULT 0,
	created          BIGINT NOT NULL DEFAULT 0,
	rev              BIGINT NOT NULL,
	PRIMARY KEY (cluster, name)
);
CREATE INDEX IF NOT EXISTS nodes_machine ON nodes (machine);
CREATE INDEX IF NOT EXISTS nodes_name ON nodes (name);
CREATE INDEX IF NOT EXISTS nodes_pool ON nodes (cluster, pool);

CREATE TABLE IF NOT EXISTS pods (
	cluster   TEXT NOT NULL,
	namespace TEXT NOT NULL,
	name      TEXT NOT NULL,
	-- app: the pod's StatelessApp or StatefulApp (its stateless-app or
	-- stateful-app label), else its apps.strata.dev/app label; version its
	-- app-version label.
	app       TEXT NOT NULL DEFAULT '',
	version   TEXT NOT NULL DEFAULT '',
	node      TEXT NOT NULL DEFAULT '',
	phase     TEXT NOT NULL DEFAULT '',
	ready     INTEGER NOT NULL DEFAULT 0,
	-- reason and message say why a pod is not ready: a container's waiting
	-- or terminated reason (CrashLoopBackOff), Unschedulable, Evicted ...
	reason    TEXT NOT NULL DEFAULT '',
	message   TEXT NOT NULL DEFAULT '',
	restarts  INTEGER NOT NULL DEFAULT 0,
	created   BIGINT NOT NULL DEFAULT 0,
	rev       BIGINT NOT NULL,
	PRIMARY KEY (cluster, namespace, name)
);
CREATE INDEX IF NOT EXISTS pods_app ON pods (namespace, app);
CREATE INDEX IF NOT EXISTS pods_node ON pods (cluster, node);
CREATE INDEX IF NOT EXISTS pods_name ON pods (name);

-- objects: Strata's own kinds, few per cluster (StatelessApp, StatefulApp,
-- and on the hub Cluster, Pool, MaintenanceRollout, AppNamespace,
-- StatelessApp), as JSON without managedFields.
CREATE TABLE IF NOT EXISTS objects (
	cluster   TEXT NOT NULL,
	kind      TEXT NOT NULL,
	namespace TEXT NOT NULL DEFAULT '',
	name      TEXT NOT NULL,
	data      TEXT NOT NULL,
	rev       BIGINT NOT NULL,
	PRIMARY KEY (cluster, kind, namespace, name)
);
CREATE INDEX IF NOT EXISTS objects_name ON objects (name);

-- events: the Kubernetes Events of Strata's objects (involvedObject of
-- apps.strata.dev or fleet.strata.dev) and of Nodes.
CREATE TABLE IF NOT EXISTS events (
	cluster     TEXT NOT NULL,
	namespace   TEXT NOT NULL DEFAULT '',
	name        TEXT NOT NULL,
	object_kind TEXT NOT NULL,
	object_name TEXT NOT NULL,
	type        TEXT NOT NULL DEFAULT '',
	reason      TEXT NOT NULL DEFAULT '',
	message     TEXT NOT NULL DEFAULT '',
	count       INTEGER NOT NULL DEFAULT 1,
	last_seen   BIGINT NOT NULL DEFAULT 0,
	rev         BIGINT NOT NULL,
	PRIMARY KEY (cluster, namespace, name)
);
CREATE INDEX IF NOT EXISTS events_object ON events (object_kind, namespace, object_name);

-- The broker's objects.
CREATE TABLE IF NOT EXISTS machines (
	id               TEXT PRIMARY KEY,
	datacenter       TEXT NOT NULL,
	maintenance_zone INTEGER NOT NULL,
	rack             TEXT NOT NULL,
	sku              TEXT NOT NULL DEFAULT '',
	-- state: available, allocated, disrupted, unhealthy or decommissioned.
	state            TEXT NOT NULL,
	healthy          INTEGER NOT NULL DEFAULT 1,
	health_message   TEXT NOT NULL DEFAULT '',
	pool             TEXT NOT NULL DEFAULT '',
	-- provision: clean, joining, joined or wiping.
	provision        TEXT NOT NULL DEFAULT '',
	os_image         TEXT NOT NULL DEFAULT '',
	kernel           TEXT NOT NULL DEFAULT '',
	node_config      TEXT NOT NULL DEFAULT '',
	updated          BIGINT NOT NULL DEFAULT 0,
	rev              BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS machines_layout ON machines (datacenter, maintenance_zone, rack);
CREATE INDEX IF NOT EXISTS machines_pool ON machines (pool);

CREATE TABLE IF NOT EXISTS broker_pools (
	name       TEXT PRIMARY KEY,
	datacenter TEXT NOT NULL DEFAULT '',
	profile    TEXT NOT NULL DEFAULT '',
	capacity   INTEGER NOT NULL DEFAULT 0,
	-- data: the broker's Pool as protobuf JSON.
	data       TEXT NOT NULL,
	rev        BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS disruptions (
	id               TEXT PRIMARY KEY,
	machine          TEXT NOT NULL,
	pool             TEXT NOT NULL DEFAULT '',
	datacenter       TEXT NOT NULL DEFAULT '',
	maintenance_zone INTEGER NOT NULL DEFAULT 0,
	-- reason: planned-upgrade, hardware-repair, decommission, remediation or pool-shrink (the broker's enum, lower case, dashes).
	reason           TEXT NOT NULL DEFAULT '',
	-- state: pending, approved, in-progress, completed, cancelled or failed.
	state            TEXT NOT NULL DEFAULT '',
	actor            TEXT NOT NULL DEFAULT '',
	on_behalf_of     TEXT NOT NULL DEFAULT '',
	message          TEXT NOT NULL DEFAULT '',
	created          BIGINT NOT NULL DEFAULT 0,
	updated          BIGINT NOT NULL DEFAULT 0,
	-- history: every transition, oldest first, as JSON: [{"from","to","actor","onBehalfOf","message","time"}].
	history          TEXT NOT NULL DEFAULT '[]',
	rev              BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS disruptions_machine ON disruptions (machine);
CREATE INDEX IF NOT EXISTS disruptions_zone ON disruptions (datacenter, maintenance_zone, state);
