-- Choosing machines for a pool read every free machine of the smallest
-- adequate SKUs through machines_datacenter_state, looked each row up in the
-- table and sorted them by ID: most of an allocation's time
-- (docs/benchmarks.md, "Compute Broker"). machines_free holds only the
-- machines a pool may take, by datacenter, SKU and ID, so that read is an
-- ordered range of one index. A query uses it when it repeats the condition
-- as written here (machineWhere does, for MachineFilter.Free).
--
-- machines_pool covers what is read of a pool's machines (its members and
-- the counts of its status) so neither looks a row up in the table; in the
-- order of CountMachines' GROUP BY.
-- Portable as 0001: partial indexes are the same on both engines.

CREATE INDEX machines_free ON machines (datacenter, sku, id, state)
    WHERE state = 'available' AND pool IS NULL AND provision = 'clean' AND healthy;
DROP INDEX machines_pool;
CREATE INDEX machines_pool ON machines (pool, state, provision, maintenance_zone, healthy, id);
