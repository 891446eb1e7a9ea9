-- Mizan ledger, schema version 1 (PostgreSQL).
--
-- 128-bit ids are stored as uuid (big-endian bytes of the u128). Timestamps are
-- nanoseconds since the epoch in bigint (they stay below 2^63). Unsigned fields are
-- kept in the next wider signed type so every value fits.

-- Every batch rewrites the balances of the accounts it touches: half-empty pages
-- let those updates stay on the page (HOT) and skip the primary-key index.
CREATE TABLE accounts (
    id uuid PRIMARY KEY,
    ledger bigint NOT NULL,
    code integer NOT NULL,
    owner uuid NOT NULL,
    flags integer NOT NULL,
    debits_pending bigint NOT NULL CHECK (debits_pending >= 0),
    debits_posted bigint NOT NULL CHECK (debits_posted >= 0),
    credits_pending bigint NOT NULL CHECK (credits_pending >= 0),
    credits_posted bigint NOT NULL CHECK (credits_posted >= 0),
    timestamp bigint NOT NULL
) WITH (fillfactor = 50);

-- Append-only: the hash chain runs in timestamp order. `id` is NULL for the
-- ledger's own expiry records (id zero); `pending_id` is NULL when zero.
CREATE TABLE transfers (
    timestamp bigint PRIMARY KEY,
    id uuid UNIQUE,
    debit_account_id uuid NOT NULL,
    credit_account_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount >= 0),
    pending_id uuid,
    ledger bigint NOT NULL,
    code integer NOT NULL,
    reference uuid NOT NULL,
    flags integer NOT NULL,
    timeout_seconds bigint NOT NULL,
    hash bytea NOT NULL CHECK (length(hash) = 32)
);

CREATE INDEX transfers_debit_account_id_timestamp ON transfers (debit_account_id, timestamp);
CREATE INDEX transfers_credit_account_id_timestamp ON transfers (credit_account_id, timestamp);

-- History is never rewritten: corrections are new transfers. Statement-level, so it
-- costs nothing on the COPY that appends a batch.
CREATE FUNCTION transfers_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'transfers are append-only';
END;
$$;

CREATE TRIGGER transfers_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION transfers_refuse_change();

-- Status numbers: 0 pending, 1 posted, 2 voided, 3 expired (`PendingStatus::number`).
-- `expires_at` is 0 when the pending transfer never times out.
CREATE TABLE pending_transfers (
    id uuid PRIMARY KEY,
    status smallint NOT NULL CHECK (status BETWEEN 0 AND 3),
    expires_at bigint NOT NULL CHECK (expires_at >= 0)
);

CREATE INDEX pending_transfers_due ON pending_transfers (expires_at)
    WHERE status = 0 AND expires_at > 0;

-- The newest committed transfer's timestamp and hash. Every writer locks this row
-- first, so batches from several processes commit one after another.
CREATE TABLE ledger_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    last_timestamp bigint NOT NULL,
    last_hash bytea NOT NULL CHECK (length(last_hash) = 32),
    transfers_count bigint NOT NULL CHECK (transfers_count >= 0)
);

INSERT INTO ledger_head (id, last_timestamp, last_hash, transfers_count)
VALUES (1, 0, decode(repeat('00', 32), 'hex'), 0);

CREATE TABLE documents (
    collection text NOT NULL,
    key text NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (collection, key)
);

CREATE TABLE outbox (
    seq bigserial PRIMARY KEY,
    topic text NOT NULL,
    payload bytea NOT NULL
);
