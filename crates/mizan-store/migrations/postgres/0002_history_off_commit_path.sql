-- Account history moves off the commit path: the writer no longer maintains two
-- per-account indexes on `transfers` (random B-tree inserts on every commit).
-- A background indexer on its own connection copies (account, timestamp, code)
-- into `account_history` after the fact and advances the watermark in the same
-- transaction; queries merge it with the transfers after the watermark.
DROP INDEX transfers_debit_account_id_timestamp;
DROP INDEX transfers_credit_account_id_timestamp;

CREATE TABLE account_history (
    account_id uuid NOT NULL,
    timestamp bigint NOT NULL,
    code integer NOT NULL,
    PRIMARY KEY (account_id, timestamp)
);

CREATE TABLE history_watermark (
    id smallint PRIMARY KEY CHECK (id = 1),
    indexed_until bigint NOT NULL CHECK (indexed_until >= 0)
);

INSERT INTO history_watermark (id, indexed_until) VALUES (1, 0);
