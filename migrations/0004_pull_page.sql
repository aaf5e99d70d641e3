-- One page of a user's change stream, as a function so its plan can be pinned. Left to itself
-- the planner trusts the row estimate for (user_id, seq > since); for a user with far more
-- records than the statistics say (any heavy user, or any table since its last ANALYZE) it
-- reads the user's whole history, sorts it and keeps the first page. Bitmap scans and sorts
-- are switched off here, leaving the walk of records_user_seq in order, which stops at the
-- page's end whatever the estimates. The byte cap is summed over the page only.
CREATE OR REPLACE FUNCTION synchub_pull_page(p_user text, p_since int8, p_limit int8, p_collections text[], p_max_bytes int8)
RETURNS TABLE (
  head int8, min_valid_seq int8, epoch text, r_seq int8,
  collection text, id text, seq int8, data bytea, parent_id text, created_at int8, updated_at int8,
  deleted_at int8, purge_at int8, replaced_by text, conflict_of text, device_id text, created_seq int8,
  trashed_with text, running int8
)
LANGUAGE sql STABLE
SET enable_bitmapscan = off
SET enable_sort = off
AS $$
  SELECT s.seq, s.min_valid_seq, s.epoch, w.seq,
         w.collection, w.id, w.seq, w.data, w.parent_id, w.created_at, w.updated_at,
         w.deleted_at, w.purge_at, w.replaced_by, w.conflict_of, w.device_id, w.created_seq,
         w.trashed_with, w.running
    FROM user_state s
    LEFT JOIN LATERAL (
      SELECT * FROM (
        SELECT page.*, sum(octet_length(page.data)) OVER (ORDER BY page.seq)::int8 AS running,
               octet_length(page.data)::int8 AS size
          FROM (
            SELECT r.collection, r.id, r.seq, r.data, r.parent_id, r.created_at, r.updated_at, r.deleted_at,
                   r.purge_at, r.replaced_by, r.conflict_of, r.device_id, r.created_seq, r.trashed_with
              FROM records r
             WHERE r.user_id = s.user_id AND r.seq > p_since
               AND (p_collections IS NULL OR r.collection = ANY (p_collections))
             ORDER BY r.seq
             LIMIT p_limit
          ) page
      ) sized
      WHERE sized.running - sized.size < p_max_bytes
    ) w ON true
   WHERE s.user_id = p_user
$$;
