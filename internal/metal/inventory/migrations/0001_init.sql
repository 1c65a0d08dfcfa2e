-- The inventory schema. It must run unchanged on SQLite and PostgreSQL:
-- portable types only, timestamps as BIGINT unix nanoseconds (UTC), booleans
-- as BOOLEAN, and no engine-specific defaults or sequences.

CREATE TABLE datacenters (
    name              TEXT PRIMARY KEY,
    region            TEXT NOT NULL,
    maintenance_zones INTEGER NOT NULL
);

CREATE TABLE racks (
    name       TEXT PRIMARY KEY,
    datacenter TEXT NOT NULL REFERENCES datacenters (name)
);

CREATE INDEX racks_datacenter ON racks (datacenter);

CREATE TABLE skus (
    name           TEXT PRIMARY KEY,
    arch           TEXT NOT NULL,
    cpu_cores      INTEGER NOT NULL,
    memory_gib     INTEGER NOT NULL,
    gpus           INTEGER NOT NULL,
    gpu_model      TEXT NOT NULL,
    local_disk_gib INTEGER NOT NULL
);

CREATE TABLE node_profiles (
    name               TEXT PRIMARY KEY,
    min_cpu_cores      INTEGER NOT NULL,
    min_memory_gib     INTEGER NOT NULL,
    min_gpus           INTEGER NOT NULL,
    gpu_model          TEXT NOT NULL,
    min_local_disk_gib INTEGER NOT NULL,
    node_config        TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

CREATE TABLE pools (
    name       TEXT PRIMARY KEY,
    datacenter TEXT NOT NULL REFERENCES datacenters (name),
    profile    TEXT NOT NULL REFERENCES node_profiles (name),
    capacity   INTEGER NOT NULL,
    generation BIGINT NOT NULL,
    deleting   BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One pool column: a machine is in at most one pool by construction.
CREATE TABLE machines (
    id               TEXT PRIMARY KEY,
    datacenter       TEXT NOT NULL REFERENCES datacenters (name),
    maintenance_zone INTEGER NOT NULL,
    rack             TEXT NOT NULL REFERENCES racks (name),
    sku              TEXT NOT NULL REFERENCES skus (name),
    state            TEXT NOT NULL,
    healthy          BOOLEAN NOT NULL,
    health_message   TEXT NOT NULL,
    os_image         TEXT NOT NULL,
    kernel           TEXT NOT NULL,
    node_config      TEXT NOT NULL,
    pool             TEXT REFERENCES pools (name),
    updated_at       BIGINT NOT NULL
);

CREATE INDEX machines_datacenter_state ON machines (datacenter, state);
CREATE INDEX machines_pool ON machines (pool);
CREATE INDEX machines_maintenance_zone ON machines (maintenance_zone);

-- pool, datacenter and maintenance_zone are copies taken at creation (for
-- budget queries), not references: the history outlives the pool.
CREATE TABLE disruptions (
    id               TEXT PRIMARY KEY,
    machine          TEXT NOT NULL REFERENCES machines (id),
    pool             TEXT NOT NULL,
    datacenter       TEXT NOT NULL,
    maintenance_zone INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    state            TEXT NOT NULL,
    actor            TEXT NOT NULL,
    message          TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE INDEX disruptions_machine_state ON disruptions (machine, state);
CREATE INDEX disruptions_state ON disruptions (state);

-- seq keeps insertion order portably (no SERIAL in SQLite, no rowid in
-- PostgreSQL): the store writes MAX(seq)+1 inside the inserting transaction.
CREATE TABLE disruption_events (
    seq           BIGINT PRIMARY KEY,
    disruption_id TEXT NOT NULL REFERENCES disruptions (id),
    from_state    TEXT NOT NULL,
    to_state      TEXT NOT NULL,
    actor         TEXT NOT NULL,
    message       TEXT NOT NULL,
    at            BIGINT NOT NULL
);

CREATE INDEX disruption_events_disruption ON disruption_events (disruption_id, at, seq);
