-- The recycle bin's listing (GET /v1/trash: a user's deleted records by purge time) read every
-- record of the user, or of every user, and sorted the deleted ones: 21 ms for a user with
-- 100,000 records and 100 in the bin. This index holds only records in a bin, in the listing's
-- order, so a page reads its own rows. Built without CONCURRENTLY, as migrations run in a
-- transaction: on a large existing table, create it CONCURRENTLY by hand first and this is a no-op.
CREATE INDEX IF NOT EXISTS records_trash ON records (user_id, purge_at, seq) WHERE deleted_at IS NOT NULL;
