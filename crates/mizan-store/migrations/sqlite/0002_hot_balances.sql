-- Balances of busy accounts, written between two flushes of the accounts table:
-- an account that took many transfers since the last flush gets its balance here,
-- as of `as_of`, so a read replays only what came after that instead of the whole
-- tail (see src/sqlite/balances.rs). A row older than `balances_as_of` is obsolete.
CREATE TABLE hot_balances (
    account_id BLOB PRIMARY KEY,
    as_of INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    debits_pending INTEGER NOT NULL,
    debits_posted INTEGER NOT NULL,
    credits_pending INTEGER NOT NULL,
    credits_posted INTEGER NOT NULL
) WITHOUT ROWID;
