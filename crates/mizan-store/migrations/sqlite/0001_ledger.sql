-- The ledger's tables. Ids are 16-byte big-endian blobs; amounts are minor units.
-- `slot` is the row's integer key: the writer updates balances by slot (an integer
-- compare per B-tree level instead of a 16-byte one); lookups by id use the index.
CREATE TABLE accounts (
    slot INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    ledger INTEGER NOT NULL,
    code INTEGER NOT NULL,
    owner BLOB NOT NULL,
    flags INTEGER NOT NULL,
    debits_pending INTEGER NOT NULL,
    debits_posted INTEGER NOT NULL,
    credits_pending INTEGER NOT NULL,
    credits_posted INTEGER NOT NULL,
    timestamp INTEGER NOT NULL
);

-- Append-only: keyed by the ledger timestamp, so inserts go to the end of the tree.
-- id is NULL for expiry records, which the ledger makes itself.
CREATE TABLE transfers (
    timestamp INTEGER PRIMARY KEY,
    id BLOB UNIQUE,
    debit_account_id BLOB NOT NULL,
    credit_account_id BLOB NOT NULL,
    amount INTEGER NOT NULL,
    pending_id BLOB,
    ledger INTEGER NOT NULL,
    code INTEGER NOT NULL,
    reference BLOB NOT NULL,
    flags INTEGER NOT NULL,
    timeout_seconds INTEGER NOT NULL,
    hash BLOB NOT NULL
);
-- No per-account history index here: it is built off the commit path, in segments
-- in a separate database file (see src/sqlite/history.rs).

CREATE TABLE pending_transfers (
    id BLOB PRIMARY KEY,
    status INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX pending_transfers_due ON pending_transfers (expires_at) WHERE status = 0 AND expires_at > 0;

-- `balances_as_of`: the accounts table's balances include every transfer up to this
-- timestamp; later ones are replayed on top (see src/sqlite/balances.rs).
CREATE TABLE ledger_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_timestamp INTEGER NOT NULL,
    last_hash BLOB NOT NULL,
    transfers_count INTEGER NOT NULL,
    balances_as_of INTEGER NOT NULL
);
INSERT INTO ledger_head (id, last_timestamp, last_hash, transfers_count, balances_as_of)
VALUES (1, 0, zeroblob(32), 0, 0);

CREATE TABLE documents (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (collection, key)
) WITHOUT ROWID;

CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
