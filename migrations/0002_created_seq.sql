-- The seq at which a record was created. A record's seq moves with every change (a message's
-- status update, a delete), but the order of a conversation's messages must not: regen takes
-- the newest, fork copies the history up to a message, and paging walks back through it.
ALTER TABLE records ADD COLUMN created_seq int8 NOT NULL DEFAULT 0;
UPDATE records SET created_seq = seq;
DROP INDEX records_parent;
CREATE INDEX records_children ON records (user_id, parent_id, created_seq) WHERE parent_id IS NOT NULL;

-- The parent whose deletion took this record to the recycle bin (a conversation's messages):
-- restoring the parent restores exactly these, not the ones deleted on their own before.
ALTER TABLE records ADD COLUMN trashed_with text;
