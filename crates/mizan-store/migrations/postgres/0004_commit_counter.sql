-- Every batch a writer commits counts one more, rows-only batches included (they
-- leave the chain head as it was). A writer that finds the count moved by more than
-- its own commits knows another process wrote, and drops what it keeps in memory.
ALTER TABLE ledger_head ADD COLUMN commits bigint NOT NULL DEFAULT 0;
