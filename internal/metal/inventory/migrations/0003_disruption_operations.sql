-- The broker performs operations on machines under a disruption (reboot,
-- reimage, replace), and a disruption may end Failed. A disruption carries its
-- operation: kind '' means none (the actor performs it), and for reimage the
-- software the machine runs afterwards ('' keeps what it runs). Failed is a
-- new value of the state column and the history's steps are events whose
-- from_state equals to_state: neither needs a schema change. Portable as 0001.

ALTER TABLE disruptions ADD COLUMN operation TEXT NOT NULL DEFAULT '';
ALTER TABLE disruptions ADD COLUMN operation_os_image TEXT NOT NULL DEFAULT '';
ALTER TABLE disruptions ADD COLUMN operation_kernel TEXT NOT NULL DEFAULT '';
ALTER TABLE disruptions ADD COLUMN operation_node_config TEXT NOT NULL DEFAULT '';
