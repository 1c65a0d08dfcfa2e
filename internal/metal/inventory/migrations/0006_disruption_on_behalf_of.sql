-- The actor of a disruption and of each of its events is the caller's
-- authenticated identity; on_behalf_of is the detail the caller added
-- (a rollout's name, a person's), kept apart so it is never taken for
-- the identity. Portable as 0001.

ALTER TABLE disruptions ADD COLUMN on_behalf_of TEXT NOT NULL DEFAULT '';
ALTER TABLE disruption_events ADD COLUMN on_behalf_of TEXT NOT NULL DEFAULT '';
