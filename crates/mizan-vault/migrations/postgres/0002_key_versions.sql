-- Master key *version numbers* (never keys) that `mizan keys rotate` has added, so a
-- running server learns that a newer version exists, re-reads its key file, and
-- wraps every new data key under the newest version.
CREATE TABLE IF NOT EXISTS vault_key_versions (
    version integer PRIMARY KEY,
    recorded_at_ns bigint NOT NULL
);
