-- Secrets every broker replica of an inventory shares, by name: the key that
-- authenticates ListMachines page tokens, so a token one replica issued is
-- good at another and after a restart. Hex text: portable as 0001.

CREATE TABLE broker_keys (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL
);
