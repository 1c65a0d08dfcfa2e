-- WatchMachines finds the machines that changed by polling for updated_at at
-- or after a high-water mark, every half second per watcher; without an index
-- each poll read the whole fleet. (updated_at, id) so that a poll's pages,
-- in that order, come from the index alone. Portable as 0001.

CREATE INDEX machines_updated_at ON machines (updated_at, id);
