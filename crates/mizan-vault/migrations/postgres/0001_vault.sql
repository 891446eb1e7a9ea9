-- The vault's tables as first built (idempotent: databases created before
-- numbered migrations run it again harmlessly).
CREATE TABLE IF NOT EXISTS vault_data_keys (
    person_id bytea PRIMARY KEY,
    master_version integer NOT NULL,
    wrapped bytea NOT NULL,
    created_at_ns bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS vault_data_keys_by_version ON vault_data_keys (master_version);
CREATE TABLE IF NOT EXISTS vault_erasures (
    person_id bytea PRIMARY KEY,
    erased_at_ns bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS vault_records (
    record_id bytea PRIMARY KEY,
    person_id bytea NOT NULL,
    field_kind text NOT NULL,
    ciphertext bytea NOT NULL,
    blind_index bytea,
    index_version bigint,
    created_at_ns bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS vault_records_by_person ON vault_records (person_id);
CREATE INDEX IF NOT EXISTS vault_records_by_blind_index
    ON vault_records (field_kind, blind_index) WHERE blind_index IS NOT NULL;
CREATE TABLE IF NOT EXISTS vault_tokens (
    token text PRIMARY KEY,
    person_id bytea NOT NULL,
    record_id bytea NOT NULL,
    last4 text NOT NULL
);
CREATE INDEX IF NOT EXISTS vault_tokens_by_person ON vault_tokens (person_id);
CREATE TABLE IF NOT EXISTS vault_access_log (
    sequence bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ns bigint NOT NULL,
    role text NOT NULL,
    actor text NOT NULL,
    person_id bytea NOT NULL,
    record_id bytea NOT NULL,
    field_kind text NOT NULL,
    reason text NOT NULL,
    outcome text NOT NULL
);
CREATE OR REPLACE FUNCTION vault_access_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'vault_access_log is append-only';
END
$$;
DROP TRIGGER IF EXISTS vault_access_log_append_only ON vault_access_log;
CREATE TRIGGER vault_access_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON vault_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION vault_access_log_append_only();
