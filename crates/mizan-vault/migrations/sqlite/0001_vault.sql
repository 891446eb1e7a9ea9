-- The vault's tables as first built (idempotent: databases created before
-- numbered migrations run it again harmlessly).
CREATE TABLE IF NOT EXISTS vault_data_keys (
    person_id BLOB PRIMARY KEY,
    master_version INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    created_at_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vault_data_keys_by_version ON vault_data_keys (master_version);
CREATE TABLE IF NOT EXISTS vault_erasures (
    person_id BLOB PRIMARY KEY,
    erased_at_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vault_records (
    record_id BLOB PRIMARY KEY,
    person_id BLOB NOT NULL,
    field_kind TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    blind_index BLOB,
    index_version INTEGER,
    created_at_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vault_records_by_person ON vault_records (person_id);
CREATE INDEX IF NOT EXISTS vault_records_by_blind_index
    ON vault_records (field_kind, blind_index) WHERE blind_index IS NOT NULL;
CREATE TABLE IF NOT EXISTS vault_tokens (
    token TEXT PRIMARY KEY,
    person_id BLOB NOT NULL,
    record_id BLOB NOT NULL,
    last4 TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vault_tokens_by_person ON vault_tokens (person_id);
CREATE TABLE IF NOT EXISTS vault_access_log (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ns INTEGER NOT NULL,
    role TEXT NOT NULL,
    actor TEXT NOT NULL,
    person_id BLOB NOT NULL,
    record_id BLOB NOT NULL,
    field_kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS vault_access_log_no_update BEFORE UPDATE ON vault_access_log
BEGIN SELECT RAISE(ABORT, 'vault_access_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS vault_access_log_no_delete BEFORE DELETE ON vault_access_log
BEGIN SELECT RAISE(ABORT, 'vault_access_log is append-only'); END;
