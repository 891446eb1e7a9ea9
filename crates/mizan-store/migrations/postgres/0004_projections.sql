-- Read models derived from the outbox (a person's notifications), written by a
-- projector outside the ledger writer's transactions (mizan_ledger::ProjectionStore).
CREATE TABLE IF NOT EXISTS projected (
    projection text NOT NULL,
    key text COLLATE "C" NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (projection, key)
);
CREATE TABLE IF NOT EXISTS projection_cursors (
    projection text PRIMARY KEY,
    through bigint NOT NULL
);
