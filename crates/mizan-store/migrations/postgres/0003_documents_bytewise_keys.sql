-- Document keys compare byte by byte (as in SQLite), whatever the database's
-- collation, so a prefix query is a range scan: key >= prefix AND key < prefix || U+10FFFF.
ALTER TABLE documents ALTER COLUMN key TYPE text COLLATE "C";
