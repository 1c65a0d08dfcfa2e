-- machines_provision (0002) indexed every machine, and nearly every machine is
-- clean: without statistics (SQLite keeps none unless ANALYZE runs, and
-- PostgreSQL has none until autovacuum analyzes a freshly seeded table) both
-- planners took provision = 'clean' for a selective lookup and read the whole
-- fleet through it, once per batch of an allocation. Only machines in transit
-- are looked up by provision state (the provisioning loop reads the joining
-- and the wiping ones), so the index holds only the machines that are not
-- clean. A query uses it when it repeats the condition (machineWhere does).
-- Portable as 0001: partial indexes are the same on both engines.

DROP INDEX machines_provision;
CREATE INDEX machines_provision ON machines (provision) WHERE provision <> 'clean';
