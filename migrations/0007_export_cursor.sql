-- synchub_export_page (0005) again, with the cursor as one row comparison. Its `p_after_collection
-- IS NULL OR (collection, id) > (…)` cannot be an index bound in a plan made without the
-- parameters' values, which a function's statement gets: every page walked the user's records
-- from the first and filtered up to the cursor, so an export took time quadratic in its records
-- (100,000 messages 3.5 s, 200,000 15 s). From the start, the cursor is ('', ''): every
-- collection name sorts after the empty string.
CREATE OR REPLACE FUNCTION synchub_export_page(p_user text, p_collections text[], p_after_collection text, p_after_id text, p_limit int8, p_max_bytes int8)
RETURNS TABLE (
  user_id text, collection text, id text, seq int8, data bytea, parent_id text, created_at int8, updated_at int8,
  deleted_at int8, purge_at int8, replaced_by text, conflict_of text, device_id text, created_seq int8, trashed_with text
)
LANGUAGE sql STABLE
SET enable_bitmapscan = off
SET enable_sort = off
AS $$
  SELECT sized.user_id, sized.collection, sized.id, sized.seq, sized.data, sized.parent_id, sized.created_at, sized.updated_at,
         sized.deleted_at, sized.purge_at, sized.replaced_by, sized.conflict_of, sized.device_id, sized.created_seq, sized.trashed_with
    FROM (
      SELECT page.*, sum(octet_length(page.data)) OVER (ORDER BY page.collection, page.id)::int8 AS running,
             octet_length(page.data)::int8 AS size
        FROM (
          SELECT r.user_id, r.collection, r.id, r.seq, r.data, r.parent_id, r.created_at, r.updated_at, r.deleted_at,
                 r.purge_at, r.replaced_by, r.conflict_of, r.device_id, r.created_seq, r.trashed_with
            FROM records r
           WHERE r.user_id = p_user AND r.collection = ANY (p_collections)
             AND (r.collection, r.id) > (coalesce(p_after_collection, ''), coalesce(p_after_id, ''))
           ORDER BY r.collection, r.id
           LIMIT p_limit
        ) page
    ) sized
   WHERE sized.running - sized.size < p_max_bytes
   ORDER BY sized.collection, sized.id
$$;
